//! Binding sea-query values to either driver, and reading columns back from either.
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use postgres::types::{IsNull, ToSql as PgToSql, Type, to_sql_checked};
use rusqlite::types::{ToSqlOutput, Value as SqliteOwned, ValueRef};
use sea_query::Value;

use super::DbError;

/// How SQLite stores an instant: RFC 3339 text in UTC with microseconds, which sorts
/// and compares correctly as text.
pub fn sqlite_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) struct SqliteParam<'a>(pub &'a Value);

impl rusqlite::ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use SqliteOwned as O;
        let owned = match self.0 {
            Value::Bool(v) => v.map(|b| O::Integer(b as i64)),
            Value::TinyInt(v) => v.map(|n| O::Integer(n.into())),
            Value::SmallInt(v) => v.map(|n| O::Integer(n.into())),
            Value::Int(v) => v.map(|n| O::Integer(n.into())),
            Value::BigInt(v) => v.map(O::Integer),
            Value::TinyUnsigned(v) => v.map(|n| O::Integer(n.into())),
            Value::SmallUnsigned(v) => v.map(|n| O::Integer(n.into())),
            Value::Unsigned(v) => v.map(|n| O::Integer(n.into())),
            Value::BigUnsigned(v) => match v {
                Some(n) => Some(O::Integer(
                    i64::try_from(*n).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                )),
                None => None,
            },
            Value::Float(v) => v.map(|n| O::Real(n.into())),
            Value::Double(v) => v.map(O::Real),
            Value::String(v) => v.as_ref().map(|s| O::Text(s.clone())),
            Value::Char(v) => v.map(|c| O::Text(c.to_string())),
            Value::Bytes(v) => v.as_ref().map(|b| O::Blob(b.clone())),
            Value::Json(v) => v.as_ref().map(|j| O::Text(j.to_string())),
            Value::ChronoDate(v) => v.map(|d| O::Text(d.format("%Y-%m-%d").to_string())),
            Value::ChronoDateTimeUtc(v) => v.as_ref().map(|t| O::Text(sqlite_timestamp(t))),
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("unsupported parameter type {other:?}").into(),
                ));
            }
        };
        Ok(ToSqlOutput::Owned(owned.unwrap_or(O::Null)))
    }
}

#[derive(Debug)]
pub(crate) struct PgParam<'a>(pub &'a Value);

fn int_for(n: i64, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
    match *ty {
        Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
        Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
        Type::FLOAT8 => (n as f64).to_sql(ty, out),
        Type::TEXT | Type::VARCHAR => n.to_string().to_sql(ty, out),
        _ => n.to_sql(ty, out),
    }
}

impl PgToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Bool(Some(b)) => b.to_sql(ty, out),
            Value::TinyInt(Some(n)) => int_for((*n).into(), ty, out),
            Value::SmallInt(Some(n)) => int_for((*n).into(), ty, out),
            Value::Int(Some(n)) => int_for((*n).into(), ty, out),
            Value::BigInt(Some(n)) => int_for(*n, ty, out),
            Value::TinyUnsigned(Some(n)) => int_for((*n).into(), ty, out),
            Value::SmallUnsigned(Some(n)) => int_for((*n).into(), ty, out),
            Value::Unsigned(Some(n)) => int_for((*n).into(), ty, out),
            Value::BigUnsigned(Some(n)) => int_for(i64::try_from(*n)?, ty, out),
            Value::Float(Some(n)) => f64::from(*n).to_sql(ty, out),
            Value::Double(Some(n)) => match *ty {
                Type::FLOAT4 => (*n as f32).to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            Value::String(Some(s)) => match *ty {
                Type::JSON | Type::JSONB => serde_json::from_str::<serde_json::Value>(s)?.to_sql(ty, out),
                _ => s.as_str().to_sql(ty, out),
            },
            Value::Char(Some(c)) => c.to_string().to_sql(ty, out),
            Value::Bytes(Some(b)) => b.as_slice().to_sql(ty, out),
            Value::Json(Some(j)) => match *ty {
                Type::TEXT | Type::VARCHAR => j.to_string().to_sql(ty, out),
                _ => j.as_ref().to_sql(ty, out),
            },
            Value::ChronoDate(Some(d)) => d.to_sql(ty, out),
            Value::ChronoDateTimeUtc(Some(t)) => match *ty {
                Type::TIMESTAMP => t.naive_utc().to_sql(ty, out),
                _ => t.to_sql(ty, out),
            },
            v if is_null(v) => Ok(IsNull::Yes),
            other => Err(format!("unsupported parameter type {other:?}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A value that can be read from a column of either backend.
pub trait Column: Sized {
    fn from_sqlite(value: ValueRef<'_>) -> Result<Self, String>;
    fn from_pg(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error>;
}

macro_rules! native_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(value: ValueRef<'_>) -> Result<Self, String> {
                <$t as rusqlite::types::FromSql>::column_result(value).map_err(|e| e.to_string())
            }
            fn from_pg(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
                row.try_get(index)
            }
        }
    )*};
}
native_column!(bool, f64, String, Vec<u8>);

impl Column for i64 {
    fn from_sqlite(value: ValueRef<'_>) -> Result<Self, String> {
        <i64 as rusqlite::types::FromSql>::column_result(value).map_err(|e| e.to_string())
    }
    fn from_pg(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        // Our columns are BIGINT, but literals and some functions yield INT4.
        match row.columns().get(index).map(|c| c.type_().clone()) {
            Some(Type::INT4) => row.try_get::<_, i32>(index).map(i64::from),
            Some(Type::INT2) => row.try_get::<_, i16>(index).map(i64::from),
            _ => row.try_get(index),
        }
    }
}

impl Column for i32 {
    fn from_sqlite(value: ValueRef<'_>) -> Result<Self, String> {
        let n = i64::from_sqlite(value)?;
        i32::try_from(n).map_err(|e| e.to_string())
    }
    fn from_pg(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        i64::from_pg(row, index).map(|n| n as i32)
    }
}

impl Column for DateTime<Utc> {
    fn from_sqlite(value: ValueRef<'_>) -> Result<Self, String> {
        let text = value.as_str().map_err(|e| e.to_string())?;
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("bad timestamp {text:?}: {e}"))
    }
    fn from_pg(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        row.try_get(index)
    }
}

