//! Test databases: each test gets fresh ones (SQLite always; PostgreSQL too when
//! `RAPPORT_TEST_DATABASE_URL` names a server) and they are removed when dropped.
use std::path::PathBuf;

use crate::db::{Backend, Db, DbError};
use crate::id::Id;

pub const TEST_DATABASE_ENV: &str = "RAPPORT_TEST_DATABASE_URL";

/// A migrated, empty database that removes itself when dropped.
pub struct TestDb {
    db: Option<Db>,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl std::ops::Deref for TestDb {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db.as_ref().unwrap_or_else(|| unreachable!("db is present until drop"))
    }
}

impl TestDb {
    pub fn db(&self) -> Db {
        (**self).clone()
    }

    /// A fresh SQLite database in its own temporary folder.
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("rapport-test-{}", Id::new()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let db = Db::open(&format!("sqlite://{}", dir.join("test.db").display()))
            .unwrap_or_else(|e| panic!("open test sqlite: {e}"));
        let test = TestDb { db: Some(db), cleanup: Cleanup::Sqlite(dir) };
        test.prepare();
        test
    }

    /// A fresh PostgreSQL database on the server named by `RAPPORT_TEST_DATABASE_URL`,
    /// or `None` when it is not set.
    pub fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var(TEST_DATABASE_ENV).ok().filter(|v| !v.trim().is_empty())?;
        let name = format!("rapport_test_{}", Id::new());
        let create_url = admin_url.clone();
        let create_name = name.clone();
        // The synchronous client must not live on an async thread; use a plain one.
        let created = std::thread::spawn(move || -> Result<(), DbError> {
            let mut client = postgres::Client::connect(&create_url, postgres::NoTls)?;
            client.batch_execute(&format!("CREATE DATABASE {create_name}"))?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| panic!("creating the test database panicked"));
        created.unwrap_or_else(|e| panic!("cannot create a test database on {admin_url}: {e}"));
        let url = with_database(&admin_url, &name);
        let db = Db::open(&url).unwrap_or_else(|e| panic!("open test postgres: {e}"));
        let test = TestDb { db: Some(db), cleanup: Cleanup::Postgres { admin_url, name } };
        test.prepare();
        Some(test)
    }

    /// The URL of this database, for starting the real binary against it.
    pub fn url(&self) -> String {
        match &self.cleanup {
            Cleanup::Sqlite(dir) => format!("sqlite://{}", dir.join("test.db").display()),
            Cleanup::Postgres { admin_url, name } => with_database(admin_url, name),
        }
    }

    fn prepare(&self) {
        self.migrate().unwrap_or_else(|e| panic!("migrate test database: {e}"));
        crate::setup::ensure_defaults(self).unwrap_or_else(|e| panic!("seed test database: {e}"));
    }
}

/// Every backend under test: SQLite, and PostgreSQL when configured.
pub fn test_databases() -> Vec<TestDb> {
    let mut all = vec![TestDb::sqlite()];
    all.extend(TestDb::postgres());
    all
}

/// Replaces the database name in a PostgreSQL URL (keeps any `?options`).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let backend = db.backend();
            drop(db);
            debug_assert!(matches!(backend, Backend::Sqlite | Backend::Postgres));
        }
        match &self.cleanup {
            Cleanup::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let (url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
                        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                    }
                })
                .join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/db?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    }
}
