//! Contacts: the people at accounts (buyers, store managers) — or on their own, such as
//! card members (individual consumers). A person can be a member and a contact of an
//! account at once. A contact's custom fields are the `contact` fields of its own
//! category when it has one, else of its account's category.
use chrono::{DateTime, NaiveDate, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::check_version;
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::values;
use kernel::{Error, Id, Principal, Result, Tx};
use sea_query::{Condition, Expr, ExprTrait, Iden, Order, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use tracing::instrument;

use crate::details::{self, Address};
use crate::filter::{self, CustomCondition, Sort};
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
    CategoryId,
    Status,
    Title,
    Addresses,
    IsMember,
    CardNo,
    Birthday,
    Gender,
    HouseholdSize,
    MemberSince,
    Tags,
}

pub const STATUSES: [&str; 2] = ["active", "inactive"];
pub const GENDERS: [&str; 4] = ["female", "male", "other", "unspecified"];

fn one_of(list: &[&str], input: &str) -> Result<String, String> {
    let s = input.trim();
    list.iter().find(|k| **k == s).map(|k| (*k).to_owned()).ok_or_else(|| format!("must be one of {}", list.join(", ")))
}

fn check_status(s: &str) -> Result<String, String> {
    one_of(&STATUSES, s)
}

fn check_household(n: i64) -> Result<i32, String> {
    match i32::try_from(n) {
        Ok(n) if (1..=20).contains(&n) => Ok(n),
        _ => Err("must be between 1 and 20".into()),
    }
}

fn check_birthday(d: NaiveDate) -> Result<NaiveDate, String> {
    if d > Utc::now().date_naive() {
        return Err("is in the future".into());
    }
    if d < NaiveDate::from_ymd_opt(1880, 1, 1).unwrap_or(d) {
        return Err("is too long ago".into());
    }
    Ok(d)
}

fn check_card(s: &str) -> Result<String, String> {
    let s = values::name(s, 40)?;
    if s.chars().any(char::is_whitespace) {
        return Err("cannot contain spaces".into());
    }
    Ok(s)
}

/// A clash on the card number index names the field.
fn card_clash(e: Error) -> Error {
    match e {
        Error::Conflict { .. } => Error::conflict("card_no", "another contact has this membership card number"),
        other => other,
    }
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
    /// Values of the category's contact fields, by key.
    #[schema(value_type = Object)]
    pub custom: Map<String, Json>,
    /// The contact's own category (e.g. individual member); without one, its custom
    /// fields are its account category's.
    pub category_id: Option<Id>,
    /// `active` or `inactive`.
    pub status: String,
    /// Job title.
    pub title: Option<String>,
    pub addresses: Vec<Address>,
    pub is_member: bool,
    /// Membership card number, unique among live contacts.
    pub card_no: Option<String>,
    pub birthday: Option<NaiveDate>,
    /// `female`, `male`, `other` or `unspecified`.
    pub gender: Option<String>,
    /// 1..=20.
    pub household_size: Option<i32>,
    pub member_since: Option<NaiveDate>,
    /// Trimmed, lower-cased.
    pub tags: Vec<String>,
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
            category_id: row.get("category_id")?,
            status: row.get("status")?,
            title: row.get("title")?,
            addresses: details::list_from(row.get("addresses")?),
            is_member: row.get("is_member")?,
            card_no: row.get("card_no")?,
            birthday: row.get("birthday")?,
            gender: row.get("gender")?,
            household_size: row.get("household_size")?,
            member_since: row.get("member_since")?,
            tags: details::list_from(row.get("tags")?),
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
    #[serde(default)]
    pub category_id: Option<Id>,
    /// Default: `active`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub addresses: Option<Vec<Address>>,
    #[serde(default)]
    pub is_member: Option<bool>,
    #[serde(default)]
    pub card_no: Option<String>,
    #[serde(default)]
    pub birthday: Option<NaiveDate>,
    #[serde(default)]
    pub gender: Option<String>,
    #[serde(default)]
    pub household_size: Option<i64>,
    #[serde(default)]
    pub member_since: Option<NaiveDate>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
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
    /// `null` clears it (the account's category applies again).
    #[serde(default, deserialize_with = "details::given")]
    #[schema(value_type = Option<Id>)]
    pub category_id: Option<Option<Id>>,
    pub status: Option<String>,
    /// `""` clears it.
    pub title: Option<String>,
    /// Replaces the list; `[]` clears it.
    pub addresses: Option<Vec<Address>>,
    pub is_member: Option<bool>,
    /// `""` clears it.
    pub card_no: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "details::given")]
    #[schema(value_type = Option<NaiveDate>)]
    pub birthday: Option<Option<NaiveDate>>,
    /// `""` clears it.
    pub gender: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "details::given")]
    #[schema(value_type = Option<i64>)]
    pub household_size: Option<Option<i64>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "details::given")]
    #[schema(value_type = Option<NaiveDate>)]
    pub member_since: Option<Option<NaiveDate>>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    /// The version the client last saw; a mismatch is refused with 412.
    pub version: Option<i64>,
}

