//! Workflow pages: the approval inbox (`/approvals`, decide with a comment; one card per
//! item, so it works on a phone), expense claims (`/expenses`: list, new, detail with
//! where the approval stands and its history, receipts to add from a phone's camera), and
//! the bell (`/notifications`). An inbox card shows the claim's receipts, and a relay
//! item's "pass on to" field offers colleagues as you type (a datalist htmx fills).
use ::workflow;
use askama::Template;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use kernel::Id;
use kernel::attachments::{self, Attachment};
use kernel::paging::PageRequest;
use serde::Deserialize;
use workflow::amount::Money;
use workflow::engine::{self, Colleague, Decision, History};
use workflow::expenses::{self, CATEGORIES, ExpenseClaim, NewClaim};
use workflow::notifications::{self, Notification};

use super::{
    ConfirmPage, CsrfForm, Ctx, FormErrors, PageError, PageResult, WithErrors, enc, load, refused, render, see_other,
};
use crate::error::ApiError;
use crate::extract::PathId;
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(inbox))
        .route("/approvals/{id}/decide", post(decide))
        .route("/approvals/{id}/people", get(people))
        .route("/expenses", get(list).post(create))
        .route("/expenses/new", get(new))
        .route("/expenses/{id}", get(detail))
        .route("/expenses/{id}/submit", post(submit))
        .route(
            "/expenses/{id}/receipts",
            post(upload_receipt).layer(DefaultBodyLimit::max(attachments::MAX_BYTES + (64 << 10))),
        )
        .route("/expenses/{id}/receipts/{rid}/delete", get(confirm_delete_receipt).post(delete_receipt))
        .route("/notifications", get(bell))
        .route("/notifications/read", post(read_all))
}

/// One inbox card.
pub struct Item {
    pub id: String,
    pub title: String,
    pub link: String,
    pub process: String,
    pub step: i64,
    pub relay: bool,
    pub since: String,
    /// The claim's receipts, for the approver to look at before deciding.
    pub receipts: Vec<Receipt>,
}

/// One receipt as a page shows it.
pub struct Receipt {
    pub id: String,
    pub name: String,
    pub href: String,
    pub image: bool,
    /// What stands in for a thumbnail: `PDF`, `HEIC` (browsers cannot show it), `FILE`.
    pub badge: &'static str,
    pub size: String,
}

fn receipt(a: &Attachment) -> Receipt {
    let size = match a.size_bytes {
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{} KB", n >> 10),
        n => format!("{n} B"),
    };
    Receipt {
        id: a.id.to_string(),
        name: a.file_name.clone(),
        href: format!("/api/v1/attachments/{}", a.id),
        image: a.is_image(),
        badge: match a.content_type.as_str() {
            "application/pdf" => "PDF",
            "image/heic" => "HEIC",
            _ => "FILE",
        },
        size,
    }
}

#[derive(Template)]
#[template(path = "approvals/inbox.html")]
struct InboxPage {
    ctx: Ctx,
    items: Vec<Item>,
    next: Option<String>,
    notice: Option<String>,
    errors: FormErrors,
}

impl WithErrors for InboxPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }
    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    cursor: Option<String>,
    done: Option<String>,
}

async fn inbox_page(state: &AppState, creds: Credentials, cursor: Option<String>) -> Result<InboxPage, PageError> {
    let page = PageRequest::parse(None, cursor.as_deref()).map_err(PageError::from)?;
    let registry = state.config.clone();
    let (ctx, (found, titles)) = load(state, creds, "/approvals", move |tx, who| {
        let found = engine::list_mine(tx, who, "pending", &page)?;
        let mut titles = Vec::new();
        for a in &found.items {
            let subject = match registry.workflow.get(&a.record_type) {
                Some(rt) => rt.load(tx, a.record_id)?,
                None => None,
            };
            // Receipts the approver may see (a claim they are asked to approve).
            let receipts = if a.record_type == expenses::RECORD_TYPE {
                match expenses::receipts(tx, who, a.record_id) {
                    Ok(r) => r,
                    Err(kernel::Error::NotFound(_) | kernel::Error::Forbidden(_)) => Vec::new(),
                    Err(e) => return Err(e),
                }
            } else {
                Vec::new()
            };
            let (title, link) =
                subject.map(|s| (s.title, s.link)).unwrap_or_else(|| (a.record_type.clone(), String::new()));
            titles.push((title, link, receipts));
        }
        Ok((found, titles))
    })
    .await?;
    let items = found
        .items
        .iter()
        .zip(titles)
        .map(|(a, (title, link, receipts))| Item {
            id: a.id.to_string(),
            title,
            link,
            process: a.process_name.clone(),
            step: a.step,
            relay: a.step_kind == "relay",
            since: ctx.datetime(&a.created_at),
            receipts: receipts.iter().map(receipt).collect(),
        })
        .collect();
    let next = found.next_cursor.map(|c| format!("/approvals?cursor={}", enc(&c)));
    Ok(InboxPage { ctx, items, next, notice: None, errors: FormErrors::default() })
}

