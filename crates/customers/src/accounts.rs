//! Accounts: the organisations the company sells to (chains, department stores, franchise
//! shops, SMEs), with a category, an optional parent account (chain headquarters → its
//! stores), a branch, an owner (account manager) and the category's custom fields.
use chrono::{DateTime, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::check_version;
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::values;
use kernel::{Error, Id, Principal, Result, Tx};
use sea_query::{Expr, ExprTrait, Iden, Order, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use tracing::instrument;

use crate::record::{self, DuplicateCandidate, RecordType, json_value, now};
use crate::{fields, search};

#[derive(Iden)]
pub enum Accounts {
    Table,
    Id,
    Name,
    CategoryId,
    ParentId,
    BranchId,
    OwnerId,
    Status,
    Email,
    PhoneE164,
    PhoneRaw,
    Website,
    ExternalId,
    Custom,
    CreatedAt,
    UpdatedAt,
    Version,
    DeletedAt,
}

pub const STATUSES: [&str; 3] = ["prospect", "active", "inactive"];

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub id: Id,
    pub name: String,
    pub category_id: Option<Id>,
    /// The account above this one (a chain's headquarters above its stores).
    pub parent_id: Option<Id>,
    pub branch_id: Id,
    pub owner_id: Option<Id>,
    /// `prospect`, `active` or `inactive`.
    pub status: String,
    /// Lower-cased.
    pub email: Option<String>,
    /// E.164, e.g. `+8613800138000`.
    pub phone: Option<String>,
    /// The phone as it was typed.
    pub phone_raw: Option<String>,
    pub website: Option<String>,
    /// The account's id in another system (ERP, the old CRM).
    pub external_id: Option<String>,
    /// Values of the category's custom fields, by key.
    #[schema(value_type = Object)]
    pub custom: Map<String, Json>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Only in the answer to a create: accounts you can see with the same phone or e-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_candidates: Option<Vec<DuplicateCandidate>>,
}

impl FromRow for Account {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let custom: Json = row.get("custom")?;
        Ok(Account {
            id: row.get("id")?,
            name: row.get("name")?,
            category_id: row.get("category_id")?,
            parent_id: row.get("parent_id")?,
            branch_id: row.get("branch_id")?,
            owner_id: row.get("owner_id")?,
            status: row.get("status")?,
            email: row.get("email")?,
            phone: row.get("phone_e164")?,
            phone_raw: row.get("phone_raw")?,
            website: row.get("website")?,
            external_id: row.get("external_id")?,
            custom: match custom {
                Json::Object(map) => map,
                _ => Map::new(),
            },
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            version: row.get("version")?,
            duplicate_candidates: None,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub name: String,
    #[serde(default)]
    pub category_id: Option<Id>,
    #[serde(default)]
    pub parent_id: Option<Id>,
    /// Default: your branch.
    #[serde(default)]
    pub branch_id: Option<Id>,
    /// Default: you.
    #[serde(default)]
    pub owner_id: Option<Id>,
    /// Default: `active`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Any common format; national numbers are read in the branch's region (CN or KR).
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub custom: Option<Map<String, Json>>,
}

/// A partial update. Text fields are cleared with `""`; `custom` keys are merged, a
/// `null` value clears one.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub category_id: Option<Id>,
    pub parent_id: Option<Id>,
    pub branch_id: Option<Id>,
    pub owner_id: Option<Id>,
    pub status: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub external_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub custom: Option<Map<String, Json>>,
    /// The version the client last saw; a mismatch is refused with 412.
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub category_id: Option<Id>,
    pub branch_id: Option<Id>,
    pub owner_id: Option<Id>,
    pub status: Option<String>,
    /// Search text (docs/search.md): only matching accounts.
    pub q: Option<String>,
}

const COLUMNS: [Accounts; 17] = [
    Accounts::Id,
    Accounts::Name,
    Accounts::CategoryId,
    Accounts::ParentId,
    Accounts::BranchId,
    Accounts::OwnerId,
    Accounts::Status,
    Accounts::Email,
    Accounts::PhoneE164,
    Accounts::PhoneRaw,
    Accounts::Website,
    Accounts::ExternalId,
    Accounts::Custom,
    Accounts::CreatedAt,
    Accounts::UpdatedAt,
    Accounts::Version,
    Accounts::DeletedAt,
];

fn scoped(who: &Principal) -> sea_query::SelectStatement {
    Query::select()
        .columns(COLUMNS.map(|c| (Accounts::Table, c)))
        .from(Accounts::Table)
        .and_where(Expr::col((Accounts::Table, Accounts::DeletedAt)).is_null())
        .cond_where(RecordType::Account.scope(who))
        .to_owned()
}

/// A live account in the caller's scope, without a permission check (for references
/// from other records, e.g. a contact's account).
pub(crate) fn fetch_in_scope(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Account> {
    let q = scoped(who).and_where(Expr::col((Accounts::Table, Accounts::Id)).eq(id.get())).to_owned();
    tx.fetch_optional(&q)?.ok_or(Error::NotFound("account"))
}

#[instrument(skip_all, fields(account.id = %id))]
pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Account> {
    who.require("customers.accounts.read")?;
    fetch_in_scope(tx, who, id)
}

pub fn list(tx: &mut Tx<'_>, who: &Principal, filter: &AccountFilter, page: &PageRequest) -> Result<Page<Account>> {
    who.require("customers.accounts.read")?;
    let mut q = scoped(who).order_by((Accounts::Table, Accounts::Id), Order::Asc).limit(page.fetch_limit()).to_owned();
    if let Some(c) = filter.category_id {
        q.and_where(Expr::col((Accounts::Table, Accounts::CategoryId)).eq(c.get()));
    }
    if let Some(b) = filter.branch_id {
        q.and_where(Expr::col((Accounts::Table, Accounts::BranchId)).eq(b.get()));
    }
    if let Some(o) = filter.owner_id {
        q.and_where(Expr::col((Accounts::Table, Accounts::OwnerId)).eq(o.get()));
    }
    if let Some(s) = &filter.status {
        let s = check_status(s).map_err(|m| Error::field("status", m))?;
        q.and_where(Expr::col((Accounts::Table, Accounts::Status)).eq(s));
    }
    if let Some(text) = filter.q.as_deref().filter(|t| !t.trim().is_empty()) {
        match search::filter(tx, RecordType::Account, text)? {
            Some(cond) => q.cond_where(cond),
            None => return Ok(Page::from_rows(Vec::new(), page, |a: &Account| id_cursor(a.id))),
        };
    }
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col((Accounts::Table, Accounts::Id)).gt(c.id));
    }
    let rows: Vec<Account> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |a| id_cursor(a.id)))
}

