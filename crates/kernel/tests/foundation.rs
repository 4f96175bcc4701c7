#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Store tests of the foundation, run on SQLite and (when configured) PostgreSQL.
use std::collections::BTreeMap;

use kernel::audit::{self, AuditFilter};
use kernel::identity::{branches, login, passwords, roles, sessions, tokens, users};
use kernel::paging::PageRequest;
use kernel::testing::{TestDb, test_databases};
use kernel::{Backend, Channel, Error, Id, Principal};

fn admin() -> Principal {
    Principal::system(Channel::Cli)
}

fn hq(db: &TestDb) -> Id {
    db.read_blocking(kernel::setup::head_office).unwrap()
}

fn new_branch(db: &TestDb, parent: Id, name: &str) -> branches::Branch {
    db.write_blocking(|tx| {
        branches::create(
            tx,
            &admin(),
            branches::NewBranch { name: name.into(), parent_id: Some(parent), ..Default::default() },
        )
    })
    .unwrap()
}

fn new_user(db: &TestDb, email: &str, role: &str, branch: Id) -> users::User {
    let hash = passwords::hash("password123").unwrap();
    db.write_blocking(|tx| {
        users::create(
            tx,
            &admin(),
            users::NewUser {
                email: email.into(),
                name: format!("User {email}"),
                password: "password123".into(),
                role: role.into(),
                branch_id: branch,
                ..Default::default()
            },
            hash,
        )
    })
    .unwrap()
}

fn principal(db: &TestDb, id: Id) -> Principal {
    db.read_blocking(|tx| kernel::identity::principal_for_user(tx, id)).unwrap()
}

#[test]
fn both_backends_have_the_same_tables_and_columns() {
    let dbs = test_databases();
    if dbs.len() < 2 {
        eprintln!("skipped: RAPPORT_TEST_DATABASE_URL is not set");
        return;
    }
    let mut shapes = Vec::new();
    for db in &dbs {
        let columns: Vec<(String, String)> = db
            .read_blocking(|tx| {
                let sql = match tx.backend() {
                    Backend::Sqlite => {
                        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY 1, 2"
                    }
                    Backend::Postgres => {
                        "SELECT table_name::text, column_name::text FROM information_schema.columns \
                         WHERE table_schema = current_schema() ORDER BY 1, 2"
                    }
                };
                tx.query_sql::<Pair>(sql, &[]).map(|rows| rows.into_iter().map(|p| (p.0, p.1)).collect())
            })
            .unwrap();
        let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
        // The one table built differently by design (docs/search.md): an FTS5 table (and
        // its shadow tables) on SQLite, a table with a GIN index on PostgreSQL.
        for (t, c) in columns.into_iter().filter(|(t, _)| !t.starts_with("search_index")) {
            by_table.entry(t).or_default().push(c);
        }
        shapes.push(by_table);
    }
    assert!(shapes[0].contains_key("users"));
    assert_eq!(shapes[0], shapes[1]);
}

struct Pair(String, String);
impl kernel::db::FromRow for Pair {
    fn from_row(row: &kernel::db::Row<'_>) -> Result<Self, kernel::DbError> {
        match row {
            kernel::db::Row::Sqlite(r) => Ok(Pair(r.get(0)?, r.get(1)?)),
            kernel::db::Row::Postgres(r) => Ok(Pair(r.try_get(0)?, r.try_get(1)?)),
        }
    }
}

#[test]
fn migrations_are_idempotent_and_current() {
    for db in test_databases() {
        assert!(db.migrate().unwrap().is_empty(), "{:?}", db.backend());
        assert!(db.migration_status().unwrap().is_current());
        kernel::setup::ensure_defaults(&db).unwrap();
        let roles = db.read_blocking(|tx| roles::list(tx, &admin())).unwrap();
        assert_eq!(roles.len(), roles::BUILT_IN.len());
    }
}