/// Which contacts a list shows and in what order: the one filter of the API list, the
/// pages, saved views and exports. [`ContactFilter::from_query`] reads it from a query
/// string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactFilter {
    pub account_id: Option<Id>,
    /// The contact's own category.
    pub category_id: Option<Id>,
    /// This branch and the branches below it.
    pub branch_id: Option<Id>,
    pub owner_id: Option<Id>,
    pub status: Option<String>,
    pub tag: Option<String>,
    pub is_member: Option<bool>,
    /// Search text (docs/search.md): only matching contacts.
    pub q: Option<String>,
    /// `custom.<key>[.gte|.lte]=<value>` conditions, all of which must hold.
    pub custom: Vec<CustomCondition>,
    pub sort: Sort,
}

impl ContactFilter {
    /// Reads `account_id, category_id, branch_id, owner_id, status, tag, is_member, q,
    /// sort, custom.<key>` (`limit` and `cursor` are paging's and skipped). An unknown
    /// parameter is an error naming it. Custom keys are checked when the list runs.
    pub fn from_query(pairs: &[(String, String)]) -> Result<ContactFilter> {
        let mut f = ContactFilter::default();
        let (shared, account_id, is_member) = f.parts();
        shared.read_query(pairs, |name, value| match name {
            "account_id" => Some(filter::once(account_id, name, filter::parse_id(value))),
            "is_member" => Some(filter::once(is_member, name, filter::parse_bool(value))),
            _ => None,
        })?;
        Ok(f)
    }

    /// The query-string pairs that [`ContactFilter::from_query`] reads back into this filter.
    pub fn to_query(&self) -> Vec<(String, String)> {
        let mut f = self.clone();
        let (shared, _, _) = f.parts();
        shared.to_query(
            [("account_id", self.account_id.map(|i| i.to_string()))],
            [("is_member", self.is_member.map(|b| b.to_string()))],
        )
    }

    /// Checks what only the database knows (custom keys, the branch), as a list would.
    pub fn check(&self, tx: &mut Tx<'_>) -> Result<()> {
        self.conditions(tx).map(|_| ())
    }

    /// Every condition but search, which [`list`] adds.
    fn conditions(&self, tx: &mut Tx<'_>) -> Result<Condition> {
        let col = |c: Contacts| Expr::col((Contacts::Table, c));
        let mut c = Condition::all();
        if let Some(a) = self.account_id {
            c = c.add(col(Contacts::AccountId).eq(a.get()));
        }
        let mut f = self.clone();
        let (shared, _, _) = f.parts();
        c = c.add(shared.conditions(tx)?);
        if let Some(m) = self.is_member {
            c = c.add(col(Contacts::IsMember).eq(m));
        }
        Ok(c.add(shared.custom_conditions(tx)?))
    }

    /// The parameters shared with accounts, then the contact's own `account_id` and
    /// `is_member`.
    fn parts(&mut self) -> (filter::Shared<'_>, &mut Option<Id>, &mut Option<bool>) {
        let shared = filter::Shared {
            category_id: &mut self.category_id,
            branch_id: &mut self.branch_id,
            owner_id: &mut self.owner_id,
            status: &mut self.status,
            tag: &mut self.tag,
            q: &mut self.q,
            custom: &mut self.custom,
            sort: &mut self.sort,
            kind: RecordType::Contact,
            check_status,
        };
        (shared, &mut self.account_id, &mut self.is_member)
    }
}

