//! Serves the web shell on 127.0.0.1:8099 over a SQLite file, for looking at the pages:
//! `cargo run -p web --example preview -- /tmp/preview.db [port]`. Seeds an administrator
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

/// A chain with stores, contacts, a timeline and tasks for the admin, once.
fn seed_customers(db: &Db) -> Fallible<()> {
    use customers::{accounts, activities, contacts, fields, tasks};
    db.write_blocking(|tx| {
        let Some(admin) = users::find_by_email(tx, "admin@example.com")? else { return Ok(()) };
        let who = kernel::identity::principal_for_user(tx, admin.id)?;
        let page = kernel::paging::PageRequest::parse(Some(1), None)?;
        if !accounts::list(tx, &who, &Default::default(), &page)?.items.is_empty() {
            return Ok(());
        }
        let category = fields::create_category(tx, &who, fields::NewCategory { name: "Department store".into() })?;
        for (key, label, kind, required, options) in [
            ("stores", "Number of stores", "number", true, None),
            ("tier", "Tier", "select", false, Some(vec!["A".to_owned(), "B".to_owned(), "C".to_owned()])),
            ("credit_limit", "Credit limit", "money", false, None),
            ("since", "Customer since", "date", false, None),
            ("edi", "EDI orders", "boolean", false, None),
        ] {
            fields::create_field(
                tx,
                &who,
                fields::NewCustomField {
                    category_id: category.id,
                    record_type: Some("account".into()),
                    key: key.into(),
                    label: label.into(),
                    field_type: kind.into(),
                    required,
                    options,
                },
            )?;
        }
        let custom = serde_json::json!({"stores": 38, "tier": "A", "credit_limit": {"amount": "2500000.00", "currency": "CNY"}, "since": "2011-03-01", "edi": true});
        let hq = accounts::create(
            tx,
            &who,
            accounts::NewAccount {
                name: "华联商厦 Hualian Department Store".into(),
                category_id: Some(category.id),
                phone: Some("010 6512 3456".into()),
                email: Some("purchasing@hualian.example.cn".into()),
                website: Some("https://hualian.example.cn".into()),
                external_id: Some("ERP-10023".into()),
                custom: custom.as_object().cloned(),
                region: Some("华北 North China".into()),
                addresses: Some(vec![customers::details::Address {
                    kind: "office".into(),
                    line1: "西单北大街 120号".into(),
                    city: "北京 Beijing".into(),
                    postcode: Some("100032".into()),
                    country: "CN".into(),
                    ..Default::default()
                }]),
                emails: Some(vec!["finance@hualian.example.cn".into()]),
                credit_limit: Some("2500000.00".into()),
                payment_terms_days: Some(45),
                tags: Some(vec!["key account".into(), "华北".into()]),
                ..Default::default()
            },
        )?;
        let mut store = None;
        for name in ["华联商厦 西单店", "华联商厦 望京店", "华联商厦 天津和平店"] {
            store = Some(
                accounts::create(
                    tx,
                    &who,
                    accounts::NewAccount { name: name.into(), parent_id: Some(hq.id), ..Default::default() },
                )?
                .id,
            );
        }
        let _ = store;
        let mut first = None;
        for (name, phone, email) in [
            ("王芳", "138 0013 8000", "wang.fang@hualian.example.cn"),
            ("李娜", "139 1234 5678", "li.na@hualian.example.cn"),
            ("김민준", "010-2345-6789", "minjun.kim@hualian.example.cn"),
        ] {
            let c = contacts::create(
                tx,
                &who,
                contacts::NewContact {
                    name: name.into(),
                    account_id: Some(hq.id),
                    phone: Some(phone.into()),
                    email: Some(email.into()),
                    title: Some("采购经理 Purchasing".into()),
                    is_member: Some(first.is_none()),
                    card_no: first.is_none().then(|| "HL-000123".into()),
                    birthday: chrono::NaiveDate::from_ymd_opt(1988, 5, 17).filter(|_| first.is_none()),
                    gender: first.is_none().then(|| "female".into()),
                    household_size: first.is_none().then_some(3),
                    member_since: chrono::NaiveDate::from_ymd_opt(2019, 9, 1).filter(|_| first.is_none()),
                    tags: Some(vec!["vip".into()]),
                    ..Default::default()
                },
            )?;
            first.get_or_insert(c.id);
        }
        let now = chrono::Utc::now();
        for (days, kind, subject, body) in [
            (20, "visit", "Quarterly review at head office", Some("Agreed on the spring promotion; they want 3% more margin.")),
            (9, "call", "Call with 王芳 about the order delay", None),
            (3, "email", "Sent the new price list", Some("Price list 2027 v2 attached.")),
            (1, "meeting", "Store opening plan, 天津和平店", None),
        ] {
            activities::create(
                tx,
                &who,
                activities::NewActivity {
                    kind: kind.into(),
                    account_id: Some(hq.id),
                    contact_id: if kind == "call" { first } else { None },
                    subject: subject.into(),
                    body: body.map(str::to_owned),
                    occurred_at: Some(now - chrono::Duration::days(days)),
                },
            )?;
        }
        for (hours, subject) in [(-30, "Send the signed contract"), (2, "Call 王芳 back about delivery"), (5, "Prepare visit to 望京店")] {
            tasks::create(
                tx,
                &who,
                tasks::NewTask {
                    subject: subject.into(),
                    due_at: Some(now + chrono::Duration::hours(hours)),
                    account_id: Some(hq.id),
                    ..Default::default()
                },
            )?;
        }
        println!("account page: http://127.0.0.1:8099/accounts/{}", hq.id);
        Ok::<_, kernel::Error>(())
    })
    .map_err(Into::into)
}

#[derive(serde::Deserialize)]
struct PreviewLogin {
    secret: String,
    to: String,
}

async fn preview_login(axum::extract::Query(q): axum::extract::Query<PreviewLogin>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let to = if q.to.starts_with('/') { q.to } else { "/".into() };
    let cookie = format!("rapport_session={}; Path=/; HttpOnly; SameSite=Lax", q.secret);
    ([(axum::http::header::SET_COOKIE, cookie)], axum::response::Redirect::to(&to)).into_response()
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
    seed_customers(&db)?;
    println!("admin cookie: rapport_session={admin}");
    println!("sales cookie: rapport_session={sales}");
    println!("zh cookie: rapport_session={zh}");
    let port = std::env::args().nth(2).unwrap_or_else(|| "8099".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("serving http://127.0.0.1:{port}");
    // `/preview/login?secret=…&to=/accounts/1` sets the session cookie and goes on, so a
    // headless browser can take a screenshot of a logged-in page from one URL.
    let preview = axum::Router::new().route("/preview/login", axum::routing::get(preview_login));
    axum::serve(listener, preview.merge(web::app(AppState::new(db, Config::default())))).await?;
    Ok(())
}
