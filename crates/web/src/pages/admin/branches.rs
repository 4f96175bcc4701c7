//! Branches: the tree, create, edit, delete (with a confirmation page), history.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use kernel::Id;
use kernel::identity::branches;
use kernel::paging::PageRequest;
use serde::Deserialize;

use super::{AuditRow, Opt, audit_rows, branch_options, kind_label, time_zone_options};
use crate::error::ApiError;
use crate::pages::{
    ConfirmPage, CsrfForm, Ctx, FormErrors, PageError, PageResult, WithErrors, act, enc, load, non_empty, opt_id,
    refused, render, see_other,
};
use crate::pages::{DeletedPage, DeletedRow};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/branches", get(tree).post(create))
        .route("/branches/new", get(new_form))
        .route("/branches/{id}", get(edit_form).post(update))
        .route("/branches/deleted", get(deleted))
        .route("/branches/{id}/delete", get(confirm_delete).post(delete))
        .route("/branches/{id}/restore", post(restore))
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

impl WithErrors for FormPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

async fn form_page(
    state: &AppState,
    creds: Credentials,
    id: Option<Id>,
    form: Option<BranchForm>,
    notice: Option<&'static str>,
) -> Result<FormPage, PageError> {
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
        notice: notice.map(|key| ctx.t(key)),
        id: id.map(|i| i.to_string()),
        ctx,
        form,
        errors: FormErrors::default(),
    })
}

async fn new_form(State(state): State<AppState>, creds: Credentials) -> PageResult {
    Ok(render(&form_page(&state, creds, None, None, None).await?))
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
    let notice = n.saved.as_deref().map(|s| if s == "restored" { "branches-restored" } else { "form-saved" });
    Ok(render(&form_page(&state, creds, Some(Id(id)), None, notice).await?))
}

async fn refuse(state: &AppState, creds: Credentials, id: Option<Id>, form: BranchForm, e: ApiError) -> PageResult {
    refused(form_page(state, creds, id, Some(form), None).await?, e)
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
        Err(e) => refuse(&state, creds, None, form, e).await,
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
        Err(e) => refuse(&state, creds, Some(id), form, e).await,
    }
}

fn delete_page(ctx: Ctx, b: &branches::Branch, error: Option<String>) -> ConfirmPage {
    ConfirmPage {
        title: ctx.t("branches-delete-title"),
        question: ctx.ta("branches-delete-confirm", "name", &b.name),
        action: format!("/branches/{}/delete", b.id),
        button: ctx.t("delete"),
        cancel: format!("/branches/{}", b.id),
        error,
        ctx,
    }
}

async fn confirm_delete(State(state): State<AppState>, creds: Credentials, Path(id): Path<i64>) -> PageResult {
    let (ctx, b) = load(&state, creds, "/branches", move |tx, who| {
        who.require("identity.branches.delete")?;
        branches::get(tx, who, Id(id))
    })
    .await?;
    Ok(render(&delete_page(ctx, &b, None)))
}

async fn delete(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    match state.write(creds.clone(), move |tx, who| branches::delete(tx, who, Id(id))).await {
        Ok(()) => Ok(see_other("/branches/deleted?done=deleted")),
        Err(e) if e.status == axum::http::StatusCode::CONFLICT || e.status == axum::http::StatusCode::BAD_REQUEST => {
            let status = e.status;
            let (ctx, b) = load(&state, creds, "/branches", move |tx, who| branches::get(tx, who, Id(id))).await?;
            Ok((status, render(&delete_page(ctx, &b, Some(e.detail)))).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct DeletedQuery {
    cursor: Option<String>,
    done: Option<String>,
}

async fn deleted(State(state): State<AppState>, creds: Credentials, Query(q): Query<DeletedQuery>) -> PageResult {
    let page = PageRequest::parse(None, q.cursor.as_deref().filter(|c| !c.is_empty())).map_err(PageError::from)?;
    let (ctx, found) = load(&state, creds, "/branches", move |tx, who| branches::list_deleted(tx, who, &page)).await?;
    let rows = found
        .items
        .iter()
        .map(|b| DeletedRow {
            id: b.id.to_string(),
            cells: vec![
                b.name.clone(),
                kind_label(&ctx, &b.kind),
                b.code.clone().unwrap_or_default(),
                ctx.datetime(&b.updated_at),
            ],
        })
        .collect();
    let next = found.next_cursor.map(|c| format!("/branches/deleted?cursor={}", enc(&c)));
    let notice = q.done.is_some().then(|| ctx.t("branches-deleted-done"));
    let columns = ["field-name", "field-kind", "field-code", "field-deleted-at"].map(|k| ctx.t(k)).to_vec();
    let can_restore = ctx.can("identity.branches.delete");
    Ok(render(&DeletedPage { area: "branches", columns, rows, can_restore, next, notice, ctx }))
}

async fn restore(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    act(&state, creds, form, &format!("/branches/{id}?saved=restored"), move |tx, who| {
        branches::restore(tx, who, Id(id))
    })
    .await
}
