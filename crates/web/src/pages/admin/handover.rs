//! Handover: a manager picks the departing user and the new owner, previews the counts
//! (a dry run), then hands everything over.
use askama::Template;
use axum::extract::State;
use axum::routing::get;
use axum::{Form, Router};
use customers::handover::{self, NewHandover};
use kernel::identity::users::{self, UserFilter};
use kernel::paging::PageRequest;
use serde::Deserialize;

use super::Opt;
use crate::error::ApiError;
use crate::pages::{Ctx, FormErrors, PageResult, WithErrors, load, opt_id, refused, render};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/handover", get(show).post(submit))
}

/// One counted kind of record.
pub struct CountRow {
    pub label: String,
    pub count: u64,
}

#[derive(Template)]
#[template(path = "handover/form.html")]
struct HandoverPage {
    ctx: Ctx,
    from: Vec<Opt>,
    to: Vec<Opt>,
    /// Counts of the preview or of the handover just done.
    counts: Vec<CountRow>,
    /// Whether `counts` are a preview (nothing moved yet).
    preview: bool,
    done: bool,
    errors: FormErrors,
}

impl WithErrors for HandoverPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

#[derive(Deserialize)]
pub struct HandoverForm {
    csrf_token: Option<String>,
    from_user_id: Option<String>,
    to_user_id: Option<String>,
    /// `preview` or `run`.
    action: Option<String>,
}

async fn page(
    state: &AppState,
    creds: Credentials,
    from: Option<kernel::Id>,
    to: Option<kernel::Id>,
) -> Result<HandoverPage, crate::pages::PageError> {
    let (ctx, people) = load(state, creds, "/admin/handover", |tx, who| {
        who.require("customers.handover")?;
        let page = PageRequest::parse(Some(500), None)?;
        users::list(tx, who, &UserFilter::default(), &page)
    })
    .await?;
    let options = |selected: Option<kernel::Id>, active_only: bool| -> Vec<Opt> {
        people
            .items
            .iter()
            .filter(|u| !active_only || u.active)
            .map(|u| Opt::new(u.id.to_string(), format!("{} <{}>", u.name, u.email), Some(u.id) == selected))
            .collect()
    };
    Ok(HandoverPage {
        from: options(from, false),
        to: options(to, true),
        ctx,
        counts: Vec::new(),
        preview: false,
        done: false,
        errors: FormErrors::default(),
    })
}

async fn show(State(state): State<AppState>, creds: Credentials) -> PageResult {
    Ok(render(&page(&state, creds, None, None).await?))
}

async fn submit(State(state): State<AppState>, creds: Credentials, Form(form): Form<HandoverForm>) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let (from, to) = (opt_id(&form.from_user_id), opt_id(&form.to_user_id));
    let dry_run = form.action.as_deref() != Some("run");
    let mut shown = page(&state, creds.clone(), from, to).await?;
    let (Some(from_user_id), Some(to_user_id)) = (from, to) else {
        let e = ApiError::from(kernel::Error::field(
            if from.is_none() { "from_user_id" } else { "to_user_id" },
            shown.ctx.t("handover-pick-both"),
        ));
        return refused(shown, e);
    };
    let input = NewHandover { from_user_id, to_user_id, dry_run };
    match state.write(creds, move |tx, who| handover::handover(tx, who, input)).await {
        Ok(result) => {
            shown.counts = result
                .counts
                .iter()
                .map(|(kind, count)| CountRow {
                    label: shown.ctx.t_or(&format!("handover-kind-{kind}"), kind),
                    count: *count,
                })
                .collect();
            shown.preview = dry_run;
            shown.done = !dry_run;
            Ok(render(&shown))
        }
        Err(e) => refused(shown, e),
    }
}
