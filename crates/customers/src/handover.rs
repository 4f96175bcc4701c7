//! Handover: everything a departing rep owns (accounts, contacts, open tasks — and the
//! kinds later areas register) goes to another user in one action, with a dry run that
//! only counts.
//!
//! What moves is the rows of `handover_kinds (kind, table_name, owner_column,
//! branch_column, open_condition)`; an area adds `opportunities` or `tickets` there in its
//! own migration. Only rows within the caller's data scope move. Activities stay authored
//! by the old rep; the new owner sees them through the account's timeline.
use std::collections::BTreeMap;

use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::{branches, users};
use kernel::{DataScope, Error, Id, Principal, Result, Tx};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::record::now;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHandover {
    pub from_user_id: Id,
    pub to_user_id: Id,
    /// Only count what would move; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Handover {
    pub from_user_id: Id,
    pub to_user_id: Id,
    pub dry_run: bool,
    /// Records moved (or, in a dry run, that would move) per kind: `accounts`,
    /// `contacts`, `open_tasks`, and whatever later areas register.
    #[schema(value_type = Object)]
    pub counts: BTreeMap<String, u64>,
}

struct Kind {
    kind: String,
    table: String,
    owner: String,
    branch: String,
    open_condition: Option<String>,
}

impl FromRow for Kind {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Kind {
            kind: row.get("kind")?,
            table: row.get("table_name")?,
            owner: row.get("owner_column")?,
            branch: row.get("branch_column")?,
            open_condition: row.get("open_condition")?,
        })
    }
}

fn identifier(name: &str) -> Result<Alias> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        Ok(Alias::new(name))
    } else {
        Err(Error::Internal(format!("{name:?} is not a plain identifier")))
    }
}

/// Whether a user's branch is within the caller's reach.
fn reaches_user(tx: &mut Tx<'_>, who: &Principal, branch_id: Id) -> Result<bool> {
    Ok(match who.scope {
        DataScope::All => true,
        // A rep with scope "own" cannot hand anybody's work over.
        DataScope::Own => false,
        DataScope::Branch => branches::find(tx, branch_id)?.is_some_and(|b| b.path.starts_with(&who.branch_path)),
    })
}

struct RowId(i64);

impl FromRow for RowId {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(RowId(row.get("id")?))
    }
}

/// Moves (or with `dry_run` counts) everything `from_user_id` owns within the caller's
/// scope to `to_user_id`. Needs `customers.handover`. Refused: the same user twice, an
/// unknown or inactive target, a user outside the caller's branches. Audited once for
/// the handover (on the departing user, with the counts) and once per moved record.
#[instrument(skip_all, fields(handover.from = %input.from_user_id, handover.to = %input.to_user_id))]
pub fn handover(tx: &mut Tx<'_>, who: &Principal, input: NewHandover) -> Result<Handover> {
    who.require("customers.handover")?;
    let mut v = Validator::new();
    if input.from_user_id == input.to_user_id {
        v.add("to_user_id", "must be another user than from_user_id");
    }
    match users::find(tx, input.from_user_id)? {
        Some(u) if reaches_user(tx, who, u.branch_id)? => {}
        Some(_) => v.add("from_user_id", "is outside the branches you reach"),
        None => v.add("from_user_id", "no such user"),
    }
    match users::find(tx, input.to_user_id)? {
        Some(u) if !u.active => v.add("to_user_id", "is not an active user"),
        Some(u) if reaches_user(tx, who, u.branch_id)? => {}
        Some(_) => v.add("to_user_id", "is outside the branches you reach"),
        None => v.add("to_user_id", "no such user"),
    }
    v.finish()?;
    let kinds: Vec<Kind> = tx.query_sql(
        "SELECT kind, table_name, owner_column, branch_column, open_condition FROM handover_kinds ORDER BY position, kind",
        &[],
    )?;
    let mut counts = BTreeMap::new();
    let at = now();
    for k in kinds {
        let (table, owner, branch) = (identifier(&k.table)?, identifier(&k.owner)?, identifier(&k.branch)?);
        let col = |c: &Alias| (table.clone(), c.clone());
        let mut q = Query::select()
            .column(col(&Alias::new("id")))
            .from(table.clone())
            .and_where(Expr::col(col(&owner)).eq(input.from_user_id.get()))
            .and_where(Expr::col(col(&Alias::new("deleted_at"))).is_null())
            .cond_where(who.scope_condition(col(&owner), col(&branch)))
            .to_owned();
        if let Some(cond) = &k.open_condition {
            // From our own migrations, never from a request.
            q.and_where(Expr::cust(cond.clone()));
        }
        let ids: Vec<RowId> = tx.fetch_all(&q)?;
        counts.insert(k.kind.clone(), ids.len() as u64);
        if input.dry_run || ids.is_empty() {
            continue;
        }
        for chunk in ids.chunks(500) {
            let update = Query::update()
                .table(table.clone())
                .value(owner.clone(), input.to_user_id.get())
                .value(Alias::new("updated_at"), at)
                .value(Alias::new("version"), Expr::col(col(&Alias::new("version"))).add(1))
                .and_where(Expr::col(col(&Alias::new("id"))).is_in(chunk.iter().map(|r| r.0)))
                .to_owned();
            tx.execute(&update)?;
        }
        let record_type = match k.kind.as_str() {
            "accounts" => "account".to_owned(),
            "contacts" => "contact".to_owned(),
            "open_tasks" => "task".to_owned(),
            other => other.trim_end_matches('s').to_owned(),
        };
        for r in &ids {
            let changes = Changes::new().field(&k.owner, &input.from_user_id, &input.to_user_id);
            audit::record(tx, who, "handover", &record_type, Some(Id(r.0)), &changes)?;
        }
    }
    if !input.dry_run {
        let changes = Changes::new().field("owner", &input.from_user_id, &input.to_user_id).created("counts", &counts);
        audit::record(tx, who, "handover", "user", Some(input.from_user_id), &changes)?;
    }
    Ok(Handover { from_user_id: input.from_user_id, to_user_id: input.to_user_id, dry_run: input.dry_run, counts })
}
