#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Store tests of customers, run on SQLite and (when configured) PostgreSQL.
mod common;

use customers::accounts::{self, AccountFilter, AccountPatch, NewAccount};
use customers::contacts::{self, ContactFilter, ContactPatch, NewContact};
use customers::fields::{self, FieldFilter, NewCategory, NewCustomField};
use kernel::identity::passwords;
use kernel::paging::PageRequest;
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Error, Id, Principal};
use serde_json::{Map, Value, json};

use common::{count, field_names};

struct World {
    db: TestDb,
    admin: Principal,
    /// Manager of the east branch (scope: its subtree, which holds Seoul).
    manager: Principal,
    /// Two sales reps of the east branch (scope: their own records).
    rep: Principal,
    rep2: Principal,
    /// Manager of the west branch.
    west: Principal,
    seoul: Id,
}

fn world() -> Vec<World> {
    test_databases().into_iter().map(build).collect()
}

fn build(db: TestDb) -> World {
    let admin = Principal::system(Channel::Cli);
    let hash = passwords::hash("password123").unwrap();
    let (east, west, seoul) = db
        .write_blocking(|tx| {
            let hq = kernel::setup::head_office(tx)?;
            let mk = |tx: &mut kernel::Tx<'_>, name: &str, parent: Id, region: &str| {
                common::branch(tx, &admin, name, parent, Some(region))
            };
            let east = mk(tx, "East", hq, "CN")?;
            let west = mk(tx, "West", hq, "CN")?;
            let seoul = mk(tx, "Seoul", east, "KR")?;
            Ok::<_, Error>((east, west, seoul))
        })
        .unwrap();
    let user = |email: &str, role: &str, branch: Id| common::user(&db, &admin, &hash, email, role, branch, None);
    let manager = user("manager@east.cn", "manager", east);
    let rep = user("rep@east.cn", "sales", east);
    let rep2 = user("rep2@east.cn", "sales", east);
    let west = user("manager@west.cn", "manager", west);
    World { db, admin, manager, rep, rep2, west, seoul }
}

fn account(name: &str) -> NewAccount {
    NewAccount { name: name.into(), ..Default::default() }
}

fn custom(value: Value) -> Option<Map<String, Value>> {
    value.as_object().cloned()
}

#[test]
fn account_lifecycle_is_versioned_audited_and_restorable() {
    for w in world() {
        let a =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.rep,
                    NewAccount {
                        email: Some(" Buyer@Gome.COM.cn".into()),
                        phone: Some("138 0013 8000".into()),
                        website: Some("https://gome.com.cn".into()),
                        external_id: Some("ERP-1".into()),
                        ..account("国美电器")
                    },
                )
            })
            .unwrap();
        assert_eq!(a.owner_id, Some(w.rep.user_id));
        assert_eq!(a.branch_id, w.rep.branch_id);
        assert_eq!((a.status.as_str(), a.version), ("active", 1));
        assert_eq!(a.email.as_deref(), Some("buyer@gome.com.cn"));
        assert_eq!((a.phone.as_deref(), a.phone_raw.as_deref()), (Some("+8613800138000"), Some("138 0013 8000")));
        assert_eq!(a.duplicate_candidates, Some(vec![]));
        let read = w.db.read_blocking(|tx| accounts::get(tx, &w.rep, a.id)).unwrap();
        assert_eq!(read, accounts::Account { duplicate_candidates: None, ..a.clone() });

        let patch = |version| AccountPatch {
            name: Some("国美".into()),
            status: Some("inactive".into()),
            phone: Some("".into()),
            version: Some(version),
            ..Default::default()
        };
        let b = w.db.write_blocking(|tx| accounts::update(tx, &w.rep, a.id, patch(1))).unwrap();
        assert_eq!((b.name.as_str(), b.status.as_str(), b.phone.as_deref(), b.version), ("国美", "inactive", None, 2));
        // A stale version is refused and writes nothing.
        let audit = count(&w.db, "audit_log");
        let stale = w.db.write_blocking(|tx| accounts::update(tx, &w.rep, a.id, patch(1)));
        assert!(matches!(stale, Err(Error::StaleVersion { current: 2 })), "{stale:?}");
        assert_eq!(count(&w.db, "audit_log"), audit);

        w.db.write_blocking(|tx| accounts::delete(tx, &w.rep, a.id)).unwrap();
        assert!(matches!(w.db.read_blocking(|tx| accounts::get(tx, &w.rep, a.id)), Err(Error::NotFound(_))));
        let restored = w.db.write_blocking(|tx| accounts::restore(tx, &w.rep, a.id)).unwrap();
        assert_eq!(restored.version, 4);
        let actions: Vec<String> =
            w.db.read_blocking(|tx| {
                tx.query_sql(
                    "SELECT action FROM audit_log WHERE record_type = 'account' AND record_id = $1 ORDER BY id",
                    &[a.id.into()],
                )
            })
            .unwrap();
        assert_eq!(actions, ["create", "update", "delete", "restore"]);
    }
}

