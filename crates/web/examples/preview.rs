//! Serves the web shell on 127.0.0.1:8099 over a SQLite file, for looking at the pages:
//! `cargo run -p web --example preview -- /tmp/preview.db`. Seeds an administrator
//! (admin@example.com / demo-password-1) and a sales user, and prints a session cookie
//! for each so screenshots of logged-in pages need no login step.
use kernel::identity::{passwords, sessions, users};
use kernel::{Channel, Db, Principal};
use web::{AppState, Config};

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

fn seed(db: &Db, email: &str, name: &str, role: &str, locale: &str, zone: &str) -> Fallible<String> {
    let hash = passwords::hash("demo-password-1")?;
    let (email, name, role, locale, zone) =
        (email.to_owned(), name.to_owned(), role.to_owned(), locale.to_owned(), zone.to_owned());
    db.write_blocking(move |tx| {
        let id = match users::find_by_email(tx, &email)? {
            Some(u) => u.id,
            None => {
                let branch = kernel::setup::head_office(tx)?;
                let input = users::NewUser {
                    email,
                    name,
                    password: "demo-password-1".into(),
                    role,
                    branch_id: branch,
                    locale: Some(locale),
                    time_zone: Some(zone),
                    manager_id: None,
                };
                users::create(tx, &Principal::system(Channel::Cli), input, hash)?.id
            }
        };
        Ok::<_, kernel::Error>(sessions::create(tx, id, None, Some("preview"))?.secret)
    })
    .map_err(Into::into)
}

#[tokio::main]
async fn main() -> Fallible<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/tmp/rapport-preview.db".into());
    let db = Db::open(&format!("sqlite://{path}"))?;
    db.migrate()?;
    kernel::setup::ensure_defaults(&db)?;
    let admin = seed(&db, "admin@example.com", "Ada Admin", "admin", "en", "Asia/Shanghai")?;
    let sales = seed(&db, "sales@example.com", "김영업", "sales", "ko-KR", "Asia/Seoul")?;
    let zh = seed(&db, "zh@example.com", "王经理", "manager", "zh-CN", "Asia/Shanghai")?;
    println!("admin cookie: rapport_session={admin}");
    println!("sales cookie: rapport_session={sales}");
    println!("zh cookie: rapport_session={zh}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8099").await?;
    println!("serving http://127.0.0.1:8099");
    axum::serve(listener, web::app(AppState::new(db, Config::default()))).await?;
    Ok(())
}
