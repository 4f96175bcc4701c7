//! The import pages: upload a file → map its columns (saved mappings, detected encoding
//! shown) → dry-run preview → start → live progress (htmx polls a fragment every second)
//! → summary with the error report. Every step is a plain form; htmx only polls.
use askama::Template;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::routing::{get, post};
use axum::{Form, Router};
use customers::imports::{self, DryRun, Import, Mapping, NewMapping, SavedMapping};
use kernel::Id;
use serde::Deserialize;

use super::{Ctx, FormErrors, PageError, PageResult, load, render, see_other};
use crate::error::ApiError;
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/imports", get(upload_form).post(upload).layer(DefaultBodyLimit::max(imports::MAX_BYTES + (1 << 20))))
        .route("/imports/{id}", get(show).post(save_mapping))
        .route("/imports/{id}/start", post(start))
        .route("/imports/{id}/progress", get(progress))
}

#[derive(Template)]
#[template(path = "imports/upload.html")]
struct UploadPage {
    ctx: Ctx,
    errors: FormErrors,
    record_type: String,
}

async fn upload_form(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let (ctx, ()) = load(&state, creds, "/imports", |_, who| who.require("customers.import")).await?;
    Ok(render(&UploadPage { ctx, errors: FormErrors::default(), record_type: "contact".into() }))
}

