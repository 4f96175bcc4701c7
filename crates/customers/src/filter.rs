//! What account and contact lists share: the sort orders with their keyset cursors, the
//! query-string parsing helpers, the branch-subtree, tag and custom-field conditions.
//!
//! A list is ordered by `(key, id)` and the next page starts after the last row's
//! `(key, id)` pair, a row-value comparison that both backends answer as one range of
//! the `(key, id)` index, so the last page costs what the first does.
use chrono::{DateTime, NaiveDate, Utc};
use kernel::db::Backend;
use kernel::identity::branches::{self, Branches};
use kernel::paging::Cursor;
use kernel::{Error, Id, Result, Tx};
use sea_query::{Alias, Condition, Expr, ExprTrait, Order, Query, SelectStatement};
use serde_json::Value as Json;

use crate::details;
use crate::fields::{self, CustomField};
use crate::phone::Phone;
use crate::record::RecordType;

/// What a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Creation order (ids are time-ordered); the default.
    #[default]
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
}

/// A sort order: `name`, `-name`, `created_at`, `-created_at`, `updated_at`, `-updated_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

pub const SORTS: [&str; 6] = ["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"];

impl Sort {
    pub fn parse(input: &str) -> Result<Sort, String> {
        let s = input.trim();
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let key = match name {
            "id" => SortKey::Id,
            "name" => SortKey::Name,
            "created_at" => SortKey::CreatedAt,
            "updated_at" => SortKey::UpdatedAt,
            _ => return Err(format!("{s:?} is not a sort; use one of {}", SORTS.join(", "))),
        };
        Ok(Sort { key, descending })
    }

    /// The query-string form (`-updated_at`), `None` for the default.
    pub fn as_query(&self) -> Option<String> {
        let name = match self.key {
            SortKey::Id if !self.descending => return None,
            SortKey::Id => "id",
            SortKey::Name => "name",
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
        };
        Some(if self.descending { format!("-{name}") } else { name.to_owned() })
    }

    /// The cursor naming a row as the end of a page.
    pub(crate) fn cursor(&self, id: Id, name: &str, created: DateTime<Utc>, updated: DateTime<Utc>) -> Cursor {
        let key = match self.key {
            SortKey::Id => None,
            SortKey::Name => Some(Json::String(name.to_owned())),
            SortKey::CreatedAt => Some(Json::String(created.to_rfc3339())),
            SortKey::UpdatedAt => Some(Json::String(updated.to_rfc3339())),
        };
        Cursor { key, id: id.get() }
    }

    /// Orders `q` on `kind`'s table and, after a cursor, starts past its row.
    pub(crate) fn apply(&self, q: &mut SelectStatement, kind: RecordType, cursor: Option<&Cursor>) -> Result<()> {
        let order = if self.descending { Order::Desc } else { Order::Asc };
        let column = match self.key {
            SortKey::Id => None,
            SortKey::Name => Some("name"),
            SortKey::CreatedAt => Some("created_at"),
            SortKey::UpdatedAt => Some("updated_at"),
        };
        if let Some(c) = column {
            q.order_by(kind.col(c), order.clone());
        }
        q.order_by(kind.col("id"), order);
        let Some(cursor) = cursor else { return Ok(()) };
        let bad = || Error::field("cursor", "is not a cursor returned by this list (with this sort)");
        let after = |left: Expr, right: Expr| if self.descending { left.lt(right) } else { left.gt(right) };
        let id = Expr::col(kind.col("id"));
        let condition = match (column, cursor.key.as_ref().and_then(Json::as_str)) {
            (None, None) => after(id, Expr::val(cursor.id)),
            (Some("name"), Some(name)) => after(
                Expr::tuple([Expr::col(kind.col("name")), id]),
                Expr::tuple([Expr::val(name.to_owned()), Expr::val(cursor.id)]),
            ),
            (Some(c), Some(at)) => {
                let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?.with_timezone(&Utc);
                after(Expr::tuple([Expr::col(kind.col(c)), id]), Expr::tuple([Expr::val(at), Expr::val(cursor.id)]))
            }
            _ => return Err(bad()),
        };
        q.and_where(condition);
        Ok(())
    }
}

/// How a custom field is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomOp {
    /// `custom.<key>=v`: equal (for a multi-select field: the list contains `v`).
    Eq,
    /// `custom.<key>.gte=v` (number, money, date).
    Gte,
    /// `custom.<key>.lte=v` (number, money, date).
    Lte,
}

/// One `custom.<key>[.gte|.lte]=<value>` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomCondition {
    pub key: String,
    pub op: CustomOp,
    pub value: String,
}

