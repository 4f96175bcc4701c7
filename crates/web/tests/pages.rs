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

/// The customer pages (accounts, contacts, customer 360, activities, tasks).
#[path = "pages/customers.rs"]
mod customers;

/// The working-calendar and delegation pages.
#[path = "pages/calendars.rs"]
mod calendars;

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
async fn repeated_wrong_passwords_lock_the_account_with_a_translated_message() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "rep@example.com", "sales").await;
        let app = web::app(AppState::new(db, Config::default()));
        for _ in 1..kernel::identity::login::ACCOUNT_FAILURES_BEFORE_LOCK {
            assert_eq!(login(&app, "rep@example.com", "wrong password").await.status, StatusCode::UNAUTHORIZED);
        }
        // The failure that reaches the limit locks the account; so is the right password then.
        for password in ["wrong password", PASSWORD] {
            let locked = login(&app, "rep@example.com", password).await;
            assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{password}");
            assert!(locked.body.contains("Too many"), "{}", locked.body);
            assert!(set_cookie(&locked, "rapport_session").is_none());
        }
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

fn location(reply: &Reply) -> String {
    reply.headers.get(header::LOCATION).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

async fn stored_user(db: &Db, id: Id) -> Option<users::User> {
    db.read(move |tx| users::find(tx, id)).await.unwrap()
}

fn csrf_body(csrf: &str) -> String {
    format!("csrf_token={}", enc(csrf))
}

#[tokio::test]
async fn users_are_deactivated_deleted_and_restored_after_confirmation() {
    for test in test_databases() {
        let db = test.db();
        let admin_id = create_user(&db, "admin@example.com", "admin").await;
        let kim = create_user(&db, "kim@example.com", "sales").await;
        create_user(&db, "sales@example.com", "sales").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let admin = session(&app, "admin@example.com").await;
        let edit = send(&app, get(&format!("/users/{kim}"), Some(&admin))).await;
        assert_eq!(edit.status, StatusCode::OK);
        assert!(edit.body.contains(&format!("href=\"/users/{kim}/deactivate\"")), "{}", edit.body);
        assert!(edit.body.contains(&format!("href=\"/users/{kim}/delete\"")));
        let csrf = hidden_csrf(&edit.body);

        // Deactivate: a confirmation page first; the post needs the CSRF token.
        let confirm = send(&app, get(&format!("/users/{kim}/deactivate"), Some(&admin))).await;
        assert_eq!(confirm.status, StatusCode::OK);
        assert!(confirm.body.contains("Really deactivate Test Person?"), "{}", confirm.body);
        assert!(confirm.body.contains(&format!("action=\"/users/{kim}/deactivate\"")));
        assert!(!confirm.body.contains("style=") && !confirm.body.contains("<script>"));
        let refused = send(&app, post_form(&format!("/users/{kim}/deactivate"), Some(&admin), "")).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(stored_user(&db, kim).await.unwrap().active);
        let done = send(&app, post_form(&format!("/users/{kim}/deactivate"), Some(&admin), &csrf_body(&csrf))).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(location(&done), format!("/users/{kim}?saved=deactivated"));
        assert!(!stored_user(&db, kim).await.unwrap().active);
        let page = send(&app, get(&location(&done), Some(&admin))).await;
        assert!(page.body.contains("The user has been deactivated."));
        assert!(page.body.contains(&format!("action=\"/users/{kim}/activate\"")));
        // Reactivate is one button.
        let done = send(&app, post_form(&format!("/users/{kim}/activate"), Some(&admin), &csrf_body(&csrf))).await;
        assert_eq!(location(&done), format!("/users/{kim}?saved=activated"));
        assert!(stored_user(&db, kim).await.unwrap().active);

        // One cannot deactivate oneself: the form says why; one's own page offers neither.
        let own = send(&app, get(&format!("/users/{admin_id}"), Some(&admin))).await;
        assert!(!own.body.contains("/deactivate\"") && !own.body.contains("/delete\""));
        let selfish =
            send(&app, post_form(&format!("/users/{admin_id}/deactivate"), Some(&admin), &csrf_body(&csrf))).await;
        assert_eq!(selfish.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", selfish.body);
        assert!(selfish.body.contains("Please correct the marked fields."));

        // Delete: confirmation, then the user leaves the list for the deleted users.
        let confirm = send(&app, get(&format!("/users/{kim}/delete"), Some(&admin))).await;
        assert!(confirm.body.contains("Really delete Test Person?"), "{}", confirm.body);
        let done = send(&app, post_form(&format!("/users/{kim}/delete"), Some(&admin), &csrf_body(&csrf))).await;
        assert_eq!(location(&done), "/users/deleted?done=deleted");
        assert!(stored_user(&db, kim).await.is_none());
        let list = send(&app, get("/users", Some(&admin))).await;
        assert!(!list.body.contains("kim@example.com"));
        assert!(list.body.contains("href=\"/users/deleted\""));
        let deleted = send(&app, get("/users/deleted?done=deleted", Some(&admin))).await;
        assert_eq!(deleted.status, StatusCode::OK);
        assert!(deleted.body.contains("The user has been deleted."));
        assert!(deleted.body.contains("kim@example.com") && deleted.body.contains("Sales representative"));
        assert!(deleted.body.contains(&format!("action=\"/users/{kim}/restore\"")));

        // A sales rep (own scope, no delete permission) sees none of it and cannot restore.
        let sales = session(&app, "sales@example.com").await;
        let theirs = send(&app, get("/users/deleted", Some(&sales))).await;
        assert_eq!(theirs.status, StatusCode::OK);
        assert!(!theirs.body.contains("kim@example.com"));
        let sales_csrf = hidden_csrf(&theirs.body);
        let denied =
            send(&app, post_form(&format!("/users/{kim}/restore"), Some(&sales), &csrf_body(&sales_csrf))).await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert!(stored_user(&db, kim).await.is_none());

        // Restore brings them back, active.
        let done = send(&app, post_form(&format!("/users/{kim}/restore"), Some(&admin), &csrf_body(&csrf))).await;
        assert_eq!(location(&done), format!("/users/{kim}?saved=restored"));
        assert!(stored_user(&db, kim).await.unwrap().active);
        let page = send(&app, get(&location(&done), Some(&admin))).await;
        assert!(page.body.contains("The user has been restored."));
    }
}

#[tokio::test]
async fn user_filters_stay_in_next_page_links_and_managers_are_picked() {
    for test in test_databases() {
        let db = test.db();
        let admin_id = create_user(&db, "admin@example.com", "admin").await;
        // 55 sales reps (one hash for all), one of them inactive, and a viewer.
        let hash = passwords::hash(PASSWORD).unwrap();
        let (branch, quiet) = db
            .write(move |tx| {
                let branch = kernel::setup::head_office(tx)?;
                let who = Principal::system(Channel::Cli);
                let mut ids = Vec::new();
                for n in 0..56 {
                    let input = users::NewUser {
                        email: format!("rep{n}@example.com"),
                        name: format!("Rep {n}"),
                        password: PASSWORD.into(),
                        role: if n == 55 { "viewer".into() } else { "sales".into() },
                        branch_id: branch,
                        ..Default::default()
                    };
                    ids.push(users::create(tx, &who, input, hash.clone())?.id);
                }
                let patch = users::UserPatch { active: Some(false), ..Default::default() };
                users::update(tx, &who, ids[3], patch)?;
                Ok::<_, kernel::Error>((branch, ids[3]))
            })
            .await
            .unwrap();
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let admin = session(&app, "admin@example.com").await;

        let first = send(&app, get(&format!("/users?role=sales&status=active&branch_id={branch}"), Some(&admin))).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);
        assert!(
            first.body.contains("<option value=\"sales\" selected>Sales representative</option>"),
            "{}",
            first.body
        );
        assert!(first.body.contains("<option value=\"active\" selected>"));
        assert!(!first.body.contains("rep3@example.com") && !first.body.contains("rep55@example.com"));
        let marker = "<a href=\"/users?";
        let start = first.body.find(marker).expect("a next page link") + "<a href=\"".len();
        let next = first.body[start..].split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&");
        for kept in ["role=sales", "status=active", &format!("branch_id={branch}"), "cursor="] {
            assert!(next.contains(kept), "{next} lacks {kept}");
        }
        let second = send(&app, get(&next, Some(&admin))).await;
        assert_eq!(second.status, StatusCode::OK);
        let emails = |body: &str| -> Vec<String> {
            body.split("data-label=\"E-mail address\">")
                .skip(1)
                .map(|s| s.split('<').next().unwrap().to_owned())
                .collect()
        };
        let (mut seen, more) = (emails(&first.body), emails(&second.body));
        assert_eq!((seen.len(), more.len()), (50, 4));
        seen.extend(more);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 54, "every active sales rep once");
        assert!(seen.iter().all(|e| e.starts_with("rep") && e != "rep3@example.com" && e != "rep55@example.com"));

        let inactive = send(&app, get("/users?status=inactive", Some(&admin))).await;
        assert!(inactive.body.contains("rep3@example.com") && !inactive.body.contains("rep4@example.com"));
        let viewers = send(&app, get("/users?role=viewer", Some(&admin))).await;
        assert!(viewers.body.contains("rep55@example.com") && viewers.body.contains(">Viewer<"));
        assert!(!viewers.body.contains("rep4@example.com"));

        // The manager picker offers active users in scope, never the user themself.
        let target = db.read(|tx| users::find_by_email(tx, "rep10@example.com")).await.unwrap().unwrap().id;
        let edit = send(&app, get(&format!("/users/{target}"), Some(&admin))).await;
        assert!(edit.body.contains("<select id=\"manager_id\" name=\"manager_id\">"));
        assert!(edit.body.contains(&format!("<option value=\"{admin_id}\">Test Person ")));
        assert!(!edit.body.contains(&format!("<option value=\"{target}\"")));
        assert!(!edit.body.contains(&format!("<option value=\"{quiet}\"")), "inactive users are not offered");
        let csrf = hidden_csrf(&edit.body);
        let version = form_value(&edit.body, "version");
        let user = stored_user(&db, target).await.unwrap();
        let body = format!(
            "csrf_token={}&version={version}&name={}&email={}&role=sales&branch_id={branch}&manager_id={admin_id}&locale=en&time_zone=UTC",
            enc(&csrf),
            enc(&user.name),
            enc(&user.email)
        );
        let saved = send(&app, post_form(&format!("/users/{target}"), Some(&admin), &body)).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let user = stored_user(&db, target).await.unwrap();
        assert_eq!(user.manager_id, Some(admin_id));
        assert!(user.active, "saving the form leaves the user active");
    }
}

