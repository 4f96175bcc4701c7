#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Scenario suite of the approvals engine, on SQLite and (when configured) PostgreSQL:
//! each step kind, conditions and priorities, versioning, bad definitions, concurrent
//! and repeated decisions, and a restart in mid-flight.
use std::sync::{Arc, Barrier};

use kernel::identity::{branches, passwords, users};
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Db, Error, Id, Principal};
use serde_json::{Value, json};
use workflow::Registry;
use workflow::amount::Money;
use workflow::engine::{self, Decision};
use workflow::expenses::{self, ClaimPatch, NewClaim};
use workflow::notifications;
use workflow::processes::{self, Condition, NewProcess, ProcessPatch, StepInput};

struct World {
    db: TestDb,
    admin: Principal,
    east: Id,
    /// A sales rep of the east branch whose manager is `manager`.
    rep: Principal,
    manager: Principal,
    /// Finance users of the head office (the east branch has none).
    fin1: Principal,
    fin2: Principal,
    /// Two directors (managers of the head office) and a third.
    dir1: Principal,
    dir2: Principal,
    dir3: Principal,
    registry: Registry,
}

fn build(db: TestDb) -> World {
    let admin = Principal::system(Channel::Cli);
    let hash = passwords::hash("password123").unwrap();
    let (hq, east) = db
        .write_blocking(|tx| {
            let hq = kernel::setup::head_office(tx)?;
            let east = branches::create(
                tx,
                &admin,
                branches::NewBranch { name: "East".into(), parent_id: Some(hq), ..Default::default() },
            )?
            .id;
            Ok::<_, Error>((hq, east))
        })
        .unwrap();
    let user = |email: &str, role: &str, branch: Id, manager: Option<Id>| -> Principal {
        db.write_blocking(|tx| {
            let u = users::create(
                tx,
                &admin,
                users::NewUser {
                    email: email.into(),
                    name: email.split('@').next().unwrap().into(),
                    password: "password123".into(),
                    role: role.into(),
                    branch_id: branch,
                    manager_id: manager,
                    // Notices are written in the recipient's language; these read English.
                    locale: Some("en".into()),
                    ..Default::default()
                },
                hash.clone(),
            )?;
            kernel::identity::principal_for_user(tx, u.id)
        })
        .unwrap()
    };
    let manager = user("manager@east.cn", "manager", east, None);
    let rep = user("rep@east.cn", "sales", east, Some(manager.user_id));
    let fin1 = user("fin1@hq.cn", "finance", hq, None);
    let fin2 = user("fin2@hq.cn", "finance", hq, None);
    let dir1 = user("dir1@hq.cn", "manager", hq, None);
    let dir2 = user("dir2@hq.cn", "manager", hq, None);
    let dir3 = user("dir3@hq.cn", "manager", hq, None);
    World { db, admin, east, rep, manager, fin1, fin2, dir1, dir2, dir3, registry: Registry::standard() }
}

fn worlds() -> Vec<World> {
    test_databases().into_iter().map(build).collect()
}

fn count(db: &Db, sql: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {sql}");
    db.read_blocking(|tx| tx.query_sql::<i64>(&sql, &[])).unwrap()[0]
}

