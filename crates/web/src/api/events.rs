//! `GET /api/v1/events`: server-sent events for the logged-in user (job progress,
//! reminders, notifications). On PostgreSQL events from every node arrive here.
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use futures_util::stream::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::ApiResult;
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/events", get(stream))
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    responses((status = 200, content_type = "text/event-stream", description = "One `event:` per kind, `data:` is the JSON payload"), (status = 401, body = crate::error::Problem)))]
pub async fn stream(
    State(state): State<AppState>,
    creds: Credentials,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let who = state.read(creds, |_, who| Ok(who.user_id)).await?;
    let events = BroadcastStream::new(state.db.events().subscribe()).filter_map(move |received| {
        let event = received.ok()?;
        if event.user_id.is_some_and(|u| u != who.get()) {
            return None;
        }
        let data = serde_json::to_string(&event.payload).ok()?;
        Some(Ok(SseEvent::default().event(event.kind.clone()).data(data)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(20))))
}