const COLUMNS: [Contacts; 23] = [
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
    Contacts::CategoryId,
    Contacts::Status,
    Contacts::Title,
    Contacts::Addresses,
    Contacts::IsMember,
    Contacts::CardNo,
    Contacts::Birthday,
    Contacts::Gender,
    Contacts::HouseholdSize,
    Contacts::MemberSince,
    Contacts::Tags,
];

/// Every row of the table, deleted ones included, in id order (for rebuilding the search
/// terms from the rows).
pub(crate) fn every_row() -> sea_query::SelectStatement {
    Query::select()
        .columns(COLUMNS.map(|c| (Contacts::Table, c)))
        .from(Contacts::Table)
        .order_by((Contacts::Table, Contacts::Id), sea_query::Order::Asc)
        .to_owned()
}

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
    let mut contact = fetch_in_scope(tx, who, id)?;
    hide_stale_values(tx, std::slice::from_mut(&mut contact))?;
    Ok(contact)
}

/// The category whose contact fields a contact carries: its own, else its account's.
fn fields_category(tx: &mut Tx<'_>, own: Option<Id>, account: Option<Id>) -> Result<Option<Id>> {
    if own.is_some() {
        return Ok(own);
    }
    match account {
        Some(a) => Ok(accounts::find(tx, a)?.and_then(|a| a.category_id)),
        None => Ok(None),
    }
}

/// Drops custom values that are no longer fields of each contact's category (a deleted
/// field's values stay stored but are not shown).
fn hide_stale_values(tx: &mut Tx<'_>, contacts: &mut [Contact]) -> Result<()> {
    if contacts.iter().all(|c| c.custom.is_empty()) {
        return Ok(());
    }
    let defs = fields::all_definitions(tx, RecordType::Contact)?;
    // The categories of the accounts of contacts without their own, in one query.
    let wanted: Vec<i64> = contacts
        .iter()
        .filter(|c| !c.custom.is_empty() && c.category_id.is_none())
        .filter_map(|c| c.account_id.map(Id::get))
        .collect();
    let account_categories: Vec<AccountCategory> = if wanted.is_empty() {
        Vec::new()
    } else {
        let q = Query::select()
            .columns([accounts::Accounts::Id, accounts::Accounts::CategoryId])
            .from(accounts::Accounts::Table)
            .and_where(Expr::col(accounts::Accounts::Id).is_in(wanted))
            .to_owned();
        tx.fetch_all(&q)?
    };
    for c in contacts.iter_mut().filter(|c| !c.custom.is_empty()) {
        let category = c
            .category_id
            .or_else(|| account_categories.iter().find(|a| Some(a.id) == c.account_id).and_then(|a| a.category_id));
        let mine: Vec<fields::CustomField> = defs.iter().filter(|f| Some(f.category_id) == category).cloned().collect();
        fields::visible(&mine, &mut c.custom);
    }
    Ok(())
}

struct AccountCategory {
    id: Id,
    category_id: Option<Id>,
}

impl FromRow for AccountCategory {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(AccountCategory { id: row.get("id")?, category_id: row.get("category_id")? })
    }
}

