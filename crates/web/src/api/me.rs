use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use kernel::identity::{passwords, users};
use kernel::{DataScope, Error, Id};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/me", get(me)).route("/api/v1/me/password", post(change_password))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub id: Id,
    pub email: String,
    pub name: String,
    pub role: String,
    pub branch_id: Id,
    pub locale: String,
    pub time_zone: String,
    pub data_scope: DataScope,
    /// Permission names or patterns the user's role grants.
    pub permissions: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "users",
    responses((status = 200, body = Me), (status = 401, body = crate::error::Problem)))]
pub async fn me(State(state): State<AppState>, creds: Credentials) -> ApiResult<axum::Json<Me>> {
    let who = state.read(creds, |_, who| Ok(who.clone())).await?;
    Ok(axum::Json(Me {
        id: who.user_id,
        email: who.email,
        name: who.name,
        role: who.role,
        branch_id: who.branch_id,
        locale: who.locale,
        time_zone: who.time_zone,
        data_scope: who.scope,
        permissions: who.permissions.into_iter().collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the caller's own password; every other session of theirs ends.
pub async fn change_own_password(state: &AppState, creds: Credentials, input: PasswordChange) -> ApiResult<()> {
    passwords::check_policy(&input.new_password).map_err(|m| Error::field("new_password", m))?;
    let current = state
        .read(creds.clone(), |tx, who| Ok((who.user_id, users::password_hash(tx, who.user_id)?.unwrap_or_default())))
        .await?;
    let (user_id, stored) = current;
    let PasswordChange { current_password, new_password } = input;
    let new_hash = tokio::task::spawn_blocking(move || {
        if !passwords::verify(&current_password, &stored) {
            return Err(Error::field("current_password", "is not your current password"));
        }
        passwords::hash(&new_password)
    })
    .await
    .map_err(|e| ApiError::from(Error::Internal(e.to_string())))??;
    let keep = creds.session_secret().map(str::to_owned);
    state.write(creds, move |tx, who| users::set_password(tx, who, user_id, new_hash, keep.as_deref())).await
}

#[utoipa::path(post, path = "/api/v1/me/password", tag = "users", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    change_own_password(&state, creds, input).await?;
    Ok(StatusCode::NO_CONTENT)
}
