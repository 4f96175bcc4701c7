//! Imports of contacts and accounts from CSV, XLSX or vCard (docs/import-export.md).
//!
//! 1. [`create`] stores the uploaded file in the database (`import_chunks`, so any node's
//!    worker can run it), detects format and encoding, and suggests a column mapping.
//! 2. [`set_mapping`] fixes which column feeds which field, the upsert key and what to do
//!    with records that already exist.
//! 3. [`dry_run`] checks the first rows exactly as the import would and writes nothing but
//!    the import's own error report.
//! 4. [`start`] queues the job ([`IMPORT_JOB`], handler [`import_job`]); [`run`] does the
//!    work in batches of [`BATCH_ROWS`] rows, one transaction each, and writes the
//!    checkpoint (the next row) and the batch's error rows in that same transaction. A
//!    killed import resumes at its checkpoint; rows are matched on the upsert key, so a
//!    re-run never duplicates.
//!
//! Every row goes through the same checks as the API's create (`contacts::check_fields`,
//! `accounts::check_fields`): names, lower-cased valid e-mails, E.164 phones in the
//! branch's region, custom values against the category's definitions, required fields.
mod pipeline;
pub mod read;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use kernel::audit::Changes;
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::branches::Branch;
use kernel::jobs::{JobContext, JobError};
use kernel::{Channel, Db, Error, Id, Principal, Result, Tx};
use sea_query::Value;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use read::{DateOrder, Parsed, RowResult};
pub use read::{Format, MAX_BYTES, Unusable};

use crate::accounts::{self, Account, NewAccount};
use crate::contacts::{self, Contact};
use crate::fields::{self, CustomField};
use crate::record::{self, RecordType, now};

/// The job kind of imports; register [`import_job`] under it.
pub const IMPORT_JOB: &str = "customers.import";
/// Rows per transaction (and per checkpoint).
pub const BATCH_ROWS: usize = 1000;
/// Most rows a dry run checks.
pub const MAX_DRY_RUN_ROWS: usize = 10_000;
const CHUNK_BYTES: usize = 1 << 20;
const SAMPLE_ROWS: usize = 5;

/// Which column feeds which field, and how rows meet existing records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Header → `name`, `email`, `phone`, `account` (an account's name or external id;
    /// contacts), `account_id` (contacts), `external_id`, `website`, `status`, `category`
    /// (a category's name; accounts), `custom.<key>`, or `ignore`.
    pub columns: BTreeMap<String, String>,
    /// The upsert key: `email` (default), `phone` or `external_id` (accounts).
    #[serde(default = "default_match")]
    pub match_on: String,
    /// `update` (default) or `skip` a record that already exists.
    #[serde(default = "default_existing")]
    pub on_existing: String,
    /// How `05/03/2024` reads: `DD/MM/YYYY` or `MM/DD/YYYY`; without it such a date is
    /// refused as ambiguous (unambiguous forms are always read).
    #[serde(default)]
    pub date_format: Option<String>,
}

fn default_match() -> String {
    "email".into()
}

fn default_existing() -> String {
    "update".into()
}

/// An import: its file, mapping, progress and counts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Import {
    pub id: Id,
    /// `contact` or `account`.
    pub record_type: String,
    pub filename: String,
    /// `csv`, `xlsx` or `vcard`.
    pub format: String,
    /// The detected text encoding (`UTF-8`, `UTF-16LE`, `GBK`, `EUC-KR`, …; `binary` for XLSX).
    pub encoding: String,
    pub size_bytes: i64,
    pub headers: Vec<String>,
    pub mapping: Mapping,
    /// `ready`, `queued`, `running`, `done` or `failed`.
    pub status: String,
    pub job_id: Option<Id>,
    pub total_rows: i64,
    /// Rows done so far (the checkpoint).
    pub processed_rows: i64,
    pub created: i64,
    pub updated: i64,
    /// Existing records left alone (`on_existing: skip`) or already up to date.
    pub skipped: i64,
    pub failed: i64,
    /// 0..1.
    pub progress: f64,
    pub created_by: Option<Id>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FromRow for Import {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let headers: Json = row.get("headers")?;
        let mapping: Json = row.get("mapping")?;
        let total_rows: i64 = row.get("total_rows")?;
        let processed_rows: i64 = row.get("next_row")?;
        let bad = |e: serde_json::Error| DbError::Column { column: "imports".into(), message: e.to_string() };
        Ok(Import {
            id: row.get("id")?,
            record_type: row.get("record_type")?,
            filename: row.get("filename")?,
            format: row.get("format")?,
            encoding: row.get("encoding")?,
            size_bytes: row.get("size_bytes")?,
            headers: serde_json::from_value(headers).map_err(bad)?,
            mapping: serde_json::from_value(mapping).map_err(bad)?,
            status: row.get("status")?,
            job_id: row.get("job_id")?,
            total_rows,
            processed_rows,
            created: row.get("created")?,
            updated: row.get("updated")?,
            skipped: row.get("skipped")?,
            failed: row.get("failed")?,
            progress: if total_rows > 0 { (processed_rows as f64 / total_rows as f64).min(1.0) } else { 0.0 },
            created_by: row.get("created_by")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
        })
    }
}

/// The answer to an upload.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    pub id: Id,
    pub format: String,
    pub encoding: String,
    pub headers: Vec<String>,
    pub suggested_mapping: Mapping,
    /// The first few data rows as read.
    pub sample_rows: Vec<Vec<String>>,
    pub total_rows: i64,
    pub import: Import,
}

/// One bad row (or one bad field of it) in an error report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The row's number in the file (the header is row 1; in a vCard file, the card's number).
    pub row: i64,
    /// The file's column, or the field, at fault (empty: the whole row).
    pub column: String,
    pub message: String,
    pub original: Vec<String>,
}

/// What a dry run found.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    pub rows_checked: i64,
    pub would_create: i64,
    /// Rows matching an existing record (or an earlier row) on the upsert key.
    pub would_update: i64,
    pub would_skip: i64,
    pub failed: i64,
    pub total_rows: i64,
    /// The first 200 problems.
    pub errors: Vec<RowError>,
}

/// Counts of a run (or of the import so far).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
}

const IMPORT_COLUMNS: &str = "id, record_type, filename, format, encoding, size_bytes, headers, mapping, status, \
                              job_id, next_row, total_rows, created, updated, skipped, failed, branch_id, created_by, \
                              created_at, updated_at";

fn unusable(e: &Unusable) -> Error {
    Error::field("file", e.to_string())
}

// ---------------------------------------------------------------------------------------
// Mapping suggestions

fn fold(header: &str) -> String {
    header.trim().to_lowercase().chars().filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '*' | ':' | '：')).collect()
}

