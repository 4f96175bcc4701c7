//! Rows every installation needs: the built-in roles and a head-office branch.
use chrono::Utc;

use crate::db::{Db, DbError};
use crate::id::Id;
use crate::identity::roles;

/// Idempotent: creates what is missing, changes nothing that exists.
pub fn ensure_defaults(db: &Db) -> Result<(), DbError> {
    crate::db::off_runtime(|| {
        db.write_blocking(|tx| {
        roles::ensure_built_in(tx)?;
        let roots: Vec<i64> = tx.query_sql("SELECT COUNT(*) FROM branches WHERE parent_id IS NULL", &[])?;
        if roots.first().copied().unwrap_or(0) == 0 {
            let id = Id::new();
            let now = Utc::now();
            tx.execute_sql(
                "INSERT INTO branches (id, parent_id, name, code, kind, path, region, time_zone, owner_id, created_at, updated_at, version) \
                 VALUES ($1, NULL, $2, $3, 'hq', $4, 'CN', $5, NULL, $6, $7, 1)",
                &[
                    id.into(),
                    "Head office".into(),
                    "HQ".into(),
                    format!("/{id}/").into(),
                    crate::values::DEFAULT_TIME_ZONE.into(),
                    now.into(),
                    now.into(),
                ],
            )?;
        }
        Ok(())
    })
    })
}

/// The head office (root branch).
pub fn head_office(tx: &mut crate::Tx<'_>) -> Result<Id, DbError> {
    let ids: Vec<i64> = tx
        .query_sql("SELECT id FROM branches WHERE parent_id IS NULL AND deleted_at IS NULL ORDER BY id LIMIT 1", &[])?;
    ids.first().map(|id| Id(*id)).ok_or(DbError::NoRow)
}
