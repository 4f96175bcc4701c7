#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Search over accounts and contacts, on SQLite and (when configured) PostgreSQL.
use customers::accounts::{self, AccountFilter, NewAccount};
use customers::contacts::{self, ContactFilter, ContactPatch, NewContact};
use customers::search;
use kernel::identity::{branches, passwords, users};
use kernel::paging::PageRequest;
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Error, Id, Principal};

struct World {
    db: TestDb,
    admin: Principal,
    rep: Principal,
    rep2: Principal,
    seoul: Id,
}

fn build(db: TestDb) -> World {
    let admin = Principal::system(Channel::Cli);
    let hash = passwords::hash("password123").unwrap();
    let (east, seoul) = db
        .write_blocking(|tx| {
            let hq = kernel::setup::head_office(tx)?;
            let mk = |tx: &mut kernel::Tx<'_>, name: &str, parent: Id, region: &str| {
                branches::create(
                    tx,
                    &admin,
                    branches::NewBranch {
                        name: name.into(),
                        parent_id: Some(parent),
                        region: Some(region.into()),
                        ..Default::default()
                    },
                )
                .map(|b| b.id)
            };
            let east = mk(tx, "East", hq, "CN")?;
            let seoul = mk(tx, "Seoul", east, "KR")?;
            Ok::<_, Error>((east, seoul))
        })
        .unwrap();
    let user = |email: &str| -> Principal {
        db.write_blocking(|tx| {
            let u = users::create(
                tx,
                &admin,
                users::NewUser {
                    email: email.into(),
                    name: email.into(),
                    password: "password123".into(),
                    role: "sales".into(),
                    branch_id: east,
                    ..Default::default()
                },
                hash.clone(),
            )?;
            kernel::identity::principal_for_user(tx, u.id)
        })
        .unwrap()
    };
    let rep = user("rep@east.cn");
    let rep2 = user("rep2@east.cn");
    World { db, admin, rep, rep2, seoul }
}

fn contact(w: &World, who: &Principal, name: &str, email: Option<&str>, phone: Option<&str>, branch: Option<Id>) -> Id {
    let input = NewContact {
        name: name.into(),
        email: email.map(Into::into),
        phone: phone.map(Into::into),
        branch_id: branch,
        ..Default::default()
    };
    w.db.write_blocking(|tx| contacts::create(tx, who, input)).unwrap().id
}

