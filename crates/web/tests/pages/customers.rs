//! The customer pages end to end, on every backend: lists and search, the customer 360
//! page and its panel registry, forms with custom fields, the duplicate warning, stale
//! edits, activity logging and "my day".
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use customers::accounts::{self as caccounts, NewAccount};
use customers::contacts::{self as ccontacts, NewContact};
use customers::fields::{self, NewCategory, NewCustomField};
use customers::{RecordType, tasks};
use kernel::paging::PageRequest;
use kernel::testing::test_databases;
use kernel::{Db, Error, Id, Principal, Tx};
use web::pages::customers::panels::{CustomerPanel, Panel, PanelContext};
use web::{AppState, Config};

use super::{Reply, create_user, enc, get, hidden_csrf, location, post_form, send, session};

/// Runs `work` as user `id` in one write unit of work.
async fn as_user<T, F>(db: &Db, id: Id, work: F) -> T
where
    F: FnOnce(&mut Tx<'_>, &Principal) -> kernel::Result<T> + Send + 'static,
    T: Send + 'static,
{
    db.write(move |tx| {
        let who = kernel::identity::principal_for_user(tx, id)?;
        work(tx, &who)
    })
    .await
    .unwrap()
}

fn account(name: &str, phone: Option<&str>) -> NewAccount {
    NewAccount { name: name.into(), phone: phone.map(str::to_owned), ..Default::default() }
}

async fn account_count(db: &Db, admin: Id) -> usize {
    as_user(db, admin, |tx, who| {
        Ok(caccounts::list(tx, who, &Default::default(), &PageRequest::parse(Some(500), None)?)?.items.len())
    })
    .await
}

/// The session's CSRF token, from a page's logout form.
async fn csrf(app: &axum::Router, cookie: &str) -> String {
    hidden_csrf(&send(app, get("/", Some(cookie))).await.body)
}

fn htmx_post(uri: &str, cookie: &str, csrf: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .header("hx-request", "true")
        .header("x-csrf-token", csrf)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn htmx_get(uri: &str, cookie: &str) -> Request<Body> {
    Request::get(uri).header(header::COOKIE, cookie).header("hx-request", "true").body(Body::empty()).unwrap()
}

fn assert_clean(page: &str, reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{page}: {}", reply.body);
    assert!(!reply.body.contains("style=") && !reply.body.contains("<script>"), "{page} has inline style or script");
}

#[tokio::test]
async fn customer_pages_render_for_the_authorised_and_refuse_others() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        create_user(&db, "sales@example.com", "sales").await;
        create_user(&db, "service@example.com", "service").await;
        let (hq, store, contact) = as_user(&db, admin, |tx, who| {
            let hq = caccounts::create(tx, who, account("国美总部", Some("010 6500 0000")))?;
            let store =
                caccounts::create(tx, who, NewAccount { parent_id: Some(hq.id), ..account("国美 朝阳店", None) })?;
            let contact = ccontacts::create(
                tx,
                who,
                NewContact { name: "王芳".into(), account_id: Some(store.id), ..Default::default() },
            )?;
            Ok((hq.id, store.id, contact.id))
        })
        .await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let admin_cookie = session(&app, "admin@example.com").await;
        for page in [
            "/accounts".to_owned(),
            "/contacts".to_owned(),
            format!("/accounts/{hq}"),
            format!("/accounts/{store}"),
            format!("/contacts/{contact}"),
            "/accounts/new".to_owned(),
            "/contacts/new".to_owned(),
            "/accounts/deleted".to_owned(),
            "/contacts/deleted".to_owned(),
            format!("/accounts/{store}/edit"),
            format!("/contacts/{contact}/edit"),
            format!("/accounts/{store}/delete"),
            "/my-day".to_owned(),
            "/tasks/new".to_owned(),
            "/search?q=%E7%8E%8B".to_owned(),
        ] {
            assert_clean(&page, &send(&app, get(&page, Some(&admin_cookie))).await);
        }
        // The 360 page: hierarchy both ways, contacts, the built-in panels in order.
        let page = send(&app, get(&format!("/accounts/{store}"), Some(&admin_cookie))).await;
        assert!(page.body.contains(&format!("href=\"/accounts/{hq}\"")), "parent chain");
        assert!(page.body.contains(&format!("href=\"/contacts/{contact}\"")), "contacts panel");
        let order: Vec<usize> = [
            "id=\"panel-profile\"",
            "id=\"panel-contacts\"",
            "id=\"panel-timeline\"",
            "id=\"panel-tasks\"",
            "id=\"panel-history\"",
        ]
        .iter()
        .map(|p| page.body.find(p).unwrap_or_else(|| panic!("{p} missing")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "panels out of order: {order:?}");
        let top = send(&app, get(&format!("/accounts/{hq}"), Some(&admin_cookie))).await;
        assert!(top.body.contains(&format!("href=\"/accounts/{store}\"")), "child stores");
        // Navigation and the header search box.
        let home = send(&app, get("/", Some(&admin_cookie))).await;
        for link in ["href=\"/accounts\"", "href=\"/contacts\"", "href=\"/my-day\"", "hx-get=\"/search/suggest\""] {
            assert!(home.body.contains(link), "home lacks {link}");
        }

        // A sales rep sees only their own records: the admin's account is not found.
        let sales = session(&app, "sales@example.com").await;
        assert_eq!(send(&app, get(&format!("/accounts/{store}"), Some(&sales))).await.status, StatusCode::NOT_FOUND);
        assert_eq!(send(&app, get(&format!("/contacts/{contact}"), Some(&sales))).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            send(&app, get(&format!("/accounts/{store}/edit"), Some(&sales))).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(send(&app, get("/accounts/new", Some(&sales))).await.status, StatusCode::OK);
        let list = send(&app, get("/accounts", Some(&sales))).await;
        assert!(!list.body.contains("国美") && list.body.contains("No accounts yet"), "{}", list.body);
        // A service agent reads customers but may not create them or tasks.
        let service = session(&app, "service@example.com").await;
        for page in
            ["/accounts/new", "/contacts/new", "/tasks/new", "/accounts/deleted", &format!("/accounts/{store}/delete")]
        {
            assert_eq!(send(&app, get(page, Some(&service))).await.status, StatusCode::FORBIDDEN, "{page}");
        }
        assert_eq!(send(&app, get(&format!("/accounts/{store}"), Some(&service))).await.status, StatusCode::OK);
        // Nobody logged in: the login page.
        let anonymous = send(&app, get(&format!("/accounts/{store}"), None)).await;
        assert_eq!(location(&anonymous), "/login");
    }
}

#[tokio::test]
async fn searching_finds_records_as_you_type() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let id = as_user(&db, admin, |tx, who| {
            Ok(caccounts::create(tx, who, account("王芳超市", Some("138 0013 8000")))?.id)
        })
        .await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "admin@example.com").await;
        for q in ["王芳", "0013 8000", "王"] {
            let hits = send(&app, htmx_get(&format!("/search/suggest?q={}", enc(q)), &cookie)).await;
            assert_eq!(hits.status, StatusCode::OK);
            assert!(hits.body.contains(&format!("href=\"/accounts/{id}\"")), "{q}: {}", hits.body);
            assert!(!hits.body.contains("<html"), "a fragment, not a page");
        }
        let list = send(&app, get(&format!("/accounts?q={}", enc("王芳")), Some(&cookie))).await;
        assert!(list.body.contains("王芳超市") && list.body.contains("hx-trigger=\"input changed delay:200ms"));
        let none = send(&app, get("/accounts?q=zzzz", Some(&cookie))).await;
        assert!(!none.body.contains("王芳超市") && none.body.contains("Nothing matches"), "{}", none.body);
        let page = send(&app, get(&format!("/search?q={}", enc("王")), Some(&cookie))).await;
        assert!(page.body.contains(&format!("href=\"/accounts/{id}\"")));
    }
}

