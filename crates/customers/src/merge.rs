//! Merging duplicate accounts or contacts into one, and undoing a merge (docs/duplicates.md).
//!
//! * Field by field: every column of the record table is a field (found by asking the
//!   database, so columns later migrations add are merged too), except the record's own
//!   bookkeeping and placement ([`NOT_MERGED`]); columns that belong together move
//!   together ([`GROUPS`]); custom field values are merged key by key (`custom.<key>`).
//!   The kept record's value wins by default, else the first
//!   non-empty value of the merged records in the order given; `fields` overrides that.
//!   A winning value is copied inside the database (`SET c = (SELECT c FROM … WHERE id =
//!   winner)`), so its type never passes through Rust.
//! * Every reference to a merged-away record moves to the kept one. The references are
//!   rows of `merge_references (record_type, table_name, column_name)`: a later area
//!   registers `opportunities.account_id` in its own migration, with no change here.
//! * Merged-away records are soft-deleted with `merged_into` set; reads of them redirect
//!   ([`redirect`]).
//! * The merge row keeps a snapshot — the kept record's old values (as text), the moved
//!   rows with their old reference, the versions the merge left — so [`undo`] restores
//!   exactly what was there, and refuses (409) once any of it has changed since.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{Backend, DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::{Error, Id, Principal, Result, Tx};
use sea_query::{Expr, ExprTrait, Query, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use tracing::instrument;

use crate::record::{RecordType, now};
use crate::{duplicates, search};

/// Columns that are not merged: identity, bookkeeping, placement (branch and owner stay
/// the kept record's, which the caller's scope already reaches) and privacy markers.
const NOT_MERGED: &[&str] =
    &["id", "branch_id", "owner_id", "created_at", "updated_at", "version", "deleted_at", "merged_into", "erased_at"];

/// Fields made of several columns, chosen together: (field, columns; the first decides
/// whether the field is empty).
const GROUPS: &[(&str, &[&str])] =
    &[("phone", &["phone_e164", "phone_raw"]), ("do_not_contact", &["do_not_contact", "do_not_contact_reason"])];

/// The JSON column of custom field values, merged key by key as fields `custom.<key>`.
const CUSTOM: &str = "custom";

/// Whether a custom value counts as empty for the default choice.
fn json_empty(value: Option<&Json>) -> bool {
    match value {
        None | Some(Json::Null) => true,
        Some(Json::String(s)) => s.trim().is_empty(),
        Some(Json::Array(a)) => a.is_empty(),
        Some(Json::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// Most records merged into one at a time.
const MAX_MERGED: usize = 20;

/// A column of a table, as the database describes it.
#[derive(Debug, Clone)]
pub(crate) struct ColumnInfo {
    pub name: String,
    /// The type name to cast text back to on PostgreSQL (`udt_name`).
    pub pg_type: String,
    pub not_null: bool,
    /// The column's default as an SQL expression, if it has one.
    pub default: Option<String>,
}

impl FromRow for ColumnInfo {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let not_null: i64 = row.get("not_null")?;
        Ok(ColumnInfo {
            name: row.get("name")?,
            pg_type: row.get("type")?,
            not_null: not_null != 0,
            default: row.get("default_sql")?,
        })
    }
}

/// The columns of `table`, in order.
pub(crate) fn columns(tx: &mut Tx<'_>, table: &str) -> Result<Vec<ColumnInfo>> {
    let sql = match tx.backend() {
        Backend::Sqlite => {
            "SELECT name, type, \"notnull\" AS not_null, dflt_value AS default_sql FROM pragma_table_info($1) ORDER BY cid"
        }
        Backend::Postgres => {
            "SELECT column_name::text AS name, udt_name::text AS type, \
             CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS not_null, column_default::text AS default_sql \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
             ORDER BY ordinal_position"
        }
    };
    Ok(tx.query_sql(sql, &[table.into()])?)
}

/// A name safe to put into SQL as an identifier (from our own tables, never from a request).
fn identifier(name: &str) -> Result<&str> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        Ok(name)
    } else {
        Err(Error::Internal(format!("{name:?} is not a plain identifier")))
    }
}

/// `$n` on SQLite (column affinity converts text), `CAST(CAST($n AS TEXT) AS type)` on
/// PostgreSQL: a value read as text written back to its own type.
fn typed_param(backend: Backend, n: usize, column: &ColumnInfo) -> String {
    match backend {
        Backend::Sqlite => format!("${n}"),
        Backend::Postgres => format!("CAST(CAST(${n} AS TEXT) AS {})", column.pg_type),
    }
}

/// A mergeable field: its name and its columns.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    columns: Vec<ColumnInfo>,
}