#[test]
fn scope_limits_what_each_role_sees() {
    for w in world() {
        let mine = w.db.write_blocking(|tx| accounts::create(tx, &w.rep, account("Mine"))).unwrap();
        let theirs = w.db.write_blocking(|tx| accounts::create(tx, &w.rep2, account("Theirs"))).unwrap();
        let in_seoul =
            w.db.write_blocking(|tx| {
                accounts::create(tx, &w.manager, NewAccount { branch_id: Some(w.seoul), ..account("Seoul shop") })
            })
            .unwrap();
        let names = |who: &Principal| -> Vec<String> {
            w.db.read_blocking(|tx| accounts::list(tx, who, &AccountFilter::default(), &PageRequest::default()))
                .unwrap()
                .items
                .into_iter()
                .map(|a| a.name)
                .collect()
        };
        assert_eq!(names(&w.rep), ["Mine"]);
        assert_eq!(names(&w.rep2), ["Theirs"]);
        assert_eq!(names(&w.manager), ["Mine", "Theirs", "Seoul shop"]);
        assert_eq!(names(&w.admin), ["Mine", "Theirs", "Seoul shop"]);
        assert!(names(&w.west).is_empty());
        // Outside scope is "not found", for reads and writes alike.
        for (who, id) in [(&w.rep, theirs.id), (&w.west, mine.id), (&w.rep, in_seoul.id)] {
            assert!(matches!(w.db.read_blocking(|tx| accounts::get(tx, who, id)), Err(Error::NotFound(_))));
            let patch = AccountPatch { name: Some("x".into()), ..Default::default() };
            assert!(matches!(w.db.write_blocking(|tx| accounts::update(tx, who, id, patch)), Err(Error::NotFound(_))));
            assert!(matches!(w.db.write_blocking(|tx| accounts::delete(tx, who, id)), Err(Error::NotFound(_))));
        }
        // A rep cannot attach a contact to someone else's account, nor hand records away.
        let e =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact {
                        name: "王芳".into(),
                        account_id: Some(theirs.id),
                        owner_id: Some(w.rep2.user_id),
                        ..Default::default()
                    },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["account_id", "owner_id"]);
        // A manager can give an account to a rep of their subtree, not to another branch.
        let e =
            w.db.write_blocking(|tx| {
                accounts::create(tx, &w.manager, NewAccount { owner_id: Some(w.west.user_id), ..account("x") })
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["owner_id"]);
        let filtered =
            w.db.read_blocking(|tx| {
                accounts::list(
                    tx,
                    &w.manager,
                    &AccountFilter { owner_id: Some(w.rep2.user_id), ..Default::default() },
                    &PageRequest::default(),
                )
            })
            .unwrap();
        assert_eq!(filtered.items.iter().map(|a| a.id).collect::<Vec<_>>(), [theirs.id]);
    }
}

