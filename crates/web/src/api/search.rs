//! `/api/v1/search`: accounts and contacts matching what a rep types, best first.
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use customers::search::{self, Hit};
use serde::{Deserialize, Serialize};

use crate::error::ApiResult;
use crate::extract::Query;
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/search", get(search))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Chinese or Korean characters (one or more: `张`, `王芳`, `김민준`), the start of a
    /// word of a name, e-mail or web address (`gome`, `@gome`), or four or more digits of a
    /// phone in any format (`138 0013`, `0013 8000`).
    pub q: String,
    /// At most 50; default 20.
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    pub items: Vec<Hit>,
}

/// Accounts and contacts within your data scope matching `q`, best first: the exact name,
/// then names starting with `q`, then other matches, most recently changed first within
/// each. Record types you may not read are left out.
#[utoipa::path(get, path = "/api/v1/search", tag = "customers", params(SearchParams),
    responses((status = 200, body = SearchResults)))]
pub async fn search(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<SearchParams>,
) -> ApiResult<axum::Json<SearchResults>> {
    let items = state.read(creds, move |tx, who| search::search(tx, who, &p.q, p.limit)).await?;
    Ok(axum::Json(SearchResults { items }))
}
