//! `/api/v1/tags`: the tags in use on accounts or contacts, with counts (autocomplete).
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use customers::tags::{self, TagCount};
use serde::{Deserialize, Serialize};

use crate::error::ApiResult;
use crate::extract::Query;
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/tags", get(list))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TagParams {
    /// `account` or `contact`.
    pub record_type: String,
    /// Only tags starting with this text.
    pub q: Option<String>,
    /// At most 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TagList {
    pub items: Vec<TagCount>,
}

/// Tags of live records in your data scope, the most used first.
#[utoipa::path(get, path = "/api/v1/tags", tag = "customers", params(TagParams),
    responses((status = 200, body = TagList)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<TagParams>,
) -> ApiResult<axum::Json<TagList>> {
    let items = state.read(creds, move |tx, who| tags::list(tx, who, &p.record_type, p.q.as_deref(), p.limit)).await?;
    Ok(axum::Json(TagList { items }))
}