#[test]
fn contacts_follow_their_account_and_branch_region() {
    for w in world() {
        let shop =
            w.db.write_blocking(|tx| {
                accounts::create(tx, &w.manager, NewAccount { branch_id: Some(w.seoul), ..account("롯데마트 잠실점") })
            })
            .unwrap();
        // In the Seoul branch, national numbers are Korean.
        let c =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.manager,
                    NewContact {
                        name: "김민준".into(),
                        account_id: Some(shop.id),
                        phone: Some("02-123-4567".into()),
                        email: Some("MinJun@Lotte.co.kr".into()),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!((c.branch_id, c.phone.as_deref()), (w.seoul, Some("+8221234567")));
        assert_eq!(c.email.as_deref(), Some("minjun@lotte.co.kr"));
        let list =
            w.db.read_blocking(|tx| {
                contacts::list(
                    tx,
                    &w.manager,
                    &ContactFilter { account_id: Some(shop.id), ..Default::default() },
                    &PageRequest::default(),
                )
            })
            .unwrap();
        assert_eq!(list.items.len(), 1);
        assert!(w.db.read_blocking(|tx| contacts::get(tx, &w.rep, c.id)).is_err());
        let moved =
            w.db.write_blocking(|tx| {
                contacts::update(
                    tx,
                    &w.manager,
                    c.id,
                    ContactPatch { name: Some("김민준 과장".into()), version: Some(1), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!(moved.version, 2);
        w.db.write_blocking(|tx| contacts::delete(tx, &w.manager, c.id)).unwrap();
        assert!(w.db.read_blocking(|tx| contacts::get(tx, &w.manager, c.id)).is_err());
        w.db.write_blocking(|tx| contacts::restore(tx, &w.manager, c.id)).unwrap();
    }
}

#[test]
fn custom_fields_are_validated_on_every_write() {
    for w in world() {
        let (category, fields) =
            w.db.write_blocking(|tx| {
                let category = fields::create_category(tx, &w.admin, NewCategory { name: "Department store".into() })?;
                let mut made = Vec::new();
                for (key, ty, required, options) in [
                    ("floors", "number", true, None),
                    ("tier", "select", false, Some(vec!["A".to_owned(), "B".to_owned()])),
                    ("opened", "date", false, None),
                    ("hotline", "phone", false, None),
                ] {
                    made.push(fields::create_field(
                        tx,
                        &w.admin,
                        NewCustomField {
                            category_id: category.id,
                            key: key.into(),
                            label: key.into(),
                            field_type: ty.into(),
                            required,
                            options,
                            ..Default::default()
                        },
                    )?);
                }
                Ok::<_, Error>((category, made))
            })
            .unwrap();
        assert_eq!(fields.len(), 4);
        let listed =
            w.db.read_blocking(|tx| {
                fields::list_fields(
                    tx,
                    &w.rep,
                    &FieldFilter { category_id: Some(category.id), ..Default::default() },
                    &PageRequest::default(),
                )
            })
            .unwrap();
        assert_eq!(listed.items, fields);

        let before = count(&w.db, "accounts");
        let bad = NewAccount {
            category_id: Some(category.id),
            custom: custom(json!({"tier": "C", "opened": "yesterday", "colour": "red"})),
            ..account("新世界百货")
        };
        let e = w.db.write_blocking(|tx| accounts::create(tx, &w.rep, bad)).unwrap_err();
        assert_eq!(field_names(e), ["custom.colour", "custom.opened", "custom.tier", "custom.floors"]);
        assert_eq!(count(&w.db, "accounts"), before);

        let good = NewAccount {
            category_id: Some(category.id),
            custom: custom(json!({"floors": 7, "tier": "A", "hotline": "(021) 6123 4567"})),
            ..account("新世界百货")
        };
        let a = w.db.write_blocking(|tx| accounts::create(tx, &w.rep, good)).unwrap();
        assert_eq!(Value::Object(a.custom.clone()), json!({"floors": 7, "tier": "A", "hotline": "+862161234567"}));
        // Updates merge and re-validate; clearing a required value is refused.
        let e =
            w.db.write_blocking(|tx| {
                accounts::update(
                    tx,
                    &w.rep,
                    a.id,
                    AccountPatch { custom: custom(json!({"floors": null})), ..Default::default() },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["custom.floors"]);
        let b =
            w.db.write_blocking(|tx| {
                accounts::update(
                    tx,
                    &w.rep,
                    a.id,
                    AccountPatch { custom: custom(json!({"tier": null, "floors": 8})), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!(Value::Object(b.custom), json!({"floors": 8, "hotline": "+862161234567"}));
        // Without a category there are no custom fields at all.
        let e =
            w.db.write_blocking(|tx| {
                accounts::create(tx, &w.rep, NewAccount { custom: custom(json!({"floors": 1})), ..account("x") })
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["custom.floors"]);
        // Definitions themselves are checked.
        let e =
            w.db.write_blocking(|tx| {
                fields::create_field(
                    tx,
                    &w.admin,
                    NewCustomField {
                        category_id: Id(42),
                        key: "Bad Key".into(),
                        label: " ".into(),
                        field_type: "colour".into(),
                        options: Some(vec!["x".into()]),
                        ..Default::default()
                    },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["category_id", "key", "label", "type", "options"]);
    }
}

#[test]
fn duplicates_by_phone_or_email_within_scope_are_reported() {
    for w in world() {
        let first =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.rep,
                    NewAccount {
                        phone: Some("13800138000".into()),
                        email: Some("a@gome.cn".into()),
                        ..account("Gome A")
                    },
                )
            })
            .unwrap();
        let second =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.rep,
                    NewAccount {
                        phone: Some("+86 138-0013-8000".into()),
                        email: Some("A@GOME.CN".into()),
                        ..account("Gome B")
                    },
                )
            })
            .unwrap();
        let candidates = second.duplicate_candidates.unwrap();
        assert_eq!(candidates.len(), 1);
        assert_eq!(
            (candidates[0].id, candidates[0].matched_on.clone()),
            (first.id, vec!["email".into(), "phone".into()])
        );
        // Another rep's record is not revealed; the record is still created.
        let third =
            w.db.write_blocking(|tx| {
                accounts::create(tx, &w.rep2, NewAccount { phone: Some("138 0013 8000".into()), ..account("Gome C") })
            })
            .unwrap();
        assert_eq!(third.duplicate_candidates, Some(vec![]));
        let contact =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact { name: "王芳".into(), email: Some("wf@x.cn".into()), ..Default::default() },
                )?;
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact { name: "王芳 2".into(), email: Some("WF@x.cn".into()), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!(contact.duplicate_candidates.unwrap()[0].matched_on, ["email"]);
    }
}

#[test]
fn bad_input_names_every_field_and_writes_nothing() {
    for w in world() {
        let before = (count(&w.db, "accounts"), count(&w.db, "audit_log"));
        let e =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.rep,
                    NewAccount {
                        name: " ".into(),
                        category_id: Some(Id(7)),
                        parent_id: Some(Id(8)),
                        status: Some("asleep".into()),
                        email: Some("nope".into()),
                        phone: Some("12345".into()),
                        website: Some("gome".into()),
                        branch_id: Some(Id(9)),
                        ..Default::default()
                    },
                )
            })
            .unwrap_err();
        assert_eq!(
            field_names(e),
            ["name", "status", "category_id", "parent_id", "branch_id", "email", "phone", "website"]
        );
        let e =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact {
                        name: "".into(),
                        account_id: Some(Id(1)),
                        email: Some("x".into()),
                        phone: Some("call me".into()),
                        ..Default::default()
                    },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["name", "account_id", "email", "phone"]);
        assert_eq!(before, (count(&w.db, "accounts"), count(&w.db, "audit_log")));
        // Permissions: service agents only read customers.
        let service = Principal { permissions: ["customers.*.read".to_owned()].into(), ..w.manager.clone() };
        let denied = w.db.write_blocking(|tx| accounts::create(tx, &service, account("x")));
        assert!(matches!(denied, Err(Error::Forbidden(p)) if p == "customers.accounts.create"));
    }
}

#[test]
fn lists_page_by_cursor() {
    for w in world() {
        for i in 0..5 {
            w.db.write_blocking(|tx| accounts::create(tx, &w.rep, account(&format!("A{i}")))).unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = PageRequest::parse(Some(2), cursor.as_deref()).unwrap();
            let got = w.db.read_blocking(|tx| accounts::list(tx, &w.rep, &AccountFilter::default(), &page)).unwrap();
            seen.extend(got.items.into_iter().map(|a| a.name));
            match got.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ["A0", "A1", "A2", "A3", "A4"]);
    }
}

#[test]
fn account_hierarchy_refuses_cycles() {
    for w in world() {
        let hq = w.db.write_blocking(|tx| accounts::create(tx, &w.manager, account("Chain HQ"))).unwrap();
        let store =
            w.db.write_blocking(|tx| {
                accounts::create(tx, &w.manager, NewAccount { parent_id: Some(hq.id), ..account("Store 1") })
            })
            .unwrap();
        assert_eq!(store.parent_id, Some(hq.id));
        for (id, parent) in [(hq.id, store.id), (hq.id, hq.id)] {
            let patch = AccountPatch { parent_id: Some(parent), ..Default::default() };
            let e = w.db.write_blocking(|tx| accounts::update(tx, &w.manager, id, patch)).unwrap_err();
            assert_eq!(field_names(e), ["parent_id"]);
        }
        // A rep cannot hang an account below one they do not see.
        let e =
            w.db.write_blocking(|tx| {
                accounts::create(tx, &w.rep, NewAccount { parent_id: Some(hq.id), ..account("Store 2") })
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["parent_id"]);
    }
}

#[test]
fn duplicate_candidates_are_found_without_writing() {
    for w in world() {
        let existing =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.rep,
                    NewAccount {
                        phone: Some("138 0013 8000".into()),
                        email: Some("Buyer@Gome.cn".into()),
                        ..account("国美")
                    },
                )
            })
            .unwrap();
        let before = count(&w.db, "accounts");
        let audit_before = count(&w.db, "audit_log");
        let find = |who: &Principal, email: Option<&str>, phone: Option<&str>| {
            w.db.read_blocking(|tx| {
                customers::duplicate_candidates(tx, who, customers::RecordType::Account, email, phone, None)
            })
            .unwrap()
        };
        // Typed differently, normalised the same way a create would.
        let found = find(&w.rep, None, Some("+86 138-0013-8000"));
        assert_eq!(found.iter().map(|d| d.id).collect::<Vec<_>>(), [existing.id]);
        assert_eq!(found[0].matched_on, ["phone"]);
        assert_eq!(find(&w.rep, Some(" buyer@gome.CN "), Some("13800138000"))[0].matched_on, ["email", "phone"]);
        // Nothing given, nothing parseable, or outside the caller's scope: none.
        assert!(find(&w.rep, None, None).is_empty());
        assert!(find(&w.rep, Some("not an address"), Some("abc")).is_empty());
        assert!(find(&w.rep2, Some("buyer@gome.cn"), None).is_empty());
        assert_eq!(find(&w.manager, Some("buyer@gome.cn"), None).len(), 1);
        assert_eq!((count(&w.db, "accounts"), count(&w.db, "audit_log")), (before, audit_before));
    }
}

#[test]
fn children_are_the_live_accounts_directly_below_in_scope() {
    for w in world() {
        let (hq, kept, gone) =
            w.db.write_blocking(|tx| {
                let hq = accounts::create(tx, &w.manager, account("Chain HQ"))?;
                let below = |tx: &mut kernel::Tx<'_>, name: &str, parent: Id| {
                    accounts::create(tx, &w.manager, NewAccount { parent_id: Some(parent), ..account(name) })
                };
                let b = below(tx, "Store B", hq.id)?;
                let a = below(tx, "Store A", hq.id)?;
                let gone = below(tx, "Store C", hq.id)?;
                accounts::delete(tx, &w.manager, gone.id)?;
                below(tx, "Counter in store A", a.id)?;
                Ok::<_, Error>((hq.id, vec![a.id, b.id], gone.id))
            })
            .unwrap();
        let children = w.db.read_blocking(|tx| accounts::children(tx, &w.manager, hq, 10)).unwrap();
        assert_eq!(children.iter().map(|a| a.id).collect::<Vec<_>>(), kept, "by name, live, one level");
        assert!(w.db.read_blocking(|tx| accounts::children(tx, &w.rep, hq, 10)).unwrap().is_empty());
        assert!(w.db.read_blocking(|tx| accounts::children(tx, &w.west, hq, 10)).unwrap().is_empty());
        // The deleted one waits in the caller's deleted list, and only there.
        let page = PageRequest::default();
        let bin = w.db.read_blocking(|tx| accounts::list_deleted(tx, &w.manager, &page)).unwrap();
        assert_eq!(bin.items.iter().map(|a| a.id).collect::<Vec<_>>(), [gone]);
        assert!(w.db.read_blocking(|tx| accounts::list_deleted(tx, &w.west, &page)).unwrap().items.is_empty());
        assert!(w.db.read_blocking(|tx| accounts::list_deleted(tx, &w.rep, &page)).unwrap().items.is_empty());
        assert!(w.db.read_blocking(|tx| contacts::list_deleted(tx, &w.admin, &page)).unwrap().items.is_empty());
    }
}
