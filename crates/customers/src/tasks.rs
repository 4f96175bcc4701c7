//! Tasks: to-dos with a due time, an optional reminder and an assignee, usually about an
//! account or a contact. A task is scoped by its assignee (as a record by its owner) and
//! the branch of its account (else its contact, else the assignee).
//!
//! Reminders: setting `remind_at` queues a `customers.task_reminder` job due then. The job
//! tells the assignee (`task.reminder` event) only if the task is still open and its
//! `remind_at` is the one the job was queued for, and marks it sent (`reminded_at`), so a
//! re-run, a moved reminder or a completed task never reminds twice or late.
use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::events::Event;
use kernel::identity::{branches, check_version, users};
use kernel::jobs::{self, JobContext, JobError, NewJob};
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::values;
use kernel::{DataScope, Error, Id, Principal, Result, Tx};
use sea_query::{Condition, Expr, ExprTrait, Iden, Order, Query};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value as Json, json};
use tracing::instrument;

use crate::record::now;
use crate::{accounts, contacts};

/// The job kind of reminders; register [`reminder_job`] under it.
pub const REMINDER_JOB: &str = "customers.task_reminder";

#[derive(Iden)]
pub enum Tasks {
    Table,
    Id,
    Subject,
    DueAt,
    RemindAt,
    AssigneeId,
    AccountId,
    ContactId,
    Status,
    DoneAt,
    RemindedAt,
    BranchId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    Version,
    DeletedAt,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Task {
    pub id: Id,
    pub subject: String,
    pub due_at: DateTime<Utc>,
    pub remind_at: Option<DateTime<Utc>>,
    pub assignee_id: Id,
    pub account_id: Option<Id>,
    pub contact_id: Option<Id>,
    /// `open` or `done`.
    pub status: String,
    pub done_at: Option<DateTime<Utc>>,
    pub branch_id: Id,
    pub created_by: Option<Id>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl FromRow for Task {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Task {
            id: row.get("id")?,
            subject: row.get("subject")?,
            due_at: row.get("due_at")?,
            remind_at: row.get("remind_at")?,
            assignee_id: row.get("assignee_id")?,
            account_id: row.get("account_id")?,
            contact_id: row.get("contact_id")?,
            status: row.get("status")?,
            done_at: row.get("done_at")?,
            branch_id: row.get("branch_id")?,
            created_by: row.get("created_by")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            version: row.get("version")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// At most 200 characters.
    pub subject: String,
    /// Required.
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub remind_at: Option<DateTime<Utc>>,
    /// Default: you.
    #[serde(default)]
    pub assignee_id: Option<Id>,
    #[serde(default)]
    pub account_id: Option<Id>,
    #[serde(default)]
    pub contact_id: Option<Id>,
}

/// `null` given (clear it) versus not given (keep it).
fn given<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A partial update; `"status": "done"` completes a task, `"open"` reopens it;
/// `"remind_at": null` drops the reminder.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub remind_at: Option<Option<DateTime<Utc>>>,
    #[serde(default)]
    pub assignee_id: Option<Id>,
    /// `open` or `done`.
    #[serde(default)]
    pub status: Option<String>,
    /// The version the client last saw; a mismatch is refused with 412.
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub assignee_id: Option<Id>,
    pub account_id: Option<Id>,
    pub contact_id: Option<Id>,
    /// `open` or `done`.
    pub status: Option<String>,
}

/// The caller's open tasks: those due before today began (in their time zone) and those
/// due today, each earliest first.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MyDay {
    pub overdue: Vec<Task>,
    pub today: Vec<Task>,
}

const COLUMNS: [Tasks; 16] = [
    Tasks::Id,
    Tasks::Subject,
    Tasks::DueAt,
    Tasks::RemindAt,
    Tasks::AssigneeId,
    Tasks::AccountId,
    Tasks::ContactId,
    Tasks::Status,
    Tasks::DoneAt,
    Tasks::RemindedAt,
    Tasks::BranchId,
    Tasks::CreatedBy,
    Tasks::CreatedAt,
    Tasks::UpdatedAt,
    Tasks::Version,
    Tasks::DeletedAt,
];

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

fn check_status(input: &str) -> Result<String, String> {
    match input.trim() {
        s @ ("open" | "done") => Ok(s.to_owned()),
        _ => Err("must be open or done".into()),
    }
}

pub(crate) fn live() -> sea_query::SelectStatement {
    Query::select()
        .columns(COLUMNS.map(|c| (Tasks::Table, c)))
        .from(Tasks::Table)
        .and_where(Expr::col((Tasks::Table, Tasks::DeletedAt)).is_null())
        .to_owned()
}

fn scope(who: &Principal) -> Condition {
    who.scope_condition((Tasks::Table, Tasks::AssigneeId), (Tasks::Table, Tasks::BranchId))
}

fn fetch_in_scope(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Task> {
    let q = live().cond_where(scope(who)).and_where(Expr::col((Tasks::Table, Tasks::Id)).eq(id.get())).to_owned();
    tx.fetch_optional(&q)?.ok_or(Error::NotFound("task"))
}

/// An assignee the caller may give a task to: themselves, or (unless their scope is their
/// own rows) an active user of a branch they reach. Returns the user's branch.
fn check_assignee(tx: &mut Tx<'_>, who: &Principal, v: &mut Validator, id: Id) -> Result<Option<Id>> {
    if Some(id) == who.actor() {
        return Ok(Some(who.branch_id));
    }
    if who.scope == DataScope::Own {
        v.add("assignee_id", "you can only assign tasks to yourself");
        return Ok(None);
    }
    match users::find(tx, id)? {
        Some(u) if u.active => {
            let reaches = who.scope == DataScope::All
                || branches::find(tx, u.branch_id)?.is_some_and(|b| b.path.starts_with(&who.branch_path));
            if reaches {
                Ok(Some(u.branch_id))
            } else {
                v.add("assignee_id", "is outside the branches you reach");
                Ok(None)
            }
        }
        _ => {
            v.add("assignee_id", "no such active user");
            Ok(None)
        }
    }
}

fn queue_reminder(tx: &mut Tx<'_>, task: &Task) -> Result<()> {
    if let (Some(at), "open") = (task.remind_at, task.status.as_str()) {
        jobs::enqueue_with(
            tx,
            NewJob {
                run_at: Some(at),
                ..NewJob::new(REMINDER_JOB, json!({"task_id": task.id, "remind_at": at.to_rfc3339()}))
            },
        )?;
    }
    Ok(())
}

#[instrument(skip_all, fields(task.id = %id))]
pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Task> {
    who.require("customers.tasks.read")?;
    fetch_in_scope(tx, who, id)
}

/// Tasks within the caller's scope, newest first (by id).
pub fn list(tx: &mut Tx<'_>, who: &Principal, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>> {
    who.require("customers.tasks.read")?;
    let mut q = live()
        .cond_where(scope(who))
        .order_by((Tasks::Table, Tasks::Id), Order::Desc)
        .limit(page.fetch_limit())
        .to_owned();
    if let Some(s) = &filter.status {
        let mut v = Validator::new();
        let status = v.check("status", check_status(s));
        v.finish()?;
        q.and_where(Expr::col((Tasks::Table, Tasks::Status)).eq(status.unwrap_or_default()));
    }
    if let Some(a) = filter.assignee_id {
        q.and_where(Expr::col((Tasks::Table, Tasks::AssigneeId)).eq(a.get()));
    }
    if let Some(a) = filter.account_id {
        q.and_where(Expr::col((Tasks::Table, Tasks::AccountId)).eq(a.get()));
    }
    if let Some(c) = filter.contact_id {
        q.and_where(Expr::col((Tasks::Table, Tasks::ContactId)).eq(c.get()));
    }
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col((Tasks::Table, Tasks::Id)).lt(c.id));
    }
    let rows: Vec<Task> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |t| id_cursor(t.id)))
}