#[tokio::test]
async fn deleted_branches_are_restored_from_their_list() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "admin@example.com", "admin").await;
        let store = db
            .write(|tx| {
                let hq = kernel::setup::head_office(tx)?;
                let input = kernel::identity::branches::NewBranch {
                    name: "Busan store".into(),
                    parent_id: Some(hq),
                    kind: Some("store".into()),
                    ..Default::default()
                };
                kernel::identity::branches::create(tx, &Principal::system(Channel::Cli), input).map(|b| b.id)
            })
            .await
            .unwrap();
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let admin = session(&app, "admin@example.com").await;
        let tree = send(&app, get("/branches", Some(&admin))).await;
        assert!(tree.body.contains("href=\"/branches/deleted\""));
        let csrf = hidden_csrf(&tree.body);

        let done = send(&app, post_form(&format!("/branches/{store}/delete"), Some(&admin), &csrf_body(&csrf))).await;
        assert_eq!(location(&done), "/branches/deleted?done=deleted");
        let deleted = send(&app, get(&location(&done), Some(&admin))).await;
        assert_eq!(deleted.status, StatusCode::OK);
        assert!(deleted.body.contains("The branch has been deleted."));
        assert!(deleted.body.contains("Busan store") && deleted.body.contains(">Store<"), "{}", deleted.body);
        assert!(deleted.body.contains(&format!("action=\"/branches/{store}/restore\"")));

        let refused = send(&app, post_form(&format!("/branches/{store}/restore"), Some(&admin), "")).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let done = send(&app, post_form(&format!("/branches/{store}/restore"), Some(&admin), &csrf_body(&csrf))).await;
        assert_eq!(location(&done), format!("/branches/{store}?saved=restored"));
        let page = send(&app, get(&location(&done), Some(&admin))).await;
        assert!(page.body.contains("The branch has been restored.") && page.body.contains("Busan store"));
        let deleted = send(&app, get("/branches/deleted", Some(&admin))).await;
        assert!(!deleted.body.contains("Busan store"));
        // Restoring again: nothing to restore, a 404 page.
        let again = send(&app, post_form(&format!("/branches/{store}/restore"), Some(&admin), &csrf_body(&csrf))).await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn custom_roles_are_created_with_permission_checkboxes() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "admin@example.com", "admin").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let admin = session(&app, "admin@example.com").await;

        let list = send(&app, get("/roles", Some(&admin))).await;
        assert!(list.body.contains("href=\"/roles/new\""));
        // The admin role's `*` is every permission, not "1".
        assert!(list.body.contains(">All permissions<"), "{}", list.body);
        assert!(list.body.contains(">Sales representative<"));

        let form = send(&app, get("/roles/new", Some(&admin))).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        assert!(form.body.contains("name=\"key\""));
        assert!(form.body.contains("name=\"permissions\" value=\"identity.users.read\""));
        let csrf = hidden_csrf(&form.body);

        // A bad key: 422 next to the field, the choices kept.
        let body = format!(
            "csrf_token={}&key=Area+Lead&name=Area+lead&data_scope=branch&permissions=identity.users.read",
            enc(&csrf)
        );
        let bad = send(&app, post_form("/roles", Some(&admin), &body)).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
        assert!(bad.body.contains("class=\"field-error\""));
        assert!(bad.body.contains("value=\"identity.users.read\" checked"));
        assert!(bad.body.contains("<option value=\"branch\" selected>"));

        // Without the CSRF token: refused.
        let body = "key=area_lead&name=Area+lead&data_scope=branch&permissions=identity.users.read";
        assert_eq!(send(&app, post_form("/roles", Some(&admin), body)).await.status, StatusCode::FORBIDDEN);

        let body = format!(
            "csrf_token={}&key=area_lead&name=Area+lead&data_scope=branch&permissions=identity.users.read&permissions=identity.branches.read",
            enc(&csrf)
        );
        let made = send(&app, post_form("/roles", Some(&admin), &body)).await;
        assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
        assert_eq!(location(&made), "/roles/area_lead?saved=1");
        let role =
            db.read(|tx| kernel::identity::roles::find(tx, "area_lead")).await.unwrap().expect("the role was created");
        assert_eq!(role.permissions, vec!["identity.branches.read", "identity.users.read"]);
        assert_eq!(role.data_scope, kernel::DataScope::Branch);
        let list = send(&app, get("/roles", Some(&admin))).await;
        assert!(list.body.contains(">Area lead</a>"), "custom roles keep their stored name");

        // The same key again is a conflict shown on the form.
        let again = send(&app, post_form("/roles", Some(&admin), &body)).await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.body.contains("a role with this key exists"));
    }
}

