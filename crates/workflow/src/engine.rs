//! Running approvals. [`submit`] starts the first matching process on a record; the
//! approvers of its first step get approval tasks. [`decide`] approves, rejects or passes
//! one task on. Each is one transaction.
//!
//! Concurrency: every decision first bumps its instance's `version` (`UPDATE … WHERE id =
//! $1 AND status = 'running'`), which takes the instance's row lock on PostgreSQL (SQLite
//! has one writer anyway). Two approvers of one parallel step deciding at once are thus
//! serialised: the second sees the first's approval and each is counted once. The task's
//! own update is conditional (`AND status = 'pending'`), and a repeat of a decision
//! already recorded answers with the task as it is, so a decision posted twice counts once.
//! Nothing is kept in memory between requests: a server killed mid-decision rolls that
//! decision back, and the next request resumes from the committed rows.
use chrono::{DateTime, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::identity::users;
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::{Error, Id, Principal, Result, Tx};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::notifications::{self, Text};
use crate::processes::{self, Approver, Process, Step};
use crate::registry::{ApprovalStatus, Registry, Subject};

fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

#[derive(Debug, Clone)]
struct Instance {
    id: Id,
    process_id: Id,
    process_number: i64,
    record_type: String,
    record_id: Id,
    requester_id: Option<Id>,
}

impl FromRow for Instance {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Instance {
            id: row.get("id")?,
            process_id: row.get("process_id")?,
            process_number: row.get("process_number")?,
            record_type: row.get("record_type")?,
            record_id: row.get("record_id")?,
            requester_id: row.get("requester_id")?,
        })
    }
}

#[derive(Debug, Clone)]
struct StepRow {
    id: Id,
    number: i64,
    kind: String,
    needed: i64,
}

impl FromRow for StepRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(StepRow {
            id: row.get("id")?,
            number: row.get("number")?,
            kind: row.get("kind")?,
            needed: row.get("needed")?,
        })
    }
}

/// One approval task: an item in an approver's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Approval {
    pub id: Id,
    pub record_type: String,
    pub record_id: Id,
    /// The step's number in its process, from 1.
    pub step: i64,
    /// `sequential`, `parallel` or `relay`.
    pub step_kind: String,
    /// `pending`, `approved`, `rejected`, `passed` (handed on, relay steps) or
    /// `cancelled` (the step ended without this decision).
    pub status: String,
    pub instance_id: Id,
    pub process_id: Id,
    pub process_name: String,
    pub process_version: i64,
    pub requester_id: Option<Id>,
    pub approver_id: Id,
    pub approver_name: String,
    pub comment: Option<String>,
    /// The task this one was passed on from (relay steps).
    pub passed_from: Option<Id>,
    /// Whom this task was passed on to.
    pub passed_to: Option<Id>,
    pub decided_by: Option<Id>,
    /// When a delegate decided: the approver they stood in for.
    pub on_behalf_of: Option<Id>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl FromRow for Approval {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let mut a = Approval {
            id: row.get("id")?,
            record_type: row.get("record_type")?,
            record_id: row.get("record_id")?,
            step: row.get("step")?,
            step_kind: row.get("step_kind")?,
            status: row.get("status")?,
            instance_id: row.get("instance_id")?,
            process_id: row.get("process_id")?,
            process_name: row.get("process_name")?,
            process_version: row.get("process_version")?,
            requester_id: row.get("requester_id")?,
            approver_id: row.get("approver_id")?,
            approver_name: row.get("approver_name")?,
            comment: row.get("comment")?,
            passed_from: row.get("passed_from")?,
            passed_to: row.get("passed_to")?,
            decided_by: row.get("decided_by")?,
            on_behalf_of: None,
            decided_at: row.get("decided_at")?,
            created_at: row.get("created_at")?,
        };
        a.on_behalf_of = a.decided_by.filter(|d| *d != a.approver_id).map(|_| a.approver_id);
        Ok(a)
    }
}

const APPROVALS: &str = "SELECT t.id, i.record_type, i.record_id, s.number AS step, s.kind AS step_kind, t.status, \
     t.instance_id, i.process_id, v.name AS process_name, i.process_number AS process_version, i.requester_id, \
     t.approver_id, u.name AS approver_name, t.comment, t.passed_from, t.passed_to, t.decided_by, t.decided_at, \
     t.created_at FROM approval_tasks t JOIN approval_steps s ON s.id = t.step_id \
     JOIN approval_instances i ON i.id = t.instance_id \
     JOIN approval_process_versions v ON v.process_id = i.process_id AND v.number = i.process_number \
     JOIN users u ON u.id = t.approver_id";