pub fn list(tx: &mut Tx<'_>, who: &Principal, filter: &ContactFilter, page: &PageRequest) -> Result<Page<Contact>> {
    who.require("customers.contacts.read")?;
    let mut q = scoped(who).limit(page.fetch_limit()).to_owned();
    q.cond_where(filter.conditions(tx)?);
    let sort = filter.sort;
    let cursor = |c: &Contact| sort.cursor(c.id, &c.name, c.created_at, c.updated_at);
    if let Some(text) = filter.q.as_deref().filter(|t| !t.trim().is_empty()) {
        match search::filter(tx, RecordType::Contact, text)? {
            Some(cond) => q.cond_where(cond),
            None => return Ok(Page::from_rows(Vec::new(), page, cursor)),
        };
    }
    sort.apply(&mut q, RecordType::Contact, page.cursor.as_ref())?;
    let mut rows: Vec<Contact> = tx.fetch_all(&q)?;
    hide_stale_values(tx, &mut rows)?;
    Ok(Page::from_rows(rows, page, cursor))
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

/// Writes `new` over the stored contact at `old_version` (bumping nothing itself: `new`
/// carries the next version and time) and re-indexes it for search.
pub(crate) fn write_update(tx: &mut Tx<'_>, old_version: i64, new: &Contact, tags_changed: bool) -> Result<()> {
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
            (Contacts::CategoryId, new.category_id.map(Id::get).into()),
            (Contacts::Status, new.status.clone().into()),
            (Contacts::Title, new.title.clone().into()),
            (Contacts::Addresses, json_value(serde_json::json!(new.addresses))),
            (Contacts::IsMember, new.is_member.into()),
            (Contacts::CardNo, new.card_no.clone().into()),
            (Contacts::Birthday, new.birthday.into()),
            (Contacts::Gender, new.gender.clone().into()),
            (Contacts::HouseholdSize, new.household_size.into()),
            (Contacts::MemberSince, new.member_since.into()),
            (Contacts::Tags, json_value(serde_json::json!(new.tags))),
            (Contacts::UpdatedAt, new.updated_at.into()),
            (Contacts::Version, new.version.into()),
        ])
        .and_where(Expr::col(Contacts::Id).eq(new.id.get()))
        .and_where(Expr::col(Contacts::Version).eq(old_version))
        .to_owned();
    kernel::records::update_versioned(tx, &q, old_version).map_err(card_clash)?;
    if tags_changed {
        details::write_tags(tx, RecordType::Contact, new.id, &new.tags)?;
    }
    search::index(tx, RecordType::Contact, new.id, &search_document(new))?;
    crate::duplicates::sync(tx, RecordType::Contact, new.id)?;
    Ok(())
}

/// The columns of a bulk insert of contacts ([`insert_values`] gives a row): every column
/// but `deleted_at`.
pub(crate) const INSERT_COLUMNS: [&str; 23] = [
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
    "category_id",
    "status",
    "title",
    "addresses",
    "is_member",
    "card_no",
    "birthday",
    "gender",
    "household_size",
    "member_since",
    "tags",
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
        Value::BigInt(c.category_id.map(Id::get)),
        c.status.clone().into(),
        Value::String(c.title.clone()),
        Value::Json(Some(Box::new(serde_json::json!(c.addresses)))),
        c.is_member.into(),
        Value::String(c.card_no.clone()),
        Value::ChronoDate(c.birthday),
        Value::String(c.gender.clone()),
        Value::Int(c.household_size),
        Value::ChronoDate(c.member_since),
        Value::Json(Some(Box::new(serde_json::json!(c.tags)))),
    ]
}

/// Writes new contacts in bulk with everything their create writes besides the audit
/// entry — the row, tag rows, search terms and duplicate keys — for imports (which audit
/// per batch) and generated demo data. The records must be checked already (as
/// `create` checks them); a card number already taken fails the whole batch.
pub fn insert_many(tx: &mut Tx<'_>, list: &[&Contact]) -> Result<()> {
    let prepared = list.iter().map(|c| prepare_insert(c)).collect();
    insert_prepared(tx, list, prepared)
}

/// Everything the bulk insert of one new contact writes but its tags, worked out ahead:
/// an import does this on its checking thread while the writer writes the previous batch.
pub(crate) struct PreparedInsert {
    values: Vec<sea_query::Value>,
    indexed: record::Indexed,
}

pub(crate) fn prepare_insert(c: &Contact) -> PreparedInsert {
    PreparedInsert {
        values: insert_values(c),
        indexed: record::Indexed::new(RecordType::Contact, c.id, &search_document(c)),
    }
}

/// Inserts new contacts with what [`prepare_insert`] worked out for each, in order: the
/// rows, tags, search documents and duplicate keys.
pub(crate) fn insert_prepared(tx: &mut Tx<'_>, list: &[&Contact], prepared: Vec<PreparedInsert>) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let (rows, indexed): (Vec<_>, Vec<_>) = prepared.into_iter().map(|p| (p.values, p.indexed)).unzip();
    tx.insert_rows("contacts", &INSERT_COLUMNS, &rows).map_err(|e| card_clash(e.into()))?;
    drop(rows);
    let tags: Vec<(Id, &[String])> = list.iter().map(|c| (c.id, c.tags.as_slice())).collect();
    record::insert_indexes(tx, RecordType::Contact, &tags, indexed)
}

