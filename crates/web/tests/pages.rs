//! The HTML pages end to end: login, language, CSRF, navigation by permission, logout.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use kernel::identity::{passwords, users};
use kernel::testing::test_databases;
use kernel::{Channel, Db, Id, Principal};
use tower::ServiceExt;
use web::{AppState, Config};

const PASSWORD: &str = "correct-horse-1";

async fn create_user(db: &Db, email: &str, role: &str) -> Id {
    let hash = passwords::hash(PASSWORD).unwrap();
    let email = email.to_owned();
    let role = role.to_owned();
    db.write(move |tx| {
        let branch = kernel::setup::head_office(tx)?;
        let who = Principal::system(Channel::Cli);
        let input = users::NewUser {
            email,
            name: "Test Person".into(),
            password: PASSWORD.into(),
            role,
            branch_id: branch,
            locale: Some("en".into()),
            time_zone: Some("Asia/Shanghai".into()),
            manager_id: None,
        };
        users::create(tx, &who, input, hash).map(|u| u.id)
    })
    .await
    .unwrap()
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &axum::Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn post_form(uri: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn hidden_csrf(body: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker).expect("csrf field") + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

/// Logs in through the form; returns the session cookie pair.
async fn login(app: &axum::Router, email: &str, password: &str) -> Reply {
    let page = send(app, get("/login", None)).await;
    let csrf_cookie = set_cookie(&page, "rapport_login_csrf").expect("login csrf cookie");
    let token = cookie_value(&csrf_cookie);
    assert_eq!(hidden_csrf(&page.body), token);
    let body = format!("email={}&password={}&csrf_token={}", enc(email), enc(password), enc(&token));
    send(app, post_form("/login", Some(&format!("rapport_login_csrf={token}")), &body)).await
}

#[tokio::test]
async fn login_page_speaks_the_browsers_language() {
    for test in test_databases() {
        let app = web::app(AppState::new(test.db(), Config::default()));
        for (accept, expected) in [("zh-CN,zh;q=0.9", "登录"), ("ko-KR,ko;q=0.9", "로그인"), ("en-GB", "Log in")] {
            let request = Request::get("/login").header(header::ACCEPT_LANGUAGE, accept).body(Body::empty()).unwrap();
            let reply = send(&app, request).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert!(reply.body.contains(expected), "{accept}: {}", reply.body);
        }
        // ?lang= overrides and is remembered in a cookie.
        let reply = send(&app, get("/login?lang=ko-KR", None)).await;
        assert!(reply.body.contains("<html lang=\"ko-KR\">"));
        assert!(set_cookie(&reply, "rapport_lang").unwrap().starts_with("rapport_lang=ko-KR"));
        let reply = send(&app, get("/login", Some("rapport_lang=zh-CN"))).await;
        assert!(reply.body.contains("<html lang=\"zh-CN\">"));
        // No inline script or style.
        assert!(!reply.body.contains("<script>") && !reply.body.contains("style="));
        assert!(reply.headers.get(header::CONTENT_SECURITY_POLICY).is_some());
    }
}

#[tokio::test]
async fn login_sets_the_session_cookie_and_wrong_password_is_refused() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "admin@example.com", "admin").await;
        let app = web::app(AppState::new(db, Config::default()));

        let wrong = login(&app, "admin@example.com", "not-the-password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.body.contains("Wrong e-mail address or password"));
        assert!(wrong.body.contains("value=\"admin@example.com\""));
        assert!(set_cookie(&wrong, "rapport_session").is_none());

        let ok = login(&app, "ADMIN@example.com", PASSWORD).await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER);
        assert_eq!(ok.headers.get(header::LOCATION).unwrap(), "/");
        let session = set_cookie(&ok, "rapport_session").expect("session cookie");
        assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax") && session.contains("Path=/"));
        assert!(session.contains(&format!("Max-Age={}", kernel::identity::sessions::ABSOLUTE_TIMEOUT.num_seconds())));
        assert!(!session.contains("Secure"));
    }
}

