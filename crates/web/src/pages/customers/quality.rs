//! Data quality pages: the ranked duplicate candidates, the side-by-side merge page and
//! its undo, redirects from merged-away records, the contact's "Consent and privacy"
//! panel, the personal-data download and erasure behind a typed confirmation.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use customers::consent::{self, ConsentInput, DoNotContactInput};
use customers::merge::{self, NewMerge};
use customers::privacy::{self, EraseRequest};
use customers::{RecordType, accounts as caccounts, contacts as ccontacts, duplicates};
use kernel::{Error, Id, Principal, Tx};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::panels::{CustomerPanel, Panel, PanelContext};
use super::{Link, Pairs, show_value};
use crate::api::quality::moved_to;
use crate::error::ApiError;
use crate::pages::{Ctx, FormErrors, PageError, PageResult, load, render, see_other};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/duplicates", get(duplicates_page))
        .route("/merges/new", get(merge_form))
        .route("/merges", post(merge_submit))
        .route("/merges/{id}/undo", post(undo))
        .route("/contacts/{id}/consents/{channel}", post(set_consent))
        .route("/contacts/{id}/do-not-contact", post(set_do_not_contact))
        .route("/contacts/{id}/personal-data", get(personal_data))
        .route("/contacts/{id}/erase", get(erase_form).post(erase))
}

/// The page a record lives on: `/accounts` or `/contacts`.
fn area(kind: RecordType) -> &'static str {
    match kind {
        RecordType::Account => "/accounts",
        RecordType::Contact => "/contacts",
    }
}

/// A record page's read that was not found: a 308 to the record it was merged into, when
/// there is one the caller sees; the other results unchanged.
pub async fn or_moved<T>(
    state: &AppState,
    creds: Credentials,
    kind: RecordType,
    id: Id,
    loaded: Result<T, PageError>,
) -> Result<Result<T, Response>, PageError> {
    match loaded {
        Err(e) if e.error.status == StatusCode::NOT_FOUND => {
            let locale = e.locale;
            let to = state
                .read(creds, move |tx, who| merge::redirect(tx, who, kind, id))
                .await
                .map_err(|err| PageError::new(err, locale))?;
            match to {
                Some(to) => Ok(Err(moved_to(area(kind), to))),
                None => Err(e),
            }
        }
        other => other.map(Ok),
    }
}

fn record_type(text: &str) -> Result<RecordType, PageError> {
    RecordType::parse(text).map_err(|m| PageError::from(Error::field("record_type", m)))
}

// ---------------------------------------------------------------------------------------
// Duplicates

#[derive(Deserialize)]
struct DuplicateQuery {
    record_type: Option<String>,
}

struct Group {
    records: Vec<Link>,
    reasons: Vec<String>,
    score: u32,
    merge: String,
}

#[derive(Template)]
#[template(path = "customers/duplicates/list.html")]
struct DuplicatesPage {
    ctx: Ctx,
    record_type: &'static str,
    groups: Vec<Group>,
}

async fn duplicates_page(
    State(state): State<AppState>,
    creds: Credentials,
    Query(q): Query<DuplicateQuery>,
) -> PageResult {
    let kind = record_type(q.record_type.as_deref().unwrap_or("contact"))?;
    // The first scan of a type builds its keys (a write), as the API does.
    let built = state
        .read(creds.clone(), move |tx, who| {
            who.require("customers.merge")?;
            duplicates::is_built(tx, kind)
        })
        .await?;
    if !built {
        state.write(creds.clone(), move |tx, who| duplicates::ensure_built(tx, who, kind)).await?;
    }
    let (ctx, found) = load(&state, creds, "/duplicates", move |tx, who| {
        who.require("customers.merge")?;
        duplicates::scan(tx, who, kind, None)
    })
    .await?;
    let groups = found
        .into_iter()
        .map(|c| Group {
            records: c
                .ids
                .iter()
                .zip(&c.names)
                .map(|(id, name)| Link { href: format!("{}/{id}", area(kind)), text: name.clone() })
                .collect(),
            reasons: c.reasons.iter().map(|r| ctx.t_or(&format!("duplicates-reason-{r}"), r)).collect(),
            score: c.score,
            merge: format!(
                "/merges/new?record_type={}&ids={}",
                kind.as_str(),
                c.ids.iter().map(Id::to_string).collect::<Vec<_>>().join(",")
            ),
        })
        .collect();
    Ok(render(&DuplicatesPage { ctx, record_type: kind.as_str(), groups }))
}

