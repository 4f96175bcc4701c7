#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Store tests of activities, timelines and tasks, run on SQLite and (when configured)
//! PostgreSQL.
mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use customers::accounts::{self, NewAccount};
use customers::activities::{self, ActivityFilter, ActivityPatch, NewActivity};
use customers::contacts::{self, NewContact};
use customers::tasks::{self, NewTask, Task, TaskFilter, TaskPatch};
use kernel::identity::passwords;
use kernel::jobs::{Registry, Worker};
use kernel::paging::PageRequest;
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Error, Id, Principal};
use std::sync::Arc;

use common::{count, field_names};

pub struct World {
    pub db: TestDb,
    pub admin: Principal,
    /// Manager of the east branch (scope: its subtree).
    pub manager: Principal,
    /// Sales reps of the east branch (scope: their own records); `rep` lives in Shanghai,
    /// `rep2` in Seoul.
    pub rep: Principal,
    pub rep2: Principal,
    /// Manager of the west branch.
    pub west: Principal,
}

fn world() -> Vec<World> {
    test_databases().into_iter().map(build).collect()
}

fn build(db: TestDb) -> World {
    let admin = Principal::system(Channel::Cli);
    let hash = passwords::hash("password123").unwrap();
    let (east, west) = db
        .write_blocking(|tx| {
            let hq = kernel::setup::head_office(tx)?;
            let mk = |tx: &mut kernel::Tx<'_>, name: &str| common::branch(tx, &admin, name, hq, None);
            Ok::<_, Error>((mk(tx, "East")?, mk(tx, "West")?))
        })
        .unwrap();
    let user =
        |email: &str, role: &str, branch: Id, tz: &str| common::user(&db, &admin, &hash, email, role, branch, Some(tz));
    let manager = user("manager@east.cn", "manager", east, "Asia/Shanghai");
    let rep = user("rep@east.cn", "sales", east, "Asia/Shanghai");
    let rep2 = user("rep2@east.cn", "sales", east, "Asia/Seoul");
    let west = user("manager@west.cn", "manager", west, "Asia/Shanghai");
    World { db, admin, manager, rep, rep2, west }
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn new_account(w: &World, who: &Principal, name: &str) -> Id {
    w.db.write_blocking(|tx| accounts::create(tx, who, NewAccount { name: name.into(), ..Default::default() }))
        .unwrap()
        .id
}

fn log(w: &World, who: &Principal, input: NewActivity) -> Result<activities::Activity, Error> {
    w.db.write_blocking(|tx| activities::create(tx, who, input))
}

fn call(account: Option<Id>, contact: Option<Id>, subject: &str, when: DateTime<Utc>) -> NewActivity {
    NewActivity {
        kind: "call".into(),
        account_id: account,
        contact_id: contact,
        subject: subject.into(),
        occurred_at: Some(when),
        ..Default::default()
    }
}

#[test]
fn activity_lifecycle_is_scoped_versioned_and_audited() {
    for w in world() {
        let gome = new_account(&w, &w.rep, "国美电器");
        let wang =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact { name: "王芳".into(), account_id: Some(gome), ..Default::default() },
                )
            })
            .unwrap()
            .id;
        // Only the contact given: its account is filled in; owner and branch from the caller.
        let a = log(
            &w,
            &w.rep,
            NewActivity {
                body: Some("  promised a 5% discount ".into()),
                ..call(None, Some(wang), "Price call", at(2026, 3, 1, 2, 0))
            },
        )
        .unwrap();
        assert_eq!((a.account_id, a.contact_id, a.owner_id), (Some(gome), Some(wang), Some(w.rep.user_id)));
        assert_eq!((a.kind.as_str(), a.body.as_deref(), a.version), ("call", Some("promised a 5% discount"), 1));
        assert_eq!(a.branch_id, w.rep.branch_id);
        let read = w.db.read_blocking(|tx| activities::get(tx, &w.rep, a.id)).unwrap();
        assert_eq!(read, a);
        // Default occurred_at is now.
        let before = Utc::now() - Duration::seconds(5);
        let note = log(
            &w,
            &w.rep,
            NewActivity { kind: "note".into(), account_id: Some(gome), subject: "Note".into(), ..Default::default() },
        )
        .unwrap();
        assert!(note.occurred_at > before);

        // Another rep sees neither the activity nor the account; the manager sees both.
        assert!(matches!(w.db.read_blocking(|tx| activities::get(tx, &w.rep2, a.id)), Err(Error::NotFound(_))));
        assert!(matches!(log(&w, &w.rep2, call(Some(gome), None, "x", at(2026, 3, 1, 0, 0))), Err(Error::NotFound(_))));
        assert!(matches!(log(&w, &w.west, call(None, Some(wang), "x", at(2026, 3, 1, 0, 0))), Err(Error::NotFound(_))));
        assert!(w.db.read_blocking(|tx| activities::get(tx, &w.manager, a.id)).is_ok());
        assert!(matches!(w.db.read_blocking(|tx| activities::get(tx, &w.west, a.id)), Err(Error::NotFound(_))));

        // Filters.
        let page = PageRequest::default();
        let list = |who: &Principal, f: ActivityFilter| {
            w.db.read_blocking(|tx| activities::list(tx, who, &f, &page))
                .unwrap()
                .items
                .iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(list(&w.rep, ActivityFilter::default()), vec![note.id, a.id]);
        assert_eq!(list(&w.rep, ActivityFilter { kind: Some("call".into()), ..Default::default() }), vec![a.id]);
        assert_eq!(list(&w.rep, ActivityFilter { contact_id: Some(wang), ..Default::default() }), vec![a.id]);
        assert_eq!(
            list(
                &w.manager,
                ActivityFilter { owner_id: Some(w.rep.user_id), account_id: Some(gome), ..Default::default() }
            )
            .len(),
            2
        );
        assert!(list(&w.rep2, ActivityFilter::default()).is_empty());
        assert!(list(&w.west, ActivityFilter::default()).is_empty());

        // Update with a version, stale versions refused.
        let patched =
            w.db.write_blocking(|tx| {
                activities::update(
                    tx,
                    &w.rep,
                    a.id,
                    ActivityPatch {
                        kind: Some("visit".into()),
                        body: Some(String::new()),
                        version: Some(1),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!((patched.kind.as_str(), patched.body.as_deref(), patched.version), ("visit", None, 2));
        let stale = w.db.write_blocking(|tx| {
            activities::update(
                tx,
                &w.rep,
                a.id,
                ActivityPatch { subject: Some("x".into()), version: Some(1), ..Default::default() },
            )
        });
        assert!(matches!(stale, Err(Error::StaleVersion { current: 2 })), "{stale:?}");

        // Delete: another rep cannot; the owner can; then it is gone.
        assert!(matches!(w.db.write_blocking(|tx| activities::delete(tx, &w.rep2, a.id)), Err(Error::NotFound(_))));
        w.db.write_blocking(|tx| activities::delete(tx, &w.rep, a.id)).unwrap();
        assert!(matches!(w.db.read_blocking(|tx| activities::get(tx, &w.rep, a.id)), Err(Error::NotFound(_))));
        let audited: i64 =
            w.db.read_blocking(|tx| {
                tx.query_sql::<i64>(
                    "SELECT COUNT(*) FROM audit_log WHERE record_type = 'activity' AND record_id = $1",
                    &[a.id.into()],
                )
            })
            .unwrap()[0];
        assert_eq!(audited, 3, "create, update, delete");
    }
}

#[test]
fn timeline_shows_everyone_s_entries_newest_first_to_whoever_reads_the_account() {
    for w in world() {
        let gome = new_account(&w, &w.manager, "国美电器");
        let other = new_account(&w, &w.manager, "苏宁");
        // A contact attached after an activity was logged on it alone still shows.
        let wang =
            w.db.write_blocking(|tx| {
                contacts::create(tx, &w.manager, NewContact { name: "王芳".into(), ..Default::default() })
            })
            .unwrap()
            .id;
        let t0 = at(2026, 3, 1, 1, 0);
        let loose = log(&w, &w.manager, call(None, Some(wang), "before she joined", t0)).unwrap();
        assert_eq!(loose.account_id, None);
        w.db.write_blocking(|tx| {
            contacts::update(
                tx,
                &w.manager,
                wang,
                contacts::ContactPatch { account_id: Some(gome), ..Default::default() },
            )
        })
        .unwrap();
        // Entries by several people, two at the same instant (ordered by id then).
        let m1 = log(&w, &w.manager, call(Some(gome), None, "manager 1", t0 + Duration::hours(1))).unwrap();
        let m2 = log(&w, &w.manager, call(Some(gome), None, "manager 2", t0 + Duration::hours(2))).unwrap();
        let m3 = log(&w, &w.manager, call(Some(gome), None, "manager 3", t0 + Duration::hours(2))).unwrap();
        log(&w, &w.manager, call(Some(other), None, "elsewhere", t0 + Duration::hours(3))).unwrap();
        let deleted = log(&w, &w.manager, call(Some(gome), None, "deleted", t0 + Duration::hours(4))).unwrap();
        w.db.write_blocking(|tx| activities::delete(tx, &w.manager, deleted.id)).unwrap();

        // Hand the account to a rep: they see every entry, though they own none.
        w.db.write_blocking(|tx| {
            accounts::update(
                tx,
                &w.manager,
                gome,
                accounts::AccountPatch { owner_id: Some(w.rep.user_id), ..Default::default() },
            )
        })
        .unwrap();
        let mut seen = Vec::new();
        let mut page = PageRequest { limit: 1, cursor: None };
        loop {
            let p = w.db.read_blocking(|tx| activities::timeline(tx, &w.rep, gome, &page)).unwrap();
            seen.extend(p.items.iter().map(|a| a.subject.clone()));
            match p.next_cursor {
                Some(c) => page = PageRequest::parse(Some(1), Some(&c)).unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, vec!["manager 3", "manager 2", "manager 1", "before she joined"]);
        let _ = (m1, m2, m3);
        // ...but not in their own list, which is scoped to what they own.
        let own =
            w.db.read_blocking(|tx| activities::list(tx, &w.rep, &ActivityFilter::default(), &PageRequest::default()))
                .unwrap();
        assert!(own.items.is_empty());
        // Who cannot read the account cannot read its timeline.
        for who in [&w.rep2, &w.west] {
            assert!(matches!(
                w.db.read_blocking(|tx| activities::timeline(tx, who, gome, &PageRequest::default())),
                Err(Error::NotFound(_))
            ));
        }
        assert_eq!(
            w.db.read_blocking(|tx| activities::timeline(tx, &w.admin, gome, &PageRequest::default()))
                .unwrap()
                .items
                .len(),
            4
        );

        // The contact's own timeline: everything on her, by anyone, newest first, for
        // whoever reads her (the rep once she is theirs), and nobody else.
        let on_wang =
            log(&w, &w.manager, call(Some(gome), Some(wang), "visit with 王芳", t0 + Duration::hours(5))).unwrap();
        w.db.write_blocking(|tx| {
            contacts::update(
                tx,
                &w.manager,
                wang,
                contacts::ContactPatch { owner_id: Some(w.rep.user_id), ..Default::default() },
            )
        })
        .unwrap();
        let mut seen = Vec::new();
        let mut page = PageRequest { limit: 1, cursor: None };
        loop {
            let p = w.db.read_blocking(|tx| activities::contact_timeline(tx, &w.rep, wang, &page)).unwrap();
            seen.extend(p.items.iter().map(|a| a.id));
            match p.next_cursor {
                Some(c) => page = PageRequest::parse(Some(1), Some(&c)).unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, vec![on_wang.id, loose.id]);
        for who in [&w.rep2, &w.west] {
            assert!(matches!(
                w.db.read_blocking(|tx| activities::contact_timeline(tx, who, wang, &PageRequest::default())),
                Err(Error::NotFound(_))
            ));
        }
    }
}

#[test]
fn bad_activity_input_names_every_field_and_writes_nothing() {
    for w in world() {
        let gome = new_account(&w, &w.rep, "国美电器");
        let before = (count(&w.db, "activities"), count(&w.db, "audit_log"));
        let e = log(
            &w,
            &w.rep,
            NewActivity {
                kind: "fax".into(),
                subject: "  ".into(),
                body: Some("x".repeat(20_001)),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(field_names(e), vec!["kind", "subject", "body", "account_id", "contact_id"]);
        let e = log(
            &w,
            &w.rep,
            NewActivity { kind: "call".into(), account_id: Some(gome), subject: "x".repeat(201), ..Default::default() },
        )
        .unwrap_err();
        assert_eq!(field_names(e), vec!["subject"]);
        // A contact of another account.
        let other = new_account(&w, &w.rep, "苏宁");
        let li =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact { name: "李".into(), account_id: Some(other), ..Default::default() },
                )
            })
            .unwrap()
            .id;
        let before = (before.0, before.1 + 2);
        let e = log(&w, &w.rep, call(Some(gome), Some(li), "x", Utc::now())).unwrap_err();
        assert_eq!(field_names(e), vec!["contact_id"]);
        // Unknown records are 404.
        assert!(matches!(log(&w, &w.rep, call(Some(Id::new()), None, "x", Utc::now())), Err(Error::NotFound(_))));
        assert_eq!((count(&w.db, "activities"), count(&w.db, "audit_log")), before);
        let e =
            w.db.read_blocking(|tx| {
                activities::list(
                    tx,
                    &w.rep,
                    &ActivityFilter { kind: Some("fax".into()), ..Default::default() },
                    &PageRequest::default(),
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), vec!["kind"]);
    }
}

fn task(subject: &str, due: DateTime<Utc>) -> NewTask {
    NewTask { subject: subject.into(), due_at: Some(due), ..Default::default() }
}

fn add_task(w: &World, who: &Principal, input: NewTask) -> Result<Task, Error> {
    w.db.write_blocking(|tx| tasks::create(tx, who, input))
}

fn subjects(list: &[Task]) -> Vec<&str> {
    list.iter().map(|t| t.subject.as_str()).collect()
}

#[test]
fn my_day_follows_the_caller_s_time_zone() {
    for w in world() {
        // 15:30 UTC: 23:30 on 10 March in Shanghai, 00:30 on 11 March in Seoul.
        let now = at(2026, 3, 10, 15, 30);
        for who in [&w.rep, &w.rep2] {
            for (subject, due) in [
                ("a 14:30", at(2026, 3, 10, 14, 30)),
                ("b 15:45", at(2026, 3, 10, 15, 45)),
                ("c 20:00", at(2026, 3, 10, 20, 0)),
                ("d 9 March", at(2026, 3, 9, 1, 0)),
                ("e 12 March", at(2026, 3, 12, 1, 0)),
            ] {
                add_task(&w, who, task(subject, due)).unwrap();
            }
            let done = add_task(&w, who, task("done", at(2026, 3, 10, 15, 0))).unwrap();
            w.db.write_blocking(|tx| {
                tasks::update(tx, who, done.id, TaskPatch { status: Some("done".into()), ..Default::default() })
            })
            .unwrap();
        }
        // The manager's task for the rep counts in the rep's day, not the manager's.
        add_task(
            &w,
            &w.manager,
            NewTask { assignee_id: Some(w.rep.user_id), ..task("from manager", at(2026, 3, 10, 10, 0)) },
        )
        .unwrap();
        let day = |who: &Principal| w.db.read_blocking(|tx| tasks::my_day(tx, who, now, &who.time_zone)).unwrap();
        let shanghai = day(&w.rep);
        assert_eq!(subjects(&shanghai.overdue), vec!["d 9 March"]);
        assert_eq!(subjects(&shanghai.today), vec!["from manager", "a 14:30", "b 15:45"]);
        let seoul = day(&w.rep2);
        assert_eq!(subjects(&seoul.overdue), vec!["d 9 March", "a 14:30"]);
        assert_eq!(subjects(&seoul.today), vec!["b 15:45", "c 20:00"]);
        let manager = day(&w.manager);
        assert!(manager.overdue.is_empty() && manager.today.is_empty());
        // The same rep, asked in another zone.
        let in_seoul = w.db.read_blocking(|tx| tasks::my_day(tx, &w.rep, now, "Asia/Seoul")).unwrap();
        assert_eq!(subjects(&in_seoul.today), vec!["b 15:45", "c 20:00"]);
        assert!(w.db.read_blocking(|tx| tasks::my_day(tx, &w.rep, now, "Mars/Base")).is_err());
    }
}

#[test]
fn tasks_are_scoped_completed_and_deleted() {
    for w in world() {
        let gome = new_account(&w, &w.rep, "国美电器");
        let t =
            add_task(&w, &w.rep, NewTask { account_id: Some(gome), ..task("Send the quote", at(2026, 3, 10, 1, 0)) })
                .unwrap();
        assert_eq!((t.assignee_id, t.status.as_str(), t.branch_id), (w.rep.user_id, "open", w.rep.branch_id));
        assert!(matches!(w.db.read_blocking(|tx| tasks::get(tx, &w.rep2, t.id)), Err(Error::NotFound(_))));
        assert!(matches!(w.db.read_blocking(|tx| tasks::get(tx, &w.west, t.id)), Err(Error::NotFound(_))));
        assert!(w.db.read_blocking(|tx| tasks::get(tx, &w.manager, t.id)).is_ok());
        // A rep cannot give tasks to others; a manager can, within reach.
        let e =
            add_task(&w, &w.rep, NewTask { assignee_id: Some(w.rep2.user_id), ..task("x", Utc::now()) }).unwrap_err();
        assert_eq!(field_names(e), vec!["assignee_id"]);
        let e = add_task(&w, &w.manager, NewTask { assignee_id: Some(w.west.user_id), ..task("x", Utc::now()) })
            .unwrap_err();
        assert_eq!(field_names(e), vec!["assignee_id"]);

        let done =
            w.db.write_blocking(|tx| {
                tasks::update(
                    tx,
                    &w.rep,
                    t.id,
                    TaskPatch { status: Some("done".into()), version: Some(1), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!((done.status.as_str(), done.version), ("done", 2));
        assert!(done.done_at.is_some());
        let open = TaskFilter { status: Some("open".into()), ..Default::default() };
        let list = |who: &Principal, f: &TaskFilter| {
            w.db.read_blocking(|tx| tasks::list(tx, who, f, &PageRequest::default())).unwrap().items
        };
        assert!(list(&w.rep, &open).is_empty());
        assert_eq!(list(&w.rep, &TaskFilter { account_id: Some(gome), ..Default::default() }).len(), 1);
        let reopened =
            w.db.write_blocking(|tx| {
                tasks::update(tx, &w.rep, t.id, TaskPatch { status: Some("open".into()), ..Default::default() })
            })
            .unwrap();
        assert_eq!((reopened.status.as_str(), reopened.done_at), ("open", None));
        assert!(matches!(w.db.write_blocking(|tx| tasks::delete(tx, &w.rep2, t.id)), Err(Error::NotFound(_))));
        w.db.write_blocking(|tx| tasks::delete(tx, &w.rep, t.id)).unwrap();
        assert!(list(&w.rep, &TaskFilter::default()).is_empty());
    }
}

#[test]
fn bad_task_input_names_every_field_and_writes_nothing() {
    for w in world() {
        let before = (count(&w.db, "tasks"), count(&w.db, "audit_log"), count(&w.db, "jobs"));
        let e =
            add_task(&w, &w.rep, NewTask { subject: " ".into(), assignee_id: Some(Id::new()), ..Default::default() })
                .unwrap_err();
        assert_eq!(field_names(e), vec!["subject", "due_at", "assignee_id"]);
        assert!(matches!(
            add_task(&w, &w.rep, NewTask { account_id: Some(Id::new()), ..task("x", Utc::now()) }),
            Err(Error::NotFound(_))
        ));
        let t = add_task(&w, &w.rep, task("ok", Utc::now())).unwrap();
        let e =
            w.db.write_blocking(|tx| {
                tasks::update(
                    tx,
                    &w.rep,
                    t.id,
                    TaskPatch { subject: Some(String::new()), status: Some("maybe".into()), ..Default::default() },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), vec!["subject", "status"]);
        assert_eq!(
            (count(&w.db, "tasks"), count(&w.db, "audit_log"), count(&w.db, "jobs")),
            (before.0 + 1, before.1 + 1, before.2)
        );
    }
}

#[test]
fn a_reminder_is_sent_once_for_the_current_time_of_an_open_task() {
    for w in world() {
        let first = at(2026, 3, 10, 1, 0);
        let t = add_task(&w, &w.rep, NewTask { remind_at: Some(first), ..task("Call back", at(2026, 3, 10, 2, 0)) })
            .unwrap();
        let kinds = w.db.read_blocking(|tx| tx.query_sql::<String>("SELECT kind FROM jobs", &[])).unwrap();
        let run_at = w.db.read_blocking(|tx| tx.query_sql::<DateTime<Utc>>("SELECT run_at FROM jobs", &[])).unwrap();
        assert_eq!((kinds, run_at), (vec![tasks::REMINDER_JOB.to_owned()], vec![first]));

        // The worker runs it when due, and the assignee hears of it.
        let mut rx = w.db.events().subscribe();
        let registry = Registry::new().with(tasks::REMINDER_JOB, tasks::reminder_job);
        let clock_at = first + Duration::minutes(1);
        let worker = Worker::new(w.db.db(), registry, "test-node").with_clock(Arc::new(move || clock_at));
        assert!(worker.run_once().unwrap());
        assert!(!worker.run_once().unwrap());
        if w.db.backend() == kernel::Backend::Sqlite {
            let e = rx.try_recv().unwrap();
            assert_eq!((e.kind.as_str(), e.user_id), ("task.reminder", Some(w.rep.user_id.get())));
            assert_eq!(e.payload["task_id"], serde_json::json!(t.id));
        }
        // Running it again sends nothing.
        let send = |id: Id, when: DateTime<Utc>| w.db.write_blocking(|tx| tasks::send_reminder(tx, id, when)).unwrap();
        assert!(!send(t.id, first));

        // Moved: the old job does nothing, the new one reminds.
        let second = first + Duration::minutes(30);
        w.db.write_blocking(|tx| {
            tasks::update(tx, &w.rep, t.id, TaskPatch { remind_at: Some(Some(second)), ..Default::default() })
        })
        .unwrap();
        assert_eq!(count(&w.db, "jobs"), 2);
        assert!(!send(t.id, first));
        assert!(send(t.id, second));
        assert!(!send(t.id, second));

        // Completed or deleted tasks are not reminded of.
        let third = second + Duration::minutes(30);
        w.db.write_blocking(|tx| {
            tasks::update(
                tx,
                &w.rep,
                t.id,
                TaskPatch { remind_at: Some(Some(third)), status: Some("done".into()), ..Default::default() },
            )
        })
        .unwrap();
        assert!(!send(t.id, third));
        let gone = add_task(&w, &w.rep, NewTask { remind_at: Some(third), ..task("Gone", third) }).unwrap();
        w.db.write_blocking(|tx| tasks::delete(tx, &w.rep, gone.id)).unwrap();
        assert!(!send(gone.id, third));
        // Cleared: no new job.
        let jobs = count(&w.db, "jobs");
        let other = add_task(&w, &w.rep, task("No reminder", third)).unwrap();
        w.db.write_blocking(|tx| {
            tasks::update(tx, &w.rep, other.id, TaskPatch { remind_at: Some(None), ..Default::default() })
        })
        .unwrap();
        assert_eq!(count(&w.db, "jobs"), jobs);
    }
}