fn fields(e: Error) -> Vec<String> {
    match e {
        Error::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn step(kind: &str, approvers: Value) -> StepInput {
    StepInput { kind: kind.into(), approvers: approvers.as_array().unwrap().clone(), ..Default::default() }
}

fn user(p: &Principal) -> Value {
    json!({"kind": "user", "user_id": p.user_id})
}

fn define(
    w: &World,
    name: &str,
    priority: i64,
    conditions: Vec<Condition>,
    steps: Vec<StepInput>,
) -> processes::Process {
    let input = NewProcess {
        name: name.into(),
        record_type: "expense_claim".into(),
        conditions,
        priority: Some(priority),
        steps,
        active: None,
    };
    w.db.write_blocking(|tx| processes::create(tx, &w.admin, &w.registry, input)).unwrap()
}

fn claim(w: &World, amount: &str, currency: &str) -> Id {
    let input = NewClaim {
        amount: Some(Money { amount: amount.into(), currency: currency.into() }),
        category: "travel".into(),
        description: "上海 → 首尔 출장".into(),
    };
    w.db.write_blocking(|tx| expenses::create(tx, &w.rep, input)).unwrap().id
}

fn submit(w: &World, id: Id) -> Result<expenses::ExpenseClaim, Error> {
    w.db.write_blocking(|tx| expenses::submit(tx, &w.rep, &w.registry, id))
}

/// The claim's approval status; `draft` while it was never submitted (the API's `null`).
fn status(w: &World, id: Id) -> String {
    w.db.read_blocking(|tx| expenses::get(tx, &w.rep, id)).unwrap().approval_status.unwrap_or_else(|| "draft".into())
}

/// The pending approval of `who` on claim `id`.
fn inbox(w: &World, who: &Principal, id: Id) -> Option<Id> {
    let page = kernel::paging::PageRequest::parse(Some(100), None).unwrap();
    let items = w.db.read_blocking(|tx| engine::list_mine(tx, who, "pending", &page)).unwrap().items;
    items.into_iter().find(|a| a.record_id == id).map(|a| a.id)
}

fn decide(w: &World, who: &Principal, task: Id, d: Decision) -> Result<engine::Approval, Error> {
    w.db.write_blocking(|tx| engine::decide(tx, who, &w.registry, task, d, Some("好的 / 좋아요".into())))
}

fn money(amount: &str) -> Value {
    json!({"amount": amount, "currency": "CNY"})
}

#[test]
fn sequential_manager_then_finance_locks_the_claim_and_tells_the_requester() {
    for w in worlds() {
        define(
            &w,
            "Expense claims",
            10,
            vec![],
            vec![
                step("sequential", json!([{"kind": "manager"}])),
                step("sequential", json!([{"kind": "role", "role": "finance"}])),
            ],
        );
        let id = claim(&w, "1999.50", "CNY");
        assert_eq!(status(&w, id), "draft");
        assert_eq!(submit(&w, id).unwrap().approval_status.as_deref(), Some("pending"));
        // Submitted twice: refused, nothing new started.
        assert!(matches!(submit(&w, id), Err(Error::Conflict { .. })));
        assert_eq!(count(&w.db, "approval_instances"), 1);
        // Locked while it runs.
        let patch = ClaimPatch { description: Some("changed".into()), ..Default::default() };
        let locked = w.db.write_blocking(|tx| expenses::update(tx, &w.rep, id, patch.clone()));
        assert!(matches!(locked, Err(Error::Conflict { .. })), "{locked:?}");
        // Step 1: the rep's manager; finance sees nothing yet.
        assert!(inbox(&w, &w.fin1, id).is_none());
        let task = inbox(&w, &w.manager, id).expect("the manager is asked");
        // Someone else may not decide it.
        let e = decide(&w, &w.fin1, task, Decision::Approve).unwrap_err();
        assert!(matches!(&e, Error::Forbidden(m) if m.contains("not its approver")), "{e:?}");
        let a = decide(&w, &w.manager, task, Decision::Approve).unwrap();
        assert_eq!(a.status, "approved");
        // The same decision again is counted once; a different one is refused.
        decide(&w, &w.manager, task, Decision::Approve).unwrap();
        assert!(matches!(decide(&w, &w.manager, task, Decision::Reject), Err(Error::Conflict { .. })));
        assert_eq!(count(&w.db, "approval_steps"), 2);
        assert_eq!(status(&w, id), "pending");
        // Step 2: finance is found in the head office, a parent of the east branch;
        // either finance user may decide and the other's task is cancelled.
        let t1 = inbox(&w, &w.fin1, id).expect("finance is asked");
        let t2 = inbox(&w, &w.fin2, id).expect("all of finance is asked");
        decide(&w, &w.fin2, t2, Decision::Approve).unwrap();
        assert_eq!(status(&w, id), "approved");
        assert!(matches!(decide(&w, &w.fin1, t1, Decision::Approve), Err(Error::Conflict { .. })));
        assert!(inbox(&w, &w.fin1, id).is_none());
        // The history shows both steps and who decided.
        let h = w.db.read_blocking(|tx| engine::history(tx, "expense_claim", id)).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].status, "approved");
        let decided: Vec<(i64, &str)> = h[0].decisions.iter().map(|d| (d.step, d.status.as_str())).collect();
        assert_eq!(decided, vec![(1, "approved"), (2, "cancelled"), (2, "approved")]);
        // The requester heard of every step and the outcome; approvers of their requests.
        let kinds: Vec<String> =
            w.db.read_blocking(|tx| {
                tx.query_sql::<String>(
                    "SELECT kind FROM notifications WHERE user_id = $1 ORDER BY id",
                    &[w.rep.user_id.into()],
                )
            })
            .unwrap();
        assert_eq!(kinds, ["approval.step", "approval.step", "approval.finished"]);
        assert_eq!(
            count(&w.db, &format!("notifications WHERE user_id = {} AND kind = 'approval.requested'", w.fin1.user_id)),
            1
        );
        // An approved claim stays locked; the audit log has the submission and the outcome.
        assert!(matches!(
            w.db.write_blocking(|tx| expenses::update(tx, &w.rep, id, patch.clone())),
            Err(Error::Conflict { .. })
        ));
        assert_eq!(count(&w.db, &format!("audit_log WHERE record_type = 'expense_claim' AND record_id = {id}")), 3);
        assert_eq!(count(&w.db, "audit_log WHERE record_type = 'approval'"), 2);
        let _ = w.east;
    }
}

#[test]
fn parallel_steps_complete_on_all_any_or_a_quorum_and_one_rejection_rejects() {
    for w in worlds() {
        let dirs = json!([user(&w.dir1), user(&w.dir2), user(&w.dir3)]);
        let mut quorum = step("parallel", dirs.clone());
        quorum.rule = Some("quorum".into());
        quorum.quorum = Some(2);
        let p = define(&w, "Quorum", 1, vec![], vec![quorum]);
        // Quorum 2 of 3: one approval is not enough, the second completes it and the
        // third director's task is cancelled.
        let id = claim(&w, "100", "CNY");
        submit(&w, id).unwrap();
        decide(&w, &w.dir1, inbox(&w, &w.dir1, id).unwrap(), Decision::Approve).unwrap();
        assert_eq!(status(&w, id), "pending");
        decide(&w, &w.dir3, inbox(&w, &w.dir3, id).unwrap(), Decision::Approve).unwrap();
        assert_eq!(status(&w, id), "approved");
        assert!(inbox(&w, &w.dir2, id).is_none());
        // One rejection rejects.
        let id = claim(&w, "100", "CNY");
        submit(&w, id).unwrap();
        decide(&w, &w.dir2, inbox(&w, &w.dir2, id).unwrap(), Decision::Reject).unwrap();
        assert_eq!(status(&w, id), "rejected");
        assert!(inbox(&w, &w.dir1, id).is_none());
        // A rejected claim can be edited and submitted again.
        let patch =
            ClaimPatch { amount: Some(Money { amount: "80".into(), currency: "CNY".into() }), ..Default::default() };
        w.db.write_blocking(|tx| expenses::update(tx, &w.rep, id, patch)).unwrap();
        assert_eq!(submit(&w, id).unwrap().approval_status.as_deref(), Some("pending"));

        // Tolerated rejections: the step fails only once the quorum is out of reach.
        let mut tolerant = step("parallel", dirs.clone());
        tolerant.rule = Some("quorum".into());
        tolerant.quorum = Some(2);
        tolerant.tolerate_rejections = true;
        let patch = ProcessPatch { steps: Some(vec![tolerant]), ..Default::default() };
        w.db.write_blocking(|tx| processes::update(tx, &w.admin, &w.registry, p.id, patch)).unwrap();
        let id = claim(&w, "100", "CNY");
        submit(&w, id).unwrap();
        decide(&w, &w.dir1, inbox(&w, &w.dir1, id).unwrap(), Decision::Reject).unwrap();
        assert_eq!(status(&w, id), "pending");
        decide(&w, &w.dir2, inbox(&w, &w.dir2, id).unwrap(), Decision::Reject).unwrap();
        assert_eq!(status(&w, id), "rejected");

        // All: every director must approve; any: the first approval completes it.
        for (rule, approvals_needed) in [("all", 3), ("any", 1)] {
            let mut s = step("parallel", dirs.clone());
            s.rule = Some(rule.into());
            let patch = ProcessPatch { steps: Some(vec![s]), ..Default::default() };
            w.db.write_blocking(|tx| processes::update(tx, &w.admin, &w.registry, p.id, patch)).unwrap();
            let id = claim(&w, "100", "CNY");
            submit(&w, id).unwrap();
            for (n, d) in [&w.dir1, &w.dir2, &w.dir3].into_iter().enumerate().take(approvals_needed) {
                assert_eq!(status(&w, id), "pending", "{rule} after {n}");
                decide(&w, d, inbox(&w, d, id).unwrap(), Decision::Approve).unwrap();
            }
            assert_eq!(status(&w, id), "approved", "{rule}");
        }
    }
}

