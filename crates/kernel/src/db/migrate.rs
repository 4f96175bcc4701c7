//! Versioned schema migrations, one folder per backend (`migrations/sqlite`,
//! `migrations/postgres`), embedded at build time and applied in order.
use chrono::Utc;
use sea_query::Value;

use super::{Backend, Db, DbError, Tx};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub applied: i64,
    pub latest: i64,
}

impl MigrationStatus {
    pub fn is_current(&self) -> bool {
        self.applied == self.latest
    }
}

fn latest_known() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)";

fn applied_version(tx: &mut Tx<'_>) -> Result<i64, DbError> {
    let v: Option<i64> =
        tx.query_sql::<Option<i64>>("SELECT MAX(version) FROM schema_migrations", &[])?.into_iter().next().flatten();
    Ok(v.unwrap_or(0))
}

pub(super) fn run(db: &Db) -> Result<Vec<&'static str>, DbError> {
    db.write_blocking(|tx| {
        if tx.backend() == Backend::Postgres {
            // Nodes starting together take turns; the lock ends with the transaction.
            tx.execute_sql("SELECT pg_advisory_xact_lock(7272727)", &[])?;
        }
        tx.batch(CREATE_TABLE)?;
        let current = applied_version(tx)?;
        if current > latest_known() {
            return Err(DbError::Migration(format!(
                "the database is at schema version {current}, newer than this binary knows ({}): upgrade rapport",
                latest_known()
            )));
        }
        let mut applied = Vec::new();
        for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
            let sql = match tx.backend() {
                Backend::Sqlite => migration.sqlite,
                Backend::Postgres => migration.postgres,
            };
            tx.batch(sql).map_err(|e| DbError::Migration(format!("{} failed: {e}", migration.name)))?;
            tx.execute_sql(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[Value::BigInt(Some(migration.version)), migration.name.into(), Utc::now().to_rfc3339().into()],
            )?;
            applied.push(migration.name);
        }
        Ok(applied)
    })
}

pub(super) fn status(db: &Db) -> Result<MigrationStatus, DbError> {
    db.read_blocking(|tx| {
        let exists: Vec<i64> = match tx.backend() {
            Backend::Sqlite => tx.query_sql("SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_migrations'", &[])?,
            Backend::Postgres => tx.query_sql(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_migrations' AND table_schema = current_schema()",
                &[],
            )?,
        };
        let applied = if exists.first().copied().unwrap_or(0) > 0 { applied_version(tx)? } else { 0 };
        Ok(MigrationStatus { applied, latest: latest_known() })
    })
}