fn check_status(s: &str) -> Result<String, String> {
    let s = s.trim();
    STATUSES
        .iter()
        .find(|k| **k == s)
        .map(|k| (*k).to_owned())
        .ok_or_else(|| format!("must be one of {}", STATUSES.join(", ")))
}

fn check_category(tx: &mut Tx<'_>, v: &mut Validator, id: Id) -> Result<()> {
    if fields::find_category(tx, id)?.is_none() {
        v.add("category_id", "no such category");
    }
    Ok(())
}

/// The parent must be a live account the caller sees, and not the account itself or one
/// below it.
fn check_parent(tx: &mut Tx<'_>, who: &Principal, v: &mut Validator, parent: Id, this: Option<Id>) -> Result<()> {
    let mut cursor = Some(parent);
    let mut steps = 0;
    while let Some(id) = cursor {
        if Some(id) == this {
            v.add("parent_id", "an account cannot be below itself");
            return Ok(());
        }
        // The parent itself must be in the caller's scope; its ancestors need not be.
        let found = if id == parent {
            match fetch_in_scope(tx, who, id) {
                Ok(a) => Some(a),
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            }
        } else {
            find(tx, id)?
        };
        let Some(account) = found else {
            if id == parent {
                v.add("parent_id", "no such account");
            }
            return Ok(());
        };
        cursor = account.parent_id;
        steps += 1;
        if steps > 64 {
            v.add("parent_id", "the account hierarchy is too deep");
            return Ok(());
        }
    }
    Ok(())
}

/// Any live account by id, ignoring scope (for walking the hierarchy, and a contact's
/// category).
pub(crate) fn find(tx: &mut Tx<'_>, id: Id) -> Result<Option<Account>> {
    let q = Query::select()
        .columns(COLUMNS.map(|c| (Accounts::Table, c)))
        .from(Accounts::Table)
        .and_where(Expr::col((Accounts::Table, Accounts::DeletedAt)).is_null())
        .and_where(Expr::col((Accounts::Table, Accounts::Id)).eq(id.get()))
        .to_owned();
    Ok(tx.fetch_optional(&q)?)
}

