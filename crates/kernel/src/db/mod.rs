//! `Db` and `Tx`: one unit of work over SQLite (rusqlite) or PostgreSQL (the synchronous
//! `postgres` client), with one hop onto a blocking thread per unit of work.
//!
//! Why this design (measured in docs/data-access.md): SQLite through rusqlite is an order
//! of magnitude faster per statement than a driver that hands every statement to a worker
//! thread; PostgreSQL's synchronous client costs one network round trip per statement
//! either way. Domain code is therefore plain synchronous Rust that takes `&mut Tx`.
mod bulk;
mod migrate;
mod pool;
mod value;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sea_query::{PostgresQueryBuilder, QueryStatementWriter, SqliteQueryBuilder, Value, Values};

pub use migrate::{MIGRATIONS, Migration, MigrationStatus};
pub use value::{Column, FromRow, Row, sqlite_timestamp};

use crate::events::{Event, EventHub};
use pool::{Connection, Pool};
use value::{PgParam, SqliteParam};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("column {column}: {message}")]
    Column { column: String, message: String },
    #[error("no row where one was expected")]
    NoRow,
    #[error("timed out waiting for a database connection")]
    PoolTimeout,
    #[error("database configuration: {0}")]
    Config(String),
    #[error("migration: {0}")]
    Migration(String),
    #[error("the unit of work panicked or was cancelled: {0}")]
    Join(String),
}

