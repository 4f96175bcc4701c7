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
    },
    /// Manage users
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API tokens
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Write a consistent copy of the SQLite database to FILE
    Backup { file: std::path::PathBuf },
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
    Ok(db)
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
        Command::Demo { listen, size } => {
            let db = open(&settings)?;
            let login = demo::seed(&db, &size)?;
            serve(db, settings.listen(listen.as_deref())?, settings, Some(login))
        }
        Command::Migrate => {
            let db = Db::open(&settings.database_url)
                .with_context(|| format!("opening {}", settings.database_redacted()))?;
            let applied = db.migrate().context("applying migrations")?;
            kernel::setup::ensure_defaults(&db)?;
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
        .with(workflow::mail::SEND_JOB, workflow::mail::send_job(workflow::mail::Smtp::from_env()))
        .with(workflow::engine::TIMEOUTS_JOB, workflow::engine::timeouts_job(workflow::Registry::standard()))
}

fn serve(db: Db, listen: SocketAddr, settings: Settings, demo_login: Option<(String, String)>) -> Result<()> {
    // Background work runs on its own thread (never an async one: see kernel::db).
    db.write_blocking(|tx| kernel::jobs::enqueue(tx, kernel::jobs::MAINTENANCE_KIND, serde_json::json!({}), None))?;
    db.write_blocking(workflow::engine::ensure_timeouts_job)?;
    let node = format!("{}-{}", listen, std::process::id());
    let worker =
        kernel::jobs::Worker::new(db.clone(), job_registry(), node).spawn().context("starting the job worker")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let config = web::Config { secure_cookies: settings.secure_cookies, ..Default::default() };
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