const SYNONYMS: &[(&str, &[&str])] = &[
    (
        "name",
        &[
            "name",
            "fullname",
            "contactname",
            "contact",
            "fn",
            "姓名",
            "名字",
            "名称",
            "联系人",
            "客户名称",
            "이름",
            "성명",
            "고객명",
            "담당자",
        ],
    ),
    ("email", &["email", "mail", "emailaddress", "邮箱", "电子邮件", "邮件", "电子邮箱", "이메일", "전자우편", "메일"]),
    (
        "phone",
        &[
            "phone",
            "mobile",
            "tel",
            "telephone",
            "cell",
            "phonenumber",
            "mobilephone",
            "电话",
            "手机",
            "手机号",
            "联系电话",
            "电话号码",
            "전화",
            "전화번호",
            "휴대폰",
            "핸드폰",
            "연락처",
        ],
    ),
    (
        "account",
        &[
            "account",
            "company",
            "organization",
            "organisation",
            "org",
            "公司",
            "单位",
            "企业",
            "회사",
            "회사명",
            "거래처",
        ],
    ),
    ("account_id", &["accountid"]),
    ("external_id", &["externalid", "外部编号", "编号", "외부id", "고객번호"]),
    ("website", &["website", "web", "url", "homepage", "网站", "网址", "웹사이트", "홈페이지"]),
    ("status", &["status", "状态", "상태"]),
    ("category", &["category", "type", "分类", "类别", "분류", "유형"]),
];

/// The fields a column may feed for this kind of record (besides `custom.<key>` and `ignore`).
fn targets(kind: RecordType) -> &'static [&'static str] {
    match kind {
        RecordType::Contact => &["name", "email", "phone", "account", "account_id"],
        RecordType::Account => &["name", "email", "phone", "external_id", "website", "status", "category"],
    }
}

fn suggest(kind: RecordType, headers: &[String], custom_keys: &[(String, String)]) -> Mapping {
    let mut columns = BTreeMap::new();
    let mut used: Vec<String> = Vec::new();
    for header in headers {
        let f = fold(header);
        let mut target =
            SYNONYMS.iter().find(|(_, names)| names.iter().any(|n| fold(n) == f)).map(|(t, _)| (*t).to_owned());
        // An account import's "company" column is the account's name.
        if kind == RecordType::Account && target.as_deref() == Some("account") {
            target = Some("name".into());
        }
        if let Some(key) = header.trim().strip_prefix("custom.") {
            target = Some(format!("custom.{key}"));
        } else if target.is_none() {
            target = custom_keys
                .iter()
                .find(|(key, label)| fold(key) == f || fold(label) == f)
                .map(|(key, _)| format!("custom.{key}"));
        }
        let target = match target {
            Some(t) if (targets(kind).contains(&t.as_str()) || t.starts_with("custom.")) && !used.contains(&t) => t,
            _ => "ignore".to_owned(),
        };
        if target != "ignore" {
            used.push(target.clone());
        }
        columns.entry(header.clone()).or_insert(target);
    }
    Mapping { columns, match_on: default_match(), on_existing: default_existing(), date_format: None }
}

fn check_mapping(kind: RecordType, headers: &[String], m: &Mapping) -> Result<()> {
    let mut v = Validator::new();
    let mut used: Vec<&str> = Vec::new();
    for (header, target) in &m.columns {
        if !headers.contains(header) {
            v.add(&format!("columns.{header}"), "is not a column of the file");
        }
        let t = target.as_str();
        let ok = t == "ignore"
            || targets(kind).contains(&t)
            || t.strip_prefix("custom.").is_some_and(|k| !k.is_empty() && !k.contains('.'));
        if !ok {
            v.add(
                &format!("columns.{header}"),
                format!("{t:?} is not one of {}, custom.<key> or ignore", targets(kind).join(", ")),
            );
        } else if t != "ignore" && used.contains(&t) {
            v.add(&format!("columns.{header}"), format!("{t} is fed by two columns"));
        }
        used.push(t);
    }
    if !m.columns.values().any(|t| t == "name") {
        v.add("columns", "no column is mapped to name");
    }
    let keys: &[&str] = match kind {
        RecordType::Contact => &["email", "phone"],
        RecordType::Account => &["email", "phone", "external_id"],
    };
    if !keys.contains(&m.match_on.as_str()) {
        v.add("match_on", format!("must be one of {}", keys.join(", ")));
    }
    if !matches!(m.on_existing.as_str(), "update" | "skip") {
        v.add("on_existing", "must be update or skip");
    }
    if let Some(f) = &m.date_format
        && date_order(Some(f)).is_none()
    {
        v.add("date_format", "must be YYYY-MM-DD, DD/MM/YYYY or MM/DD/YYYY");
    }
    v.finish()
}

fn date_order(format: Option<&String>) -> Option<Option<DateOrder>> {
    match format.map(|f| f.trim().to_ascii_uppercase()).as_deref() {
        None | Some("YYYY-MM-DD") => Some(None),
        Some("DD/MM/YYYY" | "DD.MM.YYYY" | "DD-MM-YYYY") => Some(Some(DateOrder::DayMonth)),
        Some("MM/DD/YYYY" | "MM-DD-YYYY") => Some(Some(DateOrder::MonthDay)),
        Some(_) => None,
    }
}

// ---------------------------------------------------------------------------------------
// Upload, read, mapping

fn require(who: &Principal, kind: RecordType) -> Result<()> {
    who.require("customers.import")?;
    who.require(match kind {
        RecordType::Account => "customers.accounts.create",
        RecordType::Contact => "customers.contacts.create",
    })
}

fn custom_keys(tx: &mut Tx<'_>, kind: RecordType) -> Result<Vec<(String, String)>> {
    struct KeyLabel(String, String);
    impl FromRow for KeyLabel {
        fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
            Ok(KeyLabel(row.get("key")?, row.get("label")?))
        }
    }
    Ok(tx
        .query_sql::<KeyLabel>(
            "SELECT key, label FROM custom_fields WHERE record_type = $1 AND deleted_at IS NULL ORDER BY id",
            &[kind.as_str().into()],
        )?
        .into_iter()
        .map(|k| (k.0, k.1))
        .collect())
}

/// Stores an uploaded file as a new import of `record_type` records, after checking it is
/// a usable CSV, XLSX or vCard file; suggests a mapping from the header names (English,
/// Chinese and Korean ones, and custom field keys and labels).
pub fn create(tx: &mut Tx<'_>, who: &Principal, record_type: &str, filename: &str, bytes: &[u8]) -> Result<Uploaded> {
    let kind = RecordType::parse(record_type).map_err(|m| Error::field("record_type", m))?;
    require(who, kind)?;
    let filename = filename.trim();
    if filename.is_empty() || filename.chars().count() > 255 {
        return Err(Error::field("filename", "must be 1 to 255 characters"));
    }
    let parsed = read::parse(filename, bytes).map_err(|e| unusable(&e))?;
    let total_rows = parsed.rows().count() as i64;
    let sample_rows: Vec<Vec<String>> =
        parsed.rows().take(SAMPLE_ROWS).map(|r| r.unwrap_or_else(|e| vec![format!("({e})")])).collect();
    let mapping = suggest(kind, &parsed.headers, &custom_keys(tx, kind)?);
    let id = Id::new();
    let at = now();
    let branch_id = match who.actor() {
        Some(_) => who.branch_id,
        None => kernel::setup::head_office(tx)?,
    };
    tx.execute_sql(
        &format!(
            "INSERT INTO imports ({IMPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ready', NULL, 0, $9, 0, 0, 0, \
             0, $10, $11, $12, $12)"
        ),
        &[
            id.into(),
            kind.as_str().into(),
            filename.into(),
            parsed.format.as_str().into(),
            parsed.encoding.into(),
            (bytes.len() as i64).into(),
            Value::Json(Some(Box::new(json!(parsed.headers)))),
            Value::Json(Some(Box::new(serde_json::to_value(&mapping).unwrap_or_default()))),
            total_rows.into(),
            branch_id.into(),
            Value::BigInt(who.actor().map(Id::get)),
            at.into(),
        ],
    )?;
    let chunks: Vec<Vec<Value>> = bytes
        .chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(i, c)| vec![id.into(), (i as i64).into(), Value::Bytes(Some(c.to_vec()))])
        .collect();
    for group in chunks.chunks(16) {
        tx.insert_rows("import_chunks", &["import_id", "seq", "data"], group)?;
    }
    kernel::audit::record(
        tx,
        who,
        "upload",
        "import",
        Some(id),
        &Changes::new().created("filename", &filename).created("record_type", &kind.as_str()),
    )?;
    let import = fetch(tx, who, id)?;
    Ok(Uploaded {
        id,
        format: import.format.clone(),
        encoding: import.encoding.clone(),
        headers: parsed.headers,
        suggested_mapping: mapping,
        sample_rows,
        total_rows,
        import,
    })
}