/// An approval as a record's history shows it: one instance, its steps and decisions.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct History {
    pub instance_id: Id,
    pub process_id: Id,
    pub process_name: String,
    pub process_version: i64,
    /// `running`, `approved` or `rejected`.
    pub status: String,
    /// The step now running (or the last one).
    pub step: i64,
    pub steps: usize,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub decisions: Vec<Approval>,
}

struct InstanceSummary {
    id: Id,
    process_id: Id,
    process_number: i64,
    status: String,
    step: i64,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl FromRow for InstanceSummary {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(InstanceSummary {
            id: row.get("id")?,
            process_id: row.get("process_id")?,
            process_number: row.get("process_number")?,
            status: row.get("status")?,
            step: row.get("step")?,
            started_at: row.get("started_at")?,
            finished_at: row.get("finished_at")?,
        })
    }
}

/// The approvals a record went through, newest first, each with every decision. The
/// caller must already have checked the caller may read the record.
pub fn history(tx: &mut Tx<'_>, record_type: &str, record_id: Id) -> Result<Vec<History>> {
    let instances: Vec<InstanceSummary> = tx.query_sql(
        "SELECT id, process_id, process_number, status, step, started_at, finished_at FROM approval_instances \
         WHERE record_type = $1 AND record_id = $2 ORDER BY id DESC LIMIT 50",
        &[record_type.into(), record_id.into()],
    )?;
    let mut out = Vec::new();
    for i in instances {
        let process = processes::version(tx, i.process_id, i.process_number)?;
        let decisions: Vec<Approval> =
            tx.query_sql(&format!("{APPROVALS} WHERE t.instance_id = $1 ORDER BY s.number, t.id"), &[i.id.into()])?;
        out.push(History {
            instance_id: i.id,
            process_id: i.process_id,
            process_name: process.name,
            process_version: i.process_number,
            status: i.status,
            step: i.step,
            steps: process.steps.len(),
            started_at: i.started_at,
            finished_at: i.finished_at,
            decisions,
        });
    }
    Ok(out)
}

/// The approver's tasks: `pending` (the inbox) or `decided`, newest first.
pub fn list_mine(tx: &mut Tx<'_>, who: &Principal, which: &str, page: &PageRequest) -> Result<Page<Approval>> {
    who.require("workflow.approvals.read")?;
    let after = page.cursor.as_ref().map_or(i64::MAX, |c| c.id);
    let limit = page.fetch_limit() as i64;
    let rows: Vec<Approval> = match which {
        // Pending: mine, and those of approvers I stand in for now.
        "pending" => tx.query_sql(
            &format!(
                "{APPROVALS} WHERE (t.approver_id = $1 OR {}) AND t.status = 'pending' AND t.id < $3 \
                 ORDER BY t.id DESC LIMIT $4",
                crate::delegations::DELEGATED
            ),
            &[who.user_id.into(), now().into(), after.into(), limit.into()],
        )?,
        "decided" => tx.query_sql(
            &format!(
                "{APPROVALS} WHERE (t.approver_id = $1 OR t.decided_by = $1) AND t.status <> 'pending' AND t.id < $2 \
                 ORDER BY t.id DESC LIMIT $3"
            ),
            &[who.user_id.into(), after.into(), limit.into()],
        )?,
        _ => return Err(Error::field("mine", "must be pending or decided")),
    };
    Ok(Page::from_rows(rows, page, |a| id_cursor(a.id)))
}

/// How many items wait in the caller's inbox (the header's count).
pub fn pending_count(tx: &mut Tx<'_>, who: &Principal) -> Result<i64> {
    let n: Vec<i64> = tx.query_sql(
        &format!(
            "SELECT COUNT(*) FROM approval_tasks t WHERE (t.approver_id = $1 OR {}) AND t.status = 'pending'",
            crate::delegations::DELEGATED
        ),
        &[who.user_id.into(), now().into()],
    )?;
    Ok(n.first().copied().unwrap_or(0))
}

fn fetch_approval(tx: &mut Tx<'_>, id: Id) -> Result<Option<Approval>> {
    Ok(tx.query_opt_sql(&format!("{APPROVALS} WHERE t.id = $1"), &[id.into()])?)
}

/// One approval task: its approver, or whoever may read approval processes, sees it.
pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Approval> {
    who.require("workflow.approvals.read")?;
    let a = fetch_approval(tx, id)?.ok_or(Error::NotFound("approval"))?;
    if a.approver_id == who.user_id || a.requester_id == who.actor() || who.can("workflow.processes.read") {
        Ok(a)
    } else {
        Err(Error::NotFound("approval"))
    }
}