#[test]
fn relay_steps_pass_the_item_on_and_record_every_hand_off() {
    for w in worlds() {
        define(
            &w,
            "Relay",
            1,
            vec![],
            vec![step("relay", json!([user(&w.dir1)])), step("sequential", json!([user(&w.fin1)]))],
        );
        let id = claim(&w, "300", "CNY");
        submit(&w, id).unwrap();
        let t1 = inbox(&w, &w.dir1, id).unwrap();
        // Bad passes: to oneself, to nobody; nothing written.
        let before = count(&w.db, "approval_tasks");
        let e = decide(&w, &w.dir1, t1, Decision::Pass { to_user_id: w.dir1.user_id }).unwrap_err();
        assert_eq!(fields(e), ["to_user_id"]);
        let e = decide(&w, &w.dir1, t1, Decision::Pass { to_user_id: Id(42) }).unwrap_err();
        assert_eq!(fields(e), ["to_user_id"]);
        assert_eq!(count(&w.db, "approval_tasks"), before);
        // dir1 → dir2 → dir3, who approves; passing twice the same way counts once.
        decide(&w, &w.dir1, t1, Decision::Pass { to_user_id: w.dir2.user_id }).unwrap();
        decide(&w, &w.dir1, t1, Decision::Pass { to_user_id: w.dir2.user_id }).unwrap();
        assert!(matches!(
            decide(&w, &w.dir1, t1, Decision::Pass { to_user_id: w.dir3.user_id }),
            Err(Error::Conflict { .. })
        ));
        let t2 = inbox(&w, &w.dir2, id).unwrap();
        decide(&w, &w.dir2, t2, Decision::Pass { to_user_id: w.dir3.user_id }).unwrap();
        assert_eq!(status(&w, id), "pending");
        decide(&w, &w.dir3, inbox(&w, &w.dir3, id).unwrap(), Decision::Approve).unwrap();
        // Step 2 is sequential: it cannot be passed on.
        let t4 = inbox(&w, &w.fin1, id).unwrap();
        let e = decide(&w, &w.fin1, t4, Decision::Pass { to_user_id: w.fin2.user_id }).unwrap_err();
        assert_eq!(fields(e), ["to_user_id"]);
        decide(&w, &w.fin1, t4, Decision::Approve).unwrap();
        assert_eq!(status(&w, id), "approved");
        let h = w.db.read_blocking(|tx| engine::history(tx, "expense_claim", id)).unwrap();
        let chain: Vec<(Id, &str, Option<Id>)> =
            h[0].decisions.iter().map(|d| (d.approver_id, d.status.as_str(), d.passed_to)).collect();
        assert_eq!(
            chain,
            [
                (w.dir1.user_id, "passed", Some(w.dir2.user_id)),
                (w.dir2.user_id, "passed", Some(w.dir3.user_id)),
                (w.dir3.user_id, "approved", None),
                (w.fin1.user_id, "approved", None),
            ]
        );
        assert_eq!(h[0].decisions[1].passed_from, Some(t1));
    }
}

