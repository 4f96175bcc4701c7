//! Tags in use, with how many records carry each (for autocomplete). Tags themselves are
//! written with their record (`details::write_tags`); counts only include live records
//! within the caller's data scope.
use kernel::db::{Backend, DbError, FromRow, Row};
use kernel::{Error, Principal, Result, Tx};
use sea_query::{Alias, Expr, ExprTrait, Func, LikeExpr, Order, Query};
use serde::Serialize;

use crate::details;
use crate::record::RecordType;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TagCount {
    pub tag: String,
    /// Live records in your data scope carrying the tag.
    pub count: i64,
}

impl FromRow for TagCount {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(TagCount { tag: row.get("tag")?, count: row.get("count")? })
    }
}

/// Tags of `record_type`'s records starting with `prefix` (all when empty), the most used
/// first; at most `limit` (default 20, at most 100).
pub fn list(
    tx: &mut Tx<'_>,
    who: &Principal,
    record_type: &str,
    prefix: Option<&str>,
    limit: Option<u64>,
) -> Result<Vec<TagCount>> {
    let kind = RecordType::parse(record_type).map_err(|m| Error::field("record_type", m))?;
    who.require(kind.read_permission())?;
    let limit = limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Error::field("limit", "must be between 1 and 100"));
    }
    let tag = || (Alias::new("record_tags"), Alias::new("tag"));
    let mut q = Query::select()
        .column(tag())
        .expr_as(Func::count(Expr::col(tag())), Alias::new("count"))
        .from(Alias::new("record_tags"))
        .inner_join(
            kind.table(),
            Expr::col(kind.col("id")).equals((Alias::new("record_tags"), Alias::new("record_id"))),
        )
        .and_where(Expr::col((Alias::new("record_tags"), Alias::new("record_type"))).eq(kind.as_str()))
        .and_where(Expr::col(kind.col("deleted_at")).is_null())
        .cond_where(kind.scope(who))
        .group_by_col(tag())
        .order_by_expr(Func::count(Expr::col(tag())).into(), Order::Desc)
        .order_by(tag(), Order::Asc)
        .limit(limit)
        .to_owned();
    if let Some(p) = prefix.map(str::trim).filter(|p| !p.is_empty()) {
        let p = details::normalise_tag(p).map_err(|m| Error::field("q", m))?;
        // A prefix as an index range: SQLite compares bytes, so [p, p + U+10FFFF) is
        // exactly the tags starting with p; PostgreSQL's LIKE 'p%' uses the
        // text_pattern_ops index whatever the database collation.
        match tx.backend() {
            Backend::Sqlite => {
                q.and_where(Expr::col(tag()).gte(p.clone()));
                q.and_where(Expr::col(tag()).lt(format!("{p}\u{10FFFF}")));
            }
            Backend::Postgres => {
                let escaped: String = p
                    .chars()
                    .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
                    .collect();
                q.and_where(Expr::col(tag()).like(LikeExpr::new(format!("{escaped}%")).escape('\\')));
            }
        }
    }
    Ok(tx.fetch_all(&q)?)
}
