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
        super::categories::list_categories, super::categories::create_category, super::categories::list_fields, super::categories::create_field,
        super::accounts::list, super::accounts::create, super::accounts::read, super::accounts::update, super::accounts::remove, super::accounts::restore,
        super::contacts::list, super::contacts::create, super::contacts::read, super::contacts::update, super::contacts::remove, super::contacts::restore,
        super::activities::list, super::activities::create, super::activities::read, super::activities::update, super::activities::remove, super::activities::timeline, super::activities::contact_timeline,
        super::tasks::list, super::tasks::create, super::tasks::update, super::tasks::remove, super::tasks::my_day,
        super::search::search,
        super::categories::read_category, super::categories::update_category, super::categories::remove_category,
        super::categories::read_field, super::categories::update_field, super::categories::remove_field,
        super::activities::restore, super::tasks::read,
        super::tags::list,
        super::saved_views::list, super::saved_views::create, super::saved_views::read, super::saved_views::update, super::saved_views::remove,
        super::quality::duplicates, super::quality::create_merge, super::quality::undo_merge, super::quality::create_handover,
        super::quality::list_consents, super::quality::set_consent, super::quality::set_do_not_contact,
        super::quality::personal_data, super::quality::erase,
        super::imports::upload, super::imports::read, super::imports::set_mapping, super::imports::dry_run, super::imports::start, super::imports::errors_csv,
        super::imports::list_mappings, super::imports::create_mapping, super::imports::export_contacts, super::imports::export_accounts,
        super::approvals::list_processes, super::approvals::create_process, super::approvals::read_process, super::approvals::update_process,
        super::approvals::list, super::approvals::read, super::approvals::approve, super::approvals::reject, super::approvals::pass,
        super::approvals::list_delegations, super::approvals::create_delegation, super::approvals::revoke_delegation,
        super::expense_claims::list, super::expense_claims::create, super::expense_claims::read, super::expense_claims::update, super::expense_claims::submit, super::expense_claims::history,
        super::notifications::list, super::notifications::unread, super::notifications::read_all, super::notifications::read_one,
        super::notifications::preferences, super::notifications::set_preferences,
        super::attachments::list_claim, super::attachments::upload_claim, super::attachments::download, super::attachments::remove,
        super::approvals::pass_candidates,
        super::calendars::read_hours, super::calendars::set_hours, super::calendars::clear_hours,
        super::calendars::list_days, super::calendars::create_day, super::calendars::delete_day, super::calendars::load_preset,
    ),
    modifiers(&Security, &Problems),
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

/// Documents the errors every operation can answer, in one place rather than on each
/// handler: all of them are `application/problem+json` with the `Problem` schema.
struct Problems;

impl utoipa::Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, HttpMethod, RefOr, ResponseBuilder, Schema};
        let problem: RefOr<Schema> = RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem"));
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .schemas
            .entry("Problem".into())
            .or_insert_with(<crate::error::Problem as utoipa::PartialSchema>::schema);
        components
            .schemas
            .entry("FieldError".into())
            .or_insert_with(<kernel::FieldError as utoipa::PartialSchema>::schema);
        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_id = path.contains('{');
            for (method, operation) in [
                (HttpMethod::Get, item.get.as_mut()),
                (HttpMethod::Post, item.post.as_mut()),
                (HttpMethod::Put, item.put.as_mut()),
                (HttpMethod::Patch, item.patch.as_mut()),
                (HttpMethod::Delete, item.delete.as_mut()),
            ] {
                let Some(operation) = operation else { continue };
                let has_query = operation.parameters.as_ref().is_some_and(|ps| {
                    ps.iter().any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
                });
                let mut statuses = vec![("401", "Not authenticated"), ("500", "Internal error")];
                if has_id {
                    statuses.push(("404", "No such record, or not within your data scope"));
                }
                if has_query || operation.request_body.is_some() {
                    statuses.push(("422", "A field is invalid; `errors` names each"));
                }
                if operation.request_body.is_some() {
                    statuses.extend([
                        ("400", "Malformed request"),
                        ("413", "Body too large"),
                        ("415", "Body is not application/json"),
                    ]);
                }
                if method == HttpMethod::Post {
                    statuses.push(("409", "Conflicts with existing data, or an Idempotency-Key is in use"));
                    statuses.push(("400", "Malformed request"));
                }
                if method == HttpMethod::Patch {
                    statuses.push(("400", "Malformed request or If-Match"));
                    statuses.push(("412", "The record changed since you read it"));
                }
                if method != HttpMethod::Get || path != "/api/v1/me" {
                    statuses.push(("403", "Missing permission (or CSRF token, with a session cookie)"));
                }
                for (status, description) in statuses {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(description).build()));
                }
                for (status, response) in operation.responses.responses.iter_mut() {
                    if (status.starts_with('4') || status.starts_with('5'))
                        && let RefOr::T(response) = response
                    {
                        response.content.clear();
                        response.content.insert("application/problem+json".into(), Content::new(Some(problem.clone())));
                    }
                }
            }
        }
    }
}