#[tokio::test]
async fn custom_field_errors_show_next_to_the_field_and_write_nothing() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let category = as_user(&db, admin, |tx, who| {
            let c = fields::create_category(tx, who, NewCategory { name: "Department store".into() })?;
            for (key, label, kind, required, options) in [
                ("stores", "Number of stores", "number", true, None),
                ("tier", "Tier", "select", false, Some(vec!["A".to_owned(), "B".to_owned()])),
                ("opened", "Opened", "date", false, None),
            ] {
                fields::create_field(
                    tx,
                    who,
                    NewCustomField {
                        category_id: c.id,
                        record_type: Some("account".into()),
                        key: key.into(),
                        label: label.into(),
                        field_type: kind.into(),
                        required,
                        options,
                    },
                )?;
            }
            Ok(c.id)
        })
        .await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "admin@example.com").await;
        let token = csrf(&app, &cookie).await;
        // Re-picking the category brings its typed inputs (htmx fragment).
        let part = send(&app, htmx_get(&format!("/accounts/custom-fields?category_id={category}"), &cookie)).await;
        assert!(part.body.contains("name=\"custom.stores\"") && part.body.contains("type=\"date\""), "{}", part.body);
        assert!(part.body.contains("<option value=\"A\""));

        let body = format!(
            "csrf_token={}&name=Grand+Store&category_id={category}&status=active&custom.stores=many&custom.tier=A",
            enc(&token)
        );
        let refused = send(&app, post_form("/accounts", Some(&cookie), &body)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(refused.body.contains("must be a number"), "{}", refused.body);
        assert!(refused.body.contains("value=\"many\""), "what was typed stays");
        assert_eq!(account_count(&db, admin).await, 0);

        let body =
            format!("csrf_token={}&name=Grand+Store&category_id={category}&status=active&custom.tier=A", enc(&token));
        let refused = send(&app, post_form("/accounts", Some(&cookie), &body)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains("is required"), "{}", refused.body);
        assert_eq!(account_count(&db, admin).await, 0);

        let body = format!(
            "csrf_token={}&name=Grand+Store&category_id={category}&status=active&custom.stores=12&custom.tier=B&custom.opened=2020-05-01",
            enc(&token)
        );
        let created = send(&app, post_form("/accounts", Some(&cookie), &body)).await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let page = send(&app, get(&location(&created), Some(&cookie))).await;
        assert!(
            page.body.contains("Number of stores") && page.body.contains(">12<") && page.body.contains("2020-05-01")
        );
    }
}

#[tokio::test]
async fn a_possible_duplicate_is_shown_before_creating_anyway() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let first = as_user(&db, admin, |tx, who| {
            Ok(caccounts::create(tx, who, account("苏宁", Some("+86 138 0013 8000")))?.id)
        })
        .await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "admin@example.com").await;
        let token = csrf(&app, &cookie).await;
        let body = format!("csrf_token={}&name={}&status=active&phone=13800138000", enc(&token), enc("苏宁易购"));
        let warned = send(&app, post_form("/accounts", Some(&cookie), &body)).await;
        assert_eq!(warned.status, StatusCode::OK);
        assert!(
            warned.body.contains("This may already exist")
                && warned.body.contains(&format!("href=\"/accounts/{first}\""))
        );
        assert!(warned.body.contains("name=\"confirm_duplicates\" value=\"1\""));
        assert_eq!(account_count(&db, admin).await, 1, "nothing written before the user decides");
        let created = send(&app, post_form("/accounts", Some(&cookie), &format!("{body}&confirm_duplicates=1"))).await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        assert_eq!(account_count(&db, admin).await, 2);
        // Contacts warn the same way.
        as_user(&db, admin, |tx, who| {
            ccontacts::create(
                tx,
                who,
                NewContact { name: "김민준".into(), email: Some("minjun@example.kr".into()), ..Default::default() },
            )
        })
        .await;
        let body = format!("csrf_token={}&name={}&email=MinJun%40example.kr", enc(&token), enc("김민준"));
        let warned = send(&app, post_form("/contacts", Some(&cookie), &body)).await;
        assert!(warned.body.contains("This may already exist"), "{}", warned.body);
    }
}

