#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Store tests of the richer customer model: account and contact details, member fields,
//! tags, list filters and sorts, saved views, and the category/field/activity API gaps.
//! Every test runs on SQLite and (when configured) PostgreSQL.
mod common;

use chrono::NaiveDate;
use customers::accounts::{self, AccountFilter, AccountPatch, NewAccount};
use customers::activities::{self, ActivityPatch, NewActivity};
use customers::contacts::{self, ContactFilter, ContactPatch, NewContact};
use customers::details::Address;
use customers::fields::{self, CategoryPatch, CustomFieldPatch, NewCategory, NewCustomField};
use customers::views::{self, NewSavedView, SavedViewPatch};
use kernel::identity::passwords;
use kernel::paging::{Page, PageRequest};
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Error, Id, Principal, Tx};
use serde_json::{Value, json};

use common::{count, field_names};

struct World {
    db: TestDb,
    admin: Principal,
    /// Manager of the east branch (scope: its subtree, which holds Seoul).
    manager: Principal,
    /// A sales rep of the east branch (scope: own records).
    rep: Principal,
    east: Id,
    seoul: Id,
    west: Id,
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
            let mk = |tx: &mut Tx<'_>, name: &str, parent: Id, region: &str| {
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
    World { db, admin, manager, rep, east, seoul, west }
}

fn address(kind: &str, country: &str) -> Address {
    Address {
        kind: kind.into(),
        line1: " 1 Nanjing Rd ".into(),
        city: "Shanghai".into(),
        country: country.into(),
        ..Default::default()
    }
}

fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
    q.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn account_details_are_normalised_stored_exactly_and_audited() {
    for w in world() {
        let a =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.rep,
                    NewAccount {
                        name: "国美电器".into(),
                        region: Some(" East China ".into()),
                        addresses: Some(vec![address("billing", "cn"), address("store", "CN")]),
                        phones: Some(vec!["010 6512 3456".into(), "+82 2-123-4567".into(), "(010) 65123456".into()]),
                        emails: Some(vec!["Pay@Gome.CN".into(), "pay@gome.cn".into()]),
                        credit_limit: Some("50000.5".into()),
                        payment_terms_days: Some(30),
                        tags: Some(vec![" VIP ".into(), "north".into(), "vip".into()]),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!(a.region.as_deref(), Some("East China"));
        assert_eq!(a.addresses[0].country, "CN");
        assert_eq!(a.addresses[0].line1, "1 Nanjing Rd");
        assert_eq!(a.phones.len(), 2, "the same number twice is kept once");
        assert_eq!((a.phones[0].e164.as_str(), a.phones[0].raw.as_str()), ("+861065123456", "010 6512 3456"));
        assert_eq!(a.phones[1].e164, "+8221234567");
        assert_eq!(a.emails, ["pay@gome.cn"]);
        assert_eq!(a.credit_limit.as_deref(), Some("50000.50"));
        assert_eq!(a.payment_terms_days, Some(30));
        assert_eq!(a.tags, ["vip", "north"]);
        let read = w.db.read_blocking(|tx| accounts::get(tx, &w.rep, a.id)).unwrap();
        assert_eq!(read, accounts::Account { duplicate_candidates: None, ..a.clone() });
        // Money is stored in minor units, exactly.
        let minor =
            w.db.read_blocking(|tx| {
                tx.query_sql::<i64>("SELECT credit_limit_minor FROM accounts WHERE id = $1", &[a.id.get().into()])
            })
            .unwrap();
        assert_eq!(minor, [5_000_050]);
        // The extra e-mail is searchable.
        let found =
            w.db.read_blocking(|tx| {
                let f = AccountFilter { q: Some("pay@gome".into()), ..Default::default() };
                accounts::list(tx, &w.rep, &f, &PageRequest::default())
            })
            .unwrap();
        assert_eq!(found.items.len(), 1);

        // A patch clears and replaces; the audit log has the old and new values.
        let b =
            w.db.write_blocking(|tx| {
                accounts::update(
                    tx,
                    &w.rep,
                    a.id,
                    AccountPatch {
                        credit_limit: Some("".into()),
                        payment_terms_days: Some(None),
                        tags: Some(vec!["north".into()]),
                        addresses: Some(vec![]),
                        version: Some(1),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!((b.credit_limit, b.payment_terms_days, b.version), (None, None, 2));
        assert_eq!(b.tags, ["north"]);
        assert!(b.addresses.is_empty());
        let tag_rows =
            w.db.read_blocking(|tx| {
                tx.query_sql::<String>("SELECT tag FROM record_tags WHERE record_id = $1", &[a.id.get().into()])
            })
            .unwrap();
        assert_eq!(tag_rows, ["north"]);
        let history =
            w.db.read_blocking(|tx| kernel::audit::history(tx, "account", a.id, &PageRequest::default())).unwrap();
        let changes = &history.items.iter().find(|e| e.action == "update").unwrap().changes;
        assert_eq!(changes["credit_limit"], json!({"old": "50000.50", "new": null}));
    }
}

#[test]
fn bad_account_details_are_named_and_nothing_is_written() {
    for w in world() {
        let before = count(&w.db, "accounts");
        let err =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.rep,
                    NewAccount {
                        name: "Bad".into(),
                        addresses: Some(vec![address("store", "CN"), address("home", "XX")]),
                        phones: Some(vec!["12345".into()]),
                        emails: Some(vec!["nope".into()]),
                        credit_limit: Some("12.345".into()),
                        payment_terms_days: Some(400),
                        tags: Some(vec!["x".repeat(41)]),
                        ..Default::default()
                    },
                )
            })
            .unwrap_err();
        let mut names = field_names(err);
        names.sort();
        assert_eq!(
            names,
            [
                "addresses[1].country",
                "addresses[1].kind",
                "credit_limit",
                "emails[0]",
                "payment_terms_days",
                "phones[0]",
                "tags"
            ]
        );
        assert_eq!(count(&w.db, "accounts"), before);
        assert_eq!(count(&w.db, "record_tags"), 0);
        let too_many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        let err =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.rep,
                    NewAccount { name: "T".into(), tags: Some(too_many), ..Default::default() },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(err), ["tags"]);
    }
}

#[test]
fn members_have_unique_cards_validated_fields_and_their_own_category() {
    for w in world() {
        let (member_category, chain) =
            w.db.write_blocking(|tx| {
                let member = fields::create_category(tx, &w.admin, NewCategory { name: "Individual member".into() })?;
                let chain = fields::create_category(tx, &w.admin, NewCategory { name: "Chain".into() })?;
                for (category, key, options) in
                    [(member.id, "level", ["gold", "silver"]), (chain.id, "role", ["buyer", "boss"])]
                {
                    fields::create_field(
                        tx,
                        &w.admin,
                        NewCustomField {
                            category_id: category,
                            record_type: Some("contact".into()),
                            key: key.into(),
                            label: key.into(),
                            field_type: "select".into(),
                            options: Some(options.map(String::from).to_vec()),
                            ..Default::default()
                        },
                    )?;
                }
                Ok::<_, Error>((member.id, chain.id))
            })
            .unwrap();
        let shop =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.rep,
                    NewAccount { name: "Gome".into(), category_id: Some(chain), ..Default::default() },
                )
            })
            .unwrap();
        // A member who is also a buyer at an account: her own category's fields apply.
        let m =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact {
                        name: "王芳".into(),
                        account_id: Some(shop.id),
                        category_id: Some(member_category),
                        is_member: Some(true),
                        card_no: Some(" M-0001 ".into()),
                        birthday: NaiveDate::from_ymd_opt(1990, 5, 17),
                        gender: Some("female".into()),
                        household_size: Some(3),
                        member_since: NaiveDate::from_ymd_opt(2020, 1, 1),
                        title: Some("Buyer".into()),
                        custom: json!({"level": "gold"}).as_object().cloned(),
                        tags: Some(vec!["VIP".into()]),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!((m.is_member, m.card_no.as_deref(), m.status.as_str()), (true, Some("M-0001"), "active"));
        assert_eq!(m.custom["level"], "gold");
        assert_eq!(m.tags, ["vip"]);
        assert_eq!(w.db.read_blocking(|tx| contacts::get(tx, &w.rep, m.id)).unwrap().birthday, m.birthday);
        // Without an own category, the account category's fields apply.
        let buyer = w.db.write_blocking(|tx| {
            contacts::create(
                tx,
                &w.rep,
                NewContact {
                    name: "Lee".into(),
                    account_id: Some(shop.id),
                    custom: json!({"level": "gold"}).as_object().cloned(),
                    ..Default::default()
                },
            )
        });
        assert_eq!(field_names(buyer.unwrap_err()), ["custom.level"]);
        let lee =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact {
                        name: "Lee".into(),
                        account_id: Some(shop.id),
                        custom: json!({"role": "boss"}).as_object().cloned(),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!(lee.custom["role"], "boss");
        // Once the account category's field is deleted, the list no longer shows its value.
        w.db.write_blocking(|tx| {
            let filter = fields::FieldFilter { category_id: Some(chain), record_type: None };
            let role = fields::list_fields(tx, &w.admin, &filter, &PageRequest::default())?.items[0].id;
            fields::delete_field(tx, &w.admin, role)
        })
        .unwrap();
        let listed =
            w.db.read_blocking(|tx| {
                let filter = ContactFilter { account_id: Some(shop.id), ..Default::default() };
                contacts::list(tx, &w.rep, &filter, &PageRequest::default())
            })
            .unwrap();
        let shown: Vec<(String, usize)> = listed.items.iter().map(|c| (c.name.clone(), c.custom.len())).collect();
        assert_eq!(shown, [("王芳".to_owned(), 1), ("Lee".to_owned(), 0)]);
        // The card number is unique among live contacts, and the clash names it.
        let clash = w.db.write_blocking(|tx| {
            contacts::create(
                tx,
                &w.rep,
                NewContact { name: "Other".into(), card_no: Some("M-0001".into()), ..Default::default() },
            )
        });
        match clash.unwrap_err() {
            Error::Conflict { field, .. } => assert_eq!(field.as_deref(), Some("card_no")),
            other => panic!("{other:?}"),
        }
        let before = count(&w.db, "contacts");
        let bad = w.db.write_blocking(|tx| {
            contacts::create(
                tx,
                &w.rep,
                NewContact {
                    name: "Bad".into(),
                    status: Some("gone".into()),
                    gender: Some("x".into()),
                    household_size: Some(0),
                    birthday: NaiveDate::from_ymd_opt(2999, 1, 1),
                    addresses: Some(vec![address("office", "ZZ")]),
                    category_id: Some(Id(42)),
                    ..Default::default()
                },
            )
        });
        let mut names = field_names(bad.unwrap_err());
        names.sort();
        assert_eq!(names, ["addresses[0].country", "birthday", "category_id", "gender", "household_size", "status"]);
        assert_eq!(count(&w.db, "contacts"), before);
        // After the member is deleted, the card can be given again.
        w.db.write_blocking(|tx| contacts::delete(tx, &w.rep, m.id)).unwrap();
        let again =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact { name: "New".into(), card_no: Some("M-0001".into()), ..Default::default() },
                )
            })
            .unwrap();
        // Restoring the old member would give the card twice: refused, naming it.
        let e = w.db.write_blocking(|tx| contacts::restore(tx, &w.rep, m.id)).unwrap_err();
        assert!(matches!(e, Error::Conflict { field: Some(ref f), .. } if f == "card_no"), "{e:?}");
        // The card number is searchable.
        let found =
            w.db.read_blocking(|tx| {
                let f = ContactFilter { q: Some("M-0001".into()), ..Default::default() };
                contacts::list(tx, &w.rep, &f, &PageRequest::default())
            })
            .unwrap();
        assert_eq!(found.items.iter().map(|c| c.id).collect::<Vec<_>>(), [again.id]);
        // ...and a patch onto a live card clashes too.
        let other =
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact { name: "Two".into(), card_no: Some("M-0002".into()), ..Default::default() },
                )
            })
            .unwrap();
        let clash = w.db.write_blocking(|tx| {
            contacts::update(
                tx,
                &w.rep,
                other.id,
                ContactPatch { card_no: Some("M-0001".into()), ..Default::default() },
            )
        });
        assert!(matches!(clash, Err(Error::Conflict { field: Some(ref f), .. }) if f == "card_no"));
        // Patching the member fields and clearing them.
        let patched =
            w.db.write_blocking(|tx| {
                contacts::update(
                    tx,
                    &w.rep,
                    again.id,
                    ContactPatch {
                        status: Some("inactive".into()),
                        household_size: Some(Some(20)),
                        birthday: Some(None),
                        card_no: Some("".into()),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!((patched.status.as_str(), patched.household_size, patched.card_no), ("inactive", Some(20), None));
    }
}

/// Walks every page of a list, returning the names in order.
fn walk<T>(mut page: impl FnMut(&PageRequest) -> Page<T>, name: impl Fn(&T) -> String) -> Vec<String> {
    let mut out = Vec::new();
    let mut request = PageRequest { limit: 2, cursor: None };
    loop {
        let p = page(&request);
        out.extend(p.items.iter().map(&name));
        match p.next_cursor {
            Some(c) => request.cursor = Some(kernel::paging::Cursor::decode(&c).unwrap()),
            None => return out,
        }
    }
}

#[test]
fn lists_filter_by_branch_subtree_tag_status_and_custom_fields_and_sort_with_keyset_cursors() {
    for w in world() {
        let category =
            w.db.write_blocking(|tx| {
                let c = fields::create_category(tx, &w.admin, NewCategory { name: "Chain".into() })?;
                let field = |key: &str, t: &str, options: Option<Vec<String>>| NewCustomField {
                    category_id: c.id,
                    key: key.into(),
                    label: key.into(),
                    field_type: t.into(),
                    options,
                    ..Default::default()
                };
                fields::create_field(tx, &w.admin, field("stores", "number", None))?;
                fields::create_field(tx, &w.admin, field("credit", "money", None))?;
                fields::create_field(tx, &w.admin, field("since", "date", None))?;
                fields::create_field(tx, &w.admin, field("vip", "boolean", None))?;
                fields::create_field(tx, &w.admin, field("hotline", "phone", None))?;
                fields::create_field(
                    tx,
                    &w.admin,
                    field("tier", "select", Some(vec!["gold".into(), "silver".into()])),
                )?;
                fields::create_field(
                    tx,
                    &w.admin,
                    field("lines", "multi_select", Some(vec!["tv".into(), "fridge".into()])),
                )?;
                Ok::<_, Error>(c.id)
            })
            .unwrap();
        // name, branch, status, tags, custom
        let rows: [(&str, Id, &str, &[&str], Value); 6] = [
            (
                "Delta",
                w.east,
                "active",
                &["vip"],
                json!({"stores": 12, "credit": {"amount": "100.50", "currency": "CNY"}, "since": "2020-01-01", "vip": true, "tier": "gold", "lines": ["tv"]}),
            ),
            (
                "alpha",
                w.seoul,
                "prospect",
                &["vip", "north"],
                json!({"stores": 3, "hotline": "+86 138 0013 8000", "since": "2023-06-01", "vip": false, "tier": "silver", "lines": ["tv", "fridge"]}),
            ),
            (
                "Charlie",
                w.west,
                "active",
                &[],
                json!({"stores": 40, "credit": {"amount": "99.99", "currency": "CNY"}, "lines": ["fridge"]}),
            ),
            ("Bravo", w.seoul, "inactive", &["north"], json!({})),
            ("Bravo", w.east, "active", &[], json!({"stores": 12})),
            ("Echo", w.east, "active", &["vip"], json!({"tier": "gold"})),
        ];
        for (name, branch, status, tags, custom) in &rows {
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.admin,
                    NewAccount {
                        name: (*name).into(),
                        category_id: Some(category),
                        branch_id: Some(*branch),
                        status: Some((*status).into()),
                        tags: Some(tags.iter().map(|t| (*t).to_owned()).collect()),
                        custom: custom.as_object().cloned(),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        }
        let names = |who: &Principal, q: &[(&str, &str)]| -> Vec<String> {
            let filter = AccountFilter::from_query(&pairs(q)).unwrap();
            let mut got = walk(
                |page| w.db.read_blocking(|tx| accounts::list(tx, who, &filter, page)).unwrap(),
                |a: &accounts::Account| a.name.clone(),
            );
            if filter.sort == Default::default() {
                got.sort();
            }
            got
        };
        assert_eq!(
            names(&w.admin, &[("branch_id", &w.east.to_string())]),
            ["Bravo", "Bravo", "Delta", "Echo", "alpha"]
        );
        assert_eq!(names(&w.admin, &[("branch_id", &w.seoul.to_string())]), ["Bravo", "alpha"]);
        assert_eq!(names(&w.admin, &[("tag", " VIP ")]), ["Delta", "Echo", "alpha"]);
        assert_eq!(names(&w.admin, &[("tag", "vip"), ("status", "active")]), ["Delta", "Echo"]);
        assert_eq!(names(&w.admin, &[("custom.stores", "12")]), ["Bravo", "Delta"]);
        assert_eq!(
            names(&w.admin, &[("custom.stores.gte", "10"), ("custom.stores.lte", "40")]),
            ["Bravo", "Charlie", "Delta"]
        );
        assert_eq!(names(&w.admin, &[("custom.credit.gte", "100")]), ["Delta"]);
        assert_eq!(names(&w.admin, &[("custom.credit.lte", "100.00")]), ["Charlie"]);
        assert_eq!(names(&w.admin, &[("custom.since.gte", "2021-01-01")]), ["alpha"]);
        assert_eq!(names(&w.admin, &[("custom.vip", "true")]), ["Delta"]);
        assert_eq!(names(&w.admin, &[("custom.vip", "false")]), ["alpha"]);
        assert_eq!(names(&w.admin, &[("custom.tier", "gold")]), ["Delta", "Echo"]);
        assert_eq!(names(&w.admin, &[("custom.hotline", "138-0013-8000")]), ["alpha"]);
        assert_eq!(names(&w.admin, &[("custom.lines", "fridge")]), ["Charlie", "alpha"]);
        assert_eq!(
            names(&w.admin, &[("category_id", &category.to_string()), ("custom.lines", "tv")]),
            ["Delta", "alpha"]
        );
        // The manager of the east branch does not see the west one's account.
        assert_eq!(names(&w.manager, &[("custom.lines", "fridge")]), ["alpha"]);

        // Sorts walk every row once in order, whatever the page size.
        let mut by_name: Vec<String> = rows.iter().map(|r| r.0.to_owned()).collect();
        let sorted = names(&w.admin, &[("sort", "name")]);
        assert_eq!(sorted.len(), 6);
        // The backend's collation orders the names; equal names sit together (by id).
        let bravo = sorted.iter().position(|n| n == "Bravo").unwrap();
        assert_eq!(sorted[bravo + 1], "Bravo", "{sorted:?}");
        let mut desc = names(&w.admin, &[("sort", "-name")]);
        desc.reverse();
        assert_eq!(desc, sorted);
        by_name.sort();
        let mut got = sorted.clone();
        got.sort();
        assert_eq!(got, by_name);
        let created: Vec<String> = rows.iter().map(|r| r.0.to_owned()).collect();
        assert_eq!(names(&w.admin, &[("sort", "created_at")]), created);
        let mut newest_first = created.clone();
        newest_first.reverse();
        assert_eq!(names(&w.admin, &[("sort", "-created_at")]), newest_first);
        assert_eq!(names(&w.admin, &[("sort", "-updated_at")]), newest_first);

        // Unknown filters, sorts and custom keys name the parameter.
        let err = |q: &[(&str, &str)]| -> Vec<String> {
            let filter = AccountFilter::from_query(&pairs(q));
            let e = match filter {
                Err(e) => e,
                Ok(f) => {
                    w.db.read_blocking(|tx| accounts::list(tx, &w.admin, &f, &PageRequest::default())).unwrap_err()
                }
            };
            field_names(e)
        };
        assert_eq!(err(&[("sort", "colour")]), ["sort"]);
        assert_eq!(err(&[("colour", "red")]), ["colour"]);
        assert_eq!(err(&[("custom.nope", "1")]), ["custom.nope"]);
        assert_eq!(err(&[("custom.stores", "many")]), ["custom.stores"]);
        assert_eq!(err(&[("custom.tier.gte", "gold")]), ["custom.tier.gte"]);
        assert_eq!(err(&[("branch_id", "999")]), ["branch_id"]);
        assert_eq!(err(&[("status", "gone")]), ["status"]);
        assert_eq!(err(&[("tag", "a"), ("tag", "b")]), ["tag"]);
        // A cursor of another sort is refused.
        let filter = AccountFilter::from_query(&pairs(&[("sort", "name")])).unwrap();
        let first =
            w.db.read_blocking(|tx| {
                accounts::list(tx, &w.admin, &AccountFilter::default(), &PageRequest { limit: 1, cursor: None })
            })
            .unwrap();
        let cursor = kernel::paging::Cursor::decode(&first.next_cursor.unwrap()).unwrap();
        let e =
            w.db.read_blocking(|tx| {
                accounts::list(tx, &w.admin, &filter, &PageRequest { limit: 1, cursor: Some(cursor.clone()) })
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["cursor"]);
        // The filter round-trips through its query string.
        let f = AccountFilter::from_query(&pairs(&[("tag", "vip"), ("sort", "-name"), ("custom.stores.gte", "3")]))
            .unwrap();
        assert_eq!(AccountFilter::from_query(&f.to_query()).unwrap(), f);

        // Tags in use, with counts, by prefix and within the caller's scope.
        let tags = w.db.read_blocking(|tx| customers::tags::list(tx, &w.admin, "account", None, None)).unwrap();
        let tags: Vec<(String, i64)> = tags.into_iter().map(|t| (t.tag, t.count)).collect();
        assert_eq!(tags, [("vip".to_owned(), 3), ("north".to_owned(), 2)]);
        let tags = w.db.read_blocking(|tx| customers::tags::list(tx, &w.admin, "account", Some("No"), None)).unwrap();
        assert_eq!(tags.len(), 1);
        let tags = w.db.read_blocking(|tx| customers::tags::list(tx, &w.rep, "account", None, None)).unwrap();
        assert!(tags.is_empty(), "the rep owns none of them");
        let e = w.db.read_blocking(|tx| customers::tags::list(tx, &w.admin, "lead", None, None)).unwrap_err();
        assert_eq!(field_names(e), ["record_type"]);
    }
}

#[test]
fn contact_lists_filter_members_and_keep_the_sort_across_pages() {
    for w in world() {
        for (i, name) in ["김민준", "王芳", "Anna", "Bob", "王伟"].iter().enumerate() {
            w.db.write_blocking(|tx| {
                contacts::create(
                    tx,
                    &w.rep,
                    NewContact {
                        name: (*name).into(),
                        is_member: Some(i % 2 == 0),
                        status: Some(if i == 4 { "inactive" } else { "active" }.into()),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        }
        let names = |q: &[(&str, &str)]| -> Vec<String> {
            let filter = ContactFilter::from_query(&pairs(q)).unwrap();
            walk(
                |page| w.db.read_blocking(|tx| contacts::list(tx, &w.rep, &filter, page)).unwrap(),
                |c: &contacts::Contact| c.name.clone(),
            )
        };
        assert_eq!(names(&[("is_member", "true")]), ["김민준", "Anna", "王伟"]);
        assert_eq!(names(&[("is_member", "true"), ("status", "active")]), ["김민준", "Anna"]);
        let asc = names(&[("sort", "name")]);
        let mut all = asc.clone();
        all.sort();
        assert_eq!(all, ["Anna", "Bob", "王伟", "王芳", "김민준"]);
        let mut desc = names(&[("sort", "-name")]);
        desc.reverse();
        assert_eq!(desc, asc);
        let e = ContactFilter::from_query(&pairs(&[("is_member", "maybe")])).unwrap_err();
        assert_eq!(field_names(e), ["is_member"]);
    }
}

#[test]
fn saved_views_are_checked_owned_and_shared() {
    for w in world() {
        let new = |query: &str, shared: bool| NewSavedView {
            name: "VIPs".into(),
            record_type: "account".into(),
            query: query.into(),
            shared,
        };
        let mine = w.db.write_blocking(|tx| views::create(tx, &w.rep, new("tag=vip&sort=-updated_at", false))).unwrap();
        let shared = w.db.write_blocking(|tx| views::create(tx, &w.manager, new("?status=active", true))).unwrap();
        let private = w.db.write_blocking(|tx| views::create(tx, &w.manager, new("", false))).unwrap();
        assert_eq!(shared.query, "status=active");
        let listed = |who: &Principal| -> Vec<Id> {
            w.db.read_blocking(|tx| views::list(tx, who, None, &PageRequest::default()))
                .unwrap()
                .items
                .iter()
                .map(|v| v.id)
                .collect()
        };
        assert_eq!(listed(&w.rep), [mine.id, shared.id]);
        assert_eq!(listed(&w.manager), [shared.id, private.id]);
        // Bad queries are refused naming `query` and the parameter.
        for bad in ["sort=colour", "custom.nope=1", "colour=red", "limit=5", "q=%zz"] {
            let e = w.db.write_blocking(|tx| views::create(tx, &w.rep, new(bad, false))).unwrap_err();
            assert_eq!(field_names(e), ["query"], "{bad}");
        }
        // Only the owner changes or deletes a view.
        let e = w.db.write_blocking(|tx| {
            views::update(tx, &w.rep, shared.id, SavedViewPatch { name: Some("Mine".into()), ..Default::default() })
        });
        assert!(matches!(e, Err(Error::NotFound(_))));
        assert!(matches!(w.db.write_blocking(|tx| views::delete(tx, &w.rep, shared.id)), Err(Error::NotFound(_))));
        assert!(matches!(w.db.read_blocking(|tx| views::get(tx, &w.rep, private.id)), Err(Error::NotFound(_))));
        let renamed =
            w.db.write_blocking(|tx| {
                views::update(
                    tx,
                    &w.rep,
                    mine.id,
                    SavedViewPatch {
                        query: Some("tag=north".into()),
                        shared: Some(true),
                        version: Some(1),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!((renamed.query.as_str(), renamed.shared, renamed.version), ("tag=north", true, 2));
        assert_eq!(listed(&w.manager), [mine.id, shared.id, private.id]);
        w.db.write_blocking(|tx| views::delete(tx, &w.rep, mine.id)).unwrap();
        assert_eq!(listed(&w.rep), [shared.id]);
    }
}

#[test]
fn categories_and_fields_can_be_read_changed_and_deleted() {
    for w in world() {
        let (category, field, tier) =
            w.db.write_blocking(|tx| {
                let c = fields::create_category(tx, &w.admin, NewCategory { name: "Chain".into() })?;
                let f = |key: &str, t: &str, options: Option<Vec<String>>| NewCustomField {
                    category_id: c.id,
                    key: key.into(),
                    label: key.into(),
                    field_type: t.into(),
                    options,
                    ..Default::default()
                };
                let stores = fields::create_field(tx, &w.admin, f("stores", "number", None))?;
                let tier = fields::create_field(tx, &w.admin, f("tier", "select", Some(vec!["gold".into()])))?;
                Ok::<_, Error>((c, stores, tier))
            })
            .unwrap();
        let renamed =
            w.db.write_blocking(|tx| {
                fields::update_category(
                    tx,
                    &w.admin,
                    category.id,
                    CategoryPatch { name: Some("Chains".into()), version: Some(1) },
                )
            })
            .unwrap();
        assert_eq!((renamed.name.as_str(), renamed.version), ("Chains", 2));
        assert!(matches!(
            w.db.write_blocking(|tx| fields::update_category(tx, &w.rep, category.id, CategoryPatch::default())),
            Err(Error::Forbidden(_))
        ));
        // Options can be added, not removed.
        let added =
            w.db.write_blocking(|tx| {
                fields::update_field(
                    tx,
                    &w.admin,
                    tier.id,
                    CustomFieldPatch { options: Some(vec!["gold".into(), "silver".into()]), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!(added.options, ["gold", "silver"]);
        let e =
            w.db.write_blocking(|tx| {
                fields::update_field(
                    tx,
                    &w.admin,
                    tier.id,
                    CustomFieldPatch { options: Some(vec!["silver".into()]), ..Default::default() },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["options"]);
        // The type changes while no record holds a value, and not after.
        let text =
            w.db.write_blocking(|tx| {
                fields::update_field(
                    tx,
                    &w.admin,
                    field.id,
                    CustomFieldPatch { field_type: Some("text".into()), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!(text.field_type, "text");
        let a =
            w.db.write_blocking(|tx| {
                accounts::create(
                    tx,
                    &w.admin,
                    NewAccount {
                        name: "Gome".into(),
                        category_id: Some(category.id),
                        custom: json!({"stores": "many", "tier": "silver"}).as_object().cloned(),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        let e =
            w.db.write_blocking(|tx| {
                fields::update_field(
                    tx,
                    &w.admin,
                    field.id,
                    CustomFieldPatch { field_type: Some("number".into()), ..Default::default() },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["type"]);
        // A deleted field's value is kept but no longer shown or validated.
        w.db.write_blocking(|tx| fields::delete_field(tx, &w.admin, field.id)).unwrap();
        assert!(matches!(w.db.read_blocking(|tx| fields::get_field(tx, &w.admin, field.id)), Err(Error::NotFound(_))));
        let read = w.db.read_blocking(|tx| accounts::get(tx, &w.admin, a.id)).unwrap();
        assert_eq!(read.custom, *json!({"tier": "silver"}).as_object().unwrap());
        let stored =
            w.db.read_blocking(|tx| {
                tx.query_sql::<Value>("SELECT custom FROM accounts WHERE id = $1", &[a.id.get().into()])
            })
            .unwrap();
        assert_eq!(stored[0]["stores"], "many");
        let patched =
            w.db.write_blocking(|tx| {
                accounts::update(
                    tx,
                    &w.admin,
                    a.id,
                    AccountPatch { custom: json!({"tier": "gold"}).as_object().cloned(), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!(patched.custom, *json!({"tier": "gold"}).as_object().unwrap());
        let stored =
            w.db.read_blocking(|tx| {
                tx.query_sql::<Value>("SELECT custom FROM accounts WHERE id = $1", &[a.id.get().into()])
            })
            .unwrap();
        assert_eq!(stored[0], json!({"stores": "many", "tier": "gold"}), "the hidden value is kept");
        // A `null` drops the hidden value; another unknown key is still refused.
        let e =
            w.db.write_blocking(|tx| {
                accounts::update(
                    tx,
                    &w.admin,
                    a.id,
                    AccountPatch { custom: json!({"colour": "red"}).as_object().cloned(), ..Default::default() },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["custom.colour"]);
        w.db.write_blocking(|tx| {
            accounts::update(
                tx,
                &w.admin,
                a.id,
                AccountPatch { custom: json!({"stores": null}).as_object().cloned(), ..Default::default() },
            )
        })
        .unwrap();
        let stored =
            w.db.read_blocking(|tx| {
                tx.query_sql::<Value>("SELECT custom FROM accounts WHERE id = $1", &[a.id.get().into()])
            })
            .unwrap();
        assert_eq!(stored[0], json!({"tier": "gold"}));
        // A category in use cannot be deleted; an unused one can.
        let e = w.db.write_blocking(|tx| fields::delete_category(tx, &w.admin, category.id)).unwrap_err();
        assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
        let spare =
            w.db.write_blocking(|tx| fields::create_category(tx, &w.admin, NewCategory { name: "Spare".into() }))
                .unwrap();
        w.db.write_blocking(|tx| fields::delete_category(tx, &w.admin, spare.id)).unwrap();
        assert!(matches!(
            w.db.read_blocking(|tx| fields::get_category(tx, &w.admin, spare.id)),
            Err(Error::NotFound(_))
        ));
    }
}

#[test]
fn activities_move_between_records_in_scope_and_are_restorable() {
    for w in world() {
        let (gome, suning, gome_buyer, suning_buyer, others) =
            w.db.write_blocking(|tx| {
                let a = |tx: &mut Tx<'_>, name: &str| {
                    accounts::create(tx, &w.rep, NewAccount { name: name.into(), ..Default::default() })
                };
                let gome = a(tx, "Gome")?;
                let suning = a(tx, "Suning")?;
                let c = |tx: &mut Tx<'_>, account: Id| {
                    contacts::create(
                        tx,
                        &w.rep,
                        NewContact { name: "Buyer".into(), account_id: Some(account), ..Default::default() },
                    )
                };
                let gome_buyer = c(tx, gome.id)?;
                let suning_buyer = c(tx, suning.id)?;
                let others = accounts::create(
                    tx,
                    &w.admin,
                    NewAccount { name: "West shop".into(), branch_id: Some(w.west), ..Default::default() },
                )?;
                Ok::<_, Error>((gome, suning, gome_buyer, suning_buyer, others))
            })
            .unwrap();
        let act =
            w.db.write_blocking(|tx| {
                activities::create(
                    tx,
                    &w.rep,
                    NewActivity {
                        kind: "call".into(),
                        contact_id: Some(gome_buyer.id),
                        subject: "Price".into(),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!(act.account_id, Some(gome.id));
        // A new contact brings its account along.
        let moved =
            w.db.write_blocking(|tx| {
                activities::update(
                    tx,
                    &w.rep,
                    act.id,
                    ActivityPatch { contact_id: Some(Some(suning_buyer.id)), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!((moved.account_id, moved.contact_id), (Some(suning.id), Some(suning_buyer.id)));
        // A contact of another account, an account outside the caller's scope, or
        // nothing at all are refused.
        let e =
            w.db.write_blocking(|tx| {
                activities::update(
                    tx,
                    &w.rep,
                    act.id,
                    ActivityPatch { account_id: Some(Some(gome.id)), ..Default::default() },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["contact_id"]);
        let e =
            w.db.write_blocking(|tx| {
                activities::update(
                    tx,
                    &w.rep,
                    act.id,
                    ActivityPatch { account_id: Some(Some(others.id)), ..Default::default() },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["account_id"]);
        let e =
            w.db.write_blocking(|tx| {
                activities::update(
                    tx,
                    &w.rep,
                    act.id,
                    ActivityPatch { account_id: Some(None), contact_id: Some(None), ..Default::default() },
                )
            })
            .unwrap_err();
        assert_eq!(field_names(e), ["account_id"]);
        let detached =
            w.db.write_blocking(|tx| {
                activities::update(
                    tx,
                    &w.rep,
                    act.id,
                    ActivityPatch { contact_id: Some(None), account_id: Some(Some(gome.id)), ..Default::default() },
                )
            })
            .unwrap();
        assert_eq!((detached.account_id, detached.contact_id), (Some(gome.id), None));
        // Delete and restore.
        w.db.write_blocking(|tx| activities::delete(tx, &w.rep, act.id)).unwrap();
        assert!(matches!(w.db.read_blocking(|tx| activities::get(tx, &w.rep, act.id)), Err(Error::NotFound(_))));
        let back = w.db.write_blocking(|tx| activities::restore(tx, &w.rep, act.id)).unwrap();
        assert_eq!(back.subject, "Price");
        assert!(matches!(w.db.write_blocking(|tx| activities::restore(tx, &w.rep, act.id)), Err(Error::NotFound(_))));
    }
}

#[test]
fn tag_prefixes_are_literal_text() {
    for w in world() {
        for tags in [vec!["50%_off", "王牌"], vec!["50x", "王"], vec!["50%_off"]] {
            w.db.write_blocking(|tx| {
                let tags = Some(tags.iter().map(|t| (*t).to_owned()).collect());
                contacts::create(tx, &w.rep, NewContact { name: "T".into(), tags, ..Default::default() })
            })
            .unwrap();
        }
        let tags = |prefix: &str| -> Vec<(String, i64)> {
            w.db.read_blocking(|tx| customers::tags::list(tx, &w.rep, "contact", Some(prefix), None))
                .unwrap()
                .into_iter()
                .map(|t| (t.tag, t.count))
                .collect()
        };
        assert_eq!(tags("50%"), [("50%_off".to_owned(), 2)]);
        assert_eq!(tags("50"), [("50%_off".to_owned(), 2), ("50x".to_owned(), 1)]);
        assert_eq!(tags("王"), [("王".to_owned(), 1), ("王牌".to_owned(), 1)]);
        assert!(tags("51").is_empty());
    }
}

/// Measures a sorted list's first and last page over many contacts, on each backend:
/// `cargo test -p customers --test model keyset_figures -- --ignored --nocapture`
/// (`MODEL_BENCH_ROWS`, default 200000). Prints figures; asserts only that both pages
/// are full.
#[test]
#[ignore = "a measurement, not a check; run by hand"]
fn keyset_figures() {
    use std::time::Instant;
    let rows: i64 = std::env::var("MODEL_BENCH_ROWS").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    for w in world() {
        let backend = w.db.backend().name();
        let now = chrono::Utc::now();
        let east = w.east;
        w.db.write_blocking(|tx| {
            let surnames = ["王", "李", "张", "刘", "陈", "김", "이", "Smith", "Brown"];
            let mut batch = Vec::new();
            for i in 0..rows {
                let name = format!("{}{:07}", surnames[(i % 9) as usize], (i * 7919) % rows);
                let at = now - chrono::Duration::seconds(rows - i);
                batch.push(vec![
                    Id::new().get().into(),
                    name.into(),
                    east.get().into(),
                    json!({}).into(),
                    at.into(),
                    at.into(),
                ]);
                if batch.len() == 10_000 {
                    tx.insert_rows(
                        "contacts",
                        &["id", "name", "branch_id", "custom", "created_at", "updated_at"],
                        &batch,
                    )?;
                    batch.clear();
                }
            }
            tx.insert_rows("contacts", &["id", "name", "branch_id", "custom", "created_at", "updated_at"], &batch)?;
            Ok::<_, Error>(())
        })
        .unwrap();
        if backend == "postgresql" {
            w.db.write_blocking(|tx| tx.batch("ANALYZE contacts")).unwrap();
        } else {
            w.db.write_blocking(|tx| tx.batch("ANALYZE")).unwrap();
        }
        for (who_name, who) in [("all", &w.admin), ("branch", &w.manager)] {
            for sort in ["name", "-created_at"] {
                let filter = ContactFilter::from_query(&pairs(&[("sort", sort)])).unwrap();
                // The cursor of the row 50 before the end, read the way the list orders.
                let (column, order) = match sort {
                    "name" => ("name", "ASC"),
                    _ => ("created_at", "DESC"),
                };
                let sql = format!(
                    "SELECT id FROM contacts ORDER BY {column} {order}, id {order} LIMIT 1 OFFSET {}",
                    rows - 51
                );
                let id: i64 = w.db.read_blocking(|tx| tx.query_sql::<i64>(&sql, &[])).unwrap()[0];
                let c = w.db.read_blocking(|tx| contacts::get(tx, &w.admin, Id(id))).unwrap();
                let cursor = kernel::paging::Cursor {
                    key: Some(Value::String(if column == "name" { c.name.clone() } else { c.created_at.to_rfc3339() })),
                    id,
                };
                let time = |cursor: Option<kernel::paging::Cursor>| {
                    let request = PageRequest { limit: 50, cursor };
                    let mut best = f64::MAX;
                    for _ in 0..20 {
                        let start = Instant::now();
                        let page = w.db.read_blocking(|tx| contacts::list(tx, who, &filter, &request)).unwrap();
                        best = best.min(start.elapsed().as_secs_f64() * 1000.0);
                        assert_eq!(page.items.len(), 50);
                    }
                    best
                };
                let first = time(None);
                let last = time(Some(cursor));
                println!(
                    "{backend} rows={rows} scope={who_name} sort={sort}: first page {first:.2} ms, last page {last:.2} ms (best of 20)"
                );
            }
        }
    }
}
