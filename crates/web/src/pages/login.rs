//! Logging in and out. Before login there is no session, so the login form's CSRF
//! protection is a double-submit cookie: a random token in a cookie and in the form.
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use kernel::identity::{login, passwords, sessions};
use kernel::{Channel, Error};
use serde::Deserialize;

use super::{Ctx, LANG_COOKIE, PageError, PageResult, anonymous_locale, render, see_other};
use crate::error::ApiError;
use crate::state::{AppState, Credentials, SESSION_COOKIE};

pub const LOGIN_CSRF_COOKIE: &str = "rapport_login_csrf";

pub fn router() -> Router<AppState> {
    Router::new().route("/login", get(show).post(submit)).route("/logout", post(logout))
}

pub struct Language {
    pub tag: &'static str,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: Ctx,
    email: String,
    error: Option<String>,
    languages: Vec<Language>,
}

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

fn request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn cookie_header(state: &AppState, name: &str, value: &str, max_age: i64, http_only: bool) -> HeaderValue {
    let secure = if state.config.secure_cookies { "; Secure" } else { "" };
    let http_only = if http_only { "; HttpOnly" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age}{http_only}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn page(state: &AppState, locale: &'static str, csrf: String, email: String, error: Option<String>) -> LoginPage {
    let languages =
        super::LANGUAGES.iter().map(|(tag, label)| Language { tag, label, current: *tag == locale }).collect();
    LoginPage { ctx: Ctx::anonymous(state, locale, csrf), email, error, languages }
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    creds: Credentials,
    Query(q): Query<LangQuery>,
) -> Response {
    let locale = anonymous_locale(&headers, q.lang.as_deref());
    let mut extra = Vec::new();
    if q.lang.as_deref().and_then(super::supported_locale).is_some() {
        extra.push(cookie_header(&state, LANG_COOKIE, locale, 365 * 24 * 3600, false));
    }
    // Already logged in: go home.
    if !creds.is_anonymous() && state.read(creds, |_, _| Ok(())).await.is_ok() {
        return see_other("/");
    }
    let csrf = match request_cookie(&headers, LOGIN_CSRF_COOKIE) {
        Some(token) => token.to_owned(),
        None => {
            let token = sessions::random_secret(24);
            extra.push(cookie_header(&state, LOGIN_CSRF_COOKIE, &token, 3600 * 24, true));
            token
        }
    };
    let mut response = render(&page(&state, locale, csrf, String::new(), None));
    for c in extra {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    csrf_token: Option<String>,
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    creds: Credentials,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let locale = anonymous_locale(&headers, None);
    let expected = request_cookie(&headers, LOGIN_CSRF_COOKIE).map(str::to_owned);
    let Some(csrf) = expected.filter(|c| form.csrf_token.as_deref() == Some(c.as_str())) else {
        // No matching token: show a fresh form (its token arrives with this response).
        let token = sessions::random_secret(24);
        let page = page(&state, locale, token.clone(), form.email, Some(state.i18n.t(locale, "login-error-csrf")));
        let mut response = (StatusCode::FORBIDDEN, render(&page)).into_response();
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie_header(&state, LOGIN_CSRF_COOKIE, &token, 3600 * 24, true));
        return Ok(response);
    };
    let refused = |e: Error, email: String| -> PageResult {
        let api = ApiError::from(e);
        let message = match api.status {
            StatusCode::UNAUTHORIZED => state.i18n.t(locale, "login-error-wrong"),
            StatusCode::TOO_MANY_REQUESTS => {
                let minutes = api.retry_after.unwrap_or(60).div_ceil(60).to_string();
                state.i18n.t_args(locale, "login-error-throttled", &[("minutes", &minutes)])
            }
            _ => return Err(PageError::new(api, locale)),
        };
        let page = page(&state, locale, csrf.clone(), email, Some(message));
        Ok((api.status, render(&page)).into_response())
    };
    let email = form.email.clone();
    let ip = creds.ip.clone();
    let attempt = match state.db.read(move |tx| login::prepare(tx, &email, ip.as_deref())).await {
        Ok(a) => a,
        Err(e) => return refused(e, form.email),
    };
    let password = form.password;
    let stored = attempt.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || passwords::verify(&password, &stored))
        .await
        .map_err(|e| PageError::new(Error::Internal(e.to_string()).into(), locale))?;
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request_id = creds.request_id.clone();
    let outcome = state
        .db
        .write(move |tx| login::finish(tx, &attempt, ok, Channel::Ui, user_agent.as_deref(), request_id))
        .await
        .map_err(|e| PageError::new(e.into(), locale))?;
    match outcome {
        login::Outcome::LoggedIn(session, _) => {
            let mut response = see_other("/");
            let max_age = sessions::ABSOLUTE_TIMEOUT.num_seconds();
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie_header(&state, SESSION_COOKIE, &session.secret, max_age, true));
            response.headers_mut().append(header::SET_COOKIE, cookie_header(&state, LOGIN_CSRF_COOKIE, "", 0, true));
            Ok(response)
        }
        login::Outcome::Refused(e) => refused(e, form.email),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf_token: Option<String>,
}

async fn logout(State(state): State<AppState>, creds: Credentials, Form(form): Form<CsrfForm>) -> PageResult {
    let Some(secret) = creds.session_secret().map(str::to_owned) else {
        return Ok(see_other("/login"));
    };
    let creds = creds.with_csrf(form.csrf_token);
    match state.write(creds, move |tx, _| sessions::end(tx, &secret)).await {
        Ok(()) | Err(ApiError { status: StatusCode::UNAUTHORIZED, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let mut response = see_other("/login");
    response.headers_mut().append(header::SET_COOKIE, cookie_header(&state, SESSION_COOKIE, "", 0, true));
    Ok(response)
}