/// An import the caller may see: their own, or any with an all-data scope.
fn fetch(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Import> {
    let import: Import = tx
        .query_opt_sql(&format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE id = $1"), &[id.into()])?
        .ok_or(Error::NotFound("import"))?;
    let mine = import.created_by.is_some() && import.created_by == who.actor();
    if mine || who.scope == kernel::DataScope::All { Ok(import) } else { Err(Error::NotFound("import")) }
}

pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Import> {
    who.require("customers.import")?;
    fetch(tx, who, id)
}

fn kind_of(import: &Import) -> RecordType {
    if import.record_type == "account" { RecordType::Account } else { RecordType::Contact }
}

/// The first `n` data rows of an import's file, as read (for the mapping screen).
pub fn sample_rows(tx: &mut Tx<'_>, who: &Principal, id: Id, n: usize) -> Result<Vec<Vec<String>>> {
    who.require("customers.import")?;
    let import = fetch(tx, who, id)?;
    let parsed = parse_stored(tx, &import)?;
    Ok(parsed.rows().take(n).map(|r| r.unwrap_or_else(|e| vec![format!("({e})")])).collect())
}

/// Sets an import's mapping (before it starts).
pub fn set_mapping(tx: &mut Tx<'_>, who: &Principal, id: Id, mapping: Mapping) -> Result<Import> {
    who.require("customers.import")?;
    let import = fetch(tx, who, id)?;
    if import.status != "ready" {
        return Err(Error::conflict("status", format!("the import is {} and its mapping is fixed", import.status)));
    }
    check_mapping(kind_of(&import), &import.headers, &mapping)?;
    tx.execute_sql(
        "UPDATE imports SET mapping = $1, updated_at = $2 WHERE id = $3",
        &[Value::Json(Some(Box::new(serde_json::to_value(&mapping).unwrap_or_default()))), now().into(), id.into()],
    )?;
    kernel::audit::record(
        tx,
        who,
        "update",
        "import",
        Some(id),
        &Changes::new().field("mapping", &import.mapping, &mapping),
    )?;
    fetch(tx, who, id)
}

/// The stored file of an import.
fn file(tx: &mut Tx<'_>, id: Id) -> Result<Vec<u8>> {
    struct Chunk(Vec<u8>);
    impl FromRow for Chunk {
        fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
            Ok(Chunk(row.get("data")?))
        }
    }
    let chunks: Vec<Chunk> =
        tx.query_sql("SELECT data FROM import_chunks WHERE import_id = $1 ORDER BY seq", &[id.into()])?;
    Ok(chunks.into_iter().flat_map(|c| c.0).collect())
}

fn parse_stored(tx: &mut Tx<'_>, import: &Import) -> Result<Parsed> {
    let bytes = file(tx, import.id)?;
    read::parse(&import.filename, &bytes).map_err(|e| unusable(&e))
}

// ---------------------------------------------------------------------------------------
// Rows to records

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Name,
    Email,
    Phone,
    Account,
    AccountId,
    ExternalId,
    Website,
    Status,
    Category,
    Custom(String),
}

/// Everything one run needs besides the rows: resolved columns, where records go, and
/// caches of the look-ups rows share (accounts, categories, field definitions).
#[derive(Clone)]
struct Plan<'a> {
    who: &'a Principal,
    kind: RecordType,
    import_id: Id,
    columns: Vec<(usize, Target)>,
    match_on: String,
    skip_existing: bool,
    order: Option<DateOrder>,
    vcard: bool,
    branch: Branch,
    owner: Option<Id>,
    accounts: HashMap<String, Option<Account>>,
    categories: HashMap<String, Option<Id>>,
    definitions: HashMap<Option<Id>, Vec<CustomField>>,
    regions: HashMap<Id, String>,
}

impl<'a> Plan<'a> {
    fn new(tx: &mut Tx<'_>, who: &'a Principal, import: &Import, headers: &[String]) -> Result<Plan<'a>> {
        let kind = kind_of(import);
        let mut columns = Vec::new();
        for (header, target) in &import.mapping.columns {
            let Some(index) = headers.iter().position(|h| h == header) else { continue };
            let t = match target.as_str() {
                "name" => Target::Name,
                "email" => Target::Email,
                "phone" => Target::Phone,
                "account" => Target::Account,
                "account_id" => Target::AccountId,
                "external_id" => Target::ExternalId,
                "website" => Target::Website,
                "status" => Target::Status,
                "category" => Target::Category,
                other => match other.strip_prefix("custom.") {
                    Some(key) => Target::Custom(key.to_owned()),
                    None => continue,
                },
            };
            columns.push((index, t));
        }
        let branch_id: i64 = tx
            .query_opt_sql("SELECT branch_id FROM imports WHERE id = $1", &[import.id.into()])?
            .ok_or(Error::NotFound("import"))?;
        let branch_id = Id(branch_id);
        let mut v = Validator::new();
        let (branch, owner) = record::place(tx, who, &mut v, Some(branch_id), None)?;
        v.finish()?;
        let branch = branch.ok_or_else(|| Error::field("branch_id", "no such branch"))?;
        Ok(Plan {
            who,
            kind,
            import_id: import.id,
            columns,
            match_on: import.mapping.match_on.clone(),
            skip_existing: import.mapping.on_existing == "skip",
            order: date_order(import.mapping.date_format.as_ref()).flatten(),
            vcard: import.format == "vcard",
            branch,
            owner,
            accounts: HashMap::new(),
            categories: HashMap::new(),
            definitions: HashMap::new(),
            regions: HashMap::new(),
        })
    }

    fn row_number(&self, index: usize) -> i64 {
        index as i64 + if self.vcard { 1 } else { 2 }
    }

    fn definitions(&mut self, tx: &mut Tx<'_>, category: Option<Id>, kind: RecordType) -> Result<&[CustomField]> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.definitions.entry(category) {
            e.insert(fields::definitions(tx, category, kind)?);
        }
        Ok(self.definitions.get(&category).map(Vec::as_slice).unwrap_or_default())
    }

    fn account(&mut self, tx: &mut Tx<'_>, reference: &str, by_id: bool) -> Result<Option<Account>> {
        let key = format!("{}:{reference}", if by_id { "id" } else { "ref" });
        if let Some(a) = self.accounts.get(&key) {
            return Ok(a.clone());
        }
        let found = if by_id {
            match reference.parse::<Id>() {
                Ok(id) => match accounts::fetch_in_scope(tx, self.who, id) {
                    Ok(a) => Some(a),
                    Err(Error::NotFound(_)) => None,
                    Err(e) => return Err(e),
                },
                Err(_) => None,
            }
        } else {
            accounts::find_by_reference(tx, self.who, reference)?
        };
        self.accounts.insert(key, found.clone());
        Ok(found)
    }

    /// The phone region of a branch (cached).
    fn region(&mut self, tx: &mut Tx<'_>, branch: Id) -> Result<String> {
        if let Some(r) = self.regions.get(&branch) {
            return Ok(r.clone());
        }
        let region = record::region_of(tx, branch)?;
        self.regions.insert(branch, region.clone());
        Ok(region)
    }

    fn category(&mut self, tx: &mut Tx<'_>, name: &str) -> Result<Option<Id>> {
        if let Some(c) = self.categories.get(name) {
            return Ok(*c);
        }
        let found: Option<i64> = tx.query_opt_sql(
            "SELECT id FROM customer_categories WHERE name = $1 AND deleted_at IS NULL",
            &[name.into()],
        )?;
        let found = found.map(Id);
        self.categories.insert(name.to_owned(), found);
        Ok(found)
    }
}