/// Live contacts in the caller's scope whose `column` (`email`, compared lower-cased, or
/// `phone_e164`) is one of `keys`: the upsert look-up of imports, one query per batch.
pub(crate) fn find_by(tx: &mut Tx<'_>, who: &Principal, column: &str, keys: &[String]) -> Result<Vec<Contact>> {
    record::find_by_keys(tx, RecordType::Contact, scoped(who), column, keys)
}

/// What search indexes of a contact: the one function the write paths, imports and
/// `search::reindex_all` use, so they index the same fields. The membership card is cut
/// both as a word (prefixes) and as a number (four-digit fragments).
pub fn search_document(c: &Contact) -> search::Document<'_> {
    search::Document {
        name: &c.name,
        email: c.email.as_deref(),
        phone_e164: c.phone.as_deref(),
        phone_raw: c.phone_raw.as_deref(),
        numbers: c.card_no.as_deref().into_iter().collect(),
        other: [c.card_no.as_deref(), c.title.as_deref()].into_iter().flatten().collect(),
    }
}

/// The checked member and profile fields of a create.
struct Profile {
    status: String,
    title: Option<String>,
    addresses: Vec<Address>,
    card_no: Option<String>,
    birthday: Option<NaiveDate>,
    gender: Option<String>,
    household_size: Option<i32>,
    member_since: Option<NaiveDate>,
    tags: Vec<String>,
}

fn check_profile(v: &mut Validator, input: &NewContact) -> Profile {
    Profile {
        status: input
            .status
            .as_deref()
            .and_then(|s| v.check("status", check_status(s)))
            .unwrap_or_else(|| "active".into()),
        title: record::optional(v, "title", input.title.as_deref(), |s| values::name(s, 200)).flatten(),
        addresses: details::check_addresses(v, input.addresses.as_deref().unwrap_or_default()),
        card_no: record::optional(v, "card_no", input.card_no.as_deref(), check_card).flatten(),
        birthday: input.birthday.and_then(|d| v.check("birthday", check_birthday(d))),
        gender: record::optional(v, "gender", input.gender.as_deref(), |s| one_of(&GENDERS, s)).flatten(),
        household_size: input.household_size.and_then(|n| v.check("household_size", check_household(n))),
        member_since: input.member_since,
        tags: details::check_tags(v, input.tags.as_deref().unwrap_or_default()),
    }
}

fn check_category(tx: &mut Tx<'_>, v: &mut Validator, id: Id) -> Result<()> {
    if fields::find_category(tx, id)?.is_none() {
        v.add("category_id", "no such category");
    }
    Ok(())
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
    if let Some(c) = input.category_id {
        check_category(tx, &mut v, c)?;
    }
    let category = input.category_id.or(account.as_ref().and_then(|a| a.category_id));
    let definitions = fields::definitions(tx, category, RecordType::Contact)?;
    let CheckedFields { email, phone, custom } = check_fields(
        &mut v,
        input.email.as_deref(),
        input.phone.as_deref(),
        &input.custom.clone().unwrap_or_default(),
        &region,
        &definitions,
    );
    let profile = check_profile(&mut v, &input);
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
        category_id: input.category_id,
        status: profile.status,
        title: profile.title,
        addresses: profile.addresses,
        is_member: input.is_member.unwrap_or(false),
        card_no: profile.card_no,
        birthday: profile.birthday,
        gender: profile.gender,
        household_size: profile.household_size,
        member_since: profile.member_since,
        tags: profile.tags,
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
            contact.category_id.map(Id::get).into(),
            contact.status.clone().into(),
            contact.title.clone().into(),
            json_value(serde_json::json!(contact.addresses)),
            contact.is_member.into(),
            contact.card_no.clone().into(),
            contact.birthday.into(),
            contact.gender.clone().into(),
            contact.household_size.into(),
            contact.member_since.into(),
            json_value(serde_json::json!(contact.tags)),
        ])
        .to_owned();
    tx.execute(&insert).map_err(|e| card_clash(e.into()))?;
    details::write_tags(tx, RecordType::Contact, contact.id, &contact.tags)?;
    search::index(tx, RecordType::Contact, contact.id, &search_document(&contact))?;
    crate::duplicates::sync(tx, RecordType::Contact, contact.id)?;
    let changes = changes(None, &contact);
    audit::record(tx, who, "create", "contact", Some(contact.id), &changes)?;
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

