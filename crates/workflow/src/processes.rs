//! Approval process definitions. A process guards one record type; submissions start the
//! first active process of that type, in ascending `priority` (1 before 10; ties by age),
//! whose entry conditions all hold. Editing a process writes a new version: instances
//! keep running on the version they started with.
use chrono::{DateTime, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::{check_version, roles, users};
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::{Error, Id, Principal, Result, Tx, values};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use tracing::instrument;

use crate::amount::Decimal;
use crate::registry::{FieldKind, FieldValue, Registry};

/// `field op value`, e.g. `{"field": "amount", "op": "gte", "value": {"amount": "100000",
/// "currency": "CNY"}}`. Operators: `eq`, `ne`, `gt`, `gte`, `lt`, `lte` (also `=`, `!=`,
/// `>`, `>=`, `<`, `<=`), `in` (a list), and `within` (a branch and everything below).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    pub op: String,
    #[schema(value_type = Object)]
    pub value: Json,
}

/// Who approves: `{"kind": "user", "user_id": "…"}`, `{"kind": "manager"}` (the manager
/// of the record's owner) or `{"kind": "role", "role": "finance"}` (users with that role
/// in the record's branch, else in the nearest parent branch that has any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Approver {
    User { user_id: Id },
    Manager,
    Role { role: String },
}

/// A step as stored: its kind, approvers, and how many approvals complete it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    /// `sequential` (one approver), `parallel` (several at once) or `relay` (one
    /// approver who may pass the item on to a colleague).
    pub kind: String,
    pub approvers: Vec<Approver>,
    /// Parallel steps: `all`, `any` or `quorum`. Others: `any`.
    pub rule: String,
    /// With `rule: quorum`: how many approvals complete the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// By default one rejection rejects the step (and the record); with this set, a
    /// rejection only does when the step can no longer reach its approvals.
    #[serde(default)]
    pub tolerate_rejections: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// Per step, in working hours of the record's branch (docs/workflow.md): remind the
/// approver after `remind_after_hours`, add the approver's manager as an approver after
/// `escalate_after_hours`, and decide automatically (`auto_decision`: approve or reject)
/// after `auto_after_hours`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_after_hours: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_after_hours: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_after_hours: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_decision: Option<String>,
}

/// A step as the client sends it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub approvers: Vec<Json>,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub quorum: Option<u32>,
    #[serde(default)]
    pub tolerate_rejections: bool,
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProcess {
    pub name: String,
    /// A registered record type, e.g. `expense_claim`.
    pub record_type: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Lower runs first; default 100.
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub steps: Vec<StepInput>,
    /// Default true.
    #[serde(default)]
    pub active: Option<bool>,
}

/// An edit; any part left out stays as it is. Writes a new version.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub conditions: Option<Vec<Condition>>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub steps: Option<Vec<StepInput>>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Process {
    pub id: Id,
    pub name: String,
    pub record_type: String,
    pub priority: i64,
    pub active: bool,
    pub conditions: Vec<Condition>,
    pub steps: Vec<Step>,
    /// The definition's version: every edit adds one; running instances keep theirs.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

struct ProcessRow {
    process: Process,
}

impl FromRow for ProcessRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let conditions: Json = row.get("conditions")?;
        let steps: Json = row.get("steps")?;
        let bad = |e: serde_json::Error| DbError::Column { column: "steps".into(), message: e.to_string() };
        Ok(ProcessRow {
            process: Process {
                id: row.get("id")?,
                name: row.get("name")?,
                record_type: row.get("record_type")?,
                priority: row.get("priority")?,
                active: row.get("active")?,
                conditions: serde_json::from_value(conditions).map_err(bad)?,
                steps: serde_json::from_value(steps).map_err(bad)?,
                version: row.get("number")?,
                created_at: row.get("created_at")?,
                updated_at: row.get("updated_at")?,
            },
        })
    }
}

const SELECT: &str = "SELECT p.id, v.name, p.record_type, v.priority, p.active, v.conditions, v.steps, v.number, \
     p.created_at, p.updated_at FROM approval_processes p \
     JOIN approval_process_versions v ON v.process_id = p.id";

fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

fn normalise_op(op: &str) -> Option<&'static str> {
    Some(match op.trim() {
        "eq" | "=" | "==" => "eq",
        "ne" | "!=" | "<>" => "ne",
        "gt" | ">" => "gt",
        "gte" | ">=" => "gte",
        "lt" | "<" => "lt",
        "lte" | "<=" => "lte",
        "in" => "in",
        "within" => "within",
        _ => return None,
    })
}