#[tokio::test]
async fn posts_without_csrf_are_refused() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "admin@example.com", "admin").await;
        let app = web::app(AppState::new(db, Config::default()));
        // Login form without the double-submit cookie.
        let body = format!("email=admin%40example.com&password={}&csrf_token=abc", enc(PASSWORD));
        let reply = send(&app, post_form("/login", None, &body)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(set_cookie(&reply, "rapport_session").is_none());
        // Logout without the session's token.
        let ok = login(&app, "admin@example.com", PASSWORD).await;
        let cookie = format!("rapport_session={}", cookie_value(&set_cookie(&ok, "rapport_session").unwrap()));
        let reply = send(&app, post_form("/logout", Some(&cookie), "csrf_token=wrong")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        // Still logged in.
        let home = send(&app, get("/", Some(&cookie))).await;
        assert_eq!(home.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn navigation_follows_permissions_and_logout_ends_the_session() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "admin@example.com", "admin").await;
        create_user(&db, "sales@example.com", "sales").await;
        let app = web::app(AppState::new(db, Config::default()));

        let anonymous = send(&app, get("/", None)).await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
        assert_eq!(anonymous.headers.get(header::LOCATION).unwrap(), "/login");

        let ok = login(&app, "admin@example.com", PASSWORD).await;
        let admin = format!("rapport_session={}", cookie_value(&set_cookie(&ok, "rapport_session").unwrap()));
        let home = send(&app, get("/", Some(&admin))).await;
        assert_eq!(home.status, StatusCode::OK);
        for link in ["href=\"/users\"", "href=\"/branches\"", "href=\"/roles\"", "href=\"/audit\"", "href=\"/account\""]
        {
            assert!(home.body.contains(link), "admin lacks {link}");
        }
        assert!(home.body.contains("Hello, Test Person"));

        let ok = login(&app, "sales@example.com", PASSWORD).await;
        let sales = format!("rapport_session={}", cookie_value(&set_cookie(&ok, "rapport_session").unwrap()));
        let home = send(&app, get("/", Some(&sales))).await;
        assert_eq!(home.status, StatusCode::OK);
        assert!(!home.body.contains("href=\"/roles\""));
        assert!(!home.body.contains("href=\"/audit\""));
        assert!(home.body.contains("href=\"/account\""));
        let roles = send(&app, get("/roles", Some(&sales))).await;
        assert_eq!(roles.status, StatusCode::FORBIDDEN);
        assert!(roles.body.contains("You do not have permission"));

        // Admin pages render for the admin.
        for page in
            ["/users", "/users/new", "/branches", "/branches/new", "/roles", "/roles/sales", "/audit", "/account"]
        {
            let reply = send(&app, get(page, Some(&admin))).await;
            assert_eq!(reply.status, StatusCode::OK, "{page}: {}", reply.body);
            assert!(
                !reply.body.contains("style=") && !reply.body.contains("<script>"),
                "{page} has inline style or script"
            );
            assert!(reply.body.contains("includeIndicatorStyles"));
        }

        let csrf = hidden_csrf(&home.body);
        let out = send(&app, post_form("/logout", Some(&sales), &format!("csrf_token={}", enc(&csrf)))).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        assert_eq!(out.headers.get(header::LOCATION).unwrap(), "/login");
        assert!(set_cookie(&out, "rapport_session").unwrap().contains("Max-Age=0"));
        let after = send(&app, get("/", Some(&sales))).await;
        assert_eq!(after.status, StatusCode::SEE_OTHER);
    }
}