async fn inbox(State(state): State<AppState>, creds: Credentials, Query(q): Query<PageQuery>) -> PageResult {
    let mut page = inbox_page(&state, creds, q.cursor.filter(|c| !c.is_empty())).await?;
    page.notice = q.done.filter(|d| !d.is_empty()).map(|d| page.ctx.t(&format!("approvals-done-{d}")));
    Ok(render(&page))
}

#[derive(Deserialize)]
struct DecideForm {
    csrf_token: Option<String>,
    /// `approve`, `reject` or `pass`.
    decision: String,
    comment: Option<String>,
    to_user_id: Option<String>,
}

async fn decide(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Form(form): Form<DecideForm>,
) -> PageResult {
    let kind = form.decision.clone();
    let to = form.to_user_id.unwrap_or_default();
    let done = form.decision.clone();
    let config = state.config.clone();
    let comment = form.comment;
    let creds = creds.with_csrf(form.csrf_token);
    let result = state
        .write(creds.clone(), move |tx, who| {
            let decision = match kind.as_str() {
                "approve" => Decision::Approve,
                "reject" => Decision::Reject,
                _ => Decision::Pass { to_user_id: colleague(tx, &to)? },
            };
            engine::decide(tx, who, &config.workflow, id, decision, comment)
        })
        .await;
    match result {
        Ok(_) => Ok(see_other(&format!("/approvals?done={}", enc(&done)))),
        Err(e) => {
            let page = inbox_page(&state, creds, None).await?;
            refused(page, e)
        }
    }
}

/// The colleague the "pass on to" field names: an id, an e-mail (what the picker fills
/// in), or `Name <e-mail>`.
fn colleague(tx: &mut kernel::Tx<'_>, typed: &str) -> kernel::Result<Id> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err(kernel::Error::field("to_user_id", "is required: choose whom to pass the item on to"));
    }
    if let Ok(id) = typed.parse::<i64>() {
        return Ok(Id(id));
    }
    let email = match (typed.rfind('<'), typed.rfind('>')) {
        (Some(a), Some(b)) if a < b => &typed[a + 1..b],
        _ => typed,
    };
    kernel::identity::users::find_by_email(tx, email)?.filter(|u| u.active).map(|u| u.id).ok_or_else(|| {
        kernel::Error::field("to_user_id", format!("{typed:?} is no active user; type a name or e-mail and pick one"))
    })
}

#[derive(Deserialize)]
struct PeopleQuery {
    #[serde(default)]
    to_user_id: String,
}

/// The options of a relay item's "pass on to" datalist.
#[derive(Template)]
#[template(path = "approvals/people_options.html")]
struct PeopleOptions {
    people: Vec<Colleague>,
}

/// Colleagues matching what was typed in a relay item's "pass on to" field.
async fn people(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Query(q): Query<PeopleQuery>,
) -> PageResult {
    let typed = q.to_user_id;
    let (_, people) =
        load(&state, creds, "/approvals", move |tx, who| engine::pass_candidates(tx, who, id, &typed, 10)).await?;
    Ok(render(&PeopleOptions { people }))
}

pub struct ClaimRow {
    pub id: String,
    pub amount: String,
    pub category: String,
    pub description: String,
    pub status: String,
    pub status_label: String,
    pub created: String,
}

fn claim_row(ctx: &Ctx, c: &ExpenseClaim) -> ClaimRow {
    // Never submitted: the API says `null`; the page says "Draft".
    let status = c.approval_status.clone().unwrap_or_else(|| "draft".into());
    ClaimRow {
        id: c.id.to_string(),
        amount: format!("{} {}", c.amount.amount, c.amount.currency),
        category: ctx.t_or(&format!("expense-category-{}", c.category), &c.category),
        description: c.description.clone(),
        status: status.clone(),
        status_label: ctx.t_or(&format!("approval-status-{status}"), &status),
        created: ctx.datetime(&c.created_at),
    }
}

