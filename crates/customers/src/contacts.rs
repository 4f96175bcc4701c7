//! Contacts: the people at accounts (buyers, store managers) — or on their own. A contact's
//! custom fields are the `contact` fields of its account's category.
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
use crate::{accounts, fields, search};

#[derive(Iden)]
pub enum Contacts {
    Table,
    Id,
    Name,
    AccountId,
    BranchId,
    OwnerId,
    Email,
    PhoneE164,
    PhoneRaw,
    Custom,
    CreatedAt,
    UpdatedAt,
    Version,
    DeletedAt,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Contact {
    pub id: Id,
    pub name: String,
    pub account_id: Option<Id>,
    pub branch_id: Id,
    pub owner_id: Option<Id>,
    /// Lower-cased.
    pub email: Option<String>,
    /// E.164, e.g. `+821012345678`.
    pub phone: Option<String>,
    /// The phone as it was typed.
    pub phone_raw: Option<String>,
    /// Values of the account category's contact fields, by key.
    #[schema(value_type = Object)]
    pub custom: Map<String, Json>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Only in the answer to a create: contacts you can see with the same phone or e-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_candidates: Option<Vec<DuplicateCandidate>>,
}

impl FromRow for Contact {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let custom: Json = row.get("custom")?;
        Ok(Contact {
            id: row.get("id")?,
            name: row.get("name")?,
            account_id: row.get("account_id")?,
            branch_id: row.get("branch_id")?,
            owner_id: row.get("owner_id")?,
            email: row.get("email")?,
            phone: row.get("phone_e164")?,
            phone_raw: row.get("phone_raw")?,
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
pub struct NewContact {
    pub name: String,
    #[serde(default)]
    pub account_id: Option<Id>,
    /// Default: the account's branch, else yours.
    #[serde(default)]
    pub branch_id: Option<Id>,
    /// Default: you.
    #[serde(default)]
    pub owner_id: Option<Id>,
    #[serde(default)]
    pub email: Option<String>,
    /// Any common format; national numbers are read in the branch's region (CN or KR).
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub custom: Option<Map<String, Json>>,
}

/// A partial update. Text fields are cleared with `""`; `custom` keys are merged, a
/// `null` value clears one.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub account_id: Option<Id>,
    pub branch_id: Option<Id>,
    pub owner_id: Option<Id>,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub custom: Option<Map<String, Json>>,
    /// The version the client last saw; a mismatch is refused with 412.
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub account_id: Option<Id>,
    pub branch_id: Option<Id>,
    pub owner_id: Option<Id>,
    /// Search text (docs/search.md): only matching contacts.
    pub q: Option<String>,
}

const COLUMNS: [Contacts; 12] = [
    Contacts::Id,
    Contacts::Name,
    Contacts::AccountId,
    Contacts::BranchId,
    Contacts::OwnerId,
    Contacts::Email,
    Contacts::PhoneE164,
    Contacts::PhoneRaw,
    Contacts::Custom,
    Contacts::CreatedAt,
    Contacts::UpdatedAt,
    Contacts::Version,
];

fn scoped(who: &Principal) -> sea_query::SelectStatement {
    Query::select()
        .columns(COLUMNS.map(|c| (Contacts::Table, c)))
        .from(Contacts::Table)
        .and_where(Expr::col((Contacts::Table, Contacts::DeletedAt)).is_null())
        .cond_where(RecordType::Contact.scope(who))
        .to_owned()
}

pub(crate) fn fetch_in_scope(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Contact> {
    let q = scoped(who).and_where(Expr::col((Contacts::Table, Contacts::Id)).eq(id.get())).to_owned();
    tx.fetch_optional(&q)?.ok_or(Error::NotFound("contact"))
}

#[instrument(skip_all, fields(contact.id = %id))]
pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Contact> {
    who.require("customers.contacts.read")?;
    fetch_in_scope(tx, who, id)
}

pub fn list(tx: &mut Tx<'_>, who: &Principal, filter: &ContactFilter, page: &PageRequest) -> Result<Page<Contact>> {
    who.require("customers.contacts.read")?;
    let mut q = scoped(who).order_by((Contacts::Table, Contacts::Id), Order::Asc).limit(page.fetch_limit()).to_owned();
    if let Some(a) = filter.account_id {
        q.and_where(Expr::col((Contacts::Table, Contacts::AccountId)).eq(a.get()));
    }
    if let Some(b) = filter.branch_id {
        q.and_where(Expr::col((Contacts::Table, Contacts::BranchId)).eq(b.get()));
    }
    if let Some(o) = filter.owner_id {
        q.and_where(Expr::col((Contacts::Table, Contacts::OwnerId)).eq(o.get()));
    }
    if let Some(text) = filter.q.as_deref().filter(|t| !t.trim().is_empty()) {
        match search::filter(tx, RecordType::Contact, text)? {
            Some(cond) => q.cond_where(cond),
            None => return Ok(Page::from_rows(Vec::new(), page, |c: &Contact| id_cursor(c.id))),
        };
    }
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col((Contacts::Table, Contacts::Id)).gt(c.id));
    }
    let rows: Vec<Contact> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |c| id_cursor(c.id)))
}

