//! Browser assets embedded in the binary, so Rapport works with no internet and no
//! files beside it. Served with a long cache lifetime; names carry the version.
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// (file name under /assets/, content type, bytes)
pub const FILES: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    // Vendored from npm; see assets/vendor/CHECKSUMS.md.
    (
        "vendor/htmx-2.0.8.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/htmx-2.0.8.min.js"),
    ),
    ("vendor/pico-2.1.1.min.css", "text/css; charset=utf-8", include_bytes!("../assets/vendor/pico-2.1.1.min.css")),
    (
        "vendor/echarts-5.6.0.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/echarts-5.6.0.min.js"),
    ),
];

pub fn router() -> Router<AppState> {
    Router::new().route("/assets/{*name}", get(serve))
}

async fn serve(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=86400")], *bytes)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