#[derive(Template)]
#[template(path = "expenses/list.html")]
struct ListPage {
    ctx: Ctx,
    rows: Vec<ClaimRow>,
    next: Option<String>,
}

async fn list(State(state): State<AppState>, creds: Credentials, Query(q): Query<PageQuery>) -> PageResult {
    let page = PageRequest::parse(None, q.cursor.as_deref().filter(|c| !c.is_empty())).map_err(PageError::from)?;
    let (ctx, found) = load(&state, creds, "/expenses", move |tx, who| expenses::list(tx, who, None, &page)).await?;
    let rows = found.items.iter().map(|c| claim_row(&ctx, c)).collect();
    let next = found.next_cursor.map(|c| format!("/expenses?cursor={}", enc(&c)));
    Ok(render(&ListPage { ctx, rows, next }))
}

#[derive(Deserialize, Default)]
struct ClaimForm {
    csrf_token: Option<String>,
    amount: String,
    currency: String,
    category: String,
    description: String,
}

#[derive(Template)]
#[template(path = "expenses/form.html")]
struct FormPage {
    ctx: Ctx,
    form: ClaimForm,
    categories: Vec<(String, String)>,
    errors: FormErrors,
}

impl WithErrors for FormPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }
    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

fn categories(ctx: &Ctx) -> Vec<(String, String)> {
    CATEGORIES.iter().map(|c| ((*c).to_owned(), ctx.t_or(&format!("expense-category-{c}"), c))).collect()
}

async fn new(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let (ctx, ()) = load(&state, creds, "/expenses", |_, who| who.require("workflow.expenses.create")).await?;
    let form = ClaimForm { currency: "CNY".into(), category: "travel".into(), ..Default::default() };
    let categories = categories(&ctx);
    Ok(render(&FormPage { ctx, form, categories, errors: FormErrors::default() }))
}

async fn create(State(state): State<AppState>, creds: Credentials, Form(form): Form<ClaimForm>) -> PageResult {
    let input = NewClaim {
        amount: Some(Money { amount: form.amount.trim().to_owned(), currency: form.currency.trim().to_owned() }),
        category: form.category.clone(),
        description: form.description.clone(),
    };
    let creds = creds.with_csrf(form.csrf_token.clone());
    let result = state.write(creds.clone(), move |tx, who| expenses::create(tx, who, input)).await;
    match result {
        Ok(c) => Ok(see_other(&format!("/expenses/{}", c.id))),
        Err(e) => {
            let (ctx, ()) = load(&state, creds, "/expenses", |_, _| Ok(())).await?;
            let categories = categories(&ctx);
            refused(FormPage { ctx, form, categories, errors: FormErrors::default() }, e)
        }
    }
}

pub struct Decided {
    pub step: i64,
    pub approver: String,
    pub status: String,
    pub comment: String,
    pub at: String,
}

pub struct Run {
    pub process: String,
    pub version: i64,
    pub status: String,
    pub step: i64,
    pub steps: usize,
    pub started: String,
    pub decisions: Vec<Decided>,
}

#[derive(Template)]
#[template(path = "expenses/detail.html")]
struct DetailPage {
    ctx: Ctx,
    claim: ClaimRow,
    can_submit: bool,
    /// May add and delete receipts: the owner, while the claim is a draft or rejected.
    can_edit: bool,
    receipts: Vec<Receipt>,
    runs: Vec<Run>,
    errors: FormErrors,
}

impl WithErrors for DetailPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }
    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

