//! Reading an uploaded file: which format (CSV, XLSX, vCard) and which text encoding it
//! is, its header row and its data rows. A file that is none of these, empty, binary or
//! too large is refused here, before anything is written.
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::{Datelike, NaiveDate};
use encoding_rs::Encoding;
use serde::Serialize;

/// The largest file an import accepts.
pub const MAX_BYTES: usize = 200 * 1024 * 1024;

/// What kind of file an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Xlsx,
    Vcard,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Vcard => "vcard",
        }
    }
}

/// A file that cannot be imported at all, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    Empty,
    TooLarge(usize),
    Binary,
    WrongType(String),
    Unreadable(String),
    NoRows,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Empty => write!(f, "the file is empty"),
            Unusable::TooLarge(n) => write!(f, "the file is {n} bytes; at most 200 MB can be imported"),
            Unusable::Binary => write!(f, "the file is binary, not CSV, XLSX or vCard text"),
            Unusable::WrongType(what) => write!(f, "the file is not CSV, XLSX or vCard ({what})"),
            Unusable::Unreadable(why) => write!(f, "the file cannot be read: {why}"),
            Unusable::NoRows => write!(f, "the file has a header row but no data rows"),
        }
    }
}

/// A file read far enough to know its shape; rows are produced on demand by [`Parsed::rows`].
pub struct Parsed {
    pub format: Format,
    /// `UTF-8`, `UTF-16LE`, `GBK`, `EUC-KR` (CP949), … (`binary` for XLSX).
    pub encoding: &'static str,
    pub headers: Vec<String>,
    body: Body,
}

enum Body {
    /// Decoded CSV text (header included) and its delimiter.
    Csv(String, u8),
    /// Rows already split (XLSX, vCard), without the header.
    Table(Vec<Vec<String>>),
}

/// One data row: its fields, or why the row itself is broken (ragged).
pub type RowResult = Result<Vec<String>, String>;

impl Parsed {
    /// The data rows in order, the header excluded.
    pub fn rows(&self) -> Box<dyn Iterator<Item = RowResult> + '_> {
        let width = self.headers.len();
        match &self.body {
            Body::Table(rows) => Box::new(rows.iter().map(|r| Ok(r.clone()))),
            Body::Csv(text, delimiter) => {
                let reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(true)
                    .delimiter(*delimiter)
                    .from_reader(text.as_bytes());
                Box::new(reader.into_records().filter_map(move |r| match r {
                    Ok(record) if record.iter().all(|f| f.trim().is_empty()) => None,
                    Ok(record) if record.len() != width => {
                        Some(Err(format!("the row has {} columns but the header has {width}", record.len())))
                    }
                    Ok(record) => Some(Ok(record.iter().map(str::to_owned).collect())),
                    Err(e) => Some(Err(format!("the row cannot be read: {e}"))),
                }))
            }
        }
    }
}

fn extension(filename: &str) -> String {
    filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

/// Reads `bytes` (named `filename`) as CSV, XLSX or vCard.
pub fn parse(filename: &str, bytes: &[u8]) -> Result<Parsed, Unusable> {
    if bytes.len() > MAX_BYTES {
        return Err(Unusable::TooLarge(bytes.len()));
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) || bytes == b"\xEF\xBB\xBF" {
        return Err(Unusable::Empty);
    }
    let ext = extension(filename);
    if bytes.starts_with(b"PK\x03\x04") {
        return parse_xlsx(bytes);
    }
    if matches!(ext.as_str(), "xlsx" | "xlsm" | "xls") {
        return Err(Unusable::WrongType(format!("a .{ext} file that is not an XLSX workbook")));
    }
    if !matches!(ext.as_str(), "" | "csv" | "tsv" | "txt" | "vcf" | "vcard") {
        return Err(Unusable::WrongType(format!("a .{ext} file")));
    }
    let (text, encoding) = decode(bytes)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() {
        return Err(Unusable::Empty);
    }
    let parsed = if ext == "vcf"
        || ext == "vcard"
        || text.trim_start().get(..11).is_some_and(|s| s.eq_ignore_ascii_case("BEGIN:VCARD"))
    {
        parse_vcard(text, encoding)?
    } else {
        parse_csv(text.to_owned(), encoding)?
    };
    if parsed.rows().next().is_none() {
        return Err(Unusable::NoRows);
    }
    Ok(parsed)
}

/// Text in UTF-8 (with or without BOM), UTF-16 with BOM, or a legacy encoding guessed by
/// chardetng (GBK/GB18030, CP949/EUC-KR, Big5, Shift_JIS, windows-1252, …).
fn decode(bytes: &[u8]) -> Result<(String, &'static str), Unusable> {
    if let Some((encoding, bom)) = Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        if had_errors {
            return Err(Unusable::Unreadable(format!("it is not valid {}", encoding.name())));
        }
        check_text(&text)?;
        return Ok((text.into_owned(), encoding.name()));
    }
    if bytes.contains(&0) {
        return Err(Unusable::Binary);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        check_text(text)?;
        return Ok((text.to_owned(), "UTF-8"));
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(bytes, true);
    let encoding = detector.guess(None, false);
    let (text, _, had_errors) = encoding.decode(bytes);
    if had_errors {
        return Err(Unusable::Binary);
    }
    check_text(&text)?;
    // encoding_rs decodes GB18030's four-byte sequences with its GBK decoder and CP949
    // with its EUC-KR one.
    Ok((text.into_owned(), encoding.name()))
}

/// Text with many control characters is a binary file that happened to decode.
fn check_text(text: &str) -> Result<(), Unusable> {
    let sample: Vec<char> = text.chars().take(10_000).collect();
    let control = sample.iter().filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}')).count();
    if control * 50 > sample.len().max(1) { Err(Unusable::Binary) } else { Ok(()) }
}