/// A custom value from its cell text, typed by its definition (unknown keys stay text, so
/// the shared check names them).
fn custom_value(field: Option<&CustomField>, text: &str, order: Option<DateOrder>) -> Result<Json, String> {
    let Some(field) = field else { return Ok(Json::String(text.to_owned())) };
    Ok(match field.field_type.as_str() {
        "number" => {
            let n: f64 = text.replace([',', ' '], "").parse().map_err(|_| format!("{text:?} is not a number"))?;
            serde_json::Number::from_f64(n).map(Json::Number).ok_or_else(|| format!("{text:?} is not a number"))?
        }
        "boolean" => match text.trim().to_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "是" | "예" | "네" | "x" => Json::Bool(true),
            "false" | "no" | "n" | "0" | "否" | "아니오" | "아니요" => Json::Bool(false),
            _ => return Err(format!("{text:?} is not yes or no")),
        },
        "date" => Json::String(read::parse_date(text, order)?.format("%Y-%m-%d").to_string()),
        "multi_select" => Json::Array(
            text.split([';', ',', '|', '；', '，'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Json::String(s.to_owned()))
                .collect(),
        ),
        "money" => {
            let t = text.trim();
            let (amount, currency) = match t.rsplit_once(' ') {
                Some((a, c)) if c.len() == 3 && c.chars().all(|c| c.is_ascii_alphabetic()) => (a.trim(), c),
                _ => (t, "CNY"),
            };
            json!({"amount": amount.replace(',', ""), "currency": currency.to_uppercase()})
        }
        _ => Json::String(text.to_owned()),
    })
}

/// The cells of a row by target; empty cells count as not given.
#[derive(Default)]
struct Cells {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    account: Option<String>,
    account_id: Option<String>,
    external_id: Option<String>,
    website: Option<String>,
    status: Option<String>,
    category: Option<String>,
    custom: Vec<(String, String)>,
}

fn cells(plan: &Plan<'_>, row: &[String]) -> Cells {
    let mut c = Cells::default();
    for (index, target) in &plan.columns {
        let text = row.get(*index).map(|s| s.trim()).unwrap_or_default();
        if text.is_empty() {
            continue;
        }
        let text = text.to_owned();
        match target {
            Target::Name => c.name = text,
            Target::Email => c.email = Some(text),
            Target::Phone => c.phone = Some(text),
            Target::Account => c.account = Some(text),
            Target::AccountId => c.account_id = Some(text),
            Target::ExternalId => c.external_id = Some(text),
            Target::Website => c.website = Some(text),
            Target::Status => c.status = Some(text),
            Target::Category => c.category = Some(text),
            Target::Custom(key) => c.custom.push((key.clone(), text)),
        }
    }
    c
}

/// The header of the column that feeds `field` (for the error report), else the field.
fn column_of(plan: &Plan<'_>, headers: &[String], field: &str) -> String {
    let wanted = match field {
        "name" => Some(Target::Name),
        "email" => Some(Target::Email),
        "phone" => Some(Target::Phone),
        "account_id" => plan
            .columns
            .iter()
            .find(|(_, t)| *t == Target::AccountId)
            .map(|_| Target::AccountId)
            .or(Some(Target::Account)),
        "external_id" => Some(Target::ExternalId),
        "website" => Some(Target::Website),
        "status" => Some(Target::Status),
        "category_id" => Some(Target::Category),
        f => f.strip_prefix("custom.").map(|k| Target::Custom(k.to_owned())),
    };
    wanted
        .and_then(|w| plan.columns.iter().find(|(_, t)| *t == w))
        .and_then(|(i, _)| headers.get(*i).cloned())
        .unwrap_or_else(|| field.to_owned())
}

fn custom_map(
    v: &mut Validator,
    defs: &[CustomField],
    pairs: &[(String, String)],
    order: Option<DateOrder>,
) -> Map<String, Json> {
    let mut out = Map::new();
    for (key, text) in pairs {
        match custom_value(defs.iter().find(|d| &d.key == key), text, order) {
            Ok(value) => {
                out.insert(key.clone(), value);
            }
            Err(m) => v.add(&format!("custom.{key}"), m),
        }
    }
    out
}

fn errors_of(v: Validator) -> Vec<(String, String)> {
    match v.finish() {
        Ok(()) => Vec::new(),
        Err(Error::Validation(errors)) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
        Err(e) => vec![(String::new(), e.to_string())],
    }
}

/// A checked row: the record it would write, or its problems.
enum Checked {
    Contact(Box<Contact>),
    Account(Box<Account>),
}

fn check_contact(tx: &mut Tx<'_>, plan: &mut Plan<'_>, c: &Cells) -> Result<Result<Contact, Vec<(String, String)>>> {
    let mut v = Validator::new();
    let name = v.check("name", kernel::values::name(&c.name, 200));
    let account = match (&c.account_id, &c.account) {
        (Some(id), _) => {
            let a = plan.account(tx, id, true)?;
            if a.is_none() {
                v.add("account_id", "no such account");
            }
            a
        }
        (None, Some(reference)) => {
            let a = plan.account(tx, reference, false)?;
            if a.is_none() {
                v.add("account_id", format!("no account is named or has the external id {reference:?}"));
            }
            a
        }
        (None, None) => None,
    };
    // Like the API's create: a contact of an account sits in the account's branch (and
    // its phone is read in that branch's region), else in the import's branch.
    let branch_id = account.as_ref().map_or(plan.branch.id, |a| a.branch_id);
    let region = if branch_id == plan.branch.id { plan.branch.region.clone() } else { plan.region(tx, branch_id)? };
    let order = plan.order;
    let defs = plan.definitions(tx, account.as_ref().and_then(|a| a.category_id), RecordType::Contact)?.to_vec();
    let custom = custom_map(&mut v, &defs, &c.custom, order);
    let checked = contacts::check_fields(&mut v, c.email.as_deref(), c.phone.as_deref(), &custom, &region, &defs);
    let errors = errors_of(v);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let at = now();
    Ok(Ok(Contact {
        id: Id::new(),
        name: name.unwrap_or_default(),
        account_id: account.map(|a| a.id),
        branch_id,
        owner_id: plan.owner,
        email: checked.email,
        phone: checked.phone.as_ref().map(|p| p.e164().to_owned()),
        phone_raw: checked.phone.as_ref().map(|p| p.raw().to_owned()),
        custom: checked.custom,
        category_id: None,
        status: "active".into(),
        title: None,
        addresses: Vec::new(),
        is_member: false,
        card_no: None,
        birthday: None,
        gender: None,
        household_size: None,
        member_since: None,
        tags: Vec::new(),
        created_at: at,
        updated_at: at,
        version: 1,
        duplicate_candidates: None,
    }))
}