#[test]
fn conditions_and_priority_choose_the_process() {
    for w in worlds() {
        let general = define(&w, "Expense claims", 10, vec![], vec![step("sequential", json!([{"kind": "manager"}]))]);
        let large = define(
            &w,
            "Large expenses",
            1,
            vec![Condition { field: "amount".into(), op: ">=".into(), value: money("10000") }],
            vec![step("parallel", json!([user(&w.dir1), user(&w.dir2)]))],
        );
        let east_meals = define(
            &w,
            "East meals",
            5,
            vec![
                Condition { field: "category".into(), op: "in".into(), value: json!(["meals", "entertainment"]) },
                Condition { field: "branch".into(), op: "within".into(), value: json!(w.east.to_string()) },
            ],
            vec![step("sequential", json!([user(&w.fin1)]))],
        );
        let started =
            |id: Id| -> Id { w.db.read_blocking(|tx| engine::history(tx, "expense_claim", id)).unwrap()[0].process_id };
        let small = claim(&w, "9999.99", "CNY");
        submit(&w, small).unwrap();
        assert_eq!(started(small), general.id);
        let big = claim(&w, "10000", "CNY");
        submit(&w, big).unwrap();
        assert_eq!(started(big), large.id);
        // 10,000 won is not 10,000 yuan: the currency must match too.
        let won = claim(&w, "10000", "KRW");
        submit(&w, won).unwrap();
        assert_eq!(started(won), general.id);
        let meal =
            w.db.write_blocking(|tx| {
                expenses::create(
                    tx,
                    &w.rep,
                    NewClaim {
                        amount: Some(Money { amount: "300".into(), currency: "CNY".into() }),
                        category: "meals".into(),
                        description: "客户晚餐".into(),
                    },
                )
            })
            .unwrap()
            .id;
        submit(&w, meal).unwrap();
        assert_eq!(started(meal), east_meals.id);
        // No process applies once they are all inactive: refused, the claim stays a draft.
        for p in [&general, &large, &east_meals] {
            let patch = ProcessPatch { active: Some(false), ..Default::default() };
            w.db.write_blocking(|tx| processes::update(tx, &w.admin, &w.registry, p.id, patch)).unwrap();
        }
        let none = claim(&w, "1", "CNY");
        assert!(matches!(submit(&w, none), Err(Error::Conflict { .. })));
        assert_eq!(status(&w, none), "draft");
        assert_eq!(count(&w.db, &format!("approval_instances WHERE record_id = {none}")), 0);
    }
}

#[test]
fn bad_definitions_are_refused_naming_the_problem_and_write_nothing() {
    for w in worlds() {
        let before = count(&w.db, "approval_processes") + count(&w.db, "audit_log");
        let bad = |conditions: Vec<Condition>, steps: Vec<StepInput>| -> Vec<String> {
            let input = NewProcess {
                name: "Bad".into(),
                record_type: "expense_claim".into(),
                conditions,
                priority: None,
                steps,
                active: None,
            };
            fields(w.db.write_blocking(|tx| processes::create(tx, &w.admin, &w.registry, input)).unwrap_err())
        };
        assert_eq!(bad(vec![], vec![]), ["steps"]);
        let mut q = step("parallel", json!([user(&w.dir1), user(&w.dir2)]));
        q.rule = Some("quorum".into());
        q.quorum = Some(3);
        assert_eq!(bad(vec![], vec![q]), ["steps[0].quorum"]);
        let unknown = Condition { field: "discount".into(), op: "gt".into(), value: json!(10) };
        assert_eq!(bad(vec![unknown], vec![step("sequential", json!([{"kind": "manager"}]))]), ["conditions[0].field"]);
        let wrong_op = Condition { field: "category".into(), op: "gt".into(), value: json!("x") };
        assert_eq!(bad(vec![wrong_op], vec![step("sequential", json!([{"kind": "manager"}]))]), ["conditions[0].op"]);
        assert_eq!(bad(vec![], vec![step("sequential", json!([]))]), ["steps[0].approvers"]);
        assert_eq!(
            bad(vec![], vec![step("sequential", json!([user(&w.dir1), user(&w.dir2)]))]),
            ["steps[0].approvers"]
        );
        assert_eq!(bad(vec![], vec![step("circular", json!([user(&w.dir1)]))]), ["steps[0].kind"]);
        assert_eq!(
            bad(vec![], vec![step("sequential", json!([{"kind": "role", "role": "pope"}]))]),
            ["steps[0].approvers[0].role"]
        );
        assert_eq!(
            bad(vec![], vec![step("sequential", json!([{"kind": "user", "user_id": "42"}]))]),
            ["steps[0].approvers[0].user_id"]
        );
        let input = NewProcess {
            name: "X".into(),
            record_type: "spaceship".into(),
            steps: vec![step("sequential", json!([{"kind": "manager"}]))],
            ..Default::default()
        };
        let e = w.db.write_blocking(|tx| processes::create(tx, &w.admin, &w.registry, input)).unwrap_err();
        assert_eq!(fields(e), ["record_type"]);
        assert_eq!(count(&w.db, "approval_processes") + count(&w.db, "audit_log"), before);
        // Only those who manage processes define them.
        let input = NewProcess {
            name: "X".into(),
            record_type: "expense_claim".into(),
            steps: vec![step("sequential", json!([{"kind": "manager"}]))],
            ..Default::default()
        };
        let e = w.db.write_blocking(|tx| processes::create(tx, &w.rep, &w.registry, input)).unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)));
        // A step that finds no approver for this record (the director has no manager)
        // refuses the submission and writes nothing.
        define(&w, "Managers", 1, vec![], vec![step("sequential", json!([{"kind": "manager"}]))]);
        let id =
            w.db.write_blocking(|tx| {
                expenses::create(
                    tx,
                    &w.dir1,
                    NewClaim {
                        amount: Some(Money { amount: "5".into(), currency: "CNY".into() }),
                        category: "office".into(),
                        description: "pens".into(),
                    },
                )
            })
            .unwrap()
            .id;
        let e = w.db.write_blocking(|tx| expenses::submit(tx, &w.dir1, &w.registry, id)).unwrap_err();
        assert_eq!(fields(e), ["steps[0].approvers"]);
        assert_eq!(count(&w.db, "approval_instances"), 0);
    }
}

