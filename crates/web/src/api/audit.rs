use axum::Router;
use axum::extract::State;
use axum::routing::get;
use kernel::Id;
use kernel::audit::{self, AuditEntry, AuditFilter};
use kernel::paging::Page;
use serde::Deserialize;

use super::ListParams;
use crate::error::ApiResult;
use crate::extract::Query;
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// e.g. `branch`, `user`, `role`, `api_token`
    pub record_type: Option<String>,
    pub record_id: Option<Id>,
    pub actor_id: Option<Id>,
    /// e.g. `create`, `update`, `delete`, `login`, `login_failed`, `token_use`
    pub action: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Page<AuditEntry>), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<AuditParams>,
) -> ApiResult<axum::Json<Page<AuditEntry>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    let filter =
        AuditFilter { record_type: p.record_type, record_id: p.record_id, actor_id: p.actor_id, action: p.action };
    Ok(axum::Json(state.read(creds, move |tx, who| audit::list(tx, who, &filter, &page)).await?))
}