/// A new account's own fields, checked and normalised: the one place the API's create and
/// imports validate an account. Problems go to `v`.
pub(crate) struct CheckedFields {
    pub email: Option<String>,
    pub phone: Option<crate::Phone>,
    pub website: Option<String>,
    pub external_id: Option<String>,
    pub custom: Map<String, Json>,
}

/// The name and status of a new account (checked first, so they lead the error list).
pub(crate) fn check_name_status(v: &mut Validator, input: &NewAccount) -> (Option<String>, Option<String>) {
    (
        v.check("name", values::name(&input.name, 200)),
        input.status.as_deref().and_then(|s| v.check("status", check_status(s))),
    )
}

pub(crate) fn check_fields(
    v: &mut Validator,
    input: &NewAccount,
    custom: &Map<String, Json>,
    region: &str,
    definitions: &[fields::CustomField],
) -> CheckedFields {
    CheckedFields {
        email: record::check_email(v, input.email.as_deref()).flatten(),
        phone: record::check_phone(v, input.phone.as_deref(), region).flatten(),
        website: record::optional(v, "website", input.website.as_deref(), record::check_url).flatten(),
        external_id: record::optional(v, "external_id", input.external_id.as_deref(), |s| values::name(s, 200))
            .flatten(),
        custom: fields::check_values(v, definitions, custom, region),
    }
}

#[instrument(skip_all)]
pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewAccount) -> Result<Account> {
    who.require("customers.accounts.create")?;
    let mut v = Validator::new();
    let (name, status) = check_name_status(&mut v, &input);
    if let Some(c) = input.category_id {
        check_category(tx, &mut v, c)?;
    }
    if let Some(p) = input.parent_id {
        check_parent(tx, who, &mut v, p, None)?;
    }
    let (branch, owner_id) = record::place(tx, who, &mut v, input.branch_id, input.owner_id)?;
    let region = branch.as_ref().map_or("CN", |b| b.region.as_str()).to_owned();
    let definitions = fields::definitions(tx, input.category_id, RecordType::Account)?;
    let custom = input.custom.clone().unwrap_or_default();
    let CheckedFields { email, phone, website, external_id, custom } =
        check_fields(&mut v, &input, &custom, &region, &definitions);
    v.finish()?;
    let Some(branch) = branch else { return Err(Error::field("branch_id", "no such branch")) };
    let now = now();
    let mut account = Account {
        id: Id::new(),
        name: name.unwrap_or_default(),
        category_id: input.category_id,
        parent_id: input.parent_id,
        branch_id: branch.id,
        owner_id,
        status: status.unwrap_or_else(|| "active".into()),
        email,
        phone: phone.as_ref().map(|p| p.e164().to_owned()),
        phone_raw: phone.as_ref().map(|p| p.raw().to_owned()),
        website,
        external_id,
        custom,
        created_at: now,
        updated_at: now,
        version: 1,
        duplicate_candidates: None,
    };
    let insert = Query::insert()
        .into_table(Accounts::Table)
        .columns(COLUMNS)
        .values_panic([
            account.id.into(),
            account.name.clone().into(),
            account.category_id.map(Id::get).into(),
            account.parent_id.map(Id::get).into(),
            account.branch_id.into(),
            account.owner_id.map(Id::get).into(),
            account.status.clone().into(),
            account.email.clone().into(),
            account.phone.clone().into(),
            account.phone_raw.clone().into(),
            account.website.clone().into(),
            account.external_id.clone().into(),
            json_value(Json::Object(account.custom.clone())),
            now.into(),
            now.into(),
            1i64.into(),
            Option::<DateTime<Utc>>::None.into(),
        ])
        .to_owned();
    tx.execute(&insert)?;
    search::index(tx, RecordType::Account, account.id, &search_document(&account))?;
    audit::record(tx, who, "create", "account", Some(account.id), &changes(None, &account))?;
    account.duplicate_candidates = Some(record::duplicates(
        tx,
        who,
        RecordType::Account,
        account.id,
        account.email.as_deref(),
        account.phone.as_deref(),
    )?);
    Ok(account)
}