#[tokio::test]
async fn error_pages_keep_the_layout_and_stored_values_are_translated() {
    for test in test_databases() {
        let db = test.db();
        let admin_id = create_user(&db, "admin@example.com", "admin").await;
        create_user(&db, "sales@example.com", "sales").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let admin = session(&app, "admin@example.com").await;
        let sales = session(&app, "sales@example.com").await;

        // 403 and 404 inside the navigation, with a working logout form.
        let forbidden = send(&app, get("/roles", Some(&sales))).await;
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
        assert!(forbidden.body.contains("You do not have permission"));
        assert!(forbidden.body.contains("href=\"/account\"") && forbidden.body.contains("action=\"/logout\""));
        assert!(!forbidden.body.contains("name=\"csrf_token\" value=\"\""));
        let missing = send(&app, get("/users/123456789", Some(&admin))).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.body.contains("Not found.") && missing.body.contains("href=\"/users\""));
        // A refused post too (here: no CSRF token).
        let refused = send(&app, post_form("/jobs/maintenance", Some(&admin), "")).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.body.contains("href=\"/audit\""));
        // Anonymous visitors still go to the login page.
        assert_eq!(send(&app, get("/roles", None)).await.status, StatusCode::SEE_OTHER);

        // The audit log names actions, channels and record types in the reader's language.
        let audit = send(&app, get("/audit", Some(&admin))).await;
        assert!(audit.body.contains(">Logged in<") && audit.body.contains(">Web<"), "{}", audit.body);
        assert!(audit.body.contains(&format!(">User {admin_id}<")));
        assert!(audit.body.contains("<option value=\"password_reset\">Password reset</option>"));
        db.write(move |tx| {
            let patch = users::UserPatch { locale: Some("ko-KR".into()), ..Default::default() };
            users::update(tx, &Principal::system(Channel::Cli), admin_id, patch)
        })
        .await
        .unwrap();
        let audit = send(&app, get("/audit?action=login", Some(&admin))).await;
        assert!(audit.body.contains(">로그인<") && audit.body.contains(">웹<"), "{}", audit.body);
        let roles = send(&app, get("/roles", Some(&admin))).await;
        assert!(roles.body.contains(">모든 권한<") && roles.body.contains(">영업 담당자<"));
        assert!(roles.body.contains(">소속 지점 및 하위 지점<"));
        let users_page = send(&app, get("/users", Some(&admin))).await;
        assert!(users_page.body.contains(">관리자<"), "built-in role names in the user list");
        let missing = send(&app, get("/users/123456789", Some(&admin))).await;
        assert!(missing.body.contains("<html lang=\"ko-KR\">"));
    }
}

