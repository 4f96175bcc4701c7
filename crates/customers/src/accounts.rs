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
use sea_query::{Condition, Expr, ExprTrait, Iden, Order, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use tracing::instrument;

use crate::details::{self, Address, PhoneEntry};
use crate::filter::{self, CustomCondition, Sort};
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
    Region,
    Addresses,
    Phones,
    Emails,
    CreditLimitMinor,
    PaymentTermsDays,
    Tags,
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
    /// A sales region (free text, e.g. `East China`).
    pub region: Option<String>,
    pub addresses: Vec<Address>,
    /// Phones beyond the primary one.
    pub phones: Vec<PhoneEntry>,
    /// E-mails beyond the primary one, lower-cased.
    pub emails: Vec<String>,
    /// The credit limit in the company's currency, two decimals: `"50000.00"`.
    pub credit_limit: Option<String>,
    /// Days to pay an invoice (0..=365).
    pub payment_terms_days: Option<i32>,
    /// Trimmed, lower-cased.
    pub tags: Vec<String>,
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
            region: row.get("region")?,
            addresses: details::list_from(row.get("addresses")?),
            phones: details::list_from(row.get("phones")?),
            emails: details::list_from(row.get("emails")?),
            credit_limit: row.get::<Option<i64>>("credit_limit_minor")?.map(details::format_money),
            payment_terms_days: row.get("payment_terms_days")?,
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
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub addresses: Option<Vec<Address>>,
    /// Extra phones, any common format.
    #[serde(default)]
    pub phones: Option<Vec<String>>,
    #[serde(default)]
    pub emails: Option<Vec<String>>,
    /// A decimal string with at most two decimals, e.g. `"50000.00"`.
    #[serde(default)]
    pub credit_limit: Option<String>,
    #[serde(default)]
    pub payment_terms_days: Option<i64>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
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
    pub region: Option<String>,
    /// Replaces the list; `[]` clears it.
    pub addresses: Option<Vec<Address>>,
    /// Replaces the list of extra phones.
    pub phones: Option<Vec<String>>,
    /// Replaces the list of extra e-mails.
    pub emails: Option<Vec<String>>,
    /// `""` clears it.
    pub credit_limit: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "details::given")]
    #[schema(value_type = Option<i64>)]
    pub payment_terms_days: Option<Option<i64>>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    /// The version the client last saw; a mismatch is refused with 412.
    pub version: Option<i64>,
}

/// Which accounts a list shows and in what order: the one filter of the API list, the
/// pages, saved views and exports. [`AccountFilter::from_query`] reads it from a query
/// string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountFilter {
    pub category_id: Option<Id>,
    /// This branch and the branches below it.
    pub branch_id: Option<Id>,
    pub owner_id: Option<Id>,
    pub status: Option<String>,
    /// Accounts carrying this tag.
    pub tag: Option<String>,
    /// Search text (docs/search.md): only matching accounts.
    pub q: Option<String>,
    /// `custom.<key>[.gte|.lte]=<value>` conditions, all of which must hold.
    pub custom: Vec<CustomCondition>,
    pub sort: Sort,
}

impl AccountFilter {
    /// Reads `category_id, branch_id, owner_id, status, tag, q, sort, custom.<key>`
    /// (`limit` and `cursor` are paging's and skipped). An unknown parameter is an error
    /// naming it. Custom keys are checked against the fields when the list runs.
    pub fn from_query(pairs: &[(String, String)]) -> Result<AccountFilter> {
        let mut f = AccountFilter::default();
        f.shared().read_query(pairs, |_, _| None)?;
        Ok(f)
    }

    /// The query-string pairs that [`AccountFilter::from_query`] reads back into this filter.
    pub fn to_query(&self) -> Vec<(String, String)> {
        self.clone().shared().to_query([], [])
    }

    /// Checks what only the database knows (custom keys, the branch), as a list would.
    pub fn check(&self, tx: &mut Tx<'_>) -> Result<()> {
        self.conditions(tx).map(|_| ())
    }

    /// Every condition but search, which [`list`] adds.
    fn conditions(&self, tx: &mut Tx<'_>) -> Result<Condition> {
        let mut f = self.clone();
        let shared = f.shared();
        Ok(shared.conditions(tx)?.add(shared.custom_conditions(tx)?))
    }

