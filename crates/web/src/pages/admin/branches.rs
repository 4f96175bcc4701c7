//! Branches: the tree, create, edit, delete (with a confirmation page), history.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Form, Router};
use kernel::Id;
use kernel::identity::branches;
use kernel::paging::PageRequest;
use serde::Deserialize;

use super::{AuditRow, Opt, audit_rows, branch_options, time_zone_options};
use crate::error::ApiError;
use crate::pages::{Ctx, FormErrors, PageResult, load, non_empty, opt_id, render, see_other};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/branches", get(tree).post(create))
        .route("/branches/new", get(new_form))
        .route("/branches/{id}", get(edit_form).post(update))
        .route("/branches/{id}/delete", get(confirm_delete).post(delete))
}

pub struct BranchRow {
    pub id: String,
    pub name: String,
    pub code: String,
    pub kind: String,
    pub depth: usize,
}

#[derive(Template)]
#[template(path = "branches/tree.html")]
struct TreePage {
    ctx: Ctx,
    rows: Vec<BranchRow>,
}

fn kind_label(ctx: &Ctx, kind: &str) -> String {
    ctx.t(&format!("branches-kind-{kind}"))
}

async fn tree(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let (ctx, tree) = load(&state, creds, "/branches", branches::tree).await?;
    let rows = tree
        .iter()
        .map(|b| BranchRow {
            id: b.id.to_string(),
            name: b.name.clone(),
            code: b.code.clone().unwrap_or_default(),
            kind: kind_label(&ctx, &b.kind),
            depth: b.depth.min(5),
        })
        .collect();
    Ok(render(&TreePage { ctx, rows }))
}

#[derive(Deserialize, Default)]
pub struct BranchForm {
    csrf_token: Option<String>,
    #[serde(default)]
    name: String,
    parent_id: Option<String>,
    #[serde(default)]
    code: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    time_zone: String,
    version: Option<i64>,
}

#[derive(Template)]
#[template(path = "branches/form.html")]
struct FormPage {
    ctx: Ctx,
    id: Option<String>,
    form: BranchForm,
    parents: Vec<Opt>,
    kinds: Vec<Opt>,
    regions: Vec<Opt>,
    zones: Vec<Opt>,
    errors: FormErrors,
    notice: Option<String>,
    history: Vec<AuditRow>,
}

async fn form_page(
    state: &AppState,
    creds: Credentials,
    id: Option<Id>,
    form: Option<BranchForm>,
    notice: bool,
) -> Result<FormPage, crate::pages::PageError> {
    let (ctx, (tree, branch, history)) = load(state, creds, "/branches", move |tx, who| {
        let tree = branches::tree(tx, who)?;
        match id {
            Some(id) => {
                let b = branches::get(tx, who, id)?;
                who.require("identity.branches.update")?;
                let history = kernel::audit::history(tx, "branch", id, &PageRequest::parse(Some(50), None)?)?.items;
                Ok((tree, Some(b), history))
            }
            None => {
                who.require("identity.branches.create")?;
                Ok((tree, None, Vec::new()))
            }
        }
    })
    .await?;
    let form = match (form, &branch) {
        (Some(f), _) => f,
        (None, Some(b)) => BranchForm {
            name: b.name.clone(),
            parent_id: b.parent_id.map(|p| p.to_string()),
            code: b.code.clone().unwrap_or_default(),
            kind: b.kind.clone(),
            region: b.region.clone(),
            time_zone: b.time_zone.clone(),
            version: Some(b.version),
            ..Default::default()
        },
        (None, None) => BranchForm {
            kind: "store".into(),
            time_zone: ctx.time_zone().to_owned(),
            parent_id: tree.first().map(|b| b.id.to_string()),
            ..Default::default()
        },
    };
    // A branch cannot move below itself or its descendants.
    let own_path = branch.as_ref().map(|b| b.path.clone());
    let candidates: Vec<branches::Branch> =
        tree.into_iter().filter(|b| own_path.as_ref().is_none_or(|p| !b.path.starts_with(p.as_str()))).collect();
    let kinds = branches::KINDS.iter().map(|k| Opt::new(*k, kind_label(&ctx, k), *k == form.kind)).collect();
    let regions = branches::REGIONS.iter().map(|r| Opt::new(*r, *r, *r == form.region)).collect();
    Ok(FormPage {
        parents: branch_options(&candidates, opt_id(&form.parent_id)),
        kinds,
        regions,
        zones: time_zone_options(&form.time_zone),
        history: audit_rows(&ctx, &history),
        notice: notice.then(|| ctx.t("form-saved")),
        id: id.map(|i| i.to_string()),
        ctx,
        form,
        errors: FormErrors::default(),
    })
}