/// The active users one approver entry stands for on this record.
fn resolve(tx: &mut Tx<'_>, approver: &Approver, subject: &Subject) -> Result<Vec<Id>> {
    let active =
        |tx: &mut Tx<'_>, id: Id| -> Result<Option<Id>> { Ok(users::find(tx, id)?.filter(|u| u.active).map(|u| u.id)) };
    match approver {
        Approver::User { user_id } => Ok(active(tx, *user_id)?.into_iter().collect()),
        Approver::Manager => match users::find(tx, subject.owner_id)?.and_then(|u| u.manager_id) {
            Some(m) => Ok(active(tx, m)?.into_iter().collect()),
            None => Ok(Vec::new()),
        },
        Approver::Role { role } => {
            // The record's branch, then each parent: the nearest with such users wins.
            let path = kernel::identity::branches::find(tx, subject.branch_id)?.map(|b| b.path).unwrap_or_default();
            let mut ancestors: Vec<Id> = path.split('/').filter_map(|s| s.parse::<Id>().ok()).collect();
            ancestors.reverse();
            for branch in ancestors {
                let ids: Vec<i64> = tx.query_sql(
                    "SELECT id FROM users WHERE role = $1 AND branch_id = $2 AND active = $3 AND deleted_at IS NULL \
                     ORDER BY id",
                    &[role.as_str().into(), branch.into(), true.into()],
                )?;
                if !ids.is_empty() {
                    return Ok(ids.into_iter().map(Id).collect());
                }
            }
            Ok(Vec::new())
        }
    }
}

/// Starts step `number` (from 1) of `process` on `instance`: a step row and one pending
/// task per approver. Refused (422, nothing written) when the step finds too few approvers.
fn start_step(
    tx: &mut Tx<'_>,
    instance: &Instance,
    process: &Process,
    number: i64,
    subject: &Subject,
    label: &Text,
) -> Result<()> {
    let index = (number - 1) as usize;
    let Some(step) = process.steps.get(index) else {
        return Err(Error::Internal(format!("process {} has no step {number}", process.id)));
    };
    let mut approvers: Vec<Id> = Vec::new();
    for a in &step.approvers {
        for id in resolve(tx, a, subject)? {
            if !approvers.contains(&id) {
                approvers.push(id);
            }
        }
    }
    let field = format!("steps[{index}].approvers");
    if approvers.is_empty() {
        return Err(Error::field(
            field,
            format!(
                "step {number} of \"{}\" finds no active approver for this record (no such user, manager or role holder)",
                process.name
            ),
        ));
    }
    let needed = needed(step, approvers.len());
    if needed > approvers.len() as i64 {
        return Err(Error::field(
            field,
            format!(
                "step {number} needs {needed} approvals but finds only {} approvers for this record",
                approvers.len()
            ),
        ));
    }
    let now = now();
    let step_id = Id::new();
    tx.execute_sql(
        "INSERT INTO approval_steps (id, instance_id, number, kind, needed, status, started_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
        &[step_id.into(), instance.id.into(), number.into(), step.kind.clone().into(), needed.into(), now.into()],
    )?;
    for approver in approvers {
        insert_task(tx, instance.id, step_id, approver, None, now)?;
        notify_approver(
            tx,
            approver,
            now,
            "approval.requested",
            Text::msg("notice-requested-title").arg("title", &subject.title),
            Text::msg("notice-requested-body")
                .arg("type", label.clone())
                .arg("step", number)
                .arg("process", &process.name),
        )?;
    }
    Ok(())
}

/// Tells an approver that an item waits for them, and whoever stands in for them now
/// (a delegate decides in their place, so must hear of it too).
fn notify_approver(
    tx: &mut Tx<'_>,
    approver: Id,
    at: DateTime<Utc>,
    kind: &str,
    title: Text,
    body: Text,
) -> Result<()> {
    notifications::notify(tx, approver, kind, title.clone(), body.clone(), Some("/approvals"))?;
    let name = kernel::identity::users::find(tx, approver)?.map(|u| u.name).unwrap_or_default();
    for delegate in crate::delegations::delegates_of(tx, approver, at)? {
        notifications::notify(
            tx,
            delegate,
            kind,
            Text::msg("notice-standing-in").arg("title", title.clone()).arg("name", &name),
            body.clone(),
            Some("/approvals"),
        )?;
    }
    Ok(())
}