fn check_account(tx: &mut Tx<'_>, plan: &mut Plan<'_>, c: &Cells) -> Result<Result<Account, Vec<(String, String)>>> {
    let mut v = Validator::new();
    let input = NewAccount {
        name: c.name.clone(),
        status: c.status.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
        website: c.website.clone(),
        external_id: c.external_id.clone(),
        ..Default::default()
    };
    let (name, status) = accounts::check_name_status(&mut v, &input);
    let category = match &c.category {
        Some(n) => {
            let id = plan.category(tx, n)?;
            if id.is_none() {
                v.add("category_id", format!("no category is named {n:?}"));
            }
            id
        }
        None => None,
    };
    let region = plan.branch.region.clone();
    let order = plan.order;
    let defs = plan.definitions(tx, category, RecordType::Account)?.to_vec();
    let custom = custom_map(&mut v, &defs, &c.custom, order);
    let checked = accounts::check_fields(&mut v, &input, &custom, &region, &defs);
    let errors = errors_of(v);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let at = now();
    Ok(Ok(Account {
        id: Id::new(),
        name: name.unwrap_or_default(),
        category_id: category,
        parent_id: None,
        branch_id: plan.branch.id,
        owner_id: plan.owner,
        status: status.unwrap_or_else(|| "active".into()),
        email: checked.email,
        phone: checked.phone.as_ref().map(|p| p.e164().to_owned()),
        phone_raw: checked.phone.as_ref().map(|p| p.raw().to_owned()),
        website: checked.website,
        external_id: checked.external_id,
        custom: checked.custom,
        region: None,
        addresses: Vec::new(),
        phones: Vec::new(),
        emails: Vec::new(),
        credit_limit: None,
        payment_terms_days: None,
        tags: Vec::new(),
        created_at: at,
        updated_at: at,
        version: 1,
        duplicate_candidates: None,
    }))
}

impl Checked {
    fn key(&self, match_on: &str) -> Option<String> {
        match (self, match_on) {
            (Checked::Contact(c), "email") => c.email.clone(),
            (Checked::Contact(c), "phone") => c.phone.clone(),
            (Checked::Account(a), "email") => a.email.clone(),
            (Checked::Account(a), "phone") => a.phone.clone(),
            (Checked::Account(a), "external_id") => a.external_id.clone(),
            _ => None,
        }
    }

    /// `self` (an existing record) with what the row gave laid over it.
    fn merged(&self, row: &Checked) -> Checked {
        match (self, row) {
            (Checked::Contact(old), Checked::Contact(new)) => {
                let mut m = old.clone();
                m.name.clone_from(&new.name);
                m.account_id = new.account_id.or(old.account_id);
                m.email = new.email.clone().or_else(|| old.email.clone());
                if new.phone.is_some() {
                    m.phone.clone_from(&new.phone);
                    m.phone_raw.clone_from(&new.phone_raw);
                }
                m.custom.extend(new.custom.clone());
                Checked::Contact(m)
            }
            (Checked::Account(old), Checked::Account(new)) => {
                let mut m = old.clone();
                m.name.clone_from(&new.name);
                m.category_id = new.category_id.or(old.category_id);
                m.email = new.email.clone().or_else(|| old.email.clone());
                if new.phone.is_some() {
                    m.phone.clone_from(&new.phone);
                    m.phone_raw.clone_from(&new.phone_raw);
                }
                m.website = new.website.clone().or_else(|| old.website.clone());
                m.external_id = new.external_id.clone().or_else(|| old.external_id.clone());
                m.custom.extend(new.custom.clone());
                Checked::Account(m)
            }
            _ => row.clone_shallow(),
        }
    }

    fn clone_shallow(&self) -> Checked {
        match self {
            Checked::Contact(c) => Checked::Contact(c.clone()),
            Checked::Account(a) => Checked::Account(a.clone()),
        }
    }

    fn changes(&self, old: Option<&Checked>) -> Changes {
        match (self, old) {
            (Checked::Contact(new), Some(Checked::Contact(old))) => contacts::changes(Some(old), new),
            (Checked::Contact(new), _) => contacts::changes(None, new),
            (Checked::Account(new), Some(Checked::Account(old))) => accounts::changes(Some(old), new),
            (Checked::Account(new), _) => accounts::changes(None, new),
        }
    }

    fn id(&self) -> Id {
        match self {
            Checked::Contact(c) => c.id,
            Checked::Account(a) => a.id,
        }
    }

    fn version(&self) -> i64 {
        match self {
            Checked::Contact(c) => c.version,
            Checked::Account(a) => a.version,
        }
    }

    fn bump(&mut self, at: DateTime<Utc>) {
        match self {
            Checked::Contact(c) => {
                c.version += 1;
                c.updated_at = at;
            }
            Checked::Account(a) => {
                a.version += 1;
                a.updated_at = at;
            }
        }
    }
}

/// What a batch wrote (or, dry, would write).
#[derive(Default)]
struct BatchOutcome {
    counts: Counts,
    errors: Vec<RowError>,
}

/// Checks and (unless `dry`) writes one batch of rows, inside the caller's transaction.
fn process(
    tx: &mut Tx<'_>,
    plan: &mut Plan<'_>,
    headers: &[String],
    rows: &[(usize, RowResult)],
    dry: bool,
) -> Result<BatchOutcome> {
    let checked = check_rows(tx, plan, headers, rows)?;
    apply(tx, plan, checked, dry)
}

/// One batch's rows checked: the good records in file order, and the bad rows' errors.
struct CheckedBatch {
    good: Vec<(usize, Checked)>,
    outcome: BatchOutcome,
    /// What inserting each good contact writes, worked out on the checking thread (by id).
    ready: HashMap<Id, Ready>,
}

/// A new contact's rows and audit entry, ready to write as they are (unless a later row
/// of the batch merges into it).
struct Ready {
    insert: contacts::PreparedInsert,
    audit: String,
}

/// A new record's audit entry as JSON text: its fields and the import that created it.
fn created_audit(record: &Checked, import_id: &str) -> String {
    audit_text(record.changes(None), import_id)
}

fn audit_text(changes: Changes, import_id: &str) -> String {
    let changes = changes.created("import_id", &import_id);
    serde_json::to_string(&changes).unwrap_or_default()
}