#[tokio::test]
async fn handover_page_previews_counts_then_hands_over() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "manager@example.com", "manager").await;
        let rep = create_user(&db, "rep@example.com", "sales").await;
        let next = create_user(&db, "next@example.com", "sales").await;
        create_user(&db, "viewer@example.com", "viewer").await;
        db.write(move |tx| {
            let who = kernel::identity::principal_for_user(tx, rep)?;
            for name in ["永辉超市", "华润万家"] {
                ::customers::accounts::create(
                    tx,
                    &who,
                    ::customers::accounts::NewAccount { name: name.into(), ..Default::default() },
                )?;
            }
            Ok::<_, kernel::Error>(())
        })
        .await
        .unwrap();
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let viewer = session(&app, "viewer@example.com").await;
        assert_eq!(send(&app, get("/admin/handover", Some(&viewer))).await.status, StatusCode::FORBIDDEN);

        let manager = session(&app, "manager@example.com").await;
        let page = send(&app, get("/admin/handover", Some(&manager))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("rep@example.com"));
        let csrf = form_value(&page.body, "csrf_token");
        let form = |action: &str, to: Id| {
            format!("csrf_token={}&from_user_id={rep}&to_user_id={to}&action={action}", enc(&csrf))
        };
        let same = send(&app, post_form("/admin/handover", Some(&manager), &form("preview", rep))).await;
        assert_eq!(same.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(same.body.contains("class=\"field-error\""));
        let preview = send(&app, post_form("/admin/handover", Some(&manager), &form("preview", next))).await;
        assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
        assert!(preview.body.contains("Would move"));
        assert!(preview.body.contains("<th scope=\"row\">Accounts</th><td>2</td>"), "{}", preview.body);
        let owner_of_all = |owner: Id| {
            let db = db.clone();
            async move {
                db.read(move |tx| {
                    tx.query_sql::<i64>("SELECT COUNT(*) FROM accounts WHERE owner_id = $1", &[owner.into()])
                })
                .await
                .unwrap()[0]
            }
        };
        assert_eq!(owner_of_all(rep).await, 2, "a preview moves nothing");
        let done = send(&app, post_form("/admin/handover", Some(&manager), &form("run", next))).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(done.body.contains("Handover done."));
        assert_eq!(owner_of_all(next).await, 2);
    }
}