async fn new_form(State(state): State<AppState>, creds: Credentials) -> PageResult {
    Ok(render(&form_page(&state, creds, None, None, false).await?))
}

#[derive(Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

async fn edit_form(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Query(n): Query<Notice>,
) -> PageResult {
    Ok(render(&form_page(&state, creds, Some(Id(id)), None, n.saved.is_some()).await?))
}

async fn refused(state: &AppState, creds: Credentials, id: Option<Id>, form: BranchForm, e: ApiError) -> PageResult {
    let status = e.status;
    let mut page = form_page(state, creds, id, Some(form), false).await?;
    page.errors = FormErrors::from_error(&page.ctx, e)?;
    Ok((status, render(&page)).into_response())
}

async fn create(State(state): State<AppState>, creds: Credentials, Form(form): Form<BranchForm>) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let input = branches::NewBranch {
        name: form.name.clone(),
        parent_id: opt_id(&form.parent_id),
        code: non_empty(Some(form.code.clone())),
        kind: non_empty(Some(form.kind.clone())),
        region: non_empty(Some(form.region.clone())),
        time_zone: non_empty(Some(form.time_zone.clone())),
    };
    match state.write(creds.clone(), move |tx, who| branches::create(tx, who, input)).await {
        Ok(b) => Ok(see_other(&format!("/branches/{}?saved=1", b.id))),
        Err(e) => refused(&state, creds, None, form, e).await,
    }
}

async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<BranchForm>,
) -> PageResult {
    let id = Id(id);
    let creds = creds.with_csrf(form.csrf_token.clone());
    let patch = branches::BranchPatch {
        name: Some(form.name.clone()),
        parent_id: opt_id(&form.parent_id),
        code: Some(form.code.clone()),
        kind: non_empty(Some(form.kind.clone())),
        region: non_empty(Some(form.region.clone())),
        time_zone: non_empty(Some(form.time_zone.clone())),
        version: form.version,
    };
    match state.write(creds.clone(), move |tx, who| branches::update(tx, who, id, patch)).await {
        Ok(_) => Ok(see_other(&format!("/branches/{id}?saved=1"))),
        Err(e) => refused(&state, creds, Some(id), form, e).await,
    }
}

#[derive(Template)]
#[template(path = "branches/delete.html")]
struct DeletePage {
    ctx: Ctx,
    id: String,
    question: String,
    error: Option<String>,
}

async fn confirm_delete(State(state): State<AppState>, creds: Credentials, Path(id): Path<i64>) -> PageResult {
    let (ctx, b) = load(&state, creds, "/branches", move |tx, who| {
        who.require("identity.branches.delete")?;
        branches::get(tx, who, Id(id))
    })
    .await?;
    let question = ctx.ta("branches-delete-confirm", "name", &b.name);
    Ok(render(&DeletePage { ctx, id: b.id.to_string(), question, error: None }))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf_token: Option<String>,
}

async fn delete(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    match state.write(creds.clone(), move |tx, who| branches::delete(tx, who, Id(id))).await {
        Ok(()) => Ok(see_other("/branches")),
        Err(e) if e.status == axum::http::StatusCode::CONFLICT || e.status == axum::http::StatusCode::BAD_REQUEST => {
            let status = e.status;
            let (ctx, b) = load(&state, creds, "/branches", move |tx, who| branches::get(tx, who, Id(id))).await?;
            let question = ctx.ta("branches-delete-confirm", "name", &b.name);
            Ok((status, render(&DeletePage { ctx, id: b.id.to_string(), question, error: Some(e.detail) }))
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}