/// The multipart upload: `csrf_token`, `record_type` and `file`.
async fn upload(State(state): State<AppState>, creds: Credentials, mut form: Multipart) -> PageResult {
    let mut csrf = None;
    let mut record_type = "contact".to_owned();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(PageError::from(ApiError::bad_request(e.body_text()))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|e| PageError::from(ApiError::bad_request(e.body_text())))?;
        match name.as_str() {
            "csrf_token" => csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "record_type" => record_type = String::from_utf8_lossy(&bytes).into_owned(),
            "file" => file = Some((filename.unwrap_or_default(), bytes.to_vec())),
            _ => {}
        }
    }
    let (filename, bytes) = file.unwrap_or_default();
    let kind = record_type.clone();
    let result = state
        .write(creds.clone().with_csrf(csrf), move |tx, who| imports::create(tx, who, &kind, &filename, &bytes))
        .await;
    match result {
        Ok(up) => Ok(see_other(&format!("/imports/{}", up.id))),
        Err(e) if e.status.is_client_error() && e.status != axum::http::StatusCode::FORBIDDEN => {
            let status = e.status;
            // Only reads from here: the refused post's CSRF token was already checked.
            let creds = Credentials { needs_csrf: false, ..creds };
            let (ctx, ()) = load(&state, creds, "/imports", |_, _| Ok(())).await?;
            let errors = FormErrors::from_error(&ctx, e)?;
            Ok((status, render(&UploadPage { ctx, errors, record_type })).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

use axum::response::IntoResponse;

/// One column of the mapping screen.
struct ColumnRow {
    index: usize,
    header: String,
    /// (value, label, selected)
    options: Vec<(String, String, bool)>,
}

/// One row of the dry-run preview.
struct PreviewRow {
    row: i64,
    column: String,
    message: String,
    original: String,
}

#[derive(Template)]
#[template(path = "imports/show.html")]
struct ShowPage {
    ctx: Ctx,
    import: Import,
    columns: Vec<ColumnRow>,
    samples: Vec<Vec<String>>,
    saved: Vec<SavedMapping>,
    dry: Option<DryRun>,
    preview: Vec<PreviewRow>,
    errors: FormErrors,
    progress: ProgressView,
}

/// What the progress fragment shows.
struct ProgressView {
    id: String,
    status: String,
    status_label: String,
    percent: u32,
    done: bool,
    processed: i64,
    total: i64,
    created: i64,
    updated: i64,
    skipped: i64,
    failed: i64,
}

#[derive(Template)]
#[template(path = "imports/_progress.html")]
struct ProgressFragment {
    ctx: Ctx,
    progress: ProgressView,
}

fn progress_view(ctx: &Ctx, i: &Import) -> ProgressView {
    ProgressView {
        id: i.id.to_string(),
        status: i.status.clone(),
        status_label: ctx.t(&format!("import-status-{}", i.status)),
        percent: (i.progress.clamp(0.0, 1.0) * 100.0).round() as u32,
        done: matches!(i.status.as_str(), "done" | "failed"),
        processed: i.processed_rows,
        total: i.total_rows,
        created: i.created,
        updated: i.updated,
        skipped: i.skipped,
        failed: i.failed,
    }
}

const TARGETS: &[(&str, &str, &str)] = &[
    // (record type or "" for both, value, label key)
    ("", "name", "import-field-name"),
    ("", "email", "import-field-email"),
    ("", "phone", "import-field-phone"),
    ("contact", "account", "import-field-account"),
    ("contact", "account_id", "import-field-account-id"),
    ("account", "external_id", "import-field-external-id"),
    ("account", "website", "import-field-website"),
    ("account", "status", "import-field-status"),
    ("account", "category", "import-field-category"),
];

#[derive(Deserialize, Default)]
struct ShowQuery {
    /// A saved mapping to lay over the columns.
    mapping: Option<String>,
}

struct Loaded {
    import: Import,
    samples: Vec<Vec<String>>,
    saved: Vec<SavedMapping>,
    custom_keys: Vec<String>,
}

fn load_import(tx: &mut kernel::Tx<'_>, who: &kernel::Principal, id: Id) -> kernel::Result<Loaded> {
    let import = imports::get(tx, who, id)?;
    let samples = imports::sample_rows(tx, who, id, 5)?;
    let saved = imports::list_mappings(tx, who, Some(&import.record_type))?;
    let custom_keys: Vec<String> = tx.query_sql(
        "SELECT DISTINCT key FROM custom_fields WHERE record_type = $1 AND deleted_at IS NULL ORDER BY key",
        &[import.record_type.clone().into()],
    )?;
    Ok(Loaded { import, samples, saved, custom_keys })
}

fn page(ctx: Ctx, loaded: Loaded, overlay: Option<&SavedMapping>, dry: Option<DryRun>, errors: FormErrors) -> ShowPage {
    let Loaded { import, samples, saved, custom_keys } = loaded;
    let columns = import
        .headers
        .iter()
        .enumerate()
        .map(|(index, header)| {
            let current = overlay
                .and_then(|m| m.columns.get(header))
                .or_else(|| import.mapping.columns.get(header))
                .cloned()
                .unwrap_or_else(|| "ignore".into());
            let mut options = vec![("ignore".to_owned(), ctx.t("import-field-ignore"))];
            for (kind, value, key) in TARGETS {
                if kind.is_empty() || *kind == import.record_type {
                    options.push(((*value).to_owned(), ctx.t(key)));
                }
            }
            for key in &custom_keys {
                options.push((format!("custom.{key}"), format!("custom.{key}")));
            }
            if !options.iter().any(|(v, _)| *v == current) {
                options.push((current.clone(), current.clone()));
            }
            let options = options.into_iter().map(|(v, l)| (v.clone(), l, v == current)).collect();
            ColumnRow { index, header: header.clone(), options }
        })
        .collect();
    let preview = dry
        .as_ref()
        .map(|d| {
            d.errors
                .iter()
                .map(|e| PreviewRow {
                    row: e.row,
                    column: e.column.clone(),
                    message: e.message.clone(),
                    original: e.original.join(" | "),
                })
                .collect()
        })
        .unwrap_or_default();
    let progress = progress_view(&ctx, &import);
    ShowPage { ctx, import, columns, samples, saved, dry, preview, errors, progress }
}

async fn show(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<Id>,
    Query(q): Query<ShowQuery>,
) -> PageResult {
    let (ctx, loaded) = load(&state, creds, "/imports", move |tx, who| load_import(tx, who, id)).await?;
    let overlay =
        q.mapping.and_then(|m| m.parse::<Id>().ok()).and_then(|m| loaded.saved.iter().find(|s| s.id == m).cloned());
    Ok(render(&page(ctx, loaded, overlay.as_ref(), None, FormErrors::default())))
}

/// The mapping form: `col_<n>` per column, `match_on`, `on_existing`, `date_format`,
/// `save_as` (a name to save the columns under), `csrf_token`. Saves the mapping and runs a
/// dry run, shown on the same page.
async fn save_mapping(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<Id>,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let csrf = get("csrf_token");
    let save_as = get("save_as").filter(|s| !s.trim().is_empty());
    let match_on = get("match_on").unwrap_or_else(|| "email".into());
    let on_existing = get("on_existing").unwrap_or_else(|| "update".into());
    let date_format = get("date_format").filter(|s| !s.is_empty());
    let picks: Vec<(usize, String)> = fields
        .iter()
        .filter_map(|(n, v)| n.strip_prefix("col_").and_then(|i| i.parse().ok()).map(|i| (i, v.clone())))
        .collect();
    let reader = Credentials { needs_csrf: false, ..creds.clone() };
    let result = state
        .write(creds.with_csrf(csrf), move |tx, who| {
            let import = imports::get(tx, who, id)?;
            let columns = picks
                .into_iter()
                .filter_map(|(i, target)| import.headers.get(i).map(|h| (h.clone(), target)))
                .collect::<std::collections::BTreeMap<_, _>>();
            if let Some(name) = save_as {
                imports::create_mapping(
                    tx,
                    who,
                    NewMapping { name, record_type: import.record_type.clone(), columns: columns.clone() },
                )?;
            }
            imports::set_mapping(tx, who, id, Mapping { columns, match_on, on_existing, date_format })?;
            imports::dry_run(tx, who, id, None)
        })
        .await;
    let (dry, errors, status) = match result {
        Ok(d) => (Some(d), FormErrors::default(), axum::http::StatusCode::OK),
        Err(e)
            if e.status == axum::http::StatusCode::UNPROCESSABLE_ENTITY
                || e.status == axum::http::StatusCode::CONFLICT =>
        {
            let status = e.status;
            let (ctx, _) = load(&state, reader.clone(), "/imports", |_, _| Ok(())).await?;
            (None, FormErrors::from_error(&ctx, e)?, status)
        }
        Err(e) => return Err(e.into()),
    };
    let (ctx, loaded) = load(&state, reader, "/imports", move |tx, who| load_import(tx, who, id)).await?;
    Ok((status, render(&page(ctx, loaded, None, dry, errors))).into_response())
}

#[derive(Deserialize)]
struct StartForm {
    csrf_token: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<Id>,
    Form(form): Form<StartForm>,
) -> PageResult {
    state.write(creds.with_csrf(form.csrf_token), move |tx, who| imports::start(tx, who, id)).await?;
    Ok(see_other(&format!("/imports/{id}")))
}

/// The progress fragment htmx polls every second while the import runs.
async fn progress(State(state): State<AppState>, creds: Credentials, Path(id): Path<Id>) -> PageResult {
    let (ctx, import) = load(&state, creds, "/imports", move |tx, who| imports::get(tx, who, id)).await?;
    let progress = progress_view(&ctx, &import);
    Ok(render(&ProgressFragment { ctx, progress }))
}