impl CustomCondition {
    /// The query parameter's name, as the client sent it.
    pub fn param(&self) -> String {
        match self.op {
            CustomOp::Eq => format!("custom.{}", self.key),
            CustomOp::Gte => format!("custom.{}.gte", self.key),
            CustomOp::Lte => format!("custom.{}.lte", self.key),
        }
    }

    pub(crate) fn query_pair(&self) -> (String, String) {
        (self.param(), self.value.clone())
    }
}

/// Reads a `custom.<key>[.gte|.lte]` parameter; `None` if `name` is not one.
pub(crate) fn parse_custom(name: &str, value: &str) -> Option<Result<CustomCondition>> {
    let rest = name.strip_prefix("custom.")?;
    let (key, op) = match rest.rsplit_once('.') {
        Some((k, "gte")) => (k, CustomOp::Gte),
        Some((k, "lte")) => (k, CustomOp::Lte),
        _ => (rest, CustomOp::Eq),
    };
    let ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    Some(if ok {
        Ok(CustomCondition { key: key.to_owned(), op, value: value.trim().to_owned() })
    } else {
        Err(Error::field(name, "is not a custom field key"))
    })
}

/// Helpers for `from_query`: each parameter at most once, ids and booleans checked.
pub(crate) fn once<T>(slot: &mut Option<T>, name: &str, value: Result<T, String>) -> Result<()> {
    if slot.is_some() {
        return Err(Error::field(name, "is given more than once"));
    }
    *slot = Some(value.map_err(|m| Error::field(name, m))?);
    Ok(())
}

pub(crate) fn parse_id(value: &str) -> Result<Id, String> {
    value.trim().parse::<i64>().ok().filter(|n| *n > 0).map(Id).ok_or_else(|| format!("{value:?} is not an id"))
}

pub(crate) fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

/// Whether a parameter belongs to paging (`limit`, `cursor`), which the filter ignores.
pub(crate) fn is_paging(name: &str) -> bool {
    matches!(name, "limit" | "cursor")
}

/// The parameters account and contact filters share, borrowed from one of them, so that
/// reading, writing and applying them is written once.
pub(crate) struct Shared<'a> {
    pub category_id: &'a mut Option<Id>,
    pub branch_id: &'a mut Option<Id>,
    pub owner_id: &'a mut Option<Id>,
    pub status: &'a mut Option<String>,
    pub tag: &'a mut Option<String>,
    pub q: &'a mut Option<String>,
    pub custom: &'a mut Vec<CustomCondition>,
    pub sort: &'a mut Sort,
    /// The list's record type (its table and its error messages).
    pub kind: RecordType,
    /// The list's check of a status value.
    pub check_status: fn(&str) -> Result<String, String>,
}

/// A query-string pair a filter writes when its value is set.
pub(crate) type Param = (&'static str, Option<String>);

impl Shared<'_> {
    /// Reads a list's query string. `own` reads the list's own parameters (`None`: the
    /// name is not one of them); the shared ones, paging's (skipped) and `custom.<key>`
    /// follow. An unknown parameter is an error naming it.
    pub(crate) fn read_query(
        self,
        pairs: &[(String, String)],
        mut own: impl FnMut(&str, &str) -> Option<Result<()>>,
    ) -> Result<()> {
        let mut sort = None;
        for (name, value) in pairs {
            let value = value.as_str();
            if let Some(done) = own(name, value) {
                done?;
                continue;
            }
            match name.as_str() {
                "category_id" => once(self.category_id, name, parse_id(value))?,
                "branch_id" => once(self.branch_id, name, parse_id(value))?,
                "owner_id" => once(self.owner_id, name, parse_id(value))?,
                "status" => once(self.status, name, (self.check_status)(value))?,
                "tag" => once(self.tag, name, details::normalise_tag(value))?,
                "q" => once(self.q, name, Ok(value.to_owned()))?,
                "sort" => once(&mut sort, name, Sort::parse(value))?,
                n if is_paging(n) => {}
                n => match parse_custom(n, value) {
                    Some(c) => self.custom.push(c?),
                    None => return Err(Error::field(n, format!("is not a filter of {}", self.kind.table_name()))),
                },
            }
        }
        *self.sort = sort.unwrap_or_default();
        Ok(())
    }

    /// The query-string pairs `read_query` reads back: `first` (the list's own leading
    /// parameters), the shared ones up to `tag`, `middle`, then `q`, `sort` and the custom
    /// conditions.
    pub(crate) fn to_query<const F: usize, const M: usize>(
        &self,
        first: [Param; F],
        middle: [Param; M],
    ) -> Vec<(String, String)> {
        let shared: [Param; 5] = [
            ("category_id", self.category_id.map(|i| i.to_string())),
            ("branch_id", self.branch_id.map(|i| i.to_string())),
            ("owner_id", self.owner_id.map(|i| i.to_string())),
            ("status", self.status.clone()),
            ("tag", self.tag.clone()),
        ];
        let last: [Param; 2] = [("q", self.q.clone()), ("sort", self.sort.as_query())];
        let set = first.into_iter().chain(shared).chain(middle).chain(last);
        let mut out: Vec<(String, String)> = set.filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))).collect();
        out.extend(self.custom.iter().map(CustomCondition::query_pair));
        out
    }

    /// The shared conditions but search and the custom fields, on the list's table.
    pub(crate) fn conditions(&self, tx: &mut Tx<'_>) -> Result<Condition> {
        let kind = self.kind;
        let mut c = Condition::all();
        if let Some(id) = *self.category_id {
            c = c.add(Expr::col(kind.col("category_id")).eq(id.get()));
        }
        if let Some(b) = *self.branch_id {
            c = c.add(branch_subtree(tx, kind, b)?);
        }
        if let Some(o) = *self.owner_id {
            c = c.add(Expr::col(kind.col("owner_id")).eq(o.get()));
        }
        if let Some(s) = self.status.as_deref() {
            let s = (self.check_status)(s).map_err(|m| Error::field("status", m))?;
            c = c.add(Expr::col(kind.col("status")).eq(s));
        }
        if let Some(t) = self.tag.as_deref() {
            let t = details::normalise_tag(t).map_err(|m| Error::field("tag", m))?;
            c = c.add(tag_condition(kind, &t));
        }
        Ok(c)
    }

    /// The custom-field conditions (checked against the fields of the filter's category).
    pub(crate) fn custom_conditions(&self, tx: &mut Tx<'_>) -> Result<Condition> {
        custom_conditions(tx, self.kind, *self.category_id, self.custom)
    }
}

