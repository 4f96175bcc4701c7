//! The OpenAPI 3.1 document, generated from the handlers' annotations.
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "Rapport API", description = "Rapport CRM: JSON over HTTP. Errors are application/problem+json (RFC 9457)."),
    paths(
        super::me::me, super::me::change_password,
        super::users::list, super::users::create, super::users::read, super::users::update, super::users::remove, super::users::restore, super::users::reset_password,
        super::branches::list, super::branches::create, super::branches::read, super::branches::update, super::branches::remove, super::branches::restore,
        super::roles::list, super::roles::create, super::roles::read, super::roles::update, super::roles::permissions,
        super::tokens::list, super::tokens::create, super::tokens::revoke,
        super::audit::list,
        super::events::stream,
        super::jobs::list, super::jobs::read,
    ),
    modifiers(&Security),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token: `rapport token create --email E`"))
                    .build(),
            ),
        );
    }
}

pub fn document_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

pub async fn document() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document_json())
}