fn needed(step: &Step, approvers: usize) -> i64 {
    match (step.kind.as_str(), step.rule.as_str()) {
        ("parallel", "all") => approvers as i64,
        ("parallel", "quorum") => i64::from(step.quorum.unwrap_or(1)),
        _ => 1,
    }
}

fn insert_task(
    tx: &mut Tx<'_>,
    instance: Id,
    step: Id,
    approver: Id,
    from: Option<Id>,
    at: DateTime<Utc>,
) -> Result<Id> {
    let id = Id::new();
    tx.execute_sql(
        "INSERT INTO approval_tasks (id, instance_id, step_id, approver_id, status, passed_from, created_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
        &[id.into(), instance.into(), step.into(), approver.into(), from.map(Id::get).into(), at.into()],
    )?;
    Ok(id)
}

/// What a submission started.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Started {
    pub instance_id: Id,
    pub process_id: Id,
    pub process_version: i64,
}

/// Submits a record for approval: the first active process of its type (by priority)
/// whose conditions hold starts, and the record turns `pending` (locked). 409 when the
/// record is already pending or approved, or no process applies.
#[instrument(skip_all, fields(record.type = record_type, record.id = %record_id))]
pub fn submit(
    tx: &mut Tx<'_>,
    who: &Principal,
    registry: &Registry,
    record_type: &str,
    record_id: Id,
) -> Result<Started> {
    let rt = registry
        .get(record_type)
        .cloned()
        .ok_or_else(|| Error::field("record_type", format!("{record_type:?} is not a registered record type")))?;
    let subject = rt.load_for_submit(tx, who, record_id)?;
    let mut chosen = None;
    'processes: for p in processes::candidates(tx, record_type)? {
        for c in &p.conditions {
            let value = subject.values.get(c.field.as_str()).cloned().unwrap_or(crate::registry::FieldValue::Null);
            if !processes::holds(tx, c, &value)? {
                continue 'processes;
            }
        }
        chosen = Some(p);
        break;
    }
    let Some(process) = chosen else {
        return Err(Error::Conflict {
            field: None,
            message: format!("no active approval process applies to this {record_type}; an administrator defines one"),
        });
    };
    let now = now();
    let instance = Instance {
        id: Id::new(),
        process_id: process.id,
        process_number: process.version,
        record_type: record_type.to_owned(),
        record_id,
        requester_id: Some(subject.owner_id),
    };
    // The unique index on running instances refuses a second submission racing this one.
    let inserted = tx.execute_sql(
        "INSERT INTO approval_instances (id, process_id, process_number, record_type, record_id, requester_id, \
         branch_id, status, step, started_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', 1, $8, 1)",
        &[
            instance.id.into(),
            process.id.into(),
            process.version.into(),
            record_type.into(),
            record_id.into(),
            subject.owner_id.into(),
            subject.branch_id.into(),
            now.into(),
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if e.unique_violation().is_some() => {
            return Err(Error::conflict("approval_status", "the record is already awaiting approval"));
        }
        Err(e) => return Err(e.into()),
    }
    start_step(tx, &instance, &process, 1, &subject, &rt.label())?;
    rt.set_approval_status(tx, record_id, ApprovalStatus::Pending)?;
    let changes = Changes::new()
        .field("approval_status", &"draft", &"pending")
        .created("process_id", &process.id)
        .created("process_version", &process.version);
    audit::record(tx, who, "submit", record_type, Some(record_id), &changes)?;
    if who.actor() != Some(subject.owner_id) {
        notifications::notify(
            tx,
            subject.owner_id,
            "approval.submitted",
            Text::msg("notice-submitted-title").arg("title", &subject.title),
            Text::msg("notice-submitted-body").arg("type", rt.label()).arg("process", &process.name),
            Some(&subject.link),
        )?;
    }
    Ok(Started { instance_id: instance.id, process_id: process.id, process_version: process.version })
}

/// A decision on one approval task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    /// Hand the item on to a colleague (relay steps only).
    Pass {
        to_user_id: Id,
    },
}

impl Decision {
    fn status(&self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Reject => "rejected",
            Decision::Pass { .. } => "passed",
        }
    }
}

/// The body of approve and reject.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    #[serde(default)]
    pub comment: Option<String>,
}

/// The body of pass.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassInput {
    pub to_user_id: Option<Id>,
    #[serde(default)]
    pub comment: Option<String>,
}

