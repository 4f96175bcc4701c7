//! Identity: branches, roles and permissions, users, passwords, sessions, API tokens
//! and login throttling — the principals every area checks.
pub mod branches;
pub mod login;
pub mod passwords;
pub mod permissions;
pub mod roles;
pub mod sessions;
pub mod tokens;
pub mod users;

use chrono::{DateTime, Utc};

use crate::db::{DbError, Tx};
use crate::error::{Error, Result};
use crate::principal::{DataScope, Principal};

/// Optimistic concurrency: `expected` is what the client last saw (`If-Match` or a
/// form's hidden field); `None` means the client did not say.
pub fn check_version(current: i64, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(v) if v != current => Err(Error::StaleVersion { current }),
        _ => Ok(()),
    }
}

/// Columns shared by the principal queries of sessions and tokens.
pub(crate) const PRINCIPAL_COLUMNS: &str = "u.id AS user_id, u.name, u.email, u.branch_id, b.path AS branch_path, \
     u.role, r.data_scope, r.permissions, u.locale, u.time_zone";

pub(crate) struct PrincipalRow {
    pub principal: Principal,
}

impl crate::db::FromRow for PrincipalRow {
    fn from_row(row: &crate::db::Row<'_>) -> Result<Self, DbError> {
        let permissions: serde_json::Value = row.get("permissions")?;
        let scope: String = row.get("data_scope")?;
        Ok(PrincipalRow {
            principal: Principal {
                user_id: row.get("user_id")?,
                name: row.get("name")?,
                email: row.get("email")?,
                branch_id: row.get("branch_id")?,
                branch_path: row.get("branch_path")?,
                role: row.get("role")?,
                scope: DataScope::parse(&scope).unwrap_or(DataScope::Own),
                permissions: permissions
                    .as_array()
                    .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default(),
                locale: row.get("locale")?,
                time_zone: row.get("time_zone")?,
                channel: crate::principal::Channel::Api,
                ip: None,
                request_id: None,
                token_id: None,
            },
        })
    }
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Loads a user's principal by id (for the CLI and jobs acting as a user).
pub fn principal_for_user(tx: &mut Tx<'_>, user_id: crate::id::Id) -> Result<Principal> {
    let sql = format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM users u JOIN roles r ON r.key = u.role JOIN branches b ON b.id = u.branch_id \
         WHERE u.id = $1 AND u.deleted_at IS NULL"
    );
    tx.query_opt_sql::<PrincipalRow>(&sql, &[user_id.into()])?.map(|r| r.principal).ok_or(Error::NotFound("user"))
}
