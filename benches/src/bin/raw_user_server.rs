//! The raw HTTP baseline ("A") for Rapport's HTTP benchmarks (benches/http.sh).
//!
//! A bare axum 0.8 server that does the least work a record GET can do: read one row of
//! Rapport's real `users` table by primary key through the fastest driver, in one
//! blocking hop, and return it as JSON. No auth, no middleware, no audit. Rapport's
//! `GET /api/v1/users/{id}` ("B") is judged as a ratio to this, measured in the same run
//! against the same database file or server (shared/PERFORMANCE.md).
//!
//! Usage:
//!   raw_user_server --database-url sqlite://FILE|postgres://... [--listen 127.0.0.1:3900] [--pool N]
//!   raw_user_server seed --database-url URL [--users N] [--schema MIGRATION.sql]
//!
//! Routes: `GET /users/{id}`, `GET /health`, `POST /login` (argon2 verification only).
//!
//! `seed` adds N users to an existing Rapport database (after `rapport migrate`), or,
//! with `--schema`, first applies that migration file to an empty one, so the harness
//! can run without the rapport binary. It prints the first and last seeded id.

use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use rapport_benches::{BlockingPool, Rng, person_name, rfc3339_us};
use serde::Serialize;

type R<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The password `benches/http.sh` gives the admin it creates; `POST /login` verifies
/// against a hash of it.
const BENCH_PASSWORD: &str = "bench-password-1";

enum Url {
    Sqlite(String),
    Postgres(String),
}

/// Accepts the same forms as Rapport's `--database-url`.
fn parse_url(url: &str) -> R<Url> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Url::Postgres(url.to_string()));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || url.contains("://") && !url.starts_with("sqlite://") {
        return Err(format!(
            "unsupported database URL {url:?}: use sqlite://FILE or postgres://..."
        )
        .into());
    }
    Ok(Url::Sqlite(path.to_string()))
}

// ---------------------------------------------------------------- store

const SQLITE_GET: &str = "SELECT id, email, name, branch_id, created_at FROM users WHERE id = ?1";
const PG_GET: &str = "SELECT id, email, name, branch_id, created_at FROM users WHERE id = $1";

/// Ids go out as strings, as Rapport's API shows them (64-bit ids overflow JavaScript
/// numbers), so both servers serialise the same shape.
#[derive(Serialize)]
struct User {
    id: String,
    email: String,
    name: String,
    branch_id: String,
    created_at: String,
}

struct PgConn {
    client: postgres::Client,
    get: postgres::Statement,
}

enum Store {
    Sqlite(BlockingPool<rusqlite::Connection>),
    Postgres(BlockingPool<PgConn>),
}

fn sqlite_open(path: &str, create: bool) -> R<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    // Without CREATE a mistyped path fails instead of serving an empty database.
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = rusqlite::Connection::open_with_flags(path, flags)?;
    // The kernel's connection settings, so A and B read through identically tuned SQLite.
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32000;")?;
    Ok(conn)
}

impl Store {
    /// Opens `size` connections up front. Must run outside any tokio runtime: the sync
    /// `postgres` client starts (and on drop, stops) a runtime of its own.
    fn open(url: &Url, size: usize) -> R<Store> {
        Ok(match url {
            Url::Sqlite(path) => {
                let conns = (0..size)
                    .map(|_| sqlite_open(path, false))
                    .collect::<R<Vec<_>>>()?;
                // Fail at start, not on the first request, if this is not a Rapport db.
                conns[0].prepare(SQLITE_GET)?;
                Store::Sqlite(BlockingPool::new(conns))
            }
            Url::Postgres(url) => {
                let conns = (0..size)
                    .map(|_| -> R<PgConn> {
                        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
                        let get = client.prepare(PG_GET)?;
                        Ok(PgConn { client, get })
                    })
                    .collect::<R<Vec<_>>>()?;
                Store::Postgres(BlockingPool::new(conns))
            }
        })
    }

