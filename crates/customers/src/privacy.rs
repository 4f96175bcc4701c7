//! Data-subject requests on a contact: export everything held about the person, and
//! erase it (personal fields anonymised, aggregates kept). Both need `customers.privacy`
//! and both are audited.
//!
//! Erasure clears the contact's personal columns generically: `name` becomes "Erased
//! person", `custom` `{}`, and every other nullable column that is not a link or
//! bookkeeping ([`KEPT`]) is set to NULL (a required one with a default to its default) —
//! so columns later migrations add (addresses, birthday) are erased too. The activities and tasks of the contact keep their rows
//! (counts, dates, kinds stay) with subject and body replaced. Search terms and duplicate
//! keys go. The audit entry names the erased fields with `***`, never their values.
use kernel::audit::{self, AuditEntry, Changes};
use kernel::paging::PageRequest;
use kernel::{Error, Id, Principal, Result, Tx};
use sea_query::{Alias, Expr, ExprTrait};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use crate::activities::{self, Activity};
use crate::consent::{self, Consent};
use crate::contacts::{self, Contact};
use crate::merge::columns;
use crate::record::{RecordType, now};
use crate::tasks::{self, Task};
use crate::{duplicates, search};

/// The name an erased contact keeps.
pub const ERASED_NAME: &str = "Erased person";
/// What an erased activity or task says instead of its subject.
pub const ERASED_SUBJECT: &str = "(erased)";

/// Columns an erasure keeps: links, placement, bookkeeping, and the do-not-contact flag
/// (set on erasure, so nobody reaches the person again).
const KEPT: &[&str] = &[
    "id",
    "name",
    "custom",
    "account_id",
    "category_id",
    "status",
    "is_member",
    "branch_id",
    "owner_id",
    "created_at",
    "updated_at",
    "version",
    "deleted_at",
    "merged_into",
    "erased_at",
    "do_not_contact",
    "do_not_contact_reason",
];

/// Everything held about one person.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PersonalData {
    pub contact: Contact,
    pub do_not_contact: bool,
    pub activities: Vec<Activity>,
    pub tasks: Vec<Task>,
    pub consents: Vec<Consent>,
    /// The audit history of the contact record, newest first.
    pub audit: Vec<AuditEntry>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// The contact's id again, to confirm.
    pub confirm: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub contact_id: Id,
    /// The contact's columns that were cleared.
    pub fields: Vec<String>,
    pub activities: u64,
    pub tasks: u64,
}

fn all_pages<T>(mut fetch: impl FnMut(&PageRequest) -> Result<kernel::paging::Page<T>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut page = PageRequest::parse(Some(500), None)?;
    loop {
        let p = fetch(&page)?;
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page = PageRequest::parse(Some(500), Some(&c))?,
            None => break,
        }
    }
    Ok(out)
}

