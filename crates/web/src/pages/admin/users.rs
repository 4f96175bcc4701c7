//! Users: list with search and paging, create, edit, password reset, history.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use kernel::identity::{passwords, users};
use kernel::paging::PageRequest;
use kernel::{Error, Id};
use serde::Deserialize;

use super::{AuditRow, Opt, audit_rows, branch_options, locale_options, role_options, time_zone_options, user_choices};
use crate::pages::{Ctx, FormErrors, PageError, PageResult, load, non_empty, opt_id, render, see_other};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/new", get(new_form))
        .route("/users/{id}", get(edit_form).post(update))
        .route("/users/{id}/password", post(reset_password))
}

pub struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub active: bool,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct ListPage {
    ctx: Ctx,
    q: String,
    rows: Vec<UserRow>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn list(State(state): State<AppState>, creds: Credentials, Query(query): Query<ListQuery>) -> PageResult {
    let q = query.q.clone().unwrap_or_default();
    let page = PageRequest::parse(None, query.cursor.as_deref().filter(|c| !c.is_empty())).map_err(PageError::from)?;
    let filter = users::UserFilter { q: non_empty(query.q), ..Default::default() };
    let (ctx, found) = load(&state, creds, "/users", move |tx, who| users::list(tx, who, &filter, &page)).await?;
    let rows = found
        .items
        .iter()
        .map(|u| UserRow {
            id: u.id.to_string(),
            name: u.name.clone(),
            email: u.email.clone(),
            role: u.role.clone(),
            active: u.active,
            updated: ctx.datetime(&u.updated_at),
        })
        .collect();
    let next = found.next_cursor.map(|c| format!("/users?q={}&cursor={}", enc(&q), enc(&c)));
    Ok(render(&ListPage { ctx, q, rows, next }))
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
    #[serde(default)]
    locale: String,
    #[serde(default)]
    time_zone: String,
    active: Option<String>,
    version: Option<i64>,
}

#[derive(Template)]
#[template(path = "users/form.html")]
struct FormPage {
    ctx: Ctx,
    /// `None` when creating.
    id: Option<String>,
    form: UserForm,
    roles: Vec<Opt>,
    branches: Vec<Opt>,
    locales: Vec<Opt>,
    zones: Vec<Opt>,
    errors: FormErrors,
    notice: Option<String>,
    password_errors: FormErrors,
    history: Vec<AuditRow>,
}

async fn form_page(
    state: &AppState,
    creds: Credentials,
    id: Option<Id>,
    form: Option<UserForm>,
    errors: FormErrors,
    password_errors: FormErrors,
    notice_key: Option<&str>,
) -> Result<FormPage, PageError> {
    let (ctx, (roles, tree, user, history)) = load(state, creds, "/users", move |tx, who| {
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
        Ok((roles, tree, user, history))
    })
    .await?;
    let form = match (form, &user) {
        (Some(f), _) => f,
        (None, Some(u)) => UserForm {
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role.clone(),
            branch_id: Some(u.branch_id.to_string()),
            locale: u.locale.clone(),
            time_zone: u.time_zone.clone(),
            active: u.active.then(|| "on".into()),
            version: Some(u.version),
            ..Default::default()
        },
        (None, None) => UserForm {
            locale: ctx.locale.to_owned(),
            time_zone: ctx.time_zone().to_owned(),
            active: Some("on".into()),
            ..Default::default()
        },
    };
    Ok(FormPage {
        roles: role_options(&roles, &form.role),
        branches: branch_options(&tree, opt_id(&form.branch_id)),
        locales: locale_options(&form.locale),
        zones: time_zone_options(&form.time_zone),
        history: audit_rows(&ctx, &history),
        notice: notice_key.map(|k| ctx.t(k)),
        id: id.map(|i| i.to_string()),
        ctx,
        form,
        errors,
        password_errors,
    })
}

async fn new_form(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let page = form_page(&state, creds, None, None, FormErrors::default(), FormErrors::default(), None).await?;
    Ok(render(&page))
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
    let notice = match n.saved.as_deref() {
        Some("password") => Some("users-password-reset-done"),
        Some("created") => Some("users-created"),
        Some(_) => Some("form-saved"),
        None => None,
    };
    let page =
        form_page(&state, creds, Some(Id(id)), None, FormErrors::default(), FormErrors::default(), notice).await?;
    Ok(render(&page))
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
        manager_id: None,
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
        Err(e) => refused(&state, creds, None, form, e).await,
    }
}

async fn refused(
    state: &AppState,
    creds: Credentials,
    id: Option<Id>,
    mut form: UserForm,
    e: crate::error::ApiError,
) -> PageResult {
    let locale = crate::pages::supported_locale("en").unwrap_or("en");
    let status = e.status;
    let probe = Ctx::anonymous(state, locale, String::new());
    let errors = FormErrors::from_error(&probe, e)?;
    form.password.clear();
    let mut page = form_page(state, creds, id, Some(form), FormErrors::default(), FormErrors::default(), None).await?;
    // Translate the general message into the user's language now that we know it.
    page.errors = FormErrors {
        general: Some(if status == StatusCode::PRECONDITION_FAILED {
            page.ctx.t("form-stale")
        } else if errors.fields.is_empty() {
            errors.general.unwrap_or_default()
        } else {
            page.ctx.t("form-has-errors")
        }),
        fields: errors.fields,
    };
    Ok((status, render(&page)).into_response())
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
        manager_id: None,
        active: Some(form.active.is_some()),
        version: form.version,
    };
    match state.write(creds.clone(), move |tx, who| users::update(tx, who, id, patch)).await {
        Ok(_) => Ok(see_other(&format!("/users/{id}?saved=1"))),
        Err(e) => refused(&state, creds, Some(id), form, e).await,
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
        Err(e) => {
            let status = e.status;
            let probe = Ctx::anonymous(&state, "en", String::new());
            let mut errors = FormErrors::from_error(&probe, e)?;
            let mut page =
                form_page(&state, creds, Some(id), None, FormErrors::default(), FormErrors::default(), None).await?;
            errors.general = Some(page.ctx.t("form-has-errors"));
            page.password_errors = errors;
            Ok((status, render(&page)).into_response())
        }
    }
}