#[test]
fn a_running_instance_finishes_on_the_version_it_started_with() {
    for w in worlds() {
        let p = define(
            &w,
            "Two steps",
            1,
            vec![],
            vec![step("sequential", json!([user(&w.dir1)])), step("sequential", json!([user(&w.dir2)]))],
        );
        let old = claim(&w, "10", "CNY");
        submit(&w, old).unwrap();
        // Edit: one step, by the third director. A stale version is refused.
        let patch = ProcessPatch {
            steps: Some(vec![step("sequential", json!([user(&w.dir3)]))]),
            version: Some(1),
            ..Default::default()
        };
        let v2 = w.db.write_blocking(|tx| processes::update(tx, &w.admin, &w.registry, p.id, patch.clone())).unwrap();
        assert_eq!(v2.version, 2);
        assert!(matches!(
            w.db.write_blocking(|tx| processes::update(tx, &w.admin, &w.registry, p.id, patch)),
            Err(Error::StaleVersion { current: 2 })
        ));
        let new = claim(&w, "10", "CNY");
        submit(&w, new).unwrap();
        assert!(inbox(&w, &w.dir3, new).is_some());
        // The old claim still goes dir1 → dir2.
        decide(&w, &w.dir1, inbox(&w, &w.dir1, old).unwrap(), Decision::Approve).unwrap();
        assert!(inbox(&w, &w.dir3, old).is_none());
        decide(&w, &w.dir2, inbox(&w, &w.dir2, old).unwrap(), Decision::Approve).unwrap();
        assert_eq!(status(&w, old), "approved");
        let h = w.db.read_blocking(|tx| engine::history(tx, "expense_claim", old)).unwrap();
        assert_eq!((h[0].process_version, h[0].steps), (1, 2));
        assert_eq!(w.db.read_blocking(|tx| processes::get(tx, &w.admin, p.id)).unwrap().steps.len(), 1);
    }
}

#[test]
fn concurrent_decisions_on_a_parallel_step_are_each_counted_once() {
    for w in worlds() {
        let mut all = step("parallel", json!([user(&w.dir1), user(&w.dir2)]));
        all.rule = Some("all".into());
        define(&w, "Directors then finance", 1, vec![], vec![all, step("sequential", json!([user(&w.fin1)]))]);
        for _round in 0..5 {
            let id = claim(&w, "50000", "CNY");
            submit(&w, id).unwrap();
            let t1 = inbox(&w, &w.dir1, id).unwrap();
            let t2 = inbox(&w, &w.dir2, id).unwrap();
            // Both directors, and a repeat of the first's decision, at the same instant.
            let barrier = Arc::new(Barrier::new(3));
            let runs = [(w.dir1.clone(), t1), (w.dir2.clone(), t2), (w.dir1.clone(), t1)].map(|(who, task)| {
                let db = w.db.db();
                let barrier = barrier.clone();
                let registry = w.registry.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    db.write_blocking(|tx| engine::decide(tx, &who, &registry, task, Decision::Approve, None))
                })
            });
            for r in runs {
                r.join().unwrap().unwrap();
            }
            // The step completed once: finance has exactly one task, the claim waits on it.
            assert_eq!(
                count(
                    &w.db,
                    &format!(
                        "approval_steps s JOIN approval_instances i ON i.id = s.instance_id WHERE i.record_id = {id}"
                    )
                ),
                2
            );
            assert_eq!(
                count(
                    &w.db,
                    &format!(
                        "approval_tasks t JOIN approval_instances i ON i.id = t.instance_id WHERE i.record_id = {id} AND t.status = 'approved'"
                    )
                ),
                2
            );
            assert_eq!(
                count(
                    &w.db,
                    &format!(
                        "approval_tasks t JOIN approval_instances i ON i.id = t.instance_id WHERE i.record_id = {id} AND t.approver_id = {}",
                        w.fin1.user_id
                    )
                ),
                1
            );
            assert_eq!(
                count(&w.db, &format!("audit_log WHERE record_type = 'approval' AND record_id IN ({t1}, {t2})")),
                2
            );
            assert_eq!(status(&w, id), "pending");
        }
    }
}

#[test]
fn an_approval_resumes_after_a_restart_in_mid_flight() {
    for w in worlds() {
        define(
            &w,
            "Two steps",
            1,
            vec![],
            vec![step("sequential", json!([user(&w.dir1)])), step("sequential", json!([user(&w.dir2)]))],
        );
        let id = claim(&w, "10", "CNY");
        submit(&w, id).unwrap();
        // A decision that dies mid-way (the unit of work fails after the task's update):
        // nothing of it remains.
        let t1 = inbox(&w, &w.dir1, id).unwrap();
        let crashed: Result<(), Error> = w.db.write_blocking(|tx| {
            engine::decide(tx, &w.dir1, &w.registry, t1, Decision::Approve, None)?;
            Err(Error::Internal("killed".into()))
        });
        assert!(crashed.is_err());
        assert!(inbox(&w, &w.dir1, id).is_some());
        // A new process (a fresh connection pool on the same database) carries on.
        let restarted = Db::open(&w.db.url()).unwrap();
        restarted.write_blocking(|tx| engine::decide(tx, &w.dir1, &w.registry, t1, Decision::Approve, None)).unwrap();
        let t2 = inbox(&w, &w.dir2, id).unwrap();
        restarted.write_blocking(|tx| engine::decide(tx, &w.dir2, &w.registry, t2, Decision::Approve, None)).unwrap();
        assert_eq!(status(&w, id), "approved");
        kernel::db::off_runtime(move || drop(restarted));
    }
}

#[test]
fn approvers_and_requesters_get_a_live_notification_event_with_their_counts() {
    for w in worlds() {
        define(&w, "One step", 1, vec![], vec![step("sequential", json!([user(&w.dir1)]))]);
        let id = claim(&w, "10", "CNY");
        let mut events = w.db.events().subscribe();
        let dir1 = w.dir1.user_id.get();
        // Wait (on a thread, bounded only for failure) for the director's notice.
        let (sent, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            while let Ok(e) = events.blocking_recv() {
                if e.kind == "notification" && e.user_id == Some(dir1) {
                    let _ = sent.send(e.payload.clone());
                    return;
                }
            }
        });
        submit(&w, id).unwrap();
        let payload = received.recv_timeout(std::time::Duration::from_secs(20)).expect("a notification event");
        assert_eq!((payload["unread"].clone(), payload["inbox"].clone()), (json!(1), json!(1)), "{payload}");
        assert_eq!(payload["kind"], "approval.requested");
    }
}