fn fields_of(all: &[ColumnInfo]) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    for c in all.iter().filter(|c| !NOT_MERGED.contains(&c.name.as_str()) && c.name != CUSTOM) {
        let group = GROUPS.iter().find(|(_, cols)| cols.contains(&c.name.as_str()));
        let name = group.map_or(c.name.as_str(), |(g, _)| g);
        match out.iter_mut().find(|f| f.name == name) {
            Some(f) => f.columns.push(c.clone()),
            None => out.push(Field { name: name.to_owned(), columns: vec![c.clone()] }),
        }
    }
    out
}

/// Whether a value (read as text) counts as empty for the default choice.
fn is_empty(column: &str, value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None | Some("") | Some("{}") | Some("[]") => true,
        Some("0") | Some("false") | Some("f") => column == "do_not_contact",
        Some(_) => false,
    }
}

/// One record's columns read as text (`c0`, `c1`, … in the order asked).
struct TextRow {
    id: Id,
    values: Vec<Option<String>>,
}

impl FromRow for TextRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let mut values = Vec::new();
        loop {
            match row.get::<Option<String>>(&format!("c{}", values.len())) {
                Ok(v) => values.push(v),
                Err(DbError::Column { message, .. }) if message == "no such column" => break,
                Err(e) => return Err(e),
            }
        }
        Ok(TextRow { id: row.get("id")?, values })
    }
}

fn read_text(tx: &mut Tx<'_>, kind: RecordType, columns: &[ColumnInfo], ids: &[Id]) -> Result<Vec<TextRow>> {
    let list: Vec<String> =
        columns.iter().enumerate().map(|(i, c)| format!("CAST({} AS TEXT) AS c{i}", c.name)).collect();
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id{}{} FROM {} WHERE id IN ({})",
        if list.is_empty() { "" } else { ", " },
        list.join(", "),
        kind.table_name(),
        placeholders.join(", ")
    );
    let params: Vec<Value> = ids.iter().map(|i| Value::from(i.get())).collect();
    Ok(tx.query_sql(&sql, &params)?)
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMerge {
    /// `account` or `contact`.
    pub record_type: String,
    /// The record that stays.
    pub keep_id: Id,
    /// The records merged into it (soft-deleted, redirecting to it).
    pub merge_ids: Vec<Id>,
    /// Field → the id of the record whose value wins. Default: the kept record's value,
    /// else the first non-empty one in `merge_ids` order. `phone` moves the E.164 and the
    /// typed phone together; custom fields are chosen one by one as `custom.<key>`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<BTreeMap<String, Id>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Merge {
    pub id: Id,
    pub record_type: String,
    pub keep_id: Id,
    pub merged_ids: Vec<Id>,
    /// The fields whose value came from a merged record: field → that record's id.
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Id>,
    /// Rows moved to the kept record, by `table.column`.
    #[schema(value_type = Object)]
    pub moved: BTreeMap<String, u64>,
    pub created_at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Snapshot {
    /// Column → the kept record's value before the merge (text), for changed columns.
    old_values: BTreeMap<String, Option<String>>,
    /// Column → the value the merge wrote (text), for the audit of an undo.
    new_values: BTreeMap<String, Option<String>>,
    keep_version: i64,
    merged_versions: BTreeMap<String, i64>,
    moves: Vec<Move>,
    fields: BTreeMap<String, Id>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Move {
    table: String,
    column: String,
    versioned: bool,
    /// (row id, its old reference).
    rows: Vec<(i64, i64)>,
}

struct Reference {
    table: String,
    column: String,
}

impl FromRow for Reference {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Reference { table: row.get("table_name")?, column: row.get("column_name")? })
    }
}