    fn shared(&mut self) -> filter::Shared<'_> {
        filter::Shared {
            category_id: &mut self.category_id,
            branch_id: &mut self.branch_id,
            owner_id: &mut self.owner_id,
            status: &mut self.status,
            tag: &mut self.tag,
            q: &mut self.q,
            custom: &mut self.custom,
            sort: &mut self.sort,
            kind: RecordType::Account,
            check_status,
        }
    }
}

const COLUMNS: [Accounts; 24] = [
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
    Accounts::Region,
    Accounts::Addresses,
    Accounts::Phones,
    Accounts::Emails,
    Accounts::CreditLimitMinor,
    Accounts::PaymentTermsDays,
    Accounts::Tags,
];

/// Every row of the table, deleted ones included, in id order (for rebuilding the search
/// terms from the rows).
pub(crate) fn every_row() -> sea_query::SelectStatement {
    Query::select()
        .columns(COLUMNS.map(|c| (Accounts::Table, c)))
        .from(Accounts::Table)
        .order_by((Accounts::Table, Accounts::Id), sea_query::Order::Asc)
        .to_owned()
}

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
    let mut account = fetch_in_scope(tx, who, id)?;
    hide_stale_values(tx, std::slice::from_mut(&mut account))?;
    Ok(account)
}

/// Drops custom values that are no longer fields of each account's category (a deleted
/// field's values stay stored but are not shown).
fn hide_stale_values(tx: &mut Tx<'_>, accounts: &mut [Account]) -> Result<()> {
    if accounts.iter().all(|a| a.custom.is_empty()) {
        return Ok(());
    }
    let defs = fields::all_definitions(tx, RecordType::Account)?;
    for a in accounts {
        let mine: Vec<fields::CustomField> =
            defs.iter().filter(|f| Some(f.category_id) == a.category_id).cloned().collect();
        fields::visible(&mine, &mut a.custom);
    }
    Ok(())
}

pub fn list(tx: &mut Tx<'_>, who: &Principal, filter: &AccountFilter, page: &PageRequest) -> Result<Page<Account>> {
    who.require("customers.accounts.read")?;
    let mut q = scoped(who).limit(page.fetch_limit()).to_owned();
    q.cond_where(filter.conditions(tx)?);
    let sort = filter.sort;
    let cursor = |a: &Account| sort.cursor(a.id, &a.name, a.created_at, a.updated_at);
    if let Some(text) = filter.q.as_deref().filter(|t| !t.trim().is_empty()) {
        match search::filter(tx, RecordType::Account, text)? {
            Some(cond) => q.cond_where(cond),
            None => return Ok(Page::from_rows(Vec::new(), page, cursor)),
        };
    }
    sort.apply(&mut q, RecordType::Account, page.cursor.as_ref())?;
    let mut rows: Vec<Account> = tx.fetch_all(&q)?;
    hide_stale_values(tx, &mut rows)?;
    Ok(Page::from_rows(rows, page, cursor))
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
    let more = check_more(&mut v, &region, input.region, input.addresses, input.phones, input.emails);
    let credit_limit = record::optional(&mut v, "credit_limit", input.credit_limit.as_deref(), details::parse_money)
        .flatten()
        .map(details::format_money);
    let payment_terms_days = input.payment_terms_days.and_then(|d| v.check("payment_terms_days", check_terms(d)));
    let tags = details::check_tags(&mut v, &input.tags.unwrap_or_default());
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
        region: more.region.flatten(),
        addresses: more.addresses.unwrap_or_default(),
        phones: more.phones.unwrap_or_default(),
        emails: more.emails.unwrap_or_default(),
        credit_limit,
        payment_terms_days,
        tags,
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
            account.region.clone().into(),
            json_value(serde_json::json!(account.addresses)),
            json_value(serde_json::json!(account.phones)),
            json_value(serde_json::json!(account.emails)),
            credit_minor(&account).into(),
            account.payment_terms_days.into(),
            json_value(serde_json::json!(account.tags)),
        ])
        .to_owned();
    tx.execute(&insert)?;
    details::write_tags(tx, RecordType::Account, account.id, &account.tags)?;
    search::index(tx, RecordType::Account, account.id, &search_document(&account))?;
    crate::duplicates::sync(tx, RecordType::Account, account.id)?;
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
pub(crate) fn write_update(tx: &mut Tx<'_>, old_version: i64, new: &Account, tags_changed: bool) -> Result<()> {
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
            (Accounts::Region, new.region.clone().into()),
            (Accounts::Addresses, json_value(serde_json::json!(new.addresses))),
            (Accounts::Phones, json_value(serde_json::json!(new.phones))),
            (Accounts::Emails, json_value(serde_json::json!(new.emails))),
            (Accounts::CreditLimitMinor, credit_minor(new).into()),
            (Accounts::PaymentTermsDays, new.payment_terms_days.into()),
            (Accounts::Tags, json_value(serde_json::json!(new.tags))),
            (Accounts::UpdatedAt, new.updated_at.into()),
            (Accounts::Version, new.version.into()),
        ])
        .and_where(Expr::col(Accounts::Id).eq(new.id.get()))
        .and_where(Expr::col(Accounts::Version).eq(old_version))
        .to_owned();
    kernel::records::update_versioned(tx, &q, old_version)?;
    if tags_changed {
        details::write_tags(tx, RecordType::Account, new.id, &new.tags)?;
    }
    search::index(tx, RecordType::Account, new.id, &search_document(new))?;
    crate::duplicates::sync(tx, RecordType::Account, new.id)?;
    Ok(())
}