#[tokio::test]
async fn a_stale_edit_keeps_what_was_typed_and_deletes_restore() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let id = as_user(&db, admin, |tx, who| Ok(caccounts::create(tx, who, account("Lotte Mart", None))?.id)).await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "admin@example.com").await;
        let token = csrf(&app, &cookie).await;
        let form = send(&app, get(&format!("/accounts/{id}/edit"), Some(&cookie))).await;
        assert!(form.body.contains("name=\"version\" value=\"1\""));
        // Someone else saves first.
        as_user(&db, admin, move |tx, who| {
            caccounts::update(
                tx,
                who,
                id,
                caccounts::AccountPatch { name: Some("Lotte Mart Seoul".into()), ..Default::default() },
            )
        })
        .await;
        let body = format!("csrf_token={}&version=1&name=Typed+Name&status=active&email=buyer%40lotte.kr", enc(&token));
        let stale = send(&app, post_form(&format!("/accounts/{id}"), Some(&cookie), &body)).await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        assert!(stale.body.contains("Someone else changed this record"), "{}", stale.body);
        assert!(stale.body.contains("value=\"Typed Name\"") && stale.body.contains("value=\"buyer@lotte.kr\""));
        assert!(stale.body.contains("name=\"version\" value=\"2\""), "saving again is a knowing overwrite");
        let stored = as_user(&db, admin, move |tx, who| caccounts::get(tx, who, id)).await;
        assert_eq!(stored.name, "Lotte Mart Seoul");
        let saved =
            send(&app, post_form(&format!("/accounts/{id}"), Some(&cookie), &body.replace("version=1", "version=2")))
                .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        assert_eq!(as_user(&db, admin, move |tx, who| caccounts::get(tx, who, id)).await.name, "Typed Name");

        // Delete after confirmation, then restore from the list's notice.
        let deleted = send(
            &app,
            post_form(&format!("/accounts/{id}/delete"), Some(&cookie), &format!("csrf_token={}", enc(&token))),
        )
        .await;
        assert_eq!(location(&deleted), format!("/accounts?deleted={id}"));
        assert_eq!(send(&app, get(&format!("/accounts/{id}"), Some(&cookie))).await.status, StatusCode::NOT_FOUND);
        let list = send(&app, get(&location(&deleted), Some(&cookie))).await;
        assert!(list.body.contains(&format!("action=\"/accounts/{id}/restore\"")));
        let bin = send(&app, get("/accounts/deleted", Some(&cookie))).await;
        assert!(bin.body.contains("Typed Name") && bin.body.contains(&format!("action=\"/accounts/{id}/restore\"")));
        let restored = send(
            &app,
            post_form(&format!("/accounts/{id}/restore"), Some(&cookie), &format!("csrf_token={}", enc(&token))),
        )
        .await;
        assert_eq!(location(&restored), format!("/accounts/{id}?saved=restored"));
        assert_eq!(send(&app, get(&location(&restored), Some(&cookie))).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_logged_activity_lands_on_top_of_the_timeline() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let id = as_user(&db, admin, |tx, who| Ok(caccounts::create(tx, who, account("华润万家", None))?.id)).await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "admin@example.com").await;
        let token = csrf(&app, &cookie).await;
        // Tap 1 opens the kinds (no request); tap 2 picks one: the form, subject prefilled.
        let page = send(&app, get(&format!("/accounts/{id}"), Some(&cookie))).await;
        assert!(page.body.contains(&format!("hx-get=\"/accounts/{id}/log?kind=visit\"")));
        let form = send(&app, htmx_get(&format!("/accounts/{id}/log?kind=visit"), &cookie)).await;
        assert!(form.body.contains("value=\"Visit to 华润万家\"") && !form.body.contains("<html"), "{}", form.body);
        // Tap 3 saves: the answer is the new entry (and the emptied form, out of band).
        let body = format!("csrf_token={}&kind=visit&subject={}&body=", enc(&token), enc("Visit to 华润万家"));
        let saved = send(&app, htmx_post(&format!("/accounts/{id}/activities"), &cookie, &token, &body)).await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
        assert!(saved.body.contains("class=\"entry kind-visit\"") && saved.body.contains("hx-swap-oob"));
        // A bad one answers with the form and its error, retargeted at the form.
        let bad =
            send(&app, htmx_post(&format!("/accounts/{id}/activities"), &cookie, &token, "kind=call&subject=")).await;
        assert_eq!(bad.headers.get("hx-retarget").unwrap(), "#log-form");
        assert!(bad.body.contains("field-error"), "{}", bad.body);
        let page = send(&app, get(&format!("/accounts/{id}"), Some(&cookie))).await;
        let timeline = page.body.find("id=\"timeline-list\"").unwrap();
        assert!(page.body[timeline..].contains("Visit to 华润万家"));
        // Without JavaScript: post, then back to the page.
        let plain = send(
            &app,
            post_form(
                &format!("/accounts/{id}/activities"),
                Some(&cookie),
                &format!("csrf_token={}&kind=note&subject=Price+list+sent", enc(&token)),
            ),
        )
        .await;
        assert_eq!(location(&plain), format!("/accounts/{id}?saved=logged"));
        let page = send(&app, get(&format!("/accounts/{id}"), Some(&cookie))).await;
        let (note, visit) =
            (page.body.find("Price list sent").unwrap(), page.body.find("Visit to 华润万家</strong>").unwrap());
        assert!(note < visit, "newest first");
        // Older entries come a page at a time through the "More" link.
        as_user(&db, admin, move |tx, who| {
            for n in 0..25 {
                customers::activities::create(
                    tx,
                    who,
                    customers::activities::NewActivity {
                        kind: "call".into(),
                        account_id: Some(id),
                        subject: format!("Old call {n:02}"),
                        occurred_at: Some(chrono::Utc::now() - chrono::Duration::days(100 + n)),
                        ..Default::default()
                    },
                )?;
            }
            Ok(())
        })
        .await;
        let page = send(&app, get(&format!("/accounts/{id}"), Some(&cookie))).await;
        assert!(!page.body.contains("Old call 24"));
        let marker = format!("hx-get=\"/accounts/{id}/timeline?cursor=");
        let start = page.body.find(&marker).expect("a More link") + "hx-get=\"".len();
        let more = page.body[start..].split('"').next().unwrap().replace("&amp;", "&");
        let next = send(&app, htmx_get(&more, &cookie)).await;
        assert_eq!(next.status, StatusCode::OK);
        assert!(next.body.contains("Old call 24") && !next.body.contains("<html"), "{}", next.body);
        assert!(!next.body.contains("Price list sent"), "no entry twice");
    }
}

