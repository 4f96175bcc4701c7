//! Deleting and restoring accounts and contacts, alike for both: the confirmation, the
//! delete, the restore and the list of deleted records.
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use customers::{RecordType, accounts as caccounts, contacts as ccontacts};
use kernel::paging::PageRequest;
use kernel::{Id, Principal, Tx};
use serde::Deserialize;

use crate::pages::{ConfirmPage, CsrfForm, DeletedPage, DeletedRow, PageError, PageResult, act, enc, load, render};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for kind in [RecordType::Account, RecordType::Contact] {
        let area = area(kind);
        router = router
            .route(
                &format!("/{area}/deleted"),
                get(move |State(state), creds, Query(q): Query<DeletedQuery>| deleted(state, creds, kind, q)),
            )
            .route(
                &format!("/{area}/{{id}}/delete"),
                get(move |State(state), creds, Path(id)| confirm_delete(state, creds, kind, id))
                    .post(move |State(state), creds, Path(id), Form(form)| delete(state, creds, kind, id, form)),
            )
            .route(
                &format!("/{area}/{{id}}/restore"),
                post(move |State(state), creds, Path(id), Form(form)| restore(state, creds, kind, id, form)),
            );
    }
    router
}

fn area(kind: RecordType) -> &'static str {
    match kind {
        RecordType::Account => "accounts",
        RecordType::Contact => "contacts",
    }
}

async fn confirm_delete(state: AppState, creds: Credentials, kind: RecordType, id: i64) -> PageResult {
    let area = area(kind);
    let (ctx, name) = load(&state, creds, &format!("/{area}"), move |tx, who| {
        who.require(&format!("customers.{area}.delete"))?;
        Ok(match kind {
            RecordType::Account => caccounts::get(tx, who, Id(id))?.name,
            RecordType::Contact => ccontacts::get(tx, who, Id(id))?.name,
        })
    })
    .await?;
    Ok(render(&ConfirmPage {
        title: ctx.t(&format!("{area}-delete-title")),
        question: ctx.ta(&format!("{area}-delete-confirm"), "name", &name),
        action: format!("/{area}/{id}/delete"),
        button: ctx.t("delete"),
        cancel: format!("/{area}/{id}"),
        error: None,
        ctx,
    }))
}

async fn delete(state: AppState, creds: Credentials, kind: RecordType, id: i64, form: CsrfForm) -> PageResult {
    act(&state, creds, form, &format!("/{}?deleted={id}", area(kind)), move |tx, who| match kind {
        RecordType::Account => caccounts::delete(tx, who, Id(id)),
        RecordType::Contact => ccontacts::delete(tx, who, Id(id)),
    })
    .await
}

async fn restore(state: AppState, creds: Credentials, kind: RecordType, id: i64, form: CsrfForm) -> PageResult {
    act(&state, creds, form, &format!("/{}/{id}?saved=restored", area(kind)), move |tx, who| match kind {
        RecordType::Account => caccounts::restore(tx, who, Id(id)).map(|_| ()),
        RecordType::Contact => ccontacts::restore(tx, who, Id(id)).map(|_| ()),
    })
    .await
}

#[derive(Deserialize, Default)]
pub struct DeletedQuery {
    cursor: Option<String>,
}

/// A deleted record as the list shows it: id, name, phone, e-mail, when it was deleted.
type Deleted = (Id, String, String, String, DateTime<Utc>);

fn deleted_page(
    tx: &mut Tx<'_>,
    who: &Principal,
    kind: RecordType,
    page: &PageRequest,
) -> kernel::Result<(Vec<Deleted>, Option<String>)> {
    let row = |id, name: &str, raw: &Option<String>, phone: &Option<String>, email: &Option<String>, at| {
        (id, name.to_owned(), raw.clone().or(phone.clone()).unwrap_or_default(), email.clone().unwrap_or_default(), at)
    };
    Ok(match kind {
        RecordType::Account => {
            let found = caccounts::list_deleted(tx, who, page)?;
            let rows = found.items.iter().map(|r| row(r.id, &r.name, &r.phone_raw, &r.phone, &r.email, r.updated_at));
            (rows.collect(), found.next_cursor)
        }
        RecordType::Contact => {
            let found = ccontacts::list_deleted(tx, who, page)?;
            let rows = found.items.iter().map(|r| row(r.id, &r.name, &r.phone_raw, &r.phone, &r.email, r.updated_at));
            (rows.collect(), found.next_cursor)
        }
    })
}

/// The deleted records of one kind the caller may restore, newest first.
async fn deleted(state: AppState, creds: Credentials, kind: RecordType, q: DeletedQuery) -> PageResult {
    let area = area(kind);
    let page = PageRequest::parse(None, q.cursor.as_deref().filter(|c| !c.is_empty())).map_err(PageError::from)?;
    let (ctx, (items, next)) =
        load(&state, creds, &format!("/{area}"), move |tx, who| deleted_page(tx, who, kind, &page)).await?;
    let next = next.as_ref().map(|c| format!("/{area}/deleted?cursor={}", enc(c)));
    let rows = items
        .into_iter()
        .map(|(id, name, phone, email, at)| DeletedRow {
            id: id.to_string(),
            cells: vec![name, phone, email, ctx.datetime(&at)],
        })
        .collect();
    let columns = ["field-name", "field-phone", "field-email", "field-deleted-at"].map(|k| ctx.t(k)).to_vec();
    let can_restore = ctx.can(&format!("customers.{area}.delete"));
    Ok(render(&DeletedPage { area, columns, rows, can_restore, next, notice: None, ctx }))
}
