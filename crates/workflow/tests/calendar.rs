#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Working calendars on SQLite and (when configured) PostgreSQL: per-branch hours and
//! their inheritance, holidays and make-up working days by calendar, validation that
//! writes nothing, idempotent presets, and a reminder due on the branch's own hours.
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use kernel::identity::{branches, passwords, users};
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Db, Error, Id, Principal};
use serde_json::json;
use workflow::Registry;
use workflow::amount::Money;
use workflow::calendar::{self, DayKind, HoursInput, Interval, NewCalendarDay, PresetInput};
use workflow::engine;
use workflow::expenses::{self, NewClaim};
use workflow::processes::{self, NewProcess, StepInput, Timeouts};

struct World {
    db: TestDb,
    admin: Principal,
    hq: Id,
    /// A child of the head office ("East") and its child ("Store").
    east: Id,
    store: Id,
    rep: Principal,
    manager: Principal,
}

fn worlds() -> Vec<World> {
    test_databases()
        .into_iter()
        .map(|db| {
            let admin = Principal::system(Channel::Cli);
            let (hq, east, store) = db
                .write_blocking(|tx| {
                    let hq = kernel::setup::head_office(tx)?;
                    let mut make = |name: &str, parent: Id| {
                        branches::create(
                            tx,
                            &admin,
                            branches::NewBranch { name: name.into(), parent_id: Some(parent), ..Default::default() },
                        )
                        .map(|b| b.id)
                    };
                    let east = make("East", hq)?;
                    let store = make("Store", east)?;
                    Ok::<_, Error>((hq, east, store))
                })
                .unwrap();
            let hash = passwords::hash("password123").unwrap();
            let user = |email: &str, role: &str, manager: Option<Id>| -> Principal {
                db.write_blocking(|tx| {
                    let input = users::NewUser {
                        email: email.into(),
                        name: email.into(),
                        password: "password123".into(),
                        role: role.into(),
                        branch_id: east,
                        manager_id: manager,
                        ..Default::default()
                    };
                    let u = users::create(tx, &admin, input, hash.clone())?;
                    kernel::identity::principal_for_user(tx, u.id)
                })
                .unwrap()
            };
            let manager = user("manager@east.cn", "manager", None);
            let rep = user("rep@east.cn", "sales", Some(manager.user_id));
            World { db, admin, hq, east, store, rep, manager }
        })
        .collect()
}

fn count(db: &Db, sql: &str) -> i64 {
    db.read_blocking(|tx| tx.query_sql::<i64>(&format!("SELECT COUNT(*) FROM {sql}"), &[])).unwrap()[0]
}

