//! The append-only audit log: who changed what, when, through which channel, from where.
//! Rows are written in the same transaction as the change they describe, and the
//! database itself refuses to update or delete them (triggers in the migrations), with one
//! exception: [`redact`], for a data-subject erasure, may blank the values of an entry once.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_query::{Expr, ExprTrait, Iden, Order, Query, Value};
use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::db::{DbError, FromRow, Row, Tx};
use crate::error::Result;
use crate::id::Id;
use crate::paging::{Page, PageRequest, id_cursor};
use crate::principal::Principal;

#[derive(Iden)]
pub enum AuditLog {
    Table,
    Id,
    At,
    ActorId,
    Channel,
    Ip,
    RequestId,
    Action,
    RecordType,
    RecordId,
    Changes,
    RedactedAt,
}

/// Field-by-field changes, old → new. Fields whose value did not change are left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes(BTreeMap<String, (Json, Json)>);

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `field` if `old` and `new` differ.
    pub fn field<T: Serialize + PartialEq>(mut self, field: &str, old: &T, new: &T) -> Self {
        if old != new {
            self.0.insert(field.to_owned(), (json!(old), json!(new)));
        }
        self
    }

    /// Records a field of a newly created record (old is null). An empty value (null, "",
    /// [] or {}) says nothing about a new record and is left out: a bulk import writes one
    /// entry per record, and the empty fields made up most of each.
    pub fn created<T: Serialize>(mut self, field: &str, new: &T) -> Self {
        let new = json!(new);
        let empty = match &new {
            Json::Null => true,
            Json::String(s) => s.is_empty(),
            Json::Array(a) => a.is_empty(),
            Json::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            self.0.insert(field.to_owned(), (Json::Null, new));
        }
        self
    }

    /// Records a secret's change without its value.
    pub fn redacted(mut self, field: &str) -> Self {
        self.0.insert(field.to_owned(), (json!("***"), json!("***")));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_json(&self) -> Json {
        Json::Object(self.0.iter().map(|(k, (old, new))| (k.clone(), json!({"old": old, "new": new}))).collect())
    }
}

/// The same shape as [`Changes::to_json`], written straight to text by bulk writers
/// (no second tree of values to build and drop per entry).
impl Serialize for Changes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        #[derive(Serialize)]
        struct Change<'a> {
            old: &'a Json,
            new: &'a Json,
        }
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (field, (old, new)) in &self.0 {
            map.serialize_entry(field, &Change { old, new })?;
        }
        map.end()
    }
}

/// One entry of [`record_many`].
pub struct Entry<'a> {
    pub action: &'a str,
    pub record_type: &'a str,
    pub record_id: Id,
    /// The [`Changes`] as JSON text (`serde_json::to_string(&changes)`), which bulk writers
    /// may work out on another thread.
    pub changes: String,
}

/// Appends many entries by `who` at one instant in one bulk insert (imports).
pub fn record_many(tx: &mut Tx<'_>, who: &Principal, at: DateTime<Utc>, entries: Vec<Entry<'_>>) -> Result<()> {
    let mut rows: Vec<Vec<Value>> = Vec::with_capacity(entries.len());
    for e in entries {
        rows.push(vec![
            Id::new().into(),
            at.into(),
            Value::BigInt(who.actor().map(Id::get)),
            who.channel.as_str().into(),
            Value::String(who.ip.clone()),
            Value::String(who.request_id.clone()),
            e.action.into(),
            e.record_type.into(),
            e.record_id.into(),
            // Text: SQLite stores JSON as text, and PostgreSQL's COPY reads jsonb from it.
            Value::String(Some(e.changes)),
        ]);
    }
    tx.insert_rows(
        "audit_log",
        &["id", "at", "actor_id", "channel", "ip", "request_id", "action", "record_type", "record_id", "changes"],
        &rows,
    )?;
    Ok(())
}

