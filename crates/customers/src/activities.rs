//! Activities: calls, visits, meetings, e-mails and notes logged on an account or a contact.
//! The list is scoped like any record (owner and branch); an account's timeline shows every
//! entry by anyone to whoever can read the account, so a new owner after a handover sees
//! what was promised.
use chrono::{DateTime, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::check_version;
use kernel::paging::{Cursor, Page, PageRequest, id_cursor};
use kernel::values;
use kernel::{Error, Id, Principal, Result, Tx};
use sea_query::{Condition, Expr, ExprTrait, Iden, Order, Query};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::contacts::Contacts;
use crate::record::now;
use crate::{accounts, contacts};

#[derive(Iden)]
pub enum Activities {
    Table,
    Id,
    Kind,
    AccountId,
    ContactId,
    Subject,
    Body,
    OccurredAt,
    BranchId,
    OwnerId,
    CreatedAt,
    UpdatedAt,
    Version,
    DeletedAt,
}

/// What kind of contact with the customer an activity records.
pub const KINDS: [&str; 5] = ["call", "visit", "meeting", "email", "note"];

fn check_kind(input: &str) -> Result<String, String> {
    let k = input.trim();
    if KINDS.contains(&k) { Ok(k.to_owned()) } else { Err(format!("must be one of {}", KINDS.join(", "))) }
}

const BODY_MAX: usize = 20_000;

fn check_body(input: &str) -> Result<Option<String>, String> {
    let text = input.trim();
    if text.chars().count() > BODY_MAX {
        return Err(format!("is longer than {BODY_MAX} characters"));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Activity {
    pub id: Id,
    /// `call`, `visit`, `meeting`, `email` or `note`.
    pub kind: String,
    pub account_id: Option<Id>,
    pub contact_id: Option<Id>,
    pub subject: String,
    pub body: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub branch_id: Id,
    /// Who logged it.
    pub owner_id: Option<Id>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl FromRow for Activity {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Activity {
            id: row.get("id")?,
            kind: row.get("kind")?,
            account_id: row.get("account_id")?,
            contact_id: row.get("contact_id")?,
            subject: row.get("subject")?,
            body: row.get("body")?,
            occurred_at: row.get("occurred_at")?,
            branch_id: row.get("branch_id")?,
            owner_id: row.get("owner_id")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            version: row.get("version")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewActivity {
    /// `call`, `visit`, `meeting`, `email` or `note`.
    pub kind: String,
    /// At least one of `account_id` and `contact_id`; a contact's account is filled in.
    #[serde(default)]
    pub account_id: Option<Id>,
    #[serde(default)]
    pub contact_id: Option<Id>,
    /// At most 200 characters.
    pub subject: String,
    #[serde(default)]
    pub body: Option<String>,
    /// Default: now.
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A partial update; `body` is cleared with `""`. Moving an activity to another account
/// or contact checks them like a create (in your scope; the contact at that account);
/// a new contact without an account given brings its account along.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityPatch {
    pub kind: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    /// `null` detaches it from the account (a contact must remain).
    #[serde(default, deserialize_with = "crate::details::given")]
    #[schema(value_type = Option<Id>)]
    pub account_id: Option<Option<Id>>,
    /// `null` detaches it from the contact (an account must remain).
    #[serde(default, deserialize_with = "crate::details::given")]
    #[schema(value_type = Option<Id>)]
    pub contact_id: Option<Option<Id>>,
    /// The version the client last saw; a mismatch is refused with 412.
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub account_id: Option<Id>,
    pub contact_id: Option<Id>,
    pub kind: Option<String>,
    pub owner_id: Option<Id>,
}

const COLUMNS: [Activities; 13] = [
    Activities::Id,
    Activities::Kind,
    Activities::AccountId,
    Activities::ContactId,
    Activities::Subject,
    Activities::Body,
    Activities::OccurredAt,
    Activities::BranchId,
    Activities::OwnerId,
    Activities::CreatedAt,
    Activities::UpdatedAt,
    Activities::Version,
    Activities::DeletedAt,
];

pub(crate) fn live() -> sea_query::SelectStatement {
    Query::select()
        .columns(COLUMNS.map(|c| (Activities::Table, c)))
        .from(Activities::Table)
        .and_where(Expr::col((Activities::Table, Activities::DeletedAt)).is_null())
        .to_owned()
}

fn scope(who: &Principal) -> Condition {
    who.scope_condition((Activities::Table, Activities::OwnerId), (Activities::Table, Activities::BranchId))
}

fn fetch_in_scope(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Activity> {
    let q =
        live().cond_where(scope(who)).and_where(Expr::col((Activities::Table, Activities::Id)).eq(id.get())).to_owned();
    tx.fetch_optional(&q)?.ok_or(Error::NotFound("activity"))
}

#[instrument(skip_all, fields(activity.id = %id))]
pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Activity> {
    who.require("customers.activities.read")?;
    fetch_in_scope(tx, who, id)
}

/// Activities within the caller's scope, newest first (by id).
pub fn list(tx: &mut Tx<'_>, who: &Principal, filter: &ActivityFilter, page: &PageRequest) -> Result<Page<Activity>> {
    who.require("customers.activities.read")?;
    let mut q = live()
        .cond_where(scope(who))
        .order_by((Activities::Table, Activities::Id), Order::Desc)
        .limit(page.fetch_limit())
        .to_owned();
    if let Some(a) = filter.account_id {
        q.and_where(Expr::col((Activities::Table, Activities::AccountId)).eq(a.get()));
    }
    if let Some(c) = filter.contact_id {
        q.and_where(Expr::col((Activities::Table, Activities::ContactId)).eq(c.get()));
    }
    if let Some(k) = &filter.kind {
        let mut v = Validator::new();
        let kind = v.check("kind", check_kind(k));
        v.finish()?;
        q.and_where(Expr::col((Activities::Table, Activities::Kind)).eq(kind.unwrap_or_default()));
    }
    if let Some(o) = filter.owner_id {
        q.and_where(Expr::col((Activities::Table, Activities::OwnerId)).eq(o.get()));
    }
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col((Activities::Table, Activities::Id)).lt(c.id));
    }
    let rows: Vec<Activity> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |a| id_cursor(a.id)))
}

#[instrument(skip_all)]
pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewActivity) -> Result<Activity> {
    who.require("customers.activities.create")?;
    let mut v = Validator::new();
    let kind = v.check("kind", check_kind(&input.kind));
    let subject = v.check("subject", values::name(&input.subject, 200));
    let body = input.body.as_deref().and_then(|b| v.check("body", check_body(b))).flatten();
    if input.account_id.is_none() && input.contact_id.is_none() {
        v.add("account_id", "give an account or a contact");
        v.add("contact_id", "give an account or a contact");
    }
    // What the caller cannot read does not exist for them: 404, not a field error.
    let account = input.account_id.map(|a| accounts::fetch_in_scope(tx, who, a)).transpose()?;
    let contact = input.contact_id.map(|c| contacts::fetch_in_scope(tx, who, c)).transpose()?;
    if let (Some(a), Some(c)) = (&account, &contact)
        && c.account_id.is_some_and(|ca| ca != a.id)
    {
        v.add("contact_id", "is a contact of another account");
    }
    v.finish()?;
    let account_id = account.as_ref().map(|a| a.id).or(contact.as_ref().and_then(|c| c.account_id));
    let branch_id = match (&account, &contact) {
        (Some(a), _) => a.branch_id,
        (None, Some(c)) => c.branch_id,
        (None, None) => return Err(Error::field("account_id", "give an account or a contact")),
    };
    let now = now();
    let activity = Activity {
        id: Id::new(),
        kind: kind.unwrap_or_default(),
        account_id,
        contact_id: contact.map(|c| c.id),
        subject: subject.unwrap_or_default(),
        body,
        occurred_at: input.occurred_at.map_or(now, |t| {
            use chrono::SubsecRound;
            t.trunc_subsecs(6)
        }),
        branch_id,
        owner_id: who.actor(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let insert = Query::insert()
        .into_table(Activities::Table)
        .columns(COLUMNS)
        .values_panic([
            activity.id.into(),
            activity.kind.clone().into(),
            activity.account_id.map(Id::get).into(),
            activity.contact_id.map(Id::get).into(),
            activity.subject.clone().into(),
            activity.body.clone().into(),
            activity.occurred_at.into(),
            activity.branch_id.into(),
            activity.owner_id.map(Id::get).into(),
            now.into(),
            now.into(),
            1i64.into(),
            Option::<DateTime<Utc>>::None.into(),
        ])
        .to_owned();
    tx.execute(&insert)?;
    let changes = Changes::new()
        .created("kind", &activity.kind)
        .created("account_id", &activity.account_id)
        .created("contact_id", &activity.contact_id)
        .created("subject", &activity.subject)
        .created("body", &activity.body)
        .created("occurred_at", &activity.occurred_at)
        .created("owner_id", &activity.owner_id);
    audit::record(tx, who, "create", "activity", Some(activity.id), &changes)?;
    Ok(activity)
}

#[instrument(skip_all, fields(activity.id = %id))]
pub fn update(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: ActivityPatch) -> Result<Activity> {
    who.require("customers.activities.update")?;
    let old = fetch_in_scope(tx, who, id)?;
    check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    if let Some(k) = &patch.kind
        && let Some(k) = v.check("kind", check_kind(k))
    {
        new.kind = k;
    }
    if let Some(s) = &patch.subject
        && let Some(s) = v.check("subject", values::name(s, 200))
    {
        new.subject = s;
    }
    if let Some(b) = &patch.body
        && let Some(b) = v.check("body", check_body(b))
    {
        new.body = b;
    }
    if let Some(t) = patch.occurred_at {
        use chrono::SubsecRound;
        new.occurred_at = t.trunc_subsecs(6);
    }
    let account_given = patch.account_id.is_some_and(|a| a != old.account_id);
    let contact_given = patch.contact_id.is_some_and(|c| c != old.contact_id);
    if account_given || contact_given {
        relink(
            tx,
            who,
            &mut v,
            &mut new,
            patch.account_id.filter(|_| account_given),
            patch.contact_id.filter(|_| contact_given),
        )?;
    }
    v.finish()?;
    let changes = Changes::new()
        .field("kind", &old.kind, &new.kind)
        .field("subject", &old.subject, &new.subject)
        .field("body", &old.body, &new.body)
        .field("occurred_at", &old.occurred_at, &new.occurred_at)
        .field("account_id", &old.account_id, &new.account_id)
        .field("contact_id", &old.contact_id, &new.contact_id)
        .field("branch_id", &old.branch_id, &new.branch_id);
    if changes.is_empty() {
        return Ok(old);
    }
    new.updated_at = now();
    new.version = old.version + 1;
    let q = Query::update()
        .table(Activities::Table)
        .values([
            (Activities::Kind, new.kind.clone().into()),
            (Activities::Subject, new.subject.clone().into()),
            (Activities::Body, new.body.clone().into()),
            (Activities::OccurredAt, new.occurred_at.into()),
            (Activities::AccountId, new.account_id.map(Id::get).into()),
            (Activities::ContactId, new.contact_id.map(Id::get).into()),
            (Activities::BranchId, new.branch_id.into()),
            (Activities::UpdatedAt, new.updated_at.into()),
            (Activities::Version, new.version.into()),
        ])
        .and_where(Expr::col(Activities::Id).eq(id.get()))
        .and_where(Expr::col(Activities::Version).eq(old.version))
        .to_owned();
    kernel::records::update_versioned(tx, &q, old.version)?;
    audit::record(tx, who, "update", "activity", Some(id), &changes)?;
    Ok(new)
}

/// Moves `new` to another account and/or contact, checked like a create: both in the
/// caller's scope, the contact at that account. The activity's branch follows its
/// account (else its contact).
fn relink(
    tx: &mut Tx<'_>,
    who: &Principal,
    v: &mut Validator,
    new: &mut Activity,
    account_id: Option<Option<Id>>,
    contact_id: Option<Option<Id>>,
) -> Result<()> {
    let find_account = |tx: &mut Tx<'_>, v: &mut Validator, id: Id| match accounts::fetch_in_scope(tx, who, id) {
        Ok(a) => Ok(Some(a)),
        Err(Error::NotFound(_)) => {
            v.add("account_id", "no such account");
            Ok(None)
        }
        Err(e) => Err(e),
    };
    let contact = match contact_id.unwrap_or(new.contact_id) {
        Some(id) => match contacts::fetch_in_scope(tx, who, id) {
            Ok(c) => Some(c),
            Err(Error::NotFound(_)) if contact_id.is_some() => {
                v.add("contact_id", "no such contact");
                return Ok(());
            }
            // The unchanged contact may have left the caller's scope: keep it as it is.
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let account_id = match account_id {
        Some(a) => a,
        None if contact_id.is_some() => contact.as_ref().and_then(|c| c.account_id).or(new.account_id),
        None => new.account_id,
    };
    let account = match account_id {
        Some(id) => match find_account(tx, v, id)? {
            Some(a) => Some(a),
            None => return Ok(()),
        },
        None => None,
    };
    new.contact_id = contact_id.unwrap_or(new.contact_id);
    new.account_id = account.as_ref().map(|a| a.id);
    if new.account_id.is_none() && new.contact_id.is_none() {
        v.add("account_id", "give an account or a contact");
        return Ok(());
    }
    if let (Some(a), Some(c)) = (&account, &contact)
        && c.account_id.is_some_and(|ca| ca != a.id)
    {
        v.add("contact_id", "is a contact of another account");
    }
    if let Some(b) = account.as_ref().map(|a| a.branch_id).or(contact.as_ref().map(|c| c.branch_id)) {
        new.branch_id = b;
    }
    Ok(())
}

/// Undoes [`delete`] for an activity in the caller's scope.
#[instrument(skip_all, fields(activity.id = %id))]
pub fn restore(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Activity> {
    who.require("customers.activities.delete")?;
    let q = Query::update()
        .table(Activities::Table)
        .value(Activities::DeletedAt, Option::<DateTime<Utc>>::None)
        .value(Activities::UpdatedAt, now())
        .value(Activities::Version, Expr::col((Activities::Table, Activities::Version)).add(1))
        .and_where(Expr::col((Activities::Table, Activities::Id)).eq(id.get()))
        .and_where(Expr::col((Activities::Table, Activities::DeletedAt)).is_not_null())
        .cond_where(scope(who))
        .to_owned();
    if tx.execute(&q)? == 0 {
        return Err(Error::NotFound("deleted activity"));
    }
    audit::record(tx, who, "restore", "activity", Some(id), &Changes::new())?;
    fetch_in_scope(tx, who, id)
}

#[instrument(skip_all, fields(activity.id = %id))]
pub fn delete(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    who.require("customers.activities.delete")?;
    kernel::records::soft_delete(tx, "activities", id, scope(who), "activity")?;
    audit::record(tx, who, "delete", "activity", Some(id), &Changes::new())
}

fn timeline_cursor(a: &Activity) -> Cursor {
    Cursor { key: Some(serde_json::Value::String(a.occurred_at.to_rfc3339())), id: a.id.get() }
}

/// Every live activity on account `account_id` and on its contacts, by anyone, newest
/// first (by `occurred_at`, then id). Visible to whoever can read the account.
#[instrument(skip_all, fields(account.id = %account_id))]
pub fn timeline(tx: &mut Tx<'_>, who: &Principal, account_id: Id, page: &PageRequest) -> Result<Page<Activity>> {
    who.require("customers.activities.read")?;
    accounts::get(tx, who, account_id)?;
    let its_contacts = Query::select()
        .column((Contacts::Table, Contacts::Id))
        .from(Contacts::Table)
        .and_where(Expr::col((Contacts::Table, Contacts::AccountId)).eq(account_id.get()))
        .and_where(Expr::col((Contacts::Table, Contacts::DeletedAt)).is_null())
        .to_owned();
    let account = || Expr::col((Activities::Table, Activities::AccountId));
    // Two index ranges, each newest first and limited, merged here: the account's own
    // entries on (account_id, occurred_at, id), and its contacts' loose entries (no
    // account, or another one) on (contact_id, occurred_at, id). One statement with
    // `account_id = ? OR contact_id IN (…)` cannot use either index for the order and
    // read every activity in the table at 10M rows (docs/benchmarks.md).
    let branches = [
        Condition::all().add(account().eq(account_id.get())),
        Condition::all()
            .add(Expr::col((Activities::Table, Activities::ContactId)).in_subquery(its_contacts))
            .add(Condition::any().add(account().is_null()).add(account().ne(account_id.get()))),
    ];
    newest_first(tx, page, branches)
}

/// Every live activity on contact `contact_id`, by anyone, newest first: the contact page's
/// timeline. Visible to whoever can read the contact (a rep sees a colleague's visit to
/// their customer).
#[instrument(skip_all, fields(contact.id = %contact_id))]
pub fn contact_timeline(
    tx: &mut Tx<'_>,
    who: &Principal,
    contact_id: Id,
    page: &PageRequest,
) -> Result<Page<Activity>> {
    who.require("customers.activities.read")?;
    contacts::get(tx, who, contact_id)?;
    let on_contact = Condition::all().add(Expr::col((Activities::Table, Activities::ContactId)).eq(contact_id.get()));
    newest_first(tx, page, [on_contact])
}

/// One page of the live activities matching any of `branches`, newest first: each branch
/// is read as its own limited index range on (…, occurred_at, id) and the results merged.
fn newest_first<const N: usize>(
    tx: &mut Tx<'_>,
    page: &PageRequest,
    branches: [Condition; N],
) -> Result<Page<Activity>> {
    let cursor = match &page.cursor {
        Some(c) => {
            let at = c
                .key
                .as_ref()
                .and_then(|k| k.as_str())
                .and_then(|k| DateTime::parse_from_rfc3339(k).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| Error::field("cursor", "is not a cursor returned by this list"))?;
            let occurred = || Expr::col((Activities::Table, Activities::OccurredAt));
            Some(Condition::any().add(occurred().lt(at)).add(
                Condition::all().add(occurred().eq(at)).add(Expr::col((Activities::Table, Activities::Id)).lt(c.id)),
            ))
        }
        None => None,
    };
    let mut rows: Vec<Activity> = Vec::new();
    for branch in branches {
        let mut q = live()
            .cond_where(branch)
            .order_by((Activities::Table, Activities::OccurredAt), Order::Desc)
            .order_by((Activities::Table, Activities::Id), Order::Desc)
            .limit(page.fetch_limit())
            .to_owned();
        if let Some(c) = &cursor {
            q.cond_where(c.clone());
        }
        let found: Vec<Activity> = tx.fetch_all(&q)?;
        rows.extend(found);
    }
    rows.sort_by(|a, b| b.occurred_at.cmp(&a.occurred_at).then(b.id.cmp(&a.id)));
    rows.truncate(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX));
    Ok(Page::from_rows(rows, page, timeline_cursor))
}
