//! The delegation and working-calendar pages end to end, on every backend.
use axum::http::StatusCode;
use kernel::testing::test_databases;
use web::{AppState, Config};

use super::{create_user, enc, get, hidden_csrf, location, post_form, send, session};

#[tokio::test]
async fn a_delegation_is_named_and_revoked_from_the_page() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "boss@example.com", "manager").await;
        let deputy = create_user(&db, "deputy@example.com", "manager").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let boss = session(&app, "boss@example.com").await;
        let page = send(&app, get("/delegations", Some(&boss))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("deputy@example.com"), "the picker offers colleagues");
        assert!(!page.body.contains("&lt;boss@example.com&gt;"), "not oneself");
        let csrf = hidden_csrf(&page.body);
        // Bad input: the page says what is wrong and nothing is written.
        let bad = format!("csrf_token={}&delegate_id={deputy}&ends_at=yesterday", enc(&csrf));
        let reply = send(&app, post_form("/delegations", Some(&boss), &bad)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
        assert!(reply.body.contains("is not a date and time"), "{}", reply.body);
        let ends = (chrono::Utc::now() + chrono::Duration::days(7)).format("%Y-%m-%dT%H:%M").to_string();
        let body = format!("csrf_token={}&delegate_id={deputy}&starts_at=&ends_at={}", enc(&csrf), enc(&ends));
        let reply = send(&app, post_form("/delegations", Some(&boss), &body)).await;
        assert_eq!((reply.status, location(&reply)), (StatusCode::SEE_OTHER, "/delegations".into()), "{}", reply.body);
        let page = send(&app, get("/delegations", Some(&boss))).await;
        assert!(page.body.contains("Running"), "{}", page.body);
        let marker = "href=\"/delegations/";
        let start = page.body.find(marker).expect("a revoke link") + marker.len();
        let id = page.body[start..].split('/').next().unwrap().to_owned();
        // The deputy sees whom they stand in for.
        let deputy_cookie = session(&app, "deputy@example.com").await;
        let theirs = send(&app, get("/delegations", Some(&deputy_cookie))).await;
        assert!(theirs.body.contains("Test Person") && theirs.body.contains("Running"), "{}", theirs.body);
        // Revoking asks first, then ends it.
        let confirm = send(&app, get(&format!("/delegations/{id}/revoke"), Some(&boss))).await;
        assert_eq!(confirm.status, StatusCode::OK);
        assert!(confirm.body.contains("Revoke this delegation now?"));
        let reply = send(
            &app,
            post_form(&format!("/delegations/{id}/revoke"), Some(&boss), &format!("csrf_token={}", enc(&csrf))),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let page = send(&app, get("/delegations", Some(&boss))).await;
        assert!(page.body.contains("Revoked") && !page.body.contains(&format!("/delegations/{id}/revoke")));
        let theirs = send(&app, get("/delegations", Some(&deputy_cookie))).await;
        assert!(theirs.body.contains("Nobody has named you"), "{}", theirs.body);
    }
}

#[tokio::test]
async fn the_working_calendar_page_loads_presets_edits_hours_and_deletes_a_day() {
    for test in test_databases() {
        let db = test.db();
        create_user(&db, "admin@example.com", "admin").await;
        create_user(&db, "rep@example.com", "sales").await;
        let app = web::app(AppState::new(db.clone(), Config::default()));
        let rep = session(&app, "rep@example.com").await;
        assert_eq!(send(&app, get("/working-calendar", Some(&rep))).await.status, StatusCode::FORBIDDEN);
        let admin = session(&app, "admin@example.com").await;
        let hq = db.read(kernel::setup::head_office).await.unwrap();
        let page = send(&app, get(&format!("/working-calendar?branch={hq}&year=2026"), Some(&admin))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("09:00-18:00") && page.body.contains("default hours"), "{}", page.body);
        let csrf = hidden_csrf(&page.body);
        let c = enc(&csrf);
        // Holidays for every branch, twice: the second load adds nothing.
        let load = format!("csrf_token={c}&branch=&country=CN&year=2026");
        let reply = send(&app, post_form("/working-calendar/presets", Some(&admin), &load)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let reply = send(&app, post_form("/working-calendar/presets", Some(&admin), &load)).await;
        let shown = send(&app, get(&location(&reply), Some(&admin))).await;
        assert!(shown.body.contains("0 days added"), "{}", shown.body);
        assert!(shown.body.contains("春节") && shown.body.contains("Make-up working day"));
        // Hours with a lunch break; an overlap is shown next to the day and not saved.
        let bad = format!("csrf_token={c}&branch={hq}&year=2026&mon={}", enc("09:00-12:00, 11:00-18:00"));
        let reply = send(&app, post_form("/working-calendar/hours", Some(&admin), &bad)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("overlaps 09:00–12:00"), "{}", reply.body);
        let good = format!(
            "csrf_token={c}&branch={hq}&year=2026&mon={}&sat={}",
            enc("09:00-12:00, 13:00-18:00"),
            enc("9:00-12:00")
        );
        let reply = send(&app, post_form("/working-calendar/hours", Some(&admin), &good)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let page = send(&app, get(&location(&reply), Some(&admin))).await;
        assert!(page.body.contains("09:00-12:00, 13:00-18:00") && page.body.contains("own hours"), "{}", page.body);
        // A day of the branch's own, deleted after a confirmation.
        let add =
            format!("csrf_token={c}&branch={hq}&year=2026&day=2026-11-11&kind=holiday&name={}", enc("Founders' day"));
        let reply = send(&app, post_form("/working-calendar/days", Some(&admin), &add)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let page = send(&app, get(&location(&reply), Some(&admin))).await;
        let marker = "href=\"/working-calendar/days/";
        let start = page.body.find(marker).expect("a delete link for the own day") + marker.len();
        let id = page.body[start..].split('/').next().unwrap().to_owned();
        let confirm = send(&app, get(&format!("/working-calendar/days/{id}/delete"), Some(&admin))).await;
        assert!(confirm.body.contains("Delete this day"));
        let reply = send(
            &app,
            post_form(&format!("/working-calendar/days/{id}/delete"), Some(&admin), &format!("csrf_token={c}")),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let page = send(&app, get(&location(&reply), Some(&admin))).await;
        assert!(!page.body.contains("Founders"));
    }
}
