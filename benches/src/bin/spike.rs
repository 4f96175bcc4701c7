//! Data-access spike: which driver design should Rapport build on?
//!
//! (a) rusqlite (SQLite) and the synchronous `postgres` client, with a whole unit of work
//!     run inside ONE `tokio::task::spawn_blocking` hop;
//! (b) sqlx for both backends, every statement awaited from async code.
//!
//! Workloads, on both backends:
//! * a request-sized unit of work: API-token lookup by SHA-256 hash (joined to users and
//!   branches, as authentication needs), then one user row by id under a branch-subtree
//!   data scope — the shape of every authenticated record GET;
//! * a 10,000-row batch insert of contact-like rows in one transaction (per-row prepared
//!   statements, multi-row statements, and on PostgreSQL COPY).
//!
//! Every figure is measured A B A B … in this one process (PERFORMANCE.md), at least
//! three times each, and printed as median [min–max].
//!
//! Run (from the worktree root):
//!   CARGO_TARGET_DIR=benches/target cargo run --release -j1 \
//!     --manifest-path benches/Cargo.toml --bin spike -- [--secs 2] [--runs 3]
//!
//! Options: --secs S (length of one throughput measurement), --runs N, --users N,
//! --only sqlite|postgres, --sqlite-path FILE, --pg-url postgres://USER@HOST:PORT,
//! --pg-db NAME (created and dropped by the spike), --keep (do not drop/delete).

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rapport_benches::{BlockingPool, Contact, Rng, contact, fmt_summary, rfc3339_us, summary};
use sha2::{Digest, Sha256};
use sqlx::Row as _;

type R<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Rows per batch-insert transaction.
const BATCH: usize = 10_000;
/// Rows per multi-row INSERT: SQLite allows 32,766 bound variables (6 per row here),
/// PostgreSQL 65,535.
const SQLITE_CHUNK: usize = 500;
const PG_CHUNK: usize = 1_000;
/// Connections per pool, for both designs: one per concurrent caller we measure.
const POOL: usize = 2;

// ---------------------------------------------------------------- options

struct Opts {
    secs: f64,
    runs: usize,
    users: i64,
    sqlite: bool,
    postgres: bool,
    sqlite_path: String,
    pg_url: String,
    pg_db: String,
    keep: bool,
}