#[instrument(skip_all)]
pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewTask) -> Result<Task> {
    who.require("customers.tasks.create")?;
    let mut v = Validator::new();
    let subject = v.check("subject", values::name(&input.subject, 200));
    if input.due_at.is_none() {
        v.add("due_at", "is required");
    }
    let assignee = input.assignee_id.or(who.actor());
    let assignee_branch = match assignee {
        Some(a) => check_assignee(tx, who, &mut v, a)?,
        None => {
            v.add("assignee_id", "is required");
            None
        }
    };
    // What the caller cannot read does not exist for them: 404, not a field error.
    let account = input.account_id.map(|a| accounts::fetch_in_scope(tx, who, a)).transpose()?;
    let contact = input.contact_id.map(|c| contacts::fetch_in_scope(tx, who, c)).transpose()?;
    if let (Some(a), Some(c)) = (&account, &contact)
        && c.account_id.is_some_and(|ca| ca != a.id)
    {
        v.add("contact_id", "is a contact of another account");
    }
    v.finish()?;
    let (Some(assignee), Some(due_at)) = (assignee, input.due_at) else {
        return Err(Error::field("assignee_id", "is required"));
    };
    let branch_id = match (&account, &contact, assignee_branch) {
        (Some(a), _, _) => a.branch_id,
        (None, Some(c), _) => c.branch_id,
        (None, None, Some(b)) if b.get() != 0 => b,
        _ => kernel::setup::head_office(tx)?,
    };
    let now = now();
    let task = Task {
        id: Id::new(),
        subject: subject.unwrap_or_default(),
        due_at: micros(due_at),
        remind_at: input.remind_at.map(micros),
        assignee_id: assignee,
        account_id: account.as_ref().map(|a| a.id).or(contact.as_ref().and_then(|c| c.account_id)),
        contact_id: contact.map(|c| c.id),
        status: "open".into(),
        done_at: None,
        branch_id,
        created_by: who.actor(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let insert = Query::insert()
        .into_table(Tasks::Table)
        .columns(COLUMNS)
        .values_panic([
            task.id.into(),
            task.subject.clone().into(),
            task.due_at.into(),
            task.remind_at.into(),
            task.assignee_id.into(),
            task.account_id.map(Id::get).into(),
            task.contact_id.map(Id::get).into(),
            task.status.clone().into(),
            task.done_at.into(),
            Option::<DateTime<Utc>>::None.into(),
            task.branch_id.into(),
            task.created_by.map(Id::get).into(),
            now.into(),
            now.into(),
            1i64.into(),
            Option::<DateTime<Utc>>::None.into(),
        ])
        .to_owned();
    tx.execute(&insert)?;
    let changes = Changes::new()
        .created("subject", &task.subject)
        .created("due_at", &task.due_at)
        .created("remind_at", &task.remind_at)
        .created("assignee_id", &task.assignee_id)
        .created("account_id", &task.account_id)
        .created("contact_id", &task.contact_id);
    audit::record(tx, who, "create", "task", Some(task.id), &changes)?;
    queue_reminder(tx, &task)?;
    Ok(task)
}

#[instrument(skip_all, fields(task.id = %id))]
pub fn update(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: TaskPatch) -> Result<Task> {
    who.require("customers.tasks.update")?;
    let old = fetch_in_scope(tx, who, id)?;
    check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    if let Some(s) = &patch.subject
        && let Some(s) = v.check("subject", values::name(s, 200))
    {
        new.subject = s;
    }
    if let Some(d) = patch.due_at {
        new.due_at = micros(d);
    }
    if let Some(r) = patch.remind_at {
        new.remind_at = r.map(micros);
    }
    if let Some(a) = patch.assignee_id.filter(|a| *a != old.assignee_id)
        && check_assignee(tx, who, &mut v, a)?.is_some()
    {
        new.assignee_id = a;
    }
    if let Some(s) = &patch.status
        && let Some(s) = v.check("status", check_status(s))
    {
        if s != old.status {
            new.done_at = (s == "done").then(now);
        }
        new.status = s;
    }
    v.finish()?;
    let changes = Changes::new()
        .field("subject", &old.subject, &new.subject)
        .field("due_at", &old.due_at, &new.due_at)
        .field("remind_at", &old.remind_at, &new.remind_at)
        .field("assignee_id", &old.assignee_id, &new.assignee_id)
        .field("status", &old.status, &new.status);
    if changes.is_empty() {
        return Ok(old);
    }
    new.updated_at = now();
    new.version = old.version + 1;
    let q = Query::update()
        .table(Tasks::Table)
        .values([
            (Tasks::Subject, new.subject.clone().into()),
            (Tasks::DueAt, new.due_at.into()),
            (Tasks::RemindAt, new.remind_at.into()),
            (Tasks::AssigneeId, new.assignee_id.into()),
            (Tasks::Status, new.status.clone().into()),
            (Tasks::DoneAt, new.done_at.into()),
            (Tasks::UpdatedAt, new.updated_at.into()),
            (Tasks::Version, new.version.into()),
        ])
        .and_where(Expr::col(Tasks::Id).eq(id.get()))
        .and_where(Expr::col(Tasks::Version).eq(old.version))
        .to_owned();
    kernel::records::update_versioned(tx, &q, old.version)?;
    audit::record(tx, who, "update", "task", Some(id), &changes)?;
    // A moved reminder, or a reopened task with one, needs a job for the new time; the
    // job queued for the old time finds `remind_at` changed and does nothing.
    if new.remind_at != old.remind_at || (old.status == "done" && new.status == "open") {
        queue_reminder(tx, &new)?;
    }
    Ok(new)
}

#[instrument(skip_all, fields(task.id = %id))]
pub fn delete(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    who.require("customers.tasks.delete")?;
    kernel::records::soft_delete(tx, "tasks", id, scope(who), "task")?;
    audit::record(tx, who, "delete", "task", Some(id), &Changes::new())
}

/// The instant local midnight of `date` falls in `tz`.
fn midnight<Tz: TimeZone>(tz: &Tz, date: chrono::NaiveDate) -> DateTime<Utc> {
    let local = date.and_time(NaiveTime::MIN);
    tz.from_local_datetime(&local).earliest().map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
}

/// The caller's open tasks due today in time zone `tz` (an IANA name, e.g. the
/// principal's `time_zone`) and those overdue from earlier days. At most 500 of each.
#[instrument(skip_all)]
pub fn my_day(tx: &mut Tx<'_>, who: &Principal, now: DateTime<Utc>, tz: &str) -> Result<MyDay> {
    who.require("customers.tasks.read")?;
    let zone: chrono_tz::Tz =
        tz.parse().map_err(|_| Error::field("time_zone", format!("{tz:?} is not a time zone")))?;
    let today = now.with_timezone(&zone).date_naive();
    let start = midnight(&zone, today);
    let end = midnight(&zone, today.succ_opt().unwrap_or(today));
    let mine = || {
        live()
            .and_where(Expr::col((Tasks::Table, Tasks::AssigneeId)).eq(who.user_id.get()))
            .and_where(Expr::col((Tasks::Table, Tasks::Status)).eq("open"))
            .order_by((Tasks::Table, Tasks::DueAt), Order::Asc)
            .order_by((Tasks::Table, Tasks::Id), Order::Asc)
            .limit(500)
            .to_owned()
    };
    let overdue = mine().and_where(Expr::col((Tasks::Table, Tasks::DueAt)).lt(start)).to_owned();
    let due_today = mine()
        .and_where(Expr::col((Tasks::Table, Tasks::DueAt)).gte(start))
        .and_where(Expr::col((Tasks::Table, Tasks::DueAt)).lt(end))
        .to_owned();
    Ok(MyDay { overdue: tx.fetch_all(&overdue)?, today: tx.fetch_all(&due_today)? })
}

/// Sends the reminder a [`REMINDER_JOB`] was queued for, if it is still due: the task is
/// live, open, its `remind_at` is `remind_at` and no reminder was sent for that time.
/// Returns whether it sent one.
pub fn send_reminder(tx: &mut Tx<'_>, task_id: Id, remind_at: DateTime<Utc>) -> Result<bool> {
    let remind_at = micros(remind_at);
    let q = Query::update()
        .table(Tasks::Table)
        .value(Tasks::RemindedAt, remind_at)
        .and_where(Expr::col(Tasks::Id).eq(task_id.get()))
        .and_where(Expr::col(Tasks::DeletedAt).is_null())
        .and_where(Expr::col(Tasks::Status).eq("open"))
        .and_where(Expr::col(Tasks::RemindAt).eq(remind_at))
        .cond_where(
            Condition::any()
                .add(Expr::col(Tasks::RemindedAt).is_null())
                .add(Expr::col(Tasks::RemindedAt).ne(remind_at)),
        )
        .to_owned();
    if tx.execute(&q)? == 0 {
        return Ok(false);
    }
    let Some(task): Option<Task> =
        tx.fetch_optional(&live().and_where(Expr::col((Tasks::Table, Tasks::Id)).eq(task_id.get())).to_owned())?
    else {
        return Ok(false);
    };
    tx.emit(Event::for_user(
        "task.reminder",
        task.assignee_id.get(),
        json!({
            "task_id": task.id,
            "subject": task.subject,
            "due_at": task.due_at,
            "account_id": task.account_id,
            "contact_id": task.contact_id,
        }),
    ));
    Ok(true)
}

/// The handler of [`REMINDER_JOB`]; payload `{"task_id", "remind_at"}`.
pub fn reminder_job(ctx: &JobContext, payload: Json) -> Result<Json, JobError> {
    let task_id = payload["task_id"].as_str().and_then(|s| s.parse::<Id>().ok());
    let at = payload["remind_at"].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    let (Some(task_id), Some(at)) = (task_id, at) else {
        return Err(JobError::permanent(format!("not a reminder payload: {payload}")));
    };
    let sent = ctx
        .db()
        .write_blocking(|tx| send_reminder(tx, task_id, at.with_timezone(&Utc)))
        .map_err(JobError::retryable)?;
    Ok(json!({ "sent": sent }))
}