async fn detail_page(state: &AppState, creds: Credentials, id: Id) -> Result<DetailPage, PageError> {
    let (ctx, (claim, history, mine, receipts)) = load(state, creds, "/expenses", move |tx, who| {
        let claim = expenses::get(tx, who, id)?;
        let history: Vec<History> = engine::history(tx, expenses::RECORD_TYPE, id)?;
        let mine = who.actor() == Some(claim.owner_id) && who.can("workflow.expenses.create");
        let receipts = expenses::receipts(tx, who, id)?;
        Ok((claim, history, mine, receipts))
    })
    .await?;
    let can_submit = mine && matches!(claim.approval_status.as_deref(), None | Some("rejected"));
    let can_edit = can_submit;
    let receipts = receipts.iter().map(receipt).collect();
    let runs = history
        .iter()
        .map(|h| Run {
            process: h.process_name.clone(),
            version: h.process_version,
            status: ctx.t_or(&format!("approval-run-{}", h.status), &h.status),
            step: h.step,
            steps: h.steps,
            started: ctx.datetime(&h.started_at),
            decisions: h
                .decisions
                .iter()
                .map(|d| Decided {
                    step: d.step,
                    approver: d.approver_name.clone(),
                    status: ctx.t_or(&format!("approval-task-{}", d.status), &d.status),
                    comment: d.comment.clone().unwrap_or_default(),
                    at: ctx.opt_datetime(&d.decided_at),
                })
                .collect(),
        })
        .collect();
    let claim = claim_row(&ctx, &claim);
    Ok(DetailPage { ctx, claim, can_submit, can_edit, receipts, runs, errors: FormErrors::default() })
}

async fn detail(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> PageResult {
    Ok(render(&detail_page(&state, creds, id).await?))
}

async fn submit(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let config = state.config.clone();
    let creds = creds.with_csrf(form.csrf_token);
    let result = state.write(creds.clone(), move |tx, who| expenses::submit(tx, who, &config.workflow, id)).await;
    match result {
        Ok(_) => Ok(see_other(&format!("/expenses/{id}"))),
        Err(e) => refused(detail_page(&state, creds, id).await?, e),
    }
}

/// The receipt upload (multipart: `csrf_token`, `file`), from a file or a phone's camera.
async fn upload_receipt(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    mut form: Multipart,
) -> PageResult {
    let mut csrf = None;
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut refusal = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                refusal = Some(upload_error(e.status(), e.body_text()));
                break;
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned).unwrap_or_default();
        match field.bytes().await {
            Ok(bytes) if name == "csrf_token" => csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(bytes) if name == "file" => file = Some((filename, bytes.to_vec())),
            Ok(_) => {}
            Err(e) => {
                refusal = Some(upload_error(e.status(), e.body_text()));
                break;
            }
        }
    }
    let creds = creds.with_csrf(csrf);
    let result = match (refusal, file) {
        (Some(e), _) => Err(e),
        (None, Some((_, bytes))) if bytes.len() > attachments::MAX_BYTES => Err(crate::api::attachments::too_large()),
        (None, file) => {
            let (name, bytes) = file.unwrap_or_default();
            state.write(creds.clone(), move |tx, who| expenses::add_receipt(tx, who, id, &name, &bytes)).await
        }
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/expenses/{id}#receipts"))),
        Err(e) => {
            // Only reads from here: a refused post's CSRF token was already checked.
            let creds = Credentials { needs_csrf: false, ..creds };
            let status = e.status;
            let mut page = detail_page(&state, creds, id).await?;
            if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                page.errors = FormErrors { general: Some(e.detail.clone()), fields: e.errors };
                return Ok((status, render(&page)).into_response());
            }
            refused(page, e)
        }
    }
}

fn upload_error(status: axum::http::StatusCode, text: String) -> ApiError {
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        crate::api::attachments::too_large()
    } else {
        ApiError::bad_request(text)
    }
}

fn delete_receipt_page(ctx: Ctx, claim: Id, a: &Attachment, error: Option<String>) -> ConfirmPage {
    ConfirmPage {
        title: ctx.t("expenses-receipt-delete-title"),
        question: ctx.ta("expenses-receipt-delete-confirm", "name", &a.file_name),
        action: format!("/expenses/{claim}/receipts/{}/delete", a.id),
        button: ctx.t("delete"),
        cancel: format!("/expenses/{claim}#receipts"),
        error,
        ctx,
    }
}

/// The receipt of claim `claim` named `rid`, if `who` may read the claim.
fn find_receipt(tx: &mut kernel::Tx<'_>, who: &kernel::Principal, claim: Id, rid: Id) -> kernel::Result<Attachment> {
    expenses::receipts(tx, who, claim)?.into_iter().find(|a| a.id == rid).ok_or(kernel::Error::NotFound("attachment"))
}