    /// Blocking: one pooled connection, one prepared statement.
    fn user(&self, id: i64) -> R<Option<User>> {
        match self {
            Store::Sqlite(pool) => {
                let conn = pool.get();
                let mut st = conn.prepare_cached(SQLITE_GET)?;
                let mut rows = st.query([id])?;
                let Some(r) = rows.next()? else {
                    return Ok(None);
                };
                Ok(Some(User {
                    id: r.get::<_, i64>(0)?.to_string(),
                    email: r.get(1)?,
                    name: r.get(2)?,
                    branch_id: r.get::<_, i64>(3)?.to_string(),
                    created_at: r.get(4)?,
                }))
            }
            Store::Postgres(pool) => {
                let mut conn = pool.get();
                let PgConn { client, get } = &mut *conn;
                let Some(r) = client.query_opt(&*get, &[&id])? else {
                    return Ok(None);
                };
                let created_at: DateTime<Utc> = r.try_get(4)?;
                Ok(Some(User {
                    id: r.try_get::<_, i64>(0)?.to_string(),
                    email: r.try_get(1)?,
                    name: r.try_get(2)?,
                    branch_id: r.try_get::<_, i64>(3)?.to_string(),
                    created_at: created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                }))
            }
        }
    }
}

// ---------------------------------------------------------------- HTTP

struct App {
    store: Store,
    /// PHC string of BENCH_PASSWORD with argon2's default (OWASP) parameters.
    password_hash: String,
}