/// Maps, validates and normalises a batch of rows. Reads only what the rows refer to
/// (accounts, categories, field definitions, regions), so for contacts it can run on a
/// read transaction while the previous batch is written.
fn check_rows(
    tx: &mut Tx<'_>,
    plan: &mut Plan<'_>,
    headers: &[String],
    rows: &[(usize, RowResult)],
) -> Result<CheckedBatch> {
    let mut out = BatchOutcome::default();
    let mut good: Vec<(usize, Checked)> = Vec::new();
    let mut ready: HashMap<Id, Ready> = HashMap::new();
    for (index, row) in rows {
        let fields = match row {
            Ok(f) => f,
            Err(message) => {
                out.counts.failed += 1;
                out.errors.push(RowError {
                    row: plan.row_number(*index),
                    column: String::new(),
                    message: message.clone(),
                    original: Vec::new(),
                });
                continue;
            }
        };
        let c = cells(plan, fields);
        let checked = match plan.kind {
            RecordType::Contact => check_contact(tx, plan, &c)?.map(|c| Checked::Contact(Box::new(c))),
            RecordType::Account => check_account(tx, plan, &c)?.map(|a| Checked::Account(Box::new(a))),
        };
        match checked {
            Ok(record) => {
                if let Checked::Contact(c) = &record {
                    let audit = created_audit(&record, &plan.import_id.to_string());
                    ready.insert(c.id, Ready { insert: contacts::prepare_insert(c), audit });
                }
                good.push((*index, record));
            }
            Err(problems) => {
                out.counts.failed += 1;
                for (field, message) in problems {
                    out.errors.push(RowError {
                        row: plan.row_number(*index),
                        column: column_of(plan, headers, &field),
                        message,
                        original: fields.clone(),
                    });
                }
            }
        }
    }
    Ok(CheckedBatch { good, outcome: out, ready })
}

/// Applies a checked batch: one look-up of existing records by the upsert key, then each
/// record created, updated or skipped, and (unless `dry`) written.
fn apply(tx: &mut Tx<'_>, plan: &Plan<'_>, batch: CheckedBatch, dry: bool) -> Result<BatchOutcome> {
    let CheckedBatch { good, outcome: mut out, mut ready } = batch;
    let column = match plan.match_on.as_str() {
        "phone" => "phone_e164",
        other => other,
    };
    let mut keys: Vec<String> = good.iter().filter_map(|(_, r)| r.key(&plan.match_on)).collect();
    keys.sort();
    keys.dedup();
    let mut existing: HashMap<String, Checked> = HashMap::new();
    match plan.kind {
        RecordType::Contact => {
            for c in contacts::find_by(tx, plan.who, column, &keys)? {
                let record = Checked::Contact(Box::new(c));
                if let Some(k) = record.key(&plan.match_on) {
                    existing.entry(k.to_lowercase()).or_insert(record);
                }
            }
        }
        RecordType::Account => {
            for a in accounts::find_by(tx, plan.who, column, &keys)? {
                let record = Checked::Account(Box::new(a));
                if let Some(k) = record.key(&plan.match_on) {
                    existing.entry(k.to_lowercase()).or_insert(record);
                }
            }
        }
    }
    // Rows are applied in order: a later row with the key of an earlier one (in the
    // file or in the database) updates that record.
    let mut inserts: Vec<Checked> = Vec::new();
    let mut pending: HashMap<String, usize> = HashMap::new();
    let mut updates: Vec<(i64, Checked, Checked)> = Vec::new(); // (stored version, old, new)
    let mut updated_index: HashMap<String, usize> = HashMap::new();
    let at = now();
    for (_, record) in good {
        let key = record.key(&plan.match_on).map(|k| k.to_lowercase());
        let Some(key) = key else {
            out.counts.created += 1;
            inserts.push(record);
            continue;
        };
        if let Some(&i) = pending.get(&key) {
            if plan.skip_existing {
                out.counts.skipped += 1;
            } else {
                let merged = inserts[i].merged(&record);
                ready.remove(&merged.id());
                inserts[i] = merged;
                out.counts.updated += 1;
            }
            continue;
        }
        if let Some(&i) = updated_index.get(&key) {
            if plan.skip_existing {
                out.counts.skipped += 1;
            } else {
                let merged = updates[i].2.merged(&record);
                updates[i].2 = merged;
                out.counts.updated += 1;
            }
            continue;
        }
        if let Some(old) = existing.remove(&key) {
            if plan.skip_existing {
                out.counts.skipped += 1;
                continue;
            }
            let new = old.merged(&record);
            if new.changes(Some(&old)).is_empty() {
                out.counts.skipped += 1;
                continue;
            }
            out.counts.updated += 1;
            updated_index.insert(key, updates.len());
            updates.push((old.version(), old, new));
            continue;
        }
        out.counts.created += 1;
        pending.insert(key, inserts.len());
        inserts.push(record);
    }
    if dry {
        return Ok(out);
    }
    write(tx, plan, inserts, ready, updates, at)?;
    Ok(out)
}

/// Writes a batch: new records in bulk (rows, search documents, duplicate keys, audit
/// entries; for contacts as the checking thread prepared them), updates one by one through
/// the same versioned write as the API.
fn write(
    tx: &mut Tx<'_>,
    plan: &Plan<'_>,
    inserts: Vec<Checked>,
    mut ready: HashMap<Id, Ready>,
    updates: Vec<(i64, Checked, Checked)>,
    at: DateTime<Utc>,
) -> Result<()> {
    let import_id = plan.import_id.to_string();
    let mut audit: Vec<kernel::audit::Entry<'_>> = Vec::with_capacity(inserts.len() + updates.len());
    let kind = plan.kind.as_str();
    match plan.kind {
        RecordType::Contact => {
            let mut list: Vec<&Contact> = Vec::with_capacity(inserts.len());
            let mut prepared = Vec::with_capacity(inserts.len());
            for r in &inserts {
                let Checked::Contact(c) = r else { continue };
                let Ready { insert, audit: text } = match ready.remove(&c.id) {
                    Some(done) => done,
                    None => Ready { insert: contacts::prepare_insert(c), audit: created_audit(r, &import_id) },
                };
                list.push(c.as_ref());
                prepared.push(insert);
                audit.push(kernel::audit::Entry {
                    action: "create",
                    record_type: kind,
                    record_id: c.id,
                    changes: text,
                });
            }
            contacts::insert_prepared(tx, &list, prepared)?;
        }
        RecordType::Account => {
            let list: Vec<&Account> = inserts
                .iter()
                .filter_map(|r| if let Checked::Account(a) = r { Some(a.as_ref()) } else { None })
                .collect();
            accounts::insert_many(tx, &list)?;
            for r in &inserts {
                let changes = created_audit(r, &import_id);
                audit.push(kernel::audit::Entry { action: "create", record_type: kind, record_id: r.id(), changes });
            }
        }
    }
    for (version, old, mut new) in updates {
        new.bump(at);
        match &new {
            Checked::Contact(c) => contacts::write_update(tx, version, c, false)?,
            Checked::Account(a) => accounts::write_update(tx, version, a, false)?,
        }
        let changes = audit_text(new.changes(Some(&old)), &import_id);
        audit.push(kernel::audit::Entry { action: "update", record_type: kind, record_id: new.id(), changes });
    }
    kernel::audit::record_many(tx, plan.who, at, audit)
}