impl Column for NaiveDate {
    fn from_sqlite(value: ValueRef<'_>) -> Result<Self, String> {
        let text = value.as_str().map_err(|e| e.to_string())?;
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| format!("bad date {text:?}: {e}"))
    }
    fn from_pg(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        row.try_get(index)
    }
}

impl Column for serde_json::Value {
    fn from_sqlite(value: ValueRef<'_>) -> Result<Self, String> {
        let text = value.as_str().map_err(|e| e.to_string())?;
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
    fn from_pg(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        row.try_get(index)
    }
}

impl<T: Column> Column for Option<T> {
    fn from_sqlite(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Null => Ok(None),
            v => T::from_sqlite(v).map(Some),
        }
    }
    fn from_pg(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        // Probe for NULL with a type-agnostic read of the raw bytes.
        let raw: Option<RawPg> = row.try_get(index)?;
        match raw {
            None => Ok(None),
            Some(_) => T::from_pg(row, index).map(Some),
        }
    }
}

/// Accepts any PostgreSQL type; used only to learn whether a value is NULL.
struct RawPg;
impl<'a> postgres::types::FromSql<'a> for RawPg {
    fn from_sql(_: &Type, _: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawPg)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Whether a parameter is SQL NULL (sea-query wraps every type in an `Option`).
pub(crate) fn is_null(value: &Value) -> bool {
    matches!(
        value,
        Value::Bool(None)
            | Value::TinyInt(None)
            | Value::SmallInt(None)
            | Value::Int(None)
            | Value::BigInt(None)
            | Value::TinyUnsigned(None)
            | Value::SmallUnsigned(None)
            | Value::Unsigned(None)
            | Value::BigUnsigned(None)
            | Value::Float(None)
            | Value::Double(None)
            | Value::String(None)
            | Value::Char(None)
            | Value::Bytes(None)
            | Value::Json(None)
            | Value::ChronoDate(None)
            | Value::ChronoDateTimeUtc(None)
    )
}

/// One result row of either backend.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Reads column `name`, with an error that names the column.
    pub fn get<T: Column>(&self, name: &str) -> Result<T, DbError> {
        match self {
            Row::Sqlite(row) => {
                let index = row
                    .as_ref()
                    .column_index(name)
                    .map_err(|_| DbError::Column { column: name.to_owned(), message: "no such column".into() })?;
                let value = row.get_ref(index).map_err(DbError::Sqlite)?;
                T::from_sqlite(value).map_err(|message| DbError::Column { column: name.to_owned(), message })
            }
            Row::Postgres(row) => {
                let index = row
                    .columns()
                    .iter()
                    .position(|c| c.name() == name)
                    .ok_or_else(|| DbError::Column { column: name.to_owned(), message: "no such column".into() })?;
                T::from_pg(row, index).map_err(|e| DbError::Column { column: name.to_owned(), message: e.to_string() })
            }
        }
    }
}

/// Maps one row to a struct, the same way for both backends.
pub trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError>;
}

macro_rules! scalar_row {
    ($($t:ty),*) => {$(
        impl FromRow for $t {
            fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
                match row {
                    Row::Sqlite(r) => {
                        let v = r.get_ref(0).map_err(DbError::Sqlite)?;
                        <$t as Column>::from_sqlite(v).map_err(|message| DbError::Column { column: "0".into(), message })
                    }
                    Row::Postgres(r) => <$t as Column>::from_pg(r, 0).map_err(DbError::Postgres),
                }
            }
        }
    )*};
}
scalar_row!(i64, i32, bool, String, f64, DateTime<Utc>, serde_json::Value, Option<i64>, Option<String>, crate::id::Id);
