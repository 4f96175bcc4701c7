//! Logging in, in three steps so the slow password check holds no transaction:
//! [`prepare`] reads the account and the throttles, the caller verifies the password
//! on a blocking thread, and [`finish`] records the outcome and opens the session.
//!
//! Throttles live in the database so every node enforces them together: an account
//! locks for a doubling period after repeated failures, and an address that fails too
//! often is refused for a while whatever account it tries.
use chrono::{DateTime, Duration, Utc};

use crate::audit::{self, Changes};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::principal::{Channel, Principal};

use super::sessions::{self, NewSession};

/// Failures in a row before an account locks.
pub const ACCOUNT_FAILURES_BEFORE_LOCK: i64 = 5;
/// The first lock; each further failure doubles it, up to [`MAX_LOCK`].
pub const FIRST_LOCK: Duration = Duration::minutes(1);
pub const MAX_LOCK: Duration = Duration::hours(1);
/// Failures from one address within [`IP_WINDOW`] before it is refused.
pub const IP_FAILURES_ALLOWED: i64 = 30;
pub const IP_WINDOW: Duration = Duration::minutes(15);

#[derive(Debug, Clone)]
pub struct Attempt {
    pub email: String,
    pub user_id: Option<Id>,
    /// The hash to verify against (a decoy when the account is unknown or inactive).
    pub password_hash: String,
    pub ip: Option<String>,
}

fn retry_after(until: DateTime<Utc>) -> Error {
    Error::TooManyAttempts { retry_after_secs: (until - Utc::now()).num_seconds().max(1) as u64 }
}

pub fn prepare(tx: &mut crate::Tx<'_>, email: &str, ip: Option<&str>) -> Result<Attempt> {
    let email = email.trim().to_lowercase();
    let now = super::now();
    if let Some(ip) = ip {
        let recent: Vec<i64> = tx.query_sql(
            "SELECT COUNT(*) FROM login_failures WHERE ip = $1 AND at > $2",
            &[ip.into(), (now - IP_WINDOW).into()],
        )?;
        if recent.first().copied().unwrap_or(0) >= IP_FAILURES_ALLOWED {
            return Err(retry_after(now + IP_WINDOW));
        }
    }
    let row: Option<(i64, String, Option<DateTime<Utc>>, bool)> = tx
        .query_opt_sql::<AccountRow>(
            "SELECT id, password_hash, locked_until, active FROM users WHERE email = $1 AND deleted_at IS NULL",
            &[email.clone().into()],
        )?
        .map(|r| (r.id, r.hash, r.locked_until, r.active));
    match row {
        Some((_, _, Some(until), _)) if until > now => Err(retry_after(until)),
        Some((id, hash, _, true)) => {
            Ok(Attempt { email, user_id: Some(Id(id)), password_hash: hash, ip: ip.map(str::to_owned) })
        }
        _ => Ok(Attempt {
            email,
            user_id: None,
            password_hash: super::passwords::decoy_hash().to_owned(),
            ip: ip.map(str::to_owned),
        }),
    }
}

struct AccountRow {
    id: i64,
    hash: String,
    locked_until: Option<DateTime<Utc>>,
    active: bool,
}

impl crate::db::FromRow for AccountRow {
    fn from_row(row: &crate::db::Row<'_>) -> Result<Self, crate::DbError> {
        Ok(AccountRow {
            id: row.get("id")?,
            hash: row.get("password_hash")?,
            locked_until: row.get("locked_until")?,
            active: row.get("active")?,
        })
    }
}

fn anonymous(channel: Channel, ip: Option<String>) -> Principal {
    let mut p = Principal::system(channel);
    p.user_id = Id(0);
    p.name = "anonymous".into();
    p.permissions.clear();
    p.ip = ip;
    p
}

pub enum Outcome {
    LoggedIn(NewSession, Box<Principal>),
    /// 401, or 429 when this failure locked the account. Returned as `Ok` so the unit of
    /// work commits the recorded failure; the caller turns it into the error.
    Refused(Error),
}

/// Records the outcome of the password check: on success opens a session; on failure
/// counts it against the account and the address.
pub fn finish(
    tx: &mut crate::Tx<'_>,
    attempt: &Attempt,
    password_ok: bool,
    channel: Channel,
    user_agent: Option<&str>,
    request_id: Option<String>,
) -> Result<Outcome> {
    let now = super::now();
    let mut actor = anonymous(channel, attempt.ip.clone());
    actor.request_id = request_id;
    match (attempt.user_id, password_ok) {
        (Some(user_id), true) => {
            tx.execute_sql("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1", &[user_id.into()])?;
            let session = sessions::create(tx, user_id, attempt.ip.as_deref(), user_agent)?;
            let mut principal = super::principal_for_user(tx, user_id)?;
            principal.channel = channel;
            principal.ip = attempt.ip.clone();
            principal.request_id = actor.request_id.clone();
            audit::record(tx, &principal, "login", "user", Some(user_id), &Changes::new())?;
            Ok(Outcome::LoggedIn(session, Box::new(principal)))
        }
        (user_id, _) => {
            if let Some(ip) = &attempt.ip {
                tx.execute_sql(
                    "INSERT INTO login_failures (id, ip, email, at) VALUES ($1, $2, $3, $4)",
                    &[Id::new().into(), ip.clone().into(), attempt.email.clone().into(), now.into()],
                )?;
            }
            let mut locked_until = None;
            if let Some(user_id) = user_id {
                let failures: Vec<i64> = tx.query_sql(
                    "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
                    &[user_id.into()],
                )?;
                let failures = failures.first().copied().unwrap_or(0);
                if failures >= ACCOUNT_FAILURES_BEFORE_LOCK {
                    let doublings = (failures - ACCOUNT_FAILURES_BEFORE_LOCK).min(10) as i32;
                    let lock = (FIRST_LOCK * 2i32.pow(doublings as u32)).min(MAX_LOCK);
                    let until = now + lock;
                    tx.execute_sql(
                        "UPDATE users SET locked_until = $1 WHERE id = $2",
                        &[until.into(), user_id.into()],
                    )?;
                    locked_until = Some(until);
                }
            }
            audit::record(
                tx,
                &actor,
                "login_failed",
                "user",
                user_id,
                &Changes::new().created("email", &attempt.email),
            )?;
            Ok(Outcome::Refused(match locked_until {
                Some(until) => retry_after(until),
                None => Error::Unauthenticated,
            }))
        }
    }
}

/// Old address failures are only needed for the throttle window.
pub fn purge_failures(tx: &mut crate::Tx<'_>) -> Result<u64> {
    Ok(tx.execute_sql("DELETE FROM login_failures WHERE at < $1", &[(super::now() - IP_WINDOW).into()])?)
}