fn multipart(uri: &str, cookie: &str, fields: &[(&str, Option<&str>, &[u8])]) -> Request<Body> {
    let boundary = "----rapport-test-boundary";
    let mut body = Vec::new();
    for (name, filename, data) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Request::post(uri)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn import_pages_upload_map_preview_start_and_show_progress() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "manager@example.com", "manager").await;
        create_user(&db, "sales@example.com", "sales").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        // Sales reps may not import: no menu entry, and the page is refused.
        let sales = session(&app, "sales@example.com").await;
        assert!(!send(&app, get("/", Some(&sales))).await.body.contains("href=\"/imports\""));
        assert_eq!(send(&app, get("/imports", Some(&sales))).await.status, StatusCode::FORBIDDEN);
        let cookie = session(&app, "manager@example.com").await;
        let page = send(&app, get("/imports", Some(&cookie))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("enctype=\"multipart/form-data\""));
        let csrf = hidden_csrf(&page.body);
        // An empty file is refused on the form, naming the problem.
        let reply = send(
            &app,
            multipart(
                "/imports",
                &cookie,
                &[
                    ("csrf_token", None, csrf.as_bytes()),
                    ("record_type", None, b"contact"),
                    ("file", Some("e.csv"), b""),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("the file is empty"), "{}", reply.body);
        // Without the CSRF token: refused.
        let reply = send(&app, multipart("/imports", &cookie, &[("file", Some("a.csv"), b"name\nA\n")])).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        // A GBK file: mapping screen with the detected encoding and suggested fields.
        let (gbk, _, _) = encoding_rs::GBK.encode("姓名,邮箱,备注\n张伟,zw@gome.cn,展会\n王芳,bad@,\n");
        let reply = send(
            &app,
            multipart(
                "/imports",
                &cookie,
                &[
                    ("csrf_token", None, csrf.as_bytes()),
                    ("record_type", None, b"contact"),
                    ("file", Some("cards.csv"), &gbk),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let at = location(&reply);
        let page = send(&app, get(&at, Some(&cookie))).await;
        assert!(page.body.contains("csv, GBK, 2 rows"), "{}", page.body);
        assert!(page.body.contains("<option value=\"name\" selected>"), "{}", page.body);
        assert!(page.body.contains("<option value=\"email\" selected>"));
        assert!(page.body.contains("张伟"));
        // Save the mapping (and under a name), see the dry-run preview; nothing written.
        let body = format!(
            "csrf_token={}&col_0=name&col_1=email&col_2=ignore&match_on=email&on_existing=update&date_format=&save_as=Fair",
            enc(&csrf)
        );
        let reply = send(&app, post_form(&at, Some(&cookie), &body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(reply.body.contains("Rows checked: 2 / 2"), "{}", reply.body);
        assert!(
            reply.body.contains("<td data-label=\"Row\">3</td><td data-label=\"Column\">邮箱</td>"),
            "{}",
            reply.body
        );
        assert!(reply.body.contains("Start the import"));
        let contacts: Vec<i64> = db.read(|tx| tx.query_sql("SELECT COUNT(*) FROM contacts", &[])).await.unwrap();
        assert_eq!(contacts[0], 0);
        let page = send(&app, get(&at, Some(&cookie))).await;
        assert!(page.body.contains(">Fair</option>"), "the saved mapping is offered");
        // Start: the progress fragment polls until the job is done, then shows the summary.
        let reply = send(&app, post_form(&format!("{at}/start"), Some(&cookie), &csrf_body(&csrf))).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let page = send(&app, get(&at, Some(&cookie))).await;
        assert!(page.body.contains("hx-trigger=\"every 1s\""), "{}", page.body);
        assert!(page.body.contains("Queued"));
        let registry =
            kernel::jobs::Registry::new().with(::customers::imports::IMPORT_JOB, ::customers::imports::import_job);
        let worker = kernel::jobs::Worker::new(db.clone(), registry, "test");
        assert!(kernel::db::off_runtime(|| worker.run_once()).unwrap());
        let fragment = send(&app, get(&format!("{at}/progress"), Some(&cookie))).await;
        assert!(!fragment.body.contains("hx-trigger"), "polling stops when done");
        assert!(fragment.body.contains("Done"));
        assert!(fragment.body.contains("<td data-label=\"Created\">1</td>"), "{}", fragment.body);
        assert!(fragment.body.contains("errors.csv"));
    }
}

#[tokio::test]
async fn expense_claims_are_filed_submitted_and_decided_from_the_pages() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "sales@example.com", "sales").await;
        let manager = create_user(&db, "manager@example.com", "manager").await;
        claim_process(&db, "Expense claims", "sequential", manager).await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let sales = session(&app, "sales@example.com").await;
        let form = send(&app, get("/expenses/new", Some(&sales))).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("href=\"/expenses\"") && form.body.contains("href=\"/approvals\""));
        let csrf = hidden_csrf(&form.body);
        // Bad input: the form comes back naming the fields, nothing written.
        let bad = send(
            &app,
            post_form(
                "/expenses",
                Some(&sales),
                &format!("csrf_token={}&amount=abc&currency=CNY&category=travel&description=", enc(&csrf)),
            ),
        )
        .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
        assert!(bad.body.contains("field-error") && bad.body.contains("is required"), "{}", bad.body);
        let created = send(
            &app,
            post_form(
                "/expenses",
                Some(&sales),
                &format!(
                    "csrf_token={}&amount=320.5&currency=CNY&category=meals&description={}",
                    enc(&csrf),
                    enc("客户午餐")
                ),
            ),
        )
        .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let at = location(&created);
        let detail = send(&app, get(&at, Some(&sales))).await;
        assert!(
            detail.body.contains("320.50 CNY")
                && detail.body.contains("Draft")
                && detail.body.contains("Submit for approval")
        );
        let submitted = send(&app, post_form(&format!("{at}/submit"), Some(&sales), &csrf_body(&csrf))).await;
        assert_eq!(submitted.status, StatusCode::SEE_OTHER);
        let detail = send(&app, get(&at, Some(&sales))).await;
        assert!(detail.body.contains("Pending") && !detail.body.contains("Submit for approval"));

        // The manager's inbox, in a phone-sized card with a comment box.
        let manager_cookie = session(&app, "manager@example.com").await;
        let inbox = send(&app, get("/approvals", Some(&manager_cookie))).await;
        assert_eq!(inbox.status, StatusCode::OK);
        assert!(inbox.body.contains("客户午餐") && inbox.body.contains("Step 1"), "{}", inbox.body);
        // The header counts what waits: one approval, one unread notice.
        assert!(inbox.body.contains("<span data-inbox>1</span>") && inbox.body.contains("<span data-unread>1</span>"));
        let marker = "action=\"/approvals/";
        let start = inbox.body.find(marker).unwrap() + marker.len();
        let id = inbox.body[start..].split('/').next().unwrap().to_owned();
        let csrf = hidden_csrf(&inbox.body);
        let decided = send(
            &app,
            post_form(
                &format!("/approvals/{id}/decide"),
                Some(&manager_cookie),
                &format!("csrf_token={}&decision=approve&comment={}", enc(&csrf), enc("可以")),
            ),
        )
        .await;
        assert_eq!(decided.status, StatusCode::SEE_OTHER);
        let inbox = send(&app, get(&location(&decided), Some(&manager_cookie))).await;
        assert!(inbox.body.contains("Approved.") && inbox.body.contains("Nothing waits"));
        assert!(inbox.body.contains("<span data-inbox>0</span>"));
        // A pass on a sequential step comes back as a refusal on the page.
        let refused = send(
            &app,
            post_form(
                &format!("/approvals/{id}/decide"),
                Some(&manager_cookie),
                &format!("csrf_token={}&decision=pass&to_user_id=1", enc(&csrf)),
            ),
        )
        .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        let detail = send(&app, get(&at, Some(&sales))).await;
        assert!(detail.body.contains("Approved") && detail.body.contains("可以"), "{}", detail.body);
        let bell = send(&app, get("/notifications", Some(&sales))).await;
        assert!(bell.body.contains("Approved: meals 320.50 CNY"), "{}", bell.body);
        assert!(!bell.body.contains("style=") && !bell.body.contains("<script>"));
    }
}

#[tokio::test]
async fn approval_processes_are_defined_and_versioned_from_the_editor() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "admin@example.com", "admin").await;
        create_user(&db, "sales@example.com", "sales").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let admin = session(&app, "admin@example.com").await;
        let form = send(&app, get("/approval-processes/new", Some(&admin))).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = hidden_csrf(&form.body);
        let body = |steps: &str, version: &str| {
            format!(
                "csrf_token={}&name={}&record_type=expense_claim&priority=5&active=on&conditions={}&steps={}{version}",
                enc(&csrf),
                enc("差旅报销"),
                enc(r#"[{"field": "amount", "op": ">=", "value": {"amount": "100", "currency": "CNY"}}]"#),
                enc(steps)
            )
        };
        // No steps: refused naming them, nothing written.
        let bad = send(&app, post_form("/approval-processes", Some(&admin), &body("[]", ""))).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.body.contains("at least one step"), "{}", bad.body);
        let ok = send(
            &app,
            post_form(
                "/approval-processes",
                Some(&admin),
                &body(r#"[{"kind": "sequential", "approvers": [{"kind": "manager"}]}]"#, ""),
            ),
        )
        .await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
        let list = send(&app, get("/approval-processes", Some(&admin))).await;
        assert!(list.body.contains("差旅报销") && list.body.contains("v1"));
        let marker = "href=\"/approval-processes/";
        let start = list.body.find(marker).unwrap() + marker.len();
        let id = list.body[start..].split('"').next().unwrap().to_owned();
        let id = if id == "new" {
            let rest = &list.body[start..];
            let s = rest.find(marker).unwrap() + marker.len();
            rest[s..].split('"').next().unwrap().to_owned()
        } else {
            id
        };
        let edit = send(&app, get(&format!("/approval-processes/{id}"), Some(&admin))).await;
        assert_eq!(edit.status, StatusCode::OK);
        let two = r#"[{"kind": "sequential", "approvers": [{"kind": "manager"}]}, {"kind": "sequential", "approvers": [{"kind": "role", "role": "finance"}]}]"#;
        let saved =
            send(&app, post_form(&format!("/approval-processes/{id}"), Some(&admin), &body(two, "&version=1"))).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let list = send(&app, get("/approval-processes", Some(&admin))).await;
        assert!(list.body.contains("v2"));
        // A sales rep may not open the editor.
        let sales = session(&app, "sales@example.com").await;
        assert_eq!(send(&app, get("/approval-processes/new", Some(&sales))).await.status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn account_page_sets_notification_preferences_with_one_button() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "rep@example.com", "sales").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let ok = login(&app, "rep@example.com", PASSWORD).await;
        let me = format!("rapport_session={}", cookie_value(&set_cookie(&ok, "rapport_session").unwrap()));
        // Every kind, both boxes ticked by default, each box named for screen readers.
        let page = send(&app, get("/account", Some(&me))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("action=\"/account/notifications\""), "{}", page.body);
        assert_eq!(page.body.matches("name=\"in_app\"").count(), 6);
        assert_eq!(page.body.matches("name=\"email\"").count(), 6);
        assert_eq!(page.body.matches(" checked>").count(), 12);
        assert!(page.body.contains("aria-label=\"Approval requests for me: E-mail\""));
        let csrf = form_value(&page.body, "csrf_token");
        // Without the CSRF token: refused, nothing saved.
        let refused = send(&app, post_form("/account/notifications", Some(&me), "in_app=approval.step")).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        // Untick mail for requests and everything for reminders; the rest stays ticked.
        let mut body = format!("csrf_token={}", enc(&csrf));
        for kind in
            ["approval.requested", "approval.submitted", "approval.step", "approval.finished", "approval.escalated"]
        {
            body.push_str(&format!("&in_app={kind}"));
            if kind != "approval.requested" {
                body.push_str(&format!("&email={kind}"));
            }
        }
        let saved = send(&app, post_form("/account/notifications", Some(&me), &body)).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        assert_eq!(location(&saved), "/account?saved=notifications");
        let page = send(&app, get("/account?saved=notifications", Some(&me))).await;
        assert!(page.body.contains("Notification preferences saved."));
        assert_eq!(page.body.matches(" checked>").count(), 9);
        assert!(
            page.body.contains(
                "name=\"email\" value=\"approval.requested\" aria-label=\"Approval requests for me: E-mail\">"
            )
        );
        assert!(page.body.contains(
            "name=\"in_app\" value=\"approval.reminder\" aria-label=\"Reminders of items waiting for me: In the app\">"
        ));
        let rows: Vec<i64> =
            db.read(|tx| tx.query_sql::<i64>("SELECT COUNT(*) FROM notification_preferences", &[])).await.unwrap();
        assert_eq!(rows[0], 2);
    }
}

