//! Files attached to a record of any type: receipts of expense claims now, tickets and
//! quotes later. This module stores, lists, returns and soft-deletes them; it does not
//! decide who may. The area that owns the record checks that (read the record → list and
//! download; edit it → add and delete) and then calls in here, in the same transaction.
//!
//! * At most [`MAX_BYTES`] per file; an empty file is refused.
//! * `content_type` is sniffed from the bytes ([`sniff`]): images and PDF are recognised,
//!   anything else is stored as `application/octet-stream`. What the client claimed is
//!   never trusted, so a file cannot pass itself off as an image (or as HTML).
//! * The file name is cleaned ([`clean_file_name`]): no folders, control or reserved
//!   characters, at most 200 characters; Chinese and Korean names stay as they are.
//! * Adding and deleting are audited on the record the file belongs to (`attach`,
//!   `detach`), so the record's history shows them.
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sha2::Digest;

use crate::audit::{self, Changes};
use crate::db::{DbError, FromRow, Row, Tx};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::principal::Principal;

/// The most one file may hold: 10 MB.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

/// The longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 200;

/// What the content is when [`sniff`] does not recognise it.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// One stored file, without its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: Id,
    /// The kind of record it belongs to, e.g. `expense_claim`.
    pub record_type: String,
    pub record_id: Id,
    pub file_name: String,
    /// Recognised from the bytes: `image/png`, `image/jpeg`, `image/gif`, `image/webp`,
    /// `image/heic`, `application/pdf`, else `application/octet-stream`.
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub uploaded_by: Option<Id>,
    pub created_at: DateTime<Utc>,
}

impl Attachment {
    /// An image a browser can show inline (a thumbnail on the record's page).
    pub fn is_image(&self) -> bool {
        matches!(self.content_type.as_str(), "image/png" | "image/jpeg" | "image/gif" | "image/webp")
    }

    pub fn is_pdf(&self) -> bool {
        self.content_type == "application/pdf"
    }
}

impl FromRow for Attachment {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Attachment {
            id: row.get("id")?,
            record_type: row.get("record_type")?,
            record_id: row.get("record_id")?,
            file_name: row.get("file_name")?,
            content_type: row.get("content_type")?,
            size_bytes: row.get("size_bytes")?,
            sha256: row.get("sha256")?,
            uploaded_by: row.get::<Option<i64>>("uploaded_by")?.map(Id),
            created_at: row.get("created_at")?,
        })
    }
}

/// A file with its bytes.
struct WithContent(Attachment, Vec<u8>);

impl FromRow for WithContent {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(WithContent(Attachment::from_row(row)?, row.get("content")?))
    }
}

const COLUMNS: &str =
    "id, record_type, record_id, file_name, content_type, size_bytes, sha256, uploaded_by, created_at";

