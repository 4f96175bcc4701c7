#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Scenario suite of the approvals engine, on SQLite and (when configured) PostgreSQL:
//! each step kind, conditions and priorities, versioning, bad definitions, concurrent
//! and repeated decisions, and a restart in mid-flight.
use std::sync::{Arc, Barrier};

use kernel::identity::{branches, passwords, users};
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Db, Error, Id, Principal};
use serde_json::{Value, json};
use workflow::amount::Money;
use workflow::engine::{self, Decision};
use workflow::expenses::{self, ClaimPatch, NewClaim};
use workflow::processes::{self, Condition, NewProcess, ProcessPatch, StepInput};
use workflow::Registry;

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

fn define(w: &World, name: &str, priority: i64, conditions: Vec<Condition>, steps: Vec<StepInput>) -> processes::Process {
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

fn status(w: &World, id: Id) -> String {
    w.db.read_blocking(|tx| expenses::get(tx, &w.rep, id)).unwrap().approval_status
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
            vec![step("sequential", json!([{"kind": "manager"}])), step("sequential", json!([{"kind": "role", "role": "finance"}]))],
        );
        let id = claim(&w, "1999.50", "CNY");
        assert_eq!(status(&w, id), "draft");
        assert_eq!(submit(&w, id).unwrap().approval_status, "pending");
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
        let kinds: Vec<String> = w
            .db
            .read_blocking(|tx| {
                tx.query_sql::<String>("SELECT kind FROM notifications WHERE user_id = $1 ORDER BY id", &[w.rep.user_id.into()])
            })
            .unwrap();
        assert_eq!(kinds, ["approval.step", "approval.step", "approval.finished"]);
        assert_eq!(count(&w.db, &format!("notifications WHERE user_id = {} AND kind = 'approval.requested'", w.fin1.user_id)), 1);
        // An approved claim stays locked; the audit log has the submission and the outcome.
        assert!(matches!(w.db.write_blocking(|tx| expenses::update(tx, &w.rep, id, patch.clone())), Err(Error::Conflict { .. })));
        assert_eq!(count(&w.db, &format!("audit_log WHERE record_type = 'expense_claim' AND record_id = {id}")), 3);
        assert_eq!(count(&w.db, "audit_log WHERE record_type = 'approval'"), 2);
        let _ = w.east;
    }
}