/// Checks conditions against the record type's fields; returns them normalised.
fn check_conditions(
    tx: &mut Tx<'_>,
    v: &mut Validator,
    fields: &[crate::registry::Field],
    type_key: &str,
    input: &[Condition],
) -> Result<Vec<Condition>> {
    let mut out = Vec::new();
    for (i, c) in input.iter().enumerate() {
        let at = |part: &str| format!("conditions[{i}].{part}");
        let Some(field) = fields.iter().find(|f| f.key == c.field) else {
            let known = fields.iter().map(|f| f.key).collect::<Vec<_>>().join(", ");
            v.add(&at("field"), format!("{:?} is not a field of {type_key} (known: {known})", c.field));
            continue;
        };
        let Some(op) = normalise_op(&c.op) else {
            v.add(&at("op"), format!("{:?} is not an operator (eq, ne, gt, gte, lt, lte, in, within)", c.op));
            continue;
        };
        let ordered = matches!(op, "gt" | "gte" | "lt" | "lte");
        let allowed = match field.kind {
            FieldKind::Number | FieldKind::Money => op != "within",
            FieldKind::Text => !ordered && op != "within",
            FieldKind::Branch => matches!(op, "eq" | "ne" | "within" | "in"),
        };
        if !allowed {
            v.add(&at("op"), format!("{op} does not apply to {} (a {:?} field)", c.field, field.kind));
            continue;
        }
        let items: Vec<&Json> = if op == "in" {
            match c.value.as_array() {
                Some(a) if !a.is_empty() => a.iter().collect(),
                _ => {
                    v.add(&at("value"), "in needs a non-empty list");
                    continue;
                }
            }
        } else {
            vec![&c.value]
        };
        let mut ok = true;
        for item in items {
            let problem = match field.kind {
                FieldKind::Number => Decimal::from_json(item).err(),
                FieldKind::Money => money_operand(item).err(),
                FieldKind::Text => (!item.is_string()).then(|| format!("{item} is not text")),
                FieldKind::Branch => match item.as_str().and_then(|s| s.parse::<Id>().ok()) {
                    Some(id) if kernel::identity::branches::find(tx, id)?.is_some() => None,
                    _ => Some(format!("{item} is not a branch id")),
                },
            };
            if let Some(p) = problem {
                v.add(&at("value"), p);
                ok = false;
            }
        }
        if ok {
            out.push(Condition { field: c.field.clone(), op: op.to_owned(), value: c.value.clone() });
        }
    }
    Ok(out)
}

/// A money operand: `{"amount", "currency"}` (only records in that currency match) or a
/// bare number (any currency).
fn money_operand(value: &Json) -> Result<(Decimal, Option<String>), String> {
    if let Some(o) = value.as_object() {
        let amount = o.get("amount").ok_or("needs amount and currency")?;
        let currency = o.get("currency").and_then(Json::as_str).ok_or("needs amount and currency")?;
        return Ok((Decimal::from_json(amount)?, Some(currency.trim().to_ascii_uppercase())));
    }
    Ok((Decimal::from_json(value)?, None))
}

/// Does the condition hold for `value`? (Conditions were checked when saved.)
pub fn holds(tx: &mut Tx<'_>, c: &Condition, value: &FieldValue) -> Result<bool> {
    use std::cmp::Ordering;
    let Some(op) = normalise_op(&c.op) else { return Ok(false) };
    let items: Vec<&Json> =
        if op == "in" { c.value.as_array().map(|a| a.iter().collect()).unwrap_or_default() } else { vec![&c.value] };
    let compare = |ord: Option<Ordering>| -> bool {
        let Some(ord) = ord else { return false };
        match op {
            "eq" | "in" => ord == Ordering::Equal,
            "ne" => ord != Ordering::Equal,
            "gt" => ord == Ordering::Greater,
            "gte" => ord != Ordering::Less,
            "lt" => ord == Ordering::Less,
            "lte" => ord != Ordering::Greater,
            _ => false,
        }
    };
    let mut results = Vec::new();
    for item in items {
        let r = match value {
            FieldValue::Null => false,
            FieldValue::Number(n) => compare(Decimal::from_json(item).ok().map(|x| n.cmp(&x))),
            FieldValue::Money { amount, currency } => match money_operand(item) {
                Ok((_, Some(cur))) if &cur != currency => false,
                Ok((x, _)) => compare(Some(amount.cmp(&x))),
                Err(_) => false,
            },
            FieldValue::Text(t) => compare(item.as_str().map(|x| t.as_str().cmp(x))),
            FieldValue::Branch { id, path } => {
                let other = item.as_str().and_then(|s| s.parse::<Id>().ok());
                match (op, other) {
                    ("within", Some(b)) => match kernel::identity::branches::find(tx, b)? {
                        Some(branch) => path.starts_with(&branch.path),
                        None => false,
                    },
                    (_, Some(b)) => compare(Some(id.get().cmp(&b.get()))),
                    _ => false,
                }
            }
        };
        results.push(r);
    }
    Ok(if op == "ne" { results.iter().all(|r| *r) } else { results.iter().any(|r| *r) })
}

