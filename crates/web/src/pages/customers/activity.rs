//! Logging a call, visit, meeting, e-mail or note in three taps on an account or contact
//! page ("Log" → kind → save, the subject prefilled per kind), and the timeline's further
//! pages. With htmx the new entry lands at the top of the timeline without a reload;
//! without JavaScript the same forms post and redirect.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use customers::activities::{self, NewActivity};
use customers::{RecordType, accounts as caccounts, contacts as ccontacts};
use kernel::{Id, Principal, Tx};
use serde::Deserialize;

use super::panels::timeline_page;
use super::{Names, TimelineEntry, is_htmx, timeline_entries};
use crate::pages::{Ctx, FormErrors, PageResult, enc, load, load_with_ctx, render, see_other};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for kind in [RecordType::Account, RecordType::Contact] {
        let on = format!("/{}s/{{id}}", kind.as_str());
        router = router
            .route(
                &format!("{on}/log"),
                get(move |State(state), creds, headers, Path(id), Query(q): Query<KindQuery>| {
                    log_form(state, creds, headers, kind, Id(id), q.kind)
                }),
            )
            .route(
                &format!("{on}/activities"),
                post(move |State(state), creds, headers, Path(id), Form(form)| {
                    save(state, creds, headers, kind, Id(id), form)
                }),
            )
            .route(
                &format!("{on}/timeline"),
                get(move |State(state), creds, headers, Path(id), Query(q): Query<CursorQuery>| {
                    more(state, creds, headers, kind, Id(id), q.cursor)
                }),
            );
    }
    router
}

fn base(kind: RecordType, id: Id) -> String {
    format!("/{}s/{id}", kind.as_str())
}

/// The name of the record a log form is for (and the check that the caller sees it).
fn record_name(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, id: Id) -> kernel::Result<String> {
    Ok(match kind {
        RecordType::Account => caccounts::get(tx, who, id)?.name,
        RecordType::Contact => ccontacts::get(tx, who, id)?.name,
    })
}

#[derive(Deserialize, Default, Clone)]
pub struct LogForm {
    csrf_token: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

#[derive(Template)]
#[template(path = "customers/log_form.html")]
struct LogFragment {
    ctx: Ctx,
    base: String,
    name: String,
    form: LogForm,
    kind_label: String,
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "customers/log_page.html")]
struct LogPage {
    ctx: Ctx,
    base: String,
    name: String,
    form: LogForm,
    kind_label: String,
    errors: FormErrors,
}

#[derive(Deserialize, Default)]
pub struct KindQuery {
    kind: Option<String>,
}

async fn log_form(
    state: AppState,
    creds: Credentials,
    headers: HeaderMap,
    kind: RecordType,
    id: Id,
    chosen: Option<String>,
) -> PageResult {
    let (ctx, name) = load(&state, creds, "", move |tx, who| {
        who.require("customers.activities.create")?;
        record_name(tx, who, kind, id)
    })
    .await?;
    let chosen = chosen.filter(|k| activities::KINDS.contains(&k.as_str())).unwrap_or_else(|| "call".into());
    let form = LogForm {
        subject: ctx.ta(&format!("activity-subject-{chosen}"), "name", &name),
        kind: chosen.clone(),
        ..Default::default()
    };
    let kind_label = ctx.t(&format!("activity-kind-{chosen}"));
    let base = base(kind, id);
    if is_htmx(&headers) {
        Ok(render(&LogFragment { ctx, base, name, form, kind_label, errors: FormErrors::default() }))
    } else {
        Ok(render(&LogPage { ctx, base, name, form, kind_label, errors: FormErrors::default() }))
    }
}

/// The new entry (for the top of the timeline) and an emptied log form.
#[derive(Template)]
#[template(path = "customers/logged.html")]
struct Logged {
    ctx: Ctx,
    e: TimelineEntry,
}

async fn save(
    state: AppState,
    creds: Credentials,
    headers: HeaderMap,
    kind: RecordType,
    id: Id,
    form: LogForm,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let input = NewActivity {
        kind: form.kind.clone(),
        account_id: (kind == RecordType::Account).then_some(id),
        contact_id: (kind == RecordType::Contact).then_some(id),
        subject: form.subject.clone(),
        body: Some(form.body.clone()).filter(|b| !b.trim().is_empty()),
        occurred_at: None,
    };
    let result = state.write(creds.clone(), move |tx, who| activities::create(tx, who, input)).await;
    let htmx = is_htmx(&headers);
    match result {
        Ok(a) if htmx => {
            let (ctx, e) = load_with_ctx(&state, creds, "", move |tx, _, ctx| {
                let mut names = Names::default();
                timeline_entries(tx, ctx, &mut names, std::slice::from_ref(&a))
            })
            .await?;
            let Some(e) = e.into_iter().next() else { return Ok(see_other(&base(kind, id))) };
            Ok(render(&Logged { ctx, e }))
        }
        Ok(_) => Ok(see_other(&format!("{}?saved=logged", base(kind, id)))),
        Err(e) => {
            let status = e.status;
            let (ctx, name) = load(&state, creds, "", move |tx, who| record_name(tx, who, kind, id)).await?;
            let errors = FormErrors::from_error(&ctx, e)?;
            let kind_label = ctx.t_or(&format!("activity-kind-{}", form.kind), &form.kind);
            let base = base(kind, id);
            if htmx {
                // htmx swaps only 2xx answers: the form with its errors replaces the form.
                let mut response = render(&LogFragment { ctx, base, name, form, kind_label, errors });
                let h = response.headers_mut();
                h.insert("hx-retarget", axum::http::HeaderValue::from_static("#log-form"));
                h.insert("hx-reswap", axum::http::HeaderValue::from_static("innerHTML"));
                Ok(response)
            } else {
                Ok((status, render(&LogPage { ctx, base, name, form, kind_label, errors })).into_response())
            }
        }
    }
}

/// Further timeline entries and the next "more" link (htmx swaps them for the link).
#[derive(Template)]
#[template(path = "customers/timeline_more.html")]
struct More {
    ctx: Ctx,
    entries: Vec<TimelineEntry>,
    more: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct CursorQuery {
    cursor: Option<String>,
}

async fn more(
    state: AppState,
    creds: Credentials,
    headers: HeaderMap,
    kind: RecordType,
    id: Id,
    cursor: Option<String>,
) -> PageResult {
    if !is_htmx(&headers) {
        // Without JavaScript the page itself shows the next part of the timeline.
        let to = match &cursor {
            Some(c) => format!("{}?cursor={}#panel-timeline", base(kind, id), enc(c)),
            None => base(kind, id),
        };
        return Ok(see_other(&to));
    }
    let (ctx, (entries, next)) = load_with_ctx(&state, creds, "", move |tx, who, ctx| {
        let found = timeline_page(tx, who, kind, id, cursor.as_deref())?;
        let mut names = Names::default();
        Ok((timeline_entries(tx, ctx, &mut names, &found.items)?, found.next_cursor))
    })
    .await?;
    let more = next.map(|c| format!("{}/timeline?cursor={}", base(kind, id), enc(&c)));
    Ok(render(&More { ctx, entries, more }))
}
