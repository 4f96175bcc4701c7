#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Black-box tests of `/api/v1` through the real router, on every test backend.
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use kernel::identity::{branches, passwords, tokens, users};
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Id, Principal};
use serde_json::{Value, json};
use tower::ServiceExt;

struct World {
    db: TestDb,
    app: Router,
    hq: Id,
    east: Id,
    west: Id,
    /// role → token of a user with that role in the east branch
    tokens: Vec<(String, String)>,
    west_sales: String,
    east_sales_id: Id,
}

fn system() -> Principal {
    Principal::system(Channel::Cli)
}

fn world(db: TestDb) -> World {
    // Setup uses the blocking API, which must not run on an async thread.
    kernel::db::off_runtime(move || build_world(db))
}

fn build_world(db: TestDb) -> World {
    let hash = passwords::hash("password123").unwrap();
    let (hq, east, west) = db
        .write_blocking(|tx| {
            let hq = kernel::setup::head_office(tx)?;
            let east = branches::create(
                tx,
                &system(),
                branches::NewBranch { name: "East".into(), parent_id: Some(hq), ..Default::default() },
            )?
            .id;
            let west = branches::create(
                tx,
                &system(),
                branches::NewBranch { name: "West".into(), parent_id: Some(hq), ..Default::default() },
            )?
            .id;
            Ok::<_, kernel::Error>((hq, east, west))
        })
        .unwrap();
    let make = |role: &str, branch: Id| -> (Id, String) {
        let email = format!("{role}.{branch}@example.com");
        let hash = hash.clone();
        db.write_blocking(|tx| {
            let user = users::create(
                tx,
                &system(),
                users::NewUser {
                    email,
                    name: role.into(),
                    password: "password123".into(),
                    role: role.into(),
                    branch_id: branch,
                    ..Default::default()
                },
                hash,
            )?;
            let token = tokens::create(tx, &system(), tokens::NewToken { name: "t".into(), user_id: Some(user.id) })?;
            Ok::<_, kernel::Error>((user.id, token.secret))
        })
        .unwrap()
    };
    let mut tokens = Vec::new();
    let mut east_sales_id = Id(0);
    for role in ["admin", "manager", "sales", "service", "marketing", "finance", "viewer"] {
        let (id, token) = make(role, if role == "admin" { hq } else { east });
        if role == "sales" {
            east_sales_id = id;
        }
        tokens.push((role.to_owned(), token));
    }
    let (_, west_sales) = make("manager", west);
    let app = web::app(web::AppState::new(db.db(), web::Config::default()));
    World { db, app, hq, east, west, tokens, west_sales, east_sales_id }
}

impl World {
    fn token(&self, role: &str) -> &str {
        &self.tokens.iter().find(|(r, _)| r == role).unwrap().1
    }
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json, headers)
}

/// Audit entries of changes. A token's first use is recorded (as `token_use`) by a write
/// that runs after the response, so it may land at any moment: leave it out of counts.
const CHANGES: &str = "audit_log WHERE action <> 'token_use'";

