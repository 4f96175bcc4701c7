//! API tokens: `rap_<prefix>_<secret>`. Shown once at creation; stored as SHA-256 (the
//! secret has 192 bits of entropy, so a fast hash is enough); the prefix stays visible
//! so people can tell their tokens apart. A token acts as its user.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Changes};
use crate::db::{DbError, FromRow, Row, Tx};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::principal::{Channel, Principal};

use super::sessions::{random_secret, sha256_hex};
use super::{PRINCIPAL_COLUMNS, PrincipalRow};

/// `last_used_at` is refreshed at most this often; each refresh is also audited as a
/// `token_use`, so token use is on record without a write per request.
pub const TOUCH_INTERVAL: chrono::Duration = chrono::Duration::minutes(1);

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    /// The visible start of the token, e.g. `rap_Xb3k9QaZ`.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl FromRow for ApiToken {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(ApiToken {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            name: row.get("name")?,
            prefix: row.get("prefix")?,
            created_at: row.get("created_at")?,
            last_used_at: row.get("last_used_at")?,
            revoked_at: row.get("revoked_at")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Whose token (default: the caller's own); another user's needs `identity.tokens.manage`.
    #[serde(default)]
    pub user_id: Option<Id>,
}

/// A freshly created token: the only time its secret is ever shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    pub secret: String,
}

const COLUMNS: &str = "id, user_id, name, prefix, created_at, last_used_at, revoked_at";

pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewToken) -> Result<CreatedToken> {
    let user_id = input.user_id.unwrap_or(who.user_id);
    if user_id != who.user_id {
        who.require("identity.tokens.manage")?;
    }
    let user = super::users::find(tx, user_id)?.ok_or(Error::field("user_id", "no such user"))?;
    if !user.active {
        return Err(Error::field("user_id", "the user is not active"));
    }
    let name = crate::values::name(&input.name, 100).map_err(|m| Error::field("name", m))?;
    let prefix = format!("rap_{}", random_secret(6));
    let secret = format!("{prefix}_{}", random_secret(24));
    let token = ApiToken {
        id: Id::new(),
        user_id,
        name,
        prefix,
        created_at: super::now(),
        last_used_at: None,
        revoked_at: None,
    };
    tx.execute_sql(
        "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            token.id.into(),
            user_id.into(),
            token.name.clone().into(),
            token.prefix.clone().into(),
            sha256_hex(&secret).into(),
            token.created_at.into(),
        ],
    )?;
    audit::record(
        tx,
        who,
        "create",
        "api_token",
        Some(token.id),
        &Changes::new().created("name", &token.name).created("user_id", &user_id).created("prefix", &token.prefix),
    )?;
    Ok(CreatedToken { token, secret })
}

pub fn list(tx: &mut Tx<'_>, who: &Principal, user_id: Option<Id>) -> Result<Vec<ApiToken>> {
    let user_id = user_id.unwrap_or(who.user_id);
    if user_id != who.user_id {
        who.require("identity.tokens.manage")?;
    }
    Ok(tx.query_sql(
        &format!("SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id DESC"),
        &[user_id.into()],
    )?)
}

pub fn revoke(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    let token: ApiToken = tx
        .query_opt_sql(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"), &[id.into()])?
        .ok_or(Error::NotFound("token"))?;
    if token.user_id != who.user_id && !who.can("identity.tokens.manage") {
        return Err(Error::NotFound("token"));
    }
    if token.revoked_at.is_some() {
        return Ok(());
    }
    tx.execute_sql("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2", &[super::now().into(), id.into()])?;
    audit::record(tx, who, "revoke", "api_token", Some(id), &Changes::new().field("revoked", &false, &true))?;
    Ok(())
}

/// The principal a bearer token acts as; `None` for an unknown, revoked or
/// deactivated-user token. `needs_touch` asks the caller to run [`touch`] later.
pub fn resolve(tx: &mut Tx<'_>, secret: &str) -> Result<Option<(Principal, bool)>> {
    struct TokenRow {
        principal: Principal,
        token_id: Id,
        last_used_at: Option<DateTime<Utc>>,
    }
    impl FromRow for TokenRow {
        fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
            Ok(TokenRow {
                principal: PrincipalRow::from_row(row)?.principal,
                token_id: row.get("token_id")?,
                last_used_at: row.get("last_used_at")?,
            })
        }
    }
    if !secret.starts_with("rap_") || secret.len() > 200 {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {PRINCIPAL_COLUMNS}, t.id AS token_id, t.last_used_at FROM api_tokens t \
         JOIN users u ON u.id = t.user_id JOIN roles r ON r.key = u.role JOIN branches b ON b.id = u.branch_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.active = $2 AND u.deleted_at IS NULL"
    );
    let row: Option<TokenRow> = tx.query_opt_sql(&sql, &[sha256_hex(secret).into(), true.into()])?;
    Ok(row.map(|r| {
        let mut principal = r.principal;
        principal.channel = Channel::Api;
        principal.token_id = Some(r.token_id);
        let stale = r.last_used_at.is_none_or(|t| super::now() - t > TOUCH_INTERVAL);
        (principal, stale)
    }))
}

/// Records that the token was used (at most once per [`TOUCH_INTERVAL`]).
pub fn touch(tx: &mut Tx<'_>, who: &Principal) -> Result<()> {
    let Some(token_id) = who.token_id else { return Ok(()) };
    let now = super::now();
    let n = tx.execute_sql(
        "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        &[now.into(), token_id.into(), (now - TOUCH_INTERVAL).into()],
    )?;
    if n > 0 {
        audit::record(tx, who, "token_use", "api_token", Some(token_id), &Changes::new())?;
    }
    Ok(())
}