#[tokio::test]
async fn tasks_are_created_and_completed_in_one_tap_with_undo() {
    for test in test_databases() {
        let db = test.db();
        let sales = create_user(&db, "sales@example.com", "sales").await;
        let (account_id, task_id) = as_user(&db, sales, |tx, who| {
            let a = caccounts::create(tx, who, account("Emart", None))?;
            let t = tasks::create(
                tx,
                who,
                tasks::NewTask {
                    subject: "Send the autumn catalogue".into(),
                    due_at: Some(chrono::Utc::now() - chrono::Duration::days(2)),
                    account_id: Some(a.id),
                    ..Default::default()
                },
            )?;
            Ok((a.id, t.id))
        })
        .await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "sales@example.com").await;
        let token = csrf(&app, &cookie).await;
        let day = send(&app, get("/my-day", Some(&cookie))).await;
        assert!(day.body.contains("Send the autumn catalogue") && day.body.contains("Overdue"), "{}", day.body);
        let done =
            send(&app, htmx_post(&format!("/tasks/{task_id}/complete"), &cookie, &token, "back=%2Fmy-day")).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(done.body.contains(&format!("/tasks/{task_id}/reopen")) && done.body.contains("Undo"));
        let status =
            |db: Db| async move { as_user(&db, sales, move |tx, who| tasks::get(tx, who, task_id)).await.status };
        assert_eq!(status(db.clone()).await, "done");
        assert!(!send(&app, get("/my-day", Some(&cookie))).await.body.contains("Send the autumn catalogue"));
        let undone = send(&app, htmx_post(&format!("/tasks/{task_id}/reopen"), &cookie, &token, "")).await;
        assert!(undone.body.contains(&format!("/tasks/{task_id}/complete")));
        assert_eq!(status(db.clone()).await, "open");

        // A new task from the account page, due tomorrow, lands back there.
        let form = send(&app, get(&format!("/tasks/new?account_id={account_id}"), Some(&cookie))).await;
        assert!(form.body.contains(&format!("name=\"back\" value=\"/accounts/{account_id}\"")));
        let due = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT10:00");
        let body = format!(
            "csrf_token={}&back=%2Faccounts%2F{account_id}&subject=Call+back&due_at={due}&account_id={account_id}",
            enc(&token)
        );
        let created = send(&app, post_form("/tasks", Some(&cookie), &body)).await;
        assert_eq!(location(&created), format!("/accounts/{account_id}?saved=task"), "{}", created.body);
        let page = send(&app, get(&location(&created), Some(&cookie))).await;
        assert!(page.body.contains("Call back"));
        // A missing due date is named, and nothing is written.
        let body = format!("csrf_token={}&subject=No+date&due_at=", enc(&token));
        let refused = send(&app, post_form("/tasks", Some(&cookie), &body)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains("is required"));
    }
}

struct Hello;

impl CustomerPanel for Hello {
    fn key(&self) -> &'static str {
        "loyalty.points"
    }
    fn order(&self) -> i32 {
        25
    }
    fn applies_to(&self, record_type: RecordType) -> bool {
        record_type == RecordType::Account
    }
    fn render(&self, tx: &mut Tx<'_>, who: &Principal, cx: &PanelContext<'_>) -> kernel::Result<Option<Panel>> {
        // A panel reads through the owning area's API, in the page's unit of work.
        let name = caccounts::get(tx, who, cx.id)?.name;
        Ok(Some(Panel { title: "Loyalty".into(), html: format!("<p class=\"points\">1200 points for {name}</p>") }))
    }
}

struct Broken;

impl CustomerPanel for Broken {
    fn key(&self) -> &'static str {
        "service.tickets"
    }
    fn order(&self) -> i32 {
        40
    }
    fn applies_to(&self, _: RecordType) -> bool {
        true
    }
    fn render(&self, _: &mut Tx<'_>, _: &Principal, _: &PanelContext<'_>) -> kernel::Result<Option<Panel>> {
        Err(Error::Internal("tickets table missing".into()))
    }
}

struct Panicky;

impl CustomerPanel for Panicky {
    fn key(&self) -> &'static str {
        "analytics.rfm"
    }
    fn order(&self) -> i32 {
        41
    }
    fn applies_to(&self, _: RecordType) -> bool {
        true
    }
    fn render(&self, _: &mut Tx<'_>, _: &Principal, _: &PanelContext<'_>) -> kernel::Result<Option<Panel>> {
        panic!("a bug in a panel")
    }
}

#[tokio::test]
async fn panels_registered_from_outside_appear_and_a_failing_one_is_isolated() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let (id, contact) = as_user(&db, admin, |tx, who| {
            let a = caccounts::create(tx, who, account("Shinsegae", None))?;
            let c = ccontacts::create(
                tx,
                who,
                NewContact { name: "이서연".into(), account_id: Some(a.id), ..Default::default() },
            )?;
            Ok((a.id, c.id))
        })
        .await;
        let state = AppState::new(db.clone(), Config::default())
            .with_panel(Arc::new(Broken))
            .with_panel(Arc::new(Hello))
            .with_panel(Arc::new(Panicky));
        assert_eq!(
            state.panels.keys(),
            [
                "contacts",
                "timeline",
                "loyalty.points",
                "tasks",
                "service.tickets",
                "analytics.rfm",
                "consent",
                "history"
            ]
        );
        let app = web::app(state);
        let cookie = session(&app, "admin@example.com").await;
        let page = send(&app, get(&format!("/accounts/{id}"), Some(&cookie))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("1200 points for Shinsegae"));
        let (timeline, loyalty, tasks) = (
            page.body.find("id=\"panel-timeline\"").unwrap(),
            page.body.find("id=\"panel-loyalty.points\"").unwrap(),
            page.body.find("id=\"panel-tasks\"").unwrap(),
        );
        assert!(timeline < loyalty && loyalty < tasks, "ordered by order()");
        assert_eq!(page.body.matches("This section could not be shown").count(), 2, "{}", page.body);
        assert!(!page.body.contains("tickets table missing"), "internals stay in the log");
        assert!(page.body.contains("id=\"panel-history\""), "panels after the failing ones still render");
        // The contact page has the failing panels' boxes but not the account-only ones.
        let page = send(&app, get(&format!("/contacts/{contact}"), Some(&cookie))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("points for") && !page.body.contains("id=\"panel-contacts\""));
        assert!(page.body.contains("id=\"panel-timeline\""));
    }
}

/// The `href` of the first link whose text is `text` (entities undone).
fn link_to(body: &str, text: &str) -> Option<String> {
    let end = body.find(&format!(">{text}</a>"))?;
    let start = body[..end].rfind("href=\"")? + 6;
    let href = body[start..end].split('"').next()?;
    Some(href.replace("&#38;", "&").replace("&amp;", "&"))
}

/// Names in the order a list page shows them.
fn listed<'a>(body: &str, names: &[&'a str]) -> Vec<&'a str> {
    let mut found: Vec<(usize, &str)> =
        names.iter().filter_map(|n| body.find(&format!("<strong>{n}</strong>")).map(|at| (at, *n))).collect();
    found.sort();
    found.into_iter().map(|(_, n)| n).collect()
}