type Problem = (String, String);

/// Accepts shorthands too: a bare user id (`"123"`), `"manager"`, `"role:finance"`, and
/// objects without `kind` that hold `user_id` or `role`.
fn shorthand(input: &Json) -> Json {
    match input {
        Json::String(s) if s == "manager" => json!({"kind": "manager"}),
        Json::String(s) => match s.strip_prefix("role:") {
            Some(role) => json!({"kind": "role", "role": role}),
            None => json!({"kind": "user", "user_id": s.strip_prefix("user:").unwrap_or(s)}),
        },
        Json::Number(n) => json!({"kind": "user", "user_id": n.to_string()}),
        Json::Object(o) if !o.contains_key("kind") => {
            let mut o = o.clone();
            let kind = if o.contains_key("user_id") {
                "user"
            } else if o.contains_key("role") {
                "role"
            } else {
                "manager"
            };
            o.insert("kind".into(), json!(kind));
            Json::Object(o)
        }
        other => other.clone(),
    }
}

fn parse_approver(tx: &mut Tx<'_>, at: &str, input: &Json) -> Result<std::result::Result<Approver, Problem>> {
    let approver: Approver = match serde_json::from_value(shorthand(input)) {
        Ok(a) => a,
        Err(e) => {
            return Ok(Err((
                at.to_owned(),
                format!(
                    "{e}: give {{\"kind\": \"user\", \"user_id\"}}, {{\"kind\": \"manager\"}} or {{\"kind\": \"role\", \"role\"}}"
                ),
            )));
        }
    };
    match &approver {
        Approver::User { user_id } => match users::find(tx, *user_id)? {
            Some(u) if u.active => {}
            _ => return Ok(Err((format!("{at}.user_id"), "no such active user".into()))),
        },
        Approver::Role { role } => {
            if roles::find(tx, role)?.is_none() {
                return Ok(Err((format!("{at}.role"), format!("{role:?} is not a role"))));
            }
        }
        Approver::Manager => {}
    }
    Ok(Ok(approver))
}

fn check_steps(tx: &mut Tx<'_>, v: &mut Validator, input: &[StepInput]) -> Result<Vec<Step>> {
    if input.is_empty() {
        v.add("steps", "a process needs at least one step");
    }
    let mut out = Vec::new();
    for (i, s) in input.iter().enumerate() {
        let at = |part: &str| format!("steps[{i}].{part}");
        let mut problems: Vec<Problem> = Vec::new();
        let kind = s.kind.trim();
        if !matches!(kind, "sequential" | "parallel" | "relay") {
            problems.push((at("kind"), format!("{:?} is not a step kind (sequential, parallel, relay)", s.kind)));
        }
        let mut approvers = Vec::new();
        for (j, a) in s.approvers.iter().enumerate() {
            match parse_approver(tx, &format!("steps[{i}].approvers[{j}]"), a)? {
                Ok(a) if !approvers.contains(&a) => approvers.push(a),
                Ok(_) => {}
                Err(p) => problems.push(p),
            }
        }
        if s.approvers.is_empty() {
            problems.push((at("approvers"), "a step needs at least one approver".into()));
        } else if kind != "parallel" && s.approvers.len() > 1 {
            problems.push((
                at("approvers"),
                format!("a {kind} step has exactly one approver; use a parallel step for several"),
            ));
        }
        let rule = match (kind, s.rule.as_deref().map(str::trim)) {
            ("parallel", None) => "all",
            ("parallel", Some(r @ ("all" | "any" | "quorum"))) => r,
            (_, None | Some("any")) => "any",
            ("parallel", Some(r)) => {
                problems.push((at("rule"), format!("{r:?} is not a rule (all, any, quorum)")));
                "all"
            }
            (_, Some(r)) => {
                problems.push((
                    at("rule"),
                    format!("a {kind} step completes on its one approval; {r:?} applies to parallel steps"),
                ));
                "any"
            }
        };
        match (rule, s.quorum) {
            ("quorum", None | Some(0)) => {
                problems.push((at("quorum"), "a quorum step needs a quorum of 1 or more".into()))
            }
            ("quorum", Some(q)) if q as usize > approvers.len() => problems
                .push((at("quorum"), format!("a quorum of {q} is more than the step's {} approvers", approvers.len()))),
            ("quorum", _) => {}
            (_, Some(_)) => problems.push((at("quorum"), "only a quorum rule takes a quorum".into())),
            _ => {}
        }
        if let Some(t) = &s.timeouts {
            match (t.auto_after_hours, t.auto_decision.as_deref()) {
                (Some(_), Some("approve" | "reject")) | (None, None) => {}
                (Some(_), _) => problems.push((at("timeouts.auto_decision"), "must be approve or reject".into())),
                (None, Some(_)) => {
                    problems.push((at("timeouts.auto_after_hours"), "is required with auto_decision".into()))
                }
            }
            if matches!(t.remind_after_hours, Some(0))
                || matches!(t.escalate_after_hours, Some(0))
                || matches!(t.auto_after_hours, Some(0))
            {
                problems.push((at("timeouts"), "hours must be 1 or more".into()));
            }
        }
        if problems.is_empty() {
            out.push(Step {
                kind: kind.to_owned(),
                approvers,
                rule: rule.to_owned(),
                quorum: if rule == "quorum" { s.quorum } else { None },
                tolerate_rejections: s.tolerate_rejections,
                timeouts: s.timeouts.clone(),
            });
        }
        for (field, message) in problems {
            v.add(&field, message);
        }
    }
    Ok(out)
}