fn form_value(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).unwrap_or_else(|| panic!("no field {name}")) + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn forms_create_validate_and_refuse_stale_versions() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "admin@example.com", "admin").await;
        let app = web::app(AppState::new(db, Config::default()));
        let ok = login(&app, "admin@example.com", PASSWORD).await;
        let admin = format!("rapport_session={}", cookie_value(&set_cookie(&ok, "rapport_session").unwrap()));
        let page = send(&app, get("/branches/new", Some(&admin))).await;
        let csrf = form_value(&page.body, "csrf_token");

        // A branch through the form; then an edit with an old version is refused with 412.
        let tree = send(&app, get("/branches", Some(&admin))).await;
        let hq = tree
            .body
            .split("href=\"/branches/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_owned())
            .find(|s| s != "new")
            .unwrap();
        let body = format!(
            "csrf_token={}&name=Seoul+store&parent_id={hq}&code=SEL&kind=store&region=KR&time_zone=Asia%2FSeoul",
            enc(&csrf)
        );
        let created = send(&app, post_form("/branches", Some(&admin), &body)).await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let location = created.headers.get(header::LOCATION).unwrap().to_str().unwrap().to_owned();
        let edit = send(&app, get(&location, Some(&admin))).await;
        assert!(edit.body.contains("Seoul store"));
        let id_path = location.split('?').next().unwrap().to_owned();
        let body = format!(
            "csrf_token={}&name=Seoul&parent_id={hq}&code=SEL&kind=store&region=KR&time_zone=Asia%2FSeoul&version=99",
            enc(&csrf)
        );
        let stale = send(&app, post_form(&id_path, Some(&admin), &body)).await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        assert!(stale.body.contains("Someone else changed this record"));

        // Delete asks first (a page), then deletes.
        let confirm = send(&app, get(&format!("{id_path}/delete"), Some(&admin))).await;
        assert_eq!(confirm.status, StatusCode::OK);
        assert!(confirm.body.contains("Really delete the branch Seoul store?"));
        let deleted =
            send(&app, post_form(&format!("{id_path}/delete"), Some(&admin), &format!("csrf_token={}", enc(&csrf))))
                .await;
        assert_eq!(deleted.status, StatusCode::SEE_OTHER);

        // A user with a bad e-mail address: 422 with the error next to the field.
        let body = format!(
            "csrf_token={}&name=Kim&email=not-an-email&password=long-enough-1&role=sales&branch_id={hq}&locale=ko-KR&time_zone=Asia%2FSeoul",
            enc(&csrf)
        );
        let bad = send(&app, post_form("/users", Some(&admin), &body)).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
        assert!(bad.body.contains("class=\"field-error\""));
        assert!(bad.body.contains("value=\"Kim\""));

        // API token: the secret is shown once.
        let made =
            send(&app, post_form("/account/tokens", Some(&admin), &format!("csrf_token={}&name=script", enc(&csrf))))
                .await;
        assert_eq!(made.status, StatusCode::OK);
        assert!(made.body.contains("class=\"secret\""));
        let again = send(&app, get("/account", Some(&admin))).await;
        assert!(!again.body.contains("class=\"secret\""));
        assert!(again.body.contains("script"));
    }
}

async fn enqueue_job(db: &Db, kind: &str, created_by: Option<Id>) -> Id {
    let kind = kind.to_owned();
    db.write(move |tx| kernel::jobs::enqueue(tx, &kind, serde_json::json!({}), created_by)).await.unwrap()
}

async fn session(app: &axum::Router, email: &str) -> String {
    let ok = login(app, email, PASSWORD).await;
    format!("rapport_session={}", cookie_value(&set_cookie(&ok, "rapport_session").unwrap()))
}