// ---------------------------------------------------------------------------------------
// Merge

#[derive(Deserialize)]
struct MergeQuery {
    record_type: Option<String>,
    ids: Option<String>,
    keep: Option<String>,
}

/// One record's column on the merge page.
struct Column {
    id: String,
    name: String,
    href: String,
    /// "Keep this one" reloads the page with this record kept (choices follow it).
    keep_link: String,
}

/// One field: its values side by side, one radio each.
struct FieldRow {
    /// The form name: `field.<name>`.
    input: String,
    label: String,
    /// (record id, value shown, checked).
    cells: Vec<(String, String, bool)>,
}

#[derive(Template)]
#[template(path = "customers/duplicates/merge.html")]
struct MergePage {
    ctx: Ctx,
    record_type: &'static str,
    ids: String,
    keep: String,
    columns: Vec<Column>,
    rows: Vec<FieldRow>,
    errors: FormErrors,
}

/// A column's label: `field-<name>` with hyphens (`external_id` → `field-external-id`,
/// `account_id` → `field-account`), else the column name.
fn field_label(ctx: &Ctx, name: &str) -> String {
    let key = format!("field-{}", name.replace('_', "-"));
    let label = ctx.t_or(&key, "");
    if !label.is_empty() {
        return label;
    }
    key.strip_suffix("-id").map(|k| ctx.t_or(k, name)).unwrap_or_else(|| name.to_owned())
}

/// A stored value as one line of text.
fn text_of(value: Option<&Json>, ctx: &Ctx) -> String {
    match value {
        None | Some(Json::Null) => String::new(),
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| match i {
                Json::Object(o) => {
                    o.values().map(|v| show_value(v, ctx)).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
                }
                other => show_value(other, ctx),
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        Some(v) => show_value(v, ctx),
    }
}

fn parse_ids(text: &str) -> Result<Vec<Id>, PageError> {
    let ids: Option<Vec<Id>> =
        text.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().ok()).collect();
    match ids {
        Some(ids) if ids.len() >= 2 => Ok(ids),
        _ => Err(Error::field("ids", "name two or more record ids, separated by commas").into()),
    }
}

/// The records (as JSON objects, in `ids` order) and the mergeable field names.
fn merge_data(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, ids: &[Id]) -> kernel::Result<MergeData> {
    who.require("customers.merge")?;
    let mut records = Vec::new();
    let mut names = super::Names::default();
    for id in ids {
        let value = match kind {
            RecordType::Account => serde_json::to_value(caccounts::get(tx, who, *id)?),
            RecordType::Contact => serde_json::to_value(ccontacts::get(tx, who, *id)?),
        }
        .map_err(|e| Error::Internal(format!("record as JSON: {e}")))?;
        let Json::Object(mut map) = value else { return Err(Error::Internal("record is not an object".into())) };
        // Accounts by name, not by id.
        for key in ["account_id", "parent_id"] {
            let account = map.get(key).and_then(Json::as_str).and_then(|s| s.parse::<Id>().ok());
            if let Some(a) = account
                && let Some(name) = names.account(tx, who, a)?
            {
                map.insert(key.to_owned(), Json::String(name));
            }
        }
        records.push((*id, map));
    }
    let mut labels = std::collections::HashMap::new();
    let mut seen = Vec::new();
    for (_, r) in &records {
        let category = r.get("category_id").and_then(Json::as_str).and_then(|c| c.parse::<Id>().ok());
        if let Some(c) = category.filter(|c| !seen.contains(c)) {
            seen.push(c);
            for d in super::definitions(tx, who, Some(c), kind)? {
                labels.entry(d.key).or_insert(d.label);
            }
        }
    }
    Ok(MergeData { records, fields: merge::field_names(tx, kind)?, labels })
}