#[test]
fn branch_tree_moves_and_scopes() {
    for db in test_databases() {
        let hq = hq(&db);
        let east = new_branch(&db, hq, "华东贸易公司");
        let north = new_branch(&db, hq, "华北贸易公司");
        let store = new_branch(&db, east.id, "上海南京路店");
        assert_eq!(store.depth, 2);
        assert_eq!(store.region, "CN");

        // A manager of the east branch sees east and its store, not north.
        let manager = new_user(&db, "mgr@example.com", "manager", east.id);
        let mgr = principal(&db, manager.id);
        let visible: Vec<Id> = db.read_blocking(|tx| branches::tree(tx, &mgr)).unwrap().iter().map(|b| b.id).collect();
        assert_eq!(visible, vec![east.id, store.id]);
        let err = db.read_blocking(|tx| branches::get(tx, &mgr, north.id)).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)));

        // Moving the store under north rewrites its path; a cycle is refused.
        let moved = db
            .write_blocking(|tx| {
                branches::update(
                    tx,
                    &admin(),
                    store.id,
                    branches::BranchPatch { parent_id: Some(north.id), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!(moved.parent_id, Some(north.id));
        let visible: Vec<Id> = db.read_blocking(|tx| branches::tree(tx, &mgr)).unwrap().iter().map(|b| b.id).collect();
        assert_eq!(visible, vec![east.id]);
        let err = db
            .write_blocking(|tx| {
                branches::update(
                    tx,
                    &admin(),
                    north.id,
                    branches::BranchPatch { parent_id: Some(store.id), ..Default::default() },
                )
            })
            .unwrap_err();
        assert!(matches!(err, Error::Validation(ref e) if e[0].field == "parent_id"), "{err:?}");

        // A stale version is refused and writes nothing.
        let err = db
            .write_blocking(|tx| {
                branches::update(
                    tx,
                    &admin(),
                    east.id,
                    branches::BranchPatch { name: Some("X".into()), version: Some(99), ..Default::default() },
                )
            })
            .unwrap_err();
        assert!(matches!(err, Error::StaleVersion { current: 1 }));

        // Deleting a branch with users is refused; an empty one is deleted and restored.
        assert!(matches!(db.write_blocking(|tx| branches::delete(tx, &admin(), east.id)), Err(Error::Conflict { .. })));
        db.write_blocking(|tx| branches::delete(tx, &admin(), store.id)).unwrap();
        assert!(db.read_blocking(|tx| branches::get(tx, &admin(), store.id)).is_err());
        db.write_blocking(|tx| branches::restore(tx, &admin(), store.id)).unwrap();

        let history = db.read_blocking(|tx| audit::history(tx, "branch", store.id, &PageRequest::default())).unwrap();
        let actions: Vec<&str> = history.items.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, vec!["restore", "delete", "update", "create"]);
        assert_eq!(history.items[2].changes["parent_id"]["new"], serde_json::json!(north.id));
    }
}

#[test]
fn users_scope_roles_and_validation() {
    for db in test_databases() {
        let hq = hq(&db);
        let east = new_branch(&db, hq, "East");
        let west = new_branch(&db, hq, "West");
        let boss = new_user(&db, "boss@example.com", "manager", east.id);
        let rep = new_user(&db, "rep@example.com", "sales", east.id);
        let other = new_user(&db, "other@example.com", "sales", west.id);
        let boss_p = principal(&db, boss.id);
        let rep_p = principal(&db, rep.id);

        // Branch scope: the manager sees east's users only.
        let page = db
            .read_blocking(|tx| users::list(tx, &boss_p, &users::UserFilter::default(), &PageRequest::default()))
            .unwrap();
        let ids: Vec<Id> = page.items.iter().map(|u| u.id).collect();
        assert!(ids.contains(&rep.id) && !ids.contains(&other.id));
        assert!(matches!(db.read_blocking(|tx| users::get(tx, &boss_p, other.id)), Err(Error::NotFound(_))));
        // Own scope: a rep sees only themself.
        let page = db
            .read_blocking(|tx| users::list(tx, &rep_p, &users::UserFilter::default(), &PageRequest::default()))
            .unwrap();
        assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), vec![rep.id]);
        // A rep cannot create users; a manager cannot hand out admin.
        let input = users::NewUser {
            email: "new@example.com".into(),
            name: "New".into(),
            password: "password123".into(),
            role: "admin".into(),
            branch_id: east.id,
            ..Default::default()
        };
        assert!(matches!(db.read_blocking(|tx| users::validate_new(tx, &rep_p, &input)), Err(Error::Forbidden(_))));
        // Bad input names every bad field.
        let bad = users::NewUser {
            email: "not-an-email".into(),
            name: " ".into(),
            password: "short".into(),
            role: "nope".into(),
            branch_id: Id(12345),
            ..Default::default()
        };
        match db.read_blocking(|tx| users::validate_new(tx, &admin(), &bad)) {
            Err(Error::Validation(errors)) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, vec!["email", "name", "password", "role", "branch_id"]);
            }
            other => panic!("expected validation errors, got {other:?}"),
        }
        // A duplicate e-mail is a conflict naming the field, and nothing is written.
        let dup = users::NewUser { email: "REP@example.com".into(), ..input.clone() };
        let err = db
            .write_blocking(|tx| {
                users::create(tx, &admin(), users::NewUser { role: "sales".into(), ..dup }, "x".into())
            })
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { field: Some(ref f), .. } if f == "email"), "{err:?}");

        // Users may rename themselves but not promote themselves.
        let renamed = db
            .write_blocking(|tx| {
                users::update(
                    tx,
                    &rep_p,
                    rep.id,
                    users::UserPatch { name: Some("김민준".into()), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!(renamed.version, 2);
        assert!(matches!(
            db.write_blocking(|tx| users::update(
                tx,
                &rep_p,
                rep.id,
                users::UserPatch { role: Some("admin".into()), ..Default::default() }
            )),
            Err(Error::Forbidden(_))
        ));
    }
}

#[test]
fn deleted_users_and_branches_are_listed_in_scope_for_restore() {
    for db in test_databases() {
        let hq = hq(&db);
        let east = new_branch(&db, hq, "East");
        let west = new_branch(&db, hq, "West");
        let empty = new_branch(&db, east.id, "East annex");
        let boss = new_user(&db, "boss@example.com", "manager", east.id);
        let rep = new_user(&db, "rep@example.com", "sales", east.id);
        let gone_east = new_user(&db, "gone-east@example.com", "sales", east.id);
        let gone_west = new_user(&db, "gone-west@example.com", "sales", west.id);
        let boss_p = principal(&db, boss.id);
        let rep_p = principal(&db, rep.id);
        for id in [gone_east.id, gone_west.id] {
            db.write_blocking(|tx| users::delete(tx, &admin(), id)).unwrap();
        }
        db.write_blocking(|tx| branches::delete(tx, &admin(), empty.id)).unwrap();

        let deleted = |who: &Principal| {
            db.read_blocking(|tx| users::list_deleted(tx, who, &PageRequest::default()))
                .map(|p| p.items.iter().map(|u| u.id).collect::<Vec<_>>())
        };
        // Everything for admin, the branch subtree for a manager, nothing but oneself for own scope.
        assert_eq!(deleted(&admin()).unwrap(), vec![gone_east.id, gone_west.id]);
        assert_eq!(deleted(&boss_p).unwrap(), vec![gone_east.id]);
        assert!(deleted(&rep_p).unwrap().is_empty());
        // Paging with the cursor.
        let first =
            db.read_blocking(|tx| users::list_deleted(tx, &admin(), &PageRequest::parse(Some(1), None)?)).unwrap();
        assert_eq!(first.items.len(), 1);
        let cursor = first.next_cursor.expect("a next page");
        let second = db
            .read_blocking(|tx| users::list_deleted(tx, &admin(), &PageRequest::parse(Some(1), Some(&cursor))?))
            .unwrap();
        assert_eq!(second.items.iter().map(|u| u.id).collect::<Vec<_>>(), vec![gone_west.id]);
        // Live users are not listed; restored ones leave the list.
        db.write_blocking(|tx| users::restore(tx, &admin(), gone_east.id)).unwrap();
        assert_eq!(deleted(&admin()).unwrap(), vec![gone_west.id]);
        // Without identity.users.read: refused.
        let nobody = Principal { permissions: Default::default(), ..admin() };
        assert!(matches!(deleted(&nobody), Err(Error::Forbidden(_))));

        // Branches: in scope only, then restored.
        let branches_deleted = |who: &Principal| {
            db.read_blocking(|tx| branches::list_deleted(tx, who, &PageRequest::default()))
                .map(|p| p.items.iter().map(|b| b.id).collect::<Vec<_>>())
        };
        assert_eq!(branches_deleted(&admin()).unwrap(), vec![empty.id]);
        assert_eq!(branches_deleted(&boss_p).unwrap(), vec![empty.id]);
        let west_user = new_user(&db, "west@example.com", "manager", west.id);
        assert!(branches_deleted(&principal(&db, west_user.id)).unwrap().is_empty());
        assert!(matches!(branches_deleted(&nobody), Err(Error::Forbidden(_))));
        db.write_blocking(|tx| branches::restore(tx, &admin(), empty.id)).unwrap();
        assert!(branches_deleted(&admin()).unwrap().is_empty());
    }
}

#[test]
fn tokens_sessions_and_login_throttle() {
    for db in test_databases() {
        let hq = hq(&db);
        let user = new_user(&db, "wang.fang@example.com", "sales", hq);
        let who = principal(&db, user.id);
        let created = db
            .write_blocking(|tx| tokens::create(tx, &who, tokens::NewToken { name: "laptop".into(), user_id: None }))
            .unwrap();
        assert!(created.secret.starts_with(&created.token.prefix));
        let (p, stale) = db.read_blocking(|tx| tokens::resolve(tx, &created.secret)).unwrap().unwrap();
        assert_eq!(p.user_id, user.id);
        assert!(stale);
        db.write_blocking(|tx| tokens::touch(tx, &p)).unwrap();
        db.write_blocking(|tx| tokens::touch(tx, &p)).unwrap();
        let uses = db
            .read_blocking(|tx| {
                audit::list(
                    tx,
                    &admin(),
                    &AuditFilter { action: Some("token_use".into()), ..Default::default() },
                    &PageRequest::default(),
                )
            })
            .unwrap();
        assert_eq!(uses.items.len(), 1, "token use is audited once per interval");
        assert!(db.read_blocking(|tx| tokens::resolve(tx, "rap_nope_nope")).unwrap().is_none());
        db.write_blocking(|tx| tokens::revoke(tx, &who, created.token.id)).unwrap();
        assert!(db.read_blocking(|tx| tokens::resolve(tx, &created.secret)).unwrap().is_none());

        // Login: wrong passwords lock the account after five tries, and every try is audited.
        let ip = Some("192.0.2.7");
        for attempt in 1..=login::ACCOUNT_FAILURES_BEFORE_LOCK {
            let a = db.read_blocking(|tx| login::prepare(tx, "Wang.Fang@example.com", ip)).unwrap();
            let ok = passwords::verify("wrong", &a.password_hash);
            let outcome = db.write_blocking(|tx| login::finish(tx, &a, ok, Channel::Ui, None, None)).unwrap();
            match outcome {
                login::Outcome::Refused(Error::Unauthenticated) if attempt < login::ACCOUNT_FAILURES_BEFORE_LOCK => {}
                login::Outcome::Refused(Error::TooManyAttempts { .. })
                    if attempt == login::ACCOUNT_FAILURES_BEFORE_LOCK => {}
                _ => panic!("attempt {attempt}: unexpected outcome"),
            }
        }
        assert!(matches!(
            db.read_blocking(|tx| login::prepare(tx, "wang.fang@example.com", ip)),
            Err(Error::TooManyAttempts { .. })
        ));
        let failed = db
            .read_blocking(|tx| {
                audit::list(
                    tx,
                    &admin(),
                    &AuditFilter { action: Some("login_failed".into()), ..Default::default() },
                    &PageRequest::default(),
                )
            })
            .unwrap();
        assert_eq!(failed.items.len() as i64, login::ACCOUNT_FAILURES_BEFORE_LOCK);

        // An admin reset unlocks; the right password then opens a session.
        let hash = passwords::hash("new password 1").unwrap();
        db.write_blocking(|tx| users::set_password(tx, &admin(), user.id, hash, None)).unwrap();
        let a = db.read_blocking(|tx| login::prepare(tx, "wang.fang@example.com", ip)).unwrap();
        let ok = passwords::verify("new password 1", &a.password_hash);
        let login::Outcome::LoggedIn(session, _) =
            db.write_blocking(|tx| login::finish(tx, &a, ok, Channel::Ui, Some("test"), None)).unwrap()
        else {
            panic!("login refused")
        };
        let live = db.read_blocking(|tx| sessions::resolve(tx, &session.secret)).unwrap().unwrap();
        assert_eq!(live.principal.user_id, user.id);
        assert_eq!(live.csrf_token, session.csrf_token);
        // Deactivating the user ends the session.
        db.write_blocking(|tx| {
            users::update(tx, &admin(), user.id, users::UserPatch { active: Some(false), ..Default::default() })
        })
        .unwrap();
        assert!(db.read_blocking(|tx| sessions::resolve(tx, &session.secret)).unwrap().is_none());
    }
}

#[test]
fn audit_log_is_append_only() {
    for db in test_databases() {
        let hq = hq(&db);
        new_branch(&db, hq, "Somewhere");
        for sql in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"] {
            let result = db.write_blocking(|tx| tx.execute_sql(sql, &[]));
            assert!(result.is_err(), "{sql} must fail on {:?}", db.backend());
        }
        // The one exception, an erasure's redaction, blanks values once and changes nothing else.
        let branches: Vec<Id> = db
            .read_blocking(|tx| tx.query_sql("SELECT record_id FROM audit_log WHERE record_type = 'branch'", &[]))
            .unwrap();
        let branch = *branches.last().unwrap();
        let redacted = db.write_blocking(|tx| kernel::audit::redact(tx, "branch", &[branch])).unwrap();
        assert!(redacted >= 1);
        let changes: Vec<String> = db
            .read_blocking(|tx| {
                tx.query_sql("SELECT CAST(changes AS TEXT) FROM audit_log WHERE record_id = $1", &[branch.into()])
            })
            .unwrap();
        assert!(changes.iter().all(|c| !c.contains("Somewhere") && c.contains("***")), "{changes:?}");
        assert_eq!(db.write_blocking(|tx| kernel::audit::redact(tx, "branch", &[branch])).unwrap(), 0, "only once");
        for sql in [
            "UPDATE audit_log SET redacted_at = at, action = 'x' WHERE record_id = $1",
            "UPDATE audit_log SET redacted_at = NULL WHERE record_id = $1",
            "UPDATE audit_log SET changes = changes WHERE record_id = $1",
        ] {
            let result = db.write_blocking(|tx| tx.execute_sql(sql, &[branch.into()]));
            assert!(result.is_err(), "{sql} must fail on {:?}", db.backend());
        }
    }
}

#[test]
fn bulk_insert_and_rollback() {
    for db in test_databases() {
        let rows: Vec<Vec<sea_query::Value>> = (0..1200)
            .map(|i| {
                vec![
                    Id::new().into(),
                    "10.0.0.1".into(),
                    format!("a{i}@x.cn\twith\\tab").into(),
                    chrono::Utc::now().into(),
                ]
            })
            .collect();
        let n = db.write_blocking(|tx| tx.insert_rows("login_failures", &["id", "ip", "email", "at"], &rows)).unwrap();
        assert_eq!(n, 1200);
        let emails: Vec<String> =
            db.read_blocking(|tx| tx.query_sql("SELECT email FROM login_failures ORDER BY id LIMIT 1", &[])).unwrap();
        assert_eq!(emails[0], "a0@x.cn\twith\\tab");
        // A failed unit of work leaves nothing behind.
        let result: Result<(), Error> = db.write_blocking(|tx| {
            tx.execute_sql("DELETE FROM login_failures", &[])?;
            Err(Error::BadRequest("stop".into()))
        });
        assert!(result.is_err());
        let count: Vec<i64> = db.read_blocking(|tx| tx.query_sql("SELECT COUNT(*) FROM login_failures", &[])).unwrap();
        assert_eq!(count[0], 1200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_handles_may_be_dropped_on_async_threads() {
    // The synchronous postgres client panics when dropped inside a runtime unless the
    // pool moves it elsewhere; this drops a used Db right here, on an async thread.
    for db in test_databases() {
        let handle = db.db();
        let n: Vec<i64> = handle.read(|tx| tx.query_sql("SELECT 1", &[])).await.unwrap();
        assert_eq!(n, vec![1]);
        drop(handle);
        drop(db);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_reach_the_hub() {
    for db in test_databases() {
        let mut rx = db.events().subscribe();
        db.write(|tx| {
            tx.emit(kernel::events::Event::for_everyone("test.ping", serde_json::json!({"n": 1})));
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
        // A rolled-back unit of work publishes nothing.
        let _ = db
            .write(|tx| {
                tx.emit(kernel::events::Event::for_everyone("test.lost", serde_json::json!({})));
                Err::<(), _>(Error::BadRequest("no".into()))
            })
            .await;
        db.write(|tx| {
            tx.emit(kernel::events::Event::for_everyone("test.pong", serde_json::json!({})));
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        let second = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert_eq!((first.kind.as_str(), second.kind.as_str()), ("test.ping", "test.pong"), "{:?}", db.backend());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_nodes_on_postgres() {
    // Two Db handles on one PostgreSQL database stand for two nodes: an event committed
    // through one reaches subscribers of the other (LISTEN/NOTIFY).
    let Some(db) = TestDb::postgres() else { return };
    let other = kernel::db::off_runtime(|| kernel::Db::open(&db.url())).unwrap();
    let mut rx = other.events().subscribe();
    // Wait until the second node's listener is connected, or the NOTIFY would be missed.
    for _ in 0..200 {
        if other.events_connected() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(other.events_connected());
    db.write(|tx| {
        tx.emit(kernel::events::Event::for_user("test.cross", 42, serde_json::json!({"hello": "你好"})));
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    assert_eq!(event.kind, "test.cross");
    assert_eq!(event.user_id, Some(42));
    assert_eq!(event.payload["hello"], "你好");
}

#[test]
fn a_branch_manager_reads_the_audit_of_their_region_only() {
    for db in test_databases() {
        let hq = hq(&db);
        let east = new_branch(&db, hq, "East");
        let west = new_branch(&db, hq, "West");
        let east_boss = principal(&db, new_user(&db, "east@example.com", "manager", east.id).id);
        let west_boss = principal(&db, new_user(&db, "west@example.com", "manager", west.id).id);
        let change = |who: &Principal, id: Id, name: &str| {
            db.write_blocking(|tx| {
                branches::update(tx, who, id, branches::BranchPatch { code: Some(name.into()), ..Default::default() })
            })
        };
        // Managers hold no branch-update permission; an admin acting in each region does.
        assert!(matches!(change(&east_boss, east.id, "E"), Err(Error::Forbidden(_))));
        let east_admin = principal(&db, new_user(&db, "east.admin@example.com", "admin", east.id).id);
        let west_admin = principal(&db, new_user(&db, "west.admin@example.com", "admin", west.id).id);
        change(&east_admin, east.id, "E").unwrap();
        change(&west_admin, west.id, "W").unwrap();
        let seen = |who: &Principal| -> Vec<Option<Id>> {
            db.read_blocking(|tx| {
                audit::list(
                    tx,
                    who,
                    &AuditFilter { action: Some("update".into()), ..Default::default() },
                    &PageRequest::default(),
                )
            })
            .unwrap()
            .items
            .iter()
            .map(|e| e.actor_id)
            .collect()
        };
        assert_eq!(seen(&east_boss), vec![Some(east_admin.user_id)]);
        assert_eq!(seen(&west_boss), vec![Some(west_admin.user_id)]);
        assert_eq!(seen(&admin()).len(), 2);
        // Viewers and finance do not read the audit log at all.
        let viewer = principal(&db, new_user(&db, "viewer@example.com", "viewer", east.id).id);
        assert!(matches!(
            db.read_blocking(|tx| audit::list(tx, &viewer, &AuditFilter::default(), &PageRequest::default())),
            Err(Error::Forbidden(_))
        ));
    }
}