fn fetch(tx: &mut Tx<'_>, id: Id, number: Option<i64>) -> Result<Option<Process>> {
    let row: Option<ProcessRow> = match number {
        Some(n) => tx.query_opt_sql(&format!("{SELECT} WHERE p.id = $1 AND v.number = $2"), &[id.into(), n.into()])?,
        None => tx.query_opt_sql(
            &format!("{SELECT} AND v.number = p.current WHERE p.id = $1 AND p.deleted_at IS NULL"),
            &[id.into()],
        )?,
    };
    Ok(row.map(|r| r.process))
}

/// One version of a process (for running instances), regardless of later edits.
pub fn version(tx: &mut Tx<'_>, id: Id, number: i64) -> Result<Process> {
    fetch(tx, id, Some(number))?.ok_or(Error::NotFound("approval process version"))
}

pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Process> {
    who.require("workflow.processes.read")?;
    fetch(tx, id, None)?.ok_or(Error::NotFound("approval process"))
}

/// Processes (their current versions), by record type then priority.
pub fn list(tx: &mut Tx<'_>, who: &Principal, record_type: Option<&str>, page: &PageRequest) -> Result<Page<Process>> {
    who.require("workflow.processes.read")?;
    let after = page.cursor.as_ref().map_or(0, |c| c.id);
    let limit = page.fetch_limit() as i64;
    let rows: Vec<ProcessRow> = match record_type {
        Some(t) => tx.query_sql(
            &format!("{SELECT} AND v.number = p.current WHERE p.deleted_at IS NULL AND p.id > $1 AND p.record_type = $2 ORDER BY p.id LIMIT $3"),
            &[after.into(), t.into(), limit.into()],
        )?,
        None => tx.query_sql(
            &format!("{SELECT} AND v.number = p.current WHERE p.deleted_at IS NULL AND p.id > $1 ORDER BY p.id LIMIT $2"),
            &[after.into(), limit.into()],
        )?,
    };
    let rows: Vec<Process> = rows.into_iter().map(|r| r.process).collect();
    Ok(Page::from_rows(rows, page, |p| id_cursor(p.id)))
}

/// The active processes of a record type in the order submissions try them.
pub fn candidates(tx: &mut Tx<'_>, record_type: &str) -> Result<Vec<Process>> {
    let rows: Vec<ProcessRow> = tx.query_sql(
        &format!(
            "{SELECT} AND v.number = p.current WHERE p.deleted_at IS NULL AND p.active = $1 AND p.record_type = $2 \
             ORDER BY v.priority, p.id"
        ),
        &[true.into(), record_type.into()],
    )?;
    Ok(rows.into_iter().map(|r| r.process).collect())
}

