//! Roles: the list, and an editor with one checkbox per permission and the data scope.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Form, Router};
use kernel::DataScope;
use kernel::identity::roles;
use serde::Deserialize;

use super::Opt;
use crate::error::ApiError;
use crate::pages::{Ctx, FormErrors, PageError, PageResult, load, render, see_other};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/roles", get(list)).route("/roles/{key}", get(edit).post(update))
}

pub struct RoleRow {
    pub key: String,
    pub name: String,
    pub scope: String,
    pub permissions: usize,
    pub built_in: bool,
}

#[derive(Template)]
#[template(path = "roles/list.html")]
struct ListPage {
    ctx: Ctx,
    rows: Vec<RoleRow>,
}

fn scope_label(ctx: &Ctx, scope: DataScope) -> String {
    ctx.t(&format!("scope-{}", scope.as_str()))
}

async fn list(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let (ctx, all) = load(&state, creds, "/roles", roles::list).await?;
    let rows = all
        .iter()
        .map(|r| RoleRow {
            key: r.key.clone(),
            name: r.name.clone(),
            scope: scope_label(&ctx, r.data_scope),
            permissions: r.permissions.len(),
            built_in: r.built_in,
        })
        .collect();
    Ok(render(&ListPage { ctx, rows }))
}

pub struct PermissionBox {
    pub name: String,
    pub description: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "roles/edit.html")]
struct EditPage {
    ctx: Ctx,
    key: String,
    name: String,
    version: i64,
    read_only: bool,
    scopes: Vec<Opt>,
    boxes: Vec<PermissionBox>,
    others: Vec<String>,
    errors: FormErrors,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

async fn page(
    state: &AppState,
    creds: Credentials,
    key: String,
    chosen: Option<(String, DataScope, Vec<String>)>,
) -> Result<EditPage, PageError> {
    let (ctx, role) = load(state, creds, "/roles", move |tx, who| roles::get(tx, who, &key)).await?;
    let (name, scope, granted) = chosen.unwrap_or((role.name.clone(), role.data_scope, role.permissions.clone()));
    let boxes = state
        .config
        .permissions
        .iter()
        .map(|(p, d)| {
            // Translated when the catalogue has a message, else the area's own description.
            let key = format!("perm-{}", p.replace('.', "-"));
            let translated = ctx.t(&key);
            let description = if translated == key { (*d).to_owned() } else { translated };
            PermissionBox { name: (*p).to_owned(), description, checked: granted.iter().any(|g| g == p) }
        })
        .collect();
    let others = granted.iter().filter(|g| !state.config.permissions.iter().any(|(p, _)| p == g)).cloned().collect();
    let scopes = [DataScope::Own, DataScope::Branch, DataScope::All]
        .into_iter()
        .map(|s| Opt::new(s.as_str(), scope_label(&ctx, s), s == scope))
        .collect();
    Ok(EditPage {
        read_only: role.key == "admin" || !ctx.can("identity.roles.update"),
        key: role.key,
        name,
        version: role.version,
        scopes,
        boxes,
        others,
        errors: FormErrors::default(),
        notice: None,
        ctx,
    })
}

async fn edit(
    State(state): State<AppState>,
    creds: Credentials,
    Path(key): Path<String>,
    Query(n): Query<Notice>,
) -> PageResult {
    let mut p = page(&state, creds, key, None).await?;
    if n.saved.is_some() {
        p.notice = Some(p.ctx.t("form-saved"));
    }
    Ok(render(&p))
}

/// Checkboxes repeat the `permissions` name, so the form is read as pairs.
async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let value = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let creds = creds.with_csrf(value("csrf_token"));
    let name = value("name").unwrap_or_default();
    let scope = value("data_scope").and_then(|s| DataScope::parse(&s));
    let permissions: Vec<String> =
        pairs.iter().filter(|(n, _)| n == "permissions" || n == "keep").map(|(_, v)| v.clone()).collect();
    let patch = roles::RolePatch {
        name: Some(name.clone()),
        data_scope: scope,
        permissions: Some(permissions.clone()),
        version: value("version").and_then(|v| v.parse().ok()),
    };
    let known = state.permission_names();
    let target = key.clone();
    let result: Result<_, ApiError> =
        state.write(creds.clone(), move |tx, who| roles::update(tx, who, &target, patch, &known)).await;
    match result {
        Ok(_) => Ok(see_other(&format!("/roles/{key}?saved=1"))),
        Err(e) => {
            let status = e.status;
            let mut p = page(&state, creds, key, Some((name, scope.unwrap_or(DataScope::Own), permissions))).await?;
            p.errors = FormErrors::from_error(&p.ctx, e)?;
            Ok((status, render(&p)).into_response())
        }
    }
}
