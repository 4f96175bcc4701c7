//! What the account and contact forms do alike once the record is written: go to the
//! record, stop to show possible duplicates, or show the form again with the refusal
//! (a stale version with its own message and 412).
use std::future::Future;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use customers::RecordType;
use kernel::{Id, Principal, Tx};

use super::accounts::{Created, FormPage, duplicate_rows, refuse_form};
use crate::error::ApiError;
use crate::pages::{FormErrors, PageError, PageResult, render, see_other};

/// On a create the user has not confirmed yet (and may confirm): the records the new one
/// may duplicate, as the outcome to show instead of saving; `None` to go on and save.
pub fn unconfirmed_duplicates(
    tx: &mut Tx<'_>,
    who: &Principal,
    kind: RecordType,
    confirmed: bool,
    email: Option<&str>,
    phone: Option<&str>,
    branch_id: Option<Id>,
) -> kernel::Result<Option<Created>> {
    let permission = match kind {
        RecordType::Account => "customers.accounts.create",
        RecordType::Contact => "customers.contacts.create",
    };
    if confirmed || !who.can(permission) {
        return Ok(None);
    }
    let found = customers::duplicate_candidates(tx, who, kind, email, phone, branch_id)?;
    Ok((!found.is_empty()).then_some(Created::Duplicates(found)))
}

/// Answers a form's save in `area` (`accounts`, `contacts`): `editing` is false for a
/// create. `form_page(stale)` builds the form again with what the user sent.
pub async fn answer<F, Fut>(result: Result<Created, ApiError>, area: &str, editing: bool, form_page: F) -> PageResult
where
    F: FnOnce(bool) -> Fut,
    Fut: Future<Output = Result<FormPage, PageError>>,
{
    match result {
        Ok(Created::Saved(id)) => {
            let saved = if editing { "1" } else { "created" };
            Ok(see_other(&format!("/{area}/{id}?saved={saved}")))
        }
        Ok(Created::Duplicates(found)) => {
            let mut page = form_page(false).await?;
            page.duplicates = duplicate_rows(&page.ctx, area, &found);
            Ok((StatusCode::OK, render(&page)).into_response())
        }
        Err(e) => {
            let stale = editing && e.status == StatusCode::PRECONDITION_FAILED;
            let mut page = form_page(stale).await?;
            if stale {
                page.errors = FormErrors::message(page.ctx.t("customers-stale"));
                return Ok((StatusCode::PRECONDITION_FAILED, render(&page)).into_response());
            }
            refuse_form(page, e)
        }
    }
}