#[tokio::test]
async fn receipts_are_added_shown_to_the_approver_and_passed_on_with_the_picker() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "sales@example.com", "sales").await;
        let manager = create_user(&db, "manager@example.com", "manager").await;
        create_user(&db, "li.na@example.com", "finance").await;
        claim_process(&db, "Relay claims", "relay", manager).await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let sales = session(&app, "sales@example.com").await;
        let form = send(&app, get("/expenses/new", Some(&sales))).await;
        let csrf = hidden_csrf(&form.body);
        let created = send(
            &app,
            post_form(
                "/expenses",
                Some(&sales),
                &format!("csrf_token={}&amount=66&currency=CNY&category=transport&description=taxi", enc(&csrf)),
            ),
        )
        .await;
        let at = location(&created);
        let detail = send(&app, get(&at, Some(&sales))).await;
        assert!(detail.body.contains("enctype=\"multipart/form-data\""), "{}", detail.body);
        assert!(detail.body.contains("accept=\"image/*,application/pdf\""));
        // Not an image: the page comes back naming the file field; a photo is added.
        let refused = send(
            &app,
            multipart(
                &format!("{at}/receipts"),
                &sales,
                &[("csrf_token", None, csrf.as_bytes()), ("file", Some("a.txt"), b"hello")],
            ),
        )
        .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(refused.body.contains("is not an image"), "{}", refused.body);
        let png = workflow::demo::receipt_png(4);
        let added = send(
            &app,
            multipart(
                &format!("{at}/receipts"),
                &sales,
                &[("csrf_token", None, csrf.as_bytes()), ("file", Some("出租车.png"), &png)],
            ),
        )
        .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
        let detail = send(&app, get(&at, Some(&sales))).await;
        assert!(
            detail.body.contains("出租车.png") && detail.body.contains("<img src=\"/api/v1/attachments/"),
            "{}",
            detail.body
        );
        // Deleting asks first (a page with one button).
        let marker = "/receipts/";
        let start = detail.body.find(marker).unwrap() + marker.len();
        let rid = detail.body[start..].split('/').next().unwrap().to_owned();
        let confirm = send(&app, get(&format!("{at}/receipts/{rid}/delete"), Some(&sales))).await;
        assert_eq!(confirm.status, StatusCode::OK);
        assert!(confirm.body.contains("Delete the receipt 出租车.png?"), "{}", confirm.body);
        let submitted = send(&app, post_form(&format!("{at}/submit"), Some(&sales), &csrf_body(&csrf))).await;
        assert_eq!(submitted.status, StatusCode::SEE_OTHER);
        // Locked while pending: the delete is refused on the confirmation page.
        let locked =
            send(&app, post_form(&format!("{at}/receipts/{rid}/delete"), Some(&sales), &csrf_body(&csrf))).await;
        assert_eq!(locked.status, StatusCode::CONFLICT, "{}", locked.body);

        // The approver's card shows the receipt and offers colleagues by name or e-mail.
        let manager_cookie = session(&app, "manager@example.com").await;
        let inbox = send(&app, get("/approvals", Some(&manager_cookie))).await;
        assert!(inbox.body.contains("出租车.png") && inbox.body.contains("<datalist id=\"people-"), "{}", inbox.body);
        let marker = "action=\"/approvals/";
        let start = inbox.body.find(marker).unwrap() + marker.len();
        let id = inbox.body[start..].split('/').next().unwrap().to_owned();
        let people = send(&app, get(&format!("/approvals/{id}/people?to_user_id=li"), Some(&manager_cookie))).await;
        assert_eq!(people.status, StatusCode::OK);
        assert!(people.body.contains("value=\"li.na@example.com\""), "{}", people.body);
        assert!(!people.body.contains("manager@example.com"));
        let csrf = hidden_csrf(&inbox.body);
        let passed = send(
            &app,
            post_form(
                &format!("/approvals/{id}/decide"),
                Some(&manager_cookie),
                &format!("csrf_token={}&decision=pass&to_user_id={}", enc(&csrf), enc("li.na@example.com")),
            ),
        )
        .await;
        assert_eq!(passed.status, StatusCode::SEE_OTHER, "{}", passed.body);
        let finance = session(&app, "li.na@example.com").await;
        let inbox = send(&app, get("/approvals", Some(&finance))).await;
        assert!(inbox.body.contains("出租车.png"), "{}", inbox.body);
        // The receipt itself downloads for the new approver (the session cookie works).
        let img = send(&app, get(&format!("/api/v1/attachments/{rid}"), Some(&finance))).await;
        assert_eq!(img.status, StatusCode::OK);
    }
}

/// An expense-claim process of one step of `kind` decided by `approver`.
async fn claim_process(db: &Db, name: &str, kind: &str, approver: Id) {
    let (name, kind) = (name.to_owned(), kind.to_owned());
    db.write(move |tx| {
        workflow::processes::create(
            tx,
            &Principal::system(Channel::Cli),
            &workflow::Registry::standard(),
            workflow::processes::NewProcess {
                name,
                record_type: "expense_claim".into(),
                steps: vec![workflow::processes::StepInput {
                    kind,
                    approvers: vec![serde_json::json!({"kind": "user", "user_id": approver})],
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
    })
    .await
    .unwrap();
}