/// Records in branch `branch_id` or below it (branches carry materialised paths).
pub(crate) fn branch_subtree(tx: &mut Tx<'_>, kind: RecordType, branch_id: Id) -> Result<Condition> {
    let branch = branches::find(tx, branch_id)?.ok_or_else(|| Error::field("branch_id", "no such branch"))?;
    let subtree = Query::select()
        .column(Branches::Id)
        .from(Branches::Table)
        .and_where(Expr::col(Branches::Path).like(format!("{}%", branch.path)))
        .to_owned();
    Ok(Condition::all().add(Expr::col(kind.col("branch_id")).in_subquery(subtree)))
}

/// Records carrying `tag` (normalised like stored tags), through the tag index.
pub(crate) fn tag_condition(kind: RecordType, tag: &str) -> Condition {
    let tagged = Query::select()
        .column(Alias::new("record_id"))
        .from(Alias::new("record_tags"))
        .and_where(Expr::col(Alias::new("tag")).eq(tag))
        .and_where(Expr::col(Alias::new("record_type")).eq(kind.as_str()))
        .to_owned();
    Condition::all().add(Expr::col(kind.col("id")).in_subquery(tagged))
}

/// The conditions for `custom.*` parameters. A key must be a live field of `kind`'s
/// records (of `category` when the list is limited to one); the value is checked against
/// the field's type. Errors name the parameter.
pub(crate) fn custom_conditions(
    tx: &mut Tx<'_>,
    kind: RecordType,
    category: Option<Id>,
    conditions: &[CustomCondition],
) -> Result<Condition> {
    let mut out = Condition::all();
    if conditions.is_empty() {
        return Ok(out);
    }
    let defs = fields::all_definitions(tx, kind)?;
    let backend = tx.backend();
    let mut v = kernel::error::Validator::new();
    for c in conditions {
        let param = c.param();
        let field = defs.iter().find(|f| f.key == c.key && category.is_none_or(|cat| f.category_id == cat));
        let Some(field) = field else {
            v.add(&param, format!("{:?} is not a custom field of {}s", c.key, kind.as_str()));
            continue;
        };
        match custom_expr(backend, kind, field, c) {
            Ok(e) => out = out.add(e),
            Err(m) => v.add(&param, m),
        }
    }
    v.finish()?;
    Ok(out)
}

