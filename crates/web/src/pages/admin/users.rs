//! Users: list with search, filters and paging, create, edit, password reset, history,
//! deactivate and reactivate, delete (with confirmation) and the deleted users to restore.
use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Form, Router};
use kernel::identity::{branches as kbranches, passwords, roles as kroles, users};
use kernel::paging::{MAX_LIMIT, PageRequest};
use kernel::{Error, Id, Principal, Tx};
use serde::Deserialize;

use super::{
    AuditRow, Opt, audit_rows, branch_options, locale_options, role_label, role_options, time_zone_options,
    user_choices,
};
use crate::error::ApiError;
use crate::pages::{
    ConfirmPage, CsrfForm, Ctx, FormErrors, PageError, PageResult, WithErrors, act, enc, load, non_empty, opt_id,
    refused, refused_in, render, see_other,
};
use crate::pages::{DeletedPage, DeletedRow};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/new", get(new_form))
        .route("/users/deleted", get(deleted))
        .route("/users/{id}", get(edit_form).post(update))
        .route("/users/{id}/password", post(reset_password))
        .route("/users/{id}/deactivate", get(confirm_deactivate).post(deactivate))
        .route("/users/{id}/activate", post(activate))
        .route("/users/{id}/delete", get(confirm_delete).post(delete))
        .route("/users/{id}/restore", post(restore))
}

pub struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub active: bool,
    pub updated: String,
}

/// Role names for showing users: every role for those who may read roles, else the
/// roles the shown users have.
fn role_names(tx: &mut Tx<'_>, who: &Principal, shown: &[users::User]) -> kernel::Result<Vec<kroles::Role>> {
    if who.can("identity.roles.read") {
        return kroles::list(tx, who);
    }
    let keys: std::collections::BTreeSet<&str> = shown.iter().map(|u| u.role.as_str()).collect();
    let mut found = Vec::new();
    for key in keys {
        found.extend(kroles::find(tx, key)?);
    }
    Ok(found)
}

