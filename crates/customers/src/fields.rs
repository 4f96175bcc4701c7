//! Customer categories and their typed custom fields (the SME's "different fields for each
//! customer class"). A record's custom values live under `custom: {key: value}` and are
//! checked against its category's definitions on every write; each bad value is reported
//! as the field `custom.<key>`.
//!
//! Categories and field definitions are organisation-wide settings: they are not owned
//! and have no data scope.
use chrono::{DateTime, NaiveDate, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::values::{self, Email};
use kernel::{Error, Id, Principal, Result, Tx};
use sea_query::{Expr, ExprTrait, Iden, Order, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::phone::Phone;
use crate::record::{RecordType, json_value, now};

#[derive(Iden)]
pub enum CustomerCategories {
    Table,
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
    Version,
    DeletedAt,
}

#[derive(Iden)]
pub enum CustomFields {
    Table,
    Id,
    CategoryId,
    RecordType,
    Key,
    Label,
    Type,
    Required,
    Options,
    CreatedAt,
    UpdatedAt,
    Version,
    DeletedAt,
}

/// The value types a custom field may have.
pub const FIELD_TYPES: [&str; 11] =
    ["text", "long_text", "number", "money", "date", "boolean", "select", "multi_select", "email", "phone", "url"];

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Category {
    pub id: Id,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl FromRow for Category {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Category {
            id: row.get("id")?,
            name: row.get("name")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            version: row.get("version")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CustomField {
    pub id: Id,
    pub category_id: Id,
    /// `account` or `contact` (a contact's category is its account's).
    pub record_type: String,
    /// The name under `custom` in records: lower-case letters, digits and `_`.
    pub key: String,
    pub label: String,
    /// One of `text, long_text, number, money, date, boolean, select, multi_select,
    /// email, phone, url`.
    #[serde(rename = "type")]
    pub field_type: String,
    pub required: bool,
    /// The choices of a `select` or `multi_select` field.
    pub options: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl FromRow for CustomField {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let options: Json = row.get("options")?;
        Ok(CustomField {
            id: row.get("id")?,
            category_id: row.get("category_id")?,
            record_type: row.get("record_type")?,
            key: row.get("key")?,
            label: row.get("label")?,
            field_type: row.get("type")?,
            required: row.get("required")?,
            options: serde_json::from_value(options).unwrap_or_default(),
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            version: row.get("version")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomField {
    pub category_id: Id,
    /// `account` (default) or `contact`.
    #[serde(default)]
    pub record_type: Option<String>,
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default)]
    pub required: bool,
    /// Required for `select` and `multi_select`, refused for other types.
    #[serde(default)]
    pub options: Option<Vec<String>>,
}

/// A category's new name.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    #[serde(default)]
    pub name: Option<String>,
    /// The version the client last saw; a mismatch is refused with 412.
    #[serde(default)]
    pub version: Option<i64>,
}

/// A change to a field definition. The key and record type stay; the type changes only
/// while no record holds a value; options can be added, not removed.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldPatch {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, rename = "type")]
    pub field_type: Option<String>,
    #[serde(default)]
    pub required: Option<bool>,
    /// The full new list: every existing option plus any new ones.
    #[serde(default)]
    pub options: Option<Vec<String>>,
    /// The version the client last saw; a mismatch is refused with 412.
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct FieldFilter {
    pub category_id: Option<Id>,
    pub record_type: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Categories

fn select_categories() -> sea_query::SelectStatement {
    Query::select()
        .columns([
            CustomerCategories::Id,
            CustomerCategories::Name,
            CustomerCategories::CreatedAt,
            CustomerCategories::UpdatedAt,
            CustomerCategories::Version,
        ])
        .from(CustomerCategories::Table)
        .and_where(Expr::col(CustomerCategories::DeletedAt).is_null())
        .to_owned()
}

/// A live category by id (for checking references; categories have no scope).
pub(crate) fn find_category(tx: &mut Tx<'_>, id: Id) -> Result<Option<Category>> {
    Ok(tx.fetch_optional(&select_categories().and_where(Expr::col(CustomerCategories::Id).eq(id.get())).to_owned())?)
}

pub fn list_categories(tx: &mut Tx<'_>, who: &Principal, page: &PageRequest) -> Result<Page<Category>> {
    who.require("customers.categories.read")?;
    let mut q = select_categories().order_by(CustomerCategories::Id, Order::Asc).limit(page.fetch_limit()).to_owned();
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col(CustomerCategories::Id).gt(c.id));
    }
    let rows: Vec<Category> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |c| id_cursor(c.id)))
}

pub fn create_category(tx: &mut Tx<'_>, who: &Principal, input: NewCategory) -> Result<Category> {
    who.require("customers.categories.manage")?;
    let name = values::name(&input.name, 200).map_err(|m| Error::field("name", m))?;
    let now = now();
    let category = Category { id: Id::new(), name, created_at: now, updated_at: now, version: 1 };
    let insert = Query::insert()
        .into_table(CustomerCategories::Table)
        .columns([
            CustomerCategories::Id,
            CustomerCategories::Name,
            CustomerCategories::CreatedAt,
            CustomerCategories::UpdatedAt,
            CustomerCategories::Version,
        ])
        .values_panic([category.id.into(), category.name.clone().into(), now.into(), now.into(), 1i64.into()])
        .to_owned();
    tx.execute(&insert).map_err(|e| match Error::from(e) {
        Error::Conflict { .. } => Error::conflict("name", "a category with this name exists"),
        other => other,
    })?;
    audit::record(
        tx,
        who,
        "create",
        "customer_category",
        Some(category.id),
        &Changes::new().created("name", &category.name),
    )?;
    Ok(category)
}

// ---------------------------------------------------------------------------------------
// Field definitions

fn select_fields() -> sea_query::SelectStatement {
    Query::select()
        .columns([
            CustomFields::Id,
            CustomFields::CategoryId,
            CustomFields::RecordType,
            CustomFields::Key,
            CustomFields::Label,
            CustomFields::Type,
            CustomFields::Required,
            CustomFields::Options,
            CustomFields::CreatedAt,
            CustomFields::UpdatedAt,
            CustomFields::Version,
        ])
        .from(CustomFields::Table)
        .and_where(Expr::col(CustomFields::DeletedAt).is_null())
        .to_owned()
}

/// Every live field of `record_type`'s records, in all categories (for list filters).
pub(crate) fn all_definitions(tx: &mut Tx<'_>, record_type: RecordType) -> Result<Vec<CustomField>> {
    let q = select_fields()
        .and_where(Expr::col(CustomFields::RecordType).eq(record_type.as_str()))
        .order_by(CustomFields::Id, Order::Asc)
        .to_owned();
    Ok(tx.fetch_all(&q)?)
}

/// The fields a record of `record_type` in `category` carries (none without a category).
pub(crate) fn definitions(tx: &mut Tx<'_>, category: Option<Id>, record_type: RecordType) -> Result<Vec<CustomField>> {
    let Some(category) = category else { return Ok(Vec::new()) };
    let q = select_fields()
        .and_where(Expr::col(CustomFields::CategoryId).eq(category.get()))
        .and_where(Expr::col(CustomFields::RecordType).eq(record_type.as_str()))
        .order_by(CustomFields::Id, Order::Asc)
        .to_owned();
    Ok(tx.fetch_all(&q)?)
}

pub fn list_fields(
    tx: &mut Tx<'_>,
    who: &Principal,
    filter: &FieldFilter,
    page: &PageRequest,
) -> Result<Page<CustomField>> {
    who.require("customers.categories.read")?;
    let mut q = select_fields().order_by(CustomFields::Id, Order::Asc).limit(page.fetch_limit()).to_owned();
    if let Some(c) = filter.category_id {
        q.and_where(Expr::col(CustomFields::CategoryId).eq(c.get()));
    }
    if let Some(r) = &filter.record_type {
        let r = RecordType::parse(r).map_err(|m| Error::field("record_type", m))?;
        q.and_where(Expr::col(CustomFields::RecordType).eq(r.as_str()));
    }
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col(CustomFields::Id).gt(c.id));
    }
    let rows: Vec<CustomField> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |f| id_cursor(f.id)))
}