#[tokio::test]
async fn lists_filter_by_tag_and_custom_field_sort_page_and_apply_saved_views() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let category = as_user(&db, admin, |tx, who| {
            let c = fields::create_category(tx, who, NewCategory { name: "Chain".into() })?;
            for (key, label, kind, options) in [
                ("stores", "Stores", "number", None),
                ("tier", "Tier", "select", Some(vec!["A".to_owned(), "B".to_owned()])),
            ] {
                fields::create_field(
                    tx,
                    who,
                    NewCustomField {
                        category_id: c.id,
                        record_type: Some("account".into()),
                        key: key.into(),
                        label: label.into(),
                        field_type: kind.into(),
                        required: false,
                        options,
                    },
                )?;
            }
            for (name, stores, tags) in [("Alpha", 5, vec!["vip"]), ("Beta", 20, vec![]), ("Gamma", 12, vec!["VIP"])] {
                let mut custom = serde_json::Map::new();
                custom.insert("stores".into(), serde_json::json!(stores));
                caccounts::create(
                    tx,
                    who,
                    NewAccount {
                        name: name.into(),
                        category_id: Some(c.id),
                        custom: Some(custom),
                        tags: Some(tags.into_iter().map(str::to_owned).collect()),
                        ..Default::default()
                    },
                )?;
            }
            Ok(c.id)
        })
        .await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "admin@example.com").await;
        let all = ["Alpha", "Beta", "Gamma"];

        let tagged = send(&app, get("/accounts?tag=vip&q=&status=", Some(&cookie))).await;
        assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.body);
        assert_eq!(listed(&tagged.body, &all), ["Alpha", "Gamma"]);
        assert!(tagged.body.contains("<option value=\"vip\">"), "the tag datalist offers tags in use");

        let uri = format!("/accounts?category_id={category}&custom.stores.gte=10&custom.tier=");
        let custom = send(&app, get(&uri, Some(&cookie))).await;
        assert_eq!(listed(&custom.body, &all), ["Beta", "Gamma"]);
        assert!(custom.body.contains("name=\"custom.stores.gte\"") && custom.body.contains("value=\"10\""));
        assert!(custom.body.contains("name=\"custom.tier\""), "a row of inputs for the category's fields");

        let bad =
            send(&app, get(&format!("/accounts?category_id={category}&custom.stores.gte=lots"), Some(&cookie))).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
        assert!(bad.body.contains("custom.stores.gte") && listed(&bad.body, &all).is_empty());
        assert!(bad.body.contains("value=\"lots\" aria-invalid=\"true\""), "the refused value stays, marked");
        let unknown = send(&app, get("/accounts?colour=red", Some(&cookie))).await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(unknown.body.contains("colour"));

        // Sort by name, descending via the header's second click.
        let by_name = send(&app, get("/accounts", Some(&cookie))).await;
        let asc = link_to(&by_name.body, "Name").unwrap();
        assert_eq!(asc, "/accounts?sort=name");
        let asc_page = send(&app, get(&asc, Some(&cookie))).await;
        assert_eq!(listed(&asc_page.body, &all), ["Alpha", "Beta", "Gamma"]);
        let desc = link_to(&asc_page.body, "Name <span aria-hidden=\"true\">▲</span>");
        assert_eq!(desc.as_deref(), Some("/accounts?sort=-name"));
        let desc_page = send(&app, get("/accounts?sort=-name", Some(&cookie))).await;
        assert_eq!(listed(&desc_page.body, &all), ["Gamma", "Beta", "Alpha"]);
        assert!(desc_page.body.contains("<option value=\"-name\" selected>"), "the sort select keeps the order");

        // More than a page: the More link keeps the sort and the filter.
        as_user(&db, admin, |tx, who| {
            for i in 0..55 {
                let mut a = account(&format!("Shop {i:02}"), None);
                a.tags = Some(vec!["shop".into()]);
                caccounts::create(tx, who, a)?;
            }
            Ok(())
        })
        .await;
        let first = send(&app, get("/accounts?tag=shop&sort=-name", Some(&cookie))).await;
        assert!(first.body.contains("<strong>Shop 54</strong>") && !first.body.contains("<strong>Shop 04</strong>"));
        let more = link_to(&first.body, "More").expect("a More link");
        assert!(more.starts_with("/accounts?tag=shop&sort=-name&cursor="), "{more}");
        let second = send(&app, get(&more, Some(&cookie))).await;
        assert_eq!(second.status, StatusCode::OK, "{}", second.body);
        assert!(second.body.contains("<strong>Shop 00</strong>") && !second.body.contains("<strong>Shop 54</strong>"));
        assert!(second.body.contains("<strong>Shop 04</strong>") && link_to(&second.body, "More").is_none());

        // Save the current filter as a view, then apply it from the dropdown.
        let token = csrf(&app, &cookie).await;
        let refused = send(
            &app,
            post_form(
                "/accounts/views",
                Some(&cookie),
                &format!("csrf_token={}&view_name=&query=tag%3Dvip", enc(&token)),
            ),
        )
        .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(refused.body.contains("field-error"), "the name's error shows");
        let body =
            format!("csrf_token={}&view_name=Key+chains&shared=true&query=tag%3Dvip%26sort%3D-name", enc(&token));
        let saved = send(&app, post_form("/accounts/views", Some(&cookie), &body)).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let opened = send(&app, get(&location(&saved), Some(&cookie))).await;
        assert_eq!(listed(&opened.body, &all), ["Gamma", "Alpha"]);
        assert!(opened.body.contains("selected>Key chains</option>"), "the dropdown shows the applied view");
        let id = location(&saved).rsplit('=').next().unwrap().to_owned();
        let applied = send(&app, get(&format!("/accounts?view={id}"), Some(&cookie))).await;
        assert_eq!(listed(&applied.body, &all), ["Gamma", "Alpha"]);
        assert_eq!(
            link_to(&applied.body, "Export CSV").as_deref(),
            Some("/api/v1/accounts/export?format=csv&tag=vip&sort=-name")
        );
        // The owner deletes the view from the page; it leaves the dropdown.
        assert!(applied.body.contains(&format!("action=\"/accounts/views/{id}/delete\"")));
        let body = format!("csrf_token={}", enc(&token));
        let deleted = send(&app, post_form(&format!("/accounts/views/{id}/delete"), Some(&cookie), &body)).await;
        assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
        let after = send(&app, get("/accounts", Some(&cookie))).await;
        assert!(!after.body.contains("Key chains"));
    }
}

