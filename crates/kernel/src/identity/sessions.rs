//! Server-side sessions: the browser holds a random id; the database holds its SHA-256,
//! so any node can serve any request and a stolen database copy opens no session.
use chrono::{DateTime, Duration, Utc};

use crate::db::{DbError, FromRow, Row, Tx};
use crate::error::Result;
use crate::id::Id;
use crate::principal::{Channel, Principal};

use super::{PRINCIPAL_COLUMNS, PrincipalRow};

/// A session ends after this long without a request…
pub const IDLE_TIMEOUT: Duration = Duration::hours(12);
/// …and after this long in any case.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::days(7);
/// `last_seen_at` is refreshed at most this often, so reads stay reads.
pub const TOUCH_INTERVAL: Duration = Duration::minutes(5);

pub fn random_secret(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct NewSession {
    /// Goes into the cookie; never stored.
    pub secret: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

pub fn create(tx: &mut Tx<'_>, user_id: Id, ip: Option<&str>, user_agent: Option<&str>) -> Result<NewSession> {
    let secret = random_secret(32);
    let csrf_token = random_secret(24);
    let now = super::now();
    let expires_at = now + ABSOLUTE_TIMEOUT;
    tx.execute_sql(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            sha256_hex(&secret).into(),
            user_id.into(),
            csrf_token.clone().into(),
            now.into(),
            now.into(),
            expires_at.into(),
            ip.map(str::to_owned).into(),
            user_agent.map(|u| u.chars().take(300).collect::<String>()).into(),
        ],
    )?;
    Ok(NewSession { secret, csrf_token, expires_at })
}

/// A live session: who it is, the CSRF token its forms must carry.
pub struct SessionPrincipal {
    pub principal: Principal,
    pub csrf_token: String,
    /// True when `last_seen_at` is stale enough to refresh with [`touch`].
    pub needs_touch: bool,
}

struct SessionRow {
    principal: Principal,
    csrf_token: String,
    last_seen_at: DateTime<Utc>,
}

impl FromRow for SessionRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(SessionRow {
            principal: PrincipalRow::from_row(row)?.principal,
            csrf_token: row.get("csrf_token")?,
            last_seen_at: row.get("last_seen_at")?,
        })
    }
}

/// Resolves a cookie's secret to its user, if the session is live and the user active.
pub fn resolve(tx: &mut Tx<'_>, secret: &str) -> Result<Option<SessionPrincipal>> {
    let now = super::now();
    let sql = format!(
        "SELECT {PRINCIPAL_COLUMNS}, s.csrf_token, s.last_seen_at FROM sessions s \
         JOIN users u ON u.id = s.user_id JOIN roles r ON r.key = u.role JOIN branches b ON b.id = u.branch_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND u.active = $4 AND u.deleted_at IS NULL"
    );
    let row: Option<SessionRow> =
        tx.query_opt_sql(&sql, &[sha256_hex(secret).into(), now.into(), (now - IDLE_TIMEOUT).into(), true.into()])?;
    Ok(row.map(|r| {
        let mut principal = r.principal;
        principal.channel = Channel::Ui;
        SessionPrincipal { principal, csrf_token: r.csrf_token, needs_touch: now - r.last_seen_at > TOUCH_INTERVAL }
    }))
}

/// Keeps an active session from idling out.
pub fn touch(tx: &mut Tx<'_>, secret: &str) -> Result<()> {
    tx.execute_sql(
        "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2",
        &[super::now().into(), sha256_hex(secret).into()],
    )?;
    Ok(())
}

pub fn end(tx: &mut Tx<'_>, secret: &str) -> Result<()> {
    tx.execute_sql("DELETE FROM sessions WHERE id_hash = $1", &[sha256_hex(secret).into()])?;
    Ok(())
}

pub fn end_all_for_user(tx: &mut Tx<'_>, user_id: Id) -> Result<()> {
    tx.execute_sql("DELETE FROM sessions WHERE user_id = $1", &[user_id.into()])?;
    Ok(())
}

/// Ends every session of the user but the one whose secret is `keep`.
pub fn end_all_except(tx: &mut Tx<'_>, user_id: Id, keep: Option<&str>) -> Result<()> {
    match keep {
        Some(secret) => tx.execute_sql(
            "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2",
            &[user_id.into(), sha256_hex(secret).into()],
        )?,
        None => tx.execute_sql("DELETE FROM sessions WHERE user_id = $1", &[user_id.into()])?,
    };
    Ok(())
}

/// Removes expired sessions (run now and then by a job).
pub fn purge_expired(tx: &mut Tx<'_>) -> Result<u64> {
    let now = super::now();
    Ok(tx.execute_sql(
        "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
        &[now.into(), (now - IDLE_TIMEOUT).into()],
    )?)
}
