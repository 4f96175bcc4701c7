//! The start page.
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::{Ctx, PageResult, fmt, load, render};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: Ctx,
    greeting: String,
    today: String,
}

async fn home(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let (ctx, ()) = load(&state, creds, "/", |_, _| Ok(())).await?;
    let name = ctx.user.as_ref().map(|u| u.name.clone()).unwrap_or_default();
    let greeting = ctx.ta("home-greeting", "name", &name);
    let today = fmt::long_date(&chrono::Utc::now(), ctx.time_zone(), ctx.locale);
    Ok(render(&HomePage { ctx, greeting, today }))
}