#[tokio::test]
async fn forms_edit_addresses_and_member_fields_and_the_profile_shows_them() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "admin@example.com").await;
        let token = csrf(&app, &cookie).await;
        let contacts = |db: Db| async move {
            as_user(&db, admin, |tx, who| {
                Ok(ccontacts::list(tx, who, &Default::default(), &PageRequest::parse(Some(500), None)?)?.items)
            })
            .await
        };
        let form = send(&app, get("/contacts/new", Some(&cookie))).await;
        assert!(form.body.contains("name=\"addresses[0].country\"") && form.body.contains("name=\"is_member\""));

        // A nested error lands next to the address row it belongs to; nothing is written.
        let base = format!(
            "csrf_token={}&name=Kim+Minji&status=active&title=Buyer&tags=VIP%2C+%E5%8D%8E%E4%B8%9C\
             &addresses[0].kind=store&addresses[0].line1=1+Sejong-daero&addresses[0].city=Seoul&addresses[0].country=kr\
             &is_member=true&card_no=M-001&birthday=1990-02-03&gender=female&household_size=3&member_since=2020-01-01",
            enc(&token)
        );
        let bad = format!(
            "{base}&addresses[1].kind=office&addresses[1].line1=2+Road&addresses[1].city=Busan&addresses[1].country=ZZ"
        );
        let refused = send(&app, post_form("/contacts", Some(&cookie), &bad)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(refused.body.contains("id=\"addresses-1-country-error\""), "{}", refused.body);
        assert!(refused.body.contains("ISO 3166-1"));
        assert!(!refused.body.contains("id=\"addresses-0-country-error\""));
        assert!(refused.body.contains("value=\"M-001\""), "what was typed stays");
        assert!(contacts(db.clone()).await.is_empty());
        let bad_date =
            send(&app, post_form("/contacts", Some(&cookie), &base.replace("1990-02-03", "03/02/1990"))).await;
        assert_eq!(bad_date.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad_date.body.contains("id=\"birthday-error\""));

        // "Add another address" shows one more blank row and writes nothing.
        let more = send(&app, post_form("/contacts", Some(&cookie), &format!("{base}&add_address=1"))).await;
        assert_eq!(more.status, StatusCode::OK);
        assert!(more.body.contains("name=\"addresses[2].city\"") && contacts(db.clone()).await.is_empty());

        let created = send(&app, post_form("/contacts", Some(&cookie), &base)).await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let profile = send(&app, get(&location(&created), Some(&cookie))).await;
        for shown in
            ["M-001", "1990-02-03", "Female", ">3<", "2020-01-01", "Buyer", "1 Sejong-daero, Seoul, KR", "Store"]
        {
            assert!(profile.body.contains(shown), "{shown}: {}", profile.body);
        }
        assert!(profile.body.contains("href=\"/contacts?tag=vip\""), "tags link to the filtered list");
        let c = contacts(db.clone()).await.remove(0);
        assert_eq!(c.tags, ["vip", "华东"]);
        // The tags input's datalist completes the last tag of what was typed.
        let typed = send(&app, htmx_get("/tags/suggest?record_type=contact&tags=Friend%2C+v", &cookie)).await;
        assert_eq!(typed.status, StatusCode::OK, "{}", typed.body);
        assert!(
            typed.body.contains("<option value=\"Friend, vip\">") && !typed.body.contains("华东"),
            "{}",
            typed.body
        );
        let again = send(&app, htmx_get("/tags/suggest?record_type=contact&tags=vip%2C", &cookie)).await;
        assert!(
            again.body.contains("<option value=\"vip, 华东\">") && !again.body.contains("vip, vip"),
            "{}",
            again.body
        );
        assert_eq!(c.household_size, Some(3));

        // Edit: the stored values come back; remove the address, change the household.
        let edit = send(&app, get(&format!("/contacts/{}/edit", c.id), Some(&cookie))).await;
        assert!(edit.body.contains("value=\"Seoul\"") && edit.body.contains("value=\"vip, 华东\""));
        assert!(edit.body.contains("name=\"is_member\" value=\"true\" role=\"switch\" checked"));
        let body = format!(
            "{}&version={}&addresses[0].remove=1&household_size=4",
            base.replace("&household_size=3", ""),
            c.version
        );
        let saved = send(&app, post_form(&format!("/contacts/{}", c.id), Some(&cookie), &body)).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let c = contacts(db.clone()).await.remove(0);
        assert!(c.addresses.is_empty());
        assert_eq!(c.household_size, Some(4));

        // Accounts: money, terms, region, extra e-mails.
        let body = format!(
            "csrf_token={}&name=Lotte+Mart&status=active&region=Seoul&credit_limit=12.345&payment_terms_days=30&emails=Ops%40Example.com",
            enc(&token)
        );
        let refused = send(&app, post_form("/accounts", Some(&cookie), &body)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(refused.body.contains("id=\"credit_limit-error\""));
        assert_eq!(account_count(&db, admin).await, 0);
        let created = send(&app, post_form("/accounts", Some(&cookie), &body.replace("12.345", "50000.5"))).await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let profile = send(&app, get(&location(&created), Some(&cookie))).await;
        for shown in ["50000.50", "30 days", "ops@example.com", ">Seoul<"] {
            assert!(profile.body.contains(shown), "{shown}: {}", profile.body);
        }
    }
}

#[tokio::test]
async fn the_contact_list_filters_members_status_and_the_contact_category_fields() {
    for test in test_databases() {
        let db = test.db();
        let admin = create_user(&db, "admin@example.com", "admin").await;
        let category = as_user(&db, admin, |tx, who| {
            let c = fields::create_category(tx, who, NewCategory { name: "Shoppers".into() })?;
            fields::create_field(
                tx,
                who,
                NewCustomField {
                    category_id: c.id,
                    record_type: Some("contact".into()),
                    key: "level".into(),
                    label: "Level".into(),
                    field_type: "select".into(),
                    required: false,
                    options: Some(vec!["gold".into(), "silver".into()]),
                },
            )?;
            for (name, member, level, status) in
                [("Ann", true, "gold", "active"), ("Bo", false, "silver", "active"), ("Cy", true, "silver", "inactive")]
            {
                let mut custom = serde_json::Map::new();
                custom.insert("level".into(), serde_json::json!(level));
                ccontacts::create(
                    tx,
                    who,
                    NewContact {
                        name: name.into(),
                        category_id: Some(c.id),
                        is_member: Some(member),
                        status: Some(status.into()),
                        custom: Some(custom),
                        ..Default::default()
                    },
                )?;
            }
            Ok(c.id)
        })
        .await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "admin@example.com").await;
        let all = ["Ann", "Bo", "Cy"];
        let members = send(&app, get("/contacts?is_member=true", Some(&cookie))).await;
        assert_eq!(listed(&members.body, &all), ["Ann", "Cy"]);
        let active = send(&app, get("/contacts?is_member=true&status=active", Some(&cookie))).await;
        assert_eq!(listed(&active.body, &all), ["Ann"]);
        let silver =
            send(&app, get(&format!("/contacts?category_id={category}&custom.level=silver"), Some(&cookie))).await;
        assert_eq!(listed(&silver.body, &all), ["Bo", "Cy"]);
        assert!(silver.body.contains("<th>Level</th>"), "the category's fields become columns");
        assert!(silver.body.contains("<option value=\"silver\" selected>"));
        let bad = send(&app, get("/contacts?is_member=maybe", Some(&cookie))).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.body.contains("is_member"));
    }
}

