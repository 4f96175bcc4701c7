//! The write steps every business record shares (ARCHITECTURE.md, "Data conventions":
//! `id`, `updated_at`, `version`, soft `deleted_at`), written once for every area.
use chrono::Utc;
use sea_query::{Alias, Condition, Expr, ExprTrait, Query, UpdateStatement};

use crate::db::Tx;
use crate::error::{Error, Result};
use crate::id::Id;

/// Runs an `UPDATE … WHERE version = <current>`: when no row matched, someone else changed
/// the record since it was read, and the change is refused with 412.
pub fn update_versioned(tx: &mut Tx<'_>, update: &UpdateStatement, current: i64) -> Result<()> {
    if tx.execute(update)? == 0 {
        return Err(Error::StaleVersion { current });
    }
    Ok(())
}

/// Soft-deletes the live row `id` of `table` if `scope` reaches it; 404 naming `what`
/// otherwise. The row stays, restorable, with `deleted_at` set and its version bumped.
pub fn soft_delete(tx: &mut Tx<'_>, table: &str, id: Id, scope: Condition, what: &'static str) -> Result<()> {
    let col = |name: &str| (Alias::new(table), Alias::new(name));
    let now = Utc::now();
    let q = Query::update()
        .table(Alias::new(table))
        .value(Alias::new("deleted_at"), now)
        .value(Alias::new("updated_at"), now)
        .value(Alias::new("version"), Expr::col(col("version")).add(1))
        .and_where(Expr::col(col("id")).eq(id.get()))
        .and_where(Expr::col(col("deleted_at")).is_null())
        .cond_where(scope)
        .to_owned();
    if tx.execute(&q)? == 0 {
        return Err(Error::NotFound(what));
    }
    Ok(())
}