/// Writes `new` over the stored account at `old_version` and re-indexes it for search.
pub(crate) fn write_update(tx: &mut Tx<'_>, old_version: i64, new: &Account) -> Result<()> {
    let q = Query::update()
        .table(Accounts::Table)
        .values([
            (Accounts::Name, new.name.clone().into()),
            (Accounts::CategoryId, new.category_id.map(Id::get).into()),
            (Accounts::ParentId, new.parent_id.map(Id::get).into()),
            (Accounts::BranchId, new.branch_id.into()),
            (Accounts::OwnerId, new.owner_id.map(Id::get).into()),
            (Accounts::Status, new.status.clone().into()),
            (Accounts::Email, new.email.clone().into()),
            (Accounts::PhoneE164, new.phone.clone().into()),
            (Accounts::PhoneRaw, new.phone_raw.clone().into()),
            (Accounts::Website, new.website.clone().into()),
            (Accounts::ExternalId, new.external_id.clone().into()),
            (Accounts::Custom, json_value(Json::Object(new.custom.clone()))),
            (Accounts::UpdatedAt, new.updated_at.into()),
            (Accounts::Version, new.version.into()),
        ])
        .and_where(Expr::col(Accounts::Id).eq(new.id.get()))
        .and_where(Expr::col(Accounts::Version).eq(old_version))
        .to_owned();
    kernel::records::update_versioned(tx, &q, old_version)?;
    search::index(tx, RecordType::Account, new.id, &search_document(new))
}

/// The columns of a bulk insert of accounts ([`insert_values`] gives a row).
pub(crate) const INSERT_COLUMNS: [&str; 16] = [
    "id",
    "name",
    "category_id",
    "parent_id",
    "branch_id",
    "owner_id",
    "status",
    "email",
    "phone_e164",
    "phone_raw",
    "website",
    "external_id",
    "custom",
    "created_at",
    "updated_at",
    "version",
];

pub(crate) fn insert_values(a: &Account) -> Vec<sea_query::Value> {
    use sea_query::Value;
    vec![
        a.id.into(),
        a.name.clone().into(),
        Value::BigInt(a.category_id.map(Id::get)),
        Value::BigInt(a.parent_id.map(Id::get)),
        a.branch_id.into(),
        Value::BigInt(a.owner_id.map(Id::get)),
        a.status.clone().into(),
        Value::String(a.email.clone()),
        Value::String(a.phone.clone()),
        Value::String(a.phone_raw.clone()),
        Value::String(a.website.clone()),
        Value::String(a.external_id.clone()),
        Value::Json(Some(Box::new(Json::Object(a.custom.clone())))),
        a.created_at.into(),
        a.updated_at.into(),
        a.version.into(),
    ]
}

/// Live accounts in the caller's scope whose `column` (`email`, compared lower-cased,
/// `phone_e164` or `external_id`) is one of `keys`: the upsert look-up of imports.
pub(crate) fn find_by(tx: &mut Tx<'_>, who: &Principal, column: &str, keys: &[String]) -> Result<Vec<Account>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let col = Expr::col((Accounts::Table, sea_query::Alias::new(column)));
    let cond = if column == "email" {
        sea_query::Func::lower(col).is_in(keys.iter().cloned())
    } else {
        col.is_in(keys.iter().cloned())
    };
    let q = scoped(who).and_where(cond).order_by((Accounts::Table, Accounts::Id), sea_query::Order::Asc).to_owned();
    Ok(tx.fetch_all(&q)?)
}

/// A live account in the caller's scope by exact name or external id (an import's
/// `account` column); the oldest when several match.
pub(crate) fn find_by_reference(tx: &mut Tx<'_>, who: &Principal, reference: &str) -> Result<Option<Account>> {
    let q = scoped(who)
        .cond_where(
            sea_query::Condition::any()
                .add(Expr::col((Accounts::Table, Accounts::Name)).eq(reference))
                .add(Expr::col((Accounts::Table, Accounts::ExternalId)).eq(reference)),
        )
        .order_by((Accounts::Table, Accounts::Id), sea_query::Order::Asc)
        .limit(1)
        .to_owned();
    Ok(tx.fetch_optional(&q)?)
}

/// What search indexes of an account.
pub(crate) fn search_document(a: &Account) -> search::Document<'_> {
    search::Document {
        name: &a.name,
        email: a.email.as_deref(),
        phone_e164: a.phone.as_deref(),
        phone_raw: a.phone_raw.as_deref(),
        other: [a.website.as_deref(), a.external_id.as_deref()].into_iter().flatten().collect(),
    }
}