struct MergeData {
    records: Vec<(Id, Map<String, Json>)>,
    fields: Vec<String>,
    /// Custom field key → its label, from the records' categories.
    labels: std::collections::HashMap<String, String>,
}

fn merge_page(ctx: Ctx, kind: RecordType, data: MergeData, keep: Id, chosen: Option<&Pairs>) -> MergePage {
    let ids: Vec<String> = data.records.iter().map(|(id, _)| id.to_string()).collect();
    let ids = ids.join(",");
    let columns = data
        .records
        .iter()
        .map(|(id, r)| Column {
            id: id.to_string(),
            name: text_of(r.get("name"), &ctx),
            href: format!("{}/{id}", area(kind)),
            keep_link: format!("/merges/new?record_type={}&ids={ids}&keep={id}", kind.as_str()),
        })
        .collect();
    let mut rows = Vec::new();
    let mut row = |name: &str, label: String, values: Vec<(Id, String)>| {
        if values.iter().all(|(_, v)| v.is_empty()) {
            return;
        }
        let input = format!("field.{name}");
        let picked = chosen.and_then(|f| f.id(&input)).unwrap_or(keep);
        let cells = values.into_iter().map(|(id, v)| (id.to_string(), v, id == picked)).collect();
        rows.push(FieldRow { input, label, cells });
    };
    for name in &data.fields {
        // The phone field is the typed number and its E.164 form together.
        let key = if name == "phone" { "phone_raw" } else { name.as_str() };
        if !data.records.iter().any(|(_, r)| r.contains_key(key) || r.contains_key(name.as_str())) {
            continue;
        }
        let values = data
            .records
            .iter()
            .map(|(id, r)| {
                let v = text_of(r.get(key), &ctx);
                let v = if v.is_empty() { text_of(r.get(name.as_str()), &ctx) } else { v };
                (*id, v)
            })
            .collect();
        row(name, field_label(&ctx, name), values);
    }
    let mut keys: Vec<String> = Vec::new();
    for (_, r) in &data.records {
        if let Some(Json::Object(custom)) = r.get("custom") {
            for k in custom.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    for k in keys {
        let values =
            data.records.iter().map(|(id, r)| (*id, text_of(r.get("custom").and_then(|c| c.get(&k)), &ctx))).collect();
        let label = data.labels.get(&k).cloned().unwrap_or_else(|| k.clone());
        row(&format!("custom.{k}"), label, values);
    }
    MergePage {
        ctx,
        record_type: kind.as_str(),
        ids,
        keep: keep.to_string(),
        columns,
        rows,
        errors: FormErrors::default(),
    }
}

async fn merge_form(State(state): State<AppState>, creds: Credentials, Query(q): Query<MergeQuery>) -> PageResult {
    let kind = record_type(q.record_type.as_deref().unwrap_or(""))?;
    let ids = parse_ids(q.ids.as_deref().unwrap_or(""))?;
    let keep = q.keep.as_deref().and_then(|k| k.parse().ok()).filter(|k| ids.contains(k)).unwrap_or(ids[0]);
    let (ctx, data) = load(&state, creds, "/duplicates", move |tx, who| merge_data(tx, who, kind, &ids)).await?;
    Ok(render(&merge_page(ctx, kind, data, keep, None)))
}

async fn merge_submit(
    State(state): State<AppState>,
    creds: Credentials,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let form = Pairs(pairs);
    let creds = creds.with_csrf(form.opt("csrf_token"));
    let kind = record_type(form.get("record_type"))?;
    let ids = parse_ids(form.get("ids"))?;
    let keep = form.id("keep_id").filter(|k| ids.contains(k));
    let confirmed = form.get("confirm") == "yes";
    let refusal = match keep {
        None => Some(ApiError::from(Error::field("keep_id", "choose the record to keep"))),
        Some(_) if !confirmed => {
            Some(ApiError::from(Error::field("confirm", "tick the box to confirm the merge; it can be undone")))
        }
        Some(_) => None,
    };
    let keep = keep.unwrap_or(ids[0]);
    if refusal.is_none() {
        let fields = form
            .0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("field.")?.to_owned(), v.trim().parse::<Id>().ok()?)))
            .filter(|(_, winner)| *winner != keep)
            .collect();
        let merge_ids = ids.iter().copied().filter(|i| *i != keep).collect();
        let input = NewMerge { record_type: kind.as_str().to_owned(), keep_id: keep, merge_ids, fields: Some(fields) };
        match state.write(creds.clone(), move |tx, who| merge::merge(tx, who, input)).await {
            Ok(done) => return Ok(see_other(&format!("{}/{keep}?saved=merged&merge={}", area(kind), done.id))),
            Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY || e.status == StatusCode::CONFLICT => {
                return show_refused(&state, creds, kind, ids, keep, form, e).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    match refusal {
        Some(e) => show_refused(&state, creds, kind, ids, keep, form, e).await,
        None => Err(Error::Internal("merge neither done nor refused".into()).into()),
    }
}

async fn show_refused(
    state: &AppState,
    creds: Credentials,
    kind: RecordType,
    ids: Vec<Id>,
    keep: Id,
    form: Pairs,
    e: ApiError,
) -> PageResult {
    let (ctx, data) = load(state, creds, "/duplicates", move |tx, who| merge_data(tx, who, kind, &ids)).await?;
    let status = e.status;
    let errors = FormErrors::from_error(&ctx, e)?;
    let mut page = merge_page(ctx, kind, data, keep, Some(&form));
    page.errors = errors;
    Ok((status, render(&page)).into_response())
}

async fn undo(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<crate::pages::CsrfForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    let done = state.write(creds, move |tx, who| merge::undo(tx, who, Id(id))).await?;
    let kind = record_type(&done.record_type)?;
    Ok(see_other(&format!("{}/{}?saved=unmerged", area(kind), done.keep_id)))
}

// ---------------------------------------------------------------------------------------
// Consent and privacy

const CHANNELS: [&str; 4] = ["email", "sms", "phone", "post"];

/// The "Consent and privacy" panel of a contact page.
pub struct ConsentPanel;

struct ChannelRow {
    channel: &'static str,
    label: String,
    /// "granted", "withdrawn" or "none".
    state: &'static str,
    state_label: String,
    source: String,
    at: String,
}

#[derive(Template)]
#[template(path = "customers/panels/consent.html")]
struct ConsentHtml<'a> {
    ctx: &'a Ctx,
    id: Id,
    rows: Vec<ChannelRow>,
    do_not_contact: bool,
    reason: String,
    can_update: bool,
    can_privacy: bool,
}

impl CustomerPanel for ConsentPanel {
    fn key(&self) -> &'static str {
        "consent"
    }
    fn order(&self) -> i32 {
        80
    }
    fn applies_to(&self, record_type: RecordType) -> bool {
        record_type == RecordType::Contact
    }
    fn render(&self, tx: &mut Tx<'_>, who: &Principal, cx: &PanelContext<'_>) -> kernel::Result<Option<Panel>> {
        let found = consent::list(tx, who, cx.id)?;
        let rows = CHANNELS
            .iter()
            .map(|ch| {
                let current = found.current.iter().find(|c| c.channel == *ch);
                let state = match current {
                    Some(c) if c.granted => "granted",
                    Some(_) => "withdrawn",
                    None => "none",
                };
                ChannelRow {
                    channel: ch,
                    label: cx.ctx.t(&format!("consent-channel-{ch}")),
                    state,
                    state_label: cx.ctx.t(&format!("consent-state-{state}")),
                    source: current.map(|c| c.source.clone()).unwrap_or_default(),
                    at: current.map(|c| cx.ctx.datetime(&c.at)).unwrap_or_default(),
                }
            })
            .collect();
        let page = ConsentHtml {
            ctx: cx.ctx,
            id: cx.id,
            rows,
            do_not_contact: found.do_not_contact,
            reason: found.do_not_contact_reason.unwrap_or_default(),
            can_update: who.can("customers.contacts.update"),
            can_privacy: who.can("customers.privacy"),
        };
        let html = page.render().map_err(|e| Error::Internal(format!("template: {e}")))?;
        Ok(Some(Panel { title: cx.ctx.t("panel-consent"), html }))
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    csrf_token: Option<String>,
    granted: Option<String>,
    source: Option<String>,
}

async fn set_consent(
    State(state): State<AppState>,
    creds: Credentials,
    Path((id, channel)): Path<(i64, String)>,
    Form(form): Form<ConsentForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    let input =
        ConsentInput { granted: form.granted.as_deref() == Some("true"), source: form.source.unwrap_or_default() };
    state.write(creds, move |tx, who| consent::set(tx, who, Id(id), &channel, input)).await?;
    Ok(see_other(&format!("/contacts/{id}?saved=consent#panel-consent")))
}

#[derive(Deserialize)]
struct DoNotContactForm {
    csrf_token: Option<String>,
    value: Option<String>,
    reason: Option<String>,
}

async fn set_do_not_contact(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<DoNotContactForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    let input = DoNotContactInput { value: form.value.as_deref() == Some("true"), reason: form.reason };
    state.write(creds, move |tx, who| consent::set_do_not_contact(tx, who, Id(id), input)).await?;
    Ok(see_other(&format!("/contacts/{id}?saved=consent#panel-consent")))
}

/// The person's data as a JSON download (the export is audited, so it is a write).
async fn personal_data(State(state): State<AppState>, creds: Credentials, Path(id): Path<i64>) -> PageResult {
    let data = state.write(creds, move |tx, who| privacy::export(tx, who, Id(id))).await?;
    let body = serde_json::to_vec_pretty(&data).map_err(|e| PageError::from(Error::Internal(format!("json: {e}"))))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"personal-data-{id}.json\"")),
        ],
        body,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "customers/duplicates/erase.html")]
