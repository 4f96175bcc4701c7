//! Saved list views: a name and a list's query string (`category_id=..&tag=vip&sort=-updated_at`)
//! for accounts or contacts, private to their owner or shared with everyone who can read
//! that kind of record. The query is checked by the same parser and checks as the list, so
//! a saved view always opens. Only the owner changes or deletes a view; to anyone else a
//! view they may not change does not exist (404).
use chrono::{DateTime, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::check_version;
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::values;
use kernel::{Error, Id, Principal, Result, Tx};
use sea_query::{Condition, Expr, ExprTrait, Iden, Order, Query};
use serde::{Deserialize, Serialize};

use crate::accounts::AccountFilter;
use crate::contacts::ContactFilter;
use crate::record::{RecordType, now};

#[derive(Iden)]
pub enum SavedViews {
    Table,
    Id,
    OwnerId,
    Name,
    RecordType,
    Query,
    Shared,
    CreatedAt,
    UpdatedAt,
    Version,
    DeletedAt,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SavedView {
    pub id: Id,
    /// Who saved it.
    pub owner_id: Option<Id>,
    pub name: String,
    /// `account` or `contact`.
    pub record_type: String,
    /// The list's query string, e.g. `category_id=1&tag=vip&sort=-updated_at`.
    pub query: String,
    /// Whether everyone who can read these records sees the view.
    pub shared: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl FromRow for SavedView {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(SavedView {
            id: row.get("id")?,
            owner_id: row.get("owner_id")?,
            name: row.get("name")?,
            record_type: row.get("record_type")?,
            query: row.get("query")?,
            shared: row.get("shared")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            version: row.get("version")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSavedView {
    pub name: String,
    /// `account` or `contact`.
    pub record_type: String,
    /// The list's query string (without `limit` and `cursor`).
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub shared: bool,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedViewPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub shared: Option<bool>,
    /// The version the client last saw; a mismatch is refused with 412.
    #[serde(default)]
    pub version: Option<i64>,
}

const COLUMNS: [SavedViews; 10] = [
    SavedViews::Id,
    SavedViews::OwnerId,
    SavedViews::Name,
    SavedViews::RecordType,
    SavedViews::Query,
    SavedViews::Shared,
    SavedViews::CreatedAt,
    SavedViews::UpdatedAt,
    SavedViews::Version,
    SavedViews::DeletedAt,
];

/// The record types the caller may read.
fn readable(who: &Principal) -> Vec<&'static str> {
    [RecordType::Account, RecordType::Contact]
        .into_iter()
        .filter(|k| who.can(k.read_permission()))
        .map(RecordType::as_str)
        .collect()
}

fn mine(who: &Principal) -> Condition {
    match who.actor() {
        Some(me) => Condition::all().add(Expr::col((SavedViews::Table, SavedViews::OwnerId)).eq(me.get())),
        None => Condition::all().add(Expr::col((SavedViews::Table, SavedViews::OwnerId)).is_null()),
    }
}

/// Live views the caller sees: their own and shared ones, of record types they read.
fn visible(who: &Principal) -> sea_query::SelectStatement {
    Query::select()
        .columns(COLUMNS.map(|c| (SavedViews::Table, c)))
        .from(SavedViews::Table)
        .and_where(Expr::col((SavedViews::Table, SavedViews::DeletedAt)).is_null())
        .and_where(Expr::col((SavedViews::Table, SavedViews::RecordType)).is_in(readable(who)))
        .cond_where(Condition::any().add(mine(who)).add(Expr::col((SavedViews::Table, SavedViews::Shared)).eq(true)))
        .to_owned()
}

/// Splits `a=1&b=x%20y` into decoded pairs (`+` is a space).
fn pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    fn decode(s: &str) -> Result<String, String> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                    out.push(hex.ok_or_else(|| format!("{s:?} has a bad %-escape"))?);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
    }
    query
        .trim()
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Checks a view's query by parsing it as the list would; errors name `query` and the
/// bad parameter.
fn check_query(tx: &mut Tx<'_>, kind: RecordType, query: &str) -> Result<String> {
    let bad = |e: Error| match e {
        Error::Validation(errors) => Error::Validation(
            errors
                .into_iter()
                .map(|e| kernel::FieldError::new("query", format!("{}: {}", e.field, e.message)))
                .collect(),
        ),
        other => other,
    };
    if query.len() > 4000 {
        return Err(Error::field("query", "is longer than 4000 characters"));
    }
    let pairs = pairs(query).map_err(|m| Error::field("query", m))?;
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k == "limit" || k == "cursor") {
        return Err(Error::field("query", format!("{k}: is paging, not part of a view")));
    }
    match kind {
        RecordType::Account => AccountFilter::from_query(&pairs).and_then(|f| f.check(tx)).map_err(bad)?,
        RecordType::Contact => ContactFilter::from_query(&pairs).and_then(|f| f.check(tx)).map_err(bad)?,
    }
    Ok(query.trim().trim_start_matches('?').to_owned())
}

pub fn list(
    tx: &mut Tx<'_>,
    who: &Principal,
    record_type: Option<&str>,
    page: &PageRequest,
) -> Result<Page<SavedView>> {
    let mut q =
        visible(who).order_by((SavedViews::Table, SavedViews::Id), Order::Asc).limit(page.fetch_limit()).to_owned();
    if let Some(r) = record_type {
        let kind = RecordType::parse(r).map_err(|m| Error::field("record_type", m))?;
        q.and_where(Expr::col((SavedViews::Table, SavedViews::RecordType)).eq(kind.as_str()));
    }
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col((SavedViews::Table, SavedViews::Id)).gt(c.id));
    }
    let rows: Vec<SavedView> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |v| id_cursor(v.id)))
}

pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<SavedView> {
    let q = visible(who).and_where(Expr::col((SavedViews::Table, SavedViews::Id)).eq(id.get())).to_owned();
    tx.fetch_optional(&q)?.ok_or(Error::NotFound("saved view"))
}

/// One of the caller's own live views.
fn own(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<SavedView> {
    let q = visible(who)
        .cond_where(mine(who))
        .and_where(Expr::col((SavedViews::Table, SavedViews::Id)).eq(id.get()))
        .to_owned();
    tx.fetch_optional(&q)?.ok_or(Error::NotFound("saved view"))
}

pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewSavedView) -> Result<SavedView> {
    let kind = RecordType::parse(&input.record_type).map_err(|m| Error::field("record_type", m))?;
    who.require(kind.read_permission())?;
    let mut v = Validator::new();
    let name = v.check("name", values::name(&input.name, 200));
    v.finish()?;
    let query = check_query(tx, kind, &input.query)?;
    let now = now();
    let view = SavedView {
        id: Id::new(),
        owner_id: who.actor(),
        name: name.unwrap_or_default(),
        record_type: kind.as_str().to_owned(),
        query,
        shared: input.shared,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let insert = Query::insert()
        .into_table(SavedViews::Table)
        .columns(COLUMNS)
        .values_panic([
            view.id.into(),
            view.owner_id.map(Id::get).into(),
            view.name.clone().into(),
            view.record_type.clone().into(),
            view.query.clone().into(),
            view.shared.into(),
            now.into(),
            now.into(),
            1i64.into(),
            Option::<DateTime<Utc>>::None.into(),
        ])
        .to_owned();
    tx.execute(&insert)?;
    let changes = Changes::new()
        .created("name", &view.name)
        .created("record_type", &view.record_type)
        .created("query", &view.query)
        .created("shared", &view.shared);
    audit::record(tx, who, "create", "saved_view", Some(view.id), &changes)?;
    Ok(view)
}

pub fn update(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: SavedViewPatch) -> Result<SavedView> {
    let old = own(tx, who, id)?;
    check_version(old.version, patch.version)?;
    let kind = RecordType::parse(&old.record_type).map_err(Error::Internal)?;
    let mut new = old.clone();
    if let Some(n) = &patch.name {
        new.name = values::name(n, 200).map_err(|m| Error::field("name", m))?;
    }
    if let Some(q) = &patch.query {
        new.query = check_query(tx, kind, q)?;
    }
    if let Some(s) = patch.shared {
        new.shared = s;
    }
    let changes = Changes::new().field("name", &old.name, &new.name).field("query", &old.query, &new.query).field(
        "shared",
        &old.shared,
        &new.shared,
    );
    if changes.is_empty() {
        return Ok(old);
    }
    new.updated_at = now();
    new.version = old.version + 1;
    let q = Query::update()
        .table(SavedViews::Table)
        .values([
            (SavedViews::Name, new.name.clone().into()),
            (SavedViews::Query, new.query.clone().into()),
            (SavedViews::Shared, new.shared.into()),
            (SavedViews::UpdatedAt, new.updated_at.into()),
            (SavedViews::Version, new.version.into()),
        ])
        .and_where(Expr::col(SavedViews::Id).eq(id.get()))
        .and_where(Expr::col(SavedViews::Version).eq(old.version))
        .to_owned();
    kernel::records::update_versioned(tx, &q, old.version)?;
    audit::record(tx, who, "update", "saved_view", Some(id), &changes)?;
    Ok(new)
}

pub fn delete(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    own(tx, who, id)?;
    kernel::records::soft_delete(tx, "saved_views", id, mine(who), "saved view")?;
    audit::record(tx, who, "delete", "saved_view", Some(id), &Changes::new())
}

#[cfg(test)]
mod tests {
    use super::pairs;

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            pairs("?tag=vip&q=%E7%8E%8B+fang&sort=-name").unwrap(),
            vec![
                ("tag".to_owned(), "vip".to_owned()),
                ("q".to_owned(), "王 fang".to_owned()),
                ("sort".to_owned(), "-name".to_owned())
            ]
        );
        assert!(pairs("q=%zz").is_err());
        assert!(pairs("").unwrap().is_empty());
    }
}