fn custom_expr(backend: Backend, kind: RecordType, field: &CustomField, c: &CustomCondition) -> Result<Expr, String> {
    let col = || Expr::col(kind.col("custom"));
    let key = || Expr::val(c.key.clone());
    let path = |suffix: &str| Expr::val(format!("$.{}{suffix}", c.key));
    let op = match c.op {
        CustomOp::Eq => "=",
        CustomOp::Gte => ">=",
        CustomOp::Lte => "<=",
    };
    let ordered = matches!(field.field_type.as_str(), "number" | "money" | "date");
    if c.op != CustomOp::Eq && !ordered {
        return Err(format!("a {} field can only be compared for equality", field.field_type));
    }
    let sqlite = backend == Backend::Sqlite;
    let text_eq = |value: String| {
        if sqlite {
            Expr::cust_with_exprs("json_extract(?, ?) = ?", [col(), path(""), Expr::val(value)])
        } else {
            Expr::cust_with_exprs("($1 ->> ($2)::text) = $3", [col(), key(), Expr::val(value)])
        }
    };
    let number = |value: &str| -> Result<f64, String> {
        value.parse::<f64>().ok().filter(|n| n.is_finite()).ok_or_else(|| format!("{value:?} is not a number"))
    };
    Ok(match field.field_type.as_str() {
        "text" | "long_text" | "url" => text_eq(c.value.clone()),
        // Stored as E.164: a number typed in any common format finds it (national
        // numbers are read as Chinese, the default region).
        "phone" => text_eq(Phone::parse(&c.value, "CN").map_or_else(|_| c.value.clone(), |p| p.e164().to_owned())),
        "email" => text_eq(c.value.to_lowercase()),
        "select" => text_eq(c.value.clone()),
        "boolean" => {
            let b = parse_bool(&c.value)?;
            if sqlite {
                Expr::cust_with_exprs("json_extract(?, ?) = ?", [col(), path(""), Expr::val(i64::from(b))])
            } else {
                Expr::cust_with_exprs("($1 ->> ($2)::text) = $3", [col(), key(), Expr::val(b.to_string())])
            }
        }
        "multi_select" => {
            if sqlite {
                Expr::cust_with_exprs(
                    "EXISTS (SELECT 1 FROM json_each(?, ?) WHERE json_each.value = ?)",
                    [col(), path(""), Expr::val(c.value.clone())],
                )
            } else {
                Expr::cust_with_exprs(
                    "($1 -> ($2)::text) @> jsonb_build_array(($3)::text)",
                    [col(), key(), Expr::val(c.value.clone())],
                )
            }
        }
        "number" => {
            let n = number(&c.value)?;
            if sqlite {
                Expr::cust_with_exprs(format!("json_extract(?, ?) {op} ?"), [col(), path(""), Expr::val(n)])
            } else {
                Expr::cust_with_exprs(
                    format!(
                        "(CASE WHEN jsonb_typeof($1 -> ($2)::text) = 'number' THEN ($1 ->> ($2)::text)::float8 END) {op} ($3)::float8"
                    ),
                    [col(), key(), Expr::val(n)],
                )
            }
        }
        "money" => {
            let minor = crate::details::parse_money(c.value.trim_start_matches('-'))?;
            let n = minor as f64 / 100.0 * if c.value.starts_with('-') { -1.0 } else { 1.0 };
            if sqlite {
                Expr::cust_with_exprs(
                    format!("CAST(json_extract(?, ?) AS REAL) {op} ?"),
                    [col(), path(".amount"), Expr::val(n)],
                )
            } else {
                Expr::cust_with_exprs(
                    format!("((($1 -> ($2)::text) ->> 'amount')::float8) {op} ($3)::float8"),
                    [col(), key(), Expr::val(n)],
                )
            }
        }
        "date" => {
            let d = NaiveDate::parse_from_str(c.value.trim(), "%Y-%m-%d")
                .map_err(|_| format!("{:?} is not a date (YYYY-MM-DD)", c.value))?;
            let d = d.format("%Y-%m-%d").to_string();
            if sqlite {
                Expr::cust_with_exprs(format!("json_extract(?, ?) {op} ?"), [col(), path(""), Expr::val(d)])
            } else {
                Expr::cust_with_exprs(format!("($1 ->> ($2)::text) {op} $3"), [col(), key(), Expr::val(d)])
            }
        }
        other => return Err(format!("a {other} field cannot be filtered")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts() {
        assert_eq!(Sort::parse("-updated_at"), Ok(Sort { key: SortKey::UpdatedAt, descending: true }));
        assert_eq!(Sort::parse("name").unwrap().as_query().as_deref(), Some("name"));
        assert_eq!(Sort::parse("id").unwrap().as_query(), None);
        assert!(Sort::parse("colour").is_err());
        assert!(Sort::parse("--name").is_err());
    }

    #[test]
    fn custom_parameters() {
        let c = parse_custom("custom.stores.gte", "5").unwrap().unwrap();
        assert_eq!((c.key.as_str(), c.op), ("stores", CustomOp::Gte));
        assert_eq!(c.param(), "custom.stores.gte");
        assert_eq!(parse_custom("custom.tier", " gold ").unwrap().unwrap().value, "gold");
        assert!(parse_custom("custom.Bad Key", "x").unwrap().is_err());
        assert!(parse_custom("status", "x").is_none());
    }
}