fn fields(e: Error) -> Vec<String> {
    match e {
        Error::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn week(json: serde_json::Value) -> HoursInput {
    HoursInput { week: serde_json::from_value::<BTreeMap<String, Vec<Interval>>>(json).unwrap() }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn day(branch: Option<Id>, d: &str, kind: &str, name: &str) -> NewCalendarDay {
    NewCalendarDay { branch_id: branch, day: Some(d.into()), kind: Some(kind.into()), name: Some(name.into()) }
}

#[test]
fn hours_are_inherited_from_the_nearest_parent_and_bad_weeks_write_nothing() {
    for w in worlds() {
        let hours = |b| w.db.read_blocking(|tx| calendar::hours(tx, &w.admin, b)).unwrap();
        assert_eq!(hours(w.store).source, "default");
        assert_eq!(hours(w.store).week["mon"], [Interval { start: "09:00".into(), end: "18:00".into() }]);
        // The head office works with a lunch break and Saturday mornings.
        let hq_week = week(json!({
            "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "fri": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "sat": [{"start": "09:00", "end": "12:00"}],
        }));
        let now = Utc::now();
        let set = w.db.write_blocking(|tx| calendar::set_hours(tx, &w.admin, w.hq, hq_week, now)).unwrap();
        assert_eq!((set.source.as_str(), set.week["tue"].len(), set.week["mon"].len()), ("own", 0, 2));
        let store = hours(w.store);
        assert_eq!((store.source.as_str(), store.inherited_from), ("inherited", Some(w.hq)));
        assert_eq!(store.week["sat"], [Interval { start: "09:00".into(), end: "12:00".into() }]);
        // East's own hours win for East and its store; clearing them inherits again.
        let east_week = week(json!({"tue": [{"start": "10:00", "end": "16:00"}]}));
        w.db.write_blocking(|tx| calendar::set_hours(tx, &w.admin, w.east, east_week, now)).unwrap();
        assert_eq!(hours(w.store).inherited_from, Some(w.east));
        let cal = w.db.read_blocking(|tx| calendar::for_branch(tx, w.store)).unwrap();
        // Tuesday 2026-03-10 in Shanghai: 6 hours; Monday none.
        assert_eq!(cal.working_seconds(at("2026-03-08T16:00:00Z"), at("2026-03-10T16:00:00Z")), 6 * 3600);
        w.db.write_blocking(|tx| calendar::clear_hours(tx, &w.admin, w.east)).unwrap();
        assert_eq!(hours(w.store).inherited_from, Some(w.hq));
        // Bad input: 422 naming each field, nothing written.
        let audit = count(&w.db, "audit_log");
        let bad = week(json!({
            "mon": [{"start": "09:00", "end": "12:00"}, {"start": "11:30", "end": "18:00"}],
            "tue": [{"start": "18:00", "end": "09:00"}],
            "funday": [{"start": "09:00", "end": "10:00"}],
            "wed": [{"start": "9.00", "end": "10:00"}],
        }));
        let e = w.db.write_blocking(|tx| calendar::set_hours(tx, &w.admin, w.east, bad, now)).unwrap_err();
        assert_eq!(fields(e), ["week.funday", "week.mon[1].start", "week.tue[0].end", "week.wed[0].start"]);
        assert_eq!(hours(w.east).source, "inherited");
        assert_eq!(count(&w.db, "audit_log"), audit);
        // Only process managers change hours.
        let e = w.db.write_blocking(|tx| calendar::set_hours(tx, &w.rep, w.east, week(json!({})), now)).unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
        assert!(matches!(w.db.read_blocking(|tx| calendar::hours(tx, &w.admin, Id(42))), Err(Error::NotFound(_))));
    }
}

#[test]
fn days_apply_by_nearest_calendar_and_bad_days_are_refused() {
    for w in worlds() {
        let add = |d| w.db.write_blocking(|tx| calendar::add_day(tx, &w.admin, d));
        add(day(None, "2026-10-01", "holiday", "国庆节")).unwrap();
        add(day(None, "2026-10-10", "working", "国庆节调休上班")).unwrap();
        add(day(Some(w.hq), "2026-05-05", "holiday", "어린이날")).unwrap();
        // The store works on 1 October (its own entry beats every branch's).
        let own = add(day(Some(w.store), "2026-10-01", "working", "Inventory")).unwrap();
        let listed = |b| w.db.read_blocking(|tx| calendar::days(tx, &w.admin, b, Some(2026))).unwrap();
        let store = listed(Some(w.store));
        let summary: Vec<_> = store.iter().map(|d| (d.day.to_string(), d.kind.clone(), d.branch_id)).collect();
        assert_eq!(
            summary,
            [
                ("2026-05-05".into(), "holiday".into(), Some(w.hq)),
                ("2026-10-01".into(), "working".into(), Some(w.store)),
                ("2026-10-10".into(), "working".into(), None),
            ]
        );
        assert_eq!(listed(None).len(), 2, "every branch's own calendar");
        assert!(w.db.read_blocking(|tx| calendar::days(tx, &w.admin, None, Some(2027))).unwrap().is_empty());
        let cal = w.db.read_blocking(|tx| calendar::for_branch(tx, w.store)).unwrap();
        assert_eq!(cal.days.get(&date("2026-10-01")), Some(&DayKind::Working));
        let east = w.db.read_blocking(|tx| calendar::for_branch(tx, w.east)).unwrap();
        assert_eq!(east.days.get(&date("2026-10-01")), Some(&DayKind::Holiday));
        // Saturday 10 October is worked (调休), on Monday's hours: 9 hours.
        assert_eq!(east.working_seconds(at("2026-10-09T16:00:00Z"), at("2026-10-10T16:00:00Z")), 9 * 3600);
        // Refused, naming the field, nothing written.
        let before = count(&w.db, "approval_holidays");
        let e = add(day(None, "2026-10-01", "holiday", "again")).unwrap_err();
        assert_eq!(fields(e), ["day"]);
        let e = add(day(Some(Id(42)), "2026-02-30", "vacation", "")).unwrap_err();
        assert_eq!(fields(e), ["day", "kind", "name", "branch_id"]);
        assert_eq!(count(&w.db, "approval_holidays"), before);
        // Deleting one of its own days; an unknown id is 404.
        w.db.write_blocking(|tx| calendar::delete_day(tx, &w.admin, own.id)).unwrap();
        assert_eq!(listed(Some(w.store))[1].branch_id, None);
        assert!(matches!(
            w.db.write_blocking(|tx| calendar::delete_day(tx, &w.admin, own.id)),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            w.db.write_blocking(|tx| calendar::add_day(tx, &w.rep, day(None, "2026-01-01", "holiday", "x"))),
            Err(Error::Forbidden(_))
        ));
    }
}

#[test]
fn presets_load_once_and_keep_what_the_calendar_has() {
    for w in worlds() {
        let load = |country: &str, year, branch| {
            let input = PresetInput { country: Some(country.into()), year: Some(year), branch_id: branch };
            w.db.write_blocking(|tx| calendar::load_preset(tx, &w.admin, input))
        };
        // An edited day stays as the admin left it.
        w.db.write_blocking(|tx| calendar::add_day(tx, &w.admin, day(Some(w.east), "2026-10-08", "holiday", "Own")))
            .unwrap();
        w.db.write_blocking(|tx| calendar::add_day(tx, &w.admin, day(Some(w.east), "2026-10-01", "working", "Duty")))
            .unwrap();
        let first = load("CN", 2026, Some(w.east)).unwrap();
        let total = calendar::presets::days("CN", 2026).unwrap().len() as u32;
        assert_eq!((first.added, first.skipped), (total - 1, 1));
        let again = load("cn", 2026, Some(w.east)).unwrap();
        assert_eq!((again.added, again.skipped), (0, total));
        assert_eq!(count(&w.db, "approval_holidays"), i64::from(total) + 1);
        let east = w.db.read_blocking(|tx| calendar::for_branch(tx, w.east)).unwrap();
        assert_eq!(east.days.get(&date("2026-10-01")), Some(&DayKind::Working));
        assert_eq!(east.days.get(&date("2026-02-14")), Some(&DayKind::Working));
        assert_eq!(east.days.get(&date("2026-02-17")), Some(&DayKind::Holiday));
        // A Korean branch under East keeps East's hours but not China's holidays; the
        // Chinese store below East has them.
        let seoul =
            w.db.write_blocking(|tx| {
                let input = branches::NewBranch {
                    name: "Seoul".into(),
                    parent_id: Some(w.east),
                    region: Some("KR".into()),
                    time_zone: Some("Asia/Seoul".into()),
                    ..Default::default()
                };
                branches::create(tx, &w.admin, input)
            })
            .unwrap()
            .id;
        let seoul_cal = w.db.read_blocking(|tx| calendar::for_branch(tx, seoul)).unwrap();
        assert!(seoul_cal.days.is_empty(), "{:?}", seoul_cal.days);
        assert_eq!(seoul_cal.tz, chrono_tz::Asia::Seoul);
        let store = w.db.read_blocking(|tx| calendar::for_branch(tx, w.store)).unwrap();
        assert_eq!(store.days.get(&date("2026-02-17")), Some(&DayKind::Holiday));
        assert_eq!(load("KR", 2026, Some(seoul)).unwrap().skipped, 0);
        let listed = w.db.read_blocking(|tx| calendar::days(tx, &w.admin, Some(seoul), Some(2026))).unwrap();
        assert!(listed.iter().all(|d| d.branch_id == Some(seoul)) && listed.len() > 15);
        // Korea for every branch: the head office gets it, East keeps its own entries.
        let kr = load("KR", 2027, None).unwrap();
        assert_eq!(kr.skipped, 0);
        let hq = w.db.read_blocking(|tx| calendar::for_branch(tx, w.hq)).unwrap();
        assert_eq!(hq.days.get(&date("2027-02-09")), Some(&DayKind::Holiday));
        // Unknown country or year: 422, nothing written.
        let before = count(&w.db, "approval_holidays");
        assert_eq!(fields(load("JP", 2026, None).unwrap_err()), ["country"]);
        assert_eq!(fields(load("CN", 2027, None).unwrap_err()), ["year"]);
        assert_eq!(fields(load("KR", 2026, Some(Id(42))).unwrap_err()), ["branch_id"]);
        assert_eq!(count(&w.db, "approval_holidays"), before);
    }
}

#[test]
fn a_reminder_is_due_on_the_branchs_own_hours() {
    for w in worlds() {
        // East works mornings only, Monday to Saturday.
        let mornings = json!([{"start": "09:00", "end": "12:00"}]);
        let east_week = week(json!({
            "mon": mornings, "tue": mornings, "wed": mornings, "thu": mornings, "fri": mornings, "sat": mornings,
        }));
        w.db.write_blocking(|tx| calendar::set_hours(tx, &w.admin, w.east, east_week, Utc::now())).unwrap();
        let registry = Registry::standard();
        let mut step = StepInput {
            kind: "sequential".into(),
            approvers: vec![json!({"kind": "user", "user_id": w.manager.user_id})],
            ..Default::default()
        };
        step.timeouts = Some(Timeouts { remind_after_hours: Some(4), ..Default::default() });
        let input = NewProcess {
            name: "Timed".into(),
            record_type: "expense_claim".into(),
            conditions: vec![],
            priority: Some(1),
            steps: vec![step],
            active: None,
        };
        w.db.write_blocking(|tx| processes::create(tx, &w.admin, &registry, input)).unwrap();
        let claim = NewClaim {
            amount: Some(Money { amount: "10".into(), currency: "CNY".into() }),
            category: "travel".into(),
            description: "taxi".into(),
        };
        let id = w.db.write_blocking(|tx| expenses::create(tx, &w.rep, claim)).unwrap().id;
        w.db.write_blocking(|tx| expenses::submit(tx, &w.rep, &registry, id)).unwrap();
        let page = kernel::paging::PageRequest::parse(Some(100), None).unwrap();
        let task =
            w.db.read_blocking(|tx| engine::list_mine(tx, &w.manager, "pending", &page)).unwrap().items[0].clone();
        let created = task.created_at;
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let cal = w.db.read_blocking(|tx| calendar::for_branch(tx, w.east)).unwrap();
        let due = cal.add_working_seconds(created, 4 * 3600);
        let standard_due = calendar::add_working_seconds(created, 4 * 3600, tz, &Default::default());
        // The standard week would remind sooner; the branch's mornings have not added up yet.
        assert!(standard_due < due);
        let tick = |now| w.db.write_blocking(|tx| engine::tick(tx, &registry, now)).unwrap();
        assert_eq!(tick(standard_due).reminded, 0);
        assert_eq!(tick(due - chrono::Duration::seconds(1)).reminded, 0);
        assert_eq!(tick(due).reminded, 1);
        assert_eq!(tick(due + chrono::Duration::hours(30)).reminded, 0);
    }
}

#[test]
fn the_demo_loads_each_regions_holidays_where_the_region_starts() {
    for w in worlds() {
        let seoul =
            w.db.write_blocking(|tx| {
                let input = branches::NewBranch {
                    name: "서울지사".into(),
                    parent_id: Some(w.hq),
                    region: Some("KR".into()),
                    ..Default::default()
                };
                branches::create(tx, &w.admin, input)
            })
            .unwrap()
            .id;
        w.db.write_blocking(workflow::demo::load_holidays).unwrap();
        let own = |b: Id| count(&w.db, &format!("approval_holidays WHERE branch_id = {b}"));
        assert_eq!(own(w.hq), calendar::presets::days("CN", 2026).unwrap().len() as i64);
        assert_eq!(own(w.east) + own(w.store), 0, "inherited from the head office");
        let kr = (calendar::presets::days("KR", 2026).unwrap().len()
            + calendar::presets::days("KR", 2027).unwrap().len()) as i64;
        assert_eq!(own(seoul), kr);
        let store = w.db.read_blocking(|tx| calendar::for_branch(tx, w.store)).unwrap();
        assert_eq!(store.days.get(&date("2026-02-14")), Some(&DayKind::Working));
        let seoul_cal = w.db.read_blocking(|tx| calendar::for_branch(tx, seoul)).unwrap();
        assert_eq!(seoul_cal.days.get(&date("2026-02-14")), None);
        assert_eq!(seoul_cal.days.get(&date("2027-02-09")), Some(&DayKind::Holiday));
        // Seeding again adds nothing.
        w.db.write_blocking(workflow::demo::load_holidays).unwrap();
        assert_eq!(own(w.hq), calendar::presets::days("CN", 2026).unwrap().len() as i64);
    }
}