fn fetch_step(tx: &mut Tx<'_>, task: Id) -> Result<StepRow> {
    tx.query_opt_sql(
        "SELECT s.id, s.number, s.kind, s.needed FROM approval_steps s JOIN approval_tasks t ON t.step_id = s.id \
         WHERE t.id = $1",
        &[task.into()],
    )?
    .ok_or(Error::NotFound("approval"))
}

fn fetch_instance(tx: &mut Tx<'_>, id: Id) -> Result<Instance> {
    tx.query_opt_sql(
        "SELECT id, process_id, process_number, record_type, record_id, requester_id FROM approval_instances \
         WHERE id = $1",
        &[id.into()],
    )?
    .ok_or(Error::NotFound("approval"))
}

/// Approves, rejects or passes on approval task `id` as its approver, in one transaction.
/// The same decision repeated answers with the task unchanged; a different decision on
/// a task already decided, or on an approval that has ended, is a 409.
#[instrument(skip_all, fields(approval.id = %id))]
pub fn decide(
    tx: &mut Tx<'_>,
    who: &Principal,
    registry: &Registry,
    id: Id,
    decision: Decision,
    comment: Option<String>,
) -> Result<Approval> {
    who.require("workflow.approvals.decide")?;
    let comment = comment.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.chars().count() > 2000) {
        return Err(Error::field("comment", "is longer than 2000 characters"));
    }
    let task = fetch_approval(tx, id)?.ok_or(Error::NotFound("approval"))?;
    if task.approver_id != who.user_id && !crate::delegations::stands_in(tx, task.approver_id, who.user_id, now())? {
        return Err(Error::Forbidden(format!(
            "workflow.approvals.decide on approval {id}: you are not its approver ({} is)",
            task.approver_name
        )));
    }
    let step = fetch_step(tx, id)?;
    if let Decision::Pass { to_user_id } = &decision {
        if step.kind != "relay" {
            return Err(Error::field(
                "to_user_id",
                format!("step {} is a {} step; only a relay step can be passed on", step.number, step.kind),
            ));
        }
        if *to_user_id == who.user_id {
            return Err(Error::field("to_user_id", "is you; pass the item on to a colleague"));
        }
        if !users::find(tx, *to_user_id)?.is_some_and(|u| u.active) {
            return Err(Error::field("to_user_id", "no such active user"));
        }
    }
    // Serialise every decision on this instance (see the module comment).
    let running = tx.execute_sql(
        "UPDATE approval_instances SET version = version + 1 WHERE id = $1 AND status = 'running'",
        &[task.instance_id.into()],
    )?;
    let task = fetch_approval(tx, id)?.ok_or(Error::NotFound("approval"))?;
    if task.status != "pending" {
        let same_target = match &decision {
            Decision::Pass { to_user_id } => task.passed_to == Some(*to_user_id),
            _ => true,
        };
        if task.status == decision.status() && same_target {
            return Ok(task);
        }
        return Err(Error::Conflict {
            field: None,
            message: format!("this approval is already {}; it cannot be {} now", task.status, decision.status()),
        });
    }
    if running == 0 {
        return Err(Error::Conflict { field: None, message: "this approval has already ended".into() });
    }
    let now = now();
    let passed_to = match &decision {
        Decision::Pass { to_user_id } => Some(*to_user_id),
        _ => None,
    };
    tx.execute_sql(
        "UPDATE approval_tasks SET status = $1, comment = $2, decided_by = $3, decided_at = $4, passed_to = $5 \
         WHERE id = $6 AND status = 'pending'",
        &[
            decision.status().into(),
            comment.clone().into(),
            who.user_id.into(),
            now.into(),
            passed_to.map(Id::get).into(),
            id.into(),
        ],
    )?;
    let mut changes = Changes::new().field("status", &"pending", &decision.status()).created("comment", &comment);
    if let Some(to) = passed_to {
        changes = changes.created("passed_to", &to);
    }
    audit::record(tx, who, decision.status(), "approval", Some(id), &changes)?;
    let instance = fetch_instance(tx, task.instance_id)?;
    let rt = registry
        .get(&instance.record_type)
        .cloned()
        .ok_or_else(|| Error::Internal(format!("record type {} is not registered", instance.record_type)))?;
    let subject = rt
        .load(tx, instance.record_id)?
        .ok_or_else(|| Error::Internal(format!("{} {} is gone", instance.record_type, instance.record_id)))?;
    if let Some(to) = passed_to {
        insert_task(tx, instance.id, step.id, to, Some(id), now)?;
        notify_approver(
            tx,
            to,
            now,
            "approval.requested",
            Text::msg("notice-passed-title").arg("title", &subject.title),
            Text::msg("notice-passed-body").arg("name", &who.name),
        )?;
    }
    if let Some(requester) = instance.requester_id {
        let key = match &decision {
            Decision::Approve => "notice-step-approved",
            Decision::Reject => "notice-step-rejected",
            Decision::Pass { .. } => "notice-step-passed",
        };
        notifications::notify(
            tx,
            requester,
            "approval.step",
            Text::msg(key).arg("name", &who.name).arg("step", step.number).arg("title", &subject.title),
            comment.as_deref().unwrap_or(""),
            Some(&subject.link),
        )?;
    }
    settle(tx, who, rt.as_ref(), &instance, &step, &subject)?;
    fetch_approval(tx, id)?.ok_or(Error::NotFound("approval"))
}