impl DbError {
    /// The column(s) named by a unique-constraint violation, if this is one.
    pub fn unique_violation(&self) -> Option<String> {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, Some(msg)))
                if e.code == rusqlite::ErrorCode::ConstraintViolation && msg.starts_with("UNIQUE") =>
            {
                // "UNIQUE constraint failed: users.email, users.x"
                let cols = msg.split(": ").nth(1)?;
                Some(cols.split(", ").map(|c| c.rsplit('.').next().unwrap_or(c)).collect::<Vec<_>>().join(", "))
            }
            DbError::Postgres(e) => {
                let db = e.as_db_error()?;
                if db.code() != &postgres::error::SqlState::UNIQUE_VIOLATION {
                    return None;
                }
                // "Key (email)=(a@b.c) already exists."
                let detail = db.detail().unwrap_or_default();
                let start = detail.find('(')? + 1;
                let end = detail[start..].find(")=")? + start;
                Some(detail[start..end].to_owned())
            }
            _ => None,
        }
    }

    /// True for a foreign-key violation (a referenced row is missing or still referenced).
    pub fn is_foreign_key_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == 787 // SQLITE_CONSTRAINT_FOREIGNKEY
            }
            DbError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::FOREIGN_KEY_VIOLATION),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Where the database lives, parsed from `--database-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() || url.contains("://") && !url.starts_with("sqlite://") {
            return Err(DbError::Config(format!(
                "unsupported database URL {url:?}: use sqlite://FILE or postgres://USER@HOST:PORT/DB"
            )));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// The URL without any password, safe to print.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if url[scheme + 3..at].contains(':') => {
                    let user_end = url[scheme + 3..at].find(':').map(|i| i + scheme + 3).unwrap_or(at);
                    format!("{}:***{}", &url[..user_end], &url[at..])
                }
                _ => url.clone(),
            },
        }
    }
}

struct SqliteConn(rusqlite::Connection);
impl Connection for SqliteConn {
    fn is_healthy(&self) -> bool {
        true
    }
}

pub(crate) struct PgConn {
    client: postgres::Client,
    statements: std::collections::HashMap<String, postgres::Statement>,
}
impl Connection for PgConn {
    fn is_healthy(&self) -> bool {
        !self.client.is_closed()
    }
}

enum Store {
    Sqlite {
        path: PathBuf,
        // SQLite allows one writer at a time; one dedicated connection behind a mutex
        // serialises our writers without busy-waiting, and `BEGIN IMMEDIATE` makes other
        // processes (the CLI) wait on the busy timeout instead of failing mid-transaction.
        writer: Mutex<SqliteConn>,
        readers: Pool<SqliteConn>,
    },
    Postgres {
        pool: Pool<PgConn>,
    },
}

struct Inner {
    store: Store,
    hub: EventHub,
    listener: Option<crate::events::PgListener>,
    // Async callers queue here, first come first served, before taking a blocking thread:
    // a condition variable alone lets late callers barge past waiting ones, which showed
    // as 300 ms p99 spikes under load. Sized to the connections that can serve them.
    read_permits: tokio::sync::Semaphore,
    write_permits: tokio::sync::Semaphore,
}

const SQLITE_READERS: usize = 8;
const PG_CONNECTIONS: usize = 16;
const PG_WRITE_RESERVE: usize = 4;

/// The database: a cheap handle, clone it freely.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

fn open_sqlite(path: &Path) -> Result<SqliteConn, DbError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32000;",
    )?;
    conn.set_prepared_statement_cache_capacity(256);
    // Without the query-planner stability guarantee, SQLite marks statements whose plan
    // may depend on a bound value (LIMIT ?, LIKE ?, a 0/1 integer) for re-preparation,
    // and the statement cache's clear-bindings then forces a full re-parse on every
    // reuse: measured at about 6% of a request's CPU. Stable plans are what we want anyway.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(SqliteConn(conn))
}

pub(crate) fn connect_pg(config: &postgres::Config) -> Result<postgres::Client, DbError> {
    off_runtime(|| Ok(config.connect(postgres::NoTls)?))
}

/// Runs blocking database work on a plain thread when called from inside an async
/// runtime: the synchronous PostgreSQL client starts its own runtime and panics there.
pub fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| match s.spawn(work).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    } else {
        work()
    }
}

impl Db {
    /// Opens the database named by `url` (creating an SQLite file if needed). Does not
    /// migrate: call [`Db::migrate`].
    pub fn open(url: &str) -> Result<Db, DbError> {
        Self::open_parsed(&DatabaseUrl::parse(url)?)
    }

    pub fn open_parsed(url: &DatabaseUrl) -> Result<Db, DbError> {
        let hub = EventHub::new();
        let (store, listener) = match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
                    return Err(DbError::Config(format!("folder {} does not exist", dir.display())));
                }
                let writer = open_sqlite(path)?;
                // The writer checkpoints the WAL into the database every 10,000 pages
                // (~40 MB) instead of SQLite's 1,000: a page that many commits touch (an
                // index's upper levels, a busy leaf) is then copied back once per
                // checkpoint, not once per few commits. A 1M-contact import took 39 s
                // instead of 54 s (docs/benchmarks.md).
                writer.0.execute_batch("PRAGMA wal_autocheckpoint = 10000;")?;
                let reader_path = path.clone();
                let readers = Pool::new(SQLITE_READERS, Box::new(move || open_sqlite(&reader_path)));
                (Store::Sqlite { path: path.clone(), writer: Mutex::new(writer), readers }, None)
            }
            DatabaseUrl::Postgres(url) => {
                let mut config: postgres::Config =
                    url.parse().map_err(|e| DbError::Config(format!("bad PostgreSQL URL: {e}")))?;
                if config.get_connect_timeout().is_none() {
                    config.connect_timeout(Duration::from_secs(10));
                }
                config.application_name("rapport");
                // Fail early with a clear message if the server is not reachable.
                let first = PgConn { client: connect_pg(&config)?, statements: Default::default() };
                let pool_config = config.clone();
                let pool = Pool::new(
                    PG_CONNECTIONS,
                    Box::new(move || Ok(PgConn { client: connect_pg(&pool_config)?, statements: Default::default() })),
                );
                pool.seed(first);
                let listener = crate::events::PgListener::start(config.clone(), hub.clone());
                (Store::Postgres { pool }, Some(listener))
            }
        };
        // SQLite has one writer. PostgreSQL readers and writers share one pool: keep a
        // few connections that reads cannot take, or a burst of reads starves the writes
        // (measured: a token's last-use write stalled requests for up to a second).
        let (readers, writers) = match store {
            Store::Sqlite { .. } => (SQLITE_READERS, 1),
            Store::Postgres { .. } => (PG_CONNECTIONS - PG_WRITE_RESERVE, PG_WRITE_RESERVE),
        };
        Ok(Db {
            inner: Arc::new(Inner {
                store,
                hub,
                listener,
                read_permits: tokio::sync::Semaphore::new(readers),
                write_permits: tokio::sync::Semaphore::new(writers),
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        match self.inner.store {
            Store::Sqlite { .. } => Backend::Sqlite,
            Store::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The live-event hub this database publishes committed events to.
    pub fn events(&self) -> &EventHub {
        &self.inner.hub
    }

    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.inner.store {
            Store::Sqlite { path, .. } => Some(path),
            Store::Postgres { .. } => None,
        }
    }

    /// True when the PostgreSQL event listener is connected (always true on SQLite).
    pub fn events_connected(&self) -> bool {
        self.inner.listener.as_ref().is_none_or(|l| l.is_connected())
    }

    /// Runs `work` as one read-only unit of work on a blocking thread.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let _turn = self.inner.read_permits.acquire().await.map_err(|e| E::from(DbError::Join(e.to_string())))?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(work))
            .await
            .map_err(|e| E::from(DbError::Join(e.to_string())))?
    }

    /// Runs `work` as one read-write transaction on a blocking thread: committed when it
    /// returns `Ok`, rolled back when it returns `Err` or panics.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let _turn = self.inner.write_permits.acquire().await.map_err(|e| E::from(DbError::Join(e.to_string())))?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_blocking(work))
            .await
            .map_err(|e| E::from(DbError::Join(e.to_string())))?
    }

    /// [`Db::read`] for code that already runs on a blocking thread (CLI, jobs). Never call
    /// it on an async thread: use [`Db::read`] there (or wrap it in [`off_runtime`]).
    pub fn read_blocking<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
        E: From<DbError>,
    {
        match &self.inner.store {
            Store::Sqlite { readers, .. } => {
                let mut conn = readers.get()?;
                let tx =
                    conn.0.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred).map_err(DbError::from)?;
                let mut unit = Tx { conn: TxConn::Sqlite(tx), events: Vec::new(), writable: false };
                let out = work(&mut unit)?;
                // Nothing to keep: dropping the read transaction rolls it back.
                Ok(out)
            }
            Store::Postgres { pool, .. } => {
                let mut conn = pool.get()?;
                let PgConn { client, statements } = &mut *conn;
                // In READ COMMITTED every statement takes its own snapshot anyway, so a
                // read needs no BEGIN/COMMIT: that saves two round trips per request.
                let mut unit = Tx { conn: TxConn::PgAuto(client, statements), events: Vec::new(), writable: false };
                work(&mut unit)
            }
        }
    }

    /// [`Db::write`] for code that already runs on a blocking thread (CLI, jobs).
    pub fn write_blocking<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
        E: From<DbError>,
    {
        match &self.inner.store {
            Store::Sqlite { writer, .. } => {
                let mut guard = writer.lock().unwrap_or_else(PoisonError::into_inner);
                let tx = guard
                    .0
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(DbError::from)?;
                let mut unit = Tx { conn: TxConn::Sqlite(tx), events: Vec::new(), writable: true };
                let out = work(&mut unit)?;
                let Tx { conn, events, .. } = unit;
                match conn {
                    TxConn::Sqlite(tx) => tx.commit().map_err(DbError::from)?,
                    _ => unreachable!("sqlite store yields sqlite transactions"),
                }
                for event in events {
                    self.inner.hub.publish(event);
                }
                Ok(out)
            }
            Store::Postgres { pool, .. } => {
                let mut conn = pool.get()?;
                let PgConn { client, statements } = &mut *conn;
                let tx = client.transaction().map_err(DbError::from)?;
                let mut unit = Tx { conn: TxConn::Postgres(tx, statements), events: Vec::new(), writable: true };
                let out = work(&mut unit)?;
                let Tx { conn, events, .. } = unit;
                match conn {
                    TxConn::Postgres(mut tx, _) => {
                        // NOTIFY is delivered on commit, to every node's listener (this one
                        // included), so the event is published exactly when the data is visible.
                        for event in &events {
                            let payload = serde_json::to_string(event).unwrap_or_default();
                            tx.execute("SELECT pg_notify($1, $2)", &[&crate::events::PG_CHANNEL, &payload])
                                .map_err(DbError::from)?;
                        }
                        tx.commit().map_err(DbError::from)?;
                    }
                    _ => unreachable!("postgres store yields postgres transactions"),
                }
                Ok(out)
            }
        }
    }

    /// Applies every pending migration. Safe to call from several nodes at once.
    pub fn migrate(&self) -> Result<Vec<&'static str>, DbError> {
        off_runtime(|| migrate::run(self))
    }

    /// Whether every migration this binary knows is applied.
    pub fn migration_status(&self) -> Result<MigrationStatus, DbError> {
        off_runtime(|| migrate::status(self))
    }

    /// A consistent online copy of an SQLite database into `dest`.
    pub fn backup_sqlite(&self, dest: &Path) -> Result<(), DbError> {
        match &self.inner.store {
            Store::Sqlite { readers, .. } => {
                let conn = readers.get()?;
                conn.0.backup(rusqlite::MAIN_DB, dest, None::<fn(rusqlite::backup::Progress)>)?;
                Ok(())
            }
            Store::Postgres { .. } => Err(DbError::Config(
                "backup of a PostgreSQL database is pg_dump's job: run `pg_dump --format=custom --file FILE DBNAME`"
                    .into(),
            )),
        }
    }
}

enum TxConn<'c> {
    Sqlite(rusqlite::Transaction<'c>),
    Postgres(postgres::Transaction<'c>, &'c mut std::collections::HashMap<String, postgres::Statement>),
    PgAuto(&'c mut postgres::Client, &'c mut std::collections::HashMap<String, postgres::Statement>),
}

/// One unit of work: a transaction (or, for PostgreSQL reads, an autocommit session).
pub struct Tx<'c> {
    conn: TxConn<'c>,
    events: Vec<Event>,
    writable: bool,
}

fn pg_statement(
    client: &mut impl postgres::GenericClient,
    cache: &mut std::collections::HashMap<String, postgres::Statement>,
    sql: &str,
) -> Result<postgres::Statement, DbError> {
    if let Some(statement) = cache.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql)?;
    if cache.len() > 512 {
        cache.clear();
    }
    cache.insert(sql.to_owned(), statement.clone());
    Ok(statement)
}

impl Tx<'_> {
    pub fn backend(&self) -> Backend {
        match self.conn {
            TxConn::Sqlite(_) => Backend::Sqlite,
            _ => Backend::Postgres,
        }
    }

    /// Renders a sea-query statement for this backend.
    pub fn render<S: QueryStatementWriter>(&self, statement: &S) -> (String, Values) {
        match self.backend() {
            Backend::Sqlite => statement.build(SqliteQueryBuilder),
            Backend::Postgres => statement.build(PostgresQueryBuilder),
        }
    }

    /// Queues an event, published to live listeners only once this unit of work commits.
    pub fn emit(&mut self, event: Event) {
        debug_assert!(self.writable, "events are emitted by writes");
        self.events.push(event);
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Runs raw SQL with `$1, $2, …` placeholders (both backends accept them when
    /// numbered in order of first appearance); returns the affected row count.
    pub fn execute_sql(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match &mut self.conn {
            TxConn::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(params.iter().map(SqliteParam)))? as u64)
            }
            TxConn::Postgres(tx, cache) => {
                let statement = pg_statement(tx, cache, sql)?;
                let params: Vec<PgParam<'_>> = params.iter().map(PgParam).collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
                Ok(tx.execute(&statement, &refs)?)
            }
            TxConn::PgAuto(client, cache) => {
                let statement = pg_statement(*client, cache, sql)?;
                let params: Vec<PgParam<'_>> = params.iter().map(PgParam).collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
                Ok(client.execute(&statement, &refs)?)
            }
        }
    }

    /// Runs raw SQL (see [`Tx::execute_sql`]) and maps every row.
    pub fn query_sql<T: FromRow>(&mut self, sql: &str, params: &[Value]) -> Result<Vec<T>, DbError> {
        match &mut self.conn {
            TxConn::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(SqliteParam)))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(T::from_row(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            TxConn::Postgres(tx, cache) => {
                let statement = pg_statement(tx, cache, sql)?;
                let params: Vec<PgParam<'_>> = params.iter().map(PgParam).collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
                tx.query(&statement, &refs)?.iter().map(|r| T::from_row(&Row::Postgres(r))).collect()
            }
            TxConn::PgAuto(client, cache) => {
                let statement = pg_statement(*client, cache, sql)?;
                let params: Vec<PgParam<'_>> = params.iter().map(PgParam).collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
                client.query(&statement, &refs)?.iter().map(|r| T::from_row(&Row::Postgres(r))).collect()
            }
        }
    }

    pub fn query_opt_sql<T: FromRow>(&mut self, sql: &str, params: &[Value]) -> Result<Option<T>, DbError> {
        Ok(self.query_sql(sql, params)?.into_iter().next())
    }

    /// Runs a sea-query statement; returns the affected row count.
    pub fn execute<S: QueryStatementWriter>(&mut self, statement: &S) -> Result<u64, DbError> {
        let (sql, values) = self.render(statement);
        self.execute_sql(&sql, &values.0)
    }

    /// Runs a sea-query statement and maps every row.
    pub fn fetch_all<T: FromRow, S: QueryStatementWriter>(&mut self, statement: &S) -> Result<Vec<T>, DbError> {
        let (sql, values) = self.render(statement);
        self.query_sql(&sql, &values.0)
    }

    pub fn fetch_optional<T: FromRow, S: QueryStatementWriter>(&mut self, statement: &S) -> Result<Option<T>, DbError> {
        Ok(self.fetch_all(statement)?.into_iter().next())
    }

    pub fn fetch_one<T: FromRow, S: QueryStatementWriter>(&mut self, statement: &S) -> Result<T, DbError> {
        self.fetch_optional(statement)?.ok_or(DbError::NoRow)
    }

    /// Runs several statements separated by `;` with no parameters (schema changes).
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match &mut self.conn {
            TxConn::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            TxConn::Postgres(tx, _) => Ok(tx.batch_execute(sql)?),
            TxConn::PgAuto(client, _) => Ok(client.batch_execute(sql)?),
        }
    }
}