fn store_errors(tx: &mut Tx<'_>, import_id: Id, phase: &str, errors: &[RowError]) -> Result<()> {
    let mut seq: HashMap<i64, i64> = HashMap::new();
    let rows: Vec<Vec<Value>> = errors
        .iter()
        .map(|e| {
            let n = seq.entry(e.row).or_insert(0);
            *n += 1;
            vec![
                import_id.into(),
                phase.into(),
                e.row.into(),
                (*n).into(),
                e.column.clone().into(),
                e.message.clone().into(),
                Value::Json(Some(Box::new(json!(e.original)))),
            ]
        })
        .collect();
    tx.insert_rows("import_errors", &["import_id", "phase", "row_no", "seq", "col", "message", "original"], &rows)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Dry run, start, run

/// Checks the first `limit` rows (default 1,000, at most 10,000) as the import would,
/// writes nothing but the import's dry-run report, and says what would happen.
pub fn dry_run(tx: &mut Tx<'_>, who: &Principal, id: Id, limit: Option<usize>) -> Result<DryRun> {
    who.require("customers.import")?;
    let import = fetch(tx, who, id)?;
    require(who, kind_of(&import))?;
    check_mapping(kind_of(&import), &import.headers, &import.mapping)?;
    let parsed = parse_stored(tx, &import)?;
    let limit = limit.unwrap_or(1000).clamp(1, MAX_DRY_RUN_ROWS);
    let rows: Vec<(usize, RowResult)> = parsed.rows().take(limit).enumerate().collect();
    let mut plan = Plan::new(tx, who, &import, &parsed.headers)?;
    let outcome = process(tx, &mut plan, &parsed.headers, &rows, true)?;
    tx.execute_sql("DELETE FROM import_errors WHERE import_id = $1 AND phase = 'dry_run'", &[id.into()])?;
    store_errors(tx, id, "dry_run", &outcome.errors)?;
    Ok(DryRun {
        rows_checked: rows.len() as i64,
        would_create: outcome.counts.created,
        would_update: outcome.counts.updated,
        would_skip: outcome.counts.skipped,
        failed: outcome.counts.failed,
        total_rows: import.total_rows,
        errors: outcome.errors.into_iter().take(200).collect(),
    })
}

/// Queues the import's job (once); returns the job id.
pub fn start(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Id> {
    who.require("customers.import")?;
    let import = fetch(tx, who, id)?;
    require(who, kind_of(&import))?;
    if let Some(job) = import.job_id {
        return Ok(job);
    }
    check_mapping(kind_of(&import), &import.headers, &import.mapping)?;
    let job = kernel::jobs::enqueue(tx, IMPORT_JOB, json!({"import_id": id.to_string()}), who.actor())?;
    tx.execute_sql(
        "UPDATE imports SET status = 'queued', job_id = $1, updated_at = $2 WHERE id = $3 AND job_id IS NULL",
        &[job.into(), now().into(), id.into()],
    )?;
    kernel::audit::record(tx, who, "start", "import", Some(id), &Changes::new().created("job_id", &job))?;
    Ok(job)
}

/// How a run goes: rows per batch, and (for tests of resumption) how many batches to do
/// before stopping as if the process had been killed.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub batch_rows: usize,
    pub stop_after_batches: Option<usize>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { batch_rows: BATCH_ROWS, stop_after_batches: None }
    }
}

/// Records an import must create before it refreshes PostgreSQL's statistics.
const STATISTICS_AFTER: i64 = 10_000;

/// Runs (or resumes) an import from its checkpoint to the end, one transaction per batch;
/// `progress` hears after each batch (an error from it stops the run, resumable).
pub fn run(
    db: &Db,
    who: &Principal,
    id: Id,
    options: RunOptions,
    progress: &mut dyn FnMut(&Import) -> Result<(), String>,
) -> Result<Import> {
    let (import, parsed) = db.read_blocking(|tx| -> Result<(Import, Parsed)> {
        let import = fetch(tx, who, id)?;
        require(who, kind_of(&import))?;
        let parsed = parse_stored(tx, &import)?;
        Ok((import, parsed))
    })?;
    if import.status == "done" {
        return Ok(import);
    }
    check_mapping(kind_of(&import), &import.headers, &import.mapping)?;
    let mut plan = db.read_blocking(|tx| Plan::new(tx, who, &import, &parsed.headers))?;
    let start = import.processed_rows.max(0) as usize;
    let batch_rows = options.batch_rows.max(1);
    let headers = &parsed.headers;
    let mut next = start;
    let mut batches = 0;
    // After each committed batch: report progress; says whether the run stops here.
    let mut after_batch = |current: &Import, last: bool| -> Result<bool> {
        progress(current).map_err(Error::Internal)?;
        batches += 1;
        if last && current.created >= STATISTICS_AFTER && db.backend() == kernel::Backend::Postgres {
            // PostgreSQL chooses how to read the search index from its statistics of
            // which terms are common; a large import changes them before autovacuum
            // would notice (docs/search.md).
            db.read_blocking(|tx| tx.batch("ANALYZE search_index"))?;
        }
        Ok(last || options.stop_after_batches.is_some_and(|n| batches >= n))
    };
    if plan.kind != RecordType::Contact {
        // Accounts may name a parent written by an earlier batch of the same file: each
        // batch is checked inside its own write, after the previous one committed.
        let mut rows = parsed.rows().enumerate().skip(start);
        loop {
            let batch: Vec<(usize, RowResult)> = rows.by_ref().take(batch_rows).collect();
            let last = batch.len() < batch_rows;
            let from = next;
            next += batch.len();
            let current = db.write_blocking(|tx| {
                let checked = check_rows(tx, &mut plan, headers, &batch)?;
                let counts = write_batch(tx, &plan, checked)?;
                move_checkpoint(tx, &plan, counts, from, next, last)
            })?;
            if after_batch(&current, last)? {
                return Ok(current);
            }
        }
    }
    // Contacts refer only to records outside the file (accounts, categories), so they are
    // checked on another thread while earlier batches are written (imports/pipeline.rs).
    pipeline::write_contacts(db, plan, &parsed, start, batch_rows, options.stop_after_batches, &mut after_batch)
}

/// Writes a checked batch's records and its bad rows' errors; says what it did.
fn write_batch(tx: &mut Tx<'_>, plan: &Plan<'_>, checked: CheckedBatch) -> Result<Counts> {
    let outcome = apply(tx, plan, checked, false)?;
    store_errors(tx, plan.import_id, "run", &outcome.errors)?;
    Ok(outcome.counts)
}

