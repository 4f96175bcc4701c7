//! HTML pages (askama templates + htmx). Every page works without JavaScript: htmx only
//! enhances (live search); forms are plain POSTs that redirect after success (303).
pub mod account;
pub mod admin;
pub mod calendar;
pub mod customers;
pub mod delegations;
pub mod fmt;
pub mod home;
pub mod imports;
pub mod jobs;
pub mod login;
pub mod workflow;

use std::sync::{Arc, OnceLock};

use askama::Template;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use kernel::identity::sessions;
use kernel::{FieldError, Principal, Tx};
use serde::Deserialize;

use crate::error::ApiError;
use crate::i18n::{I18n, LOCALES, negotiate};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(login::router())
        .merge(home::router())
        .merge(jobs::router())
        .merge(account::router())
        .merge(admin::router())
        .merge(customers::router())
        .merge(imports::router())
        .merge(workflow::router())
        .merge(workflow::admin_router())
        .merge(calendar::router())
        .merge(delegations::router())
}

/// The cookie remembering a language chosen before logging in.
pub const LANG_COOKIE: &str = "rapport_lang";

pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

/// What every page template needs: language, the user, the CSRF token, the navigation.
pub struct Ctx {
    pub locale: &'static str,
    pub i18n: Arc<I18n>,
    pub csrf: String,
    pub user: Option<Principal>,
    pub nav: Vec<NavItem>,
    /// The header's counts: unread notifications (the bell) and approvals waiting.
    pub unread: i64,
    pub inbox: i64,
}

/// (permission needed or "" for everyone, href, label key)
const NAV: &[(&str, &str, &str)] = &[
    ("", "/", "nav-home"),
    ("customers.tasks.read", "/my-day", "nav-my-day"),
    ("customers.accounts.read", "/accounts", "nav-accounts"),
    ("customers.contacts.read", "/contacts", "nav-contacts"),
    ("identity.users.read", "/users", "nav-users"),
    ("identity.branches.read", "/branches", "nav-branches"),
    ("identity.roles.read", "/roles", "nav-roles"),
    ("audit.log.read", "/audit", "nav-audit"),
    ("customers.import", "/imports", "nav-imports"),
    ("customers.merge", "/duplicates", "nav-duplicates"),
    ("customers.handover", "/admin/handover", "nav-handover"),
    ("workflow.approvals.read", "/approvals", "nav-approvals"),
    ("workflow.expenses.read", "/expenses", "nav-expenses"),
    ("", "/notifications", "nav-notifications"),
    ("workflow.processes.manage", "/approval-processes", "nav-processes"),
    ("workflow.processes.manage", "/working-calendar", "nav-working-calendar"),
    ("workflow.approvals.read", "/delegations", "nav-delegations"),
    ("", "/jobs", "nav-jobs"),
    ("", "/account", "nav-account"),
];

pub fn supported_locale(tag: &str) -> Option<&'static str> {
    LOCALES.iter().copied().find(|l| l.eq_ignore_ascii_case(tag))
}

impl Ctx {
    pub fn anonymous(state: &AppState, locale: &'static str, csrf: String) -> Ctx {
        Ctx { locale, i18n: state.i18n.clone(), csrf, user: None, nav: Vec::new(), unread: 0, inbox: 0 }
    }

    pub fn for_user(state: &AppState, who: Principal, csrf: String, current: &str) -> Ctx {
        let locale = supported_locale(&who.locale).unwrap_or("en");
        let nav = NAV
            .iter()
            .filter(|(perm, _, _)| perm.is_empty() || who.can(perm))
            .map(|(_, href, key)| NavItem { href, label: state.i18n.t(locale, key), current: *href == current })
            .collect();
        Ctx { locale, i18n: state.i18n.clone(), csrf, user: Some(who), nav, unread: 0, inbox: 0 }
    }

    pub fn t(&self, key: &str) -> String {
        self.i18n.t(self.locale, key)
    }

    /// The message `key`, or `fallback` when the catalogue has none (custom roles,
    /// audit values added by later areas).
    pub fn t_or(&self, key: &str, fallback: &str) -> String {
        let text = self.t(key);
        if text == key { fallback.to_owned() } else { text }
    }

    pub fn ta(&self, key: &str, name: &str, value: &str) -> String {
        self.i18n.t_args(self.locale, key, &[(name, value)])
    }

    pub fn can(&self, permission: &str) -> bool {
        self.user.as_ref().is_some_and(|u| u.can(permission))
    }

    pub fn time_zone(&self) -> &str {
        self.user.as_ref().map_or("UTC", |u| u.time_zone.as_str())
    }

    pub fn datetime(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        fmt::datetime(at, self.time_zone(), self.locale)
    }