async fn count(db: &TestDb, table: &'static str) -> i64 {
    db.read(move |tx| tx.query_sql::<i64>(&format!("SELECT COUNT(*) FROM {table}"), &[]))
        .await
        .map(|v: Vec<i64>| v[0])
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_lifecycle_with_versions_and_audit() {
    for db in test_databases() {
        let w = world(db);
        let admin = w.token("admin");
        let (status, created, headers) = call(
            &w.app,
            Method::POST,
            "/api/v1/branches",
            Some(admin),
            Some(json!({"name": "上海南京路店", "parent_id": w.east.to_string()})),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(headers["location"], format!("/api/v1/branches/{id}").as_str());
        assert_eq!(headers["etag"], "\"1\"");

        let (status, _, _) = call(
            &w.app,
            Method::PATCH,
            &format!("/api/v1/branches/{id}"),
            Some(admin),
            Some(json!({"name": "Renamed"})),
            &[("if-match", "\"1\"")],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        // A stale If-Match is refused and writes nothing.
        let audit_before = count(&w.db, CHANGES).await;
        let (status, problem, headers) = call(
            &w.app,
            Method::PATCH,
            &format!("/api/v1/branches/{id}"),
            Some(admin),
            Some(json!({"name": "Lost"})),
            &[("if-match", "\"1\"")],
        )
        .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["code"], "stale_version");
        assert_eq!(count(&w.db, CHANGES).await, audit_before);

        let (status, audit, _) = call(
            &w.app,
            Method::GET,
            &format!("/api/v1/audit?record_type=branch&record_id={id}"),
            Some(admin),
            None,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let items = audit["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["action"], "update");
        assert_eq!(items[0]["changes"]["name"], json!({"old": "上海南京路店", "new": "Renamed"}));
        assert_eq!(items[0]["channel"], "api");
        assert!(items[0]["actor_id"].is_string() && items[0]["at"].is_string() && items[0]["record_type"] == "branch");

        let (status, _, _) =
            call(&w.app, Method::DELETE, &format!("/api/v1/branches/{id}"), Some(admin), None, &[]).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _, _) = call(&w.app, Method::GET, &format!("/api/v1/branches/{id}"), Some(admin), None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) =
            call(&w.app, Method::POST, &format!("/api/v1/branches/{id}/restore"), Some(admin), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_problem_and_writes_nothing() {
    for db in test_databases() {
        let w = world(db);
        let admin = w.token("admin");
        let before = (count(&w.db, "users").await, count(&w.db, "branches").await, count(&w.db, CHANGES).await);
        let long = "x".repeat(300);
        let cases: Vec<(&str, Option<Value>, &str, StatusCode, &str)> = vec![
            ("/api/v1/branches", None, "{not json", StatusCode::BAD_REQUEST, ""),
            ("/api/v1/branches", Some(json!({"name": 5})), "", StatusCode::UNPROCESSABLE_ENTITY, "name"),
            (
                "/api/v1/branches",
                Some(json!({"name": "ok", "colour": "red"})),
                "",
                StatusCode::UNPROCESSABLE_ENTITY,
                "colour",
            ),
            (
                "/api/v1/branches",
                Some(json!({"name": long, "parent_id": w.east.to_string()})),
                "",
                StatusCode::UNPROCESSABLE_ENTITY,
                "name",
            ),
            ("/api/v1/branches", Some(json!({"name": "orphan"})), "", StatusCode::UNPROCESSABLE_ENTITY, "parent_id"),
            (
                "/api/v1/users",
                Some(
                    json!({"email": "nope", "name": "A", "password": "password123", "role": "sales", "branch_id": w.east.to_string()}),
                ),
                "",
                StatusCode::UNPROCESSABLE_ENTITY,
                "email",
            ),
            (
                "/api/v1/users",
                Some(
                    json!({"email": "a@b.cn", "name": "A", "password": "short", "role": "sales", "branch_id": w.east.to_string()}),
                ),
                "",
                StatusCode::UNPROCESSABLE_ENTITY,
                "password",
            ),
            (
                "/api/v1/users",
                Some(json!({"email": "a@b.cn", "name": "A", "password": "password123", "role": "sales"})),
                "",
                StatusCode::UNPROCESSABLE_ENTITY,
                "branch_id",
            ),
        ];
        for (uri, body, raw, expected, field) in cases {
            let req = Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "application/json")
                .body(Body::from(body.map(|b| b.to_string()).unwrap_or_else(|| raw.to_owned())))
                .unwrap();
            let res = w.app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), expected, "{uri} {field}");
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            let problem: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
            if !field.is_empty() {
                assert_eq!(problem["errors"][0]["field"], field, "{problem}");
            }
        }
        // Oversize body.
        let huge = json!({"name": "x".repeat(2 * 1024 * 1024)});
        let (status, _, _) = call(&w.app, Method::POST, "/api/v1/branches", Some(admin), Some(huge), &[]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        // Wrong content type, bad limit, bad cursor, unknown query field.
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/branches")
            .header("authorization", format!("Bearer {admin}"))
            .body(Body::from("name=x"))
            .unwrap();
        assert_eq!(w.app.clone().oneshot(req).await.unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        for uri in ["/api/v1/users?limit=501", "/api/v1/users?cursor=zzz", "/api/v1/users?colour=red"] {
            let (status, _, _) = call(&w.app, Method::GET, uri, Some(admin), None, &[]).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
        }
        assert_eq!(before, (count(&w.db, "users").await, count(&w.db, "branches").await, count(&w.db, CHANGES).await));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_pagination_walks_every_row_once() {
    for db in test_databases() {
        let w = world(db);
        let admin = w.token("admin");
        for i in 0..7 {
            let (status, _, _) = call(
                &w.app,
                Method::POST,
                "/api/v1/branches",
                Some(admin),
                Some(json!({"name": format!("B{i}"), "parent_id": w.west.to_string()})),
                &[],
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let mut seen = Vec::new();
        let mut uri = format!("/api/v1/branches?limit=3&parent_id={}", w.west);
        loop {
            let (status, page, _) = call(&w.app, Method::GET, &uri, Some(admin), None, &[]).await;
            assert_eq!(status, StatusCode::OK);
            seen.extend(page["items"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => uri = format!("/api/v1/branches?limit=3&parent_id={}&cursor={c}", w.west),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).map(|i| format!("B{i}")).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_first_result() {
    for db in test_databases() {
        let w = world(db);
        let admin = w.token("admin");
        let body = json!({"name": "Once", "parent_id": w.east.to_string()});
        let (s1, first, _) = call(
            &w.app,
            Method::POST,
            "/api/v1/branches",
            Some(admin),
            Some(body.clone()),
            &[("idempotency-key", "k-1")],
        )
        .await;
        let (s2, second, headers) =
            call(&w.app, Method::POST, "/api/v1/branches", Some(admin), Some(body), &[("idempotency-key", "k-1")])
                .await;
        assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
        assert_eq!(first["id"], second["id"]);
        assert_eq!(headers["idempotent-replayed"], "true");
        let n: Vec<i64> =
            w.db.read(|tx| tx.query_sql("SELECT COUNT(*) FROM branches WHERE name = 'Once'", &[])).await.unwrap();
        assert_eq!(n[0], 1);
    }
}

/// Every endpoint × every built-in role, anonymous, and a user of another branch, from
/// one table: a new endpoint joins by adding a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    use StatusCode as S;
    const OK: S = S::OK;
    const NO: S = S::FORBIDDEN;
    for db in test_databases() {
        let w = world(db);
        let east = w.east.to_string();
        let rep = w.east_sales_id.to_string();
        // A job of the east sales rep: seen by its creator and by `system.jobs.read`
        // (admin's `*`, and the `*.read` of finance and viewer), hidden (404) from others.
        let sales_id = w.east_sales_id;
        let job =
            w.db.write(move |tx| kernel::jobs::enqueue(tx, "import.test", json!({}), Some(sales_id)))
                .await
                .unwrap()
                .to_string();
        // Customers: an account owned by the east manager (a sales rep's scope is their
        // own records, so it is 404 to them), and an account and contact of the rep.
        let (category, managers_account, reps_account, reps_contact, reps_activity, reps_task, model, reps_claim) =
            w.db.write(move |tx| {
                let who = system();
                let manager = users::find_by_email(tx, &format!("manager.{}@example.com", w.east))?.unwrap().id;
                let category = customers::fields::create_category(
                    tx,
                    &who,
                    customers::fields::NewCategory { name: "Chain".into() },
                )?;
                let account = |tx: &mut kernel::Tx<'_>, owner: Id| {
                    customers::accounts::create(
                        tx,
                        &who,
                        customers::accounts::NewAccount {
                            name: "Gome".into(),
                            branch_id: Some(w.east),
                            owner_id: Some(owner),
                            ..Default::default()
                        },
                    )
                };
                let managers = account(tx, manager)?;
                let reps = account(tx, sales_id)?;
                let contact = customers::contacts::create(
                    tx,
                    &who,
                    customers::contacts::NewContact {
                        name: "王芳".into(),
                        account_id: Some(reps.id),
                        owner_id: Some(sales_id),
                        ..Default::default()
                    },
                )?;
                // An activity and a task of the rep's, on the rep's account.
                let rep = kernel::identity::principal_for_user(tx, sales_id)?;
                let activity = customers::activities::create(
                    tx,
                    &rep,
                    customers::activities::NewActivity {
                        kind: "call".into(),
                        account_id: Some(reps.id),
                        subject: "Price call".into(),
                        ..Default::default()
                    },
                )?;
                let claim = workflow::expenses::create(
                    tx,
                    &rep,
                    workflow::expenses::NewClaim {
                        amount: Some(workflow::amount::Money { amount: "88".into(), currency: "CNY".into() }),
                        category: "travel".into(),
                        description: "Taxi".into(),
                    },
                )?;
                let task = customers::tasks::create(
                    tx,
                    &rep,
                    customers::tasks::NewTask {
                        subject: "Send the quote".into(),
                        due_at: Some(chrono::Utc::now()),
                        account_id: Some(reps.id),
                        ..Default::default()
                    },
                )?;
                // Field definitions, a spare category and saved views of the rep's.
                let field = |tx: &mut kernel::Tx<'_>, key: &str| {
                    customers::fields::create_field(
                        tx,
                        &who,
                        customers::fields::NewCustomField {
                            category_id: category.id,
                            key: key.into(),
                            label: key.into(),
                            field_type: "text".into(),
                            ..Default::default()
                        },
                    )
                };
                let kept = field(tx, "kept")?;
                let dropped = field(tx, "dropped")?;
                let spare = customers::fields::create_category(
                    tx,
                    &who,
                    customers::fields::NewCategory { name: "Spare".into() },
                )?;
                let view = |tx: &mut kernel::Tx<'_>, shared: bool| {
                    customers::views::create(
                        tx,
                        &rep,
                        customers::views::NewSavedView {
                            name: "VIP".into(),
                            record_type: "account".into(),
                            query: "tag=vip".into(),
                            shared,
                        },
                    )
                };
                let private = view(tx, false)?;
                let shared = view(tx, true)?;
                let model = [kept.id, dropped.id, spare.id, private.id, shared.id].map(|id| id.to_string());
                Ok::<_, kernel::Error>((
                    category.id.to_string(),
                    managers.id.to_string(),
                    reps.id.to_string(),
                    contact.id.to_string(),
                    activity.id.to_string(),
                    task.id.to_string(),
                    model,
                    claim.id.to_string(),
                ))
            })
            .await
            .unwrap();
        const CREATED: S = S::CREATED;
        const GONE: S = S::NOT_FOUND;
        let [kept_field, dropped_field, spare_category, private_view, shared_view] = model;
        const BAD: S = S::UNPROCESSABLE_ENTITY;
        // (method, path, body, expected per role: admin, manager, sales, service, marketing, finance, viewer)
        // `{role}` in a body is replaced by the calling role, for fields that must be unique.
        let table: Vec<(Method, String, Option<Value>, [S; 7])> = vec![
            (Method::GET, "/api/v1/me".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/users".into(), None, [OK, OK, OK, OK, OK, OK, OK]),
            (Method::GET, format!("/api/v1/users/{rep}"), None, [OK; 7]),
            (Method::GET, "/api/v1/branches".into(), None, [OK; 7]),
            (Method::GET, format!("/api/v1/branches/{east}"), None, [OK; 7]),
            (
                Method::POST,
                "/api/v1/branches".into(),
                Some(json!({"name": "N", "parent_id": east})),
                [S::CREATED, NO, NO, NO, NO, NO, NO],
            ),
            (
                Method::PATCH,
                format!("/api/v1/branches/{east}"),
                Some(json!({"code": "E1"})),
                [OK, NO, NO, NO, NO, NO, NO],
            ),
            (Method::GET, "/api/v1/roles".into(), None, [OK, OK, NO, NO, NO, NO, NO]),
            (
                Method::PATCH,
                "/api/v1/roles/viewer".into(),
                Some(json!({"name": "Viewer"})),
                [OK, NO, NO, NO, NO, NO, NO],
            ),
            (Method::GET, "/api/v1/permissions".into(), None, [OK, OK, NO, NO, NO, NO, NO]),
            (Method::GET, "/api/v1/audit".into(), None, [OK, OK, NO, NO, NO, NO, NO]),
            (
                Method::POST,
                "/api/v1/users".into(),
                Some(
                    json!({"email": "x@y.cn", "name": "X", "password": "password123", "role": "viewer", "branch_id": east}),
                ),
                [S::CREATED, NO, NO, NO, NO, NO, NO],
            ),
            (
                Method::PATCH,
                format!("/api/v1/users/{rep}"),
                Some(json!({"active": true})),
                [OK, NO, NO, NO, NO, NO, NO],
            ),
            (Method::GET, "/api/v1/tokens".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/jobs".into(), None, [OK; 7]),
            (
                Method::GET,
                format!("/api/v1/jobs/{job}"),
                None,
                [OK, S::NOT_FOUND, OK, S::NOT_FOUND, S::NOT_FOUND, S::NOT_FOUND, S::NOT_FOUND],
            ),
            (Method::GET, "/api/v1/customer-categories".into(), None, [OK; 7]),
            (
                Method::POST,
                "/api/v1/customer-categories".into(),
                Some(json!({"name": "Category of {role}"})),
                [CREATED, NO, NO, NO, NO, NO, NO],
            ),
            (Method::GET, "/api/v1/custom-fields".into(), None, [OK; 7]),
            (
                Method::POST,
                "/api/v1/custom-fields".into(),
                Some(json!({"category_id": category, "key": "k_{role}", "label": "K", "type": "text"})),
                [CREATED, NO, NO, NO, NO, NO, NO],
            ),
            (Method::GET, format!("/api/v1/customer-categories/{category}"), None, [OK; 7]),
            (
                Method::PATCH,
                format!("/api/v1/customer-categories/{category}"),
                Some(json!({"name": "Chains"})),
                [OK, NO, NO, NO, NO, NO, NO],
            ),
            (
                Method::DELETE,
                format!("/api/v1/customer-categories/{spare_category}"),
                None,
                [S::NO_CONTENT, NO, NO, NO, NO, NO, NO],
            ),
            (Method::GET, format!("/api/v1/custom-fields/{kept_field}"), None, [OK; 7]),
            (
                Method::PATCH,
                format!("/api/v1/custom-fields/{kept_field}"),
                Some(json!({"label": "Kept", "required": false})),
                [OK, NO, NO, NO, NO, NO, NO],
            ),
            (
                Method::DELETE,
                format!("/api/v1/custom-fields/{dropped_field}"),
                None,
                [S::NO_CONTENT, NO, NO, NO, NO, NO, NO],
            ),
            (Method::GET, "/api/v1/tags?record_type=account&q=v".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/saved-views".into(), None, [OK; 7]),
            (
                Method::POST,
                "/api/v1/saved-views".into(),
                Some(json!({"name": "Mine", "record_type": "contact", "query": "is_member=true&sort=-name"})),
                [CREATED; 7],
            ),
            (Method::GET, format!("/api/v1/saved-views/{shared_view}"), None, [OK; 7]),
            (
                Method::GET,
                format!("/api/v1/saved-views/{private_view}"),
                None,
                [GONE, GONE, OK, GONE, GONE, GONE, GONE],
            ),
            (
                Method::PATCH,
                format!("/api/v1/saved-views/{shared_view}"),
                Some(json!({"name": "VIPs"})),
                [GONE, GONE, OK, GONE, GONE, GONE, GONE],
            ),
            (
                Method::DELETE,
                format!("/api/v1/saved-views/{private_view}"),
                None,
                [GONE, GONE, S::NO_CONTENT, GONE, GONE, GONE, GONE],
            ),
            (Method::GET, "/api/v1/accounts?tag=vip&sort=-name&custom.kept=x".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/contacts?is_member=false&sort=created_at".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/accounts".into(), None, [OK; 7]),
            (
                Method::POST,
                "/api/v1/accounts".into(),
                Some(json!({"name": "Suning"})),
                [CREATED, CREATED, CREATED, NO, NO, NO, NO],
            ),
            (Method::GET, format!("/api/v1/accounts/{managers_account}"), None, [OK, OK, GONE, OK, OK, OK, OK]),
            (Method::GET, format!("/api/v1/accounts/{reps_account}"), None, [OK; 7]),
            (
                Method::PATCH,
                format!("/api/v1/accounts/{reps_account}"),
                Some(json!({"status": "active"})),
                [OK, OK, OK, NO, NO, NO, NO],
            ),
            (
                Method::PATCH,
                format!("/api/v1/accounts/{managers_account}"),
                Some(json!({"status": "active"})),
                [OK, OK, GONE, NO, NO, NO, NO],
            ),
            (Method::GET, format!("/api/v1/accounts/{reps_account}/timeline"), None, [OK; 7]),
            (
                Method::GET,
                format!("/api/v1/accounts/{managers_account}/timeline"),
                None,
                [OK, OK, GONE, OK, OK, OK, OK],
            ),
            // The admin deletes it first; then it is gone for those who may delete.
            (
                Method::DELETE,
                format!("/api/v1/accounts/{managers_account}"),
                None,
                [S::NO_CONTENT, GONE, GONE, NO, NO, NO, NO],
            ),
            (Method::GET, "/api/v1/contacts".into(), None, [OK; 7]),
            (
                Method::POST,
                "/api/v1/contacts".into(),
                Some(json!({"name": "김민준", "account_id": reps_account})),
                [CREATED, CREATED, CREATED, NO, NO, NO, NO],
            ),
            (Method::GET, format!("/api/v1/contacts/{reps_contact}"), None, [OK; 7]),
            (Method::GET, format!("/api/v1/contacts/{reps_contact}/timeline"), None, [OK; 7]),
            // Search: 王 (percent-encoded), and the lists' `q=`.
            (Method::GET, "/api/v1/search?q=%E7%8E%8B&limit=5".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/contacts?q=%E7%8E%8B".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/accounts?q=gome".into(), None, [OK; 7]),
            (
                Method::PATCH,
                format!("/api/v1/contacts/{reps_contact}"),
                Some(json!({"name": "王芳"})),
                [OK, OK, OK, NO, NO, NO, NO],
            ),
            (Method::GET, "/api/v1/activities".into(), None, [OK; 7]),
            (
                Method::POST,
                "/api/v1/activities".into(),
                Some(json!({"kind": "visit", "contact_id": reps_contact, "subject": "Store visit"})),
                [CREATED, CREATED, CREATED, NO, NO, NO, NO],
            ),
            (Method::GET, format!("/api/v1/activities/{reps_activity}"), None, [OK; 7]),
            (
                Method::PATCH,
                format!("/api/v1/activities/{reps_activity}"),
                Some(json!({"subject": "Price call, 5% promised"})),
                [OK, OK, OK, NO, NO, NO, NO],
            ),
            (
                Method::DELETE,
                format!("/api/v1/activities/{reps_activity}"),
                None,
                [S::NO_CONTENT, GONE, GONE, NO, NO, NO, NO],
            ),
            (
                Method::POST,
                format!("/api/v1/activities/{reps_activity}/restore"),
                None,
                [OK, GONE, GONE, NO, NO, NO, NO],
            ),
            (Method::GET, format!("/api/v1/tasks/{reps_task}"), None, [OK; 7]),
            (Method::GET, "/api/v1/tasks".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/tasks/my-day".into(), None, [OK; 7]),
            (
                Method::POST,
                "/api/v1/tasks".into(),
                Some(json!({"subject": "Call back", "due_at": "2026-03-10T01:00:00Z", "account_id": reps_account})),
                [CREATED, CREATED, CREATED, NO, NO, NO, NO],
            ),
            (
                Method::PATCH,
                format!("/api/v1/tasks/{reps_task}"),
                Some(json!({"status": "done"})),
                [OK, OK, OK, NO, NO, NO, NO],
            ),
            (Method::DELETE, format!("/api/v1/tasks/{reps_task}"), None, [S::NO_CONTENT, GONE, GONE, NO, NO, NO, NO]),
            // Data quality: duplicates, merges, handovers, consent, personal data.
            (Method::GET, "/api/v1/duplicates?record_type=contact".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/duplicates?record_type=account".into(), None, [OK; 7]),
            (
                Method::POST,
                "/api/v1/merges".into(),
                Some(json!({"record_type": "contact", "keep_id": reps_contact, "merge_ids": []})),
                [BAD, BAD, NO, NO, NO, NO, NO],
            ),
            (Method::POST, "/api/v1/merges/1234/undo".into(), None, [GONE, GONE, NO, NO, NO, NO, NO]),
            (
                Method::POST,
                "/api/v1/handovers".into(),
                Some(json!({"from_user_id": rep, "to_user_id": rep, "dry_run": true})),
                [BAD, BAD, NO, NO, NO, NO, NO],
            ),
            (Method::GET, format!("/api/v1/contacts/{reps_contact}/consents"), None, [OK; 7]),
            (
                Method::PUT,
                format!("/api/v1/contacts/{reps_contact}/consents/email"),
                Some(json!({"granted": true, "source": "web form"})),
                [OK, OK, OK, NO, NO, NO, NO],
            ),
            (
                Method::PUT,
                format!("/api/v1/contacts/{reps_contact}/do-not-contact"),
                Some(json!({"value": false})),
                [OK, OK, OK, NO, NO, NO, NO],
            ),
            (Method::GET, format!("/api/v1/contacts/{reps_contact}/personal-data"), None, [OK, OK, NO, NO, NO, NO, NO]),
            (
                Method::POST,
                format!("/api/v1/contacts/{reps_contact}/erase"),
                Some(json!({"confirm": "not the id"})),
                [BAD, BAD, NO, NO, NO, NO, NO],
            ),
            // Import and export (customers.import, customers.export): admins and managers.
            (
                Method::POST,
                "/api/v1/imports?record_type=contact&filename=empty.csv".into(),
                None,
                [S::UNPROCESSABLE_ENTITY, S::UNPROCESSABLE_ENTITY, NO, NO, NO, NO, NO],
            ),
            (Method::GET, "/api/v1/import-mappings".into(), None, [OK, OK, NO, NO, NO, NO, NO]),
            (
                Method::POST,
                "/api/v1/import-mappings".into(),
                Some(json!({"name": "cards {role}", "record_type": "contact", "columns": {"姓名": "name"}})),
                [CREATED, CREATED, NO, NO, NO, NO, NO],
            ),
            (Method::GET, "/api/v1/contacts/export?format=csv".into(), None, [OK, OK, NO, NO, NO, NO, NO]),
            (Method::GET, "/api/v1/accounts/export?format=xlsx".into(), None, [OK, OK, NO, NO, NO, NO, NO]),
            // Workflow: process definitions, expense claims, the inbox, notifications.
            (Method::GET, "/api/v1/approval-processes".into(), None, [OK, OK, NO, NO, NO, OK, OK]),
            (
                Method::POST,
                "/api/v1/approval-processes".into(),
                Some(
                    json!({"name": "P {role}", "record_type": "expense_claim", "steps": [{"kind": "sequential", "approvers": [{"kind": "manager"}]}]}),
                ),
                [CREATED, CREATED, NO, NO, NO, CREATED, NO],
            ),
            (Method::GET, "/api/v1/expense-claims".into(), None, [OK, OK, OK, OK, NO, OK, OK]),
            (
                Method::POST,
                "/api/v1/expense-claims".into(),
                Some(
                    json!({"amount": {"amount": "12.50", "currency": "CNY"}, "category": "meals", "description": "午饭"}),
                ),
                [CREATED, CREATED, CREATED, CREATED, NO, CREATED, NO],
            ),
            (Method::GET, format!("/api/v1/expense-claims/{reps_claim}"), None, [OK, OK, OK, OK, NO, OK, OK]),
            (Method::GET, format!("/api/v1/expense-claims/{reps_claim}/approvals"), None, [OK, OK, OK, OK, NO, OK, OK]),
            (Method::GET, "/api/v1/approvals?mine=pending".into(), None, [OK, OK, OK, OK, NO, OK, OK]),
            (Method::GET, "/api/v1/notifications".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/notifications/unread".into(), None, [OK; 7]),
            (Method::GET, "/api/v1/delegations".into(), None, [OK, OK, OK, OK, NO, OK, OK]),
            (
                Method::POST,
                "/api/v1/delegations".into(),
                Some(
                    json!({"delegate_id": rep, "ends_at": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339()}),
                ),
                [CREATED, CREATED, S::UNPROCESSABLE_ENTITY, CREATED, NO, CREATED, NO],
            ),
        ];
        let roles = ["admin", "manager", "sales", "service", "marketing", "finance", "viewer"];
        for (method, path, body, expected) in &table {
            let (status, _, _) = call(&w.app, method.clone(), path, None, body.clone(), &[]).await;
            assert_eq!(status, S::UNAUTHORIZED, "anonymous {method} {path}");
            for (role, want) in roles.iter().zip(expected) {
                let body = body.as_ref().map(|b| serde_json::from_str(&b.to_string().replace("{role}", role)).unwrap());
                let (status, problem, _) = call(&w.app, method.clone(), path, Some(w.token(role)), body, &[]).await;
                assert_eq!(status, *want, "{role} {method} {path}: {problem}");
            }
        }
        // A manager of another branch sees neither the east branch's users nor can act on them.
        let (status, _, _) =
            call(&w.app, Method::GET, &format!("/api/v1/users/{rep}"), Some(&w.west_sales), None, &[]).await;
        assert_eq!(status, S::NOT_FOUND);
        let (status, _, _) =
            call(&w.app, Method::GET, &format!("/api/v1/branches/{east}"), Some(&w.west_sales), None, &[]).await;
        assert_eq!(status, S::NOT_FOUND);
        for path in [
            format!("/api/v1/accounts/{reps_account}"),
            format!("/api/v1/contacts/{reps_contact}"),
            format!("/api/v1/accounts/{reps_account}/timeline"),
        ] {
            let (status, _, _) = call(&w.app, Method::GET, &path, Some(&w.west_sales), None, &[]).await;
            assert_eq!(status, S::NOT_FOUND, "{path}");
        }
        let _ = w.hq;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_list_shows_own_jobs_or_all_with_system_jobs_read() {
    for db in test_databases() {
        let w = world(db);
        let sales_id = w.east_sales_id;
        let mut own = Vec::new();
        for _ in 0..3 {
            let id = w.db.write(move |tx| kernel::jobs::enqueue(tx, "import.test", json!({}), Some(sales_id))).await;
            own.push(id.unwrap().to_string());
        }
        let system = w.db.write(|tx| kernel::jobs::enqueue(tx, "system.cleanup", json!({}), None)).await.unwrap();

        // Two pages of two and one, newest first, only the rep's own jobs.
        let sales = w.token("sales");
        let (status, first, _) = call(&w.app, Method::GET, "/api/v1/jobs?limit=2", Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let ids = |page: &Value| -> Vec<String> {
            page["items"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(ids(&first), vec![own[2].clone(), own[1].clone()]);
        assert_eq!(first["items"][0]["status"], "queued");
        assert!(first["items"][0].get("payload").is_none());
        let cursor = first["next_cursor"].as_str().unwrap();
        let (_, second, _) =
            call(&w.app, Method::GET, &format!("/api/v1/jobs?limit=2&cursor={cursor}"), Some(sales), None, &[]).await;
        assert_eq!(ids(&second), vec![own[0].clone()]);
        assert!(second["next_cursor"].is_null());

        // Another user sees none of them; the admin sees all four.
        let (_, theirs, _) = call(&w.app, Method::GET, "/api/v1/jobs", Some(w.token("manager")), None, &[]).await;
        assert_eq!(ids(&theirs), Vec::<String>::new());
        let (_, all, _) = call(&w.app, Method::GET, "/api/v1/jobs", Some(w.token("admin")), None, &[]).await;
        assert_eq!(ids(&all), vec![system.to_string(), own[2].clone(), own[1].clone(), own[0].clone()]);

        let (status, _, _) = call(&w.app, Method::GET, "/api/v1/jobs?limit=0", Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

/// `GET /api/v1/events` streams the caller's own events as they commit: a worker claims
/// the caller's job, and the claim's `job.progress` is the first event the stream carries
/// (another user's event, committed before it, is not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_carries_the_callers_job_progress() {
    use std::time::{Duration, Instant};

    use kernel::events::Event;
    use kernel::jobs::{self, Registry, Worker};

    for db in test_databases() {
        let w = world(db);
        // On PostgreSQL events travel through LISTEN; wait until the listener is ready.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !w.db.events_connected() {
            assert!(Instant::now() < deadline, "the event listener did not connect");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let request = Request::get("/api/v1/events")
            .header("authorization", format!("Bearer {}", w.token("sales")))
            .body(Body::empty())
            .unwrap();
        // The handler subscribes before it returns the response, so nothing is missed.
        let response = w.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut body = response.into_body();

        let stranger = Id::new().get();
        w.db.write(move |tx| {
            tx.emit(Event::for_user(jobs::PROGRESS_EVENT, stranger, json!({"job_id": "not-yours"})));
            Ok::<_, kernel::DbError>(())
        })
        .await
        .unwrap();
        let sales_id = w.east_sales_id;
        let job = w.db.write(move |tx| jobs::enqueue(tx, "import.test", json!({}), Some(sales_id))).await.unwrap();
        let registry = Registry::new().with("import.test", |ctx, _| {
            ctx.progress(0.5, "halfway")?;
            Ok(json!({}))
        });
        let worker = Worker::new(w.db.db(), registry, "sse-test");
        assert!(tokio::task::spawn_blocking(move || worker.run_once()).await.unwrap().unwrap());

        // The first event block (keep-alive comments skipped), or fail after ten seconds.
        let first = tokio::time::timeout(Duration::from_secs(10), async {
            let mut text = String::new();
            loop {
                if let Some((block, _)) = text.split_once("\n\n")
                    && block.lines().any(|l| l.starts_with("event:"))
                {
                    return block.to_owned();
                }
                if let Some((comment, rest)) = text.split_once("\n\n") {
                    assert!(comment.lines().all(|l| l.starts_with(':')), "unexpected block {comment:?}");
                    text = rest.to_owned();
                    continue;
                }
                let frame = body.frame().await.expect("the stream stays open").unwrap();
                if let Ok(data) = frame.into_data() {
                    text.push_str(&String::from_utf8_lossy(&data));
                }
            }
        })
        .await
        .expect("an event within ten seconds");
        let mut lines = first.lines();
        assert_eq!(lines.next(), Some("event: job.progress"), "{first}");
        let data: Value = serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["job_id"], job.to_string());
        assert_eq!(data["kind"], "import.test");
        assert_eq!(data["status"], "running");
    }
}

#[tokio::test]
async fn openapi_document_is_stable() {
    let doc: Value = serde_json::from_str(&web::api::openapi::document_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    insta::assert_json_snapshot!("openapi", doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_needs_csrf_and_expires() {
    use kernel::identity::sessions;
    for db in test_databases() {
        let w = world(db);
        let user = kernel::db::off_runtime(|| {
            w.db.read_blocking(|tx| users::find_by_email(tx, &format!("admin.{}@example.com", w.hq)))
        })
        .unwrap()
        .unwrap();
        let session = w.db.write(move |tx| sessions::create(tx, user.id, None, None)).await.unwrap();
        let cookie = format!("rapport_session={}", session.secret);
        let body = json!({"name": "Via cookie", "parent_id": w.east.to_string()});
        // Reading with the cookie works; writing without the CSRF token is refused.
        let (status, _, _) = call(&w.app, Method::GET, "/api/v1/me", None, None, &[("cookie", &cookie)]).await;
        assert_eq!(status, StatusCode::OK);
        let before = count(&w.db, "branches").await;
        let (status, problem, headers) =
            call(&w.app, Method::POST, "/api/v1/branches", None, Some(body.clone()), &[("cookie", &cookie)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers["content-type"], "application/problem+json");
        assert!(problem["detail"].as_str().unwrap().contains("CSRF"), "{problem}");
        assert_eq!(count(&w.db, "branches").await, before);
        let csrf = session.csrf_token.clone();
        let (status, _, _) = call(
            &w.app,
            Method::POST,
            "/api/v1/branches",
            None,
            Some(body),
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        // An idle-expired session is refused with a problem document.
        let stale = chrono::Utc::now() - sessions::IDLE_TIMEOUT - chrono::Duration::minutes(1);
        let secret = session.secret.clone();
        w.db.write(move |tx| {
            tx.execute_sql(
                "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2",
                &[stale.into(), sessions::sha256_hex(&secret).into()],
            )
        })
        .await
        .unwrap();
        let (status, problem, headers) =
            call(&w.app, Method::GET, "/api/v1/me", None, None, &[("cookie", &cookie)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["code"], "unauthenticated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_and_security_headers() {
    for db in test_databases() {
        let w = world(db);
        let (status, body, headers) = call(&w.app, Method::GET, "/readyz", None, None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ready");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline")
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.contains_key("x-request-id"));
        let (status, _, _) = call(&w.app, Method::GET, "/healthz", None, None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        let res = w.app.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        let text = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        assert!(
            text.contains("rapport_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_is_set_kept_and_cleared() {
    for db in test_databases() {
        let w = world(db);
        let admin = w.token("admin");
        let rep = format!("/api/v1/users/{}", w.east_sales_id);
        let (_, me, _) = call(&w.app, Method::GET, "/api/v1/me", Some(admin), None, &[]).await;
        let boss = me["id"].clone();
        let (status, user, _) =
            call(&w.app, Method::PATCH, &rep, Some(admin), Some(json!({"manager_id": boss})), &[]).await;
        assert_eq!(status, StatusCode::OK, "{user}");
        assert_eq!(user["manager_id"], boss);
        // Leaving the field out keeps it; null clears it.
        let (_, user, _) = call(&w.app, Method::PATCH, &rep, Some(admin), Some(json!({"name": "Renamed"})), &[]).await;
        assert_eq!(user["manager_id"], boss);
        let (_, user, _) = call(&w.app, Method::PATCH, &rep, Some(admin), Some(json!({"manager_id": null})), &[]).await;
        assert_eq!(user["manager_id"], Value::Null);
    }
}

#[tokio::test]
async fn unknown_addresses_answer_in_kind() {
    let db = kernel::db::off_runtime(TestDb::sqlite);
    let app = web::app(web::AppState::new(db.db(), web::Config::default()));
    let (status, problem, headers) = call(&app, Method::GET, "/api/v1/nothing-here", None, None, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["code"], "not_found");
    let res = app
        .clone()
        .oneshot(Request::get("/nothing-here").header("accept-language", "ko-KR").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(html.contains("lang=\"ko-KR\""), "{html}");
}

/// The customers slice through HTTP: categories and typed fields, an account with a
/// normalised phone, duplicate candidates, every bad field named with nothing written,
/// If-Match, soft delete and restore, and a contact of the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_accounts_and_contacts_over_http() {
    for db in test_databases() {
        let w = world(db);
        let (admin, sales) = (w.token("admin"), w.token("sales"));
        let (status, category, headers) =
            post(&w.app, "/api/v1/customer-categories", admin, json!({"name": "Department store"})).await;
        assert_eq!(status, StatusCode::CREATED, "{category}");
        assert!(headers.contains_key("location"));
        let category = category["id"].as_str().unwrap().to_owned();
        for field in [
            json!({"category_id": category, "key": "floors", "label": "Floors", "type": "number", "required": true}),
            json!({"category_id": category, "key": "tier", "label": "Tier", "type": "select", "required": false, "options": ["A", "B"]}),
        ] {
            let (status, body, _) = post(&w.app, "/api/v1/custom-fields", admin, field).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (status, problem, _) = post(
            &w.app,
            "/api/v1/custom-fields",
            admin,
            json!({"category_id": category, "key": "x", "label": "X", "type": "colour", "required": false}),
        )
        .await;
        assert_eq!((status, problem["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("type")));

        // Every bad field is named, and nothing is written.
        let before = (count(&w.db, "accounts").await, count(&w.db, CHANGES).await);
        let (status, problem, headers) = post(
            &w.app,
            "/api/v1/accounts",
            sales,
            json!({"name": "", "email": "nope", "phone": "12345", "category_id": category,
                   "custom": {"tier": "Z", "colour": "red"}}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(headers["content-type"], "application/problem+json");
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["name", "email", "phone", "custom.colour", "custom.tier", "custom.floors"], "{problem}");
        let (status, _, _) = post(&w.app, "/api/v1/accounts", sales, json!({"name": "x", "colour": "red"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(before, (count(&w.db, "accounts").await, count(&w.db, CHANGES).await));

        let body = json!({"name": "新世界百货", "phone": "138 0013 8000", "email": "Buyer@NWDS.cn",
                          "category_id": category, "custom": {"floors": 7, "tier": "A"}});
        let (status, first, headers) = post(&w.app, "/api/v1/accounts", sales, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let id = first["id"].as_str().unwrap().to_owned();
        assert_eq!(headers["location"], format!("/api/v1/accounts/{id}").as_str());
        assert_eq!(headers["etag"], "\"1\"");
        assert_eq!(
            (first["phone"].as_str(), first["phone_raw"].as_str()),
            (Some("+8613800138000"), Some("138 0013 8000"))
        );
        assert_eq!(first["email"], "buyer@nwds.cn");
        assert_eq!(first["owner_id"], w.east_sales_id.to_string());
        assert_eq!(first["duplicate_candidates"], json!([]));
        // The same phone typed differently: still created, with the first as a candidate.
        let (status, second, _) = post(
            &w.app,
            "/api/v1/accounts",
            sales,
            json!({"name": "新世界", "phone": "+86 138-0013-8000", "category_id": category, "custom": {"floors": 3}}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(second["duplicate_candidates"], json!([{"id": id, "name": "新世界百货", "matched_on": ["phone"]}]));

        let (status, read, _) =
            call(&w.app, Method::GET, &format!("/api/v1/accounts/{id}"), Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(read.get("duplicate_candidates").is_none());
        let (status, page, _) = call(
            &w.app,
            Method::GET,
            &format!("/api/v1/accounts?category_id={category}&status=active&limit=1"),
            Some(sales),
            None,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["items"][0]["id"], id.as_str());
        assert!(page["next_cursor"].is_string());

        let uri = format!("/api/v1/accounts/{id}");
        let patch = json!({"custom": {"tier": "B"}});
        let (status, updated, headers) =
            call(&w.app, Method::PATCH, &uri, Some(sales), Some(patch.clone()), &[("if-match", "\"1\"")]).await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(
            (updated["custom"]["tier"].as_str(), &headers["etag"]),
            (Some("B"), &axum::http::HeaderValue::from_static("\"2\""))
        );
        let audit = count(&w.db, CHANGES).await;
        let (status, problem, _) =
            call(&w.app, Method::PATCH, &uri, Some(sales), Some(patch), &[("if-match", "\"1\"")]).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::PRECONDITION_FAILED, Some("stale_version")));
        let (status, problem, _) =
            call(&w.app, Method::PATCH, &uri, Some(sales), Some(json!({"custom": {"floors": "many"}})), &[]).await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("custom.floors"))
        );
        assert_eq!(count(&w.db, CHANGES).await, audit);

        // A contact of the account; the rep's manager sees it, another branch does not.
        let (status, contact, _) = post(
            &w.app,
            "/api/v1/contacts",
            sales,
            json!({"name": "王芳", "account_id": id, "phone": "(021) 6123 4567", "email": "wf@nwds.cn"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{contact}");
        assert_eq!(contact["phone"], "+862161234567");
        let contact_uri = format!("/api/v1/contacts/{}", contact["id"].as_str().unwrap());
        let (status, list, _) = call(
            &w.app,
            Method::GET,
            &format!("/api/v1/contacts?account_id={id}"),
            Some(w.token("manager")),
            None,
            &[],
        )
        .await;
        assert_eq!((status, list["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
        let (status, _, _) = call(&w.app, Method::GET, &contact_uri, Some(&w.west_sales), None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Search finds it by name, phone fragment and e-mail domain; not from another branch.
        for q in ["%E7%8E%8B%E8%8A%B3", "%E8%8A%B3", "6123%204567", "wf%40nwds"] {
            let (status, found, _) =
                call(&w.app, Method::GET, &format!("/api/v1/search?q={q}"), Some(sales), None, &[]).await;
            assert_eq!(status, StatusCode::OK, "{found}");
            assert_eq!(found["items"][0]["name"], "王芳", "{q}: {found}");
            assert_eq!(found["items"][0]["record_type"], "contact");
            assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{q}: {found}");
            let (_, theirs, _) =
                call(&w.app, Method::GET, &format!("/api/v1/search?q={q}"), Some(&w.west_sales), None, &[]).await;
            assert_eq!(theirs["items"], json!([]), "{q}");
        }
        let (status, list, _) = call(&w.app, Method::GET, "/api/v1/contacts?q=021-6123", Some(sales), None, &[]).await;
        assert_eq!((status, list["items"][0]["name"].as_str()), (StatusCode::OK, Some("王芳")));
        let (status, _, _) = call(&w.app, Method::GET, "/api/v1/search?q=a&limit=51", Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _, _) = call(&w.app, Method::GET, "/api/v1/search", Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "q is required");

        // Soft delete and restore.
        for (method, path, want) in [
            (Method::DELETE, contact_uri.clone(), StatusCode::NO_CONTENT),
            (Method::GET, contact_uri.clone(), StatusCode::NOT_FOUND),
            (Method::POST, format!("{contact_uri}/restore"), StatusCode::OK),
            (Method::DELETE, uri.clone(), StatusCode::NO_CONTENT),
            (Method::GET, uri.clone(), StatusCode::NOT_FOUND),
            (Method::POST, format!("{uri}/restore"), StatusCode::OK),
            (Method::GET, uri.clone(), StatusCode::OK),
        ] {
            let (status, body, _) = call(&w.app, method.clone(), &path, Some(sales), None, &[]).await;
            assert_eq!(status, want, "{method} {path}: {body}");
        }
    }
}

async fn post(app: &Router, uri: &str, token: &str, body: Value) -> (StatusCode, Value, axum::http::HeaderMap) {
    call(app, Method::POST, uri, Some(token), Some(body), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_timeline_and_tasks_over_http() {
    for db in test_databases() {
        let w = world(db);
        let (sales, manager) = (w.token("sales"), w.token("manager"));
        let (_, account, _) = post(&w.app, "/api/v1/accounts", sales, json!({"name": "国美电器"})).await;
        let account_id = account["id"].as_str().unwrap().to_owned();
        let (_, contact, _) =
            post(&w.app, "/api/v1/contacts", sales, json!({"name": "王芳", "account_id": account_id})).await;
        let contact_id = contact["id"].as_str().unwrap().to_owned();

        // Logged on the contact: the account is filled in.
        let (status, a, headers) = post(
            &w.app,
            "/api/v1/activities",
            sales,
            json!({"kind": "call", "contact_id": contact_id, "subject": "Price call", "occurred_at": "2026-03-01T02:00:00Z"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{a}");
        assert_eq!(
            (a["account_id"].as_str(), a["owner_id"].as_str()),
            (Some(account_id.as_str()), Some(w.east_sales_id.to_string().as_str()))
        );
        assert!(headers["location"].to_str().unwrap().ends_with(a["id"].as_str().unwrap()));
        let (status, _, _) = post(
            &w.app,
            "/api/v1/activities",
            manager,
            json!({"kind": "visit", "account_id": account_id, "subject": "Visit", "occurred_at": "2026-03-02T02:00:00Z"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);

        // Bad input names every field; an unknown field is refused.
        let (status, problem, _) =
            post(&w.app, "/api/v1/activities", sales, json!({"kind": "fax", "subject": ""})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["kind", "subject", "account_id", "contact_id"], "{problem}");
        let (status, _, _) = post(
            &w.app,
            "/api/v1/activities",
            sales,
            json!({"kind": "call", "account_id": account_id, "subject": "x", "mood": 1}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        // The rep's timeline shows the manager's visit too, newest first.
        let (status, page, _) =
            call(&w.app, Method::GET, &format!("/api/v1/accounts/{account_id}/timeline"), Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let subjects: Vec<&str> =
            page["items"].as_array().unwrap().iter().map(|a| a["subject"].as_str().unwrap()).collect();
        assert_eq!(subjects, ["Visit", "Price call"]);
        let (_, mine, _) = call(&w.app, Method::GET, "/api/v1/activities?kind=call", Some(sales), None, &[]).await;
        assert_eq!(mine["items"].as_array().unwrap().len(), 1);

        // Tasks: one overdue with a reminder, completed over PATCH with If-Match.
        let (status, t, _) = post(
            &w.app,
            "/api/v1/tasks",
            sales,
            json!({"subject": "Send the quote", "due_at": "2020-01-01T01:00:00Z", "remind_at": "2020-01-01T00:30:00Z", "contact_id": contact_id}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
        assert_eq!(t["account_id"].as_str(), Some(account_id.as_str()));
        let (status, day, _) = call(&w.app, Method::GET, "/api/v1/tasks/my-day", Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(day["overdue"][0]["id"], t["id"]);
        assert_eq!(day["today"], json!([]));
        let jobs: Vec<i64> =
            w.db.read(|tx| tx.query_sql("SELECT COUNT(*) FROM jobs WHERE kind = 'customers.task_reminder'", &[]))
                .await
                .unwrap();
        assert_eq!(jobs[0], 1);
        let uri = format!("/api/v1/tasks/{}", t["id"].as_str().unwrap());
        let (status, done, _) =
            call(&w.app, Method::PATCH, &uri, Some(sales), Some(json!({"status": "done"})), &[("if-match", "\"1\"")])
                .await;
        assert_eq!((status, done["status"].as_str()), (StatusCode::OK, Some("done")), "{done}");
        let (status, _, _) =
            call(&w.app, Method::PATCH, &uri, Some(sales), Some(json!({"status": "open"})), &[("if-match", "\"1\"")])
                .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED);
        let (_, day, _) = call(&w.app, Method::GET, "/api/v1/tasks/my-day", Some(sales), None, &[]).await;
        assert_eq!(day["overdue"], json!([]));
        let (status, problem, _) =
            post(&w.app, "/api/v1/tasks", sales, json!({"subject": " ", "assignee_id": w.hq.to_string()})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["subject", "due_at", "assignee_id"], "{problem}");
    }
}

fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map_or_else(Vec::new, |e| e.iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_details_filters_tags_and_saved_views_over_http() {
    for db in test_databases() {
        let w = world(db);
        let admin = w.token("admin").to_owned();
        let call = |method: Method, uri: String, body: Option<Value>| {
            let app = w.app.clone();
            let admin = admin.clone();
            async move { call(&app, method, &uri, Some(&admin), body, &[]).await }
        };
        // Bad details are refused naming each field; nothing is written.
        let before = count(&w.db, "accounts").await;
        let (status, problem, _) = call(
            Method::POST,
            "/api/v1/accounts".into(),
            Some(json!({
                "name": "Gome",
                "addresses": [{"kind": "store", "line1": "1 Nanjing Rd", "city": "Shanghai", "country": "XX"}],
                "credit_limit": "12.345",
                "payment_terms_days": -1,
                "emails": ["nope"],
            })),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        let mut fields = error_fields(&problem);
        fields.sort();
        assert_eq!(fields, ["addresses[0].country", "credit_limit", "emails[0]", "payment_terms_days"]);
        assert_eq!(count(&w.db, "accounts").await, before);
        let (status, problem, _) = call(
            Method::POST,
            "/api/v1/accounts".into(),
            Some(json!({"name": "Gome", "addresses": [{"kind": "store", "town": "x"}]})),
        )
        .await;
        assert!(status.is_client_error(), "an unknown address part is refused: {problem}");

        // A good account, with the details read back as stored.
        let (status, gome, _) = call(
            Method::POST,
            "/api/v1/accounts".into(),
            Some(json!({
                "name": "Gome",
                "region": "East China",
                "addresses": [{"kind": "billing", "line1": "1 Nanjing Rd", "city": "Shanghai", "country": "cn"}],
                "phones": ["010 6512 3456"],
                "emails": ["Pay@Gome.CN"],
                "credit_limit": "50000",
                "payment_terms_days": 30,
                "tags": ["VIP", "north"],
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{gome}");
        assert_eq!(gome["credit_limit"], "50000.00");
        assert_eq!(gome["addresses"][0]["country"], "CN");
        assert_eq!(gome["phones"][0], json!({"e164": "+861065123456", "raw": "010 6512 3456"}));
        assert_eq!(gome["tags"], json!(["vip", "north"]));
        for name in ["Suning", "Alpha"] {
            let (status, _, _) = call(Method::POST, "/api/v1/accounts".into(), Some(json!({"name": name}))).await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let (_, page, _) = call(Method::GET, "/api/v1/accounts?tag=vip".into(), None).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        // Sorted pages follow each other through the cursor.
        let (_, first, _) = call(Method::GET, "/api/v1/accounts?sort=-name&limit=2".into(), None).await;
        let names: Vec<&str> = first["items"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Suning", "Gome"]);
        let cursor = first["next_cursor"].as_str().unwrap();
        let (_, second, _) =
            call(Method::GET, format!("/api/v1/accounts?sort=-name&limit=2&cursor={cursor}"), None).await;
        assert_eq!(second["items"][0]["name"], "Alpha");
        assert!(second["next_cursor"].is_null());
        // Unknown filters, sorts and custom keys name the parameter.
        for (query, field) in [
            ("sort=colour", "sort"),
            ("colour=red", "colour"),
            ("custom.nope=1", "custom.nope"),
            ("is_member=true", "is_member"),
            ("limit=0", "limit"),
        ] {
            let (status, problem, _) = call(Method::GET, format!("/api/v1/accounts?{query}"), None).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {problem}");
            assert_eq!(error_fields(&problem), [field], "{query}");
        }
        // Tags in use, for autocomplete.
        let (status, tags, _) = call(Method::GET, "/api/v1/tags?record_type=account&q=V".into(), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(tags, json!({"items": [{"tag": "vip", "count": 1}]}));

        // Membership cards are unique among live contacts: the clash is a 409 naming it.
        let member = json!({"name": "王芳", "is_member": true, "card_no": "M-1", "birthday": "1990-05-17",
            "gender": "female", "household_size": 3, "status": "active", "title": "Buyer"});
        let (status, contact, _) = call(Method::POST, "/api/v1/contacts".into(), Some(member.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{contact}");
        assert_eq!((contact["birthday"].as_str(), contact["is_member"].as_bool()), (Some("1990-05-17"), Some(true)));
        let before = count(&w.db, "contacts").await;
        let (status, problem, _) = call(Method::POST, "/api/v1/contacts".into(), Some(member)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert_eq!(error_fields(&problem), ["card_no"]);
        assert_eq!(count(&w.db, "contacts").await, before);
        let (status, problem, _) =
            call(Method::POST, "/api/v1/contacts".into(), Some(json!({"name": "X", "household_size": 21}))).await;
        assert_eq!((status, error_fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["household_size".into()]));
        let (_, members, _) = call(Method::GET, "/api/v1/contacts?is_member=true&sort=name".into(), None).await;
        assert_eq!(members["items"].as_array().unwrap().len(), 1);

        // Saved views: checked by the list's parser, listed, changed by their owner.
        let (status, problem, _) = call(
            Method::POST,
            "/api/v1/saved-views".into(),
            Some(json!({"name": "Bad", "record_type": "account", "query": "custom.nope=1"})),
        )
        .await;
        assert_eq!((status, error_fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["query".into()]));
        let (status, view, headers) = call(
            Method::POST,
            "/api/v1/saved-views".into(),
            Some(
                json!({"name": "VIPs", "record_type": "account", "query": "tag=vip&sort=-updated_at", "shared": true}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{view}");
        let location = headers["location"].to_str().unwrap().to_owned();
        let (status, patched, _) = call(Method::PATCH, location.clone(), Some(json!({"name": "Key accounts"}))).await;
        assert_eq!((status, patched["version"].as_i64()), (StatusCode::OK, Some(2)));
        let (_, views, _) = call(Method::GET, "/api/v1/saved-views?record_type=account".into(), None).await;
        assert_eq!(views["items"][0]["name"], "Key accounts");
        let (status, _, _) = call(Method::DELETE, location.clone(), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _, _) = call(Method::GET, location, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // An activity moves to another account, and comes back after a delete.
        let gome_id = gome["id"].as_str().unwrap().to_owned();
        let (_, suning, _) = call(Method::GET, "/api/v1/accounts?sort=-name&limit=1".into(), None).await;
        let suning_id = suning["items"][0]["id"].as_str().unwrap().to_owned();
        let (_, activity, _) = call(
            Method::POST,
            "/api/v1/activities".into(),
            Some(json!({"kind": "call", "account_id": gome_id, "subject": "Price"})),
        )
        .await;
        let activity_uri = format!("/api/v1/activities/{}", activity["id"].as_str().unwrap());
        let (status, moved, _) =
            call(Method::PATCH, activity_uri.clone(), Some(json!({"account_id": suning_id}))).await;
        assert_eq!((status, moved["account_id"].as_str()), (StatusCode::OK, Some(suning_id.as_str())));
        let (status, problem, _) =
            call(Method::PATCH, activity_uri.clone(), Some(json!({"account_id": "12345"}))).await;
        assert_eq!((status, error_fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["account_id".into()]));
        let (status, _, _) = call(Method::DELETE, activity_uri.clone(), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, restored, _) = call(Method::POST, format!("{activity_uri}/restore"), None).await;
        assert_eq!((status, restored["subject"].as_str()), (StatusCode::OK, Some("Price")));
    }
}

/// Duplicates, merge with redirect and undo, handover, consent and erasure, as a client
/// drives them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_quality_over_http() {
    for db in test_databases() {
        let w = world(db);
        let manager = w.token("manager").to_owned();
        let sales = w.token("sales").to_owned();
        let mut ids = Vec::new();
        for (name, email) in
            [("Kim Minjun", "kim@lotte.kr"), ("Minjun Kim", "KIM@lotte.kr"), ("Park Jiho", "park@lotte.kr")]
        {
            let (status, c, _) = post(&w.app, "/api/v1/contacts", &sales, json!({"name": name, "email": email})).await;
            assert_eq!(status, StatusCode::CREATED, "{c}");
            ids.push(c["id"].as_str().unwrap().to_owned());
        }
        let (status, found, _) =
            call(&w.app, Method::GET, "/api/v1/duplicates?record_type=contact", Some(&manager), None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
        assert_eq!(found["items"][0]["ids"], json!([ids[0], ids[1]]));
        assert_eq!(found["items"][0]["score"], 65);
        assert_eq!(found["items"][0]["reasons"], json!(["same_email", "similar_name"]));
        let (status, bad, _) =
            call(&w.app, Method::GET, "/api/v1/duplicates?record_type=lead", Some(&manager), None, &[]).await;
        assert_eq!(
            (status, bad["errors"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("record_type"))
        );

        let (status, merged, _) = post(
            &w.app,
            "/api/v1/merges",
            &manager,
            json!({"record_type": "contact", "keep_id": ids[0], "merge_ids": [ids[1]], "fields": {"name": ids[1]}}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{merged}");
        assert_eq!(merged["fields"], json!({"name": ids[1]}));
        // The merged-away id redirects to the kept record.
        let old = format!("/api/v1/contacts/{}", ids[1]);
        let (status, _, headers) = call(&w.app, Method::GET, &old, Some(&manager), None, &[]).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(headers["location"], format!("/api/v1/contacts/{}", ids[0]).as_str());
        let (_, kept, _) =
            call(&w.app, Method::GET, &format!("/api/v1/contacts/{}", ids[0]), Some(&manager), None, &[]).await;
        assert_eq!(kept["name"], "Minjun Kim");
        let undo = format!("/api/v1/merges/{}/undo", merged["id"].as_str().unwrap());
        let (status, undone, _) = call(&w.app, Method::POST, &undo, Some(&manager), None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{undone}");
        let (status, back, _) = call(&w.app, Method::GET, &old, Some(&manager), None, &[]).await;
        assert_eq!((status, back["name"].as_str()), (StatusCode::OK, Some("Minjun Kim")));
        let (_, kept, _) =
            call(&w.app, Method::GET, &format!("/api/v1/contacts/{}", ids[0]), Some(&manager), None, &[]).await;
        assert_eq!(kept["name"], "Kim Minjun");
        let (status, again, _) = call(&w.app, Method::POST, &undo, Some(&manager), None, &[]).await;
        assert_eq!(status, StatusCode::CONFLICT, "{again}");

        // Consent, then do-not-contact.
        let consent = format!("/api/v1/contacts/{}/consents", ids[2]);
        let (status, c, _) = call(
            &w.app,
            Method::PUT,
            &format!("{consent}/sms"),
            Some(&sales),
            Some(json!({"granted": true, "source": "event"})),
            &[],
        )
        .await;
        assert_eq!((status, c["granted"].as_bool()), (StatusCode::OK, Some(true)), "{c}");
        let (status, bad, _) = call(
            &w.app,
            Method::PUT,
            &format!("{consent}/fax"),
            Some(&sales),
            Some(json!({"granted": true, "source": "event"})),
            &[],
        )
        .await;
        assert_eq!((status, bad["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("channel")));
        let dnc = format!("/api/v1/contacts/{}/do-not-contact", ids[2]);
        let (status, flags, _) =
            call(&w.app, Method::PUT, &dnc, Some(&sales), Some(json!({"value": true, "reason": "asked"})), &[]).await;
        assert_eq!((status, flags["do_not_contact"].as_bool()), (StatusCode::OK, Some(true)), "{flags}");
        let (_, listed, _) = call(&w.app, Method::GET, &consent, Some(&sales), None, &[]).await;
        assert_eq!(listed["current"][0]["channel"], "sms");

        // Personal data, then erasure.
        let (status, data, _) =
            call(&w.app, Method::GET, &format!("/api/v1/contacts/{}/personal-data", ids[2]), Some(&manager), None, &[])
                .await;
        assert_eq!(status, StatusCode::OK, "{data}");
        assert_eq!(data["contact"]["email"], "park@lotte.kr");
        assert_eq!(data["consents"].as_array().unwrap().len(), 1);
        let erase = format!("/api/v1/contacts/{}/erase", ids[2]);
        let (status, erased, _) = post(&w.app, &erase, &manager, json!({"confirm": ids[2]})).await;
        assert_eq!(status, StatusCode::OK, "{erased}");
        let (_, gone, _) =
            call(&w.app, Method::GET, &format!("/api/v1/contacts/{}", ids[2]), Some(&manager), None, &[]).await;
        assert_eq!((gone["name"].as_str(), &gone["email"]), (Some("Erased person"), &Value::Null));

        // Handover of the rep's contacts to the manager: a preview, then the move.
        let manager_id =
            w.db.read(move |tx| users::find_by_email(tx, &format!("manager.{}@example.com", w.east)))
                .await
                .unwrap()
                .unwrap()
                .id
                .to_string();
        let body = json!({"from_user_id": w.east_sales_id.to_string(), "to_user_id": manager_id, "dry_run": true});
        let (status, preview, _) = post(&w.app, "/api/v1/handovers", &manager, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        assert_eq!(preview["counts"], json!({"accounts": 0, "contacts": 3, "open_tasks": 0}));
        let mut real = body;
        real["dry_run"] = json!(false);
        let (status, moved, _) = post(&w.app, "/api/v1/handovers", &manager, real).await;
        assert_eq!((status, &moved["counts"]["contacts"]), (StatusCode::OK, &json!(3)), "{moved}");
        let (status, _, _) =
            call(&w.app, Method::GET, &format!("/api/v1/contacts/{}", ids[0]), Some(&sales), None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the rep no longer owns it");
    }
}

async fn send_file(app: &Router, uri: &str, token: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/csv")
        .body(Body::from(bytes))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn download(app: &Router, uri: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
    let req =
        Request::builder().uri(uri).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, res.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_over_http() {
    for db in test_databases() {
        let w = world(db);
        let token = w.token("manager").to_owned();
        // GBK with Chinese headers; one bad row.
        let csv =
            "姓名,邮箱,电话\n张伟,zhang.wei@gome.com.cn,138 0013 8000\n王芳,bad@,\n李娜,li.na@suning.cn,13700137000\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(csv);
        let (status, up) =
            send_file(&w.app, "/api/v1/imports?record_type=contact&filename=cards.csv", &token, gbk.into_owned()).await;
        assert_eq!(status, StatusCode::CREATED, "{up}");
        assert_eq!(up["format"], "csv");
        assert_eq!(up["encoding"], "GBK");
        assert_eq!(up["headers"], json!(["姓名", "邮箱", "电话"]));
        assert_eq!(up["suggested_mapping"]["columns"], json!({"姓名": "name", "邮箱": "email", "电话": "phone"}));
        assert_eq!(up["sample_rows"][0], json!(["张伟", "zhang.wei@gome.com.cn", "138 0013 8000"]));
        assert_eq!(up["total_rows"], 3);
        let id = up["id"].as_str().unwrap().to_owned();
        // A bad mapping names the field; a good one is kept.
        let (status, problem, _) = call(
            &w.app,
            Method::PUT,
            &format!("/api/v1/imports/{id}/mapping"),
            Some(&token),
            Some(json!({"columns": {"姓名": "nom"}, "on_existing": "merge"})),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, vec!["columns.姓名", "columns", "on_existing"]);
        let mut mapping = up["suggested_mapping"].clone();
        mapping["on_existing"] = json!("skip");
        let (status, import, _) =
            call(&w.app, Method::PUT, &format!("/api/v1/imports/{id}/mapping"), Some(&token), Some(mapping), &[]).await;
        assert_eq!((status, import["mapping"]["on_existing"].clone()), (StatusCode::OK, json!("skip")));
        // Dry run: counts and per-row errors, nothing written.
        let (status, dry, _) =
            call(&w.app, Method::POST, &format!("/api/v1/imports/{id}/dry-run"), Some(&token), None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{dry}");
        assert_eq!((dry["would_create"].clone(), dry["failed"].clone()), (json!(2), json!(1)));
        assert_eq!(dry["errors"][0]["row"], 3);
        assert_eq!(dry["errors"][0]["column"], "邮箱");
        assert_eq!(count(&w.db, "contacts").await, 0);
        // Start: a job; the worker runs it; status, counts and the error report.
        let (status, started, _) =
            call(&w.app, Method::POST, &format!("/api/v1/imports/{id}/start"), Some(&token), None, &[]).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        let registry =
            kernel::jobs::Registry::new().with(customers::imports::IMPORT_JOB, customers::imports::import_job);
        let worker = kernel::jobs::Worker::new(w.db.db(), registry, "test");
        assert!(kernel::db::off_runtime(|| worker.run_once()).unwrap());
        let (status, import, _) =
            call(&w.app, Method::GET, &format!("/api/v1/imports/{id}"), Some(&token), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (import["status"].clone(), import["created"].clone(), import["failed"].clone()),
            (json!("done"), json!(2), json!(1))
        );
        assert_eq!(import["progress"], 1.0);
        let (status, job, _) = call(
            &w.app,
            Method::GET,
            &format!("/api/v1/jobs/{}", started["job_id"].as_str().unwrap()),
            Some(&token),
            None,
            &[],
        )
        .await;
        assert_eq!((status, job["status"].clone()), (StatusCode::OK, json!("done")));
        let (status, content_type, report) =
            download(&w.app, &format!("/api/v1/imports/{id}/errors.csv"), &token).await;
        assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
        let report = String::from_utf8(report).unwrap();
        assert!(report.starts_with("\u{feff}row,column,message,姓名,邮箱,电话\n3,邮箱,"), "{report}");
        // Someone else's import is not there for a sales rep of another branch.
        let (status, _, _) =
            call(&w.app, Method::GET, &format!("/api/v1/imports/{id}"), Some(&w.west_sales), None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Unusable files: 422 naming `file`, nothing stored; over 200 MB: 413.
        let before = count(&w.db, "imports").await;
        let (status, problem) = send_file(
            &w.app,
            "/api/v1/imports?record_type=contact&filename=x.png",
            &token,
            vec![0x89, b'P', b'N', b'G'],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], "file");
        let big = vec![b'a'; customers::imports::MAX_BYTES + 1];
        let (status, problem) =
            send_file(&w.app, "/api/v1/imports?record_type=contact&filename=big.csv", &token, big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("200 MB"));
        assert_eq!(count(&w.db, "imports").await, before);
        // Export with the list's filters.
        let (status, content_type, csv) = download(&w.app, "/api/v1/contacts/export?format=csv&q=张伟", &token).await;
        assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.starts_with('\u{feff}'));
        assert_eq!(csv.lines().count(), 2, "{csv}");
        assert!(csv.contains("zhang.wei@gome.com.cn"));
        let (status, _, xlsx) = download(&w.app, "/api/v1/contacts/export?format=xlsx", &token).await;
        assert!(status == StatusCode::OK && xlsx.starts_with(b"PK"));
        let (status, _, vcf) = download(&w.app, "/api/v1/contacts/export?format=vcf", &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(String::from_utf8(vcf).unwrap().matches("BEGIN:VCARD").count(), 2);
        let (status, _, _) = download(&w.app, "/api/v1/accounts/export?format=vcf", &token).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        // Saved mappings.
        let (status, _, _) = call(
            &w.app,
            Method::POST,
            "/api/v1/import-mappings",
            Some(&token),
            Some(json!({"name": "Fair cards", "record_type": "contact", "columns": {"姓名": "name", "手机": "phone"}})),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (_, list, _) =
            call(&w.app, Method::GET, "/api/v1/import-mappings?record_type=contact", Some(&token), None, &[]).await;
        assert_eq!(list["items"][0]["columns"]["手机"], "phone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_and_expense_claims_over_http() {
    for db in test_databases() {
        let w = world(db);
        let (admin, sales, manager, finance) =
            (w.token("admin"), w.token("sales"), w.token("manager"), w.token("finance"));
        let east = w.east;
        let manager_id = people_id(&w, &format!("manager.{east}@example.com")).await;
        // Bad definitions: each refused naming the problem, nothing written.
        let before = count(&w.db, "approval_processes").await;
        let one = json!([{"kind": "sequential", "approvers": [{"kind": "manager"}]}]);
        for (body, field) in [
            (json!({"name": "P", "record_type": "expense_claim", "steps": []}), "steps"),
            (
                json!({"name": "P", "record_type": "expense_claim", "steps": [{"kind": "parallel", "approvers": [{"kind": "manager"}, {"kind": "role", "role": "finance"}], "rule": "quorum", "quorum": 3}]}),
                "steps[0].quorum",
            ),
            (
                json!({"name": "P", "record_type": "expense_claim", "conditions": [{"field": "discount", "op": ">", "value": 10}], "steps": one}),
                "conditions[0].field",
            ),
            (json!({"name": "P", "record_type": "spaceship", "steps": one}), "record_type"),
        ] {
            let (status, problem, _) = post(&w.app, "/api/v1/approval-processes", admin, body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
            assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        }
        assert_eq!(count(&w.db, "approval_processes").await, before);
        // The east manager, then finance.
        let (status, process, headers) = post(
            &w.app,
            "/api/v1/approval-processes",
            admin,
            json!({"name": "Expense claims", "record_type": "expense_claim", "conditions": [], "priority": 10,
                   "steps": [{"kind": "sequential", "approvers": [{"kind": "user", "user_id": manager_id}]},
                             {"kind": "sequential", "approvers": [{"kind": "role", "role": "finance"}]}]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{process}");
        let pid = process["id"].as_str().unwrap();
        assert_eq!(headers["location"], format!("/api/v1/approval-processes/{pid}"));
        let (status, got, _) =
            call(&w.app, Method::GET, &format!("/api/v1/approval-processes/{pid}"), Some(admin), None, &[]).await;
        assert_eq!((status, got["steps"][1]["approvers"][0]["role"].clone()), (StatusCode::OK, json!("finance")));
        let (_, list, _) = call(&w.app, Method::GET, "/api/v1/approval-processes", Some(admin), None, &[]).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);

        // A claim: bad input named, then a good one, submitted.
        let (status, problem, _) = post(
            &w.app,
            "/api/v1/expense-claims",
            sales,
            json!({"amount": {"amount": "12.345", "currency": "CNY"}, "category": "yachts", "description": ""}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let named: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(named, ["amount.amount", "category", "description"]);
        let (status, claim, _) = post(
            &w.app,
            "/api/v1/expense-claims",
            sales,
            json!({"amount": {"amount": "1999.5", "currency": "CNY"}, "category": "travel", "description": "北京出差 / 서울 출장"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{claim}");
        assert_eq!(
            (claim["amount"]["amount"].clone(), claim["approval_status"].clone(), claim["submitted_at"].clone()),
            (json!("1999.50"), Value::Null, Value::Null)
        );
        let cid = claim["id"].as_str().unwrap().to_owned();
        let (status, claim, _) =
            post(&w.app, &format!("/api/v1/expense-claims/{cid}/submit"), sales, json!(null)).await;
        assert_eq!((status, claim["approval_status"].clone()), (StatusCode::OK, json!("pending")), "{claim}");
        assert!(claim["submitted_at"].is_string(), "{claim}");
        let (status, _, _) = post(&w.app, &format!("/api/v1/expense-claims/{cid}/submit"), sales, json!(null)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        // Locked while it runs.
        let (status, problem, _) = call(
            &w.app,
            Method::PATCH,
            &format!("/api/v1/expense-claims/{cid}"),
            Some(sales),
            Some(json!({"description": "changed"})),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("awaiting approval"));

        // The manager's inbox.
        let (status, inbox, _) =
            call(&w.app, Method::GET, "/api/v1/approvals?mine=pending", Some(manager), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        let item = inbox["items"].as_array().unwrap().iter().find(|i| i["record_id"] == json!(cid)).unwrap().clone();
        assert_eq!(
            (item["record_type"].clone(), item["step"].clone(), item["status"].clone()),
            (json!("expense_claim"), json!(1), json!("pending"))
        );
        let aid = item["id"].as_str().unwrap().to_owned();
        // Not an approver: 403 naming the problem; a pass on a sequential step: 422.
        let (status, problem, _) =
            post(&w.app, &format!("/api/v1/approvals/{aid}/approve"), finance, json!({"comment": "x"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(problem["detail"].as_str().unwrap().contains("not its approver"), "{problem}");
        let (status, problem, _) = post(
            &w.app,
            &format!("/api/v1/approvals/{aid}/pass"),
            manager,
            json!({"to_user_id": w.east_sales_id, "comment": "you"}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], "to_user_id", "{problem}");
        // Approve twice: counted once.
        for _ in 0..2 {
            let (status, a, _) =
                post(&w.app, &format!("/api/v1/approvals/{aid}/approve"), manager, json!({"comment": "同意"})).await;
            assert_eq!((status, a["status"].clone()), (StatusCode::OK, json!("approved")), "{a}");
        }
        let (status, problem, _) =
            post(&w.app, &format!("/api/v1/approvals/{aid}/reject"), manager, json!({"comment": "no"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        // Finance (the east branch's, the nearest with one) approves: the claim is approved.
        let (_, inbox, _) = call(&w.app, Method::GET, "/api/v1/approvals?mine=pending", Some(finance), None, &[]).await;
        let fid = inbox["items"].as_array().unwrap().iter().find(|i| i["record_id"] == json!(cid)).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _, _) = post(&w.app, &format!("/api/v1/approvals/{fid}/approve"), finance, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, claim, _) =
            call(&w.app, Method::GET, &format!("/api/v1/expense-claims/{cid}"), Some(sales), None, &[]).await;
        assert_eq!(claim["approval_status"], "approved");
        let (_, history, _) =
            call(&w.app, Method::GET, &format!("/api/v1/expense-claims/{cid}/approvals"), Some(sales), None, &[]).await;
        assert_eq!(history[0]["status"], "approved");
        assert_eq!(history[0]["decisions"][0]["comment"], "同意");
        // The requester was told of both steps and the outcome.
        let (_, unread, _) = call(&w.app, Method::GET, "/api/v1/notifications/unread", Some(sales), None, &[]).await;
        assert_eq!(unread["unread"], 3);
        let (_, unread, _) = post(&w.app, "/api/v1/notifications/read", sales, json!(null)).await;
        assert_eq!(unread["unread"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_preferences_over_http() {
    for db in test_databases() {
        let w = world(db);
        let sales = w.token("sales");
        let uri = "/api/v1/me/notification-preferences";
        let (status, _, _) = call(&w.app, Method::GET, uri, None, None, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Nothing chosen yet: every kind, in the app and by mail, named in the caller's
        // language (users are zh-CN unless they say otherwise).
        let (status, got, _) = call(&w.app, Method::GET, uri, Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{got}");
        let items = got["items"].as_array().unwrap();
        assert_eq!(items.len(), 6, "{got}");
        assert_eq!(
            items[0],
            json!({"kind": "approval.requested", "label": "需要我审批的事项", "in_app": true, "email": true})
        );
        assert!(items.iter().all(|i| i["in_app"] == true && i["email"] == true));
        // Unknown kinds, unknown fields and missing choices: 422 naming them, nothing saved.
        let (status, problem, _) = call(
            &w.app,
            Method::PUT,
            uri,
            Some(sales),
            Some(json!({"items": [
                {"kind": "approval.step", "in_app": false, "email": false},
                {"kind": "approval.bogus", "in_app": true, "email": true}
            ]})),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(error_fields(&problem), ["items[1].kind"]);
        for body in [
            json!({"items": [{"kind": "approval.step", "in_app": false, "email": false, "sms": true}]}),
            json!({"items": [{"kind": "approval.step", "in_app": false}]}),
        ] {
            let (status, problem, _) = call(&w.app, Method::PUT, uri, Some(sales), Some(body), &[]).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        }
        assert_eq!(count(&w.db, "notification_preferences").await, 0);
        // A good change is saved and shown; the other kinds stay as they were.
        let (status, got, _) = call(
            &w.app,
            Method::PUT,
            uri,
            Some(sales),
            Some(json!({"items": [{"kind": "approval.step", "in_app": true, "email": false}]})),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        let step = got["items"].as_array().unwrap().iter().find(|i| i["kind"] == "approval.step").unwrap().clone();
        assert_eq!((step["in_app"].clone(), step["email"].clone()), (json!(true), json!(false)));
        let (_, again, _) = call(&w.app, Method::GET, uri, Some(sales), None, &[]).await;
        assert_eq!(again, got);
        assert_eq!(count(&w.db, "audit_log WHERE record_type = 'notification_preferences'").await, 1);
        // Another user's choices are their own.
        let (_, theirs, _) = call(&w.app, Method::GET, uri, Some(w.token("manager")), None, &[]).await;
        assert!(theirs["items"].as_array().unwrap().iter().all(|i| i["email"] == true));
    }
}
// --- Receipt attachments and the relay picker (issue 4 gaps) ---

/// A tiny but real PNG header (what the server sniffs) and some bytes.
fn png_bytes() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(&[7; 100]);
    b
}

async fn send_raw(
    app: &Router,
    method: Method,
    uri: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), headers, bytes)
}

fn multipart_file(file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "rapport-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expense_claim_receipts_over_http() {
    for db in test_databases() {
        let w = world(db);
        let (admin, sales, viewer, outsider) =
            (w.token("admin"), w.token("sales"), w.token("viewer"), w.west_sales.clone());
        let west = w.west;
        // The approver is the west manager: outside the claim's (east) scope.
        let approver_id = people_id(&w, &format!("manager.{west}@example.com")).await;
        let (status, _, _) = post(
            &w.app,
            "/api/v1/approval-processes",
            admin,
            json!({"name": "Claims", "record_type": "expense_claim", "conditions": [], "priority": 10,
                   "steps": [{"kind": "sequential", "approvers": [{"kind": "user", "user_id": approver_id}]}]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, claim, _) = post(
            &w.app,
            "/api/v1/expense-claims",
            sales,
            json!({"amount": {"amount": "88", "currency": "CNY"}, "category": "meals", "description": "午餐"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        // Never submitted: no approval status (the contract's three values only), no date.
        assert_eq!((claim["approval_status"].clone(), claim["submitted_at"].clone()), (Value::Null, Value::Null));
        let cid = claim["id"].as_str().unwrap().to_owned();
        let uri = format!("/api/v1/expense-claims/{cid}/attachments");

        // Raw body with a Chinese name (percent-encoded in the query), the client's type ignored.
        let png = png_bytes();
        let (status, a, headers, _) = send_raw(
            &w.app,
            Method::POST,
            &format!("{uri}?file_name=%E5%8F%91%E7%A5%A8%201.png"),
            sales,
            "text/html",
            png.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{a}");
        assert_eq!(
            (a["file_name"].clone(), a["content_type"].clone(), a["size_bytes"].clone(), a["record_id"].clone()),
            (json!("发票 1.png"), json!("image/png"), json!(png.len()), json!(cid))
        );
        let aid = a["id"].as_str().unwrap().to_owned();
        assert_eq!(headers["location"], format!("/api/v1/attachments/{aid}"));
        // Multipart, a Korean PDF; the path in its name is dropped.
        let (ct, body) = multipart_file("C:\\scans\\영수증.pdf", b"%PDF-1.4\n1 0 obj\n");
        let (status, pdf, _, _) = send_raw(&w.app, Method::POST, &uri, sales, &ct, body).await;
        assert_eq!(status, StatusCode::CREATED, "{pdf}");
        assert_eq!(
            (pdf["file_name"].clone(), pdf["content_type"].clone()),
            (json!("영수증.pdf"), json!("application/pdf"))
        );

        // Refused, naming the problem, writing nothing: empty, not an image/PDF, too large.
        let before = count(&w.db, "attachments").await;
        let audits = count(&w.db, CHANGES).await;
        for (bytes, expected) in [
            (Vec::new(), StatusCode::UNPROCESSABLE_ENTITY),
            (b"<html><script>alert(1)</script></html>".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
            (vec![0xff; 10 * 1024 * 1024 + 1], StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            let (status, problem, _, _) =
                send_raw(&w.app, Method::POST, &format!("{uri}?file_name=x.png"), sales, "image/png", bytes).await;
            assert_eq!(status, expected, "{problem}");
            assert_eq!(problem["errors"][0]["field"], "file", "{problem}");
        }
        let (ct, body) = multipart_file("big.png", &vec![0x89; 10 * 1024 * 1024 + 1]);
        let (status, problem, _, _) = send_raw(&w.app, Method::POST, &uri, sales, &ct, body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
        assert_eq!(count(&w.db, "attachments").await, before);
        assert_eq!(count(&w.db, CHANGES).await, audits);
        // Exactly 10 MB is fine.
        let mut big = png_bytes();
        big.resize(10 * 1024 * 1024, 0);
        let (status, big, _, _) =
            send_raw(&w.app, Method::POST, &format!("{uri}?file_name=big.png"), sales, "image/png", big).await;
        assert_eq!(status, StatusCode::CREATED, "{big}");
        let (status, _, _) = call(
            &w.app,
            Method::DELETE,
            &format!("/api/v1/attachments/{}", big["id"].as_str().unwrap()),
            Some(sales),
            None,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        // List and download round trip; the name survives in Content-Disposition.
        let (status, list, _) = call(&w.app, Method::GET, &uri, Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = list.as_array().unwrap().iter().map(|a| a["file_name"].as_str().unwrap()).collect();
        assert_eq!(names, ["发票 1.png", "영수증.pdf"]);
        let (status, _, headers, bytes) =
            send_raw(&w.app, Method::GET, &format!("/api/v1/attachments/{aid}"), sales, "text/plain", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(bytes, png);
        assert_eq!(headers["content-type"], "image/png");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        // Scripts never run from a stored file; the browser's PDF viewer may.
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'none'") && csp.contains("object-src 'self'"), "{csp}");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("inline;"), "{disposition}");
        assert!(disposition.contains("filename*=UTF-8''%E5%8F%91%E7%A5%A8%201.png"), "{disposition}");
        // The attach entries are on the claim's own history.
        let (_, log, _) = call(
            &w.app,
            Method::GET,
            &format!("/api/v1/audit?record_type=expense_claim&record_id={cid}"),
            Some(admin),
            None,
            &[],
        )
        .await;
        let actions: Vec<&str> =
            log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions.iter().filter(|a| **a == "attach").count(), 3, "{log}");

        // A reader who may not edit: lists and downloads, cannot add or delete.
        let (status, _, _) = call(&w.app, Method::GET, &uri, Some(viewer), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _, _) =
            send_raw(&w.app, Method::POST, &format!("{uri}?file_name=x.png"), viewer, "image/png", png_bytes()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Outside the claim's scope and not (yet) its approver: nothing is revealed.
        for (method, u) in [
            (Method::GET, uri.clone()),
            (Method::GET, format!("/api/v1/attachments/{aid}")),
            (Method::DELETE, format!("/api/v1/attachments/{aid}")),
        ] {
            let (status, problem, _) = call(&w.app, method, &u, Some(&outsider), None, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{u}: {problem}");
        }

        // Submitted: locked (409), and the approver may now look at the receipts.
        let (status, claim, _) =
            post(&w.app, &format!("/api/v1/expense-claims/{cid}/submit"), sales, json!(null)).await;
        assert_eq!((status, claim["approval_status"].clone()), (StatusCode::OK, json!("pending")), "{claim}");
        assert!(claim["submitted_at"].is_string(), "{claim}");
        let (status, problem, _, _) =
            send_raw(&w.app, Method::POST, &format!("{uri}?file_name=late.png"), sales, "image/png", png_bytes()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("awaiting approval"), "{problem}");
        let (status, _, _) =
            call(&w.app, Method::DELETE, &format!("/api/v1/attachments/{aid}"), Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, list, _) = call(&w.app, Method::GET, &uri, Some(&outsider), None, &[]).await;
        assert_eq!((status, list.as_array().map(Vec::len)), (StatusCode::OK, Some(2)), "{list}");
        let (status, _, _, bytes) =
            send_raw(&w.app, Method::GET, &format!("/api/v1/attachments/{aid}"), &outsider, "text/plain", Vec::new())
                .await;
        assert_eq!((status, bytes), (StatusCode::OK, png.clone()));
        // The approver rejects: the claim may change again; a deleted receipt is gone.
        let (_, inbox, _) =
            call(&w.app, Method::GET, "/api/v1/approvals?mine=pending", Some(&outsider), None, &[]).await;
        let task = inbox["items"].as_array().unwrap().iter().find(|i| i["record_id"] == json!(cid)).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _, _) =
            post(&w.app, &format!("/api/v1/approvals/{task}/reject"), &outsider, json!({"comment": "发票不清楚"}))
                .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) =
            call(&w.app, Method::DELETE, &format!("/api/v1/attachments/{aid}"), Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _, _) =
            call(&w.app, Method::GET, &format!("/api/v1/attachments/{aid}"), Some(sales), None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, list, _) = call(&w.app, Method::GET, &uri, Some(sales), None, &[]).await;
        assert_eq!(list.as_array().map(Vec::len), Some(1));
        let (_, claim, _) =
            call(&w.app, Method::GET, &format!("/api/v1/expense-claims/{cid}"), Some(sales), None, &[]).await;
        assert_eq!(claim["approval_status"], "rejected");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_pass_candidates_over_http() {
    for db in test_databases() {
        let w = world(db);
        let (admin, sales, manager, finance) =
            (w.token("admin"), w.token("sales"), w.token("manager"), w.token("finance"));
        let east = w.east;
        let manager_id = people_id(&w, &format!("manager.{east}@example.com")).await;
        let (status, _, _) = post(
            &w.app,
            "/api/v1/approval-processes",
            admin,
            json!({"name": "Relay", "record_type": "expense_claim", "conditions": [], "priority": 10,
                   "steps": [{"kind": "relay", "approvers": [{"kind": "user", "user_id": manager_id}]}]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (_, claim, _) = post(
            &w.app,
            "/api/v1/expense-claims",
            sales,
            json!({"amount": {"amount": "10", "currency": "CNY"}, "category": "office", "description": "pens"}),
        )
        .await;
        let cid = claim["id"].as_str().unwrap().to_owned();
        post(&w.app, &format!("/api/v1/expense-claims/{cid}/submit"), sales, json!(null)).await;
        let (_, inbox, _) = call(&w.app, Method::GET, "/api/v1/approvals?mine=pending", Some(manager), None, &[]).await;
        let task = inbox["items"][0]["id"].as_str().unwrap().to_owned();
        // Type-ahead on name or e-mail, the caller left out.
        let (status, people, _) = call(
            &w.app,
            Method::GET,
            &format!("/api/v1/approvals/{task}/pass-candidates?q=FIN"),
            Some(manager),
            None,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{people}");
        let emails: Vec<&str> = people.as_array().unwrap().iter().map(|p| p["email"].as_str().unwrap()).collect();
        assert_eq!(emails, [format!("finance.{east}@example.com")]);
        let (_, people, _) = call(
            &w.app,
            Method::GET,
            &format!("/api/v1/approvals/{task}/pass-candidates?q=manager"),
            Some(manager),
            None,
            &[],
        )
        .await;
        let ids: Vec<&str> = people.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert!(!ids.contains(&manager_id.as_str()) && !ids.is_empty(), "{people}");
        // Not the approver: the item is not theirs to pass on.
        let (status, _, _) = call(
            &w.app,
            Method::GET,
            &format!("/api/v1/approvals/{task}/pass-candidates?q=a"),
            Some(finance),
            None,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Passed on: the old item offers nobody any more.
        let finance_id = people_id(&w, &format!("finance.{east}@example.com")).await;
        let (status, _, _) =
            post(&w.app, &format!("/api/v1/approvals/{task}/pass"), manager, json!({"to_user_id": finance_id})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) =
            call(&w.app, Method::GET, &format!("/api/v1/approvals/{task}/pass-candidates"), Some(manager), None, &[])
                .await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
}

async fn people_id(w: &World, email: &str) -> String {
    let email = email.to_owned();
    w.db.read(move |tx| users::find_by_email(tx, &email)).await.unwrap().unwrap().id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_calendars_over_http() {
    for db in test_databases() {
        let w = world(db);
        let (admin, sales) = (w.token("admin"), w.token("sales"));
        let hours = format!("/api/v1/branches/{}/working-hours", w.east);
        let (s, body, _) = call(&w.app, Method::GET, &hours, Some(admin), None, &[]).await;
        assert_eq!((s, body["source"].as_str()), (StatusCode::OK, Some("default")), "{body}");
        // Bad hours: 422 naming each field, nothing written.
        let before = count(&w.db, "approval_working_hours").await;
        let bad = json!({"week": {
            "mon": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}],
            "tue": [{"start": "12:00", "end": "08:00"}],
            "xyz": [],
            "wed": [{"start": "25:00", "end": "26:00"}],
        }});
        let (s, problem, _) = call(&w.app, Method::PUT, &hours, Some(admin), Some(bad), &[]).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(error_fields(&problem), ["week.mon[1].start", "week.tue[0].end", "week.wed[0].start", "week.xyz"]);
        assert_eq!(count(&w.db, "approval_working_hours").await, before);
        let good = json!({"week": {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "sat": [{"start": "09:00", "end": "12:00"}]}});
        let (s, _, _) = call(&w.app, Method::PUT, &hours, Some(sales), Some(good.clone()), &[]).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, body, _) = call(&w.app, Method::PUT, &hours, Some(admin), Some(good), &[]).await;
        assert_eq!((s, body["source"].as_str()), (StatusCode::OK, Some("own")), "{body}");
        assert_eq!(body["week"]["mon"][1], json!({"start": "13:00", "end": "18:00"}));
        let (_, body, _) = call(&w.app, Method::DELETE, &hours, Some(admin), None, &[]).await;
        assert_eq!(body["source"].as_str(), Some("default"));
        // Days: bad date and kind are 422; a good one is 201; the same date again 422.
        let (s, problem, _) = call(
            &w.app,
            Method::POST,
            "/api/v1/calendar-days",
            Some(admin),
            Some(json!({"day": "2026-13-01", "kind": "siesta", "name": "x"})),
            &[],
        )
        .await;
        assert_eq!((s, error_fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["day".into(), "kind".into()]));
        let day = json!({"branch_id": w.east.to_string(), "day": "2026-10-10", "kind": "working", "name": "调休"});
        let (s, created, _) =
            call(&w.app, Method::POST, "/api/v1/calendar-days", Some(admin), Some(day.clone()), &[]).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let (s, problem, _) = call(&w.app, Method::POST, "/api/v1/calendar-days", Some(admin), Some(day), &[]).await;
        assert_eq!((s, error_fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["day".into()]));
        // Presets: loaded once, then all skipped.
        let preset = json!({"country": "CN", "year": 2026});
        let (s, first, _) =
            call(&w.app, Method::POST, "/api/v1/calendar-days/presets", Some(admin), Some(preset.clone()), &[]).await;
        assert_eq!(s, StatusCode::OK, "{first}");
        assert!(first["added"].as_u64().unwrap() > 30);
        let (_, again, _) =
            call(&w.app, Method::POST, "/api/v1/calendar-days/presets", Some(admin), Some(preset), &[]).await;
        assert_eq!((again["added"].as_u64(), again["skipped"].as_u64()), (Some(0), first["added"].as_u64()));
        let (s, problem, _) = call(
            &w.app,
            Method::POST,
            "/api/v1/calendar-days/presets",
            Some(admin),
            Some(json!({"country": "CN", "year": 2031})),
            &[],
        )
        .await;
        assert_eq!((s, error_fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["year".into()]));
        // East's list for 2026: its own working day beats nothing; every branch's days too.
        let uri = format!("/api/v1/calendar-days?branch_id={}&year=2026", w.east);
        let (s, list, _) = call(&w.app, Method::GET, &uri, Some(admin), None, &[]).await;
        assert_eq!(s, StatusCode::OK);
        let oct10 = list.as_array().unwrap().iter().find(|d| d["day"] == "2026-10-10").unwrap();
        assert_eq!(oct10["branch_id"], json!(w.east.to_string()));
        let (s, problem, _) =
            call(&w.app, Method::GET, "/api/v1/calendar-days?year=twenty", Some(admin), None, &[]).await;
        assert_eq!((s, error_fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["year".into()]));
        let id = created["id"].as_str().unwrap();
        let (s, _, _) =
            call(&w.app, Method::DELETE, &format!("/api/v1/calendar-days/{id}"), Some(admin), None, &[]).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) =
            call(&w.app, Method::DELETE, &format!("/api/v1/calendar-days/{id}"), Some(admin), None, &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}