#[test]
fn a_delegate_decides_for_an_absent_approver_and_the_decision_says_so() {
    use chrono::{Duration, Utc};
    use workflow::delegations::{self, NewDelegation};
    for w in worlds() {
        define(
            &w,
            "Director",
            1,
            vec![],
            vec![step("sequential", json!([user(&w.dir1)])), step("sequential", json!([user(&w.dir1)]))],
        );
        let id = claim(&w, "10", "CNY");
        submit(&w, id).unwrap();
        let task = inbox(&w, &w.dir1, id).unwrap();
        // Not yet a delegate: refused.
        assert!(matches!(decide(&w, &w.dir2, task, Decision::Approve), Err(Error::Forbidden(_))));
        let now = Utc::now();
        let bad = |input: NewDelegation| {
            fields(w.db.write_blocking(|tx| delegations::create(tx, &w.dir1, input, now)).unwrap_err())
        };
        assert_eq!(
            bad(NewDelegation {
                delegate_id: Some(w.dir1.user_id),
                ends_at: Some(now + Duration::days(1)),
                ..Default::default()
            }),
            ["delegate_id"]
        );
        assert_eq!(
            bad(NewDelegation {
                delegate_id: Some(w.dir2.user_id),
                ends_at: Some(now - Duration::days(1)),
                ..Default::default()
            }),
            ["ends_at"]
        );
        // A revoked delegation gives nothing.
        let past = NewDelegation {
            delegate_id: Some(w.dir2.user_id),
            starts_at: Some(now - Duration::days(3)),
            ends_at: Some(now + Duration::days(1)),
        };
        let d = w.db.write_blocking(|tx| delegations::create(tx, &w.dir1, past, now - Duration::days(3))).unwrap();
        w.db.write_blocking(|tx| delegations::revoke(tx, &w.dir1, d.id, now)).unwrap();
        assert!(inbox(&w, &w.dir2, id).is_none());
        assert!(matches!(decide(&w, &w.dir2, task, Decision::Approve), Err(Error::Forbidden(_))));
        // A running one: the delegate sees the task and decides it on the director's behalf.
        let running = NewDelegation {
            delegate_id: Some(w.dir2.user_id),
            ends_at: Some(now + Duration::days(7)),
            ..Default::default()
        };
        w.db.write_blocking(|tx| delegations::create(tx, &w.dir1, running, now)).unwrap();
        assert_eq!(inbox(&w, &w.dir2, id), Some(task));
        let a = decide(&w, &w.dir2, task, Decision::Approve).unwrap();
        assert_eq!(
            (a.approver_id, a.decided_by, a.on_behalf_of),
            (w.dir1.user_id, Some(w.dir2.user_id), Some(w.dir1.user_id))
        );
        // Step 2 waits for the director; the delegate standing in hears of it too.
        let heard = |who: &Principal| -> Vec<String> {
            w.db.read_blocking(|tx| {
                tx.query_sql(
                    "SELECT title FROM notifications WHERE user_id = $1 AND kind = 'approval.requested' ORDER BY id",
                    &[who.user_id.into()],
                )
            })
            .unwrap()
        };
        assert_eq!(heard(&w.dir1).len(), 2, "{:?}", heard(&w.dir1));
        let standing_in = heard(&w.dir2);
        assert_eq!(standing_in.len(), 1, "{standing_in:?}");
        assert!(standing_in[0].contains("standing in for"), "{standing_in:?}");
        // The director may still decide personally (step 2), recorded as their own.
        let t2 = inbox(&w, &w.dir1, id).unwrap();
        let a = decide(&w, &w.dir1, t2, Decision::Approve).unwrap();
        assert_eq!(a.on_behalf_of, None);
        assert_eq!(status(&w, id), "approved");
        // A third person is still no approver.
        assert_eq!(w.db.read_blocking(|tx| delegations::list(tx, &w.dir3)).unwrap().len(), 0);
        assert_eq!(w.db.read_blocking(|tx| delegations::list(tx, &w.dir2)).unwrap().len(), 2);
    }
}

#[test]
fn timeouts_remind_escalate_and_decide_in_working_hours_with_holidays() {
    use workflow::calendar;
    use workflow::processes::Timeouts;
    for w in worlds() {
        // The rep approves (a test stand-in for any approver with a manager): a reminder
        // after 2 working hours, the manager added after 4, approved automatically after 9.
        let mut s = step("sequential", json!([user(&w.rep)]));
        s.timeouts = Some(Timeouts {
            remind_after_hours: Some(2),
            escalate_after_hours: Some(4),
            auto_after_hours: Some(9),
            auto_decision: Some("approve".into()),
        });
        define(&w, "Timed", 1, vec![], vec![s]);
        let id = claim(&w, "10", "CNY");
        submit(&w, id).unwrap();
        let page = kernel::paging::PageRequest::parse(Some(100), None).unwrap();
        let task = w.db.read_blocking(|tx| engine::list_mine(tx, &w.rep, "pending", &page)).unwrap().items[0].clone();
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        // The first working day after submission is a holiday (for every branch).
        let none = std::collections::BTreeSet::new();
        let first_day = calendar::add_working_seconds(task.created_at, 1, tz, &none).with_timezone(&tz).date_naive();
        w.db.write_blocking(|tx| calendar::add_holiday(tx, &w.admin, None, first_day, "春节 / 설날")).unwrap();
        let holidays = std::collections::BTreeSet::from([first_day]);
        let after = |hours: i64, days: &std::collections::BTreeSet<chrono::NaiveDate>| {
            calendar::add_working_seconds(task.created_at, hours * 3600, tz, days)
        };
        let tick = |now| w.db.write_blocking(|tx| engine::tick(tx, &w.registry, now)).unwrap();
        let reminders =
            || count(&w.db, &format!("notifications WHERE user_id = {} AND kind = 'approval.reminder'", w.rep.user_id));
        // Two working hours ignoring the holiday fall on the holiday: nothing yet.
        assert_eq!(tick(after(2, &none)), engine::TickReport::default());
        assert_eq!(tick(after(1, &holidays)).reminded, 0);
        let r = tick(after(2, &holidays));
        assert_eq!((r.reminded, r.escalated, r.decided), (1, 0, 0));
        assert_eq!(tick(after(3, &holidays)), engine::TickReport::default());
        assert_eq!(reminders(), 1);
        // Escalation adds the rep's manager, once.
        assert!(inbox(&w, &w.manager, id).is_none());
        assert_eq!(tick(after(4, &holidays)).escalated, 1);
        assert_eq!(tick(after(5, &holidays)).escalated, 0);
        assert!(inbox(&w, &w.manager, id).is_some());
        assert_eq!(status(&w, id), "pending");
        // After 9 working hours the step is approved automatically.
        assert_eq!(tick(after(9, &holidays)).decided, 1);
        assert_eq!(status(&w, id), "approved");
        assert_eq!(tick(after(20, &holidays)), engine::TickReport::default());
        let h = w.db.read_blocking(|tx| engine::history(tx, "expense_claim", id)).unwrap();
        assert!(
            h[0].decisions.iter().any(|d| d.comment.as_deref() == Some("automatic decision after 9 working hours"))
        );
    }
}