/// The audited difference between two states of a contact (`None`: it was created).
pub(crate) fn changes(old: Option<&Contact>, new: &Contact) -> Changes {
    macro_rules! fields {
        ($($f:ident),*) => {
            match old {
                None => Changes::new()$(.created(stringify!($f), &new.$f))*,
                Some(old) => Changes::new()$(.field(stringify!($f), &old.$f, &new.$f))*,
            }
        };
    }
    fields!(
        name,
        account_id,
        branch_id,
        owner_id,
        email,
        phone,
        custom,
        category_id,
        status,
        title,
        addresses,
        is_member,
        card_no,
        birthday,
        gender,
        household_size,
        member_since,
        tags
    )
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
    // The custom fields come from the contact's own category, else the account's; a
    // contact whose account is unchanged keeps them even if the account has since moved
    // out of the caller's scope.
    let mut category_changed = false;
    if let Some(wanted) = patch.account_id.filter(|a| Some(*a) != old.account_id)
        && let Some(account) = check_account(tx, who, &mut v, wanted)?
    {
        new.account_id = Some(account.id);
        category_changed = true;
    }
    if let Some(c) = patch.category_id.filter(|c| *c != old.category_id) {
        if let Some(id) = c {
            check_category(tx, &mut v, id)?;
        }
        new.category_id = c;
        category_changed = true;
    }
    let category = fields_category(tx, new.category_id, new.account_id)?;
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
        let definitions = fields::definitions(tx, category, RecordType::Contact)?;
        new.custom = fields::merge_values(&mut v, &definitions, &old.custom, patch.custom.clone(), &region);
    }
    if let Some(s) = patch.status.as_deref().and_then(|s| v.check("status", check_status(s))) {
        new.status = s;
    }
    if let Some(t) = record::optional(&mut v, "title", patch.title.as_deref(), |s| values::name(s, 200)) {
        new.title = t;
    }
    if let Some(a) = &patch.addresses {
        new.addresses = details::check_addresses(&mut v, a);
    }
    if let Some(m) = patch.is_member {
        new.is_member = m;
    }
    if let Some(c) = record::optional(&mut v, "card_no", patch.card_no.as_deref(), check_card) {
        new.card_no = c;
    }
    if let Some(b) = patch.birthday {
        new.birthday = b.and_then(|d| v.check("birthday", check_birthday(d)));
    }
    if let Some(g) = record::optional(&mut v, "gender", patch.gender.as_deref(), |s| one_of(&GENDERS, s)) {
        new.gender = g;
    }
    if let Some(h) = patch.household_size {
        new.household_size = h.and_then(|n| v.check("household_size", check_household(n)));
    }
    if let Some(m) = patch.member_since {
        new.member_since = m;
    }
    if let Some(t) = &patch.tags {
        new.tags = details::check_tags(&mut v, t);
    }
    v.finish()?;
    let changes = changes(Some(&old), &new);
    if changes.is_empty() {
        return Ok(old);
    }
    new.updated_at = now();
    new.version = old.version + 1;
    write_update(tx, old.version, &new, old.tags != new.tags)?;
    audit::record(tx, who, "update", "contact", Some(id), &changes)?;
    hide_stale_values(tx, std::slice::from_mut(&mut new))?;
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

/// Deleted contacts in the caller's scope, most recently created first (to restore).
pub fn list_deleted(tx: &mut Tx<'_>, who: &Principal, page: &PageRequest) -> Result<Page<Contact>> {
    who.require("customers.contacts.delete")?;
    let mut q = Query::select()
        .columns(COLUMNS.map(|c| (Contacts::Table, c)))
        .from(Contacts::Table)
        .and_where(Expr::col((Contacts::Table, Contacts::DeletedAt)).is_not_null())
        .cond_where(RecordType::Contact.scope(who))
        .order_by((Contacts::Table, Contacts::Id), Order::Desc)
        .limit(page.fetch_limit())
        .to_owned();
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col((Contacts::Table, Contacts::Id)).lt(c.id));
    }
    let rows: Vec<Contact> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |c| id_cursor(c.id)))
}
