//! Exports of account and contact lists (with the list's filters) to CSV (UTF-8 with BOM,
//! so Excel opens it), XLSX and, for contacts, vCard 3.0. Rows are read page by page
//! through `contacts::list` / `accounts::list`, never all at once; the CSV and vCard output
//! round-trips through the import.
use std::collections::BTreeSet;
use std::io::Write;

use kernel::paging::{Cursor, PageRequest};
use kernel::{Error, Id, Principal, Result, Tx};
use rust_xlsxwriter::Workbook;
use serde_json::Value as Json;

use crate::accounts::{self, Account, AccountFilter};
use crate::contacts::{self, Contact, ContactFilter};
use crate::record::RecordType;

/// Rows read per page.
const PAGE: u32 = 500;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Xlsx,
    Vcard,
}

impl ExportFormat {
    /// `csv`, `xlsx` or `vcf` (also from a file name's extension).
    pub fn parse(s: &str) -> Result<ExportFormat> {
        let ext = s.rsplit('.').next().unwrap_or(s).trim().to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "xlsx" => Ok(ExportFormat::Xlsx),
            "vcf" | "vcard" => Ok(ExportFormat::Vcard),
            _ => Err(Error::field("format", "must be csv, xlsx or vcf")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ExportFormat::Vcard => "text/vcard; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Vcard => "vcf",
        }
    }
}

/// The custom field keys of a record type (every category), in definition order.
fn custom_keys(tx: &mut Tx<'_>, kind: RecordType) -> Result<Vec<String>> {
    let keys: Vec<String> = tx.query_sql(
        "SELECT key FROM custom_fields WHERE record_type = $1 AND deleted_at IS NULL ORDER BY id",
        &[kind.as_str().into()],
    )?;
    let mut seen = BTreeSet::new();
    Ok(keys.into_iter().filter(|k| seen.insert(k.clone())).collect())
}

fn custom_text(value: Option<&Json>) -> String {
    match value {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(items)) => items.iter().map(|i| custom_text(Some(i))).collect::<Vec<_>>().join(";"),
        Some(Json::Object(o)) if o.contains_key("amount") => format!(
            "{} {}",
            o.get("amount").and_then(Json::as_str).unwrap_or_default(),
            o.get("currency").and_then(Json::as_str).unwrap_or_default()
        ),
        Some(other) => other.to_string(),
    }
}

/// Where rows go: a CSV writer or an XLSX sheet.
enum Sink<'w> {
    Csv(Box<csv::Writer<&'w mut Vec<u8>>>),
    Xlsx(Box<Workbook>, u32),
}

impl Sink<'_> {
    fn row(&mut self, cells: &[String]) -> Result<()> {
        match self {
            Sink::Csv(w) => w.write_record(cells).map_err(|e| Error::Internal(e.to_string())),
            Sink::Xlsx(book, row) => {
                let sheet = book.worksheet_from_index(0).map_err(|e| Error::Internal(e.to_string()))?;
                for (col, text) in cells.iter().enumerate() {
                    if !text.is_empty() {
                        sheet.write_string(*row, col as u16, text).map_err(|e| Error::Internal(e.to_string()))?;
                    }
                }
                *row += 1;
                Ok(())
            }
        }
    }
}

fn sink(format: ExportFormat, out: &mut Vec<u8>) -> Sink<'_> {
    match format {
        ExportFormat::Xlsx => {
            // Rows stream to a temporary file as they are written (they are, in order), so
            // a large export holds the finished file in memory, not every cell.
            let mut book = Workbook::new();
            book.add_worksheet_with_constant_memory();
            Sink::Xlsx(Box::new(book), 0)
        }
        _ => {
            out.extend_from_slice(b"\xEF\xBB\xBF");
            Sink::Csv(Box::new(csv::Writer::from_writer(out)))
        }
    }
}

fn finish(sink: Sink<'_>) -> Result<Option<Vec<u8>>> {
    match sink {
        Sink::Csv(mut w) => {
            w.flush().map_err(|e| Error::Internal(e.to_string()))?;
            Ok(None)
        }
        Sink::Xlsx(mut book, _) => Ok(Some(book.save_to_buffer().map_err(|e| Error::Internal(e.to_string()))?)),
    }
}

fn next_page(cursor: Option<String>) -> Result<Option<PageRequest>> {
    Ok(match cursor {
        Some(c) => Some(PageRequest { limit: PAGE, cursor: Some(Cursor::decode(&c)?) }),
        None => None,
    })
}

/// The names of the accounts `ids` refers to (one query per page).
fn account_names(tx: &mut Tx<'_>, who: &Principal, ids: &[Id]) -> Result<Vec<(Id, String)>> {
    let mut out = Vec::new();
    for id in ids {
        if out.iter().any(|(i, _)| i == id) {
            continue;
        }
        if let Ok(a) = accounts::fetch_in_scope(tx, who, *id) {
            out.push((a.id, a.name));
        }
    }
    Ok(out)
}