/// The audited difference between two states of an account (`None`: it was created).
pub(crate) fn changes(old: Option<&Account>, new: &Account) -> Changes {
    let changes = Changes::new();
    let Some(old) = old else {
        return changes
            .created("name", &new.name)
            .created("category_id", &new.category_id)
            .created("parent_id", &new.parent_id)
            .created("branch_id", &new.branch_id)
            .created("owner_id", &new.owner_id)
            .created("status", &new.status)
            .created("email", &new.email)
            .created("phone", &new.phone)
            .created("website", &new.website)
            .created("external_id", &new.external_id)
            .created("custom", &new.custom);
    };
    changes
        .field("name", &old.name, &new.name)
        .field("category_id", &old.category_id, &new.category_id)
        .field("parent_id", &old.parent_id, &new.parent_id)
        .field("branch_id", &old.branch_id, &new.branch_id)
        .field("owner_id", &old.owner_id, &new.owner_id)
        .field("status", &old.status, &new.status)
        .field("email", &old.email, &new.email)
        .field("phone", &old.phone, &new.phone)
        .field("website", &old.website, &new.website)
        .field("external_id", &old.external_id, &new.external_id)
        .field("custom", &old.custom, &new.custom)
}

#[instrument(skip_all, fields(account.id = %id))]
pub fn update(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: AccountPatch) -> Result<Account> {
    who.require("customers.accounts.update")?;
    let old = fetch_in_scope(tx, who, id)?;
    check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    if let Some(n) = &patch.name {
        new.name = v.check("name", values::name(n, 200)).unwrap_or_default();
    }
    if let Some(s) = patch.status.as_deref().and_then(|s| v.check("status", check_status(s))) {
        new.status = s;
    }
    if let Some(c) = patch.category_id.filter(|c| Some(*c) != old.category_id) {
        check_category(tx, &mut v, c)?;
        new.category_id = Some(c);
    }
    if let Some(p) = patch.parent_id.filter(|p| Some(*p) != old.parent_id) {
        check_parent(tx, who, &mut v, p, Some(id))?;
        new.parent_id = Some(p);
    }
    if patch.branch_id.is_some_and(|b| b != old.branch_id) || patch.owner_id.is_some_and(|o| Some(o) != old.owner_id) {
        let (branch, owner) = record::place(
            tx,
            who,
            &mut v,
            Some(patch.branch_id.unwrap_or(old.branch_id)),
            patch.owner_id.or(old.owner_id),
        )?;
        if let Some(b) = branch {
            new.branch_id = b.id;
        }
        new.owner_id = owner;
    }
    let region = record::region_of(tx, new.branch_id)?;
    if let Some(e) = record::check_email(&mut v, patch.email.as_deref()) {
        new.email = e;
    }
    if let Some(p) = record::check_phone(&mut v, patch.phone.as_deref(), &region) {
        new.phone = p.as_ref().map(|p| p.e164().to_owned());
        new.phone_raw = p.as_ref().map(|p| p.raw().to_owned());
    }
    if let Some(w) = record::optional(&mut v, "website", patch.website.as_deref(), record::check_url) {
        new.website = w;
    }
    if let Some(x) = record::optional(&mut v, "external_id", patch.external_id.as_deref(), |s| values::name(s, 200)) {
        new.external_id = x;
    }
    if patch.custom.is_some() || new.category_id != old.category_id {
        let mut merged = old.custom.clone();
        merged.extend(patch.custom.clone().unwrap_or_default());
        let definitions = fields::definitions(tx, new.category_id, RecordType::Account)?;
        new.custom = fields::check_values(&mut v, &definitions, &merged, &region);
    }
    v.finish()?;
    let changes = changes(Some(&old), &new);
    if changes.is_empty() {
        return Ok(old);
    }
    new.updated_at = now();
    new.version = old.version + 1;
    write_update(tx, old.version, &new)?;
    audit::record(tx, who, "update", "account", Some(id), &changes)?;
    Ok(new)
}

/// Soft delete; the account's contacts and child accounts keep pointing at it.
#[instrument(skip_all, fields(account.id = %id))]
pub fn delete(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    who.require("customers.accounts.delete")?;
    record::soft_delete(tx, who, RecordType::Account, id)
}

#[instrument(skip_all, fields(account.id = %id))]
pub fn restore(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Account> {
    who.require("customers.accounts.delete")?;
    record::restore(tx, who, RecordType::Account, id)?;
    fetch_in_scope(tx, who, id)
}