fn insert_version(tx: &mut Tx<'_>, who: &Principal, p: &Process) -> Result<()> {
    tx.execute_sql(
        "INSERT INTO approval_process_versions (process_id, number, name, priority, conditions, steps, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            p.id.into(),
            p.version.into(),
            p.name.clone().into(),
            p.priority.into(),
            sea_query::Value::Json(Some(Box::new(json!(p.conditions)))),
            sea_query::Value::Json(Some(Box::new(json!(p.steps)))),
            who.actor().map(Id::get).into(),
            p.updated_at.into(),
        ],
    )?;
    Ok(())
}

#[instrument(skip_all)]
pub fn create(tx: &mut Tx<'_>, who: &Principal, registry: &Registry, input: NewProcess) -> Result<Process> {
    who.require("workflow.processes.manage")?;
    let mut v = Validator::new();
    let name = v.check("name", values::name(&input.name, 200));
    let record_type = registry.get(input.record_type.trim()).cloned();
    if record_type.is_none() {
        let known = registry.keys().collect::<Vec<_>>().join(", ");
        v.add("record_type", format!("{:?} is not a registered record type (known: {known})", input.record_type));
    }
    let conditions = match &record_type {
        Some(t) => check_conditions(tx, &mut v, t.fields(), t.key(), &input.conditions)?,
        None => Vec::new(),
    };
    let steps = check_steps(tx, &mut v, &input.steps)?;
    v.finish()?;
    let (Some(name), Some(record_type)) = (name, record_type) else {
        return Err(Error::field("name", "is required"));
    };
    let now = now();
    let p = Process {
        id: Id::new(),
        name,
        record_type: record_type.key().to_owned(),
        priority: input.priority.unwrap_or(100),
        active: input.active.unwrap_or(true),
        conditions,
        steps,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    tx.execute_sql(
        "INSERT INTO approval_processes (id, name, record_type, priority, active, current, created_by, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $7, 1)",
        &[
            p.id.into(),
            p.name.clone().into(),
            p.record_type.clone().into(),
            p.priority.into(),
            p.active.into(),
            who.actor().map(Id::get).into(),
            now.into(),
        ],
    )?;
    insert_version(tx, who, &p)?;
    let changes = Changes::new()
        .created("name", &p.name)
        .created("record_type", &p.record_type)
        .created("priority", &p.priority)
        .created("conditions", &p.conditions)
        .created("steps", &p.steps);
    audit::record(tx, who, "create", "approval_process", Some(p.id), &changes)?;
    Ok(p)
}

/// Writes a new version of the process; instances already running keep theirs.
#[instrument(skip_all, fields(process.id = %id))]
pub fn update(tx: &mut Tx<'_>, who: &Principal, registry: &Registry, id: Id, patch: ProcessPatch) -> Result<Process> {
    who.require("workflow.processes.manage")?;
    let old = fetch(tx, id, None)?.ok_or(Error::NotFound("approval process"))?;
    check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    if let Some(n) = &patch.name
        && let Some(n) = v.check("name", values::name(n, 200))
    {
        new.name = n;
    }
    if let Some(c) = &patch.conditions {
        let t = registry
            .get(&old.record_type)
            .cloned()
            .ok_or_else(|| Error::field("record_type", "is no longer registered"))?;
        new.conditions = check_conditions(tx, &mut v, t.fields(), t.key(), c)?;
    }
    if let Some(s) = &patch.steps {
        new.steps = check_steps(tx, &mut v, s)?;
    }
    if let Some(p) = patch.priority {
        new.priority = p;
    }
    if let Some(a) = patch.active {
        new.active = a;
    }
    v.finish()?;
    let changes = Changes::new()
        .field("name", &old.name, &new.name)
        .field("priority", &old.priority, &new.priority)
        .field("active", &old.active, &new.active)
        .field("conditions", &old.conditions, &new.conditions)
        .field("steps", &old.steps, &new.steps);
    if changes.is_empty() {
        return Ok(old);
    }
    new.version = old.version + 1;
    new.updated_at = now();
    let n = tx.execute_sql(
        "UPDATE approval_processes SET name = $1, priority = $2, active = $3, current = $4, version = $4, updated_at = $5 \
         WHERE id = $6 AND version = $7",
        &[
            new.name.clone().into(),
            new.priority.into(),
            new.active.into(),
            new.version.into(),
            new.updated_at.into(),
            id.into(),
            old.version.into(),
        ],
    )?;
    if n == 0 {
        return Err(Error::StaleVersion { current: old.version });
    }
    insert_version(tx, who, &new)?;
    audit::record(tx, who, "update", "approval_process", Some(id), &changes)?;
    Ok(new)
}