struct Moved {
    id: i64,
    old: i64,
}

impl FromRow for Moved {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Moved { id: row.get("id")?, old: row.get("old")? })
    }
}

/// The live, unmerged records among `ids` that the caller's scope reaches: id → version.
fn live_in_scope(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, ids: &[Id]) -> Result<BTreeMap<Id, i64>> {
    let q = Query::select()
        .columns([kind.col("id"), kind.col("version")])
        .from(kind.table())
        .and_where(Expr::col(kind.col("id")).is_in(ids.iter().map(|i| i.get())))
        .and_where(Expr::col(kind.col("deleted_at")).is_null())
        .and_where(Expr::col(kind.col("merged_into")).is_null())
        .cond_where(kind.scope(who))
        .to_owned();
    let rows: Vec<IdVersion> = tx.fetch_all(&q)?;
    Ok(rows.into_iter().map(|r| (r.id, r.version)).collect())
}

struct IdVersion {
    id: Id,
    version: i64,
}

impl FromRow for IdVersion {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(IdVersion { id: row.get("id")?, version: row.get("version")? })
    }
}

fn in_list(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Merges `merge_ids` into `keep_id`. Needs `customers.merge`; every record must be live
/// and within the caller's scope.
#[instrument(skip_all, fields(merge.keep = %input.keep_id))]
pub fn merge(tx: &mut Tx<'_>, who: &Principal, input: NewMerge) -> Result<Merge> {
    who.require("customers.merge")?;
    let mut v = Validator::new();
    let kind = v.check("record_type", RecordType::parse(&input.record_type));
    let mut merge_ids: Vec<Id> = Vec::new();
    for id in &input.merge_ids {
        if *id == input.keep_id {
            v.add("merge_ids", "must not contain keep_id");
        } else if merge_ids.contains(id) {
            v.add("merge_ids", format!("{id} is listed twice"));
        } else {
            merge_ids.push(*id);
        }
    }
    if input.merge_ids.is_empty() {
        v.add("merge_ids", "name at least one record to merge");
    }
    if input.merge_ids.len() > MAX_MERGED {
        v.add("merge_ids", format!("at most {MAX_MERGED} records at a time"));
    }
    v.finish()?;
    let Some(kind) = kind else { return Err(Error::field("record_type", "must be account or contact")) };
    let mut all = vec![input.keep_id];
    all.extend(&merge_ids);
    let live = live_in_scope(tx, who, kind, &all)?;
    let mut v = Validator::new();
    if !live.contains_key(&input.keep_id) {
        v.add("keep_id", format!("no such {} (or it was merged or deleted)", kind.as_str()));
    }
    for id in &merge_ids {
        if !live.contains_key(id) {
            v.add("merge_ids", format!("no such {} {id} (or it was merged or deleted)", kind.as_str()));
        }
    }
    let table_columns = columns(tx, kind.table_name())?;
    let fields = fields_of(&table_columns);
    let chosen = input.fields.clone().unwrap_or_default();
    let custom_column = table_columns.iter().find(|c| c.name == CUSTOM).cloned();
    for (name, winner) in &chosen {
        let custom_key = name.strip_prefix("custom.").is_some_and(|k| !k.is_empty()) && custom_column.is_some();
        if !custom_key && !fields.iter().any(|f| &f.name == name) {
            v.add(&format!("fields.{name}"), "no such field");
        } else if !all.contains(winner) {
            v.add(&format!("fields.{name}"), "must name keep_id or one of merge_ids");
        }
    }
    v.finish()?;

    // Field by field: the winner of each.
    let merge_columns: Vec<ColumnInfo> = fields.iter().flat_map(|f| f.columns.clone()).collect();
    let rows = read_text(tx, kind, &merge_columns, &all)?;
    let by_id: BTreeMap<Id, &TextRow> = rows.iter().map(|r| (r.id, r)).collect();
    let value = |id: Id, column: &str| -> Option<String> {
        let i = merge_columns.iter().position(|c| c.name == column)?;
        by_id.get(&id).and_then(|r| r.values.get(i).cloned().flatten())
    };
    let mut winners: BTreeMap<String, Id> = BTreeMap::new();
    let mut old_values: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut new_values: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut changes = Changes::new();
    let mut sets: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    for f in &fields {
        let first = &f.columns[0].name;
        let winner = chosen.get(&f.name).copied().unwrap_or_else(|| {
            if !is_empty(first, value(input.keep_id, first).as_deref()) {
                input.keep_id
            } else {
                merge_ids
                    .iter()
                    .copied()
                    .find(|m| !is_empty(first, value(*m, first).as_deref()))
                    .unwrap_or(input.keep_id)
            }
        });
        if winner == input.keep_id {
            continue;
        }
        let differs = f.columns.iter().any(|c| value(winner, &c.name) != value(input.keep_id, &c.name));
        if !differs {
            continue;
        }
        winners.insert(f.name.clone(), winner);
        for c in &f.columns {
            let old = value(input.keep_id, &c.name);
            changes = changes.field(&c.name, &old, &value(winner, &c.name));
            old_values.insert(c.name.clone(), old);
            new_values.insert(c.name.clone(), value(winner, &c.name));
            params.push(winner.get().into());
            sets.push(format!(
                "{col} = (SELECT s.{col} FROM {table} s WHERE s.id = ${n})",
                col = identifier(&c.name)?,
                table = kind.table_name(),
                n = params.len()
            ));
        }
    }
    // Custom field values, key by key: the kept value, else the first non-empty one.
    if let Some(column) = &custom_column {
        let maps: BTreeMap<Id, serde_json::Map<String, Json>> = all
            .iter()
            .map(|id| {
                let text = read_text(tx, kind, std::slice::from_ref(column), &[*id]);
                let parsed =
                    text.ok().and_then(|rows| rows.into_iter().next()).and_then(|r| r.values.into_iter().next());
                let map = parsed.flatten().and_then(|t| serde_json::from_str::<Json>(&t).ok());
                (
                    *id,
                    match map {
                        Some(Json::Object(m)) => m,
                        _ => serde_json::Map::new(),
                    },
                )
            })
            .collect();
        let old = maps.get(&input.keep_id).cloned().unwrap_or_default();
        let mut keys: Vec<String> = Vec::new();
        for id in &all {
            for k in maps.get(id).map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        let mut merged = serde_json::Map::new();
        for k in keys {
            let field = format!("custom.{k}");
            let of = |id: Id| maps.get(&id).and_then(|m| m.get(&k));
            let winner = chosen.get(&field).copied().unwrap_or_else(|| {
                if !json_empty(of(input.keep_id)) {
                    input.keep_id
                } else {
                    merge_ids.iter().copied().find(|m| !json_empty(of(*m))).unwrap_or(input.keep_id)
                }
            });
            if let Some(v) = of(winner) {
                merged.insert(k.clone(), v.clone());
            }
            if winner != input.keep_id && of(winner) != of(input.keep_id) {
                winners.insert(field, winner);
            }
        }
        if merged != old {
            let old_text = Json::Object(old.clone()).to_string();
            let new_text = Json::Object(merged.clone()).to_string();
            changes = changes.field(CUSTOM, &old, &merged);
            old_values.insert(CUSTOM.to_owned(), Some(old_text));
            new_values.insert(CUSTOM.to_owned(), Some(new_text.clone()));
            params.push(new_text.into());
            sets.push(format!("{CUSTOM} = {}", typed_param(tx.backend(), params.len(), column)));
        }
    }
    let at = now();
    params.push(at.into());
    sets.push(format!("updated_at = ${}", params.len()));
    sets.push("version = version + 1".to_owned());
    params.push(input.keep_id.get().into());
    let sql = format!("UPDATE {} SET {} WHERE id = ${}", kind.table_name(), sets.join(", "), params.len());
    tx.execute_sql(&sql, &params)?;
    let keep_version = live.get(&input.keep_id).copied().unwrap_or_default() + 1;

    // Every reference to a merged record moves to the kept one.
    let references: Vec<Reference> = tx.query_sql(
        "SELECT table_name, column_name FROM merge_references WHERE record_type = $1 ORDER BY table_name, column_name",
        &[kind.as_str().into()],
    )?;
    let mut moves = Vec::new();
    let mut moved_counts = BTreeMap::new();
    for r in references {
        let (table, column) = (identifier(&r.table)?, identifier(&r.column)?);
        let versioned = columns(tx, table)?.iter().any(|c| c.name == "version");
        let mut sql =
            format!("SELECT id, {column} AS old FROM {table} WHERE {column} IN ({})", in_list(1, merge_ids.len()));
        let mut params: Vec<Value> = merge_ids.iter().map(|i| Value::from(i.get())).collect();
        if table == kind.table_name() {
            // A merged record pointing at another (a store under a merged chain) is not moved.
            sql.push_str(&format!(" AND id NOT IN ({})", in_list(params.len() + 1, all.len())));
            params.extend(all.iter().map(|i| Value::from(i.get())));
        }
        let rows: Vec<Moved> = tx.query_sql(&sql, &params)?;
        moved_counts.insert(format!("{table}.{column}"), rows.len() as u64);
        if rows.is_empty() {
            continue;
        }
        for chunk in rows.chunks(500) {
            let bump = if versioned { ", version = version + 1, updated_at = $2" } else { "" };
            let mut params: Vec<Value> = vec![input.keep_id.get().into()];
            if versioned {
                params.push(at.into());
            }
            let sql = format!(
                "UPDATE {table} SET {column} = $1{bump} WHERE id IN ({})",
                in_list(params.len() + 1, chunk.len())
            );
            params.extend(chunk.iter().map(|m| Value::from(m.id)));
            tx.execute_sql(&sql, &params)?;
        }
        moves.push(Move {
            table: table.to_owned(),
            column: column.to_owned(),
            versioned,
            rows: rows.iter().map(|m| (m.id, m.old)).collect(),
        });
    }

    // The merged records: soft-deleted, pointing at the kept one.
    let mut params: Vec<Value> = vec![at.into(), input.keep_id.get().into()];
    params.extend(merge_ids.iter().map(|i| Value::from(i.get())));
    tx.execute_sql(
        &format!(
            "UPDATE {} SET deleted_at = $1, updated_at = $1, version = version + 1, merged_into = $2 WHERE id IN ({})",
            kind.table_name(),
            in_list(3, merge_ids.len())
        ),
        &params,
    )?;
    let merged_versions: BTreeMap<String, i64> =
        merge_ids.iter().map(|m| (m.to_string(), live.get(m).copied().unwrap_or_default() + 1)).collect();
    for id in &all {
        duplicates::sync(tx, kind, *id)?;
    }
    search::reindex_one(tx, kind, input.keep_id)?;

    let snapshot = Snapshot { old_values, new_values, keep_version, merged_versions, moves, fields: winners.clone() };
    let id = Id::new();
    let ids_json = json!(merge_ids);
    tx.execute_sql(
        "INSERT INTO merges (id, record_type, keep_id, merged_ids, snapshot, actor_id, created_at, undone_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        &[
            id.into(),
            kind.as_str().into(),
            input.keep_id.get().into(),
            Value::Json(Some(Box::new(ids_json.clone()))),
            Value::Json(Some(Box::new(serde_json::to_value(&snapshot).map_err(|e| Error::Internal(e.to_string()))?))),
            who.actor().map(Id::get).into(),
            at.into(),
        ],
    )?;
    let changes = changes.created("merge_id", &id).created("merged_ids", &merge_ids).created("moved", &moved_counts);
    audit::record(tx, who, "merge", kind.as_str(), Some(input.keep_id), &changes)?;
    for m in &merge_ids {
        let c = Changes::new().created("merge_id", &id).field("merged_into", &None::<Id>, &Some(input.keep_id));
        audit::record(tx, who, "merged", kind.as_str(), Some(*m), &c)?;
    }
    Ok(Merge {
        id,
        record_type: kind.as_str().to_owned(),
        keep_id: input.keep_id,
        merged_ids: merge_ids,
        fields: winners,
        moved: moved_counts,
        created_at: at,
        undone_at: None,
    })
}

struct MergeRow {
    id: Id,
    record_type: String,
    keep_id: Id,
    merged_ids: Json,
    snapshot: Json,
    created_at: DateTime<Utc>,
    undone_at: Option<DateTime<Utc>>,
}

impl FromRow for MergeRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(MergeRow {
            id: row.get("id")?,
            record_type: row.get("record_type")?,
            keep_id: row.get("keep_id")?,
            merged_ids: row.get("merged_ids")?,
            snapshot: row.get("snapshot")?,
            created_at: row.get("created_at")?,
            undone_at: row.get("undone_at")?,
        })
    }
}

