//! `rapport`: the one binary. Parses configuration, opens and migrates the database,
//! and either serves the application or runs one administrative command.
mod config;
mod demo;

use std::io::BufRead;
use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use kernel::identity::{passwords, tokens, users};
use kernel::{Channel, Db, Principal};

use config::Settings;

#[derive(Parser)]
#[command(name = "rapport", version, about = "Rapport CRM: one binary over SQLite or PostgreSQL")]
struct Cli {
    /// sqlite://FILE (default sqlite://rapport.db) or postgres://USER@HOST:PORT/DB
    #[arg(long, global = true, env = "RAPPORT_DATABASE_URL")]
    database_url: Option<String>,
    /// Optional configuration file (default: ./rapport.toml if it exists)
    #[arg(long, global = true, env = "RAPPORT_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web application and the API
    Serve {
        /// Address to listen on (default 127.0.0.1:8080)
        #[arg(long, env = "RAPPORT_LISTEN")]
        listen: Option<String>,
    },
    /// Apply pending database migrations and exit
    Migrate,
    /// Seed a demo organisation (if the database is empty), then serve
    Demo {
        #[arg(long, env = "RAPPORT_LISTEN")]
        listen: Option<String>,
        /// small (default) or large (for benchmarks)
        #[arg(long, default_value = "small")]
        size: String,
        /// Seed, then exit instead of serving
        #[arg(long)]
        seed_only: bool,
    },
    /// Manage users
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Rebuild the search terms of every account and contact (after upgrading the search
    /// index or writing rows around the application)
    Reindex,
    /// Manage API tokens
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Write a consistent copy of the SQLite database to FILE
    Backup { file: std::path::PathBuf },
    /// Import contacts or accounts from a CSV, XLSX or vCard file (upsert by e-mail)
    Import {
        /// contacts or accounts
        kind: String,
        file: std::path::PathBuf,
        /// Check the rows and report; write no records
        #[arg(long)]
        dry_run: bool,
        /// The upsert key: email (default), phone or external_id (accounts)
        #[arg(long = "match")]
        match_on: Option<String>,
        /// What to do with a record that exists: update (default) or skip
        #[arg(long)]
        on_existing: Option<String>,
        /// How 05/03/2024 reads: DD/MM/YYYY or MM/DD/YYYY
        #[arg(long)]
        date_format: Option<String>,
        /// A JSON file with the column mapping ({"columns": {"<header>": "<field>"}, ...});
        /// default: suggested from the header names
        #[arg(long)]
        mapping: Option<std::path::PathBuf>,
    },
    /// Export contacts (CSV, XLSX or vCard) or accounts (CSV or XLSX) to FILE
    Export {
        /// contacts or accounts
        kind: String,
        /// FILE.csv, FILE.xlsx or FILE.vcf
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user
    Add {
        #[arg(long)]
        email: String,
        /// The password (at least 8 characters)
        #[arg(long)]
        password: String,
        /// admin, manager, sales, service, marketing, finance, viewer or a custom role
        #[arg(long)]
        role: String,
        /// Branch id (default: the head office)
        #[arg(long)]
        branch: Option<String>,
        /// Display name (default: the part of the e-mail before @)
        #[arg(long)]
        name: Option<String>,
        /// en, zh-CN or ko-KR
        #[arg(long)]
        locale: Option<String>,
    },
    /// List users
    List,
    /// Set a user's password (from --password, or read from standard input)
    Passwd {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create an API token for a user; prints the token alone on standard output
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn main() {
    init_tracing();
    if let Err(e) = run(Cli::parse()) {
        // One line on stderr, as API.md promises; the chain gives the cause.
        eprintln!("rapport: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAPPORT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn open(settings: &Settings) -> Result<Db> {
    let db = Db::open(&settings.database_url).with_context(|| format!("opening {}", settings.database_redacted()))?;
    let applied = db.migrate().context("applying migrations")?;
    for name in applied {
        tracing::info!(migration = name, "applied migration");
    }
    kernel::setup::ensure_defaults(&db).context("creating built-in roles and the head office")?;
    rebuild_search_if_requested(&db)?;
    Ok(db)
}

/// After a migration that changed the search index's layout, fills it again (its terms are
/// cut in Rust, so the migration cannot).
fn rebuild_search_if_requested(db: &Db) -> Result<()> {
    if let Some(n) =
        db.write_blocking(customers::search::rebuild_if_requested).context("rebuilding the search index")?
    {
        tracing::info!(records = n, "search index rebuilt after a migration");
    }
    Ok(())
}

fn cli_principal() -> Principal {
    Principal::system(Channel::Cli)
}

fn kernel_err(e: kernel::Error) -> anyhow::Error {
    match e {
        kernel::Error::Validation(errors) => {
            anyhow!(
                errors
                    .iter()
                    .map(|e| format!("--{}: {}", e.field.replace('_', "-"), e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
        other => anyhow!(other.to_string()),
    }
}

fn run(cli: Cli) -> Result<()> {
    let settings = Settings::load(cli.config.as_deref(), cli.database_url.as_deref())?;
    match cli.command {
        Command::Serve { listen } => {
            let db = open(&settings)?;
            serve(db, settings.listen(listen.as_deref())?, settings, None)
        }
        Command::Demo { listen, size, seed_only } => {
            let db = open(&settings)?;
            let login = demo::seed(&db, &size)?;
            if seed_only {
                return Ok(());
            }
            serve(db, settings.listen(listen.as_deref())?, settings, Some(login))
        }
        Command::Reindex => {
            let db = open(&settings)?;
            let n = db.write_blocking(customers::search::reindex_all).context("rebuilding the search index")?;
            println!("search index rebuilt for {n} accounts and contacts");
            Ok(())
        }
        Command::Migrate => {
            let db = Db::open(&settings.database_url)
                .with_context(|| format!("opening {}", settings.database_redacted()))?;
            let applied = db.migrate().context("applying migrations")?;
            kernel::setup::ensure_defaults(&db)?;
            rebuild_search_if_requested(&db)?;
            let status = db.migration_status()?;
            println!("schema at version {} ({} migration(s) applied now)", status.applied, applied.len());
            Ok(())
        }
        Command::User { action } => {
            let db = open(&settings)?;
            user_command(&db, action)
        }
        Command::Token { action: TokenAction::Create { email, name } } => {
            let db = open(&settings)?;
            let created = db.write_blocking(|tx| {
                let user = users::find_by_email(tx, &email)?
                    .ok_or(kernel::Error::field("email", "no user has this e-mail"))?;
                tokens::create(tx, &cli_principal(), tokens::NewToken { name, user_id: Some(user.id) })
            });
            let created = created.map_err(kernel_err)?;
            println!("{}", created.secret);
            Ok(())
        }
        Command::Import { kind, file, dry_run, match_on, on_existing, date_format, mapping } => {
            let db = open(&settings)?;
            import_command(&db, ImportArgs { kind, file, dry_run, match_on, on_existing, date_format, mapping })
        }
        Command::Export { kind, file } => {
            let db = open(&settings)?;
            export_command(&db, &kind, &file)
        }
        Command::Backup { file } => {
            let db = Db::open(&settings.database_url)
                .with_context(|| format!("opening {}", settings.database_redacted()))?;
            if file.exists() {
                bail!("{} already exists; choose a new file name", file.display());
            }
            db.backup_sqlite(&file).with_context(|| format!("writing {}", file.display()))?;
            let copy = Db::open(&format!("sqlite://{}", file.display()))?;
            let check: Vec<String> = copy.read_blocking(|tx| tx.query_sql("PRAGMA integrity_check", &[]))?;
            if check.first().map(String::as_str) != Some("ok") {
                bail!("the copy failed its integrity check: {check:?}");
            }
            println!("backed up to {} (integrity check ok)", file.display());
            Ok(())
        }
    }
}

fn record_kind(kind: &str) -> Result<&'static str> {
    match kind {
        "contacts" | "contact" => Ok("contact"),
        "accounts" | "account" => Ok("account"),
        other => bail!("unknown kind {other:?}: use contacts or accounts"),
    }
}

/// `rapport import`: exits non-zero only when the file itself is unusable; bad rows are
/// counted and written to an error report next to the file.
fn import_command(db: &Db, args: ImportArgs) -> Result<()> {
    use customers::imports;
    let kind = record_kind(&args.kind)?;
    let name = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let size = std::fs::metadata(&args.file).with_context(|| format!("reading {}", args.file.display()))?.len();
    if size > imports::MAX_BYTES as u64 {
        bail!("{}: the file is {size} bytes; at most 200 MB can be imported", args.file.display());
    }
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let who = Principal::system(Channel::Cli);
    let up = db
        .write_blocking(|tx| imports::create(tx, &who, kind, &name, &bytes))
        .map_err(|e| anyhow!("{}: {}", args.file.display(), kernel_err(e)))?;
    let mut mapping = up.suggested_mapping.clone();
    if let Some(path) = &args.mapping {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        mapping = serde_json::from_str(&text).with_context(|| format!("{}: not a mapping", path.display()))?;
    }
    if let Some(m) = args.match_on {
        mapping.match_on = m;
    }
    if let Some(o) = args.on_existing {
        mapping.on_existing = o;
    }
    if args.date_format.is_some() {
        mapping.date_format = args.date_format;
    }
    db.write_blocking(|tx| imports::set_mapping(tx, &who, up.id, mapping)).map_err(kernel_err)?;
    println!("{}: {} rows ({}, {}), import {}", args.file.display(), up.total_rows, up.format, up.encoding, up.id);
    let failed = if args.dry_run {
        let dry = db
            .write_blocking(|tx| imports::dry_run(tx, &who, up.id, Some(imports::MAX_DRY_RUN_ROWS)))
            .map_err(kernel_err)?;
        println!(
            "dry run of {} rows: would create {}, update {}, skip {}; {} failed (nothing written)",
            dry.rows_checked, dry.would_create, dry.would_update, dry.would_skip, dry.failed
        );
        dry.failed
    } else {
        let done = imports::run(db, &who, up.id, imports::RunOptions::default(), &mut |i| {
            tracing::info!(import.rows = i.processed_rows, import.total = i.total_rows, "import progress");
            Ok(())
        })
        .map_err(kernel_err)?;
        println!(
            "created {}, updated {}, skipped {}, failed {}",
            done.created, done.updated, done.skipped, done.failed
        );
        done.failed
    };
    if failed > 0 {
        let report = db.read_blocking(|tx| imports::errors_csv(tx, &who, up.id)).map_err(kernel_err)?;
        let mut path = args.file.clone().into_os_string();
        path.push(".errors.csv");
        let path = std::path::PathBuf::from(path);
        std::fs::write(&path, report).with_context(|| format!("writing {}", path.display()))?;
        println!("error report: {} (also GET /api/v1/imports/{}/errors.csv)", path.display(), up.id);
    }
    Ok(())
}

fn export_command(db: &Db, kind: &str, file: &std::path::Path) -> Result<()> {
    use customers::exports::{self, ExportFormat};
    let kind = record_kind(kind)?;
    let format = ExportFormat::parse(&file.to_string_lossy())
        .map_err(|_| anyhow!("{}: use a .csv, .xlsx or .vcf file", file.display()))?;
    let who = Principal::system(Channel::Cli);
    let mut out = Vec::new();
    let n = db
        .read_blocking(|tx| match kind {
            "contact" => exports::contacts(tx, &who, &Default::default(), format, &mut out),
            _ => exports::accounts(tx, &who, &Default::default(), format, &mut out),
        })
        .map_err(kernel_err)?;
    std::fs::write(file, out).with_context(|| format!("writing {}", file.display()))?;
    println!("exported {n} {kind}s to {}", file.display());
    Ok(())
}

struct ImportArgs {
    kind: String,
    file: std::path::PathBuf,
    dry_run: bool,
    match_on: Option<String>,
    on_existing: Option<String>,
    date_format: Option<String>,
    mapping: Option<std::path::PathBuf>,
}

fn user_command(db: &Db, action: UserAction) -> Result<()> {
    match action {
        UserAction::Add { email, password, role, branch, name, locale } => {
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_owned());
            let branch_id = match branch {
                Some(b) => b.parse().map_err(|e: String| anyhow!("--branch: {e}"))?,
                None => db.read_blocking(kernel::setup::head_office)?,
            };
            let input = users::NewUser {
                email,
                name,
                password: password.clone(),
                role,
                branch_id,
                locale,
                ..Default::default()
            };
            db.read_blocking(|tx| users::validate_new(tx, &cli_principal(), &input)).map_err(kernel_err)?;
            let hash = passwords::hash(&password).map_err(kernel_err)?;
            let user = db.write_blocking(|tx| users::create(tx, &cli_principal(), input, hash)).map_err(kernel_err)?;
            println!("{}", user.id);
            Ok(())
        }
        UserAction::List => {
            let mut page = kernel::paging::PageRequest { limit: 500, cursor: None };
            loop {
                let result = db
                    .read_blocking(|tx| users::list(tx, &cli_principal(), &users::UserFilter::default(), &page))
                    .map_err(kernel_err)?;
                for u in &result.items {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.id,
                        u.email,
                        u.role,
                        if u.active { "active" } else { "inactive" },
                        u.name
                    );
                }
                match result.next_cursor {
                    Some(c) => page.cursor = Some(kernel::paging::Cursor::decode(&c).map_err(kernel_err)?),
                    None => return Ok(()),
                }
            }
        }
        UserAction::Passwd { email, password } => {
            let password = match password {
                Some(p) => p,
                None => {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            passwords::check_policy(&password).map_err(|m| anyhow!("password {m}"))?;
            let hash = passwords::hash(&password).map_err(kernel_err)?;
            db.write_blocking(|tx| {
                let user = users::find_by_email(tx, &email)?
                    .ok_or(kernel::Error::field("email", "no user has this e-mail"))?;
                users::set_password(tx, &cli_principal(), user.id, hash, None)
            })
            .map_err(kernel_err)?;
            println!("password changed; the user's sessions were ended");
            Ok(())
        }
    }
}

/// The job kinds this build runs. Every kind is idempotent: a job may run more than once.
fn job_registry() -> kernel::jobs::Registry {
    kernel::jobs::Registry::new()
        .with(kernel::jobs::MAINTENANCE_KIND, |ctx, _| {
            let (sessions, failures) = ctx
                .db()
                .write_blocking(|tx| {
                    Ok::<_, kernel::Error>((
                        kernel::identity::sessions::purge_expired(tx)?,
                        kernel::identity::login::purge_failures(tx)?,
                    ))
                })
                .map_err(|e| kernel::jobs::JobError::Retryable(e.to_string()))?;
            Ok(serde_json::json!({"expired_sessions": sessions, "old_login_failures": failures}))
        })
        .with(customers::tasks::REMINDER_JOB, customers::tasks::reminder_job)
        .with(customers::imports::IMPORT_JOB, customers::imports::import_job)
        .with(workflow::mail::SEND_JOB, workflow::mail::send_job(workflow::mail::Smtp::from_env()))
        .with(workflow::engine::TIMEOUTS_JOB, workflow::engine::timeouts_job(workflow::Registry::standard()))
}

fn serve(db: Db, listen: SocketAddr, settings: Settings, demo_login: Option<(String, String)>) -> Result<()> {
    // Background work runs on its own thread (never an async one: see kernel::db).
    db.write_blocking(|tx| kernel::jobs::enqueue(tx, kernel::jobs::MAINTENANCE_KIND, serde_json::json!({}), None))?;
    db.write_blocking(workflow::engine::ensure_timeouts_job)?;
    if matches!(workflow::mail::Smtp::from_env(), Ok(Some(_))) {
        let requeued = db.write_blocking(workflow::mail::requeue_unsent)?;
        if requeued > 0 {
            tracing::info!(mails = requeued, "sending mails queued while no SMTP server was configured");
        }
    }
    let node = format!("{}-{}", listen, std::process::id());
    let worker =
        kernel::jobs::Worker::new(db.clone(), job_registry(), node).spawn().context("starting the job worker")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let config = web::Config { secure_cookies: settings.secure_cookies, ..Default::default() };
    // The account and contact pages show the built-in panels; later areas add theirs here
    // with `.with_panel(Arc::new(…))` (see web::pages::customers::panels).
    let state = web::AppState::new(db.clone(), config);
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
        let url = format!("http://{}", listener.local_addr()?);
        println!("Rapport is listening on {url} ({})", settings.database_redacted());
        if let Some((email, password)) = demo_login {
            println!("Demo admin login: {email} / {password}");
        }
        let app = web::app(state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("serving")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    // Drop the database (and its PostgreSQL clients) outside the runtime.
    drop(runtime);
    worker.shutdown();
    drop(db);
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