async fn confirm_delete_receipt(
    State(state): State<AppState>,
    creds: Credentials,
    Path((claim, rid)): Path<(i64, i64)>,
) -> PageResult {
    let (claim, rid) = (Id(claim), Id(rid));
    let (ctx, a) = load(&state, creds, "/expenses", move |tx, who| find_receipt(tx, who, claim, rid)).await?;
    Ok(render(&delete_receipt_page(ctx, claim, &a, None)))
}

async fn delete_receipt(
    State(state): State<AppState>,
    creds: Credentials,
    Path((claim, rid)): Path<(i64, i64)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let (claim, rid) = (Id(claim), Id(rid));
    let creds = creds.with_csrf(form.csrf_token);
    let result = state
        .write(creds.clone(), move |tx, who| {
            find_receipt(tx, who, claim, rid)?;
            expenses::remove_receipt(tx, who, rid)
        })
        .await;
    match result {
        Ok(_) => Ok(see_other(&format!("/expenses/{claim}#receipts"))),
        Err(e) if e.status == axum::http::StatusCode::CONFLICT || e.status == axum::http::StatusCode::BAD_REQUEST => {
            let status = e.status;
            let creds = Credentials { needs_csrf: false, ..creds };
            let (ctx, a) = load(&state, creds, "/expenses", move |tx, who| find_receipt(tx, who, claim, rid)).await?;
            Ok((status, render(&delete_receipt_page(ctx, claim, &a, Some(e.detail)))).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "approvals/notifications.html")]
struct BellPage {
    ctx: Ctx,
    items: Vec<(Notification, String)>,
}

async fn bell(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let page = PageRequest::parse(Some(100), None).map_err(PageError::from)?;
    let (ctx, found) =
        load(&state, creds, "/notifications", move |tx, who| notifications::list(tx, who, &page)).await?;
    let items = found.items.into_iter().map(|n| {
        let at = ctx.datetime(&n.created_at);
        (n, at)
    });
    let items = items.collect();
    Ok(render(&BellPage { ctx, items }))
}

async fn read_all(State(state): State<AppState>, creds: Credentials, Form(form): Form<CsrfForm>) -> PageResult {
    super::act(&state, creds, form, "/notifications", |tx, who| notifications::mark_read(tx, who, None)).await
}

/// The process editor: a list, and one form (name, record type, priority, and the
/// conditions and steps as JSON) for a new process or a new version of one.
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/approval-processes", get(processes_list).post(process_create))
        .route("/approval-processes/new", get(process_new))
        .route("/approval-processes/{id}", get(process_edit).post(process_update))
}

pub struct ProcessRow {
    pub id: String,
    pub name: String,
    pub record_type: String,
    pub priority: i64,
    pub active: bool,
    pub version: i64,
    pub steps: usize,
}

#[derive(Template)]
#[template(path = "approvals/processes.html")]
struct ProcessesPage {
    ctx: Ctx,
    rows: Vec<ProcessRow>,
}

async fn processes_list(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let page = PageRequest::parse(Some(500), None).map_err(PageError::from)?;
    let (ctx, found) =
        load(&state, creds, "/approval-processes", move |tx, who| workflow::processes::list(tx, who, None, &page))
            .await?;
    let rows = found
        .items
        .iter()
        .map(|p| ProcessRow {
            id: p.id.to_string(),
            name: p.name.clone(),
            record_type: p.record_type.clone(),
            priority: p.priority,
            active: p.active,
            version: p.version,
            steps: p.steps.len(),
        })
        .collect();
    Ok(render(&ProcessesPage { ctx, rows }))
}

#[derive(Deserialize, Default)]
struct ProcessForm {
    csrf_token: Option<String>,
    name: String,
    #[serde(default)]
    record_type: String,
    priority: String,
    active: Option<String>,
    conditions: String,
    steps: String,
    version: Option<String>,
}

#[derive(Template)]
#[template(path = "approvals/process_form.html")]
struct ProcessFormPage {
    ctx: Ctx,
    id: Option<String>,
    form: ProcessForm,
    record_types: Vec<String>,
    errors: FormErrors,
}

impl WithErrors for ProcessFormPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }
    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

const STEPS_EXAMPLE: &str = r#"[
  {"kind": "sequential", "approvers": [{"kind": "manager"}]},
  {"kind": "sequential", "approvers": [{"kind": "role", "role": "finance"}]}
]"#;