/// The columns of a bulk insert of accounts ([`insert_values`] gives a row): every column
/// but `deleted_at`.
pub(crate) const INSERT_COLUMNS: [&str; 23] = [
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
    "region",
    "addresses",
    "phones",
    "emails",
    "credit_limit_minor",
    "payment_terms_days",
    "tags",
];

pub(crate) fn insert_values(a: &Account) -> Vec<sea_query::Value> {
    use sea_query::Value;
    let json = |j: Json| Value::Json(Some(Box::new(j)));
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
        json(Json::Object(a.custom.clone())),
        a.created_at.into(),
        a.updated_at.into(),
        a.version.into(),
        Value::String(a.region.clone()),
        json(serde_json::json!(a.addresses)),
        json(serde_json::json!(a.phones)),
        json(serde_json::json!(a.emails)),
        Value::BigInt(credit_minor(a)),
        Value::Int(a.payment_terms_days),
        json(serde_json::json!(a.tags)),
    ]
}

/// Writes new accounts in bulk with everything their create writes besides the audit
/// entry — the row, tag rows, search terms and duplicate keys — for imports (which audit
/// per batch) and generated demo data. The records must be checked already (as `create`
/// checks them).
pub fn insert_many(tx: &mut Tx<'_>, list: &[&Account]) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<sea_query::Value>> = list.iter().map(|a| insert_values(a)).collect();
    tx.insert_rows("accounts", &INSERT_COLUMNS, &rows)?;
    drop(rows);
    let tags: Vec<(Id, &[String])> = list.iter().map(|a| (a.id, a.tags.as_slice())).collect();
    let indexed = list.iter().map(|a| record::Indexed::new(RecordType::Account, a.id, &search_document(a))).collect();
    record::insert_indexes(tx, RecordType::Account, &tags, indexed)
}

/// Live accounts in the caller's scope whose `column` (`email`, compared lower-cased,
/// `phone_e164` or `external_id`) is one of `keys`: the upsert look-up of imports.
pub(crate) fn find_by(tx: &mut Tx<'_>, who: &Principal, column: &str, keys: &[String]) -> Result<Vec<Account>> {
    record::find_by_keys(tx, RecordType::Account, scoped(who), column, keys)
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

/// What search indexes of an account: the one function the write paths, imports and
/// `search::reindex_all` use, so they index the same fields.
pub fn search_document(a: &Account) -> search::Document<'_> {
    search::Document {
        name: &a.name,
        email: a.email.as_deref(),
        phone_e164: a.phone.as_deref(),
        phone_raw: a.phone_raw.as_deref(),
        numbers: a.phones.iter().flat_map(|p| [p.e164.as_str(), p.raw.as_str()]).collect(),
        other: [a.website.as_deref(), a.external_id.as_deref()]
            .into_iter()
            .flatten()
            .chain(a.emails.iter().map(String::as_str))
            .collect(),
    }
}

/// The credit limit in minor units, as stored.
fn credit_minor(a: &Account) -> Option<i64> {
    a.credit_limit.as_deref().and_then(|c| details::parse_money(c).ok())
}

