#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Store tests of data quality — duplicate scan, merge and undo, handover, consent,
//! data-subject export and erase — run on SQLite and (when configured) PostgreSQL.
mod common;

use std::collections::BTreeMap;

use customers::RecordType;
use customers::accounts::{self, AccountPatch, NewAccount};
use customers::activities::{self, NewActivity};
use customers::consent::{self, ConsentInput, DoNotContactInput};
use customers::contacts::{self, ContactPatch, NewContact};
use customers::duplicates;
use customers::fields::{self, NewCategory, NewCustomField};
use customers::handover::{self, NewHandover};
use customers::merge::{self, NewMerge};
use customers::privacy::{self, EraseRequest};
use customers::search;
use customers::tasks::{self, NewTask, TaskPatch};
use kernel::audit;
use kernel::identity::{passwords, users};
use kernel::paging::PageRequest;
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Error, Id, Principal, Tx};
use serde_json::json;

struct World {
    db: TestDb,
    admin: Principal,
    /// Manager of the east branch (scope: its subtree).
    manager: Principal,
    /// Sales reps of the east branch (scope: their own records).
    rep: Principal,
    rep2: Principal,
    /// Manager of the west branch.
    west: Principal,
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
            let mk = |tx: &mut Tx<'_>, name: &str| common::branch(tx, &admin, name, hq, Some("CN"));
            Ok::<_, Error>((mk(tx, "East")?, mk(tx, "West")?))
        })
        .unwrap();
    let user = |email: &str, role: &str, branch: Id| common::user(&db, &admin, &hash, email, role, branch, None);
    let manager = user("manager@east.cn", "manager", east);
    let rep = user("rep@east.cn", "sales", east);
    let rep2 = user("rep2@east.cn", "sales", east);
    let west = user("manager@west.cn", "manager", west);
    World { db, admin, manager, rep, rep2, west }
}

impl World {
    fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, Error>) -> Result<T, Error> {
        self.db.write_blocking(f)
    }

    fn contact(&self, who: &Principal, input: NewContact) -> Id {
        self.write(|tx| contacts::create(tx, who, input)).unwrap().id
    }

    fn scan(&self, who: &Principal, kind: RecordType) -> Vec<duplicates::Candidate> {
        self.write(|tx| duplicates::ensure_built(tx, who, kind)).unwrap();
        self.db.read_blocking(|tx| duplicates::scan(tx, who, kind, None)).unwrap()
    }

    fn count(&self, sql: &str, params: &[sea_query::Value]) -> i64 {
        self.db.read_blocking(|tx| tx.query_sql::<i64>(sql, params)).unwrap()[0]
    }
}

fn person(name: &str, email: Option<&str>, phone: Option<&str>) -> NewContact {
    NewContact { name: name.into(), email: email.map(Into::into), phone: phone.map(Into::into), ..Default::default() }
}

fn pairs(found: &[duplicates::Candidate]) -> Vec<(Vec<Id>, u32, Vec<String>)> {
    found.iter().map(|c| (c.ids.clone(), c.score, c.reasons.clone())).collect()
}

fn sorted(mut ids: Vec<Id>) -> Vec<Id> {
    ids.sort();
    ids
}

fn reasons(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| s.to_string()).collect()
}

#[test]
fn duplicate_scan_ranks_pairs_by_evidence_within_the_callers_scope() {
    for w in world() {
        let store =
            w.write(|tx| accounts::create(tx, &w.rep, NewAccount { name: "Lotte".into(), ..Default::default() }));
        let store = store.unwrap().id;
        let at_store = |n: NewContact| NewContact { account_id: Some(store), ..n };
        let a = w.contact(&w.rep, at_store(person("Kim Minjun", Some("kim@lotte.kr"), None)));
        let b = w.contact(&w.rep, at_store(person("Minjun Kim", Some("KIM@lotte.kr"), None)));
        let c = w.contact(&w.rep, person("김민준", None, None));
        let d = w.contact(&w.rep, person("김 민준", None, None));
        let e = w.contact(&w.rep, person("王 芳", None, Some("+86 138 0013 8000")));
        let f = w.contact(&w.rep, person("王芳", None, Some("138-0013-8000")));
        w.contact(&w.rep, person("Zhang Wei", Some("zhang@gome.cn"), None));
        w.contact(&w.rep, person("张伟", None, None));
        // Another rep's contact sharing the e-mail: only their manager sees that pair.
        let h = w.contact(&w.rep2, person("Someone Else", Some("kim@lotte.kr"), None));

        let found = w.scan(&w.manager, RecordType::Contact);
        assert_eq!(
            pairs(&found),
            vec![
                (sorted(vec![a, b]), 80, reasons(&["same_email", "similar_name", "same_company"])),
                (sorted(vec![e, f]), 70, reasons(&["same_phone", "same_name"])),
                (sorted(vec![a, h]), 45, reasons(&["same_email"])),
                (sorted(vec![b, h]), 45, reasons(&["same_email"])),
                (sorted(vec![c, d]), 30, reasons(&["same_name"])),
            ]
        );
        assert_eq!(found[0].names.len(), 2);
        // The rep sees only their own records; the west manager none of these.
        let mine = w.scan(&w.rep, RecordType::Contact);
        assert_eq!(mine.len(), 3);
        assert!(mine.iter().all(|p| !p.ids.contains(&h)));
        assert!(w.scan(&w.west, RecordType::Contact).is_empty());

        // Deleting a record drops its pairs; an update that changes the e-mail too.
        w.write(|tx| contacts::delete(tx, &w.rep2, h)).unwrap();
        w.write(|tx| {
            contacts::update(tx, &w.rep, c, ContactPatch { name: Some("이서연".into()), ..Default::default() })
        })
        .unwrap();
        let found = w.scan(&w.manager, RecordType::Contact);
        assert_eq!(
            found.iter().map(|p| sorted(p.ids.clone())).collect::<Vec<_>>(),
            vec![sorted(vec![a, b]), sorted(vec![e, f])]
        );

        // The backfill (after the migration, or for rows written in bulk) gives the same.
        w.write(|tx| {
            tx.execute_sql("DELETE FROM dedupe_keys", &[])?;
            tx.execute_sql("DELETE FROM dedupe_state", &[])?;
            Ok(())
        })
        .unwrap();
        assert_eq!(pairs(&w.scan(&w.manager, RecordType::Contact)), pairs(&found));

        // Accounts too: same phone and a token-order name.
        let acc = |name: &str, phone: &str| {
            w.write(|tx| {
                accounts::create(
                    tx,
                    &w.manager,
                    NewAccount { name: name.into(), phone: Some(phone.into()), ..Default::default() },
                )
            })
            .unwrap()
            .id
        };
        let x = acc("Gome Electric", "010-8888 6666");
        let y = acc("Electric Gome", "01088886666");
        acc("Suning", "010-6666 8888");
        assert_eq!(
            pairs(&w.scan(&w.manager, RecordType::Account)),
            vec![(vec![x, y], 60, reasons(&["same_phone", "similar_name"]))]
        );
        assert!(matches!(
            w.db.read_blocking(|tx| duplicates::scan(tx, &w.rep, RecordType::Account, Some(0))),
            Ok(v) if v.is_empty()
        ));
    }
}