/// A colleague an item may be passed on to.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Colleague {
    pub id: Id,
    pub name: String,
    pub email: String,
}

/// Whom the caller may pass pending relay task `id` on to: active users (not the caller) whose
/// name or e-mail contains `q`, by name, at most `limit` (1..=50). Only whoever may decide
/// the task asks (its approver, or a delegate standing in); the list needs no user-admin
/// permission, since choosing a colleague is part of deciding.
#[instrument(skip_all, fields(approval.id = %id))]
pub fn pass_candidates(tx: &mut Tx<'_>, who: &Principal, id: Id, q: &str, limit: u64) -> Result<Vec<Colleague>> {
    who.require("workflow.approvals.decide")?;
    let task = fetch_approval(tx, id)?.ok_or(Error::NotFound("approval"))?;
    if task.approver_id != who.user_id && !crate::delegations::stands_in(tx, task.approver_id, who.user_id, now())? {
        return Err(Error::NotFound("approval"));
    }
    if task.step_kind != "relay" {
        return Err(Error::field("to_user_id", "only an item on a relay step can be passed on"));
    }
    if task.status != "pending" {
        return Err(Error::Conflict {
            field: None,
            message: format!("this approval is already {}; it cannot be passed on now", task.status),
        });
    }
    let limit = limit.clamp(1, 50);
    let found = users::directory(tx, q, limit + 1)?;
    Ok(found
        .into_iter()
        .filter(|u| u.id != who.user_id)
        .take(limit as usize)
        .map(|u| Colleague { id: u.id, name: u.name, email: u.email })
        .collect())
}

/// After a decision: completes the step when it has its approvals (starting the next
/// step, or approving the record after the last), rejects it when a rejection stands.
fn settle(
    tx: &mut Tx<'_>,
    who: &Principal,
    rt: &dyn crate::registry::RecordType,
    instance: &Instance,
    step: &StepRow,
    subject: &Subject,
) -> Result<()> {
    let count = |tx: &mut Tx<'_>, status: &str| -> Result<i64> {
        let n: Vec<i64> = tx.query_sql(
            "SELECT COUNT(*) FROM approval_tasks WHERE step_id = $1 AND status = $2",
            &[step.id.into(), status.into()],
        )?;
        Ok(n.first().copied().unwrap_or(0))
    };
    let approved = count(tx, "approved")?;
    let rejected = count(tx, "rejected")?;
    let pending = count(tx, "pending")?;
    let process = processes::version(tx, instance.process_id, instance.process_number)?;
    let tolerate = process.steps.get((step.number - 1) as usize).is_some_and(|s| s.tolerate_rejections);
    let outcome = if approved >= step.needed {
        "approved"
    } else if (rejected > 0 && !tolerate) || approved + pending < step.needed {
        "rejected"
    } else {
        return Ok(());
    };
    let now = now();
    tx.execute_sql(
        "UPDATE approval_steps SET status = $1, finished_at = $2 WHERE id = $3 AND status = 'pending'",
        &[outcome.into(), now.into(), step.id.into()],
    )?;
    tx.execute_sql(
        "UPDATE approval_tasks SET status = 'cancelled', decided_at = $1 WHERE step_id = $2 AND status = 'pending'",
        &[now.into(), step.id.into()],
    )?;
    let next = step.number + 1;
    let final_status = if outcome == "approved" && (next as usize) <= process.steps.len() {
        tx.execute_sql("UPDATE approval_instances SET step = $1 WHERE id = $2", &[next.into(), instance.id.into()])?;
        start_step(tx, instance, &process, next, subject, &rt.label())?;
        return Ok(());
    } else if outcome == "approved" {
        ApprovalStatus::Approved
    } else {
        ApprovalStatus::Rejected
    };
    tx.execute_sql(
        "UPDATE approval_instances SET status = $1, finished_at = $2 WHERE id = $3",
        &[final_status.as_str().into(), now.into(), instance.id.into()],
    )?;
    rt.set_approval_status(tx, instance.record_id, final_status)?;
    let changes = Changes::new().field("approval_status", &"pending", &final_status.as_str());
    audit::record(tx, who, final_status.as_str(), &instance.record_type, Some(instance.record_id), &changes)?;
    if let Some(requester) = instance.requester_id {
        notifications::notify(
            tx,
            requester,
            "approval.finished",
            Text::msg(if final_status == ApprovalStatus::Approved {
                "notice-approved-title"
            } else {
                "notice-rejected-title"
            })
            .arg("title", &subject.title),
            Text::msg("notice-finished-body").arg("type", rt.label()).arg("process", &process.name),
            Some(&subject.link),
        )?;
    }
    Ok(())
}