fn prefs(w: &World, who: &Principal, items: Value) -> Result<Vec<notifications::Preference>, Error> {
    let input: notifications::PreferencesInput = serde_json::from_value(json!({ "items": items })).unwrap();
    w.db.write_blocking(|tx| notifications::set_preferences(tx, who, &w.registry, input))
}

/// Notifications and queued mails of `who` of `kind`.
fn heard(w: &World, who: &Principal, kind: &str) -> (i64, i64) {
    let email = w.db.read_blocking(|tx| users::get(tx, &w.admin, who.user_id)).unwrap().email;
    (
        count(&w.db, &format!("notifications WHERE user_id = {} AND kind = '{kind}'", who.user_id)),
        count(&w.db, &format!("mail_outbox WHERE to_email = '{email}'")),
    )
}

#[test]
fn notice_preferences_choose_in_app_and_mail_per_kind() {
    for w in worlds() {
        define(
            &w,
            "Directors",
            10,
            vec![],
            vec![step("parallel", json!([user(&w.dir1), user(&w.dir2), user(&w.dir3)]))],
        );
        // No choice made: every registered kind, in the app and by mail.
        let mine = w.db.read_blocking(|tx| notifications::preferences(tx, &w.dir1, &w.registry)).unwrap();
        let kinds: Vec<&str> = mine.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "approval.requested",
                "approval.submitted",
                "approval.step",
                "approval.finished",
                "approval.reminder",
                "approval.escalated"
            ]
        );
        assert!(mine.iter().all(|p| p.in_app && p.email && !p.label.is_empty()), "{mine:?}");
        // dir1 wants requests in the app only, dir2 by mail only, dir3 not at all.
        let only_app = prefs(&w, &w.dir1, json!([{"kind": "approval.requested", "in_app": true, "email": false}]));
        assert!(only_app.unwrap().iter().any(|p| p.kind == "approval.requested" && p.in_app && !p.email));
        prefs(&w, &w.dir2, json!([{"kind": "approval.requested", "in_app": false, "email": true}])).unwrap();
        prefs(&w, &w.dir3, json!([{"kind": "approval.requested", "in_app": false, "email": false}])).unwrap();
        // Unknown or repeated kinds: 422 naming the item, nothing written.
        let before = count(&w.db, "notification_preferences");
        let audited = count(&w.db, "audit_log WHERE record_type = 'notification_preferences'");
        let bad = prefs(
            &w,
            &w.rep,
            json!([
                {"kind": "approval.finished", "in_app": false, "email": false},
                {"kind": "sales.won", "in_app": true, "email": true},
                {"kind": "approval.finished", "in_app": true, "email": false}
            ]),
        )
        .unwrap_err();
        assert_eq!(fields(bad), ["items[1].kind", "items[2].kind"]);
        assert_eq!(count(&w.db, "notification_preferences"), before);
        assert_eq!(audited, 3);
        assert_eq!(count(&w.db, "audit_log WHERE record_type = 'notification_preferences'"), audited);
        let id = claim(&w, "50000", "CNY");
        submit(&w, id).unwrap();
        assert_eq!(heard(&w, &w.dir1, "approval.requested"), (1, 0));
        assert_eq!(heard(&w, &w.dir2, "approval.requested"), (0, 1));
        assert_eq!(heard(&w, &w.dir3, "approval.requested"), (0, 0));
        // The rep chose nothing: both for every step decision.
        let task = inbox(&w, &w.dir3, id).expect("dir3 still has the task");
        decide(&w, &w.dir3, task, Decision::Approve).unwrap();
        assert_eq!(heard(&w, &w.rep, "approval.step"), (1, 1));
        // Saving the same choice again writes no audit entry; switching back works.
        prefs(&w, &w.dir3, json!([{"kind": "approval.requested", "in_app": false, "email": false}])).unwrap();
        assert_eq!(count(&w.db, "audit_log WHERE record_type = 'notification_preferences'"), 3);
        let back = prefs(&w, &w.dir3, json!([{"kind": "approval.requested", "in_app": true, "email": true}])).unwrap();
        assert!(back.iter().all(|p| p.in_app && p.email));
    }
}