/// The names `who` finds for `q`, best first.
fn find(w: &World, who: &Principal, q: &str) -> Vec<String> {
    w.db.read_blocking(|tx| search::search(tx, who, q, Some(50))).unwrap().into_iter().map(|h| h.name).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn names(list: &[&str]) -> Vec<String> {
    sorted(list.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn every_example_query_finds_what_it_should_and_nothing_else() {
    for w in test_databases().into_iter().map(build) {
        let admin = w.admin.clone();
        contact(&w, &admin, "张伟", None, Some("138 0013 8000"), None);
        contact(&w, &admin, "王芳", Some("wang@gome.com.cn"), None, None);
        contact(&w, &admin, "王芳芳", None, Some("13912345678"), None);
        contact(&w, &admin, "李王芳", None, None, None);
        contact(&w, &admin, "김민준", None, Some("010-1234-5678"), Some(w.seoul));
        contact(&w, &admin, "김서연", None, None, Some(w.seoul));
        contact(&w, &admin, "민준 Park", None, None, Some(w.seoul));
        contact(&w, &admin, "John Smith", Some("john@example.com"), Some("+86 139 0013 1234"), None);
        w.db.write_blocking(|tx| {
            accounts::create(
                tx,
                &admin,
                NewAccount {
                    name: "Gome Electronics".into(),
                    website: Some("https://www.gome.com.cn".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();

        assert_eq!(find(&w, &admin, "张"), ["张伟"]);
        assert_eq!(find(&w, &admin, "王芳"), ["王芳", "王芳芳", "李王芳"], "exact name, then prefix, then other");
        assert_eq!(sorted(find(&w, &admin, "김")), names(&["김민준", "김서연"]));
        assert_eq!(find(&w, &admin, "김민준"), ["김민준"]);
        assert_eq!(sorted(find(&w, &admin, "민준")), names(&["김민준", "민준 Park"]));
        assert_eq!(find(&w, &admin, "138 0013"), ["张伟"]);
        assert_eq!(find(&w, &admin, "0013 8000"), ["张伟"]);
        assert_eq!(find(&w, &admin, "13800138000"), ["张伟"]);
        assert_eq!(find(&w, &admin, "+86 138-0013-8000"), ["张伟"]);
        assert_eq!(find(&w, &admin, "010 1234 5678"), ["김민준"], "a Korean number typed with its trunk 0");
        assert_eq!(sorted(find(&w, &admin, "0013")), names(&["张伟", "John Smith"]));
        assert_eq!(sorted(find(&w, &admin, "@gome")), names(&["Gome Electronics", "王芳"]));
        assert_eq!(find(&w, &admin, "gome")[0], "Gome Electronics", "the name starts with it");
        assert_eq!(sorted(find(&w, &admin, "gome")), names(&["Gome Electronics", "王芳"]));
        assert_eq!(find(&w, &admin, "ＧＯＭＥ elec"), ["Gome Electronics"], "full-width, two words");
        assert_eq!(find(&w, &admin, "electronics"), ["Gome Electronics"], "a word longer than the stored prefixes");
        assert!(find(&w, &admin, "electronicsx").is_empty());
        assert_eq!(find(&w, &admin, "smi"), ["John Smith"]);
        for nothing in ["赵", "王芳王", "김민서", "138 0013 9", "9999", "@nowhere", "", "x"] {
            assert!(find(&w, &admin, nothing).is_empty(), "{nothing:?}");
        }

        // The lists take the same `q=`.
        let page = PageRequest::parse(None, None).unwrap();
        let listed =
            w.db.read_blocking(|tx| {
                contacts::list(tx, &admin, &ContactFilter { q: Some("王芳".into()), ..Default::default() }, &page)
            })
            .unwrap();
        assert_eq!(sorted(listed.items.into_iter().map(|c| c.name).collect()), names(&["李王芳", "王芳", "王芳芳"]));
        let listed =
            w.db.read_blocking(|tx| {
                accounts::list(tx, &admin, &AccountFilter { q: Some("@gome".into()), ..Default::default() }, &page)
            })
            .unwrap();
        assert_eq!(listed.items.into_iter().map(|a| a.name).collect::<Vec<_>>(), ["Gome Electronics"]);
        let err = w.db.read_blocking(|tx| search::search(tx, &admin, "王", Some(51))).unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err:?}");
        let long = "王".repeat(201);
        let err =
            w.db.read_blocking(|tx| {
                contacts::list(tx, &admin, &ContactFilter { q: Some(long.clone()), ..Default::default() }, &page)
            })
            .unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err:?}");
    }
}

#[test]
fn scope_delete_restore_and_update_are_followed() {
    for w in test_databases().into_iter().map(build) {
        let (rep, rep2) = (w.rep.clone(), w.rep2.clone());
        let mine = contact(&w, &rep, "张伟", None, Some("13800138000"), None);
        contact(&w, &rep2, "张三", None, Some("13800138001"), None);
        assert_eq!(find(&w, &rep, "张"), ["张伟"], "a rep finds only their own records");
        assert_eq!(find(&w, &rep2, "138 0013 800"), ["张三"]);
        assert_eq!(sorted(find(&w, &w.admin, "张")), names(&["张三", "张伟"]));

        w.db.write_blocking(|tx| contacts::delete(tx, &rep, mine)).unwrap();
        assert!(find(&w, &rep, "张").is_empty(), "deleted records vanish");
        w.db.write_blocking(|tx| contacts::restore(tx, &rep, mine)).unwrap();
        assert_eq!(find(&w, &rep, "张"), ["张伟"], "and come back on restore");

        let patch = ContactPatch { name: Some("赵伟".into()), phone: Some("".into()), ..Default::default() };
        w.db.write_blocking(|tx| contacts::update(tx, &rep, mine, patch)).unwrap();
        assert!(find(&w, &rep, "张").is_empty(), "the old name is no longer found");
        assert!(find(&w, &rep, "13800138000").is_empty(), "nor the cleared phone");
        assert_eq!(find(&w, &rep, "赵伟"), ["赵伟"]);

        // A full rebuild gives the same answers.
        let n = w.db.write_blocking(search::reindex_all).unwrap();
        assert_eq!(n, 2);
        assert_eq!(find(&w, &rep, "赵"), ["赵伟"]);
        assert_eq!(find(&w, &rep2, "张三"), ["张三"]);

        // Someone without permission to read contacts is refused.
        let mut nobody = rep.clone();
        nobody.permissions.clear();
        let err = w.db.read_blocking(|tx| search::search(tx, &nobody, "张", None)).unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    }
}

#[test]
fn card_numbers_extra_phones_and_titles_are_found_and_survive_reindex() {
    for db in test_databases() {
        let w = build(db);
        let rep = w.rep.clone();
        let member = NewContact {
            name: "李娜".into(),
            is_member: Some(true),
            card_no: Some("8800123456".into()),
            title: Some("Procurement Manager".into()),
            ..Default::default()
        };
        let member = w.db.write_blocking(|tx| contacts::create(tx, &rep, member)).unwrap().id;
        let other = NewContact {
            name: "王强".into(),
            phone: Some("13911112222".into()),
            card_no: Some("7700999911".into()),
            ..Default::default()
        };
        w.db.write_blocking(|tx| contacts::create(tx, &rep, other)).unwrap();
        let shop = NewAccount {
            name: "Gome Pudong".into(),
            phone: Some("021 5555 0000".into()),
            phones: Some(vec!["138 2468 1357".into(), "021 6677 8899".into()]),
            emails: Some(vec!["orders@gome-pudong.cn".into(), "wholesaleorders@gome.cn".into()]),
            ..Default::default()
        };
        w.db.write_blocking(|tx| accounts::create(tx, &rep, shop)).unwrap();

        let queries: [(&str, &[&str]); 11] = [
            ("8800123456", &["李娜"]),
            ("0012345", &["李娜"]),
            ("3456", &["李娜"]),
            ("88001", &["李娜"]),
            ("8800 1234 56", &["李娜"]),
            ("procurement", &["李娜"]),
            ("2468", &["Gome Pudong"]),
            ("138 2468 1357", &["Gome Pudong"]),
            ("66778899", &["Gome Pudong"]),
            ("orders", &["Gome Pudong"]),
            ("wholesaleorders", &["Gome Pudong"]),
        ];
        let check = |when: &str| {
            for (q, want) in &queries {
                assert_eq!(find(&w, &rep, q), names(want), "{when}: {q}");
            }
            // Fragments that exist only across two fields, or in no field, find nothing.
            assert!(find(&w, &rep, "88009999").is_empty(), "{when}");
            assert!(find(&w, &rep, "24681358").is_empty(), "{when}");
            // The list filter uses the same terms.
            let page =
                w.db.read_blocking(|tx| {
                    let filter = ContactFilter { q: Some("0012345".into()), ..Default::default() };
                    contacts::list(tx, &rep, &filter, &PageRequest::default())
                })
                .unwrap();
            assert_eq!(page.items.iter().map(|c| c.id).collect::<Vec<_>>(), [member], "{when}");
        };
        check("after the writes");
        // A rebuild cuts the same terms as the write paths.
        let count = |w: &World| -> i64 { w.db.read_blocking(search::document_count).unwrap() };
        let before = count(&w);
        let n = w.db.write_blocking(search::reindex_all).unwrap();
        assert_eq!(n, 3);
        assert_eq!(count(&w), before, "reindex writes one document per record, as the writes did");
        check("after reindex_all");
    }
}

#[test]
fn ranking_tiers_exact_then_name_start_then_newest_other() {
    for w in test_databases().into_iter().map(build) {
        let (admin, rep) = (w.admin.clone(), w.rep.clone());
        // Created oldest first: ids are time-ordered, newest first within a tier.
        contact(&w, &admin, "李王", None, None, None);
        contact(&w, &admin, "王芳", None, None, None);
        contact(&w, &admin, "王", None, None, None);
        contact(&w, &admin, "王伟", None, None, None);
        contact(&w, &admin, "赵王伟", None, None, None);
        contact(&w, &rep, "王强", None, None, None);
        contact(&w, &admin, "Wang  Fang", None, None, None);
        contact(&w, &admin, "Fang Wang", Some("wangfang@example.com"), None, None);

        assert_eq!(find(&w, &admin, "王"), ["王", "王强", "王伟", "王芳", "赵王伟", "李王"]);
        let top = |q: &str, n: u64| -> Vec<String> {
            w.db.read_blocking(|tx| search::search(tx, &admin, q, Some(n)))
                .unwrap()
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(top("王", 2), ["王", "王强"], "the limit cuts after the best tiers");
        assert_eq!(top("王", 5), ["王", "王强", "王伟", "王芳", "赵王伟"]);
        let scores: Vec<i64> =
            w.db.read_blocking(|tx| search::search(tx, &admin, "王", None))
                .unwrap()
                .into_iter()
                .map(|h| h.score)
                .collect();
        assert_eq!(scores, [3, 2, 2, 2, 1, 1]);
        assert_eq!(find(&w, &admin, "王伟"), ["王伟", "赵王伟"]);
        assert_eq!(
            find(&w, &admin, "WANG FANG"),
            ["Wang  Fang", "Fang Wang"],
            "case and spaces do not matter for the exact name; both words anywhere is a match"
        );
        assert_eq!(find(&w, &admin, "wang f"), ["Wang  Fang", "Fang Wang"], "a name start across a space first");
        assert_eq!(find(&w, &admin, "wang"), ["Wang  Fang", "Fang Wang"], "name start before another word");
        assert_eq!(find(&w, &admin, "ｗａｎｇ"), ["Wang  Fang", "Fang Wang"], "full-width");
        assert!(find(&w, &admin, "w").is_empty(), "one Latin letter is no query");

        // The tiers keep scope and soft delete.
        assert_eq!(find(&w, &rep, "王"), ["王强"]);
        let exact = w.db.read_blocking(|tx| search::search(tx, &admin, "王", Some(1))).unwrap()[0].id;
        w.db.write_blocking(|tx| contacts::delete(tx, &admin, exact)).unwrap();
        assert_eq!(top("王", 2), ["王强", "王伟"]);
        // A rename moves the record between tiers.
        let patch = ContactPatch { name: Some("王".into()), ..Default::default() };
        let wei = w.db.read_blocking(|tx| search::search(tx, &admin, "王伟", Some(1))).unwrap()[0].id;
        w.db.write_blocking(|tx| contacts::update(tx, &admin, wei, patch)).unwrap();
        assert_eq!(top("王", 2), ["王", "王强"]);
        assert_eq!(find(&w, &admin, "王伟"), ["赵王伟"]);
    }
}

#[test]
fn a_walk_steps_past_records_out_of_scope() {
    for w in test_databases().into_iter().map(build) {
        let (admin, rep) = (w.admin.clone(), w.rep.clone());
        let mine = contact(&w, &rep, "王小明", None, None, None);
        // Newer records the rep cannot see fill the first steps of the walk.
        for i in 0..150 {
            contact(&w, &admin, &format!("王{}", ["伟", "芳", "强"][i % 3]), None, None, None);
        }
        let hits = w.db.read_blocking(|tx| search::search(tx, &rep, "王", Some(5))).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [mine]);
        assert_eq!(hits[0].score, 2);
        assert_eq!(find(&w, &rep, "小明"), ["王小明"]);
        assert_eq!(find(&w, &admin, "王").len(), 50);
    }
}

#[test]
fn common_terms_filter_lists_by_probing_rows() {
    use chrono::Utc;
    use sea_query::Value as V;

    for w in test_databases().into_iter().map(build) {
        let (admin, rep) = (w.admin.clone(), w.rep.clone());
        // Older than every record below: PostgreSQL finds it past the window of newest
        // documents it checks one by one, through the GIN index.
        let rare = contact(&w, &admin, "稀有客户", Some("rare@old.example"), None, None);
        // More records than the frequency count's cap carry `王` and `gome`.
        let n = 5_100;
        let ids: Vec<Id> = (0..n).map(|_| Id::new()).collect();
        w.db.write_blocking(|tx| {
            let branch = kernel::setup::head_office(tx)?;
            let now = Utc::now();
            let names: Vec<String> = (0..n).map(|i| format!("王{}", ["伟", "芳", "强"][i % 3])).collect();
            let emails: Vec<String> = (0..n).map(|i| format!("w{i}@gome.com.cn")).collect();
            let rows: Vec<Vec<V>> = (0..n)
                .map(|i| {
                    vec![
                        V::from(ids[i].get()),
                        V::from(names[i].clone()),
                        V::from(branch.get()),
                        V::from(emails[i].clone()),
                        V::Json(Some(Box::new(serde_json::json!({})))),
                        V::from(now),
                        V::from(now),
                    ]
                })
                .collect();
            tx.insert_rows(
                "contacts",
                &["id", "name", "branch_id", "email", "custom", "created_at", "updated_at"],
                &rows,
            )?;
            let docs: Vec<(Id, search::Document<'_>)> = (0..n)
                .map(|i| (ids[i], search::Document { name: &names[i], email: Some(&emails[i]), ..Default::default() }))
                .collect();
            search::insert_documents(tx, customers::RecordType::Contact, &docs)?;
            Ok::<_, Error>(())
        })
        .unwrap();
        let list = |who: &Principal, q: &str, page: &PageRequest| {
            w.db.read_blocking(|tx| {
                contacts::list(tx, who, &ContactFilter { q: Some(q.into()), ..Default::default() }, page)
            })
            .unwrap()
        };
        let first = PageRequest::parse(Some(50), None).unwrap();
        for q in ["王", "王 gome", "gome 王芳"] {
            let p1 = list(&admin, q, &first);
            let expected: Vec<Id> = ids
                .iter()
                .copied()
                .filter(|id| q != "gome 王芳" || ids.iter().position(|x| x == id).unwrap() % 3 == 1)
                .take(50)
                .collect();
            assert_eq!(p1.items.iter().map(|c| c.id).collect::<Vec<_>>(), expected, "{q}");
            let next = PageRequest::parse(Some(50), p1.next_cursor.as_deref()).unwrap();
            let p2 = list(&admin, q, &next);
            assert!(p2.items.first().unwrap().id > expected[49], "{q}: the cursor follows");
            assert!(list(&rep, q, &first).items.is_empty(), "{q}: scope");
        }
        let hits = w.db.read_blocking(|tx| search::search(tx, &admin, "王 gome", Some(3))).unwrap();
        assert_eq!(
            hits.iter().map(|h| h.id).collect::<Vec<_>>(),
            ids.iter().rev().take(3).copied().collect::<Vec<_>>()
        );
        w.db.write_blocking(|tx| contacts::delete(tx, &admin, ids[0])).unwrap();
        assert_eq!(list(&admin, "王 gome", &first).items[0].id, ids[1], "deleted rows drop out");
        let scored = |q: &str| -> Vec<(Id, i64)> {
            w.db.read_blocking(|tx| search::search(tx, &admin, q, None))
                .unwrap()
                .into_iter()
                .map(|h| (h.id, h.score))
                .collect()
        };
        assert_eq!(scored("稀有客户"), [(rare, 3)], "exact name, past the window");
        assert_eq!(scored("稀有"), [(rare, 2)], "name start, past the window");
        assert_eq!(scored("客户"), [(rare, 1)], "any match, past the window");
        assert_eq!(scored("old"), [(rare, 1)]);
        assert_eq!(list(&admin, "稀有", &first).items.iter().map(|c| c.id).collect::<Vec<_>>(), [rare]);
        assert_eq!(list(&admin, "王 稀有", &first).items.len(), 0);
    }
}

/// Benchmark, not a test: `cargo test -p customers --test search -- --ignored --nocapture`
/// (set `RAPPORT_BENCH_CONTACTS` for another size). Seeds contacts with the kernel's bulk
/// insert, builds their terms with `reindex_all`, then times queries against a raw
/// baseline (`name LIKE '%…%'` without an index, first 20 rows), alternating, 5 rounds.
#[test]
#[ignore = "benchmark"]
fn search_benchmark() {
    use std::time::Instant;

    use chrono::Utc;
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
        let given = [
            "芳", "伟", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀",
            "英", "华",
        ];
        let ko_family = ["김", "이", "박", "최", "정"];
        let ko_given = ["민준", "서연", "지호", "하은", "도윤", "서준", "지우", "예준"];
        let latin = ["liam", "olivia", "noah", "emma", "james", "ava", "lucas", "mia", "mason", "sophia"];
        let domains = ["gome.com.cn", "suning.com", "naver.com", "qq.com", "163.com", "example.com"];
        let started = Instant::now();
        let count = db
            .write_blocking(|tx| {
                let branch = kernel::setup::head_office(tx)?;
                let now = Utc::now();
                let mut rows = Vec::with_capacity(n);
                for i in 0..n {
                    let name = match next(10) {
                        0..=5 => {
                            let mut s = surnames[next(3).min(next(surnames.len()))].to_owned();
                            for _ in 0..1 + next(2) {
                                s.push_str(given[next(given.len())]);
                            }
                            s
                        }
                        6..=7 => format!("{}{}", ko_family[next(ko_family.len())], ko_given[next(ko_given.len())]),
                        _ => format!("{} {}", latin[next(latin.len())], latin[next(latin.len())]),
                    };
                    let mut mobile = format!("1{}{:09}", 3 + next(7), next(1_000_000_000));
                    if i < 10 {
                        mobile = format!("1380013800{i}");
                    }
                    let raw = format!("{} {} {}", &mobile[..3], &mobile[3..7], &mobile[7..]);
                    let email = format!("{}{i}@{}", latin[next(latin.len())], domains[next(domains.len())]);
                    rows.push(vec![
                        V::from(Id::new().get()),
                        V::from(name),
                        V::from(branch.get()),
                        V::from(email),
                        V::from(format!("+86{mobile}")),
                        V::from(raw),
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
                Ok::<_, Error>(rows.len())
            })
            .unwrap();
        let seeded = started.elapsed();
        let started = Instant::now();
        db.write_blocking(search::reindex_all).unwrap();
        let indexed = started.elapsed();
        // The steady state autovacuum reaches after a bulk load: statistics, and on
        // PostgreSQL a visibility map so term look-ups are index-only.
        let started = Instant::now();
        match backend {
            "postgres" => db.read_blocking(|tx| {
                tx.batch("VACUUM ANALYZE search_index")?;
                tx.batch("VACUUM ANALYZE contacts")
            }),
            _ => db.write_blocking(|tx| tx.batch("ANALYZE")),
        }
        .unwrap();
        println!("[{backend}] vacuum/analyze {:.2} s", started.elapsed().as_secs_f64());
        let documents = db.read_blocking(search::document_count).unwrap();
        println!(
            "[{backend}] {count} contacts: bulk insert {:.2} s, reindex_all {:.2} s, {documents} documents",
            seeded.as_secs_f64(),
            indexed.as_secs_f64(),
        );
        if backend == "postgres" {
            let size: Vec<i64> = db
                .read_blocking(|tx| {
                    tx.query_sql(
                        "SELECT (pg_total_relation_size('search_index') + 0)::BIGINT AS a \
                         UNION ALL SELECT pg_total_relation_size('contacts')::BIGINT",
                        &[],
                    )
                })
                .unwrap();
            println!(
                "[{backend}] search_index with indexes {:.1} MB ({:.0} B per contact); contacts {:.1} MB",
                size[0] as f64 / 1e6,
                size[0] as f64 / count as f64,
                size[1] as f64 / 1e6
            );
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[0], v[v.len() - 1])
        };
        for (q, like) in
            [("王", "王"), ("王芳", "王芳"), ("김민준", "김민준"), ("138 0013", "1380013"), ("gome", "gome")]
        {
            let (mut ours, mut raw, mut hits) = (Vec::new(), Vec::new(), 0);
            for _ in 0..5 {
                let t = Instant::now();
                hits = db.read_blocking(|tx| search::search(tx, &admin, q, Some(20))).unwrap().len();
                ours.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                let column =
                    if like.chars().all(|c| c.is_ascii_digit()) { "phone_e164" } else { "lower(email) || name" };
                let sql = format!("SELECT id FROM contacts WHERE {column} LIKE $1 LIMIT 20");
                let _: Vec<i64> = db.read_blocking(|tx| tx.query_sql(&sql, &[V::from(format!("%{like}%"))])).unwrap();
                raw.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let (o, omin, omax) = median(ours);
            let (r, rmin, rmax) = median(raw);
            println!(
                "[{backend}] {q:<10} {hits:>2} hits: search {o:.2} ms [{omin:.2}–{omax:.2}]; \
                 LIKE scan, first 20: {r:.2} ms [{rmin:.2}–{rmax:.2}]"
            );
        }
        let (mut counts, mut misses) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let t = Instant::now();
            let page = PageRequest::parse(Some(50), None).unwrap();
            let filter = ContactFilter { q: Some("王".into()), ..Default::default() };
            db.read_blocking(|tx| contacts::list(tx, &admin, &filter, &page)).unwrap();
            counts.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            db.read_blocking(|tx| search::search(tx, &admin, "zzzz", Some(20))).unwrap();
            misses.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "[{backend}] contacts list q=王 limit 50 (id order): {:.2} ms; a miss: {:.2} ms",
            median(counts).0,
            median(misses).0
        );
    }
}

#[test]
fn names_with_quotes_and_punctuation_are_found_whole() {
    for w in test_databases().into_iter().map(build) {
        let admin = w.admin.clone();
        // The index's tokens are put into SQL as literals: quotes, backslashes and FTS5
        // syntax in a name must neither break a query nor match anything else.
        contact(&w, &admin, r#"O'Brien "Tiny" \ Ltd."#, None, None, None);
        contact(&w, &admin, "国美电器（北京）有限公司", None, None, None);
        contact(&w, &admin, "AND OR NOT * ^ = _20", None, None, None);
        contact(&w, &admin, "Brien Tiny", None, None, None);
        let scored = |q: &str| -> Vec<(String, i64)> {
            w.db.read_blocking(|tx| search::search(tx, &admin, q, None))
                .unwrap()
                .into_iter()
                .map(|h| (h.name, h.score))
                .collect()
        };
        assert_eq!(scored(r#"o'brien "tiny" \ ltd."#)[0], (r#"O'Brien "Tiny" \ Ltd."#.to_owned(), 3));
        assert_eq!(scored("O'Brien")[0], (r#"O'Brien "Tiny" \ Ltd."#.to_owned(), 2));
        assert_eq!(find(&w, &admin, "tiny"), ["Brien Tiny", r#"O'Brien "Tiny" \ Ltd."#].map(String::from));
        assert_eq!(scored("国美电器（北京）"), [("国美电器（北京）有限公司".to_owned(), 2)]);
        assert_eq!(scored("and or not * ^ = _20"), [("AND OR NOT * ^ = _20".to_owned(), 3)]);
        assert!(find(&w, &admin, "\"").is_empty() && find(&w, &admin, "'").is_empty());
        let list = |q: &str| -> usize {
            w.db.read_blocking(|tx| {
                let filter = ContactFilter { q: Some(q.into()), ..Default::default() };
                contacts::list(tx, &admin, &filter, &PageRequest::default())
            })
            .unwrap()
            .items
            .len()
        };
        assert_eq!(list("o'brien tiny"), 2, "a list's q= takes the same tokens");
        assert_eq!(list(r#"ltd" tiny "*"#), 1, "FTS5 syntax in a query is text");
    }
}

#[test]
fn a_migration_that_asks_for_a_rebuild_gets_one_at_start() {
    for w in test_databases().into_iter().map(build) {
        let admin = w.admin.clone();
        contact(&w, &admin, "王芳", None, None, None);
        // Fresh databases carry the migration's request; the first start clears it.
        w.db.write_blocking(search::rebuild_if_requested).unwrap();
        assert_eq!(w.db.write_blocking(search::rebuild_if_requested).unwrap(), None, "asked once");
        // An index emptied by a layout change, and the request a migration leaves.
        w.db.write_blocking(|tx| {
            let empty = match tx.backend() {
                kernel::Backend::Sqlite => "INSERT INTO search_index (search_index) VALUES ('delete-all')",
                kernel::Backend::Postgres => "DELETE FROM search_index",
            };
            tx.batch(empty)?;
            tx.batch("INSERT INTO search_rebuilds (requested_at) VALUES ('2026-11-22T00:00:00Z')")
        })
        .unwrap();
        assert!(find(&w, &admin, "王芳").is_empty());
        let rebuilt = w.db.write_blocking(search::rebuild_if_requested).unwrap();
        assert!(rebuilt.is_some_and(|n| n >= 1), "{rebuilt:?}");
        assert_eq!(find(&w, &admin, "王芳"), ["王芳"]);
        assert_eq!(w.db.write_blocking(search::rebuild_if_requested).unwrap(), None);
    }
}
