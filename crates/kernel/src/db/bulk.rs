//! Bulk inserts: multi-row INSERT on SQLite, COPY on PostgreSQL (imports, demo data).
use std::io::Write;

use chrono::SecondsFormat;
use sea_query::Value;

use super::{DbError, Tx, TxConn, value::SqliteParam};

/// Most rows in one SQLite statement; bounded by SQLite's 32,766 parameters.
const SQLITE_ROWS_PER_STATEMENT: usize = 500;

impl Tx<'_> {
    /// Inserts many rows into `table`; every row has one value per column, in order.
    /// Returns the number of rows written.
    pub fn insert_rows(&mut self, table: &str, columns: &[&str], rows: &[Vec<Value>]) -> Result<u64, DbError> {
        if rows.is_empty() {
            return Ok(0);
        }
        if let Some(bad) = rows.iter().find(|r| r.len() != columns.len()) {
            return Err(DbError::Column {
                column: table.to_owned(),
                message: format!("a row has {} values for {} columns", bad.len(), columns.len()),
            });
        }
        let column_list = columns.join(", ");
        match &mut self.conn {
            TxConn::Sqlite(tx) => {
                let per_statement = SQLITE_ROWS_PER_STATEMENT.min(32_000 / columns.len().max(1)).max(1);
                let placeholders = format!("({})", vec!["?"; columns.len()].join(", "));
                for chunk in rows.chunks(per_statement) {
                    let sql = format!(
                        "INSERT INTO {table} ({column_list}) VALUES {}",
                        vec![placeholders.as_str(); chunk.len()].join(", ")
                    );
                    let mut stmt = tx.prepare_cached(&sql)?;
                    stmt.execute(rusqlite::params_from_iter(chunk.iter().flatten().map(SqliteParam)))?;
                }
                Ok(rows.len() as u64)
            }
            TxConn::Postgres(tx, _) => {
                let mut writer = tx.copy_in(&format!("COPY {table} ({column_list}) FROM STDIN"))?;
                let mut line = String::new();
                for row in rows {
                    line.clear();
                    for (i, value) in row.iter().enumerate() {
                        if i > 0 {
                            line.push('\t');
                        }
                        copy_text(value, &mut line)?;
                    }
                    line.push('\n');
                    writer
                        .write_all(line.as_bytes())
                        .map_err(|e| DbError::Column { column: table.to_owned(), message: e.to_string() })?;
                }
                Ok(writer.finish()?)
            }
            TxConn::PgAuto(..) => Err(DbError::Config("bulk insert needs a write transaction".into())),
        }
    }
}

/// Appends `text` with COPY's four special characters escaped, copying the runs between
/// them whole (a character-by-character copy was the import's busiest function on the
/// client side).
fn escape_into(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(at) = rest.find(['\\', '\t', '\n', '\r']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            _ => "\\r",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// One value in COPY's text format.
fn copy_text(value: &Value, out: &mut String) -> Result<(), DbError> {
    use std::fmt::Write as _;
    let _ = match value {
        Value::Bool(Some(b)) => write!(out, "{}", if *b { "t" } else { "f" }),
        Value::TinyInt(Some(n)) => write!(out, "{n}"),
        Value::SmallInt(Some(n)) => write!(out, "{n}"),
        Value::Int(Some(n)) => write!(out, "{n}"),
        Value::BigInt(Some(n)) => write!(out, "{n}"),
        Value::TinyUnsigned(Some(n)) => write!(out, "{n}"),
        Value::SmallUnsigned(Some(n)) => write!(out, "{n}"),
        Value::Unsigned(Some(n)) => write!(out, "{n}"),
        Value::BigUnsigned(Some(n)) => write!(out, "{n}"),
        Value::Float(Some(n)) => write!(out, "{n}"),
        Value::Double(Some(n)) => write!(out, "{n}"),
        Value::String(Some(s)) => {
            escape_into(s, out);
            Ok(())
        }
        Value::Char(Some(c)) => {
            escape_into(&c.to_string(), out);
            Ok(())
        }
        Value::Json(Some(j)) => {
            escape_into(&j.to_string(), out);
            Ok(())
        }
        Value::ChronoDate(Some(d)) => write!(out, "{}", d.format("%Y-%m-%d")),
        Value::ChronoDateTimeUtc(Some(t)) => write!(out, "{}", t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        Value::Bytes(Some(b)) => {
            out.push_str("\\\\x");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
            Ok(())
        }
        v if super::value::is_null(v) => {
            out.push_str("\\N");
            Ok(())
        }
        other => {
            return Err(DbError::Column { column: "copy".into(), message: format!("unsupported value {other:?}") });
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    #[test]
    fn copy_escapes_its_special_characters_and_keeps_the_rest() {
        let mut out = String::new();
        escape_into("王芳\tKim\\Min\njun\r", &mut out);
        assert_eq!(out, "王芳\\tKim\\\\Min\\njun\\r");
        out.clear();
        escape_into("plain 김민준", &mut out);
        assert_eq!(out, "plain 김민준");
    }
}