    pub fn opt_datetime(&self, at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
        at.as_ref().map(|a| self.datetime(a)).unwrap_or_else(|| "—".into())
    }
}

/// Field errors and a general message shown above a form.
#[derive(Default)]
pub struct FormErrors {
    pub general: Option<String>,
    pub fields: Vec<FieldError>,
}

impl FormErrors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.general.is_none() && self.fields.is_empty()
    }

    pub fn message(message: String) -> FormErrors {
        FormErrors { general: Some(message), fields: Vec::new() }
    }

    /// Turns a refused change into what the form shows; errors a form cannot show
    /// (401, 403, 404, 5xx) stay errors.
    pub fn from_error(ctx: &Ctx, e: ApiError) -> Result<FormErrors, PageError> {
        match e.status {
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT | StatusCode::BAD_REQUEST => Ok(FormErrors {
                general: Some(if e.errors.is_empty() { e.detail } else { ctx.t("form-has-errors") }),
                fields: e.errors,
            }),
            StatusCode::PRECONDITION_FAILED => Ok(FormErrors::message(ctx.t("form-stale"))),
            _ => Err(PageError::new(e, ctx.locale)),
        }
    }
}

/// A page that could not be shown: 401 sends the browser to the login page, anything
/// else renders a translated error page.
#[derive(Debug)]
pub struct PageError {
    pub error: ApiError,
    pub locale: &'static str,
}

impl PageError {
    pub fn new(error: ApiError, locale: &'static str) -> Self {
        PageError { error, locale }
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError { error, locale: "en" }
    }
}

impl From<kernel::Error> for PageError {
    fn from(error: kernel::Error) -> Self {
        ApiError::from(error).into()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: Ctx,
    heading: String,
    detail: &'a str,
}

fn shared_i18n() -> Arc<I18n> {
    static I18N: OnceLock<Arc<I18n>> = OnceLock::new();
    I18N.get_or_init(|| Arc::new(I18n::load())).clone()
}

/// What an error page showed, kept on the response so [`error_layout`] can show it again
/// inside the logged-in user's layout.
#[derive(Clone)]
struct Shown {
    status: StatusCode,
    detail: String,
}

fn error_page(ctx: Ctx, shown: &Shown) -> Response {
    let key = match shown.status {
        StatusCode::FORBIDDEN => "error-forbidden",
        StatusCode::NOT_FOUND => "error-not-found",
        StatusCode::TOO_MANY_REQUESTS => "error-too-many",
        s if s.is_server_error() => "error-internal",
        _ => "error-bad-request",
    };
    let page = ErrorPage { heading: ctx.t(key), ctx, detail: &shown.detail };
    let mut response = (shown.status, render(&page)).into_response();
    response.extensions_mut().insert(shown.clone());
    response
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if self.error.status == StatusCode::UNAUTHORIZED {
            return Redirect::to("/login").into_response();
        }
        let ctx = Ctx {
            locale: self.locale,
            i18n: shared_i18n(),
            csrf: String::new(),
            user: None,
            nav: Vec::new(),
            unread: 0,
            inbox: 0,
        };
        let detail = if self.error.status.is_server_error() { String::new() } else { self.error.detail };
        error_page(ctx, &Shown { status: self.error.status, detail })
    }
}

/// Shows error pages of logged-in users with their navigation, in their language, so
/// they can find their way back (a handler's error knows neither).
pub async fn error_layout(State(state): State<AppState>, creds: Credentials, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let Some(shown) = response.extensions().get::<Shown>().cloned() else { return response };
    if creds.session_secret().is_none() {
        return response;
    }
    // Only reads: the refused request's CSRF token does not matter here.
    let creds = Credentials { needs_csrf: false, ..creds };
    match load(&state, creds, "", |_, _| Ok(())).await {
        Ok((ctx, ())) => error_page(ctx, &shown),
        Err(_) => response,
    }
}

pub type PageResult = Result<Response, PageError>;

pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Reads what a page needs as the authenticated caller, with the session's CSRF token
/// for the page's forms, in one unit of work.
pub async fn load<T, F>(state: &AppState, creds: Credentials, current: &str, work: F) -> Result<(Ctx, T), PageError>
where
    F: FnOnce(&mut Tx<'_>, &Principal) -> kernel::Result<T> + Send + 'static,
    T: Send + 'static,
{
    load_with_ctx(state, creds, current, move |tx, who, _| work(tx, who)).await
}

/// Like [`load`], for work that renders with the page's [`Ctx`] inside the unit of work
/// (customer panels: their forms need the CSRF token, their text the user's language).
pub async fn load_with_ctx<T, F>(
    state: &AppState,
    creds: Credentials,
    current: &str,
    work: F,
) -> Result<(Ctx, T), PageError>
where
    F: FnOnce(&mut Tx<'_>, &Principal, &Ctx) -> kernel::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let inner_state = state.clone();
    let inner_current = current.to_owned();
    let secret = creds.session_secret().map(str::to_owned);
    let (mut ctx, out, counts) = state
        .read(creds, move |tx, who| {
            let csrf = match &secret {
                Some(s) => sessions::resolve(tx, s)?.map(|l| l.csrf_token).unwrap_or_default(),
                None => String::new(),
            };
            // The work's own refusal (403, 404) is shown in the caller's language.
            let ctx = Ctx::for_user(&inner_state, who.clone(), csrf, &inner_current);
            let out = work(tx, who, &ctx);
            let counts = (::workflow::notifications::unread(tx, who)?, ::workflow::engine::pending_count(tx, who)?);
            Ok((ctx, out, counts))
        })
        .await?;
    (ctx.unread, ctx.inbox) = counts;
    match out {
        Ok(out) => Ok((ctx, out)),
        Err(e) => Err(PageError::new(e.into(), ctx.locale)),
    }
}

/// The language of a page shown before login: `?lang=`, then the cookie, then the browser.
pub fn anonymous_locale(headers: &HeaderMap, lang: Option<&str>) -> &'static str {
    if let Some(l) = lang.and_then(supported_locale) {
        return l;
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == LANG_COOKIE)
        .and_then(|(_, v)| supported_locale(v));
    cookie.unwrap_or_else(|| negotiate(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())))
}

/// Percent-encodes a value for a query string.
pub fn enc(s: &str) -> String {
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

/// A form that is only a button: the CSRF field and nothing else.
#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf_token: Option<String>,
}

/// A page with a form that shows why a change was refused.
pub trait WithErrors: Template {
    fn ctx(&self) -> &Ctx;
    fn errors(&mut self) -> &mut FormErrors;
}

/// Shows `page` again with the refusal's errors above the form and its status (422,
/// 409, 412...); refusals a form cannot show become error pages.
pub fn refused<P: WithErrors>(page: P, e: ApiError) -> PageResult {
    refused_in(page, e, P::errors)
}

/// Like [`refused`], for a page with several forms: `slot` picks the form's errors.
pub fn refused_in<P: WithErrors>(mut page: P, e: ApiError, slot: fn(&mut P) -> &mut FormErrors) -> PageResult {
    let status = e.status;
    *slot(&mut page) = FormErrors::from_error(page.ctx(), e)?;
    Ok((status, render(&page)).into_response())
}

/// The confirmation step before a destructive change: a page with one button that
/// posts to `action` (the form works without JavaScript).
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub ctx: Ctx,
    pub title: String,
    pub question: String,
    pub action: String,
    pub button: String,
    pub cancel: String,
    pub error: Option<String>,
}

/// Runs a one-button change (delete, restore, deactivate) for the caller of a plain
/// form, then sends the browser to `to`.
pub async fn act<T, F>(state: &AppState, creds: Credentials, form: CsrfForm, to: &str, work: F) -> PageResult
where
    F: FnOnce(&mut Tx<'_>, &Principal) -> kernel::Result<T> + Send + 'static,
    T: Send + 'static,
{
    state.write(creds.with_csrf(form.csrf_token), work).await?;
    Ok(see_other(to))
}

/// Parses an optional id from a form or query string ("" means none).
pub fn opt_id(text: &Option<String>) -> Option<kernel::Id> {
    text.as_deref().filter(|s| !s.is_empty()).and_then(|s| s.parse::<i64>().ok()).map(kernel::Id)
}

/// Empty text from a form means "not given".
pub fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|s| !s.trim().is_empty())
}

/// Language choices for selects: (tag, label key).
pub const LANGUAGES: [(&str, &str); 3] = [("en", "English"), ("zh-CN", "简体中文"), ("ko-KR", "한국어")];

/// Time zones offered in preference and branch forms.
pub const TIME_ZONES: &[&str] = &[
    "Asia/Shanghai",
    "Asia/Seoul",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Tokyo",
    "Asia/Singapore",
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
];

/// One deleted record on a "deleted …" page, its cells in column order.
pub struct DeletedRow {
    pub id: String,
    pub cells: Vec<String>,
}

/// The list of an area's deleted records, each with a restore button.
#[derive(Template)]
#[template(path = "deleted.html")]
pub struct DeletedPage {
    pub ctx: Ctx,
    /// The area's path and translation prefix: `users`, `branches`.
    pub area: &'static str,
    pub columns: Vec<String>,
    pub rows: Vec<DeletedRow>,
    pub can_restore: bool,
    pub next: Option<String>,
    pub notice: Option<String>,
}

impl DeletedPage {
    /// The area's translation key `<area>-<suffix>`.
    fn key(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.area)
    }
}