struct ErasePage {
    ctx: Ctx,
    id: String,
    name: String,
    errors: FormErrors,
}

impl ErasePage {
    fn has_error(&self) -> bool {
        self.errors.get("confirm").is_some()
    }
}

async fn erase_form(State(state): State<AppState>, creds: Credentials, Path(id): Path<i64>) -> PageResult {
    let (ctx, c) = load(&state, creds, "/contacts", move |tx, who| {
        who.require("customers.privacy")?;
        ccontacts::get(tx, who, Id(id))
    })
    .await?;
    Ok(render(&ErasePage { ctx, id: id.to_string(), name: c.name, errors: FormErrors::default() }))
}

#[derive(Deserialize)]
struct EraseForm {
    csrf_token: Option<String>,
    confirm: Option<String>,
}

async fn erase(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<EraseForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    let request = EraseRequest { confirm: form.confirm.unwrap_or_default().trim().to_owned() };
    match state.write(creds.clone(), move |tx, who| privacy::erase(tx, who, Id(id), request)).await {
        Ok(_) => Ok(see_other(&format!("/contacts/{id}?saved=erased"))),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let (ctx, c) = load(&state, creds, "/contacts", move |tx, who| ccontacts::get(tx, who, Id(id))).await?;
            let errors = FormErrors::from_error(&ctx, e)?;
            let page = ErasePage { ctx, id: id.to_string(), name: c.name, errors };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