#[test]
fn notices_are_written_in_the_recipients_language() {
    for w in worlds() {
        define(&w, "报销审批", 10, vec![], vec![step("sequential", json!([{"kind": "manager"}]))]);
        let set_locale = |who: &Principal, locale: &str| {
            w.db.write_blocking(|tx| {
                tx.execute_sql("UPDATE users SET locale = $1 WHERE id = $2", &[locale.into(), who.user_id.into()])
            })
            .unwrap();
        };
        set_locale(&w.manager, "zh-CN");
        set_locale(&w.rep, "ko-KR");
        // An old notice keeps the words it was written with.
        w.db.write_blocking(|tx| {
            tx.execute_sql(
                "INSERT INTO notifications (id, user_id, kind, title, body, link, created_at) \
                 VALUES ($1, $2, 'approval.step', 'Old English title', 'old body', NULL, $3)",
                &[Id::new().into(), w.rep.user_id.into(), chrono::Utc::now().into()],
            )
        })
        .unwrap();
        let id = claim(&w, "1234567.5", "CNY");
        submit(&w, id).unwrap();
        let task = inbox(&w, &w.manager, id).unwrap();
        decide(&w, &w.manager, task, Decision::Reject).unwrap();
        let notices = |who: &Principal| -> Vec<(String, String)> {
            let rows =
                w.db.read_blocking(|tx| {
                    tx.query_sql::<String>(
                        "SELECT title || '|' || body FROM notifications WHERE user_id = $1 ORDER BY id",
                        &[who.user_id.into()],
                    )
                })
                .unwrap();
            rows.iter().map(|r| r.split_once('|').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap()).collect()
        };
        let title = "travel 1,234,567.50 CNY: 上海 → 首尔 출장";
        assert_eq!(
            notices(&w.manager),
            [(format!("待您审批：{title}"), "费用报销：“报销审批”的第 1 步等待您的决定。".to_owned())]
        );
        assert_eq!(
            notices(&w.rep),
            [
                ("Old English title".to_owned(), "old body".to_owned()),
                (format!("manager님이 1단계를 반려했습니다: {title}"), "好的 / 좋아요".to_owned()),
                (format!("반려됨: {title}"), "경비 청구: \"报销审批\" 승인이 끝났습니다.".to_owned()),
            ]
        );
        // Mails say the same in the same language.
        let subjects: Vec<(String, String)> =
            w.db.read_blocking(|tx| {
                tx.query_sql::<String>("SELECT to_email || '|' || subject FROM mail_outbox ORDER BY id", &[])
            })
            .unwrap()
            .iter()
            .map(|r| r.split_once('|').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap())
            .collect();
        assert_eq!(
            subjects,
            [
                ("manager@east.cn".to_owned(), format!("待您审批：{title}")),
                ("rep@east.cn".to_owned(), format!("manager님이 1단계를 반려했습니다: {title}")),
                ("rep@east.cn".to_owned(), format!("반려됨: {title}")),
            ]
        );
        let body: Vec<String> =
            w.db.read_blocking(|tx| tx.query_sql::<String>("SELECT body FROM mail_outbox ORDER BY id LIMIT 1", &[]))
                .unwrap();
        assert_eq!(body[0], "费用报销：“报销审批”的第 1 步等待您的决定。\n\n/approvals\n");
    }
}

#[test]
fn every_notice_text_is_in_every_language() {
    assert_eq!(kernel::i18n::missing_keys(&notifications::SOURCES), Vec::<(String, Vec<String>)>::new());
    let c = notifications::catalog();
    for kind in notifications::KINDS {
        for locale in kernel::i18n::LOCALES {
            assert!(c.has(locale, kind.label_key), "{} in {locale}", kind.label_key);
        }
    }
}

#[test]
fn reminders_and_escalations_say_since_when_in_the_recipients_time_zone() {
    use workflow::processes::Timeouts;
    for w in worlds() {
        let mut s = step("sequential", json!([user(&w.rep)]));
        s.timeouts = Some(Timeouts {
            remind_after_hours: Some(1),
            escalate_after_hours: Some(2),
            auto_after_hours: None,
            auto_decision: None,
        });
        define(&w, "Timed", 1, vec![], vec![s]);
        w.db.write_blocking(|tx| {
            tx.execute_sql(
                "UPDATE users SET locale = 'ko-KR', time_zone = 'Asia/Seoul' WHERE id = $1",
                &[w.rep.user_id.into()],
            )?;
            tx.execute_sql(
                "UPDATE users SET locale = 'zh-CN', time_zone = 'Asia/Shanghai' WHERE id = $1",
                &[w.manager.user_id.into()],
            )
        })
        .unwrap();
        let id = claim(&w, "10", "CNY");
        submit(&w, id).unwrap();
        let task = inbox(&w, &w.rep, id).unwrap();
        let created = w.db.read_blocking(|tx| engine::get(tx, &w.rep, task)).unwrap().created_at;
        let shanghai: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let later = workflow::calendar::add_working_seconds(created, 3 * 3600, shanghai, &Default::default());
        let r = w.db.write_blocking(|tx| engine::tick(tx, &w.registry, later)).unwrap();
        assert_eq!((r.reminded, r.escalated), (1, 1));
        let body = |who: &Principal, kind: &str| -> String {
            w.db.read_blocking(|tx| {
                tx.query_sql::<String>(
                    "SELECT body FROM notifications WHERE user_id = $1 AND kind = $2",
                    &[who.user_id.into(), kind.into()],
                )
            })
            .unwrap()
            .remove(0)
        };
        let seoul = created.with_timezone(&chrono_tz::Asia::Seoul).format("%Y-%m-%d %H:%M");
        let china = created.with_timezone(&shanghai).format("%Y-%m-%d %H:%M");
        assert_eq!(body(&w.rep, "approval.reminder"), format!("{seoul}부터 대기 중입니다."));
        assert_eq!(
            body(&w.manager, "approval.escalated"),
            format!("一项审批自 {china} 起等待过久，现在也在等待您的决定。")
        );
    }
}
