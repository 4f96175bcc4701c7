//! My account: change password, language and time zone, notification preferences, API tokens.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use kernel::Id;
use kernel::identity::{tokens, users};
use serde::Deserialize;

use super::admin::{Opt, locale_options, time_zone_options};
use super::{
    CsrfForm, Ctx, FormErrors, PageError, PageResult, WithErrors, load, non_empty, refused_in, render, see_other,
};
use crate::api::me::{PasswordChange, change_own_password};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(password))
        .route("/account/preferences", post(preferences))
        .route("/account/notifications", post(notifications))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "account/page.html")]
struct AccountPage {
    ctx: Ctx,
    email: String,
    version: i64,
    locales: Vec<Opt>,
    zones: Vec<Opt>,
    tokens: Vec<TokenRow>,
    /// One row per kind of notice: in the app, by e-mail.
    notices: Vec<workflow::notifications::Preference>,
    notice: Option<String>,
    password_errors: FormErrors,
    preference_errors: FormErrors,
    notification_errors: FormErrors,
    token_errors: FormErrors,
    new_secret: Option<String>,
}

impl WithErrors for AccountPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn errors(&mut self) -> &mut FormErrors {
        &mut self.password_errors
    }
}

async fn page(state: &AppState, creds: Credentials) -> Result<AccountPage, PageError> {
    let registry = state.config.workflow.clone();
    let (ctx, (me, list, notices)) = load(state, creds, "/account", move |tx, who| {
        let me = users::get(tx, who, who.user_id)?;
        let list = tokens::list(tx, who, None)?;
        let notices = workflow::notifications::preferences(tx, who, &registry)?;
        Ok((me, list, notices))
    })
    .await?;
    let tokens = list
        .iter()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created: ctx.datetime(&t.created_at),
            last_used: ctx.opt_datetime(&t.last_used_at),
            revoked: t.revoked_at.is_some(),
        })
        .collect();
    Ok(AccountPage {
        email: me.email,
        version: me.version,
        locales: locale_options(&me.locale),
        zones: time_zone_options(&me.time_zone),
        tokens,
        notices,
        notice: None,
        password_errors: FormErrors::default(),
        preference_errors: FormErrors::default(),
        notification_errors: FormErrors::default(),
        token_errors: FormErrors::default(),
        new_secret: None,
        ctx,
    })
}

#[derive(Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

async fn show(State(state): State<AppState>, creds: Credentials, Query(n): Query<Notice>) -> PageResult {
    let mut p = page(&state, creds).await?;
    p.notice = n.saved.as_deref().map(|s| match s {
        "password" => p.ctx.t("account-password-changed"),
        "preferences" => p.ctx.t("account-preferences-saved"),
        "notifications" => p.ctx.t("account-notifications-saved"),
        _ => p.ctx.t("form-saved"),
    });
    Ok(render(&p))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: Option<String>,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

async fn password(State(state): State<AppState>, creds: Credentials, Form(form): Form<PasswordForm>) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    let input = PasswordChange { current_password: form.current_password, new_password: form.new_password };
    match change_own_password(&state, creds.clone(), input).await {
        Ok(()) => Ok(see_other("/account?saved=password")),
        Err(e) => refused_in(page(&state, creds).await?, e, |p| &mut p.password_errors),
    }
}

#[derive(Deserialize)]
pub struct PreferencesForm {
    csrf_token: Option<String>,
    locale: Option<String>,
    time_zone: Option<String>,
    version: Option<i64>,
}

async fn preferences(
    State(state): State<AppState>,
    creds: Credentials,
    Form(form): Form<PreferencesForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    let patch = users::UserPatch {
        locale: non_empty(form.locale),
        time_zone: non_empty(form.time_zone),
        version: form.version,
        ..Default::default()
    };
    match state.write(creds.clone(), move |tx, who| users::update(tx, who, who.user_id, patch)).await {
        Ok(_) => Ok(see_other("/account?saved=preferences")),
        Err(e) => refused_in(page(&state, creds).await?, e, |p| &mut p.preference_errors),
    }
}

/// The notification table as posted: `csrf_token`, and one `in_app=<kind>` and
/// `email=<kind>` per ticked box (an unticked box sends nothing, so every registered kind
/// not listed is switched off).
async fn notifications(
    State(state): State<AppState>,
    creds: Credentials,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let token = pairs.iter().find(|(k, _)| k == "csrf_token").map(|(_, v)| v.clone());
    let creds = creds.with_csrf(token);
    let ticked = |field: &str, kind: &str| pairs.iter().any(|(k, v)| k == field && v == kind);
    let registry = state.config.workflow.clone();
    let items = registry
        .notice_kinds()
        .iter()
        .map(|k| workflow::notifications::PreferenceInput {
            kind: k.key.to_owned(),
            in_app: ticked("in_app", k.key),
            email: ticked("email", k.key),
        })
        .collect();
    let input = workflow::notifications::PreferencesInput { items };
    match state
        .write(creds.clone(), move |tx, who| workflow::notifications::set_preferences(tx, who, &registry, input))
        .await
    {
        Ok(_) => Ok(see_other("/account?saved=notifications")),
        Err(e) => refused_in(page(&state, creds).await?, e, |p| &mut p.notification_errors),
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf_token: Option<String>,
    #[serde(default)]
    name: String,
}

async fn create_token(State(state): State<AppState>, creds: Credentials, Form(form): Form<TokenForm>) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    let input = tokens::NewToken { name: form.name, user_id: None };
    let result = state.write(creds.clone(), move |tx, who| tokens::create(tx, who, input)).await;
    let status = result.as_ref().map_or_else(|e| e.status, |_| axum::http::StatusCode::OK);
    let mut p = page(&state, creds).await?;
    match result {
        Ok(created) => p.new_secret = Some(created.secret),
        Err(e) => p.token_errors = FormErrors::from_error(&p.ctx, e)?,
    }
    let mut response = (status, render(&p)).into_response();
    // The secret must not linger in caches.
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn revoke_token(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    state.write(creds, move |tx, who| tokens::revoke(tx, who, Id(id))).await?;
    Ok(see_other("/account?saved=token"))
}
