//! The header search: a dropdown of matching accounts and contacts while typing (htmx),
//! and `/search?q=` as a full page.
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use customers::search::{self as csearch, Hit};
use serde::Deserialize;

use crate::pages::{Ctx, PageResult, load, render};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/search", get(page)).route("/search/suggest", get(suggest))
}

/// One search result ready to show.
pub struct HitRow {
    pub href: String,
    pub name: String,
    pub kind: String,
    pub detail: String,
}

fn rows(ctx: &Ctx, hits: &[Hit]) -> Vec<HitRow> {
    hits.iter()
        .map(|h| HitRow {
            href: format!("/{}s/{}", h.record_type, h.id),
            name: h.name.clone(),
            kind: ctx.t(&format!("record-type-{}", h.record_type)),
            detail: [h.phone.as_deref(), h.email.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" · "),
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    q: Option<String>,
}

/// Hits for `q` (none for a blank query).
async fn find(
    state: &AppState,
    creds: Credentials,
    q: &str,
    limit: u64,
) -> Result<(Ctx, Vec<Hit>), crate::pages::PageError> {
    let text = q.trim().to_owned();
    load(state, creds, "", move |tx, who| {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        csearch::search(tx, who, &text, Some(limit))
    })
    .await
}

#[derive(Template)]
#[template(path = "customers/search.html")]
struct SearchPage {
    ctx: Ctx,
    q: String,
    hits: Vec<HitRow>,
}

async fn page(State(state): State<AppState>, creds: Credentials, Query(query): Query<SearchQuery>) -> PageResult {
    let q = query.q.unwrap_or_default();
    let (ctx, hits) = find(&state, creds, &q, 50).await?;
    Ok(render(&SearchPage { hits: rows(&ctx, &hits), q, ctx }))
}

#[derive(Template)]
#[template(path = "customers/suggest.html")]
struct Suggest {
    ctx: Ctx,
    q: String,
    q_enc: String,
    hits: Vec<HitRow>,
}

async fn suggest(State(state): State<AppState>, creds: Credentials, Query(query): Query<SearchQuery>) -> PageResult {
    let q = query.q.unwrap_or_default();
    let (ctx, hits) = find(&state, creds, &q, 8).await?;
    Ok(render(&Suggest { hits: rows(&ctx, &hits), q_enc: crate::pages::enc(&q), q, ctx }))
}