fn check_terms(days: i64) -> Result<i32, String> {
    match i32::try_from(days) {
        Ok(d) if (0..=365).contains(&d) => Ok(d),
        _ => Err("must be between 0 and 365 days".into()),
    }
}

/// The checked region, addresses, extra phones and e-mails (`None`: not given).
struct More {
    region: Option<Option<String>>,
    addresses: Option<Vec<Address>>,
    phones: Option<Vec<PhoneEntry>>,
    emails: Option<Vec<String>>,
}

fn check_more(
    v: &mut Validator,
    phone_region: &str,
    region: Option<String>,
    addresses: Option<Vec<Address>>,
    phones: Option<Vec<String>>,
    emails: Option<Vec<String>>,
) -> More {
    More {
        region: record::optional(v, "region", region.as_deref(), |s| values::name(s, 100)),
        addresses: addresses.map(|a| details::check_addresses(v, &a)),
        phones: phones.map(|p| details::check_phones(v, &p, phone_region)),
        emails: emails.map(|e| details::check_emails(v, &e)),
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
            .created("custom", &new.custom)
            .created("region", &new.region)
            .created("addresses", &new.addresses)
            .created("phones", &new.phones)
            .created("emails", &new.emails)
            .created("credit_limit", &new.credit_limit)
            .created("payment_terms_days", &new.payment_terms_days)
            .created("tags", &new.tags);
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
        .field("region", &old.region, &new.region)
        .field("addresses", &old.addresses, &new.addresses)
        .field("phones", &old.phones, &new.phones)
        .field("emails", &old.emails, &new.emails)
        .field("credit_limit", &old.credit_limit, &new.credit_limit)
        .field("payment_terms_days", &old.payment_terms_days, &new.payment_terms_days)
        .field("tags", &old.tags, &new.tags)
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
        let definitions = fields::definitions(tx, new.category_id, RecordType::Account)?;
        new.custom = fields::merge_values(&mut v, &definitions, &old.custom, patch.custom.clone(), &region);
    }
    let more = check_more(&mut v, &region, patch.region, patch.addresses, patch.phones, patch.emails);
    if let Some(r) = more.region {
        new.region = r;
    }
    if let Some(a) = more.addresses {
        new.addresses = a;
    }
    if let Some(p) = more.phones {
        new.phones = p;
    }
    if let Some(e) = more.emails {
        new.emails = e;
    }
    if let Some(c) = record::optional(&mut v, "credit_limit", patch.credit_limit.as_deref(), details::parse_money) {
        new.credit_limit = c.map(details::format_money);
    }
    if let Some(d) = patch.payment_terms_days {
        new.payment_terms_days = d.and_then(|d| v.check("payment_terms_days", check_terms(d)));
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
    audit::record(tx, who, "update", "account", Some(id), &changes)?;
    hide_stale_values(tx, std::slice::from_mut(&mut new))?;
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

/// The live accounts directly below `id` (a chain's stores) that the caller sees, by name;
/// at most `limit`.
pub fn children(tx: &mut Tx<'_>, who: &Principal, id: Id, limit: u64) -> Result<Vec<Account>> {
    who.require("customers.accounts.read")?;
    let q = scoped(who)
        .and_where(Expr::col((Accounts::Table, Accounts::ParentId)).eq(id.get()))
        .order_by((Accounts::Table, Accounts::Name), Order::Asc)
        .limit(limit)
        .to_owned();
    Ok(tx.fetch_all(&q)?)
}

/// Deleted accounts in the caller's scope, most recently created first (to restore).
pub fn list_deleted(tx: &mut Tx<'_>, who: &Principal, page: &PageRequest) -> Result<Page<Account>> {
    who.require("customers.accounts.delete")?;
    let mut q = Query::select()
        .columns(COLUMNS.map(|c| (Accounts::Table, c)))
        .from(Accounts::Table)
        .and_where(Expr::col((Accounts::Table, Accounts::DeletedAt)).is_not_null())
        .cond_where(RecordType::Account.scope(who))
        .order_by((Accounts::Table, Accounts::Id), Order::Desc)
        .limit(page.fetch_limit())
        .to_owned();
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col((Accounts::Table, Accounts::Id)).lt(c.id));
    }
    let rows: Vec<Account> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |a| id_cursor(a.id)))
}
