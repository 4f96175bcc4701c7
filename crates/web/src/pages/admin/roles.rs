//! Roles: the list, an editor with one checkbox per permission and the data scope, and
//! the same form to create a custom role.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Form, Router};
use kernel::DataScope;
use kernel::identity::roles;
use serde::Deserialize;

use super::{Opt, role_label, scope_label};
use crate::error::ApiError;
use crate::pages::{Ctx, FormErrors, PageError, PageResult, WithErrors, load, refused, render, see_other};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/roles", get(list).post(create))
        .route("/roles/new", get(new_form))
        .route("/roles/{key}", get(edit).post(update))
}

pub struct RoleRow {
    pub key: String,
    pub name: String,
    pub scope: String,
    pub permissions: String,
    pub built_in: bool,
}

#[derive(Template)]
#[template(path = "roles/list.html")]
struct ListPage {
    ctx: Ctx,
    rows: Vec<RoleRow>,
}

/// How many permissions a role has; `*` is every permission.
fn permission_count(ctx: &Ctx, permissions: &[String]) -> String {
    if permissions.iter().any(|p| p == "*") { ctx.t("roles-all-permissions") } else { permissions.len().to_string() }
}

async fn list(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let (ctx, all) = load(&state, creds, "/roles", roles::list).await?;
    let rows = all
        .iter()
        .map(|r| RoleRow {
            key: r.key.clone(),
            name: role_label(&ctx, &r.key, &r.name),
            scope: scope_label(&ctx, r.data_scope),
            permissions: permission_count(&ctx, &r.permissions),
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
    /// `None` when creating.
    existing: Option<String>,
    key: String,
    heading: String,
    name: String,
    version: i64,
    read_only: bool,
    all_permissions: bool,
    scopes: Vec<Opt>,
    boxes: Vec<PermissionBox>,
    others: Vec<String>,
    errors: FormErrors,
    notice: Option<String>,
}

impl WithErrors for EditPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

#[derive(Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

/// What the form shows: the stored role, or what was submitted.
struct Chosen {
    key: String,
    name: String,
    scope: DataScope,
    permissions: Vec<String>,
}

/// The role form: `existing` names the role being edited, `None` creates one.
async fn page(
    state: &AppState,
    creds: Credentials,
    existing: Option<String>,
    chosen: Option<Chosen>,
) -> Result<EditPage, PageError> {
    let target = existing.clone();
    let (ctx, role) = load(state, creds, "/roles", move |tx, who| match target {
        Some(key) => roles::get(tx, who, &key).map(Some),
        None => who.require("identity.roles.update").map(|()| None),
    })
    .await?;
    let chosen = chosen.unwrap_or_else(|| match &role {
        Some(r) => {
            Chosen { key: r.key.clone(), name: r.name.clone(), scope: r.data_scope, permissions: r.permissions.clone() }
        }
        None => Chosen { key: String::new(), name: String::new(), scope: DataScope::Own, permissions: Vec::new() },
    });
    let boxes = state
        .config
        .permissions
        .iter()
        .map(|(p, d)| PermissionBox {
            name: (*p).to_owned(),
            // Translated when the catalogue has a message, else the area's own description.
            description: ctx.t_or(&format!("perm-{}", p.replace('.', "-")), d),
            checked: chosen.permissions.iter().any(|g| g == p),
        })
        .collect();
    let others =
        chosen.permissions.iter().filter(|g| !state.config.permissions.iter().any(|(p, _)| p == *g)).cloned().collect();
    let scopes = [DataScope::Own, DataScope::Branch, DataScope::All]
        .into_iter()
        .map(|s| Opt::new(s.as_str(), scope_label(&ctx, s), s == chosen.scope))
        .collect();
    let heading = match &role {
        Some(r) => role_label(&ctx, &r.key, &r.name),
        None => ctx.t("roles-new"),
    };
    Ok(EditPage {
        read_only: existing.as_deref() == Some("admin") || !ctx.can("identity.roles.update"),
        all_permissions: chosen.permissions.iter().any(|p| p == "*"),
        version: role.as_ref().map_or(0, |r| r.version),
        existing,
        key: chosen.key,
        heading,
        name: chosen.name,
        scopes,
        boxes,
        others,
        errors: FormErrors::default(),
        notice: None,
        ctx,
    })
}

async fn new_form(State(state): State<AppState>, creds: Credentials) -> PageResult {
    Ok(render(&page(&state, creds, None, None).await?))
}

async fn edit(
    State(state): State<AppState>,
    creds: Credentials,
    Path(key): Path<String>,
    Query(n): Query<Notice>,
) -> PageResult {
    let mut p = page(&state, creds, Some(key), None).await?;
    if n.saved.is_some() {
        p.notice = Some(p.ctx.t("form-saved"));
    }
    Ok(render(&p))
}

/// The role form as posted. Checkboxes repeat the `permissions` name, so the form is
/// read as pairs.
struct Posted {
    csrf: Option<String>,
    key: String,
    name: String,
    scope: Option<DataScope>,
    permissions: Vec<String>,
    version: Option<i64>,
}

impl Posted {
    fn read(pairs: &[(String, String)]) -> Posted {
        let value = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Posted {
            csrf: value("csrf_token"),
            key: value("key").unwrap_or_default(),
            name: value("name").unwrap_or_default(),
            scope: value("data_scope").and_then(|s| DataScope::parse(&s)),
            permissions: pairs
                .iter()
                .filter(|(n, _)| n == "permissions" || n == "keep")
                .map(|(_, v)| v.clone())
                .collect(),
            version: value("version").and_then(|v| v.parse().ok()),
        }
    }

    fn chosen(self, key: String) -> Chosen {
        Chosen { key, name: self.name, scope: self.scope.unwrap_or(DataScope::Own), permissions: self.permissions }
    }
}

async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let posted = Posted::read(&pairs);
    let creds = creds.with_csrf(posted.csrf.clone());
    let input = roles::NewRole {
        key: posted.key.trim().to_owned(),
        name: posted.name.clone(),
        data_scope: posted.scope.unwrap_or(DataScope::Own),
        permissions: posted.permissions.clone(),
    };
    let known = state.permission_names();
    let result: Result<_, ApiError> =
        state.write(creds.clone(), move |tx, who| roles::create(tx, who, input, &known)).await;
    match result {
        Ok(role) => Ok(see_other(&format!("/roles/{}?saved=1", role.key))),
        Err(e) => {
            let key = posted.key.clone();
            refused(page(&state, creds, None, Some(posted.chosen(key))).await?, e)
        }
    }
}

async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let posted = Posted::read(&pairs);
    let creds = creds.with_csrf(posted.csrf.clone());
    let patch = roles::RolePatch {
        name: Some(posted.name.clone()),
        data_scope: posted.scope,
        permissions: Some(posted.permissions.clone()),
        version: posted.version,
    };
    let known = state.permission_names();
    let target = key.clone();
    let result: Result<_, ApiError> =
        state.write(creds.clone(), move |tx, who| roles::update(tx, who, &target, patch, &known)).await;
    match result {
        Ok(_) => Ok(see_other(&format!("/roles/{key}?saved=1"))),
        Err(e) => refused(page(&state, creds, Some(key.clone()), Some(posted.chosen(key))).await?, e),
    }
}