fn parse_csv(text: String, encoding: &'static str) -> Result<Parsed, Unusable> {
    let first = text.lines().next().unwrap_or_default();
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| (first.bytes().filter(|b| b == d).count(), *d == b','))
        .unwrap_or(b',');
    let mut reader =
        csv::ReaderBuilder::new().has_headers(true).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Unusable::Unreadable(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(Unusable::Empty);
    }
    Ok(Parsed { format: Format::Csv, encoding, headers, body: Body::Csv(text, delimiter) })
}

fn parse_xlsx(bytes: &[u8]) -> Result<Parsed, Unusable> {
    let mut book =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| Unusable::Unreadable(format!("not an XLSX workbook: {e}")))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| Unusable::Unreadable("the workbook has no sheet".into()))?
        .map_err(|e| Unusable::Unreadable(e.to_string()))?;
    let mut rows = range.rows().map(|r| r.iter().map(cell_text).collect::<Vec<String>>());
    let headers: Vec<String> = rows.next().ok_or(Unusable::Empty)?.into_iter().map(|h| h.trim().to_owned()).collect();
    if headers.iter().all(String::is_empty) {
        return Err(Unusable::Empty);
    }
    let body: Vec<Vec<String>> = rows.filter(|r| r.iter().any(|c| !c.trim().is_empty())).collect();
    if body.is_empty() {
        return Err(Unusable::NoRows);
    }
    Ok(Parsed { format: Format::Xlsx, encoding: "binary", headers, body: Body::Table(body) })
}

/// A cell as text; dates (Excel serial numbers in a date format) as `YYYY-MM-DD`.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(n) => n.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => excel_date(d.as_f64()).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// An Excel serial date (days since 1899-12-30, the 1900 leap-year bug included).
pub fn excel_date(serial: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(serial.trunc() as u64))
}

/// The columns vCards are read into.
pub const VCARD_COLUMNS: [&str; 4] = ["name", "email", "phone", "account"];

fn parse_vcard(text: &str, encoding: &'static str) -> Result<Parsed, Unusable> {
    // Unfold: a line starting with a space or tab continues the previous one.
    let mut lines: Vec<String> = Vec::new();
    for raw in text.lines() {
        match raw.strip_prefix(' ').or_else(|| raw.strip_prefix('\t')) {
            Some(cont) if !lines.is_empty() => {
                if let Some(last) = lines.last_mut() {
                    last.push_str(cont);
                }
            }
            _ => lines.push(raw.to_owned()),
        }
    }
    let mut rows = Vec::new();
    let mut card: Option<[String; 4]> = None;
    let mut given_family: Option<(String, String)> = None;
    for line in &lines {
        let Some((key, value)) = line.split_once(':') else { continue };
        let mut parts = key.split(';');
        let name = parts.next().unwrap_or_default();
        let name = name.rsplit('.').next().unwrap_or(name).to_ascii_uppercase();
        match name.as_str() {
            "BEGIN" if value.trim().eq_ignore_ascii_case("VCARD") => {
                card = Some(Default::default());
                given_family = None;
            }
            "END" if value.trim().eq_ignore_ascii_case("VCARD") => {
                if let Some(mut c) = card.take() {
                    if c[0].is_empty()
                        && let Some((given, family)) = given_family.take()
                    {
                        c[0] = join_name(&given, &family);
                    }
                    rows.push(c.to_vec());
                }
            }
            _ => {
                let Some(c) = card.as_mut() else { continue };
                let value = unescape(value.trim());
                let slot = match name.as_str() {
                    "FN" => 0,
                    "EMAIL" => 1,
                    "TEL" => 2,
                    "ORG" => 3,
                    "N" => {
                        let mut n = value.split(';');
                        let family = n.next().unwrap_or_default().trim().to_owned();
                        let given = n.next().unwrap_or_default().trim().to_owned();
                        given_family = Some((given, family));
                        continue;
                    }
                    _ => continue,
                };
                if c[slot].is_empty() {
                    let v = match slot {
                        2 => value.strip_prefix("tel:").unwrap_or(&value).to_owned(),
                        1 => value.strip_prefix("mailto:").unwrap_or(&value).to_owned(),
                        3 => value.split(';').next().unwrap_or_default().trim().to_owned(),
                        _ => value,
                    };
                    c[slot] = v;
                }
            }
        }
    }
    if rows.is_empty() {
        return Err(Unusable::Unreadable("no BEGIN:VCARD … END:VCARD card in it".into()));
    }
    Ok(Parsed {
        format: Format::Vcard,
        encoding,
        headers: VCARD_COLUMNS.iter().map(|s| (*s).to_owned()).collect(),
        body: Body::Table(rows),
    })
}