/// The type of `bytes` when they are an image or a PDF, from their first bytes.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let at = |from: usize, to: usize| bytes.get(from..to);
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.starts_with(b"RIFF") && at(8, 12) == Some(b"WEBP") {
        Some("image/webp")
    } else if at(4, 8) == Some(b"ftyp")
        && matches!(at(8, 12), Some(b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1"))
    {
        Some("image/heic")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// The name a file is stored under: its last path part, without control characters or
/// characters file systems reserve (`\ / : * ? " < > |`), spaces and dots trimmed at the
/// ends, at most 200 characters (the extension kept). Empty → `None`.
pub fn clean_file_name(input: &str) -> Option<String> {
    let last = input.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') { ' ' } else { c })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let name = words.join(" ");
    let name = name.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if name.is_empty() {
        return None;
    }
    if name.chars().count() <= MAX_NAME_CHARS {
        return Some(name.to_owned());
    }
    // Too long: keep a short extension, cut the stem.
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && e.chars().count() <= 10 => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    let keep = MAX_NAME_CHARS - ext.chars().count();
    Some(format!("{}{ext}", stem.chars().take(keep).collect::<String>().trim_end()))
}

fn default_name(content_type: &str) -> String {
    let ext = match content_type {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/gif" => ".gif",
        "image/webp" => ".webp",
        "image/heic" => ".heic",
        "application/pdf" => ".pdf",
        _ => "",
    };
    format!("attachment{ext}")
}

/// Checks a file before it is stored: not empty, not over [`MAX_BYTES`]. Each refusal
/// names the field `file`.
pub fn check_size(bytes: &[u8]) -> Result<()> {
    if bytes.is_empty() {
        return Err(Error::field("file", "is empty; choose a file with something in it"));
    }
    if bytes.len() > MAX_BYTES {
        return Err(Error::field(
            "file",
            format!("is {} bytes, more than the 10 MB (10,485,760 bytes) a file may have", bytes.len()),
        ));
    }
    Ok(())
}

/// Stores `bytes` as a file of record `record_type`/`record_id` and audits it on that
/// record. The caller has checked that `who` may change the record.
pub fn add(
    tx: &mut Tx<'_>,
    who: &Principal,
    record_type: &str,
    record_id: Id,
    file_name: &str,
    bytes: &[u8],
) -> Result<Attachment> {
    check_size(bytes)?;
    let content_type = sniff(bytes).unwrap_or(OCTET_STREAM);
    let file_name = clean_file_name(file_name).unwrap_or_else(|| default_name(content_type));
    let sha256: String = sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    let attachment = Attachment {
        id: Id::new(),
        record_type: record_type.to_owned(),
        record_id,
        file_name,
        content_type: content_type.to_owned(),
        size_bytes: bytes.len() as i64,
        sha256,
        uploaded_by: who.actor(),
        created_at: Utc::now().trunc_subsecs(6),
    };
    tx.execute_sql(
        &format!("INSERT INTO attachments ({COLUMNS}, content) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        &[
            attachment.id.into(),
            attachment.record_type.clone().into(),
            record_id.into(),
            attachment.file_name.clone().into(),
            attachment.content_type.clone().into(),
            attachment.size_bytes.into(),
            attachment.sha256.clone().into(),
            attachment.uploaded_by.map(Id::get).into(),
            attachment.created_at.into(),
            sea_query::Value::Bytes(Some(bytes.to_vec())),
        ],
    )?;
    let changes = Changes::new()
        .created("attachment_id", &attachment.id)
        .created("file_name", &attachment.file_name)
        .created("content_type", &attachment.content_type)
        .created("size_bytes", &attachment.size_bytes)
        .created("sha256", &attachment.sha256);
    audit::record(tx, who, "attach", record_type, Some(record_id), &changes)?;
    Ok(attachment)
}

/// The files of one record, oldest first (deleted ones left out).
pub fn list(tx: &mut Tx<'_>, record_type: &str, record_id: Id) -> Result<Vec<Attachment>> {
    Ok(tx.query_sql(
        &format!(
            "SELECT {COLUMNS} FROM attachments WHERE record_type = $1 AND record_id = $2 AND deleted_at IS NULL \
             ORDER BY id"
        ),
        &[record_type.into(), record_id.into()],
    )?)
}

/// One file's description (not deleted), so its owner can check access to its record.
pub fn find(tx: &mut Tx<'_>, id: Id) -> Result<Option<Attachment>> {
    Ok(tx.query_opt_sql(
        &format!("SELECT {COLUMNS} FROM attachments WHERE id = $1 AND deleted_at IS NULL"),
        &[id.into()],
    )?)
}

/// One file with its bytes (not deleted).
pub fn content(tx: &mut Tx<'_>, id: Id) -> Result<Option<(Attachment, Vec<u8>)>> {
    let found: Option<WithContent> = tx.query_opt_sql(
        &format!("SELECT {COLUMNS}, content FROM attachments WHERE id = $1 AND deleted_at IS NULL"),
        &[id.into()],
    )?;
    Ok(found.map(|WithContent(a, bytes)| (a, bytes)))
}

/// Soft-deletes a file and audits it on its record. The caller has checked that `who`
/// may change the record. Deleting a deleted file is a 404.
pub fn delete(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Attachment> {
    let attachment = find(tx, id)?.ok_or(Error::NotFound("attachment"))?;
    let n = tx.execute_sql(
        "UPDATE attachments SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
        &[Utc::now().trunc_subsecs(6).into(), id.into()],
    )?;
    if n == 0 {
        return Err(Error::NotFound("attachment"));
    }
    let changes = Changes::new().field("attachment_id", &Some(attachment.id), &None).field(
        "file_name",
        &Some(attachment.file_name.clone()),
        &None,
    );
    audit::record(tx, who, "detach", &attachment.record_type, Some(attachment.record_id), &changes)?;
    Ok(attachment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_images_and_pdf_only() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0..JFIF"), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0"), Some("image/heic"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"<html><script>alert(1)</script>"), None);
        assert_eq!(sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn cleans_file_names() {
        assert_eq!(clean_file_name("发票 2026-03.pdf").as_deref(), Some("发票 2026-03.pdf"));
        assert_eq!(clean_file_name("C:\\Users\\kim\\영수증.jpg").as_deref(), Some("영수증.jpg"));
        assert_eq!(clean_file_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_file_name("a\u{0}b\r\nc<d>.png").as_deref(), Some("a b c d .png"));
        assert_eq!(clean_file_name(" ..hidden. ").as_deref(), Some("hidden"));
        assert_eq!(clean_file_name("  / ").as_deref(), None);
        let long = format!("{}.jpeg", "票".repeat(300));
        let cleaned = clean_file_name(&long).unwrap_or_default();
        assert_eq!(cleaned.chars().count(), 200);
        assert!(cleaned.ends_with("票.jpeg"));
    }

    #[test]
    fn refuses_empty_and_too_large_files() {
        assert!(check_size(b"x").is_ok());
        assert!(check_size(&[]).is_err());
        assert!(check_size(&vec![0; MAX_BYTES]).is_ok());
        assert!(check_size(&vec![0; MAX_BYTES + 1]).is_err());
    }
}