/// Appends one entry for `who` doing `action` (`create`, `update`, `delete`, `restore`,
/// `login`, `login_failed`, …) to a record.
pub fn record(
    tx: &mut Tx<'_>,
    who: &Principal,
    action: &str,
    record_type: &str,
    record_id: Option<Id>,
    changes: &Changes,
) -> Result<()> {
    let insert = Query::insert()
        .into_table(AuditLog::Table)
        .columns([
            AuditLog::Id,
            AuditLog::At,
            AuditLog::ActorId,
            AuditLog::Channel,
            AuditLog::Ip,
            AuditLog::RequestId,
            AuditLog::Action,
            AuditLog::RecordType,
            AuditLog::RecordId,
            AuditLog::Changes,
        ])
        .values_panic([
            Id::new().into(),
            Utc::now().into(),
            who.actor().map(|a| a.get()).into(),
            who.channel.as_str().into(),
            who.ip.clone().into(),
            who.request_id.clone().into(),
            action.into(),
            record_type.into(),
            record_id.map(|r| r.get()).into(),
            Value::Json(Some(Box::new(changes.to_json()))).into(),
        ])
        .to_owned();
    tx.execute(&insert)?;
    Ok(())
}

/// Blanks the values in every entry about the given records (`"***"` for each old and new
/// value that was not null), keeping who did what and when: after a person's data is
/// erased, the log must not be where it survives. Returns the number of entries redacted.
pub fn redact(tx: &mut Tx<'_>, record_type: &str, record_ids: &[Id]) -> Result<u64> {
    let mut redacted = 0;
    for chunk in record_ids.chunks(500) {
        let select = Query::select()
            .columns([AuditLog::Id, AuditLog::Changes])
            .from(AuditLog::Table)
            .and_where(Expr::col(AuditLog::RecordType).eq(record_type))
            .and_where(Expr::col(AuditLog::RecordId).is_in(chunk.iter().map(|id| id.get())))
            .and_where(Expr::col(AuditLog::RedactedAt).is_null())
            .to_owned();
        let entries: Vec<EntryChanges> = tx.fetch_all(&select)?;
        let at = Utc::now();
        for entry in entries {
            let update = Query::update()
                .table(AuditLog::Table)
                .values([
                    (AuditLog::Changes, Value::Json(Some(Box::new(blank_values(entry.changes)))).into()),
                    (AuditLog::RedactedAt, at.into()),
                ])
                .and_where(Expr::col(AuditLog::Id).eq(entry.id.get()))
                .to_owned();
            redacted += tx.execute(&update)?;
        }
    }
    Ok(redacted)
}

struct EntryChanges {
    id: Id,
    changes: Json,
}

impl FromRow for EntryChanges {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(EntryChanges { id: row.get("id")?, changes: row.get("changes")? })
    }
}