fn opts() -> R<Opts> {
    let mut o = Opts {
        secs: 2.0,
        runs: 3,
        users: 100_000,
        sqlite: true,
        postgres: true,
        // Inside this project's own target dir, wherever the spike is started from.
        sqlite_path: concat!(env!("CARGO_MANIFEST_DIR"), "/target/spike/spike.db").into(),
        pg_url: "postgres://postgres@127.0.0.1:5432".into(),
        pg_db: "spike_bench".into(),
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--secs" => o.secs = val()?.parse()?,
            "--runs" => o.runs = val()?.parse()?,
            "--users" => o.users = val()?.parse()?,
            "--sqlite-path" => o.sqlite_path = val()?,
            "--pg-url" => o.pg_url = val()?.trim_end_matches('/').to_string(),
            "--pg-db" => o.pg_db = val()?,
            "--keep" => o.keep = true,
            "--only" => match val()?.as_str() {
                "sqlite" => o.postgres = false,
                "postgres" => o.sqlite = false,
                other => return Err(format!("--only sqlite|postgres, not {other}").into()),
            },
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if o.runs < 3 {
        return Err("--runs must be at least 3 (median with min–max)".into());
    }
    Ok(o)
}

// ---------------------------------------------------------------- schema and seed

// A subset of the foundation migration's columns: enough for the queries to touch the
// same indexes and row widths as Rapport's real ones.
const SQLITE_SCHEMA: &str = "
CREATE TABLE branches (id INTEGER PRIMARY KEY, parent_id INTEGER, name TEXT NOT NULL,
    path TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX ix_branches_path ON branches (path);
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL,
    password_hash TEXT NOT NULL, branch_id INTEGER NOT NULL REFERENCES branches (id),
    role TEXT NOT NULL, active INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE UNIQUE INDEX uq_users_email ON users (email);
CREATE INDEX ix_users_branch ON users (branch_id);
CREATE TABLE api_tokens (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
CREATE UNIQUE INDEX uq_api_tokens_hash ON api_tokens (token_hash);
CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
    phone TEXT NOT NULL, city TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE UNIQUE INDEX uq_contacts_email ON contacts (email);
";

const PG_SCHEMA: &str = "
CREATE TABLE branches (id BIGINT PRIMARY KEY, parent_id BIGINT, name TEXT NOT NULL,
    path TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE INDEX ix_branches_path ON branches (path);
CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL,
    password_hash TEXT NOT NULL, branch_id BIGINT NOT NULL REFERENCES branches (id),
    role TEXT NOT NULL, active BOOLEAN NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE UNIQUE INDEX uq_users_email ON users (email);
CREATE INDEX ix_users_branch ON users (branch_id);
CREATE TABLE api_tokens (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, revoked_at TIMESTAMPTZ);
CREATE UNIQUE INDEX uq_api_tokens_hash ON api_tokens (token_hash);
CREATE TABLE contacts (id BIGINT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
    phone TEXT NOT NULL, city TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE UNIQUE INDEX uq_contacts_email ON contacts (email);
";

/// Branch tree: one head office, 5 regions, 8 shops per region (46 branches).
fn branches() -> Vec<(i64, Option<i64>, String, String)> {
    let mut out = vec![(1, None, "总部 Head office".to_string(), "/1/".to_string())];
    for r in 0..5 {
        let rid = 2 + r * 9;
        out.push((rid, Some(1), format!("Region {r}"), format!("/1/{rid}/")));
        for s in 1..=8 {
            let sid = rid + s;
            out.push((
                sid,
                Some(rid),
                format!("门店 Shop {sid}"),
                format!("/1/{rid}/{sid}/"),
            ));
        }
    }
    out
}

/// The clear text of user `uid`'s API token; only its SHA-256 is stored, as in Rapport.
fn token_of(uid: i64) -> String {
    format!("rpt_bench_{uid:08}_secret")
}

fn sha256_hex(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

struct SeedUser {
    id: i64,
    email: String,
    name: String,
    branch_id: i64,
    created_at_us: i64,
}

fn seed_users(n: i64) -> Vec<SeedUser> {
    let mut rng = Rng::new(7);
    let b = branches();
    (1..=n)
        .map(|id| SeedUser {
            id,
            email: format!("user{id}@rapport.example"),
            name: rapport_benches::person_name(&mut rng),
            // Skewed: the first branches (head office, first region) hold most users.
            branch_id: b[rng.skewed(b.len())].0,
            created_at_us: rapport_benches::BASE_TIME_US + rng.below(86_400_000_000 * 300) as i64,
        })
        .collect()
}

fn sqlite_open(path: &str) -> R<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    // Same settings as Rapport's kernel (and as the sqlx options below).
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn sqlite_setup(o: &Opts) -> R<()> {
    let path = std::path::Path::new(&o.sqlite_path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", o.sqlite_path));
    }
    let mut conn = sqlite_open(&o.sqlite_path)?;
    conn.execute_batch(SQLITE_SCHEMA)?;
    let tx = conn.transaction()?;
    let now = rfc3339_us(rapport_benches::BASE_TIME_US);
    for (id, parent, name, path) in branches() {
        tx.execute(
            "INSERT INTO branches VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![id, parent, name, path, now],
        )?;
    }
    {
        let mut u = tx.prepare("INSERT INTO users VALUES (?1, ?2, ?3, 'x', ?4, 'sales', 1, ?5)")?;
        let mut t = tx.prepare("INSERT INTO api_tokens VALUES (?1, ?2, ?3, ?4, NULL)")?;
        for s in seed_users(o.users) {
            let at = rfc3339_us(s.created_at_us);
            u.execute(rusqlite::params![s.id, s.email, s.name, s.branch_id, at])?;
            t.execute(rusqlite::params![
                s.id,
                s.id,
                sha256_hex(&token_of(s.id)),
                at
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

fn pg_admin(o: &Opts) -> R<postgres::Client> {
    Ok(postgres::Client::connect(
        &format!("{}/postgres", o.pg_url),
        postgres::NoTls,
    )?)
}

fn csv_field(out: &mut String, s: &str) {
    // Quote every text field; the data has no control characters but may have commas.
    out.push('"');
    out.push_str(&s.replace('"', "\"\""));
    out.push('"');
}

fn pg_setup(o: &Opts) -> R<()> {
    let mut admin = pg_admin(o)?;
    // Two calls: a multi-statement string runs as one implicit transaction, which
    // DROP/CREATE DATABASE refuse.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", o.pg_db))?;
    admin.batch_execute(&format!("CREATE DATABASE {}", o.pg_db))?;
    drop(admin);
    let mut c = postgres::Client::connect(&format!("{}/{}", o.pg_url, o.pg_db), postgres::NoTls)?;
    c.batch_execute(PG_SCHEMA)?;
    let now = rfc3339_us(rapport_benches::BASE_TIME_US);
    let mut buf = String::new();
    for (id, parent, name, path) in branches() {
        let parent = parent.map(|p| p.to_string()).unwrap_or_default();
        let _ = write!(buf, "{id},{parent},");
        csv_field(&mut buf, &name);
        let _ = writeln!(buf, ",{path},{now}");
    }
    let mut w = c.copy_in("COPY branches FROM STDIN (FORMAT csv)")?;
    w.write_all(buf.as_bytes())?;
    w.finish()?;
    let users = seed_users(o.users);
    let (mut ub, mut tb) = (String::new(), String::new());
    for s in &users {
        let at = rfc3339_us(s.created_at_us);
        let _ = write!(ub, "{},{},", s.id, s.email);
        csv_field(&mut ub, &s.name);
        let _ = writeln!(ub, ",x,{},sales,true,{at}", s.branch_id);
        let _ = writeln!(
            tb,
            "{},{},{},{at},",
            s.id,
            s.id,
            sha256_hex(&token_of(s.id))
        );
    }
    let mut w = c.copy_in("COPY users FROM STDIN (FORMAT csv)")?;
    w.write_all(ub.as_bytes())?;
    w.finish()?;
    let mut w = c.copy_in("COPY api_tokens FROM STDIN (FORMAT csv)")?;
    w.write_all(tb.as_bytes())?;
    w.finish()?;
    c.batch_execute("VACUUM ANALYZE")?;
    Ok(())
}

// ---------------------------------------------------------------- the unit of work

const SQLITE_TOKEN: &str = "SELECT u.id, u.role, b.path FROM api_tokens t \
     JOIN users u ON u.id = t.user_id JOIN branches b ON b.id = u.branch_id \
     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND u.active = 1";
const SQLITE_USER: &str = "SELECT id, email, name, branch_id, created_at FROM users \
     WHERE id = ?1 AND branch_id IN (SELECT id FROM branches WHERE path LIKE ?2)";
const PG_TOKEN: &str = "SELECT u.id, u.role, b.path FROM api_tokens t \
     JOIN users u ON u.id = t.user_id JOIN branches b ON b.id = u.branch_id \
     WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.active";
const PG_USER: &str = "SELECT id, email, name, branch_id, created_at FROM users \
     WHERE id = $1 AND branch_id IN (SELECT id FROM branches WHERE path LIKE $2)";

/// One request's input: the bearer token's hash and the record it asks for.
struct Ask {
    token_hash: String,
    target: i64,
}

fn ask(rng: &mut Rng, users: i64) -> Ask {
    // Hashing the presented token is part of every authenticated request.
    Ask {
        token_hash: sha256_hex(&token_of(1 + rng.below(users as u64) as i64)),
        target: 1 + rng.below(users as u64) as i64,
    }
}

/// Data scope "branch subtree" of the principal's region: "/1/11/" -> "/1/11/%".
fn scope_prefix(path: &str) -> String {
    let region: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).take(2).collect();
    format!("/{}/%", region.join("/"))
}

/// What the read returns; decoded fully so both drivers do the same work.
#[allow(dead_code)]
struct UserRow<T> {
    id: i64,
    email: String,
    name: String,
    branch_id: i64,
    created_at: T,
}

/// A prepared PostgreSQL connection for design (a): statements are prepared once per
/// connection, as the kernel's statement cache does.
struct PgConn {
    client: postgres::Client,
    token: postgres::Statement,
    user: postgres::Statement,
    insert: postgres::Statement,
    insert_multi: postgres::Statement,
}

fn multi_insert_sql(chunk: usize, pg: bool) -> String {
    let mut sql =
        String::from("INSERT INTO contacts (id, name, email, phone, city, created_at) VALUES ");
    for r in 0..chunk {
        if r > 0 {
            sql.push(',');
        }
        let b = r * 6;
        if pg {
            let _ = write!(
                sql,
                "(${},${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            );
        } else {
            let _ = write!(
                sql,
                "(?{},?{},?{},?{},?{},?{})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            );
        }
    }
    sql
}

const SQLITE_INSERT: &str = "INSERT INTO contacts (id, name, email, phone, city, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const PG_INSERT: &str = "INSERT INTO contacts (id, name, email, phone, city, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const PG_COPY: &str =
    "COPY contacts (id, name, email, phone, city, created_at) FROM STDIN (FORMAT csv)";

fn pg_conn(url: &str) -> R<PgConn> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let token = client.prepare(PG_TOKEN)?;
    let user = client.prepare(PG_USER)?;
    let insert = client.prepare(PG_INSERT)?;
    let insert_multi = client.prepare(&multi_insert_sql(PG_CHUNK, true))?;
    Ok(PgConn {
        client,
        token,
        user,
        insert,
        insert_multi,
    })
}

/// Everything the measurements need; shared by all tasks through an `Arc`.
struct Ctx {
    users: i64,
    sqlite_readers: Option<BlockingPool<rusqlite::Connection>>,
    sqlite_writer: Option<BlockingPool<rusqlite::Connection>>,
    sqlx_sqlite: Option<sqlx::SqlitePool>,
    pg_sync: Option<BlockingPool<PgConn>>,
    sqlx_pg: Option<sqlx::PgPool>,
    sqlite_multi_sql: Arc<str>,
    pg_multi_sql: Arc<str>,
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The SQLite unit of work itself, synchronous: one read transaction (as the kernel's
/// `Db::read` does on SQLite), two prepared statements.
fn unit_sqlite_sync(ctx: &Ctx, a: &Ask) -> R<bool> {
    let pool = ctx.sqlite_readers.as_ref().expect("sqlite enabled");
    let mut conn = pool.get();
    let tx = conn.transaction()?;
    let principal = tx
        .prepare_cached(SQLITE_TOKEN)?
        .query_row([&a.token_hash], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        });
    let (_uid, _role, path) = match principal {
        Ok(p) => p,
        Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let row = tx.prepare_cached(SQLITE_USER)?.query_row(
        rusqlite::params![a.target, scope_prefix(&path)],
        |r| {
            Ok(UserRow {
                id: r.get(0)?,
                email: r.get(1)?,
                name: r.get(2)?,
                branch_id: r.get(3)?,
                created_at: r.get::<_, String>(4)?,
            })
        },
    );
    // Dropping the read transaction rolls it back, like the kernel.
    match row {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// (a) SQLite: the whole unit in one blocking hop.
async fn unit_a_sqlite(ctx: Arc<Ctx>, a: Ask) -> R<bool> {
    tokio::task::spawn_blocking(move || unit_sqlite_sync(&ctx, &a)).await?
}

/// (b) SQLite through sqlx: the same unit, each statement (and BEGIN/ROLLBACK) awaited.
async fn unit_b_sqlite(ctx: Arc<Ctx>, a: Ask) -> R<bool> {
    let pool = ctx.sqlx_sqlite.as_ref().expect("sqlite enabled");
    let mut tx = pool.begin().await?;
    let Some(p) = sqlx::query(SQLITE_TOKEN)
        .bind(&a.token_hash)
        .fetch_optional(&mut *tx)
        .await?
    else {
        tx.rollback().await?;
        return Ok(false);
    };
    let (_uid, _role, path): (i64, String, String) = (p.try_get(0)?, p.try_get(1)?, p.try_get(2)?);
    let row = sqlx::query(SQLITE_USER)
        .bind(a.target)
        .bind(scope_prefix(&path))
        .fetch_optional(&mut *tx)
        .await?;
    let found = match row {
        Some(r) => {
            let _u = UserRow {
                id: r.try_get(0)?,
                email: r.try_get(1)?,
                name: r.try_get(2)?,
                branch_id: r.try_get(3)?,
                created_at: r.try_get::<String, _>(4)?,
            };
            true
        }
        None => false,
    };
    tx.rollback().await?;
    Ok(found)
}

/// (a) PostgreSQL: one blocking hop; autocommit statements (READ COMMITTED takes a
/// snapshot per statement anyway, so the kernel skips BEGIN/COMMIT for reads).
async fn unit_a_pg(ctx: Arc<Ctx>, a: Ask) -> R<bool> {
    tokio::task::spawn_blocking(move || -> R<bool> {
        let pool = ctx.pg_sync.as_ref().expect("postgres enabled");
        let mut conn = pool.get();
        let PgConn {
            client,
            token,
            user,
            ..
        } = &mut *conn;
        let Some(p) = client.query_opt(&*token, &[&a.token_hash])? else {
            return Ok(false);
        };
        let path: String = p.try_get(2)?;
        let row = client.query_opt(&*user, &[&a.target, &scope_prefix(&path)])?;
        Ok(match row {
            Some(r) => {
                let _u = UserRow {
                    id: r.try_get(0)?,
                    email: r.try_get(1)?,
                    name: r.try_get(2)?,
                    branch_id: r.try_get(3)?,
                    created_at: r.try_get::<_, DateTime<Utc>>(4)?,
                };
                true
            }
            None => false,
        })
    })
    .await?
}

/// (b) PostgreSQL through sqlx: one connection for the unit, each statement awaited.
async fn unit_b_pg(ctx: Arc<Ctx>, a: Ask) -> R<bool> {
    let pool = ctx.sqlx_pg.as_ref().expect("postgres enabled");
    let mut conn = pool.acquire().await?;
    let Some(p) = sqlx::query(PG_TOKEN)
        .bind(&a.token_hash)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(false);
    };
    let path: String = p.try_get(2)?;
    let row = sqlx::query(PG_USER)
        .bind(a.target)
        .bind(scope_prefix(&path))
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => {
            let _u = UserRow {
                id: r.try_get(0)?,
                email: r.try_get(1)?,
                name: r.try_get(2)?,
                branch_id: r.try_get(3)?,
                created_at: r.try_get::<DateTime<Utc>, _>(4)?,
            };
            true
        }
        None => false,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Design {
    /// (a) sync driver, one spawn_blocking hop per unit.
    A,
    /// (b) sqlx, every statement awaited.
    B,
    /// Reference only, SQLite only: design (a)'s unit run inline on the async worker,
    /// no hop at all. Not a candidate (it stalls the worker for the unit's duration);
    /// it shows what the hop itself costs on this machine.
    Inline,
}

async fn unit(ctx: Arc<Ctx>, backend: Backend, design: Design, a: Ask) -> R<bool> {
    match (backend, design) {
        (Backend::Sqlite, Design::A) => unit_a_sqlite(ctx, a).await,
        (Backend::Sqlite, Design::B) => unit_b_sqlite(ctx, a).await,
        (Backend::Sqlite, Design::Inline) => unit_sqlite_sync(&ctx, &a),
        (Backend::Postgres, Design::A) => unit_a_pg(ctx, a).await,
        (Backend::Postgres, Design::B) => unit_b_pg(ctx, a).await,
        (Backend::Postgres, Design::Inline) => {
            unreachable!("the sync postgres client panics on an async thread")
        }
    }
}

/// Units of work per second with `callers` concurrent tokio tasks, for `secs` seconds.
async fn rate(
    ctx: &Arc<Ctx>,
    backend: Backend,
    design: Design,
    callers: usize,
    secs: f64,
    seed: u64,
) -> R<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let found = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let start = Instant::now();
    // Each task checks the deadline itself rather than waiting for a timer to flip a
    // flag: the no-hop reference never yields, and two such tasks on a 2-worker runtime
    // starve the timer driver (exactly why it is not a candidate design).
    let deadline = start + Duration::from_secs_f64(secs);
    for c in 0..callers {
        let (ctx, done, found) = (ctx.clone(), done.clone(), found.clone());
        let mut rng = Rng::new(seed * 1000 + c as u64);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let a = ask(&mut rng, ctx.users);
                if unit(ctx.clone(), backend, design, a).await? {
                    found.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), Box<dyn Error + Send + Sync>>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    // A unit that finds nothing would be a broken benchmark; about 1 in 3 asks is in
    // scope (skewed branches), so insist on a sane share of hits.
    if found.load(Ordering::Relaxed) * 10 < n {
        return Err(format!(
            "only {} of {n} units found their row: check the data",
            found.load(Ordering::Relaxed)
        )
        .into());
    }
    Ok(n as f64 / elapsed)
}

// ---------------------------------------------------------------- batch insert

#[derive(Clone, Copy, PartialEq, Debug)]
enum Bulk {
    PerRow,
    MultiRow,
    Copy,
}

fn sqlite_insert_a(ctx: &Ctx, rows: &[Contact], how: Bulk) -> R<()> {
    let pool = ctx.sqlite_writer.as_ref().expect("sqlite enabled");
    let mut conn = pool.get();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    match how {
        Bulk::PerRow => {
            let mut st = tx.prepare_cached(SQLITE_INSERT)?;
            for c in rows {
                st.execute(rusqlite::params![
                    c.id,
                    c.name,
                    c.email,
                    c.phone,
                    c.city,
                    rfc3339_us(c.created_at_us)
                ])?;
            }
        }
        Bulk::MultiRow => {
            let mut st = tx.prepare_cached(&ctx.sqlite_multi_sql)?;
            for chunk in rows.chunks(SQLITE_CHUNK) {
                let times: Vec<String> =
                    chunk.iter().map(|c| rfc3339_us(c.created_at_us)).collect();
                let mut params: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 6);
                for (c, t) in chunk.iter().zip(&times) {
                    params.extend_from_slice(&[&c.id, &c.name, &c.email, &c.phone, &c.city, t]);
                }
                st.execute(&params[..])?;
            }
        }
        Bulk::Copy => unreachable!("SQLite has no COPY"),
    }
    tx.commit()?;
    Ok(())
}

async fn sqlite_insert_b(ctx: &Ctx, rows: &[Contact], how: Bulk) -> R<()> {
    let pool = ctx.sqlx_sqlite.as_ref().expect("sqlite enabled");
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    match how {
        Bulk::PerRow => {
            for c in rows {
                sqlx::query(SQLITE_INSERT)
                    .bind(c.id)
                    .bind(&c.name)
                    .bind(&c.email)
                    .bind(&c.phone)
                    .bind(c.city)
                    .bind(rfc3339_us(c.created_at_us))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Bulk::MultiRow => {
            for chunk in rows.chunks(SQLITE_CHUNK) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(ctx.sqlite_multi_sql.clone()));
                for c in chunk {
                    q = q
                        .bind(c.id)
                        .bind(&c.name)
                        .bind(&c.email)
                        .bind(&c.phone)
                        .bind(c.city)
                        .bind(rfc3339_us(c.created_at_us));
                }
                q.execute(&mut *tx).await?;
            }
        }
        Bulk::Copy => unreachable!("SQLite has no COPY"),
    }
    tx.commit().await?;
    Ok(())
}

fn ts(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).expect("timestamp in range")
}

fn csv_rows(rows: &[Contact]) -> String {
    let mut buf = String::with_capacity(rows.len() * 96);
    for c in rows {
        let _ = write!(buf, "{},", c.id);
        csv_field(&mut buf, &c.name);
        let _ = write!(buf, ",{},", c.email);
        csv_field(&mut buf, &c.phone);
        let _ = writeln!(buf, ",{},{}", c.city, rfc3339_us(c.created_at_us));
    }
    buf
}

fn pg_insert_a(ctx: &Ctx, rows: &[Contact], how: Bulk) -> R<()> {
    let pool = ctx.pg_sync.as_ref().expect("postgres enabled");
    let mut conn = pool.get();
    let PgConn {
        client,
        insert,
        insert_multi,
        ..
    } = &mut *conn;
    match how {
        Bulk::PerRow => {
            let mut tx = client.transaction()?;
            for c in rows {
                tx.execute(
                    &*insert,
                    &[
                        &c.id,
                        &c.name,
                        &c.email,
                        &c.phone,
                        &c.city,
                        &ts(c.created_at_us),
                    ],
                )?;
            }
            tx.commit()?;
        }
        Bulk::MultiRow => {
            let mut tx = client.transaction()?;
            for chunk in rows.chunks(PG_CHUNK) {
                let times: Vec<DateTime<Utc>> = chunk.iter().map(|c| ts(c.created_at_us)).collect();
                let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    Vec::with_capacity(chunk.len() * 6);
                for (c, t) in chunk.iter().zip(&times) {
                    params.extend_from_slice(&[&c.id, &c.name, &c.email, &c.phone, &c.city, t]);
                }
                tx.execute(&*insert_multi, &params)?;
            }
            tx.commit()?;
        }
        Bulk::Copy => {
            // COPY is a transaction of its own; the CSV is built inside the timed region.
            let mut w = client.copy_in(PG_COPY)?;
            w.write_all(csv_rows(rows).as_bytes())?;
            w.finish()?;
        }
    }
    Ok(())
}

async fn pg_insert_b(ctx: &Ctx, rows: &[Contact], how: Bulk) -> R<()> {
    let pool = ctx.sqlx_pg.as_ref().expect("postgres enabled");
    match how {
        Bulk::PerRow => {
            let mut tx = pool.begin().await?;
            for c in rows {
                sqlx::query(PG_INSERT)
                    .bind(c.id)
                    .bind(&c.name)
                    .bind(&c.email)
                    .bind(&c.phone)
                    .bind(c.city)
                    .bind(ts(c.created_at_us))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        Bulk::MultiRow => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(PG_CHUNK) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(ctx.pg_multi_sql.clone()));
                for c in chunk {
                    q = q
                        .bind(c.id)
                        .bind(&c.name)
                        .bind(&c.email)
                        .bind(&c.phone)
                        .bind(c.city)
                        .bind(ts(c.created_at_us));
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Bulk::Copy => {
            let mut conn = pool.acquire().await?;
            let mut copy = conn.copy_in_raw(PG_COPY).await?;
            copy.send(csv_rows(rows).into_bytes()).await?;
            copy.finish().await?;
        }
    }
    Ok(())
}

/// Rows per second for one batch; the table is emptied first (untimed) so every run
/// inserts into the same state.
async fn insert_rate(
    ctx: &Arc<Ctx>,
    backend: Backend,
    design_a: bool,
    how: Bulk,
    rows: &Arc<Vec<Contact>>,
) -> R<f64> {
    {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || -> R<()> {
            match backend {
                Backend::Sqlite => {
                    let pool = ctx.sqlite_writer.as_ref().expect("sqlite enabled");
                    pool.get()
                        .execute_batch("DELETE FROM contacts; PRAGMA wal_checkpoint(TRUNCATE);")?;
                }
                Backend::Postgres => {
                    let pool = ctx.pg_sync.as_ref().expect("postgres enabled");
                    pool.get().client.batch_execute("TRUNCATE contacts")?;
                }
            }
            Ok(())
        })
        .await??;
    }
    let start = Instant::now();
    match (backend, design_a) {
        (Backend::Sqlite, true) => {
            let (ctx, rows) = (ctx.clone(), rows.clone());
            tokio::task::spawn_blocking(move || sqlite_insert_a(&ctx, &rows, how)).await??
        }
        (Backend::Sqlite, false) => sqlite_insert_b(ctx, rows, how).await?,
        (Backend::Postgres, true) => {
            let (ctx, rows) = (ctx.clone(), rows.clone());
            tokio::task::spawn_blocking(move || pg_insert_a(&ctx, &rows, how)).await??
        }
        (Backend::Postgres, false) => pg_insert_b(ctx, rows, how).await?,
    }
    Ok(rows.len() as f64 / start.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------- driver

struct Line {
    backend: &'static str,
    case: String,
    unit: &'static str,
    a: Vec<f64>,
    b: Vec<f64>,
    /// The no-hop reference, where measured.
    inline: Vec<f64>,
}

async fn measure(ctx: Arc<Ctx>, o: &Opts, backends: &[Backend]) -> R<Vec<Line>> {
    let mut lines = Vec::new();
    let rows: Arc<Vec<Contact>> = {
        let mut rng = Rng::new(42);
        Arc::new((1..=BATCH as i64).map(|id| contact(&mut rng, id)).collect())
    };
    for &backend in backends {
        let bname = if backend == Backend::Sqlite {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        for callers in [1usize, 2] {
            // Warm-up, untimed: opens pooled connections, prepares statements, warms caches.
            let designs: &[Design] = if backend == Backend::Sqlite {
                &[Design::A, Design::B, Design::Inline]
            } else {
                &[Design::A, Design::B]
            };
            for &d in designs {
                rate(&ctx, backend, d, callers, 0.3, 999).await?;
            }
            let mut line = Line {
                backend: bname,
                case: format!(
                    "unit of work, {callers} caller{}",
                    if callers > 1 { "s" } else { "" }
                ),
                unit: "units/s",
                a: vec![],
                b: vec![],
                inline: vec![],
            };
            for run in 0..o.runs {
                // A B A B …: both designs see the same noise, in the same process.
                for &d in designs {
                    let r = rate(&ctx, backend, d, callers, o.secs, run as u64).await?;
                    match d {
                        Design::A => line.a.push(r),
                        Design::B => line.b.push(r),
                        Design::Inline => line.inline.push(r),
                    }
                }
                eprint!(".");
            }
            eprintln!(
                " {bname} {}: (a) {} (b) {}",
                line.case,
                fmt_summary(&line.a),
                fmt_summary(&line.b)
            );
            lines.push(line);
        }
        let bulks: &[Bulk] = if backend == Backend::Sqlite {
            &[Bulk::PerRow, Bulk::MultiRow]
        } else {
            &[Bulk::PerRow, Bulk::MultiRow, Bulk::Copy]
        };
        for &how in bulks {
            let case = match how {
                Bulk::PerRow => "insert 10k rows, prepared, one row per statement".to_string(),
                Bulk::MultiRow => format!(
                    "insert 10k rows, {} rows per statement",
                    if backend == Backend::Sqlite {
                        SQLITE_CHUNK
                    } else {
                        PG_CHUNK
                    }
                ),
                Bulk::Copy => "insert 10k rows, COPY (CSV)".to_string(),
            };
            for design_a in [true, false] {
                insert_rate(&ctx, backend, design_a, how, &rows).await?;
            }
            let mut line = Line {
                backend: bname,
                case,
                unit: "rows/s",
                a: vec![],
                b: vec![],
                inline: vec![],
            };
            for _ in 0..o.runs {
                line.a
                    .push(insert_rate(&ctx, backend, true, how, &rows).await?);
                line.b
                    .push(insert_rate(&ctx, backend, false, how, &rows).await?);
                eprint!(".");
            }
            eprintln!(
                " {bname} {}: (a) {} (b) {}",
                line.case,
                fmt_summary(&line.a),
                fmt_summary(&line.b)
            );
            lines.push(line);
        }
    }
    Ok(lines)
}

fn main() -> R<()> {
    let o = opts()?;
    let mut backends = Vec::new();
    let t0 = Instant::now();

    // Setup and the synchronous clients are created here, before any tokio runtime
    // exists: the sync `postgres` client must never be created, used or dropped on an
    // async thread (it panics: "Cannot start a runtime from within a runtime").
    let mut sqlite_readers = None;
    let mut sqlite_writer = None;
    let mut pg_sync = None;
    if o.sqlite {
        sqlite_setup(&o)?;
        sqlite_readers = Some(BlockingPool::new(
            (0..POOL)
                .map(|_| sqlite_open(&o.sqlite_path))
                .collect::<R<Vec<_>>>()?,
        ));
        sqlite_writer = Some(BlockingPool::new(vec![sqlite_open(&o.sqlite_path)?]));
        backends.push(Backend::Sqlite);
    }
    let pg_db_url = format!("{}/{}", o.pg_url, o.pg_db);
    if o.postgres {
        pg_setup(&o)?;
        pg_sync = Some(BlockingPool::new(
            (0..POOL)
                .map(|_| pg_conn(&pg_db_url))
                .collect::<R<Vec<_>>>()?,
        ));
        backends.push(Backend::Postgres);
    }
    eprintln!(
        "setup (schema, {} users + tokens per backend) took {:.1} s",
        o.users,
        t0.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let lines = rt.block_on(async {
        use sqlx::postgres::PgPoolOptions;
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        // sqlx gets its best configuration: same pool size, no ping before each acquire
        // (its default would add one more round trip per unit), statements cached.
        let sqlx_sqlite = if o.sqlite {
            let opts = SqliteConnectOptions::new()
                .filename(&o.sqlite_path)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            Some(
                SqlitePoolOptions::new()
                    .max_connections(POOL as u32)
                    .min_connections(POOL as u32)
                    .test_before_acquire(false)
                    .connect_with(opts)
                    .await?,
            )
        } else {
            None
        };
        let sqlx_pg = if o.postgres {
            Some(
                PgPoolOptions::new()
                    .max_connections(POOL as u32)
                    .min_connections(POOL as u32)
                    .test_before_acquire(false)
                    .connect(&format!("{pg_db_url}?sslmode=disable"))
                    .await?,
            )
        } else {
            None
        };
        let ctx = Arc::new(Ctx {
            users: o.users,
            sqlite_readers,
            sqlite_writer,
            sqlx_sqlite,
            pg_sync,
            sqlx_pg,
            sqlite_multi_sql: multi_insert_sql(SQLITE_CHUNK, false).into(),
            pg_multi_sql: multi_insert_sql(PG_CHUNK, true).into(),
        });
        let lines = measure(ctx.clone(), &o, &backends).await;
        if let Some(p) = &ctx.sqlx_sqlite {
            p.close().await;
        }
        if let Some(p) = &ctx.sqlx_pg {
            p.close().await;
        }
        // The last `Ctx` reference may be this one, on an async thread: BlockingPool's
        // Drop moves the sync clients to a plain thread, so this is safe.
        drop(ctx);
        lines
    });
    drop(rt);
    let lines = lines?;

    let sqlite_version =
        rusqlite::Connection::open_in_memory()?
            .query_row("SELECT sqlite_version()", [], |r| r.get::<_, String>(0))?;
    let mut pg_version = String::from("n/a");
    if o.postgres {
        let mut admin = pg_admin(&o)?;
        pg_version = admin.query_one("SHOW server_version", &[])?.get(0);
        if !o.keep {
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", o.pg_db))?;
        }
    }
    if o.sqlite && !o.keep {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", o.sqlite_path));
        }
    }

    println!(
        "\n## Data-access spike: (a) rusqlite / sync postgres, one spawn_blocking hop per unit  vs  (b) sqlx 0.9, every statement awaited\n"
    );
    println!(
        "SQLite {sqlite_version} (bundled, both drivers share it), WAL, synchronous=NORMAL; PostgreSQL {pg_version} over TCP loopback; \
         {} cores; {} users; {} runs each, A B alternating, {} s per throughput run; pools of {POOL} connections; total {:.0} s.\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        o.users,
        o.runs,
        o.secs,
        t0.elapsed().as_secs_f64()
    );
    println!("| backend | case | (a) one blocking hop | (b) sqlx | a / b (medians) |");
    println!("|---|---|---|---|---|");
    for l in &lines {
        let (ma, _, _) = summary(&l.a);
        let (mb, _, _) = summary(&l.b);
        println!(
            "| {} | {} ({}) | {} | {} | {:.2}× |",
            l.backend,
            l.case,
            l.unit,
            fmt_summary(&l.a),
            fmt_summary(&l.b),
            ma / mb
        );
    }
    let refs: Vec<&Line> = lines.iter().filter(|l| !l.inline.is_empty()).collect();
    if !refs.is_empty() {
        println!(
            "\nReference (not a candidate): the SQLite unit inline on the async worker, no hop, measured in the same alternation:\n"
        );
        println!("| backend | case | no hop | (a) / no hop |");
        println!("|---|---|---|---|");
        for l in refs {
            println!(
                "| {} | {} ({}) | {} | {:.2} |",
                l.backend,
                l.case,
                l.unit,
                fmt_summary(&l.inline),
                summary(&l.a).0 / summary(&l.inline).0
            );
        }
    }
    Ok(())
}