async fn get_user(State(app): State<Arc<App>>, Path(id): Path<i64>) -> Response {
    // Exactly one hop onto a blocking thread per request: the design under test.
    match tokio::task::spawn_blocking(move || app.store.user(id)).await {
        Ok(Ok(Some(user))) => Json(user).into_response(),
        Ok(Ok(None)) => StatusCode::NOT_FOUND.into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn health() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// The raw cost of a password login: one argon2id verification on a blocking thread.
/// Body: `email=...&password=...` (form-encoded; the email is ignored). 204 or 401.
async fn login(State(app): State<Arc<App>>, body: String) -> Response {
    let password = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("password="))
        .unwrap_or_default()
        .replace('+', " ");
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&app.password_hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    if ok {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

fn serve(args: &[String]) -> R<()> {
    let mut url = None;
    let mut listen: SocketAddr = "127.0.0.1:3900".parse()?;
    let mut pool = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--database-url" => url = Some(parse_url(val()?)?),
            "--listen" => listen = val()?.parse()?,
            "--pool" => pool = val()?.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let url = url.ok_or("--database-url is required")?;
    // Small pool, one connection per core by default: more would only queue on 2 cores.
    let store = Store::open(&url, pool.max(1))?;
    // A fixed salt keeps the baseline deterministic; this hash never protects anything.
    let salt = SaltString::from_b64("cmFwcG9ydGJlbmNoc2FsdA").map_err(|e| e.to_string())?;
    let password_hash = Argon2::default()
        .hash_password(BENCH_PASSWORD.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string();
    let app = Arc::new(App {
        store,
        password_hash,
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        let router = axum::Router::new()
            .route("/users/{id}", get(get_user))
            .route("/health", get(health))
            .route("/login", post(login))
            .with_state(app);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!(
            "raw_user_server listening on http://{} (pool {pool})",
            listener.local_addr()?
        );
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        Ok::<(), Box<dyn Error + Send + Sync>>(())
    });
    // Any sync PostgreSQL clients still referenced were dropped with the router; the
    // pool's Drop moved them to a plain thread first (see BlockingPool).
    drop(rt);
    result
}

// ---------------------------------------------------------------- seed

const SEED_TIME: &str = "2026-01-01T00:00:00Z";

fn seed(args: &[String]) -> R<()> {
    let mut url = None;
    let mut users: i64 = 10_000;
    let mut schema = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--database-url" => url = Some(parse_url(val()?)?),
            "--users" => users = val()?.parse()?,
            "--schema" => schema = Some(std::fs::read_to_string(val()?)?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let (first, last) = match url.ok_or("--database-url is required")? {
        Url::Sqlite(path) => seed_sqlite(&path, users, schema.as_deref())?,
        Url::Postgres(url) => seed_pg(&url, users, schema.as_deref())?,
    };
    println!("{first} {last}");
    Ok(())
}

fn seed_sqlite(path: &str, n: i64, schema: Option<&str>) -> R<(i64, i64)> {
    let mut conn = sqlite_open(path, true)?;
    let has_users: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'users'",
        [],
        |r| r.get(0),
    )?;
    if !has_users {
        conn.execute_batch(
            schema.ok_or("no users table: run `rapport migrate` first or pass --schema")?,
        )?;
    }
    let tx = conn.transaction()?;
    let branch: Option<i64> = tx.query_row("SELECT min(id) FROM branches", [], |r| r.get(0))?;
    let branch = match branch {
        Some(b) => b,
        None => {
            tx.execute(
                "INSERT INTO branches (id, name, kind, path, region, time_zone, created_at, updated_at) \
                 VALUES (1, '总部 Head office', 'head_office', '/1/', 'CN', 'Asia/Shanghai', ?1, ?1)",
                [SEED_TIME],
            )?;
            1
        }
    };
    let role: Option<String> = tx.query_row("SELECT min(key) FROM roles", [], |r| r.get(0))?;
    let role = match role {
        Some(r) => r,
        None => {
            tx.execute(
                "INSERT INTO roles (key, name, data_scope, permissions, built_in, updated_at) VALUES ('admin', 'Admin', 'all', '[]', 1, ?1)",
                [SEED_TIME],
            )?;
            "admin".to_string()
        }
    };
    let first: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM users", [], |r| {
        r.get(0)
    })?;
    {
        let mut st = tx.prepare(
            "INSERT INTO users (id, email, name, password_hash, locale, time_zone, branch_id, role, active, \
             password_changed_at, created_at, updated_at) VALUES (?1, ?2, ?3, '!', 'zh-CN', 'Asia/Shanghai', ?4, ?5, 1, ?6, ?6, ?6)",
        )?;
        let mut rng = Rng::new(11);
        for id in first..first + n {
            let at =
                rfc3339_us(rapport_benches::BASE_TIME_US + rng.below(86_400_000_000 * 300) as i64);
            st.execute(rusqlite::params![
                id,
                format!("seed{id}@bench.example"),
                person_name(&mut rng),
                branch,
                role,
                at
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok((first, first + n - 1))
}

fn seed_pg(url: &str, n: i64, schema: Option<&str>) -> R<(i64, i64)> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    let has_users: bool = c
        .query_one("SELECT to_regclass('users') IS NOT NULL", &[])?
        .get(0);
    if !has_users {
        c.batch_execute(
            schema.ok_or("no users table: run `rapport migrate` first or pass --schema")?,
        )?;
    }
    let mut tx = c.transaction()?;
    let branch: Option<i64> = tx.query_one("SELECT min(id) FROM branches", &[])?.get(0);
    let branch = match branch {
        Some(b) => b,
        None => {
            tx.execute(
                "INSERT INTO branches (id, name, kind, path, region, time_zone, created_at, updated_at) \
                 VALUES (1, '总部 Head office', 'head_office', '/1/', 'CN', 'Asia/Shanghai', $1::text::timestamptz, $1::text::timestamptz)",
                &[&SEED_TIME],
            )?;
            1
        }
    };
    let role: Option<String> = tx.query_one("SELECT min(key) FROM roles", &[])?.get(0);
    let role = match role {
        Some(r) => r,
        None => {
            tx.execute(
                "INSERT INTO roles (key, name, data_scope, permissions, built_in, updated_at) \
                 VALUES ('admin', 'Admin', 'all', '[]'::jsonb, true, $1::text::timestamptz)",
                &[&SEED_TIME],
            )?;
            "admin".to_string()
        }
    };
    let first: i64 = tx
        .query_one("SELECT coalesce(max(id), 0) + 1 FROM users", &[])?
        .get(0);
    // COPY: the bulk path on PostgreSQL. Names contain no commas or quotes, but quote anyway.
    let mut csv = String::new();
    let mut rng = Rng::new(11);
    for id in first..first + n {
        let at = rfc3339_us(rapport_benches::BASE_TIME_US + rng.below(86_400_000_000 * 300) as i64);
        let name = person_name(&mut rng).replace('"', "\"\"");
        csv.push_str(&format!("{id},seed{id}@bench.example,\"{name}\",!,zh-CN,Asia/Shanghai,{branch},{role},true,{at},{at},{at}\n"));
    }
    let mut w = tx.copy_in(
        "COPY users (id, email, name, password_hash, locale, time_zone, branch_id, role, active, \
         password_changed_at, created_at, updated_at) FROM STDIN (FORMAT csv)",
    )?;
    w.write_all(csv.as_bytes())?;
    w.finish()?;
    tx.commit()?;
    c.batch_execute("ANALYZE users")?;
    Ok((first, first + n - 1))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("seed") => seed(&args[1..]),
        Some("-h" | "--help") | None => {
            eprintln!(
                "usage: raw_user_server --database-url sqlite://FILE|postgres://... [--listen ADDR] [--pool N]\n       \
                 raw_user_server seed --database-url URL [--users N] [--schema MIGRATION.sql]"
            );
            Ok(())
        }
        _ => serve(&args),
    };
    if let Err(e) = result {
        eprintln!("raw_user_server: {e}");
        std::process::exit(1);
    }
}
