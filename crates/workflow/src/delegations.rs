//! Delegation: an approver who is away names a colleague to decide in their place for a
//! period. While it runs the delegate's inbox also holds the approver's pending tasks and
//! the delegate may decide them; the decision keeps the task's `approver_id` and records
//! the delegate as `decided_by` (the API shows it as `on_behalf_of`).
use chrono::{DateTime, Duration, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::users;
use kernel::{Error, Id, Principal, Result, Tx};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delegation {
    pub id: Id,
    /// Whose approvals are delegated.
    pub user_id: Id,
    pub delegate_id: Id,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl FromRow for Delegation {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Delegation {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            delegate_id: row.get("delegate_id")?,
            starts_at: row.get("starts_at")?,
            ends_at: row.get("ends_at")?,
            created_at: row.get("created_at")?,
            revoked_at: row.get("revoked_at")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDelegation {
    pub delegate_id: Option<Id>,
    /// Default: now.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// The SQL condition "`$n` is a delegate of the task's approver at `$m`", for `t.approver_id`.
pub(crate) const DELEGATED: &str = "t.approver_id IN (SELECT d.user_id FROM approval_delegations d \
     WHERE d.delegate_id = $1 AND d.starts_at <= $2 AND d.ends_at > $2 AND d.revoked_at IS NULL)";

/// Is `delegate` standing in for `approver` at `at`?
pub fn stands_in(tx: &mut Tx<'_>, approver: Id, delegate: Id, at: DateTime<Utc>) -> Result<bool> {
    let n: Vec<i64> = tx.query_sql(
        "SELECT COUNT(*) FROM approval_delegations WHERE user_id = $1 AND delegate_id = $2 AND starts_at <= $3 \
         AND ends_at > $3 AND revoked_at IS NULL",
        &[approver.into(), delegate.into(), at.into()],
    )?;
    Ok(n.first().copied().unwrap_or(0) > 0)
}

/// Who stands in for `approver` at `at` (running, unrevoked delegations).
pub fn delegates_of(tx: &mut Tx<'_>, approver: Id, at: DateTime<Utc>) -> Result<Vec<Id>> {
    Ok(tx.query_sql(
        "SELECT delegate_id FROM approval_delegations WHERE user_id = $1 AND starts_at <= $2 AND ends_at > $2 \
         AND revoked_at IS NULL ORDER BY id",
        &[approver.into(), at.into()],
    )?)
}

/// Names a delegate for the caller's approvals for a period (at most a year).
pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewDelegation, now: DateTime<Utc>) -> Result<Delegation> {
    who.require("workflow.approvals.decide")?;
    let Some(me) = who.actor() else { return Err(Error::field("user_id", "the system has no approvals to delegate")) };
    let mut v = Validator::new();
    let starts = micros(input.starts_at.unwrap_or(now));
    match input.delegate_id {
        None => v.add("delegate_id", "is required"),
        Some(d) if d == me => v.add("delegate_id", "is you; name a colleague"),
        Some(d) => {
            if !users::find(tx, d)?.is_some_and(|u| u.active) {
                v.add("delegate_id", "no such active user");
            }
        }
    }
    match input.ends_at {
        None => v.add("ends_at", "is required"),
        Some(e) if e <= starts => v.add("ends_at", "must be after starts_at"),
        Some(e) if e <= now => v.add("ends_at", "is in the past"),
        Some(e) if e - starts > Duration::days(366) => v.add("ends_at", "a delegation lasts at most a year"),
        Some(_) => {}
    }
    v.finish()?;
    let (Some(delegate_id), Some(ends)) = (input.delegate_id, input.ends_at) else {
        return Err(Error::field("delegate_id", "is required"));
    };
    let d = Delegation {
        id: Id::new(),
        user_id: me,
        delegate_id,
        starts_at: starts,
        ends_at: micros(ends),
        created_at: micros(now),
        revoked_at: None,
    };
    tx.execute_sql(
        "INSERT INTO approval_delegations (id, user_id, delegate_id, starts_at, ends_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[d.id.into(), me.into(), delegate_id.into(), d.starts_at.into(), d.ends_at.into(), d.created_at.into()],
    )?;
    let changes = Changes::new()
        .created("delegate_id", &d.delegate_id)
        .created("starts_at", &d.starts_at)
        .created("ends_at", &d.ends_at);
    audit::record(tx, who, "create", "approval_delegation", Some(d.id), &changes)?;
    Ok(d)
}

/// The caller's delegations, given and received, newest first (at most 200).
pub fn list(tx: &mut Tx<'_>, who: &Principal) -> Result<Vec<Delegation>> {
    who.require("workflow.approvals.read")?;
    Ok(tx.query_sql(
        "SELECT id, user_id, delegate_id, starts_at, ends_at, created_at, revoked_at FROM approval_delegations \
         WHERE user_id = $1 OR delegate_id = $1 ORDER BY id DESC LIMIT 200",
        &[who.user_id.into()],
    )?)
}

/// Ends one of the caller's delegations now.
pub fn revoke(tx: &mut Tx<'_>, who: &Principal, id: Id, now: DateTime<Utc>) -> Result<()> {
    who.require("workflow.approvals.decide")?;
    let n = tx.execute_sql(
        "UPDATE approval_delegations SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        &[micros(now).into(), id.into(), who.user_id.into()],
    )?;
    if n == 0 {
        return Err(Error::NotFound("delegation"));
    }
    audit::record(tx, who, "revoke", "approval_delegation", Some(id), &Changes::new())
}

/// A colleague the caller may name as delegate (for pickers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Colleague {
    pub id: Id,
    pub name: String,
    pub email: String,
}

impl FromRow for Colleague {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Colleague { id: row.get("id")?, name: row.get("name")?, email: row.get("email")? })
    }
}

/// The active users other than the caller, by name (at most 1000), for the delegate picker.
pub fn colleagues(tx: &mut Tx<'_>, who: &Principal) -> Result<Vec<Colleague>> {
    who.require("workflow.approvals.decide")?;
    Ok(tx.query_sql(
        "SELECT id, name, email FROM users WHERE active = $1 AND deleted_at IS NULL AND id <> $2 ORDER BY name, id LIMIT 1000",
        &[true.into(), who.user_id.into()],
    )?)
}