/// Moves the import's checkpoint from `from` to `next` and adds a batch's counts; the
/// `next_row` guard makes a second runner of the same import fail instead of writing the
/// batch twice.
fn move_checkpoint(
    tx: &mut Tx<'_>,
    plan: &Plan<'_>,
    c: Counts,
    from: usize,
    next: usize,
    last: bool,
) -> Result<Import> {
    let moved = tx.execute_sql(
        "UPDATE imports SET next_row = $1, created = created + $2, updated = updated + $3, \
         skipped = skipped + $4, failed = failed + $5, status = $6, updated_at = $7 \
         WHERE id = $8 AND next_row = $9",
        &[
            (next as i64).into(),
            c.created.into(),
            c.updated.into(),
            c.skipped.into(),
            c.failed.into(),
            (if last { "done" } else { "running" }).into(),
            now().into(),
            plan.import_id.into(),
            (from as i64).into(),
        ],
    )?;
    if moved != 1 {
        return Err(Error::conflict("import", "another run of this import moved its checkpoint"));
    }
    fetch(tx, plan.who, plan.import_id)
}

/// The job handler of [`IMPORT_JOB`]: runs the import as the user who started it.
pub fn import_job(ctx: &JobContext, payload: Json) -> Result<Json, JobError> {
    let Some(id) = payload["import_id"].as_str().and_then(|s| s.parse::<Id>().ok()) else {
        return Err(JobError::permanent(format!("not an import payload: {payload}")));
    };
    let who = ctx
        .db()
        .read_blocking(|tx| -> Result<Principal> {
            let creator: Option<Option<i64>> =
                tx.query_opt_sql("SELECT created_by FROM imports WHERE id = $1", &[id.into()])?;
            let mut who = match creator.ok_or(Error::NotFound("import"))? {
                Some(user) => kernel::identity::principal_for_user(tx, Id(user))?,
                None => Principal::system(Channel::Import),
            };
            who.channel = Channel::Import;
            Ok(who)
        })
        .map_err(|e| match e {
            Error::NotFound(_) => JobError::permanent(e),
            other => JobError::retryable(other),
        })?;
    let done = run(ctx.db(), &who, id, RunOptions::default(), &mut |i| {
        if ctx.stopping() {
            return Err("the worker is stopping".into());
        }
        ctx.progress(i.progress, &format!("{} of {} rows", i.processed_rows, i.total_rows)).map_err(|e| e.to_string())
    });
    match done {
        Ok(i) => Ok(json!({"import_id": id.to_string(), "created": i.created, "updated": i.updated,
                          "skipped": i.skipped, "failed": i.failed})),
        Err(e @ (Error::Validation(_) | Error::Forbidden(_) | Error::NotFound(_))) => {
            let _ = ctx.db().write_blocking(|tx| {
                tx.execute_sql(
                    "UPDATE imports SET status = 'failed', updated_at = $1 WHERE id = $2",
                    &[now().into(), id.into()],
                )
            });
            Err(JobError::permanent(e))
        }
        Err(e) => Err(JobError::retryable(e)),
    }
}

// ---------------------------------------------------------------------------------------
// Error report and saved mappings

struct ErrorRow {
    row: i64,
    column: String,
    message: String,
    original: Json,
}

impl FromRow for ErrorRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(ErrorRow {
            row: row.get("row_no")?,
            column: row.get("col")?,
            message: row.get("message")?,
            original: row.get("original")?,
        })
    }
}

/// The error report as CSV (UTF-8 with BOM): row, column, message, then the row's
/// original values under the file's headers. The run's report once the import started,
/// else the last dry run's.
pub fn errors_csv(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Vec<u8>> {
    who.require("customers.import")?;
    let import = fetch(tx, who, id)?;
    let started = import.job_id.is_some() || import.processed_rows > 0 || import.status != "ready";
    let phase = if started { "run" } else { "dry_run" };
    let rows: Vec<ErrorRow> = tx.query_sql(
        "SELECT row_no, col, message, original FROM import_errors WHERE import_id = $1 AND phase = $2 \
         ORDER BY row_no, seq",
        &[id.into(), phase.into()],
    )?;
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let mut header = vec!["row".to_owned(), "column".to_owned(), "message".to_owned()];
        header.extend(import.headers.iter().cloned());
        w.write_record(&header).map_err(|e| Error::Internal(e.to_string()))?;
        for r in rows {
            let mut record = vec![r.row.to_string(), r.column, r.message];
            let original: Vec<String> = serde_json::from_value(r.original).unwrap_or_default();
            record.extend(original);
            record.resize(header.len().max(record.len()), String::new());
            w.write_record(&record).map_err(|e| Error::Internal(e.to_string()))?;
        }
        w.flush().map_err(|e| Error::Internal(e.to_string()))?;
    }
    Ok(out)
}

/// A mapping saved for later imports.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SavedMapping {
    pub id: Id,
    pub name: String,
    pub record_type: String,
    /// Header → field, as in [`Mapping::columns`].
    pub columns: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

impl FromRow for SavedMapping {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let columns: Json = row.get("columns")?;
        Ok(SavedMapping {
            id: row.get("id")?,
            name: row.get("name")?,
            record_type: row.get("record_type")?,
            columns: serde_json::from_value(columns)
                .map_err(|e| DbError::Column { column: "columns".into(), message: e.to_string() })?,
            created_at: row.get("created_at")?,
        })
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMapping {
    pub name: String,
    /// `contact` or `account`.
    pub record_type: String,
    pub columns: BTreeMap<String, String>,
}

pub fn list_mappings(tx: &mut Tx<'_>, who: &Principal, record_type: Option<&str>) -> Result<Vec<SavedMapping>> {
    who.require("customers.import")?;
    let sql = "SELECT id, name, record_type, columns, created_at FROM import_mappings";
    Ok(match record_type {
        Some(t) => tx.query_sql(&format!("{sql} WHERE record_type = $1 ORDER BY name"), &[t.into()])?,
        None => tx.query_sql(&format!("{sql} ORDER BY record_type, name"), &[])?,
    })
}

pub fn create_mapping(tx: &mut Tx<'_>, who: &Principal, input: NewMapping) -> Result<SavedMapping> {
    who.require("customers.import")?;
    let mut v = Validator::new();
    let name = v.check("name", kernel::values::name(&input.name, 200));
    let kind = v.check("record_type", RecordType::parse(&input.record_type));
    if let Some(kind) = kind {
        for (header, target) in &input.columns {
            let t = target.as_str();
            let ok = t == "ignore"
                || targets(kind).contains(&t)
                || t.strip_prefix("custom.").is_some_and(|k| !k.is_empty() && !k.contains('.'));
            if !ok {
                v.add(&format!("columns.{header}"), format!("{t:?} is not a field, custom.<key> or ignore"));
            }
        }
    }
    v.finish()?;
    let (Some(name), Some(kind)) = (name, kind) else { return Err(Error::field("name", "is required")) };
    let id = Id::new();
    let at = now();
    tx.execute_sql(
        "INSERT INTO import_mappings (id, name, record_type, columns, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            id.into(),
            name.clone().into(),
            kind.as_str().into(),
            Value::Json(Some(Box::new(json!(input.columns)))),
            Value::BigInt(who.actor().map(Id::get)),
            at.into(),
        ],
    )
    .map_err(|e| match e.unique_violation() {
        Some(_) => Error::conflict("name", "a mapping with this name exists"),
        None => Error::from(e),
    })?;
    kernel::audit::record(tx, who, "create", "import_mapping", Some(id), &Changes::new().created("name", &name))?;
    Ok(SavedMapping { id, name, record_type: kind.as_str().to_owned(), columns: input.columns, created_at: at })
}