/// The job kind that applies step timeouts; register [`timeouts_job`] under it.
pub const TIMEOUTS_JOB: &str = "workflow.approval_timeouts";

struct Waiting {
    id: Id,
    approver_id: Id,
    created_at: DateTime<Utc>,
    reminded_at: Option<DateTime<Utc>>,
    escalated_at: Option<DateTime<Utc>>,
    step_id: Id,
    step_number: i64,
    instance_id: Id,
    process_id: Id,
    process_number: i64,
    branch_id: Id,
}

impl FromRow for Waiting {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Waiting {
            id: row.get("id")?,
            approver_id: row.get("approver_id")?,
            created_at: row.get("created_at")?,
            reminded_at: row.get("reminded_at")?,
            escalated_at: row.get("escalated_at")?,
            step_id: row.get("step_id")?,
            step_number: row.get("step_number")?,
            instance_id: row.get("instance_id")?,
            process_id: row.get("process_id")?,
            process_number: row.get("process_number")?,
            branch_id: row.get("branch_id")?,
        })
    }
}

/// What one [`tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    pub reminded: u32,
    pub escalated: u32,
    pub decided: u32,
}

/// Applies step timeouts as of `now` (a parameter, so tests control the clock): counts
/// each pending task's working hours in its record's branch calendar since it was
/// created, then reminds, escalates to the approver's manager, or decides automatically.
/// Each action is guarded (`reminded_at`, `escalated_at`, a pending status), so a tick
/// run twice does each once.
pub fn tick(tx: &mut Tx<'_>, registry: &Registry, now: DateTime<Utc>) -> Result<TickReport> {
    let system = Principal::system(kernel::Channel::Job);
    let waiting: Vec<Waiting> = tx.query_sql(
        "SELECT t.id, t.approver_id, t.created_at, t.reminded_at, t.escalated_at, t.step_id, s.number AS step_number, \
         i.id AS instance_id, i.process_id, i.process_number, i.branch_id \
         FROM approval_tasks t JOIN approval_steps s ON s.id = t.step_id \
         JOIN approval_instances i ON i.id = t.instance_id JOIN branches b ON b.id = i.branch_id \
         WHERE t.status = 'pending' AND i.status = 'running' ORDER BY t.id LIMIT 500",
        &[],
    )?;
    let mut report = TickReport::default();
    for w in waiting {
        let process = processes::version(tx, w.process_id, w.process_number)?;
        let Some(timeouts) = process.steps.get((w.step_number - 1) as usize).and_then(|s| s.timeouts.clone()) else {
            continue;
        };
        let worked = crate::calendar::for_branch(tx, w.branch_id)?.working_seconds(w.created_at, now);
        let due = |hours: Option<u32>| hours.is_some_and(|h| worked >= i64::from(h) * 3600);
        if due(timeouts.auto_after_hours) {
            let decision =
                if timeouts.auto_decision.as_deref() == Some("reject") { Decision::Reject } else { Decision::Approve };
            if auto_decide(tx, &system, registry, &w, decision, timeouts.auto_after_hours.unwrap_or(0))? {
                report.decided += 1;
            }
            continue;
        }
        if due(timeouts.escalate_after_hours) && w.escalated_at.is_none() {
            let marked = tx.execute_sql(
                "UPDATE approval_tasks SET escalated_at = $1 WHERE id = $2 AND escalated_at IS NULL AND status = 'pending'",
                &[now.into(), w.id.into()],
            )?;
            let manager = users::find(tx, w.approver_id)?.and_then(|u| u.manager_id);
            if marked == 1
                && let Some(m) = manager
                && users::find(tx, m)?.is_some_and(|u| u.active)
            {
                let already: Vec<i64> = tx.query_sql(
                    "SELECT COUNT(*) FROM approval_tasks WHERE step_id = $1 AND approver_id = $2",
                    &[w.step_id.into(), m.into()],
                )?;
                if already.first().copied().unwrap_or(0) == 0 {
                    insert_task(tx, w.instance_id, w.step_id, m, Some(w.id), now)?;
                    notifications::notify(
                        tx,
                        m,
                        "approval.escalated",
                        Text::msg("notice-escalated-title").arg("step", w.step_number).arg("process", &process.name),
                        Text::msg("notice-escalated-body").arg("since", w.created_at),
                        Some("/approvals"),
                    )?;
                    report.escalated += 1;
                }
            }
        }
        if due(timeouts.remind_after_hours) && w.reminded_at.is_none() {
            let marked = tx.execute_sql(
                "UPDATE approval_tasks SET reminded_at = $1 WHERE id = $2 AND reminded_at IS NULL AND status = 'pending'",
                &[now.into(), w.id.into()],
            )?;
            if marked == 1 {
                notifications::notify(
                    tx,
                    w.approver_id,
                    "approval.reminder",
                    Text::msg("notice-reminder-title").arg("step", w.step_number).arg("process", &process.name),
                    Text::msg("notice-waiting-since").arg("since", w.created_at),
                    Some("/approvals"),
                )?;
                report.reminded += 1;
            }
        }
    }
    Ok(report)
}