fn blank_values(changes: Json) -> Json {
    let blank = |v: &Json| if v.is_null() { Json::Null } else { json!("***") };
    match changes {
        Json::Object(fields) => Json::Object(
            fields
                .into_iter()
                .map(|(field, change)| {
                    let old = blank(change.get("old").unwrap_or(&Json::Null));
                    let new = blank(change.get("new").unwrap_or(&Json::Null));
                    (field, json!({"old": old, "new": new}))
                })
                .collect(),
        ),
        _ => json!({}),
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Id,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Id>,
    pub actor_name: Option<String>,
    /// `ui`, `api`, `cli`, `import` or `job`.
    pub channel: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub record_type: String,
    pub record_id: Option<Id>,
    /// `{"field": {"old": …, "new": …}}`
    #[schema(value_type = Object)]
    pub changes: Json,
}

impl FromRow for AuditEntry {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(AuditEntry {
            id: row.get("id")?,
            at: row.get("at")?,
            actor_id: row.get("actor_id")?,
            actor_name: row.get("actor_name")?,
            channel: row.get("channel")?,
            ip: row.get("ip")?,
            request_id: row.get("request_id")?,
            action: row.get("action")?,
            record_type: row.get("record_type")?,
            record_id: row.get("record_id")?,
            changes: row.get("changes")?,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub record_type: Option<String>,
    pub record_id: Option<Id>,
    pub actor_id: Option<Id>,
    pub action: Option<String>,
}

/// The newest entries first. Needs `audit.log.read`, and reaches what was done by the
/// people within the caller's data scope (a regional manager sees their region's
/// actions; an administrator everything). [`history`] serves a record's own history tab
/// to whoever may read that record.
pub fn list(tx: &mut Tx<'_>, who: &Principal, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>> {
    use crate::identity::users::Users;
    who.require("audit.log.read")?;
    let actors = match who.scope {
        crate::principal::DataScope::All => None,
        _ => Some(
            Query::select()
                .column(Users::Id)
                .from(Users::Table)
                .cond_where(who.scope_condition(Users::Id, Users::BranchId))
                .to_owned(),
        ),
    };
    query(tx, filter, page, actors)
}

/// The history of one record. The caller must already have checked the caller may read
/// the record (its area's get function does that).
pub fn history(tx: &mut Tx<'_>, record_type: &str, record_id: Id, page: &PageRequest) -> Result<Page<AuditEntry>> {
    let filter =
        AuditFilter { record_type: Some(record_type.to_owned()), record_id: Some(record_id), ..Default::default() };
    query(tx, &filter, page, None)
}

/// `actors`, when given, limits entries to those whose actor it selects.
fn query(
    tx: &mut Tx<'_>,
    filter: &AuditFilter,
    page: &PageRequest,
    actors: Option<sea_query::SelectStatement>,
) -> Result<Page<AuditEntry>> {
    use crate::identity::users::Users;
    let mut select = Query::select()
        .columns([
            (AuditLog::Table, AuditLog::Id),
            (AuditLog::Table, AuditLog::At),
            (AuditLog::Table, AuditLog::ActorId),
            (AuditLog::Table, AuditLog::Channel),
            (AuditLog::Table, AuditLog::Ip),
            (AuditLog::Table, AuditLog::RequestId),
            (AuditLog::Table, AuditLog::Action),
            (AuditLog::Table, AuditLog::RecordType),
            (AuditLog::Table, AuditLog::RecordId),
            (AuditLog::Table, AuditLog::Changes),
        ])
        .expr_as(Expr::col((Users::Table, Users::Name)), "actor_name")
        .from(AuditLog::Table)
        .left_join(Users::Table, Expr::col((Users::Table, Users::Id)).equals((AuditLog::Table, AuditLog::ActorId)))
        .order_by((AuditLog::Table, AuditLog::Id), Order::Desc)
        .limit(page.fetch_limit())
        .to_owned();
    if let Some(t) = &filter.record_type {
        select.and_where(Expr::col((AuditLog::Table, AuditLog::RecordType)).eq(t.as_str()));
    }
    if let Some(id) = filter.record_id {
        select.and_where(Expr::col((AuditLog::Table, AuditLog::RecordId)).eq(id.get()));
    }
    if let Some(id) = filter.actor_id {
        select.and_where(Expr::col((AuditLog::Table, AuditLog::ActorId)).eq(id.get()));
    }
    if let Some(a) = &filter.action {
        select.and_where(Expr::col((AuditLog::Table, AuditLog::Action)).eq(a.as_str()));
    }
    if let Some(cursor) = &page.cursor {
        select.and_where(Expr::col((AuditLog::Table, AuditLog::Id)).lt(cursor.id));
    }
    if let Some(actors) = actors {
        select.and_where(Expr::col((AuditLog::Table, AuditLog::ActorId)).in_subquery(actors));
    }
    let rows: Vec<AuditEntry> = tx.fetch_all(&select)?;
    Ok(Page::from_rows(rows, page, |e| id_cursor(e.id)))
}