fn rows(ctx: &Ctx, found: &[users::User], roles: &[kroles::Role]) -> Vec<UserRow> {
    let names: BTreeMap<&str, &str> = roles.iter().map(|r| (r.key.as_str(), r.name.as_str())).collect();
    found
        .iter()
        .map(|u| UserRow {
            id: u.id.to_string(),
            name: u.name.clone(),
            email: u.email.clone(),
            role: role_label(ctx, &u.role, names.get(u.role.as_str()).copied().unwrap_or(&u.role)),
            active: u.active,
            updated: ctx.datetime(&u.updated_at),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct ListPage {
    ctx: Ctx,
    q: String,
    branches: Vec<Opt>,
    roles: Vec<Opt>,
    statuses: Vec<Opt>,
    rows: Vec<UserRow>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    branch_id: Option<String>,
    role: Option<String>,
    /// `active`, `inactive` or empty for both.
    status: Option<String>,
    cursor: Option<String>,
}

impl ListQuery {
    /// The filters as a query string, for the next page link.
    fn filters(&self) -> String {
        let v = |o: &Option<String>| enc(o.as_deref().unwrap_or_default());
        format!("q={}&branch_id={}&role={}&status={}", v(&self.q), v(&self.branch_id), v(&self.role), v(&self.status))
    }

    fn filter(&self) -> users::UserFilter {
        users::UserFilter {
            q: non_empty(self.q.clone()),
            branch_id: opt_id(&self.branch_id),
            role: non_empty(self.role.clone()),
            active: match self.status.as_deref() {
                Some("active") => Some(true),
                Some("inactive") => Some(false),
                _ => None,
            },
        }
    }
}

async fn list(State(state): State<AppState>, creds: Credentials, Query(query): Query<ListQuery>) -> PageResult {
    let page = PageRequest::parse(None, query.cursor.as_deref().filter(|c| !c.is_empty())).map_err(PageError::from)?;
    let filter = query.filter();
    let (ctx, (found, roles, tree)) = load(&state, creds, "/users", move |tx, who| {
        let found = users::list(tx, who, &filter, &page)?;
        let roles = role_names(tx, who, &found.items)?;
        let tree = if who.can("identity.branches.read") { kbranches::tree(tx, who)? } else { Vec::new() };
        Ok((found, roles, tree))
    })
    .await?;
    let status = query.status.clone().unwrap_or_default();
    let statuses = [("active", "users-status-active"), ("inactive", "users-inactive")]
        .iter()
        .map(|(value, key)| Opt::new(*value, ctx.t(key), *value == status))
        .collect();
    let next = found.next_cursor.as_ref().map(|c| format!("/users?{}&cursor={}", query.filters(), enc(c)));
    Ok(render(&ListPage {
        rows: rows(&ctx, &found.items, &roles),
        q: query.q.clone().unwrap_or_default(),
        branches: branch_options(&tree, opt_id(&query.branch_id)),
        roles: if ctx.can("identity.roles.read") {
            role_options(&ctx, &roles, query.role.as_deref().unwrap_or_default())
        } else {
            Vec::new()
        },
        statuses,
        next,
        ctx,
    }))
}

/// The values a user form shows.
#[derive(Deserialize, Default)]
pub struct UserForm {
    csrf_token: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    branch_id: Option<String>,
    manager_id: Option<String>,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    time_zone: String,
    version: Option<i64>,
}

#[derive(Template)]
#[template(path = "users/form.html")]
struct FormPage {
    ctx: Ctx,
    /// `None` when creating.
    id: Option<String>,
    /// The stored user is active (edit only).
    active: bool,
    /// The user edits their own record (they cannot deactivate or delete it).
    myself: bool,
    form: UserForm,
    roles: Vec<Opt>,
    branches: Vec<Opt>,
    managers: Vec<Opt>,
    locales: Vec<Opt>,
    zones: Vec<Opt>,
    errors: FormErrors,
    notice: Option<String>,
    password_errors: FormErrors,
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

/// Most users a manager picker offers.
const MAX_MANAGERS: usize = 2000;

/// The active users in the caller's scope, for the manager picker, plus the current
/// manager if they are not among them.
fn manager_choices(tx: &mut Tx<'_>, who: &Principal, current: Option<Id>) -> kernel::Result<Vec<users::User>> {
    let filter = users::UserFilter { active: Some(true), ..Default::default() };
    let mut page = PageRequest::parse(Some(MAX_LIMIT), None)?;
    let mut out = Vec::new();
    loop {
        let found = users::list(tx, who, &filter, &page)?;
        out.extend(found.items);
        match found.next_cursor {
            Some(c) if out.len() < MAX_MANAGERS => page = PageRequest::parse(Some(MAX_LIMIT), Some(&c))?,
            _ => break,
        }
    }
    if let Some(m) = current.filter(|m| !out.iter().any(|u| u.id == *m)) {
        out.extend(users::find(tx, m)?);
    }
    Ok(out)
}

async fn form_page(
    state: &AppState,
    creds: Credentials,
    id: Option<Id>,
    form: Option<UserForm>,
    notice_key: Option<&str>,
) -> Result<FormPage, PageError> {
    let (ctx, (roles, tree, managers, user, history)) = load(state, creds, "/users", move |tx, who| {
        let (roles, tree) = user_choices(tx, who)?;
        let (user, history) = match id {
            Some(id) => {
                let user = users::get(tx, who, id)?;
                who.require("identity.users.update")?;
                let history = kernel::audit::history(tx, "user", id, &PageRequest::parse(Some(50), None)?)?.items;
                (Some(user), history)
            }
            None => {
                who.require("identity.users.create")?;
                (None, Vec::new())
            }
        };
        let managers = manager_choices(tx, who, user.as_ref().and_then(|u| u.manager_id))?;
        Ok((roles, tree, managers, user, history))
    })
    .await?;
    let form = match (form, &user) {
        (Some(f), _) => f,
        (None, Some(u)) => UserForm {
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role.clone(),
            branch_id: Some(u.branch_id.to_string()),
            manager_id: u.manager_id.map(|m| m.to_string()),
            locale: u.locale.clone(),
            time_zone: u.time_zone.clone(),
            version: Some(u.version),
            ..Default::default()
        },
        (None, None) => {
            UserForm { locale: ctx.locale.to_owned(), time_zone: ctx.time_zone().to_owned(), ..Default::default() }
        }
    };
    let manager = opt_id(&form.manager_id);
    let managers = managers
        .iter()
        .filter(|m| Some(m.id) != id)
        .map(|m| Opt::new(m.id.to_string(), format!("{} <{}>", m.name, m.email), Some(m.id) == manager))
        .collect();
    Ok(FormPage {
        roles: role_options(&ctx, &roles, &form.role),
        branches: branch_options(&tree, opt_id(&form.branch_id)),
        managers,
        locales: locale_options(&form.locale),
        zones: time_zone_options(&form.time_zone),
        history: audit_rows(&ctx, &history),
        notice: notice_key.map(|k| ctx.t(k)),
        id: id.map(|i| i.to_string()),
        active: user.as_ref().is_some_and(|u| u.active),
        myself: id.is_some_and(|i| ctx.user.as_ref().is_some_and(|me| me.user_id == i)),
        ctx,
        form,
        errors: FormErrors::default(),
        password_errors: FormErrors::default(),
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
    let notice = n.saved.as_deref().map(|s| match s {
        "password" => "users-password-reset-done",
        "created" => "users-created",
        "deactivated" => "users-deactivated",
        "activated" => "users-activated",
        "restored" => "users-restored",
        _ => "form-saved",
    });
    Ok(render(&form_page(&state, creds, Some(Id(id)), None, notice).await?))
}

async fn create(State(state): State<AppState>, creds: Credentials, Form(form): Form<UserForm>) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let input = users::NewUser {
        email: form.email.clone(),
        name: form.name.clone(),
        password: form.password.clone(),
        role: form.role.clone(),
        branch_id: opt_id(&form.branch_id).unwrap_or(Id(0)),
        locale: non_empty(Some(form.locale.clone())),
        time_zone: non_empty(Some(form.time_zone.clone())),
        manager_id: opt_id(&form.manager_id),
    };
    let result = async {
        passwords::check_policy(&input.password).map_err(|m| Error::field("password", m))?;
        let check = input.clone();
        state.write(creds.clone(), move |tx, who| users::validate_new(tx, who, &check)).await?;
        let password = input.password.clone();
        let hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        state.write(creds.clone(), move |tx, who| users::create(tx, who, input, hash)).await
    }
    .await;
    match result {
        Ok(user) => Ok(see_other(&format!("/users/{}?saved=created", user.id))),
        Err(e) => refuse(&state, creds, None, form, e).await,
    }
}

async fn refuse(state: &AppState, creds: Credentials, id: Option<Id>, mut form: UserForm, e: ApiError) -> PageResult {
    form.password.clear();
    refused(form_page(state, creds, id, Some(form), None).await?, e)
}

async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<UserForm>,
) -> PageResult {
    let id = Id(id);
    let creds = creds.with_csrf(form.csrf_token.clone());
    let patch = users::UserPatch {
        email: Some(form.email.clone()),
        name: Some(form.name.clone()),
        locale: non_empty(Some(form.locale.clone())),
        time_zone: non_empty(Some(form.time_zone.clone())),
        branch_id: opt_id(&form.branch_id),
        role: non_empty(Some(form.role.clone())),
        // The picker's "none" clears the manager.
        manager_id: Some(opt_id(&form.manager_id)),
        active: None,
        version: form.version,
    };
    match state.write(creds.clone(), move |tx, who| users::update(tx, who, id, patch)).await {
        Ok(_) => Ok(see_other(&format!("/users/{id}?saved=1"))),
        Err(e) => refuse(&state, creds, Some(id), form, e).await,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: Option<String>,
    #[serde(default)]
    new_password: String,
}

async fn reset_password(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let id = Id(id);
    let creds = creds.with_csrf(form.csrf_token);
    let password = form.new_password;
    let result = async {
        passwords::check_policy(&password).map_err(|m| Error::field("new_password", m))?;
        let hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        state.write(creds.clone(), move |tx, who| users::set_password(tx, who, id, hash, None)).await
    }
    .await;
    match result {
        Ok(()) => Ok(see_other(&format!("/users/{id}?saved=password"))),
        Err(e) => refused_in(form_page(&state, creds, Some(id), None, None).await?, e, |p| &mut p.password_errors),
    }
}

/// A confirmation page about one user: `what` names the messages (`users-<what>-title`,
/// `users-<what>-confirm`, `users-<what>`) and the path (`/users/<id>/<what>`).
async fn confirm(state: &AppState, creds: Credentials, id: i64, what: &str, permission: &'static str) -> PageResult {
    let (ctx, user) = load(state, creds, "/users", move |tx, who| {
        who.require(permission)?;
        users::get(tx, who, Id(id))
    })
    .await?;
    Ok(render(&ConfirmPage {
        title: ctx.t(&format!("users-{what}-title")),
        question: ctx.ta(&format!("users-{what}-confirm"), "name", &user.name),
        action: format!("/users/{id}/{what}"),
        button: ctx.t(&format!("users-{what}")),
        cancel: format!("/users/{id}"),
        error: None,
        ctx,
    }))
}

async fn confirm_deactivate(State(state): State<AppState>, creds: Credentials, Path(id): Path<i64>) -> PageResult {
    confirm(&state, creds, id, "deactivate", "identity.users.update").await
}

async fn confirm_delete(State(state): State<AppState>, creds: Credentials, Path(id): Path<i64>) -> PageResult {
    confirm(&state, creds, id, "delete", "identity.users.delete").await
}

/// Sets whether a user may log in; the kernel refuses deactivating oneself.
async fn set_active(state: &AppState, creds: Credentials, form: CsrfForm, id: i64, active: bool) -> PageResult {
    let to = format!("/users/{id}?saved={}", if active { "activated" } else { "deactivated" });
    let patch = users::UserPatch { active: Some(active), ..Default::default() };
    // The form page shown on refusal is read with the same token.
    let creds = creds.with_csrf(form.csrf_token.clone());
    match act(state, creds.clone(), form, &to, move |tx, who| users::update(tx, who, Id(id), patch)).await {
        Err(e) if e.error.status == axum::http::StatusCode::UNPROCESSABLE_ENTITY => {
            refused(form_page(state, creds, Some(Id(id)), None, None).await?, e.error)
        }
        other => other,
    }
}

async fn deactivate(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    set_active(&state, creds, form, id, false).await
}

async fn activate(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    set_active(&state, creds, form, id, true).await
}

async fn delete(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    act(&state, creds, form, "/users/deleted?done=deleted", move |tx, who| users::delete(tx, who, Id(id))).await
}

async fn restore(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    act(&state, creds, form, &format!("/users/{id}?saved=restored"), move |tx, who| users::restore(tx, who, Id(id)))
        .await
}

#[derive(Deserialize, Default)]
pub struct DeletedQuery {
    cursor: Option<String>,
    done: Option<String>,
}

async fn deleted(State(state): State<AppState>, creds: Credentials, Query(q): Query<DeletedQuery>) -> PageResult {
    let page = PageRequest::parse(None, q.cursor.as_deref().filter(|c| !c.is_empty())).map_err(PageError::from)?;
    let (ctx, (found, roles)) = load(&state, creds, "/users", move |tx, who| {
        let found = users::list_deleted(tx, who, &page)?;
        let roles = role_names(tx, who, &found.items)?;
        Ok((found, roles))
    })
    .await?;
    let next = found.next_cursor.as_ref().map(|c| format!("/users/deleted?cursor={}", enc(c)));
    let notice = q.done.is_some().then(|| ctx.t("users-deleted-done"));
    let rows = rows(&ctx, &found.items, &roles)
        .into_iter()
        .map(|u| DeletedRow { id: u.id, cells: vec![u.name, u.email, u.role, u.updated] })
        .collect();
    let columns = ["field-name", "field-email", "field-role", "field-deleted-at"].map(|k| ctx.t(k)).to_vec();
    let can_restore = ctx.can("identity.users.delete");
    Ok(render(&DeletedPage { area: "users", columns, rows, can_restore, next, notice, ctx }))
}