fn auto_decide(
    tx: &mut Tx<'_>,
    system: &Principal,
    registry: &Registry,
    w: &Waiting,
    decision: Decision,
    hours: u32,
) -> Result<bool> {
    let running = tx.execute_sql(
        "UPDATE approval_instances SET version = version + 1 WHERE id = $1 AND status = 'running'",
        &[w.instance_id.into()],
    )?;
    if running == 0 {
        return Ok(false);
    }
    let comment = format!("automatic decision after {hours} working hours");
    let changed = tx.execute_sql(
        "UPDATE approval_tasks SET status = $1, comment = $2, decided_at = $3 WHERE id = $4 AND status = 'pending'",
        &[decision.status().into(), comment.clone().into(), now().into(), w.id.into()],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    let changes = Changes::new().field("status", &"pending", &decision.status()).created("comment", &comment);
    audit::record(tx, system, decision.status(), "approval", Some(w.id), &changes)?;
    let instance = fetch_instance(tx, w.instance_id)?;
    let rt = registry
        .get(&instance.record_type)
        .cloned()
        .ok_or_else(|| Error::Internal(format!("record type {} is not registered", instance.record_type)))?;
    let subject = rt
        .load(tx, instance.record_id)?
        .ok_or_else(|| Error::Internal(format!("{} {} is gone", instance.record_type, instance.record_id)))?;
    let step = fetch_step(tx, w.id)?;
    settle(tx, system, rt.as_ref(), &instance, &step, &subject)?;
    Ok(true)
}

/// Queues the timeouts job unless one is queued or running (at start-up; the job queues
/// its next run itself).
pub fn ensure_timeouts_job(tx: &mut Tx<'_>) -> Result<()> {
    let n: Vec<i64> = tx.query_sql(
        "SELECT COUNT(*) FROM jobs WHERE kind = $1 AND status IN ('queued', 'running')",
        &[TIMEOUTS_JOB.into()],
    )?;
    if n.first().copied().unwrap_or(0) == 0 {
        kernel::jobs::enqueue(tx, TIMEOUTS_JOB, serde_json::json!({}), None)?;
    }
    Ok(())
}

/// The handler of [`TIMEOUTS_JOB`] for the record types of `registry`: one tick now,
/// then the next run in 15 minutes.
pub fn timeouts_job(
    registry: Registry,
) -> impl Fn(&kernel::jobs::JobContext, serde_json::Value) -> std::result::Result<serde_json::Value, kernel::jobs::JobError>
+ Send
+ Sync
+ 'static {
    move |ctx, _payload| {
        let report = ctx
            .db()
            .write_blocking(|tx| {
                let report = tick(tx, &registry, Utc::now())?;
                kernel::jobs::enqueue_with(
                    tx,
                    kernel::jobs::NewJob {
                        run_at: Some(Utc::now() + chrono::Duration::minutes(15)),
                        ..kernel::jobs::NewJob::new(TIMEOUTS_JOB, serde_json::json!({}))
                    },
                )?;
                Ok::<_, Error>(report)
            })
            .map_err(kernel::jobs::JobError::retryable)?;
        Ok(serde_json::json!(report))
    }
}