/// Writes the contacts `filter` selects (those the caller sees) to `out`.
/// Returns the number of contacts written.
pub fn contacts(
    tx: &mut Tx<'_>,
    who: &Principal,
    filter: &ContactFilter,
    format: ExportFormat,
    out: &mut Vec<u8>,
) -> Result<u64> {
    who.require("customers.export")?;
    who.require("customers.contacts.read")?;
    let keys = custom_keys(tx, RecordType::Contact)?;
    let mut count = 0;
    let mut page = Some(PageRequest { limit: PAGE, cursor: None });
    if format == ExportFormat::Vcard {
        while let Some(p) = page {
            let result = contacts::list(tx, who, filter, &p)?;
            let ids: Vec<Id> = result.items.iter().filter_map(|c| c.account_id).collect();
            let names = account_names(tx, who, &ids)?;
            for c in &result.items {
                let org = c.account_id.and_then(|a| names.iter().find(|(i, _)| *i == a)).map(|(_, n)| n.as_str());
                vcard(out, c, org);
                count += 1;
            }
            page = next_page(result.next_cursor)?;
        }
        return Ok(count);
    }
    let columns =
        ["id", "name", "email", "phone", "account_id", "account", "owner_id", "branch_id", "created_at", "updated_at"];
    table(format, out, &columns, &keys, |p| {
        let result = contacts::list(tx, who, filter, p)?;
        let ids: Vec<Id> = result.items.iter().filter_map(|c| c.account_id).collect();
        let names = account_names(tx, who, &ids)?;
        let rows = result.items.iter().map(|c| {
            let mut row = vec![
                c.id.to_string(),
                c.name.clone(),
                c.email.clone().unwrap_or_default(),
                c.phone_raw.clone().or_else(|| c.phone.clone()).unwrap_or_default(),
                c.account_id.map(|a| a.to_string()).unwrap_or_default(),
                c.account_id
                    .and_then(|a| names.iter().find(|(i, _)| *i == a))
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
                c.owner_id.map(|o| o.to_string()).unwrap_or_default(),
                c.branch_id.to_string(),
                c.created_at.to_rfc3339(),
                c.updated_at.to_rfc3339(),
            ];
            row.extend(keys.iter().map(|k| custom_text(c.custom.get(k))));
            row
        });
        Ok((rows.collect(), result.next_cursor))
    })
}

/// Writes the accounts `filter` selects (those the caller sees) to `out` (CSV or XLSX).
pub fn accounts(
    tx: &mut Tx<'_>,
    who: &Principal,
    filter: &AccountFilter,
    format: ExportFormat,
    out: &mut Vec<u8>,
) -> Result<u64> {
    who.require("customers.export")?;
    who.require("customers.accounts.read")?;
    if format == ExportFormat::Vcard {
        return Err(Error::field("format", "accounts export as csv or xlsx"));
    }
    let keys = custom_keys(tx, RecordType::Account)?;
    let columns = [
        "id",
        "name",
        "external_id",
        "email",
        "phone",
        "website",
        "status",
        "category_id",
        "parent_id",
        "owner_id",
        "branch_id",
        "created_at",
        "updated_at",
    ];
    table(format, out, &columns, &keys, |p| {
        let result = accounts::list(tx, who, filter, p)?;
        Ok((result.items.iter().map(|a| account_row(a, &keys)).collect(), result.next_cursor))
    })
}

/// The rows of one page of a list and the cursor of the next page, if any.
type PageRows = (Vec<Vec<String>>, Option<String>);

/// Writes a CSV or XLSX table to `out`: the header (`columns`, then `custom.<key>` for
/// each of `keys`), then the rows `page_rows` gives for each page of the list until there
/// is no next page. Returns the number of rows written.
fn table(
    format: ExportFormat,
    out: &mut Vec<u8>,
    columns: &[&str],
    keys: &[String],
    mut page_rows: impl FnMut(&PageRequest) -> Result<PageRows>,
) -> Result<u64> {
    let mut count = 0;
    let mut page = Some(PageRequest { limit: PAGE, cursor: None });
    let xlsx_out = {
        let mut s = sink(format, out);
        let mut header: Vec<String> = columns.iter().map(|s| (*s).to_owned()).collect();
        header.extend(keys.iter().map(|k| format!("custom.{k}")));
        s.row(&header)?;
        while let Some(p) = page {
            let (rows, next) = page_rows(&p)?;
            for row in &rows {
                s.row(row)?;
                count += 1;
            }
            page = next_page(next)?;
        }
        finish(s)?
    };
    if let Some(bytes) = xlsx_out {
        out.extend(bytes);
    }
    Ok(count)
}

fn account_row(a: &Account, keys: &[String]) -> Vec<String> {
    let id = |i: Option<Id>| i.map(|i| i.to_string()).unwrap_or_default();
    let mut row = vec![
        a.id.to_string(),
        a.name.clone(),
        a.external_id.clone().unwrap_or_default(),
        a.email.clone().unwrap_or_default(),
        a.phone_raw.clone().or_else(|| a.phone.clone()).unwrap_or_default(),
        a.website.clone().unwrap_or_default(),
        a.status.clone(),
        id(a.category_id),
        id(a.parent_id),
        id(a.owner_id),
        a.branch_id.to_string(),
        a.created_at.to_rfc3339(),
        a.updated_at.to_rfc3339(),
    ];
    row.extend(keys.iter().map(|k| custom_text(a.custom.get(k))));
    row
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// One vCard 3.0: FN, N (the whole name as the family name: names are not split), TEL,
/// EMAIL, ORG.
fn vcard(out: &mut Vec<u8>, c: &Contact, org: Option<&str>) {
    let mut card = String::from("BEGIN:VCARD\r\nVERSION:3.0\r\n");
    let name = escape(&c.name);
    card.push_str(&format!("FN:{name}\r\nN:{name};;;;\r\n"));
    if let Some(p) = c.phone.as_deref() {
        card.push_str(&format!("TEL;TYPE=CELL:{}\r\n", escape(p)));
    }
    if let Some(e) = c.email.as_deref() {
        card.push_str(&format!("EMAIL;TYPE=INTERNET:{}\r\n", escape(e)));
    }
    if let Some(o) = org {
        card.push_str(&format!("ORG:{}\r\n", escape(o)));
    }
    card.push_str("END:VCARD\r\n");
    let _ = out.write_all(card.as_bytes());
}