async fn process_new(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let (ctx, ()) =
        load(&state, creds, "/approval-processes", |_, who| who.require("workflow.processes.manage")).await?;
    let form = ProcessForm {
        priority: "100".into(),
        active: Some("on".into()),
        conditions: "[]".into(),
        steps: STEPS_EXAMPLE.into(),
        record_type: "expense_claim".into(),
        ..Default::default()
    };
    let record_types = state.config.workflow.keys().map(str::to_owned).collect();
    Ok(render(&ProcessFormPage { ctx, id: None, form, record_types, errors: FormErrors::default() }))
}

async fn process_edit(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> PageResult {
    let (ctx, p) = load(&state, creds, "/approval-processes", move |tx, who| {
        who.require("workflow.processes.manage")?;
        workflow::processes::get(tx, who, id)
    })
    .await?;
    let form = ProcessForm {
        csrf_token: None,
        name: p.name.clone(),
        record_type: p.record_type.clone(),
        priority: p.priority.to_string(),
        active: p.active.then(|| "on".into()),
        conditions: serde_json::to_string_pretty(&p.conditions).unwrap_or_default(),
        steps: serde_json::to_string_pretty(&p.steps).unwrap_or_default(),
        version: Some(p.version.to_string()),
    };
    let record_types = vec![p.record_type.clone()];
    Ok(render(&ProcessFormPage { ctx, id: Some(id.to_string()), form, record_types, errors: FormErrors::default() }))
}

/// Conditions, steps and priority, parsed from the form.
type Parts = (Vec<workflow::processes::Condition>, Vec<workflow::processes::StepInput>, Option<i64>);

/// The JSON parts of the form, each refusal naming its field.
fn parse_parts(form: &ProcessForm) -> Result<Parts, kernel::Error> {
    let mut v = kernel::error::Validator::new();
    let conditions = v.check(
        "conditions",
        serde_json::from_str(if form.conditions.trim().is_empty() { "[]" } else { &form.conditions })
            .map_err(|e| format!("is not a JSON list of conditions: {e}")),
    );
    let steps =
        v.check("steps", serde_json::from_str(&form.steps).map_err(|e| format!("is not a JSON list of steps: {e}")));
    let priority =
        v.check("priority", form.priority.trim().parse::<i64>().map_err(|_| "must be a whole number".to_owned()));
    v.finish()?;
    Ok((conditions.unwrap_or_default(), steps.unwrap_or_default(), priority))
}

async fn process_create(
    State(state): State<AppState>,
    creds: Credentials,
    Form(form): Form<ProcessForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let config = state.config.clone();
    let parts = parse_parts(&form);
    let (name, record_type, active) = (form.name.clone(), form.record_type.clone(), form.active.is_some());
    let result = state
        .write(creds.clone(), move |tx, who| {
            let (conditions, steps, priority) = parts?;
            let input = workflow::processes::NewProcess {
                name,
                record_type,
                conditions,
                priority,
                steps,
                active: Some(active),
            };
            workflow::processes::create(tx, who, &config.workflow, input)
        })
        .await;
    match result {
        Ok(_) => Ok(see_other("/approval-processes")),
        Err(e) => {
            let (ctx, ()) = load(&state, creds, "/approval-processes", |_, _| Ok(())).await?;
            let record_types = state.config.workflow.keys().map(str::to_owned).collect();
            refused(ProcessFormPage { ctx, id: None, form, record_types, errors: FormErrors::default() }, e)
        }
    }
}

async fn process_update(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Form(form): Form<ProcessForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let config = state.config.clone();
    let parts = parse_parts(&form);
    let (name, active) = (form.name.clone(), form.active.is_some());
    let version = form.version.as_deref().and_then(|v| v.parse::<i64>().ok());
    let result = state
        .write(creds.clone(), move |tx, who| {
            let (conditions, steps, priority) = parts?;
            let patch = workflow::processes::ProcessPatch {
                name: Some(name),
                conditions: Some(conditions),
                priority,
                steps: Some(steps),
                active: Some(active),
                version,
            };
            workflow::processes::update(tx, who, &config.workflow, id, patch)
        })
        .await;
    match result {
        Ok(_) => Ok(see_other("/approval-processes")),
        Err(e) => {
            let (ctx, ()) = load(&state, creds, "/approval-processes", |_, _| Ok(())).await?;
            let record_types = vec![form.record_type.clone()];
            refused(
                ProcessFormPage { ctx, id: Some(id.to_string()), form, record_types, errors: FormErrors::default() },
                e,
            )
        }
    }
}