/// The account a contact is attached to: one the caller sees. Returns its category and
/// branch.
fn check_account(tx: &mut Tx<'_>, who: &Principal, v: &mut Validator, id: Id) -> Result<Option<accounts::Account>> {
    match accounts::fetch_in_scope(tx, who, id) {
        Ok(a) => Ok(Some(a)),
        Err(Error::NotFound(_)) => {
            v.add("account_id", "no such account");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The audited difference between two states of a contact (`None`: it was created).
pub(crate) fn changes(old: Option<&Contact>, new: &Contact) -> Changes {
    let Some(old) = old else {
        return Changes::new()
            .created("name", &new.name)
            .created("account_id", &new.account_id)
            .created("branch_id", &new.branch_id)
            .created("owner_id", &new.owner_id)
            .created("email", &new.email)
            .created("phone", &new.phone)
            .created("custom", &new.custom);
    };
    Changes::new()
        .field("name", &old.name, &new.name)
        .field("account_id", &old.account_id, &new.account_id)
        .field("branch_id", &old.branch_id, &new.branch_id)
        .field("owner_id", &old.owner_id, &new.owner_id)
        .field("email", &old.email, &new.email)
        .field("phone", &old.phone, &new.phone)
        .field("custom", &old.custom, &new.custom)
}

/// Writes `new` over the stored contact at `old_version` (bumping nothing itself: `new`
/// carries the next version and time) and re-indexes it for search.
pub(crate) fn write_update(tx: &mut Tx<'_>, old_version: i64, new: &Contact) -> Result<()> {
    let q = Query::update()
        .table(Contacts::Table)
        .values([
            (Contacts::Name, new.name.clone().into()),
            (Contacts::AccountId, new.account_id.map(Id::get).into()),
            (Contacts::BranchId, new.branch_id.into()),
            (Contacts::OwnerId, new.owner_id.map(Id::get).into()),
            (Contacts::Email, new.email.clone().into()),
            (Contacts::PhoneE164, new.phone.clone().into()),
            (Contacts::PhoneRaw, new.phone_raw.clone().into()),
            (Contacts::Custom, json_value(Json::Object(new.custom.clone()))),
            (Contacts::UpdatedAt, new.updated_at.into()),
            (Contacts::Version, new.version.into()),
        ])
        .and_where(Expr::col(Contacts::Id).eq(new.id.get()))
        .and_where(Expr::col(Contacts::Version).eq(old_version))
        .to_owned();
    kernel::records::update_versioned(tx, &q, old_version)?;
    search::index(tx, RecordType::Contact, new.id, &search_document(new))
}

/// The columns of a bulk insert of contacts ([`insert_values`] gives a row).
pub(crate) const INSERT_COLUMNS: [&str; 12] = [
    "id",
    "name",
    "account_id",
    "branch_id",
    "owner_id",
    "email",
    "phone_e164",
    "phone_raw",
    "custom",
    "created_at",
    "updated_at",
    "version",
];

pub(crate) fn insert_values(c: &Contact) -> Vec<sea_query::Value> {
    use sea_query::Value;
    vec![
        c.id.into(),
        c.name.clone().into(),
        Value::BigInt(c.account_id.map(Id::get)),
        c.branch_id.into(),
        Value::BigInt(c.owner_id.map(Id::get)),
        Value::String(c.email.clone()),
        Value::String(c.phone.clone()),
        Value::String(c.phone_raw.clone()),
        Value::Json(Some(Box::new(Json::Object(c.custom.clone())))),
        c.created_at.into(),
        c.updated_at.into(),
        c.version.into(),
    ]
}

/// Live contacts in the caller's scope whose `column` (`email`, compared lower-cased, or
/// `phone_e164`) is one of `keys`: the upsert look-up of imports, one query per batch.
pub(crate) fn find_by(tx: &mut Tx<'_>, who: &Principal, column: &str, keys: &[String]) -> Result<Vec<Contact>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let col = Expr::col((Contacts::Table, sea_query::Alias::new(column)));
    let cond = if column == "email" {
        sea_query::Func::lower(col).is_in(keys.iter().cloned())
    } else {
        col.is_in(keys.iter().cloned())
    };
    let q = scoped(who).and_where(cond).order_by((Contacts::Table, Contacts::Id), Order::Asc).to_owned();
    Ok(tx.fetch_all(&q)?)
}

/// What search indexes of a contact.
pub(crate) fn search_document(c: &Contact) -> search::Document<'_> {
    search::Document {
        name: &c.name,
        email: c.email.as_deref(),
        phone_e164: c.phone.as_deref(),
        phone_raw: c.phone_raw.as_deref(),
        other: Vec::new(),
    }
}

/// A new contact's own fields, checked and normalised: the one place the API's create and
/// imports validate a contact (after its name: lower-cased e-mail, E.164 phone in `region`, custom
/// values against the category's `definitions`). Problems go to `v`.
pub(crate) struct CheckedFields {
    pub email: Option<String>,
    pub phone: Option<crate::Phone>,
    pub custom: Map<String, Json>,
}

pub(crate) fn check_fields(
    v: &mut Validator,
    email: Option<&str>,
    phone: Option<&str>,
    custom: &Map<String, Json>,
    region: &str,
    definitions: &[fields::CustomField],
) -> CheckedFields {
    CheckedFields {
        email: record::check_email(v, email).flatten(),
        phone: record::check_phone(v, phone, region).flatten(),
        custom: fields::check_values(v, definitions, custom, region),
    }
}

#[instrument(skip_all)]
pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewContact) -> Result<Contact> {
    who.require("customers.contacts.create")?;
    let mut v = Validator::new();
    let name = v.check("name", values::name(&input.name, 200));
    let account = match input.account_id {
        Some(a) => check_account(tx, who, &mut v, a)?,
        None => None,
    };
    let branch_id = input.branch_id.or(account.as_ref().map(|a| a.branch_id));
    let (branch, owner_id) = record::place(tx, who, &mut v, branch_id, input.owner_id)?;
    let region = branch.as_ref().map_or("CN", |b| b.region.as_str()).to_owned();
    let definitions = fields::definitions(tx, account.as_ref().and_then(|a| a.category_id), RecordType::Contact)?;
    let CheckedFields { email, phone, custom } = check_fields(
        &mut v,
        input.email.as_deref(),
        input.phone.as_deref(),
        &input.custom.unwrap_or_default(),
        &region,
        &definitions,
    );
    v.finish()?;
    let Some(branch) = branch else { return Err(Error::field("branch_id", "no such branch")) };
    let now = now();
    let mut contact = Contact {
        id: Id::new(),
        name: name.unwrap_or_default(),
        account_id: account.map(|a| a.id),
        branch_id: branch.id,
        owner_id,
        email,
        phone: phone.as_ref().map(|p| p.e164().to_owned()),
        phone_raw: phone.as_ref().map(|p| p.raw().to_owned()),
        custom,
        created_at: now,
        updated_at: now,
        version: 1,
        duplicate_candidates: None,
    };
    let insert = Query::insert()
        .into_table(Contacts::Table)
        .columns(COLUMNS)
        .values_panic([
            contact.id.into(),
            contact.name.clone().into(),
            contact.account_id.map(Id::get).into(),
            contact.branch_id.into(),
            contact.owner_id.map(Id::get).into(),
            contact.email.clone().into(),
            contact.phone.clone().into(),
            contact.phone_raw.clone().into(),
            json_value(Json::Object(contact.custom.clone())),
            now.into(),
            now.into(),
            1i64.into(),
        ])
        .to_owned();
    tx.execute(&insert)?;
    search::index(tx, RecordType::Contact, contact.id, &search_document(&contact))?;
    audit::record(tx, who, "create", "contact", Some(contact.id), &changes(None, &contact))?;
    contact.duplicate_candidates = Some(record::duplicates(
        tx,
        who,
        RecordType::Contact,
        contact.id,
        contact.email.as_deref(),
        contact.phone.as_deref(),
    )?);
    Ok(contact)
}

#[instrument(skip_all, fields(contact.id = %id))]
pub fn update(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: ContactPatch) -> Result<Contact> {
    who.require("customers.contacts.update")?;
    let old = fetch_in_scope(tx, who, id)?;
    check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    if let Some(n) = &patch.name {
        new.name = v.check("name", values::name(n, 200)).unwrap_or_default();
    }
    // The custom fields come from the account's category; a contact whose account is
    // unchanged keeps them even if the account has since moved out of the caller's scope.
    let mut category_changed = false;
    let category = match patch.account_id.filter(|a| Some(*a) != old.account_id) {
        Some(wanted) => match check_account(tx, who, &mut v, wanted)? {
            Some(account) => {
                new.account_id = Some(account.id);
                category_changed = true;
                account.category_id
            }
            None => None,
        },
        None => match old.account_id {
            Some(a) => accounts::find(tx, a)?.and_then(|a| a.category_id),
            None => None,
        },
    };
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
    if patch.custom.is_some() || category_changed {
        let mut merged = old.custom.clone();
        merged.extend(patch.custom.clone().unwrap_or_default());
        let definitions = fields::definitions(tx, category, RecordType::Contact)?;
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
    audit::record(tx, who, "update", "contact", Some(id), &changes)?;
    Ok(new)
}

#[instrument(skip_all, fields(contact.id = %id))]
pub fn delete(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    who.require("customers.contacts.delete")?;
    record::soft_delete(tx, who, RecordType::Contact, id)
}

#[instrument(skip_all, fields(contact.id = %id))]
pub fn restore(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Contact> {
    who.require("customers.contacts.delete")?;
    record::restore(tx, who, RecordType::Contact, id)?;
    fetch_in_scope(tx, who, id)
}