/// The personal data of a contact within the caller's scope.
#[instrument(skip_all, fields(contact.id = %id))]
pub fn export(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<PersonalData> {
    who.require("customers.privacy")?;
    let contact = contacts::fetch_in_scope(tx, who, id)?;
    let contact_id = || Expr::col(Alias::new("contact_id")).eq(id.get());
    let activities: Vec<Activity> = tx.fetch_all(&activities::live().and_where(contact_id()).to_owned())?;
    let tasks: Vec<Task> = tx.fetch_all(&tasks::live().and_where(contact_id()).to_owned())?;
    let consents = consent::history(tx, id)?;
    let do_not_contact =
        tx.query_opt_sql::<bool>("SELECT do_not_contact FROM contacts WHERE id = $1", &[id.into()])?.unwrap_or(false);
    let audit = all_pages(|page| audit::history(tx, "contact", id, page))?;
    let out = PersonalData { contact, do_not_contact, activities, tasks, consents, audit };
    audit::record(tx, who, "personal_data_export", "contact", Some(id), &Changes::new())?;
    Ok(out)
}

/// Anonymises a contact (see the module documentation). `confirm` must repeat its id.
#[instrument(skip_all, fields(contact.id = %id))]
pub fn erase(tx: &mut Tx<'_>, who: &Principal, id: Id, request: EraseRequest) -> Result<Erased> {
    who.require("customers.privacy")?;
    contacts::fetch_in_scope(tx, who, id)?;
    if request.confirm.trim() != id.to_string() {
        return Err(Error::field("confirm", "type the contact's id to confirm the erasure"));
    }
    let mut cleared = vec!["name".to_owned(), "custom".to_owned()];
    let mut sets = vec!["name = $1".to_owned(), "custom = $2".to_owned()];
    for c in columns(tx, "contacts")? {
        if KEPT.contains(&c.name.as_str()) {
            continue;
        }
        // Nullable columns become NULL, required ones with a default their default (an
        // empty list, 0); a required column without a default keeps its value.
        match (&c.not_null, &c.default) {
            (false, _) => sets.push(format!("{} = NULL", c.name)),
            (true, Some(default)) => sets.push(format!("{} = {default}", c.name)),
            (true, None) => continue,
        }
        cleared.push(c.name);
    }
    let at = now();
    sets.push("do_not_contact = $3".to_owned());
    sets.push("do_not_contact_reason = $4".to_owned());
    sets.push("erased_at = $5".to_owned());
    sets.push("updated_at = $5".to_owned());
    sets.push("version = version + 1".to_owned());
    // The records merged into this one are the same person: they go too.
    let people = merged_into(tx, id)?;
    let (mut activities, mut tasks) = (0, 0);
    let (mut activity_ids, mut task_ids) = (Vec::new(), Vec::new());
    for &person in &people {
        tx.execute_sql(
            &format!("UPDATE contacts SET {} WHERE id = $6", sets.join(", ")),
            &[
                ERASED_NAME.into(),
                sea_query::Value::Json(Some(Box::new(json!({})))),
                true.into(),
                "erased".into(),
                at.into(),
                person.into(),
            ],
        )?;
        activity_ids.extend(tx.query_sql::<Id>("SELECT id FROM activities WHERE contact_id = $1", &[person.into()])?);
        task_ids.extend(tx.query_sql::<Id>("SELECT id FROM tasks WHERE contact_id = $1", &[person.into()])?);
        activities += tx.execute_sql(
            "UPDATE activities SET subject = $1, body = NULL, updated_at = $2, version = version + 1 WHERE contact_id = $3",
            &[ERASED_SUBJECT.into(), at.into(), person.into()],
        )?;
        tasks += tx.execute_sql(
            "UPDATE tasks SET subject = $1, updated_at = $2, version = version + 1 WHERE contact_id = $3",
            &[ERASED_SUBJECT.into(), at.into(), person.into()],
        )?;
        search::remove(tx, RecordType::Contact, person)?;
        crate::details::write_tags(tx, RecordType::Contact, person, &[])?;
        duplicates::sync(tx, RecordType::Contact, person)?;
        // A merge's snapshot holds the merged records' old values; such a merge can no
        // longer be undone (merge::undo says so).
        tx.execute_sql(
            "UPDATE merges SET snapshot = $1 WHERE record_type = 'contact' AND keep_id = $2",
            &[sea_query::Value::Json(Some(Box::new(json!({"erased": true})))), person.into()],
        )?;
    }
    // Earlier audit entries hold the old values (names, phones, subjects): blank them.
    audit::redact(tx, "contact", &people)?;
    audit::redact(tx, "activity", &activity_ids)?;
    audit::redact(tx, "task", &task_ids)?;
    // Field names only: the old values must not survive in the append-only log.
    let mut changes = Changes::new();
    for f in &cleared {
        changes = changes.redacted(f);
    }
    let changes = changes.created("activities", &activities).created("tasks", &tasks);
    audit::record(tx, who, "erase", "contact", Some(id), &changes)?;
    Ok(Erased { contact_id: id, fields: cleared, activities, tasks })
}

/// `id` and every contact merged into it, directly or through earlier merges.
fn merged_into(tx: &mut Tx<'_>, id: Id) -> Result<Vec<Id>> {
    let mut people = vec![id];
    let mut next = 0;
    while next < people.len() {
        let found: Vec<Id> = tx.query_sql("SELECT id FROM contacts WHERE merged_into = $1", &[people[next].into()])?;
        people.extend(found.into_iter().filter(|f| !people.contains(f)).collect::<Vec<_>>());
        next += 1;
    }
    Ok(people)
}