fn conflict(message: impl Into<String>) -> Error {
    Error::Conflict { field: None, message: message.into() }
}

/// Undoes merge `id`: the kept record's old values, every moved reference, the merged
/// records live again. Refused with 409 when the merge was undone already or when any of
/// those records or rows changed since the merge.
#[instrument(skip_all, fields(merge.id = %id))]
pub fn undo(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Merge> {
    who.require("customers.merge")?;
    let row: MergeRow = tx
        .query_opt_sql(
            "SELECT id, record_type, keep_id, merged_ids, snapshot, created_at, undone_at FROM merges WHERE id = $1",
            &[id.into()],
        )?
        .ok_or(Error::NotFound("merge"))?;
    let kind = RecordType::parse(&row.record_type).map_err(Error::Internal)?;
    let merged_ids: Vec<Id> = serde_json::from_value(row.merged_ids).map_err(|e| Error::Internal(e.to_string()))?;
    if row.snapshot.get("erased").is_some() {
        return Err(conflict("the person was erased since the merge; it cannot be undone"));
    }
    let snapshot: Snapshot = serde_json::from_value(row.snapshot).map_err(|e| Error::Internal(e.to_string()))?;
    // The kept record must be one the caller reaches.
    let live = live_in_scope(tx, who, kind, &[row.keep_id])?;
    let Some(&keep_version) = live.get(&row.keep_id) else { return Err(Error::NotFound("merge")) };
    if row.undone_at.is_some() {
        return Err(conflict("this merge was undone already"));
    }
    if keep_version != snapshot.keep_version {
        return Err(conflict("the kept record changed since the merge; undo would lose that change"));
    }
    let q = Query::select()
        .columns([kind.col("id"), kind.col("version")])
        .from(kind.table())
        .and_where(Expr::col(kind.col("id")).is_in(merged_ids.iter().map(|i| i.get())))
        .and_where(Expr::col(kind.col("merged_into")).eq(row.keep_id.get()))
        .and_where(Expr::col(kind.col("deleted_at")).is_not_null())
        .to_owned();
    let merged: Vec<IdVersion> = tx.fetch_all(&q)?;
    for m in &merged_ids {
        let now_at = merged.iter().find(|r| r.id == *m).map(|r| r.version);
        if now_at != snapshot.merged_versions.get(&m.to_string()).copied() {
            return Err(conflict(format!("merged record {m} changed since the merge")));
        }
    }
    for mv in &snapshot.moves {
        let (table, column) = (identifier(&mv.table)?, identifier(&mv.column)?);
        for chunk in mv.rows.chunks(500) {
            let sql =
                format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1 AND id IN ({})", in_list(2, chunk.len()));
            let mut params: Vec<Value> = vec![row.keep_id.get().into()];
            params.extend(chunk.iter().map(|(i, _)| Value::from(*i)));
            let n: Vec<i64> = tx.query_sql(&sql, &params)?;
            if n.first().copied().unwrap_or_default() != chunk.len() as i64 {
                return Err(conflict(format!("rows of {table} moved by the merge were changed since")));
            }
        }
    }

    let at = now();
    // The kept record's old values, each written back as its own type.
    let table_columns = columns(tx, kind.table_name())?;
    let mut sets = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let mut changes = Changes::new().created("merge_id", &row.id);
    for (name, old) in &snapshot.old_values {
        let Some(column) = table_columns.iter().find(|c| &c.name == name) else { continue };
        match old {
            Some(text) => {
                params.push(text.clone().into());
                sets.push(format!("{} = {}", identifier(name)?, typed_param(tx.backend(), params.len(), column)));
            }
            None => sets.push(format!("{} = NULL", identifier(name)?)),
        }
        changes = changes.field(name, &snapshot.new_values.get(name).cloned().flatten(), old);
    }
    params.push(at.into());
    sets.push(format!("updated_at = ${}", params.len()));
    sets.push("version = version + 1".to_owned());
    params.push(row.keep_id.get().into());
    let sql = format!("UPDATE {} SET {} WHERE id = ${}", kind.table_name(), sets.join(", "), params.len());
    tx.execute_sql(&sql, &params)?;
    // Moved rows back to where they pointed.
    for mv in &snapshot.moves {
        let (table, column) = (identifier(&mv.table)?, identifier(&mv.column)?);
        let mut by_old: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for (rid, old) in &mv.rows {
            by_old.entry(*old).or_default().push(*rid);
        }
        for (old, rids) in by_old {
            for chunk in rids.chunks(500) {
                let bump = if mv.versioned { ", version = version + 1, updated_at = $2" } else { "" };
                let mut params: Vec<Value> = vec![old.into()];
                if mv.versioned {
                    params.push(at.into());
                }
                let sql = format!(
                    "UPDATE {table} SET {column} = $1{bump} WHERE id IN ({})",
                    in_list(params.len() + 1, chunk.len())
                );
                params.extend(chunk.iter().map(|i| Value::from(*i)));
                tx.execute_sql(&sql, &params)?;
            }
        }
    }
    let mut params: Vec<Value> = vec![at.into()];
    params.extend(merged_ids.iter().map(|i| Value::from(i.get())));
    tx.execute_sql(
        &format!(
            "UPDATE {} SET deleted_at = NULL, merged_into = NULL, updated_at = $1, version = version + 1 WHERE id IN ({})",
            kind.table_name(),
            in_list(2, merged_ids.len())
        ),
        &params,
    )?;
    tx.execute_sql("UPDATE merges SET undone_at = $1 WHERE id = $2", &[at.into(), row.id.into()])?;
    let mut all = vec![row.keep_id];
    all.extend(&merged_ids);
    for rid in &all {
        duplicates::sync(tx, kind, *rid)?;
        search::reindex_one(tx, kind, *rid)?;
    }
    audit::record(tx, who, "merge_undo", kind.as_str(), Some(row.keep_id), &changes)?;
    for m in &merged_ids {
        let c = Changes::new().created("merge_id", &row.id).field("merged_into", &Some(row.keep_id), &None::<Id>);
        audit::record(tx, who, "merge_undo", kind.as_str(), Some(*m), &c)?;
    }
    Ok(Merge {
        id: row.id,
        record_type: kind.as_str().to_owned(),
        keep_id: row.keep_id,
        merged_ids,
        fields: snapshot.fields,
        moved: snapshot.moves.iter().map(|m| (format!("{}.{}", m.table, m.column), m.rows.len() as u64)).collect(),
        created_at: row.created_at,
        undone_at: Some(at),
    })
}

struct MergedInto {
    merged_into: Option<Id>,
}

impl FromRow for MergedInto {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(MergedInto { merged_into: row.get("merged_into")? })
    }
}

/// Where a merged-away record lives on: the live record it was merged into (following
/// merges of merges), if the caller may read it. `None` for any other record.
pub fn redirect(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, id: Id) -> Result<Option<Id>> {
    who.require(kind.read_permission())?;
    let mut current = id;
    for _ in 0..10 {
        let sql = format!("SELECT merged_into FROM {} WHERE id = $1 AND deleted_at IS NOT NULL", kind.table_name());
        let Some(MergedInto { merged_into: Some(next) }) = tx.query_opt_sql(&sql, &[current.into()])? else { break };
        current = next;
    }
    if current == id {
        return Ok(None);
    }
    Ok(live_in_scope(tx, who, kind, &[current])?.contains_key(&current).then_some(current))
}

/// The names of the fields a merge of `kind` chooses between (`fields` of [`NewMerge`];
/// custom values are chosen as `custom.<key>` besides these), in table order.
pub fn field_names(tx: &mut Tx<'_>, kind: RecordType) -> Result<Vec<String>> {
    Ok(fields_of(&columns(tx, kind.table_name())?).into_iter().map(|f| f.name).collect())
}