/// A contact with an e-mail and a title, created as `who`.
fn person(name: &str, email: &str, title: &str) -> NewContact {
    NewContact { name: name.into(), email: Some(email.into()), title: Some(title.into()), ..Default::default() }
}

async fn contact_title(db: &Db, as_id: Id, id: Id) -> Option<String> {
    as_user(db, as_id, move |tx, who| Ok(ccontacts::get(tx, who, id)?.title)).await
}

async fn contact_level(db: &Db, as_id: Id, id: Id) -> Option<String> {
    as_user(db, as_id, move |tx, who| {
        Ok(ccontacts::get(tx, who, id)?.custom.get("level").and_then(|v| v.as_str()).map(str::to_owned))
    })
    .await
}

#[tokio::test]
async fn duplicates_are_listed_merged_from_the_page_redirect_and_undo() {
    for test in test_databases() {
        let db = test.db();
        let manager = create_user(&db, "manager@example.com", "manager").await;
        let admin = create_user(&db, "admin@example.com", "admin").await;
        create_user(&db, "sales@example.com", "sales").await;
        let club = as_user(&db, admin, |tx, who| {
            let c = fields::create_category(tx, who, NewCategory { name: "Member club".into() })?;
            let level = NewCustomField {
                category_id: c.id,
                record_type: Some("contact".into()),
                key: "level".into(),
                label: "Club level".into(),
                field_type: "text".into(),
                required: false,
                options: None,
            };
            fields::create_field(tx, who, level)?;
            Ok(c.id)
        })
        .await;
        let (a, b, x, y) = as_user(&db, manager, move |tx, who| {
            let in_club = |mut c: NewContact, level: &str| {
                c.category_id = Some(club);
                c.custom = Some(serde_json::json!({ "level": level }).as_object().cloned().unwrap_or_default());
                c
            };
            let a = ccontacts::create(tx, who, in_club(person("王芳", "wang.fang@example.cn", "店长"), "silver"))?;
            let b = ccontacts::create(tx, who, in_club(person("王 芳", "wang.fang@example.cn", "采购经理"), "gold"))?;
            let x = caccounts::create(tx, who, account("永辉超市", Some("021 6000 0001")))?;
            let y = caccounts::create(tx, who, account("永辉 超市", Some("021 6000 0001")))?;
            Ok((a.id, b.id, x.id, y.id))
        })
        .await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "manager@example.com").await;

        // The ranked candidates: the planted pair, its reasons and a link to merge it.
        let list = send(&app, get("/duplicates?record_type=contact", Some(&cookie))).await;
        assert_clean("/duplicates", &list);
        assert!(list.body.contains(&format!("href=\"/contacts/{a}\"")), "{}", list.body);
        assert!(list.body.contains(&format!("href=\"/contacts/{b}\"")));
        assert!(list.body.contains("same e-mail"), "{}", list.body);
        let merge_link = format!("/merges/new?record_type=contact&#38;ids={a},{b}");
        assert!(list.body.contains(&merge_link), "{}", list.body);
        // Linked from the list page and the navigation for those who may merge.
        let contacts = send(&app, get("/contacts", Some(&cookie))).await;
        assert!(contacts.body.contains("href=\"/duplicates?record_type=contact\""));
        assert!(contacts.body.contains("href=\"/duplicates\""));
        assert!(contacts.body.contains("href=\"/admin/handover\""));
        // A sales rep may not merge: refused, and no links.
        let sales = session(&app, "sales@example.com").await;
        assert_eq!(
            send(&app, get("/duplicates?record_type=contact", Some(&sales))).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            send(&app, get(&format!("/merges/new?record_type=contact&ids={a},{b}"), Some(&sales))).await.status,
            StatusCode::FORBIDDEN
        );
        let rep_list = send(&app, get("/contacts", Some(&sales))).await;
        assert!(!rep_list.body.contains("/duplicates") && !rep_list.body.contains("/admin/handover"));
        // An empty state for accounts of nobody's: after the account pair is merged below.

        // The merge page: both records side by side, a radio per field.
        let page = send(&app, get(&format!("/merges/new?record_type=contact&ids={a},{b}"), Some(&cookie))).await;
        assert_clean("/merges/new", &page);
        assert!(page.body.contains("店长") && page.body.contains("采购经理"), "{}", page.body);
        assert!(page.body.contains(&format!("name=\"field.title\" value=\"{b}\"")), "{}", page.body);
        assert!(page.body.contains("Club level") && page.body.contains("gold"), "{}", page.body);
        assert!(page.body.contains(&format!("name=\"keep_id\" value=\"{a}\" checked")));
        let csrf = hidden_csrf(&page.body);
        let form = |confirm: &str| {
            format!(
                "csrf_token={}&record_type=contact&ids={a}%2C{b}&keep_id={a}&field.title={b}&field.name={a}&field.custom.level={b}{confirm}",
                enc(&csrf)
            )
        };
        // Not confirmed: refused naming the box, nothing merged.
        let refused = send(&app, post_form("/merges", Some(&cookie), &form(""))).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(refused.body.contains("class=\"field-error\""));
        assert_eq!(send(&app, get(&format!("/contacts/{b}"), Some(&cookie))).await.status, StatusCode::OK);
        // Confirmed: B's title wins, B is merged into A, and A's page offers an undo.
        let done = send(&app, post_form("/merges", Some(&cookie), &form("&confirm=yes"))).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let to = location(&done);
        assert!(to.starts_with(&format!("/contacts/{a}?saved=merged&merge=")), "{to}");
        assert_eq!(contact_title(&db, manager, a).await.as_deref(), Some("采购经理"));
        assert_eq!(contact_level(&db, manager, a).await.as_deref(), Some("gold"));
        let kept = send(&app, get(&to, Some(&cookie))).await;
        assert_eq!(kept.status, StatusCode::OK);
        assert!(kept.body.contains("Records merged.") && kept.body.contains("Undo merge"), "{}", kept.body);
        let merge_id = to.rsplit('=').next().unwrap().to_owned();
        assert!(kept.body.contains(&format!("action=\"/merges/{merge_id}/undo\"")));
        // The merged-away page leads to the kept one.
        let old = send(&app, get(&format!("/contacts/{b}"), Some(&cookie))).await;
        assert_eq!(old.status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(location(&old), format!("/contacts/{a}"));
        // Undo restores the kept record's title and the merged record's page.
        let undo = format!("/merges/{merge_id}/undo");
        let undone = send(&app, post_form(&undo, Some(&cookie), &format!("csrf_token={}", enc(&csrf)))).await;
        assert_eq!(undone.status, StatusCode::SEE_OTHER, "{}", undone.body);
        assert_eq!(location(&undone), format!("/contacts/{a}?saved=unmerged"));
        assert_eq!(contact_title(&db, manager, a).await.as_deref(), Some("店长"));
        assert_eq!(contact_level(&db, manager, a).await.as_deref(), Some("silver"));
        assert_eq!(send(&app, get(&format!("/contacts/{b}"), Some(&cookie))).await.status, StatusCode::OK);
        // A second undo is refused with the store's reason.
        let again = send(&app, post_form(&undo, Some(&cookie), &format!("csrf_token={}", enc(&csrf)))).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        assert!(again.body.contains("undone"), "{}", again.body);

        // Accounts too: a merged-away account page redirects; the list then has no pair.
        as_user(&db, manager, move |tx, who| {
            let input = customers::merge::NewMerge {
                record_type: "account".into(),
                keep_id: x,
                merge_ids: vec![y],
                fields: None,
            };
            customers::merge::merge(tx, who, input)
        })
        .await;
        let old = send(&app, get(&format!("/accounts/{y}"), Some(&cookie))).await;
        assert_eq!(old.status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(location(&old), format!("/accounts/{x}"));
        let empty = send(&app, get("/duplicates?record_type=account", Some(&cookie))).await;
        assert_clean("/duplicates?record_type=account", &empty);
        assert!(empty.body.contains("No possible duplicates found."), "{}", empty.body);
        // A record that never existed is still a 404.
        assert_eq!(send(&app, get("/contacts/999999999", Some(&cookie))).await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn consent_is_recorded_from_the_panel_and_erase_needs_the_typed_id() {
    for test in test_databases() {
        let db = test.db();
        let manager = create_user(&db, "manager@example.com", "manager").await;
        create_user(&db, "service@example.com", "service").await;
        let c = as_user(&db, manager, |tx, who| {
            Ok(ccontacts::create(tx, who, person("Kim Minjun", "kim@lotte.kr", "Buyer"))?.id)
        })
        .await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let cookie = session(&app, "manager@example.com").await;
        let page = send(&app, get(&format!("/contacts/{c}"), Some(&cookie))).await;
        assert_clean("contact page", &page);
        assert!(page.body.contains("id=\"panel-consent\""), "{}", page.body);
        assert!(page.body.contains("Not asked"));
        assert!(page.body.contains(&format!("href=\"/contacts/{c}/erase\"")));
        let csrf = hidden_csrf(&page.body);
        let consents =
            |db: Db| async move { as_user(&db, manager, move |tx, who| customers::consent::list(tx, who, c)).await };

        // A grant without a source is refused and records nothing.
        let uri = format!("/contacts/{c}/consents/email");
        let blank =
            send(&app, post_form(&uri, Some(&cookie), &format!("csrf_token={}&granted=true&source=", enc(&csrf))))
                .await;
        assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", blank.body);
        assert!(blank.body.contains("source"), "{}", blank.body);
        assert!(consents(db.clone()).await.history.is_empty());
        let body = format!("csrf_token={}&granted=true&source={}", enc(&csrf), enc("web form"));
        let granted = send(&app, post_form(&uri, Some(&cookie), &body)).await;
        assert_eq!(granted.status, StatusCode::SEE_OTHER, "{}", granted.body);
        let now = consents(db.clone()).await;
        assert_eq!(now.current.len(), 1);
        assert!(now.current[0].granted && now.current[0].channel == "email" && now.current[0].source == "web form");
        let page = send(&app, get(&format!("/contacts/{c}"), Some(&cookie))).await;
        assert!(page.body.contains("Granted") && page.body.contains("web form"), "{}", page.body);
        // Do not contact, with a reason.
        let body = format!("csrf_token={}&value=true&reason={}", enc(&csrf), enc("asked on the phone"));
        let dnc = send(&app, post_form(&format!("/contacts/{c}/do-not-contact"), Some(&cookie), &body)).await;
        assert_eq!(dnc.status, StatusCode::SEE_OTHER, "{}", dnc.body);
        let now = consents(db.clone()).await;
        assert!(now.do_not_contact);
        assert_eq!(now.do_not_contact_reason.as_deref(), Some("asked on the phone"));

        // The personal data downloads as JSON.
        let data = send(&app, get(&format!("/contacts/{c}/personal-data"), Some(&cookie))).await;
        assert_eq!(data.status, StatusCode::OK);
        assert_eq!(data.headers[header::CONTENT_TYPE], "application/json");
        assert!(data.body.contains("Kim Minjun") && data.body.contains("web form"), "{}", data.body);
        // Someone without customers.privacy sees neither the buttons nor the pages.
        let service = session(&app, "service@example.com").await;
        let theirs = send(&app, get(&format!("/contacts/{c}"), Some(&service))).await;
        assert_eq!(theirs.status, StatusCode::OK);
        assert!(!theirs.body.contains(&format!("/contacts/{c}/erase")));
        assert_eq!(
            send(&app, get(&format!("/contacts/{c}/erase"), Some(&service))).await.status,
            StatusCode::FORBIDDEN
        );

        // Erase: the confirmation page asks for the id; a wrong one erases nothing.
        let confirm = send(&app, get(&format!("/contacts/{c}/erase"), Some(&cookie))).await;
        assert_clean("erase", &confirm);
        let erase = format!("/contacts/{c}/erase");
        let wrong =
            send(&app, post_form(&erase, Some(&cookie), &format!("csrf_token={}&confirm=12345", enc(&csrf)))).await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.body);
        assert!(wrong.body.contains("class=\"field-error\""), "{}", wrong.body);
        let name =
            |db: Db| async move { as_user(&db, manager, move |tx, who| Ok(ccontacts::get(tx, who, c)?.name)).await };
        assert_eq!(name(db.clone()).await, "Kim Minjun");
        let right =
            send(&app, post_form(&erase, Some(&cookie), &format!("csrf_token={}&confirm={c}", enc(&csrf)))).await;
        assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.body);
        assert_eq!(name(db.clone()).await, "Erased person");
        let after = send(&app, get(&location(&right), Some(&cookie))).await;
        assert!(after.body.contains("Personal data erased.") && !after.body.contains("Kim Minjun"), "{}", after.body);
    }
}
