//! The web layer: `/api/v1` (JSON + OpenAPI), the HTML pages (askama + htmx), server-sent
//! events, embedded assets, and the middleware around them. It holds no business rule:
//! handlers parse, call one area function through [`state::AppState`], and render.
pub mod api;
pub mod assets;
pub mod error;
pub mod extract;
pub mod i18n;
pub mod idempotency;
pub mod metrics;
pub mod pages;
pub mod state;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

pub use state::{AppState, Config};

/// Largest request body accepted (imports upload through their own endpoint).
pub const BODY_LIMIT: usize = 1024 * 1024;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The whole application; `main` and the tests build it the same way.
pub fn app(state: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api::router())
        .merge(pages::router().layer(middleware::from_fn_with_state(state.clone(), pages::error_layout)))
        .merge(assets::router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(security_headers))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeId))
        .with_state(state)
}

#[derive(Clone, Copy)]
struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&kernel::Id::new().to_string()).ok().map(RequestId::new)
    }
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // A handler may set its own policy (stored files: see `api::attachments`).
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// Logs every request once with its request id, and counts it for `/metrics`.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = metrics::method_name(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let request_id = request.headers().get("x-request-id").cloned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state.metrics.observe(method, route, status, elapsed);
    let request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or_default();
    if status >= 500 {
        tracing::error!(
            http.method = method,
            http.route = route,
            http.status = status,
            request.id = request_id,
            elapsed_ms = elapsed.as_millis() as u64,
            "request failed"
        );
    } else {
        tracing::debug!(
            http.method = method,
            http.route = route,
            http.status = status,
            request.id = request_id,
            elapsed_ms = elapsed.as_millis() as u64,
            "request"
        );
    }
    response
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the database answers and every migration this binary knows is applied.
async fn readyz(State(state): State<AppState>) -> Response {
    let db = state.db.clone();
    let status = tokio::task::spawn_blocking(move || db.migration_status()).await;
    match status {
        Ok(Ok(s)) if s.is_current() => axum::Json(
            serde_json::json!({"status": "ready", "schema_version": s.applied, "events": state.db.events_connected()}),
        )
        .into_response(),
        Ok(Ok(s)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                serde_json::json!({"status": "migrations pending", "schema_version": s.applied, "latest": s.latest}),
            ),
        )
            .into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "database unreachable"})))
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(state.db.backend().name()))
}