fn is_cjk(s: &str) -> bool {
    s.chars().any(|c| matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x9FFF | 0xAC00..=0xD7AF | 0x1100..=0x11FF))
}

/// A name from vCard's N: family first without a space in Chinese, Japanese and Korean.
fn join_name(given: &str, family: &str) -> String {
    if is_cjk(given) || is_cjk(family) {
        format!("{family}{given}")
    } else {
        format!("{given} {family}").trim().to_owned()
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How a date column is written when a date is ambiguous (`05/03/2024`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    DayMonth,
    MonthDay,
}

/// Reads a date in the common forms: `2024-03-05`, `2024/3/5`, `2024.03.05`,
/// `2024年3月5日`, `2024-03-05T10:00:00…`, and `05/03/2024` in the declared `order`
/// (without one, an ambiguous day/month is refused).
pub fn parse_date(text: &str, order: Option<DateOrder>) -> Result<NaiveDate, String> {
    let s = text.trim();
    let bad = || format!("{s:?} is not a date (e.g. 2024-03-05)");
    let parts: Vec<&str> =
        s.split(['-', '/', '.', '年', '月', '日', 'T', ' ']).filter(|p| !p.is_empty()).take(3).collect();
    if parts.len() < 3 || parts.iter().any(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let n: Vec<u32> = parts.iter().map(|p| p.parse().unwrap_or(0)).collect();
    let (y, m, d) = if parts[0].len() == 4 {
        (n[0], n[1], n[2])
    } else if parts[2].len() == 4 {
        match (order, n[0] > 12, n[1] > 12) {
            (_, true, false) => (n[2], n[1], n[0]),
            (_, false, true) => (n[2], n[0], n[1]),
            (Some(DateOrder::DayMonth), ..) => (n[2], n[1], n[0]),
            (Some(DateOrder::MonthDay), ..) => (n[2], n[0], n[1]),
            (None, ..) if n[0] == n[1] => (n[2], n[0], n[1]),
            (None, ..) => return Err(format!("{s:?} is ambiguous (day/month or month/day?): set date_format")),
        }
    } else {
        return Err(bad());
    };
    let date = NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(bad)?;
    if date.year() < 1000 {
        return Err(bad());
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
        for s in ["2024-03-05", "2024/3/5", "2024.03.05", "2024年3月5日", "2024-03-05T10:00:00Z"] {
            assert_eq!(parse_date(s, None).unwrap(), d, "{s}");
        }
        assert!(parse_date("05/03/2024", None).unwrap_err().contains("ambiguous"));
        assert_eq!(parse_date("05/03/2024", Some(DateOrder::DayMonth)).unwrap(), d);
        assert_eq!(parse_date("03/05/2024", Some(DateOrder::MonthDay)).unwrap(), d);
        assert_eq!(parse_date("25/03/2024", None).unwrap(), NaiveDate::from_ymd_opt(2024, 3, 25).unwrap());
        assert!(parse_date("2024-02-30", None).is_err());
        assert!(parse_date("soon", None).is_err());
        assert_eq!(excel_date(45356.0), Some(d));
    }

    #[test]
    fn vcard_names_and_folding() {
        let text = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:张;伟;;;\r\nTEL;TYPE=CELL:138 0013\r\n 8000\r\nEND:VCARD\r\n";
        let p = parse("a.vcf", text.as_bytes()).unwrap();
        let rows: Vec<_> = p.rows().collect();
        assert_eq!(rows, vec![Ok(vec!["张伟".to_owned(), String::new(), "138 00138000".to_owned(), String::new()])]);
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("a.csv", b"").err(), Some(Unusable::Empty));
        assert_eq!(parse("a.csv", b"name,email\n").err(), Some(Unusable::NoRows));
        assert_eq!(parse("a.csv", &[0u8, 159, 146, 150, 1, 2, 3, 0]).err(), Some(Unusable::Binary));
        assert!(matches!(parse("a.pdf", b"%PDF-1.4").err(), Some(Unusable::WrongType(_))));
    }
}