#[tokio::test]
async fn jobs_page_lists_own_jobs_only_and_explains_when_empty() {
    for test in test_databases() {
        let db = test.db();
        let sales = create_user(&db, "sales@example.com", "sales").await;
        let other = create_user(&db, "other@example.com", "sales").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "sales@example.com").await;

        // Nothing yet: an empty state that says what jobs are, and the nav link.
        let empty = send(&app, get("/jobs", Some(&cookie))).await;
        assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
        assert!(empty.body.contains("No background jobs yet"), "{}", empty.body);
        assert!(empty.body.contains("href=\"/jobs\" aria-current=\"page\""));
        assert!(empty.body.contains("data-live-jobs=\"/jobs?fragment=1\""));
        assert!(!empty.body.contains("/jobs/maintenance"), "no maintenance button without system.jobs.read");

        let mine = enqueue_job(&db, "import.customers", Some(sales)).await;
        let cleanup = enqueue_job(&db, kernel::jobs::MAINTENANCE_KIND, Some(sales)).await;
        let theirs = enqueue_job(&db, "export.secret", Some(other)).await;
        let system = enqueue_job(&db, kernel::jobs::MAINTENANCE_KIND, None).await;

        let page = send(&app, get("/jobs", Some(&cookie))).await;
        assert_eq!(page.status, StatusCode::OK);
        for own in [mine, cleanup] {
            assert!(page.body.contains(&format!("data-job-id=\"{own}\"")), "own job {own} listed");
        }
        for hidden in [theirs, system] {
            assert!(!page.body.contains(&format!("data-job-id=\"{hidden}\"")), "job {hidden} is not the caller's");
        }
        assert!(!page.body.contains("export.secret"));
        // Newest first, known kinds translated, status and progress shown.
        assert!(page.body.find(&cleanup.to_string()) < page.body.find(&mine.to_string()));
        assert!(page.body.contains(">Maintenance<") && page.body.contains(">import.customers<"));
        assert!(page.body.contains("data-status=\"queued\">Queued<"));
        assert!(page.body.contains("<progress data-field=\"progress\" max=\"100\" value=\"0\""));
        assert!(page.body.contains("0 of 5"));
        assert!(page.body.contains("data-status-running=\"Running\""));
        assert!(!page.body.contains("No background jobs yet"));
        assert!(!page.body.contains("style=") && !page.body.contains("<script>"));

        // The fragment the script reloads: the list alone, without the layout.
        let fragment = send(&app, get("/jobs?fragment=1", Some(&cookie))).await;
        assert_eq!(fragment.status, StatusCode::OK);
        assert!(fragment.body.contains(&format!("data-job-id=\"{mine}\"")));
        assert!(!fragment.body.contains("<html") && !fragment.body.contains("data-live-jobs"));

        // In Korean, with the user's language.
        db.write(move |tx| {
            let patch = users::UserPatch { locale: Some("ko-KR".into()), ..Default::default() };
            users::update(tx, &Principal::system(Channel::Cli), sales, patch)
        })
        .await
        .unwrap();
        let korean = send(&app, get("/jobs", Some(&cookie))).await;
        assert!(korean.body.contains("백그라운드 작업") && korean.body.contains(">유지 관리<"), "{}", korean.body);

        // Anonymous: to the login page.
        let anonymous = send(&app, get("/jobs", None)).await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn admin_sees_every_job_and_runs_maintenance_with_csrf() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let sales = create_user(&db, "sales@example.com", "sales").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let admin_cookie = session(&app, "admin@example.com").await;
        let sales_cookie = session(&app, "sales@example.com").await;
        let theirs = enqueue_job(&db, "import.customers", Some(sales)).await;
        let system = enqueue_job(&db, kernel::jobs::MAINTENANCE_KIND, None).await;

        let page = send(&app, get("/jobs", Some(&admin_cookie))).await;
        assert_eq!(page.status, StatusCode::OK);
        for id in [theirs, system] {
            assert!(page.body.contains(&format!("data-job-id=\"{id}\"")), "admin sees job {id}");
        }
        assert!(page.body.contains("action=\"/jobs/maintenance\"") && page.body.contains("Run maintenance now"));
        let csrf = hidden_csrf(&page.body);

        let queued_by = |who: Id| {
            let db = db.clone();
            async move {
                let jobs = db
                    .read(move |tx| {
                        let everyone = Principal::system(Channel::Cli);
                        kernel::jobs::list(tx, &everyone, &kernel::paging::PageRequest::default())
                    })
                    .await
                    .unwrap();
                jobs.items
                    .iter()
                    .filter(|j| {
                        j.kind == kernel::jobs::MAINTENANCE_KIND
                            && j.status == kernel::jobs::JobStatus::Queued
                            && j.created_by == Some(who)
                    })
                    .count()
            }
        };

        // Without the CSRF token: refused, nothing queued.
        let refused = send(&app, post_form("/jobs/maintenance", Some(&admin_cookie), "")).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let wrong = send(&app, post_form("/jobs/maintenance", Some(&admin_cookie), "csrf_token=wrong")).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        assert_eq!(queued_by(admin).await, 0);

        // With it: queued as the admin, back to the list, which shows it.
        let body = format!("csrf_token={}", enc(&csrf));
        let ran = send(&app, post_form("/jobs/maintenance", Some(&admin_cookie), &body)).await;
        assert_eq!(ran.status, StatusCode::SEE_OTHER, "{}", ran.body);
        assert_eq!(ran.headers.get(header::LOCATION).unwrap(), "/jobs");
        assert_eq!(queued_by(admin).await, 1);
        let after = send(&app, get("/jobs", Some(&admin_cookie))).await;
        assert!(after.body.matches("data-job-id=").count() == 3, "{}", after.body);

        // A user without system.jobs.read cannot, even with a valid token.
        let sales_page = send(&app, get("/jobs", Some(&sales_cookie))).await;
        assert!(!sales_page.body.contains("/jobs/maintenance"));
        let sales_csrf = hidden_csrf(&sales_page.body);
        let body = format!("csrf_token={}", enc(&sales_csrf));
        let denied = send(&app, post_form("/jobs/maintenance", Some(&sales_cookie), &body)).await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert!(denied.body.contains("You do not have permission"), "{}", denied.body);
        assert_eq!(queued_by(sales).await, 0);
    }
}