fn check_key(key: &str) -> Result<String, String> {
    let ok = key.len() <= 63
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(key.to_owned())
    } else {
        Err("must be a lower-case letter, then letters, digits or _ (at most 63)".into())
    }
}

fn check_options(field_type: Option<&str>, options: Option<&[String]>) -> Result<Vec<String>, String> {
    let choice = matches!(field_type, Some("select" | "multi_select"));
    match (choice, options) {
        (false, None) => Ok(Vec::new()),
        (false, Some(_)) => Err("only select and multi_select fields have options".into()),
        (true, None) => Err("a select field needs at least one option".into()),
        (true, Some(list)) => {
            let mut out: Vec<String> = Vec::new();
            for o in list {
                let o = values::name(o, 200).map_err(|m| format!("option {o:?} {m}"))?;
                if out.contains(&o) {
                    return Err(format!("option {o:?} is listed twice"));
                }
                out.push(o);
            }
            if out.is_empty() {
                return Err("a select field needs at least one option".into());
            }
            Ok(out)
        }
    }
}

pub fn create_field(tx: &mut Tx<'_>, who: &Principal, input: NewCustomField) -> Result<CustomField> {
    who.require("customers.categories.manage")?;
    let mut v = Validator::new();
    if find_category(tx, input.category_id)?.is_none() {
        v.add("category_id", "no such category");
    }
    let record_type = match input.record_type.as_deref() {
        None => Some(RecordType::Account),
        Some(r) => v.check("record_type", RecordType::parse(r)),
    };
    let key = v.check("key", check_key(input.key.trim()));
    let label = v.check("label", values::name(&input.label, 200));
    let field_type = v.check(
        "type",
        FIELD_TYPES
            .iter()
            .find(|t| **t == input.field_type)
            .map(|t| (*t).to_owned())
            .ok_or_else(|| format!("must be one of {}", FIELD_TYPES.join(", "))),
    );
    let options = v.check("options", check_options(field_type.as_deref(), input.options.as_deref()));
    v.finish()?;
    let now = now();
    let field = CustomField {
        id: Id::new(),
        category_id: input.category_id,
        record_type: record_type.unwrap_or(RecordType::Account).as_str().to_owned(),
        key: key.unwrap_or_default(),
        label: label.unwrap_or_default(),
        field_type: field_type.unwrap_or_default(),
        required: input.required,
        options: options.unwrap_or_default(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let insert = Query::insert()
        .into_table(CustomFields::Table)
        .columns([
            CustomFields::Id,
            CustomFields::CategoryId,
            CustomFields::RecordType,
            CustomFields::Key,
            CustomFields::Label,
            CustomFields::Type,
            CustomFields::Required,
            CustomFields::Options,
            CustomFields::CreatedAt,
            CustomFields::UpdatedAt,
            CustomFields::Version,
        ])
        .values_panic([
            field.id.into(),
            field.category_id.into(),
            field.record_type.clone().into(),
            field.key.clone().into(),
            field.label.clone().into(),
            field.field_type.clone().into(),
            field.required.into(),
            json_value(serde_json::json!(field.options)),
            now.into(),
            now.into(),
            1i64.into(),
        ])
        .to_owned();
    tx.execute(&insert).map_err(|e| match Error::from(e) {
        Error::Conflict { .. } => Error::conflict("key", "this category already has a field with this key"),
        other => other,
    })?;
    let changes = Changes::new()
        .created("category_id", &field.category_id)
        .created("record_type", &field.record_type)
        .created("key", &field.key)
        .created("label", &field.label)
        .created("type", &field.field_type)
        .created("required", &field.required)
        .created("options", &field.options);
    audit::record(tx, who, "create", "custom_field", Some(field.id), &changes)?;
    Ok(field)
}

fn category_in_use(tx: &mut Tx<'_>, id: Id) -> Result<bool> {
    #[derive(Debug)]
    struct One;
    impl FromRow for One {
        fn from_row(_: &Row<'_>) -> Result<Self, DbError> {
            Ok(One)
        }
    }
    for table in ["accounts", "contacts"] {
        let q = Query::select()
            .expr(Expr::val(1))
            .from(sea_query::Alias::new(table))
            .and_where(Expr::col(sea_query::Alias::new("category_id")).eq(id.get()))
            .and_where(Expr::col(sea_query::Alias::new("deleted_at")).is_null())
            .limit(1)
            .to_owned();
        if tx.fetch_optional::<One, _>(&q)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn get_category(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Category> {
    who.require("customers.categories.read")?;
    find_category(tx, id)?.ok_or(Error::NotFound("category"))
}

pub fn update_category(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: CategoryPatch) -> Result<Category> {
    who.require("customers.categories.manage")?;
    let old = find_category(tx, id)?.ok_or(Error::NotFound("category"))?;
    kernel::identity::check_version(old.version, patch.version)?;
    let mut new = old.clone();
    if let Some(n) = &patch.name {
        new.name = values::name(n, 200).map_err(|m| Error::field("name", m))?;
    }
    let changes = Changes::new().field("name", &old.name, &new.name);
    if changes.is_empty() {
        return Ok(old);
    }
    new.updated_at = now();
    new.version = old.version + 1;
    let q = Query::update()
        .table(CustomerCategories::Table)
        .values([
            (CustomerCategories::Name, new.name.clone().into()),
            (CustomerCategories::UpdatedAt, new.updated_at.into()),
            (CustomerCategories::Version, new.version.into()),
        ])
        .and_where(Expr::col(CustomerCategories::Id).eq(id.get()))
        .and_where(Expr::col(CustomerCategories::Version).eq(old.version))
        .to_owned();
    kernel::records::update_versioned(tx, &q, old.version).map_err(|e| match e {
        Error::Conflict { .. } => Error::conflict("name", "a category with this name exists"),
        other => other,
    })?;
    audit::record(tx, who, "update", "customer_category", Some(id), &changes)?;
    Ok(new)
}

/// Soft delete of a category no live account or contact is in (409 otherwise).
pub fn delete_category(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    who.require("customers.categories.manage")?;
    find_category(tx, id)?.ok_or(Error::NotFound("category"))?;
    if category_in_use(tx, id)? {
        return Err(Error::conflict("id", "accounts or contacts are in this category; move them first"));
    }
    kernel::records::soft_delete(tx, "customer_categories", id, sea_query::Condition::all(), "category")?;
    audit::record(tx, who, "delete", "customer_category", Some(id), &Changes::new())
}

fn find_field(tx: &mut Tx<'_>, id: Id) -> Result<Option<CustomField>> {
    Ok(tx.fetch_optional(&select_fields().and_where(Expr::col(CustomFields::Id).eq(id.get())).to_owned())?)
}

pub fn get_field(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<CustomField> {
    who.require("customers.categories.read")?;
    find_field(tx, id)?.ok_or(Error::NotFound("custom field"))
}

/// Whether any record (live or deleted) of the field's record type holds a value under
/// its key.
fn field_has_values(tx: &mut Tx<'_>, field: &CustomField) -> Result<bool> {
    let kind = RecordType::parse(&field.record_type).map_err(Error::Internal)?;
    let held = match tx.backend() {
        kernel::db::Backend::Sqlite => Expr::cust_with_exprs(
            "json_extract(?, ?) IS NOT NULL",
            [Expr::col(kind.col("custom")), Expr::val(format!("$.{}", field.key))],
        ),
        kernel::db::Backend::Postgres => Expr::cust_with_exprs(
            "($1 -> ($2)::text) IS NOT NULL",
            [Expr::col(kind.col("custom")), Expr::val(field.key.clone())],
        ),
    };
    let q = Query::select().column(kind.col("id")).from(kind.table()).and_where(held).limit(1).to_owned();
    Ok(!tx.fetch_all::<i64, _>(&q)?.is_empty())
}

pub fn update_field(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: CustomFieldPatch) -> Result<CustomField> {
    who.require("customers.categories.manage")?;
    let old = find_field(tx, id)?.ok_or(Error::NotFound("custom field"))?;
    kernel::identity::check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    if let Some(l) = &patch.label
        && let Some(l) = v.check("label", values::name(l, 200))
    {
        new.label = l;
    }
    if let Some(r) = patch.required {
        new.required = r;
    }
    if let Some(t) = patch.field_type.as_deref().filter(|t| *t != old.field_type) {
        match FIELD_TYPES.iter().find(|k| **k == t) {
            None => v.add("type", format!("must be one of {}", FIELD_TYPES.join(", "))),
            Some(_) if field_has_values(tx, &old)? => {
                v.add("type", "records hold values of this field; its type can no longer change")
            }
            Some(k) => new.field_type = (*k).to_owned(),
        }
    }
    let options = patch.options.as_deref().or((new.field_type != old.field_type).then_some(&[][..]));
    let options = match (options, matches!(new.field_type.as_str(), "select" | "multi_select")) {
        (Some([]), false) => Some(Ok(Vec::new())),
        (Some(list), _) => Some(check_options(Some(&new.field_type), Some(list))),
        (None, _) => None,
    };
    if let Some(list) = options.and_then(|o| v.check("options", o)) {
        if let Some(gone) = old.options.iter().find(|o| !list.contains(o))
            && new.field_type == old.field_type
        {
            v.add("options", format!("option {gone:?} is in use and cannot be removed; options can only be added"));
        }
        new.options = list;
    }
    v.finish()?;
    let changes = Changes::new()
        .field("label", &old.label, &new.label)
        .field("type", &old.field_type, &new.field_type)
        .field("required", &old.required, &new.required)
        .field("options", &old.options, &new.options);
    if changes.is_empty() {
        return Ok(old);
    }
    new.updated_at = now();
    new.version = old.version + 1;
    let q = Query::update()
        .table(CustomFields::Table)
        .values([
            (CustomFields::Label, new.label.clone().into()),
            (CustomFields::Type, new.field_type.clone().into()),
            (CustomFields::Required, new.required.into()),
            (CustomFields::Options, json_value(serde_json::json!(new.options))),
            (CustomFields::UpdatedAt, new.updated_at.into()),
            (CustomFields::Version, new.version.into()),
        ])
        .and_where(Expr::col(CustomFields::Id).eq(id.get()))
        .and_where(Expr::col(CustomFields::Version).eq(old.version))
        .to_owned();
    kernel::records::update_versioned(tx, &q, old.version)?;
    audit::record(tx, who, "update", "custom_field", Some(id), &changes)?;
    Ok(new)
}

/// Soft delete: records keep their stored values, which are no longer validated or
/// shown; the key stays taken in its category.
pub fn delete_field(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    who.require("customers.categories.manage")?;
    kernel::records::soft_delete(tx, "custom_fields", id, sea_query::Condition::all(), "custom field")?;
    audit::record(tx, who, "delete", "custom_field", Some(id), &Changes::new())
}

// ---------------------------------------------------------------------------------------
// Values

/// A patch's `custom` merged over a record's stored values and checked: stored values of
/// keys that are not (or no longer) fields of the category are kept as they are, unless
/// the patch names them; a `null` clears a value (also one whose field is gone).
pub(crate) fn merge_values(
    v: &mut Validator,
    fields: &[CustomField],
    old: &Map<String, Json>,
    patch: Option<Map<String, Json>>,
    region: &str,
) -> Map<String, Json> {
    let mut checked = Map::new();
    let mut kept = Map::new();
    for (k, value) in old {
        if fields.iter().any(|f| &f.key == k) {
            checked.insert(k.clone(), value.clone());
        } else {
            kept.insert(k.clone(), value.clone());
        }
    }
    for (k, value) in patch.unwrap_or_default() {
        kept.remove(&k);
        // `null` drops a stored value even when its field is gone.
        if Json::is_null(&value) && !fields.iter().any(|f| f.key == k) {
            continue;
        }
        checked.insert(k, value);
    }
    let mut out = check_values(v, fields, &checked, region);
    for (k, value) in kept {
        out.entry(k).or_insert(value);
    }
    out
}

/// Only the values of `fields` (what a record shows: a deleted field's value is hidden).
pub(crate) fn visible(fields: &[CustomField], values: &mut Map<String, Json>) {
    values.retain(|k, _| fields.iter().any(|f| &f.key == k));
}

// ---------------------------------------------------------------------------------------
// Values (checking)

/// Checks `values` against `fields`, reporting each problem as `custom.<key>`, and returns
/// the normalised values (`null` clears a value). Phones are parsed in `region`.
pub(crate) fn check_values(
    v: &mut Validator,
    fields: &[CustomField],
    values: &Map<String, Json>,
    region: &str,
) -> Map<String, Json> {
    let mut out = Map::new();
    let mut bad = Vec::new();
    for (key, value) in values {
        let name = format!("custom.{key}");
        let Some(field) = fields.iter().find(|f| &f.key == key) else {
            v.add(&name, "is not a field of this record's category");
            bad.push(key.as_str());
            continue;
        };
        if value.is_null() {
            continue;
        }
        match check_value(field, value, region) {
            Ok(value) => {
                out.insert(key.clone(), value);
            }
            Err(message) => {
                v.add(&name, message);
                bad.push(key.as_str());
            }
        }
    }
    for field in fields.iter().filter(|f| f.required) {
        if !out.contains_key(&field.key) && !bad.contains(&field.key.as_str()) {
            v.add(&format!("custom.{}", field.key), "is required");
        }
    }
    out
}

fn expect_str<'a>(value: &'a Json, what: &str) -> Result<&'a str, String> {
    value.as_str().ok_or_else(|| format!("must be {what}"))
}

/// One value, normalised: trimmed text, lower-cased e-mail, E.164 phone, `YYYY-MM-DD`
/// date, `{"amount": "12.50", "currency": "CNY"}` money.
fn check_value(field: &CustomField, value: &Json, region: &str) -> Result<Json, String> {
    let text = |max: usize| -> Result<Json, String> {
        let s = expect_str(value, "text")?.trim();
        if s.is_empty() {
            return Err("is empty (send null to clear it)".into());
        }
        if s.chars().count() > max {
            return Err(format!("is longer than {max} characters"));
        }
        Ok(Json::String(s.to_owned()))
    };
    match field.field_type.as_str() {
        "text" => text(1000),
        "long_text" => text(20_000),
        "number" => match value.as_f64() {
            Some(n) if n.is_finite() => Ok(value.clone()),
            _ => Err("must be a number".into()),
        },
        "money" => check_money(value),
        "date" => {
            let s = expect_str(value, "a date (YYYY-MM-DD)")?.trim();
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| Json::String(d.format("%Y-%m-%d").to_string()))
                .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
        }
        "boolean" => value.as_bool().map(Json::Bool).ok_or_else(|| "must be true or false".into()),
        "select" => {
            let s = expect_str(value, "one of the options")?;
            check_option(field, s).map(Json::String)
        }
        "multi_select" => {
            let list = value.as_array().ok_or("must be a list of options")?;
            let mut out: Vec<Json> = Vec::new();
            for item in list {
                let s = check_option(field, expect_str(item, "a list of options")?)?;
                if !out.iter().any(|o| o.as_str() == Some(&s)) {
                    out.push(Json::String(s));
                }
            }
            Ok(Json::Array(out))
        }
        "email" => Email::parse(expect_str(value, "an e-mail address")?).map(|e| Json::String(e.as_str().to_owned())),
        "phone" => {
            Phone::parse(expect_str(value, "a phone number")?, region).map(|p| Json::String(p.e164().to_owned()))
        }
        "url" => crate::record::check_url(expect_str(value, "a web address")?).map(Json::String),
        other => Err(format!("has an unknown type {other}")),
    }
}

fn check_option(field: &CustomField, s: &str) -> Result<String, String> {
    let s = s.trim();
    field
        .options
        .iter()
        .find(|o| o.as_str() == s)
        .cloned()
        .ok_or_else(|| format!("{s:?} is not one of {}", field.options.join(", ")))
}

/// `{"amount": "1999.00", "currency": "CNY"}`: a decimal string with at most two decimals
/// and an ISO 4217 code.
fn check_money(value: &Json) -> Result<Json, String> {
    const SHAPE: &str = "must be {\"amount\": \"1999.00\", \"currency\": \"CNY\"}";
    let obj = value.as_object().ok_or(SHAPE)?;
    if obj.len() != 2 {
        return Err(SHAPE.into());
    }
    let amount = obj.get("amount").and_then(Json::as_str).ok_or(SHAPE)?.trim();
    let currency = obj.get("currency").and_then(Json::as_str).ok_or(SHAPE)?.trim().to_uppercase();
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let whole_digits = whole.strip_prefix('-').unwrap_or(whole);
    let amount_ok = !whole_digits.is_empty()
        && whole_digits.len() <= 15
        && whole_digits.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= 2
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && amount.contains('.') != fraction.is_empty();
    if !amount_ok {
        return Err(format!("amount {amount:?} is not a decimal with at most two decimals"));
    }
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("currency {currency:?} is not an ISO 4217 code such as CNY"));
    }
    Ok(serde_json::json!({"amount": amount, "currency": currency}))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(key: &str, field_type: &str, required: bool, options: &[&str]) -> CustomField {
        CustomField {
            id: Id::new(),
            category_id: Id(1),
            record_type: "account".into(),
            key: key.into(),
            label: key.into(),
            field_type: field_type.into(),
            required,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 1,
        }
    }

    fn fields() -> Vec<CustomField> {
        vec![
            field("note", "text", false, &[]),
            field("story", "long_text", false, &[]),
            field("stores", "number", true, &[]),
            field("credit", "money", false, &[]),
            field("since", "date", false, &[]),
            field("vip", "boolean", false, &[]),
            field("tier", "select", false, &["gold", "silver"]),
            field("lines", "multi_select", false, &["tv", "fridge"]),
            field("billing", "email", false, &[]),
            field("hotline", "phone", false, &[]),
            field("site", "url", false, &[]),
        ]
    }

    fn errors(values: Json) -> Vec<String> {
        let mut v = Validator::new();
        check_values(&mut v, &fields(), values.as_object().unwrap(), "CN");
        match v.finish() {
            Ok(()) => Vec::new(),
            Err(Error::Validation(e)) => e.into_iter().map(|e| e.field).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn good_values_are_normalised() {
        let mut v = Validator::new();
        let out = check_values(
            &mut v,
            &fields(),
            json!({
                "note": " hi ", "story": "long", "stores": 12, "credit": {"amount": "1999.50", "currency": "cny"},
                "since": "2024-02-29", "vip": true, "tier": "gold", "lines": ["tv", "fridge", "tv"],
                "billing": "Pay@Gome.CN", "hotline": "138 0013 8000", "site": "https://gome.com.cn", "lines_x": null
            })
            .as_object()
            .unwrap(),
            "CN",
        );
        assert_eq!(
            v.finish().map_err(|e| e.to_string()),
            Err("invalid input: custom.lines_x: is not a field of this record's category".into())
        );
        assert_eq!(out["note"], "hi");
        assert_eq!(out["credit"], json!({"amount": "1999.50", "currency": "CNY"}));
        assert_eq!(out["lines"], json!(["tv", "fridge"]));
        assert_eq!(out["billing"], "pay@gome.cn");
        assert_eq!(out["hotline"], "+8613800138000");
    }

    #[test]
    fn each_type_refuses_the_wrong_value() {
        let cases = [
            ("note", json!(5)),
            ("note", json!("")),
            ("story", json!(["x"])),
            ("stores", json!("12")),
            ("credit", json!("12.00")),
            ("credit", json!({"amount": "1.234", "currency": "CNY"})),
            ("credit", json!({"amount": "12", "currency": "yuan"})),
            ("since", json!("2023-02-29")),
            ("vip", json!("yes")),
            ("tier", json!("bronze")),
            ("lines", json!(["tv", "sofa"])),
            ("lines", json!("tv")),
            ("billing", json!("nope")),
            ("hotline", json!("12345")),
            ("site", json!("gome dot com")),
        ];
        for (key, value) in cases {
            let mut values = json!({"stores": 3});
            values[key] = value.clone();
            assert_eq!(errors(values), vec![format!("custom.{key}")], "{key} = {value}");
        }
    }

    #[test]
    fn required_and_unknown_keys_are_named() {
        assert_eq!(errors(json!({})), vec!["custom.stores"]);
        assert_eq!(errors(json!({"stores": null})), vec!["custom.stores"]);
        assert_eq!(errors(json!({"stores": 1, "colour": "red"})), vec!["custom.colour"]);
        // A bad required value is reported once, as bad, not also as missing.
        assert_eq!(errors(json!({"stores": "many"})), vec!["custom.stores"]);
    }
}