fn contact_of(w: &World, id: Id) -> Result<contacts::Contact, Error> {
    w.db.read_blocking(|tx| contacts::get(tx, &w.manager, id))
}

fn note(w: &World, who: &Principal, contact: Id, subject: &str) -> Id {
    w.write(|tx| {
        activities::create(
            tx,
            who,
            NewActivity {
                kind: "note".into(),
                contact_id: Some(contact),
                subject: subject.into(),
                body: Some(format!("{subject} (body)")),
                ..Default::default()
            },
        )
    })
    .unwrap()
    .id
}

fn task(w: &World, who: &Principal, contact: Option<Id>, account: Option<Id>, subject: &str) -> Id {
    w.write(|tx| {
        tasks::create(
            tx,
            who,
            NewTask {
                subject: subject.into(),
                due_at: Some(chrono::Utc::now()),
                contact_id: contact,
                account_id: account,
                ..Default::default()
            },
        )
    })
    .unwrap()
    .id
}

fn column_of(w: &World, table: &str, column: &str, id: Id) -> Option<i64> {
    let sql = format!("SELECT {column} FROM {table} WHERE id = $1");
    w.db.read_blocking(|tx| tx.query_sql::<Option<i64>>(&sql, &[id.into()])).unwrap()[0]
}

fn audit_actions(w: &World, record_type: &str, id: Id) -> Vec<String> {
    let page = PageRequest::parse(Some(100), None).unwrap();
    w.db.read_blocking(|tx| audit::history(tx, record_type, id, &page))
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[test]
fn merge_chooses_fields_moves_references_redirects_and_undoes_exactly() {
    for w in world() {
        let keep = w.contact(&w.rep, person("王芳", None, Some("138 0013 8000")));
        let m1 = w.contact(&w.rep, person("王 芳", Some("wang@gome.cn"), Some("139 1111 2222")));
        let m2 = w.contact(&w.rep, person("Wang Fang", Some("fang@suning.cn"), None));
        let n1 = note(&w, &w.rep, m1, "visit");
        let n2 = note(&w, &w.rep, m1, "call");
        let t2 = task(&w, &w.rep, Some(m2), None, "send samples");
        w.write(|tx| consent::set(tx, &w.rep, m1, "sms", ConsentInput { granted: true, source: "event".into() }))
            .unwrap();
        let before = contact_of(&w, keep).unwrap();
        let input = NewMerge {
            record_type: "contact".into(),
            keep_id: keep,
            merge_ids: vec![m1, m2],
            fields: Some(BTreeMap::from([("phone".to_owned(), m1)])),
        };

        // Reps may not merge; bad input names the field and writes nothing.
        let forbidden = w.write(|tx| merge::merge(tx, &w.rep, input.clone()));
        assert!(matches!(forbidden, Err(Error::Forbidden(_))), "{forbidden:?}");
        let audits = w.count("SELECT COUNT(*) FROM audit_log", &[]);
        for (bad, field) in [
            (NewMerge { merge_ids: vec![keep], ..input.clone() }, "merge_ids"),
            (NewMerge { merge_ids: vec![], ..input.clone() }, "merge_ids"),
            (NewMerge { record_type: "lead".into(), ..input.clone() }, "record_type"),
            (
                NewMerge { fields: Some(BTreeMap::from([("shoe_size".to_owned(), m1)])), ..input.clone() },
                "fields.shoe_size",
            ),
            (
                NewMerge { fields: Some(BTreeMap::from([("email".to_owned(), Id(42))])), ..input.clone() },
                "fields.email",
            ),
            (NewMerge { keep_id: Id(42), ..input.clone() }, "keep_id"),
        ] {
            match w.write(|tx| merge::merge(tx, &w.manager, bad)) {
                Err(Error::Validation(errors)) => assert_eq!(errors[0].field, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert_eq!(w.count("SELECT COUNT(*) FROM audit_log", &[]), audits);
        // Out of the west manager's scope: as if the records did not exist.
        assert!(matches!(w.write(|tx| merge::merge(tx, &w.west, input.clone())), Err(Error::Validation(_))));

        let done = w.write(|tx| merge::merge(tx, &w.manager, input.clone())).unwrap();
        assert_eq!(done.merged_ids, vec![m1, m2]);
        assert_eq!(done.fields, BTreeMap::from([("email".to_owned(), m1), ("phone".to_owned(), m1)]));
        assert_eq!(done.moved["activities.contact_id"], 2);
        assert_eq!(done.moved["tasks.contact_id"], 1);
        let kept = contact_of(&w, keep).unwrap();
        assert_eq!(kept.name, "王芳", "the kept record's own value wins by default");
        assert_eq!(kept.email.as_deref(), Some("wang@gome.cn"), "first non-empty value of the merged");
        assert_eq!((kept.phone.as_deref(), kept.phone_raw.as_deref()), (Some("+8613911112222"), Some("139 1111 2222")));
        assert_eq!(kept.version, before.version + 1);
        for n in [n1, n2] {
            assert_eq!(column_of(&w, "activities", "contact_id", n), Some(keep.get()));
        }
        assert_eq!(column_of(&w, "tasks", "contact_id", t2), Some(keep.get()));
        assert_eq!(done.moved["consents.contact_id"], 1);
        assert!(w.db.read_blocking(|tx| consent::may_contact(tx, keep, "sms")).unwrap(), "consent follows the person");
        // The merged-away ids redirect; the kept record is found by the merged e-mail.
        for m in [m1, m2] {
            assert!(matches!(contact_of(&w, m), Err(Error::NotFound(_))));
            assert_eq!(column_of(&w, "contacts", "merged_into", m), Some(keep.get()));
            let to = w.db.read_blocking(|tx| merge::redirect(tx, &w.manager, RecordType::Contact, m)).unwrap();
            assert_eq!(to, Some(keep));
        }
        assert_eq!(w.db.read_blocking(|tx| merge::redirect(tx, &w.west, RecordType::Contact, m1)).unwrap(), None);
        assert_eq!(w.db.read_blocking(|tx| merge::redirect(tx, &w.manager, RecordType::Contact, keep)).unwrap(), None);
        let hits = w.db.read_blocking(|tx| customers::search::search(tx, &w.manager, "wang", None)).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![keep]);
        assert!(w.scan(&w.manager, RecordType::Contact).is_empty());
        assert_eq!(audit_actions(&w, "contact", keep)[0], "merge");
        assert_eq!(audit_actions(&w, "contact", m1)[0], "merged");
        // A merged record is not restored behind the merge's back.
        assert!(w.write(|tx| contacts::restore(tx, &w.manager, m1)).is_err());

        // Undo puts back exactly what was there.
        let undone = w.write(|tx| merge::undo(tx, &w.manager, done.id)).unwrap();
        assert!(undone.undone_at.is_some());
        let again = contact_of(&w, keep).unwrap();
        assert_eq!(
            (again.name.as_str(), again.email.as_deref(), again.phone.as_deref(), again.phone_raw.as_deref()),
            ("王芳", None, Some("+8613800138000"), Some("138 0013 8000"))
        );
        assert_eq!(again.custom, before.custom);
        for n in [n1, n2] {
            assert_eq!(column_of(&w, "activities", "contact_id", n), Some(m1.get()));
        }
        assert_eq!(column_of(&w, "tasks", "contact_id", t2), Some(m2.get()));
        assert!(!w.db.read_blocking(|tx| consent::may_contact(tx, keep, "sms")).unwrap());
        assert!(w.db.read_blocking(|tx| consent::may_contact(tx, m1, "sms")).unwrap());
        assert_eq!(contact_of(&w, m1).unwrap().email.as_deref(), Some("wang@gome.cn"));
        assert_eq!(contact_of(&w, m2).unwrap().name, "Wang Fang");
        assert_eq!(w.db.read_blocking(|tx| merge::redirect(tx, &w.manager, RecordType::Contact, m1)).unwrap(), None);
        assert_eq!(w.scan(&w.manager, RecordType::Contact).len(), 1, "王芳 and 王 芳 pair up again");
        assert_eq!(audit_actions(&w, "contact", keep)[0], "merge_undo");
        // Twice is refused.
        assert!(matches!(w.write(|tx| merge::undo(tx, &w.manager, done.id)), Err(Error::Conflict { .. })));

        // Undo is refused once the kept record or a moved row changed since the merge.
        let second = w.write(|tx| merge::merge(tx, &w.manager, NewMerge { fields: None, ..input.clone() })).unwrap();
        w.write(|tx| {
            contacts::update(tx, &w.rep, keep, ContactPatch { name: Some("王芳芳".into()), ..Default::default() })
        })
        .unwrap();
        let refused = w.write(|tx| merge::undo(tx, &w.manager, second.id));
        assert!(matches!(refused, Err(Error::Conflict { .. })), "{refused:?}");
        assert!(matches!(contact_of(&w, m1), Err(Error::NotFound(_))), "a refused undo writes nothing");
        let other = w.contact(&w.rep, person("Li Lei", None, None));
        let third = w
            .write(|tx| {
                merge::merge(
                    tx,
                    &w.manager,
                    NewMerge { keep_id: other, merge_ids: vec![keep], fields: None, ..input.clone() },
                )
            })
            .unwrap();
        // Someone re-links a moved task by hand.
        w.write(|tx| Ok(tx.execute_sql("UPDATE tasks SET contact_id = $1 WHERE id = $2", &[m2.into(), t2.into()])?))
            .unwrap();
        let refused = w.write(|tx| merge::undo(tx, &w.manager, third.id));
        assert!(matches!(refused, Err(Error::Conflict { .. })), "{refused:?}");
    }
}

#[test]
fn merging_accounts_moves_contacts_child_accounts_activities_and_tasks() {
    for w in world() {
        let system = Principal::system(Channel::Cli);
        let chain = w
            .write(|tx| {
                let category = fields::create_category(tx, &system, NewCategory { name: "Chain".into() })?;
                for (key, field_type) in [("tier", "text"), ("stores", "number")] {
                    fields::create_field(
                        tx,
                        &system,
                        NewCustomField {
                            category_id: category.id,
                            key: key.into(),
                            label: key.into(),
                            field_type: field_type.into(),
                            ..Default::default()
                        },
                    )?;
                }
                Ok(category.id)
            })
            .unwrap();
        let acc = |name: &str, parent: Option<Id>| {
            w.write(|tx| {
                accounts::create(
                    tx,
                    &w.manager,
                    NewAccount { name: name.into(), parent_id: parent, category_id: Some(chain), ..Default::default() },
                )
            })
            .unwrap()
            .id
        };
        let keep = acc("国美电器", None);
        let gone = acc("国美 电器", None);
        let store = acc("国美 北京店", Some(gone));
        let person = w.contact(&w.manager, NewContact { account_id: Some(gone), ..person("刘洋", None, None) });
        let t = task(&w, &w.manager, None, Some(gone), "renew contract");
        w.write(|tx| {
            accounts::update(
                tx,
                &w.manager,
                gone,
                AccountPatch { website: Some("https://gome.com.cn".into()), ..Default::default() },
            )
        })
        .unwrap();
        // Custom values of the category's fields, merged key by key.
        w.write(|tx| {
            for (id, custom) in [(keep, json!({"tier": "gold"})), (gone, json!({"tier": "silver", "stores": 12}))] {
                let custom = custom.as_object().cloned();
                accounts::update(tx, &w.manager, id, AccountPatch { custom, ..Default::default() })?;
            }
            Ok(())
        })
        .unwrap();
        let done = w
            .write(|tx| {
                merge::merge(
                    tx,
                    &w.manager,
                    NewMerge { record_type: "account".into(), keep_id: keep, merge_ids: vec![gone], fields: None },
                )
            })
            .unwrap();
        let kept = w.db.read_blocking(|tx| accounts::get(tx, &w.manager, keep)).unwrap();
        assert_eq!(serde_json::Value::Object(kept.custom), json!({"tier": "gold", "stores": 12}));
        assert_eq!(column_of(&w, "accounts", "parent_id", store), Some(keep.get()));
        assert_eq!(column_of(&w, "contacts", "account_id", person), Some(keep.get()));
        assert_eq!(column_of(&w, "tasks", "account_id", t), Some(keep.get()));
        let kept = w.db.read_blocking(|tx| accounts::get(tx, &w.manager, keep)).unwrap();
        assert_eq!(kept.website.as_deref(), Some("https://gome.com.cn"));
        assert_eq!(done.fields, BTreeMap::from([("custom.stores".to_owned(), gone), ("website".to_owned(), gone)]));
        w.write(|tx| merge::undo(tx, &w.manager, done.id)).unwrap();
        assert_eq!(column_of(&w, "accounts", "parent_id", store), Some(gone.get()));
        assert_eq!(column_of(&w, "contacts", "account_id", person), Some(gone.get()));
        let kept = w.db.read_blocking(|tx| accounts::get(tx, &w.manager, keep)).unwrap();
        assert_eq!(kept.website, None);
        assert_eq!(serde_json::Value::Object(kept.custom), json!({"tier": "gold"}));
    }
}

#[test]
fn handover_moves_what_the_rep_owned_counts_dry_runs_and_refuses_bad_pairs() {
    for w in world() {
        let acc = |name: &str| {
            w.write(|tx| accounts::create(tx, &w.rep, NewAccount { name: name.into(), ..Default::default() }))
                .unwrap()
                .id
        };
        let a1 = acc("永辉超市");
        acc("华润万家");
        let c1 = w.contact(&w.rep, NewContact { account_id: Some(a1), ..person("陈静", None, None) });
        w.contact(&w.rep, person("Park Jiho", None, None));
        w.contact(&w.rep, person("Emma Rossi", None, None));
        let promised = note(&w, &w.rep, c1, "promised a 5% discount");
        task(&w, &w.rep, None, Some(a1), "call back");
        task(&w, &w.rep, None, Some(a1), "send quote");
        let done = task(&w, &w.rep, None, Some(a1), "old task");
        w.write(|tx| tasks::update(tx, &w.rep, done, TaskPatch { status: Some("done".into()), ..Default::default() }))
            .unwrap();
        let other = w.contact(&w.rep2, person("Someone", None, None));
        let expected =
            BTreeMap::from([("accounts".to_owned(), 2), ("contacts".to_owned(), 3), ("open_tasks".to_owned(), 2)]);

        let input = NewHandover { from_user_id: w.rep.user_id, to_user_id: w.rep2.user_id, dry_run: true };
        let audits = w.count("SELECT COUNT(*) FROM audit_log", &[]);
        let preview = w.write(|tx| handover::handover(tx, &w.manager, input.clone())).unwrap();
        assert_eq!(preview.counts, expected);
        assert_eq!(w.count("SELECT COUNT(*) FROM audit_log", &[]), audits, "a dry run writes nothing");
        assert_eq!(column_of(&w, "accounts", "owner_id", a1), Some(w.rep.user_id.get()));

        // Refusals.
        let refuse = |who: &Principal, input: NewHandover| w.write(|tx| handover::handover(tx, who, input));
        assert!(matches!(refuse(&w.rep, input.clone()), Err(Error::Forbidden(_))));
        let same = refuse(&w.manager, NewHandover { to_user_id: w.rep.user_id, ..input.clone() });
        assert!(matches!(&same, Err(Error::Validation(e)) if e[0].field == "to_user_id"), "{same:?}");
        let outside = refuse(&w.west, input.clone());
        assert!(matches!(&outside, Err(Error::Validation(e)) if e[0].field == "from_user_id"), "{outside:?}");
        let departed = w.write(|tx| {
            users::update(tx, &w.admin, w.rep2.user_id, users::UserPatch { active: Some(false), ..Default::default() })
        });
        departed.unwrap();
        let inactive = refuse(&w.manager, NewHandover { dry_run: false, ..input.clone() });
        assert!(matches!(&inactive, Err(Error::Validation(e)) if e[0].field == "to_user_id"), "{inactive:?}");
        w.write(|tx| {
            users::update(tx, &w.admin, w.rep2.user_id, users::UserPatch { active: Some(true), ..Default::default() })
        })
        .unwrap();

        let moved = w.write(|tx| handover::handover(tx, &w.manager, NewHandover { dry_run: false, ..input })).unwrap();
        assert_eq!(moved.counts, expected);
        assert_eq!(column_of(&w, "accounts", "owner_id", a1), Some(w.rep2.user_id.get()));
        assert_eq!(column_of(&w, "tasks", "assignee_id", done), Some(w.rep.user_id.get()), "done tasks stay");
        assert_eq!(column_of(&w, "contacts", "owner_id", other), Some(w.rep2.user_id.get()));
        assert_eq!(audit_actions(&w, "user", w.rep.user_id)[0], "handover");
        assert_eq!(audit_actions(&w, "account", a1)[0], "handover");
        // The new owner (scope: own records) sees the account, what was promised on it, and its history.
        let rep2 = w.db.read_blocking(|tx| kernel::identity::principal_for_user(tx, w.rep2.user_id)).unwrap();
        let page = PageRequest::parse(Some(50), None).unwrap();
        w.db.read_blocking(|tx| accounts::get(tx, &rep2, a1)).unwrap();
        let timeline = w.db.read_blocking(|tx| activities::timeline(tx, &rep2, a1, &page)).unwrap();
        assert_eq!(timeline.items.iter().map(|a| a.id).collect::<Vec<_>>(), vec![promised]);
        assert_eq!(timeline.items[0].owner_id, Some(w.rep.user_id), "activities stay authored by the old rep");
        assert!(w.db.read_blocking(|tx| contacts::get(tx, &rep2, c1)).is_ok());
        // Nothing is left to move.
        let again = w
            .write(|tx| {
                handover::handover(
                    tx,
                    &w.manager,
                    NewHandover { from_user_id: w.rep.user_id, to_user_id: w.rep2.user_id, dry_run: true },
                )
            })
            .unwrap();
        assert!(again.counts.values().all(|n| *n == 0));
    }
}

#[test]
fn consent_keeps_history_and_decides_may_contact() {
    for w in world() {
        let c = w.contact(&w.rep, person("Emma Rossi", Some("emma@example.it"), None));
        let may = |channel: &str| w.db.read_blocking(|tx| consent::may_contact(tx, c, channel)).unwrap();
        assert!(!may("email"), "no consent is a no");
        let set = |channel: &str, granted: bool, source: &str| {
            w.write(|tx| consent::set(tx, &w.rep, c, channel, ConsentInput { granted, source: source.into() }))
        };
        set("email", true, "web form").unwrap();
        assert!(may("email"));
        set("email", false, "phone").unwrap();
        set("sms", true, "event").unwrap();
        assert!(!may("email"));
        assert!(may("sms"));
        let all = w.db.read_blocking(|tx| consent::list(tx, &w.rep, c)).unwrap();
        assert_eq!(all.history.len(), 3);
        assert_eq!(
            all.current.iter().map(|k| (k.channel.as_str(), k.granted, k.source.as_str())).collect::<Vec<_>>(),
            vec![("email", false, "phone"), ("sms", true, "event")]
        );
        assert_eq!(all.history.last().map(|k| k.source.as_str()), Some("web form"));
        // Bad input names the field and writes nothing.
        assert!(matches!(set("fax", true, "x"), Err(Error::Validation(e)) if e[0].field == "channel"));
        assert!(matches!(set("post", true, "  "), Err(Error::Validation(e)) if e[0].field == "source"));
        assert!(matches!(w.write(|tx| consent::list(tx, &w.rep2, c)), Err(Error::NotFound(_))));
        assert!(matches!(
            w.write(|tx| consent::set(tx, &w.rep2, c, "post", ConsentInput { granted: true, source: "x".into() })),
            Err(Error::NotFound(_))
        ));
        assert_eq!(w.count("SELECT COUNT(*) FROM consents", &[]), 3);

        let dnc = |value: bool| {
            w.write(|tx| {
                consent::set_do_not_contact(tx, &w.rep, c, DoNotContactInput { value, reason: Some("asked us".into()) })
            })
            .unwrap()
        };
        let flagged = dnc(true);
        assert!(flagged.do_not_contact);
        assert_eq!(flagged.do_not_contact_reason.as_deref(), Some("asked us"));
        assert!(!may("sms"), "do-not-contact overrides consent");
        assert!(!dnc(false).do_not_contact);
        assert!(may("sms"));
        let actions = audit_actions(&w, "contact", c);
        assert_eq!(actions.iter().filter(|a| *a == "consent").count(), 3);
        assert_eq!(actions[0], "update");
        assert!(!w.db.read_blocking(|tx| consent::may_contact(tx, Id(42), "sms")).unwrap());
    }
}

#[test]
fn personal_data_export_and_erase_leave_no_personal_value_behind() {
    for w in world() {
        let c = w.contact(&w.rep, person("王秀英", Some("xiuying@gome.cn"), Some("138 0013 8000")));
        let n = note(&w, &w.rep, c, "王秀英 wants the 138 0013 8000 line");
        let t = task(&w, &w.rep, Some(c), None, "call 王秀英");
        w.write(|tx| consent::set(tx, &w.rep, c, "email", ConsentInput { granted: true, source: "web form".into() }))
            .unwrap();
        let other = w.contact(&w.rep, person("王秀英", Some("xiuying@suning.cn"), None));

        assert!(matches!(w.write(|tx| privacy::export(tx, &w.rep, c)), Err(Error::Forbidden(_))));
        let data = w.write(|tx| privacy::export(tx, &w.manager, c)).unwrap();
        assert_eq!(data.contact.email.as_deref(), Some("xiuying@gome.cn"));
        assert_eq!(data.activities.iter().map(|a| a.id).collect::<Vec<_>>(), vec![n]);
        assert_eq!(data.tasks.iter().map(|t| t.id).collect::<Vec<_>>(), vec![t]);
        assert_eq!(data.consents.len(), 1);
        assert!(data.audit.iter().any(|e| e.action == "create"));
        assert!(data.audit.iter().any(|e| e.action == "consent"));
        assert_eq!(audit_actions(&w, "contact", c)[0], "personal_data_export");

        let wrong = w.write(|tx| privacy::erase(tx, &w.manager, c, EraseRequest { confirm: other.to_string() }));
        assert!(matches!(&wrong, Err(Error::Validation(e)) if e[0].field == "confirm"), "{wrong:?}");
        assert_eq!(contact_of(&w, c).unwrap().name, "王秀英");
        assert!(matches!(
            w.write(|tx| privacy::erase(tx, &w.west, c, EraseRequest { confirm: c.to_string() })),
            Err(Error::NotFound(_))
        ));

        // Member fields, tags and addresses are personal; membership itself is kept for counts.
        w.write(|tx| {
            contacts::update(
                tx,
                &w.manager,
                c,
                ContactPatch {
                    is_member: Some(true),
                    card_no: Some("8800123456".into()),
                    birthday: Some(chrono::NaiveDate::from_ymd_opt(1990, 5, 1)),
                    tags: Some(vec!["vip".into()]),
                    ..Default::default()
                },
            )
        })
        .unwrap();
        // Columns a later migration adds are erased without code changes.
        w.write(|tx| {
            tx.batch("ALTER TABLE contacts ADD COLUMN pet_name TEXT")?;
            tx.batch("ALTER TABLE contacts ADD COLUMN nickname TEXT NOT NULL DEFAULT ''")?;
            tx.execute_sql("UPDATE contacts SET pet_name = 'Mimi', nickname = 'Xiu' WHERE id = $1", &[c.into()])?;
            Ok(())
        })
        .unwrap();
        let erased = w.write(|tx| privacy::erase(tx, &w.manager, c, EraseRequest { confirm: c.to_string() })).unwrap();
        let extra: Vec<String> =
            w.db.read_blocking(|tx| {
                tx.query_sql(
                    "SELECT COALESCE(pet_name, 'none') || '|' || nickname FROM contacts WHERE id = $1",
                    &[c.into()],
                )
            })
            .unwrap();
        assert_eq!(extra, vec!["none|".to_owned()]);
        assert!(erased.fields.contains(&"pet_name".to_owned()) && erased.fields.contains(&"nickname".to_owned()));
        assert_eq!((erased.activities, erased.tasks), (1, 1));
        let gone = contact_of(&w, c).unwrap();
        assert_eq!(gone.name, privacy::ERASED_NAME);
        assert_eq!((gone.card_no, gone.birthday, gone.tags.len(), gone.is_member), (None, None, 0, true));
        assert_eq!(w.count("SELECT COUNT(*) FROM record_tags WHERE record_id = $1", &[c.get().into()]), 0);
        assert_eq!((gone.email, gone.phone, gone.phone_raw), (None, None, None));
        assert!(gone.custom.is_empty());
        let id = || vec![sea_query::Value::from(c.get())];
        assert!(!w.db.read_blocking(|tx| search::is_indexed(tx, c)).unwrap(), "the erased person is not in the index");
        assert_eq!(
            w.count("SELECT COUNT(*) FROM dedupe_keys WHERE record_type = 'contact' AND record_id = $1", &id()),
            0
        );
        // Aggregates stay: the activity and the task are still there, without their words.
        assert_eq!(w.count("SELECT COUNT(*) FROM activities WHERE contact_id = $1", &id()), 1);
        let subjects: Vec<(String, Option<String>)> =
            w.db.read_blocking(|tx| {
                tx.query_sql::<String>("SELECT subject FROM activities WHERE contact_id = $1", &id())
                    .map(|s| s.into_iter().map(|s| (s, None)).collect())
            })
            .unwrap();
        assert_eq!(subjects, vec![(privacy::ERASED_SUBJECT.to_owned(), None)]);
        let body: Vec<Option<String>> =
            w.db.read_blocking(|tx| tx.query_sql("SELECT body FROM activities WHERE contact_id = $1", &id())).unwrap();
        assert_eq!(body, vec![None]);
        // Nothing personal in the contact row, nor in the audit entry of the erasure.
        let row: Vec<String> = w
            .db
            .read_blocking(|tx| {
                tx.query_sql(
                    "SELECT name || '|' || COALESCE(email, '') || '|' || COALESCE(phone_raw, '') FROM contacts WHERE id = $1",
                    &id(),
                )
            })
            .unwrap();
        assert_eq!(row, vec![format!("{}||", privacy::ERASED_NAME)]);
        let page = PageRequest::parse(Some(10), None).unwrap();
        let entry = w.db.read_blocking(|tx| audit::history(tx, "contact", c, &page)).unwrap().items.remove(0);
        assert_eq!(entry.action, "erase");
        let text = entry.changes.to_string();
        for secret in ["王秀英", "xiuying", "8000", "gome"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(entry.changes.get("email").is_some(), "the erased fields are named: {text}");
        // Nor in any earlier entry about the person, the note or the task: the log keeps who
        // did what and when, with the values blanked.
        let earlier: Vec<String> = w
            .db
            .read_blocking(|tx| {
                tx.query_sql(
                    "SELECT action || ' ' || CAST(changes AS TEXT) FROM audit_log \
                     WHERE (record_type = 'contact' AND record_id = $1) OR (record_type = 'activity' AND record_id = $2) \
                     OR (record_type = 'task' AND record_id = $3)",
                    &[c.into(), n.into(), t.into()],
                )
            })
            .unwrap();
        assert!(earlier.iter().any(|e| e.starts_with("create ")), "{earlier:?}");
        for secret in ["王秀英", "xiuying", "8000", "gome", "8800123456"] {
            assert!(earlier.iter().all(|e| !e.contains(secret)), "{secret} in {earlier:?}");
        }
        assert!(!w.db.read_blocking(|tx| consent::may_contact(tx, c, "email")).unwrap());
        assert!(w.scan(&w.manager, RecordType::Contact).is_empty(), "the erased person pairs with nobody");
        let hits = w.db.read_blocking(|tx| customers::search::search(tx, &w.manager, "王秀英", None)).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![other]);

        // A record merged into the erased person is the same person: erased too, and the
        // merge (whose snapshot held the old values) can no longer be undone.
        let kept = w.contact(&w.rep, person("Park Jiwoo", Some("jiwoo@lotte.kr"), None));
        let merged = w.contact(&w.rep, person("박지우", Some("jiwoo.park@lotte.kr"), None));
        let merge = w
            .write(|tx| {
                merge::merge(
                    tx,
                    &w.manager,
                    NewMerge { record_type: "contact".into(), keep_id: kept, merge_ids: vec![merged], fields: None },
                )
            })
            .unwrap();
        w.write(|tx| privacy::erase(tx, &w.manager, kept, EraseRequest { confirm: kept.to_string() })).unwrap();
        let names: Vec<String> =
            w.db.read_blocking(|tx| {
                tx.query_sql(
                    "SELECT name || '|' || COALESCE(email, '') FROM contacts WHERE id IN ($1, $2) ORDER BY id",
                    &[kept.into(), merged.into()],
                )
            })
            .unwrap();
        assert_eq!(names, vec![format!("{}|", privacy::ERASED_NAME); 2]);
        let snapshot: Vec<String> =
            w.db.read_blocking(|tx| {
                tx.query_sql("SELECT CAST(snapshot AS TEXT) FROM merges WHERE id = $1", &[merge.id.into()])
            })
            .unwrap();
        assert!(!snapshot[0].contains("jiwoo") && !snapshot[0].contains("박지우"), "{snapshot:?}");
        let undo = w.write(|tx| merge::undo(tx, &w.manager, merge.id));
        assert!(matches!(undo, Err(Error::Conflict { .. })), "{undo:?}");
    }
}

/// Scan cost at scale (`cargo test -p customers --test quality -- --ignored --nocapture`;
/// `RAPPORT_BENCH_CONTACTS`, default 100,000): bulk-loads contacts with realistic name
/// collisions and 1% planted duplicates (same e-mail, or the same phone under another
/// spelling of the name), then times the key backfill and the scan. Figures go to
/// docs/duplicates.md, never into assertions on time.
#[test]
#[ignore = "benchmark"]
fn duplicate_scan_benchmark() {
    use std::time::Instant;

    use sea_query::Value as V;

    let n: usize = std::env::var("RAPPORT_BENCH_CONTACTS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    for db in test_databases() {
        let backend = db.backend().name();
        let admin = Principal::system(Channel::Cli);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        let surnames = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡"];
        let given = ["芳", "伟", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明"];
        let latin = ["liam", "olivia", "noah", "emma", "james", "ava", "lucas", "mia", "mason", "sophia"];
        let planted = n / 100;
        db.write_blocking(|tx| {
            let branch = kernel::setup::head_office(tx)?;
            let now = chrono::Utc::now();
            let mut rows = Vec::with_capacity(n);
            for i in 0..n {
                let (name, email, mobile) = if i >= n - planted {
                    // A duplicate of contact i - (n - planted): same e-mail, or same phone.
                    let j = i - (n - planted);
                    let (ref_name, ref_email, ref_mobile): (String, String, String) = rows_meta(&rows, j);
                    if j.is_multiple_of(2) {
                        (ref_name, ref_email, format!("1{}{:09}", 3 + next(7), next(1_000_000_000)))
                    } else {
                        (format!("{ref_name} "), format!("other{i}@example.com"), ref_mobile)
                    }
                } else {
                    let name = if next(10) < 7 {
                        format!(
                            "{}{}{}",
                            surnames[next(surnames.len())],
                            given[next(given.len())],
                            given[next(given.len())]
                        )
                    } else {
                        format!("{} {}", latin[next(latin.len())], latin[next(latin.len())])
                    };
                    (name, format!("p{i}@example.com"), format!("1{}{:09}", 3 + next(7), next(1_000_000_000)))
                };
                rows.push(vec![
                    V::from(Id::new().get()),
                    V::from(name),
                    V::from(branch.get()),
                    V::from(email),
                    V::from(format!("+86{mobile}")),
                    V::from(mobile),
                    V::Json(Some(Box::new(serde_json::json!({})))),
                    V::from(now),
                    V::from(now),
                    V::from(1i64),
                ]);
            }
            tx.insert_rows(
                "contacts",
                &[
                    "id",
                    "name",
                    "branch_id",
                    "email",
                    "phone_e164",
                    "phone_raw",
                    "custom",
                    "created_at",
                    "updated_at",
                    "version",
                ],
                &rows,
            )?;
            Ok::<_, Error>(())
        })
        .unwrap();
        let started = Instant::now();
        db.write_blocking(|tx| duplicates::build(tx, RecordType::Contact)).unwrap();
        let built = started.elapsed();
        let keys = db.read_blocking(|tx| tx.query_sql::<i64>("SELECT COUNT(*) FROM dedupe_keys", &[])).unwrap()[0];
        match backend {
            "postgres" => db.read_blocking(|tx| {
                tx.batch("VACUUM ANALYZE dedupe_keys")?;
                Ok::<_, Error>(tx.batch("VACUUM ANALYZE contacts")?)
            }),
            _ => db.write_blocking(|tx| Ok::<_, Error>(tx.batch("ANALYZE")?)),
        }
        .unwrap();
        let mut times = Vec::new();
        let mut found = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            found = db.read_blocking(|tx| duplicates::scan(tx, &admin, RecordType::Contact, Some(500))).unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        let top_planted =
            found.iter().filter(|c| c.reasons.iter().any(|r| r == "same_email" || r == "same_phone")).count();
        println!(
            "{backend}: {n} contacts, {keys} keys; build {:.2?}; scan (limit 500) median {:.2?} [{:.2?}–{:.2?}]; {} pairs returned, {top_planted} with same e-mail/phone (planted {planted})",
            built,
            times[1],
            times[0],
            times[2],
            found.len()
        );
    }
}

/// (name, email, mobile) of row `j` of a bulk load built above.
fn rows_meta(rows: &[Vec<sea_query::Value>], j: usize) -> (String, String, String) {
    let text = |v: &sea_query::Value| match v {
        sea_query::Value::String(Some(s)) => s.to_string(),
        _ => String::new(),
    };
    (text(&rows[j][1]), text(&rows[j][3]), text(&rows[j][5]))
}
