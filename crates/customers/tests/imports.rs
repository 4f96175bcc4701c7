#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Import and export, run on SQLite and (when configured) PostgreSQL.
use customers::accounts::{self, NewAccount};
use customers::contacts::{self, ContactFilter};
use customers::exports::{self, ExportFormat};
use customers::fields::{self, NewCategory, NewCustomField};
use customers::imports::{self, Import, Mapping, RunOptions};
use customers::search;
use kernel::identity::{passwords, users};
use kernel::paging::PageRequest;
use kernel::testing::{TestDb, test_databases};
use kernel::{Channel, Error, Id, Principal};

fn admin() -> Principal {
    Principal::system(Channel::Cli)
}

fn all_contacts(db: &TestDb) -> Vec<contacts::Contact> {
    db.read_blocking(|tx| {
        contacts::list(tx, &admin(), &ContactFilter::default(), &PageRequest { limit: 500, cursor: None })
    })
    .unwrap()
    .items
}

fn count(db: &TestDb, table: &str) -> i64 {
    db.read_blocking(|tx| tx.query_sql::<i64>(&format!("SELECT COUNT(*) FROM {table}"), &[])).unwrap()[0]
}

/// Uploads `bytes` as `filename` and runs the import to the end with the suggested mapping
/// (changed by `adjust`).
fn import_with(
    db: &TestDb,
    kind: &str,
    filename: &str,
    bytes: &[u8],
    adjust: impl FnOnce(&mut Mapping),
) -> (imports::Uploaded, Import) {
    let who = admin();
    let up = db.write_blocking(|tx| imports::create(tx, &who, kind, filename, bytes)).unwrap();
    let mut mapping = up.suggested_mapping.clone();
    adjust(&mut mapping);
    db.write_blocking(|tx| imports::set_mapping(tx, &who, up.id, mapping)).unwrap();
    let done = imports::run(db, &who, up.id, RunOptions::default(), &mut |_| Ok(())).unwrap();
    (up, done)
}

fn import(db: &TestDb, filename: &str, bytes: &[u8]) -> (imports::Uploaded, Import) {
    import_with(db, "contact", filename, bytes, |_| {})
}

const CSV_ZH: &str = "姓名,邮箱,电话\n张伟,zhang.wei@gome.com.cn,138 0013 8000\n王芳,Wang.Fang@gome.com.cn,13900139000\n李娜,li.na@suning.cn,+86 137 0013 7000\n刘洋,liu.yang@suning.cn,136-0013-6000\n陈静,chen.jing@jd.com,135 0013 5000\n";
const CSV_KO: &str = "이름,이메일,전화\n김민준,minjun.kim@lotte.co.kr,010-1234-5678\n이서연,seoyeon.lee@emart.co.kr,010 2345 6789\n박지훈,jihoon.park@hyundai.co.kr,01034567890\n최수아,sua.choi@shinsegae.com,010-4567-8901\n정우진,woojin.jung@coupang.com,010-5678-9012\n";

#[test]
fn csv_in_every_encoding_lands_the_same_rows_and_re_runs_create_nothing() {
    for db in test_databases() {
        let (up, done) = import(&db, "zh.csv", CSV_ZH.as_bytes());
        assert_eq!((up.format.as_str(), up.encoding.as_str()), ("csv", "UTF-8"));
        assert_eq!(up.suggested_mapping.columns["姓名"], "name");
        assert_eq!(up.suggested_mapping.columns["邮箱"], "email");
        assert_eq!(up.suggested_mapping.columns["电话"], "phone");
        assert_eq!(up.sample_rows[0], vec!["张伟", "zhang.wei@gome.com.cn", "138 0013 8000"]);
        assert_eq!((done.created, done.updated, done.skipped, done.failed, done.status.as_str()), (5, 0, 0, 0, "done"));
        let got = all_contacts(&db);
        let wang = got.iter().find(|c| c.name == "王芳").unwrap();
        assert_eq!(wang.email.as_deref(), Some("wang.fang@gome.com.cn"));
        assert_eq!(wang.phone.as_deref(), Some("+8613900139000"));

        // The same rows with a BOM, in GBK (GB18030) and in UTF-16: nothing new.
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(CSV_ZH.as_bytes());
        let (gbk, _, _) = encoding_rs::GBK.encode(CSV_ZH);
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(CSV_ZH.encode_utf16().flat_map(u16::to_le_bytes));
        for (bytes, encoding) in [(bom, "UTF-8"), (gbk.into_owned(), "GBK"), (utf16, "UTF-16LE")] {
            let (up, done) = import(&db, "zh.csv", &bytes);
            assert_eq!(up.encoding, encoding);
            assert_eq!(up.sample_rows[1][0], "王芳", "{encoding}");
            assert_eq!((done.created, done.failed), (0, 0), "{encoding}");
            assert_eq!(done.skipped, 5, "{encoding}: unchanged rows are left alone");
        }
        assert_eq!(all_contacts(&db).len(), 5);

        // Korean in CP949 (EUC-KR), read in the branch's region: KR numbers need the
        // head office's CN region to be told apart, so they are given in full.
        let ko = CSV_KO.replace(",010", ",+82 10");
        let (cp949, _, _) = encoding_rs::EUC_KR.encode(&ko);
        let (up, done) = import(&db, "ko.csv", &cp949);
        assert_eq!(up.encoding, "EUC-KR");
        assert_eq!(up.suggested_mapping.columns["이름"], "name");
        assert_eq!((done.created, done.failed), (5, 0));
        let kim = all_contacts(&db).into_iter().find(|c| c.name == "김민준").unwrap();
        assert_eq!(kim.phone.as_deref(), Some("+821012345678"));
        assert_eq!(count(&db, "contacts"), 10);
    }
}

#[test]
fn upsert_updates_or_skips_existing_records_by_the_chosen_key() {
    for db in test_databases() {
        import(&db, "a.csv", CSV_ZH.as_bytes());
        // A new name for an existing e-mail: updated; audit says who and from which import.
        let changed = "name,email\n张伟伟,ZHANG.WEI@gome.com.cn\n新人,new@x.cn\n";
        let (_, done) = import(&db, "b.csv", changed.as_bytes());
        assert_eq!((done.created, done.updated, done.skipped), (1, 1, 0));
        let zhang =
            all_contacts(&db).into_iter().find(|c| c.email.as_deref() == Some("zhang.wei@gome.com.cn")).unwrap();
        assert_eq!(zhang.name, "张伟伟");
        assert_eq!(zhang.phone.as_deref(), Some("+8613800138000"), "a column not in the file is kept");
        assert_eq!(zhang.version, 2);
        // on_existing = skip.
        let again = "name,email\n张三,zhang.wei@gome.com.cn\n";
        let (_, done) = import_with(&db, "contact", "c.csv", again.as_bytes(), |m| m.on_existing = "skip".into());
        assert_eq!((done.created, done.updated, done.skipped), (0, 0, 1));
        // Match on phone: the typed form differs, the E.164 is the same.
        let by_phone = "name,phone\n王芳芳,+86 139-0013-9000\n";
        let (_, done) = import_with(&db, "contact", "d.csv", by_phone.as_bytes(), |m| m.match_on = "phone".into());
        assert_eq!((done.created, done.updated), (0, 1));
        assert_eq!(count(&db, "contacts"), 6);
        let audits = db
            .read_blocking(|tx| {
                tx.query_sql::<i64>("SELECT COUNT(*) FROM audit_log WHERE record_type = 'contact'", &[])
            })
            .unwrap()[0];
        assert_eq!(audits, 5 + 1 + 1 + 1, "every create and update is audited");
        // Two rows with one key in one file: one record.
        let twice = "name,email\nA,dup@x.cn\nB,dup@x.cn\n";
        let (_, done) = import(&db, "e.csv", twice.as_bytes());
        assert_eq!((done.created, done.updated), (1, 1));
        let dup = all_contacts(&db).into_iter().filter(|c| c.email.as_deref() == Some("dup@x.cn")).collect::<Vec<_>>();
        assert_eq!(dup.len(), 1);
        assert_eq!(dup[0].name, "B");
    }
}

#[test]
fn bad_rows_go_to_the_report_and_good_rows_land() {
    for db in test_databases() {
        let csv = "name,email,phone\n张伟,zhang@x.cn,13800138000\n坏行,only-two-columns\n,noname@x.cn,\n李娜,not-an-email,12\n王芳,wang@x.cn,\n";
        let (up, done) = import(&db, "bad.csv", csv.as_bytes());
        assert_eq!((done.created, done.failed, done.total_rows), (2, 3, 5));
        let names: Vec<String> = all_contacts(&db).into_iter().map(|c| c.name).collect();
        assert_eq!(names, vec!["张伟", "王芳"]);
        let report = db.read_blocking(|tx| imports::errors_csv(tx, &admin(), up.id)).unwrap();
        assert!(report.starts_with(b"\xEF\xBB\xBF"));
        let text = String::from_utf8(report[3..].to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "row,column,message,name,email,phone");
        assert!(lines[1].starts_with("3,,the row has 2 columns but the header has 3"), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("4,name,") && l.ends_with(",,noname@x.cn,")), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("5,email,") && l.contains("李娜,not-an-email,12")), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("5,phone,")), "{text}");
    }
}

#[test]
fn unusable_files_are_refused_and_write_nothing() {
    for db in test_databases() {
        let who = admin();
        let cases: [(&str, &[u8], &str); 6] = [
            ("a.csv", b"", "empty"),
            ("a.csv", b"\xEF\xBB\xBF \n", "empty"),
            ("a.csv", b"name,email\n", "no data rows"),
            ("a.csv", &[0x00, 0x9f, 0x92, 0x96, 0x00, 0x01, 0x02, 0x03, 0xff], "binary"),
            ("a.pdf", b"%PDF-1.7\n", "not CSV, XLSX or vCard"),
            ("a.xlsx", b"PK\x03\x04 not really a zip", "cannot be read"),
        ];
        for (name, bytes, expect) in cases {
            let err = db.write_blocking(|tx| imports::create(tx, &who, "contact", name, bytes)).unwrap_err();
            match err {
                Error::Validation(errors) => {
                    assert_eq!(errors[0].field, "file");
                    assert!(errors[0].message.contains(expect), "{name}: {}", errors[0].message);
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let err = db.write_blocking(|tx| imports::create(tx, &who, "lead", "a.csv", b"name\nx\n")).unwrap_err();
        assert!(matches!(err, Error::Validation(e) if e[0].field == "record_type"));
        assert_eq!(count(&db, "imports"), 0);
        assert_eq!(count(&db, "import_chunks"), 0);
        assert_eq!(count(&db, "contacts"), 0);
    }
}

#[test]
fn a_bad_mapping_names_the_field() {
    for db in test_databases() {
        let who = admin();
        let up =
            db.write_blocking(|tx| imports::create(tx, &who, "contact", "a.csv", b"name,mail\nA,a@x.cn\n")).unwrap();
        let mut m = up.suggested_mapping.clone();
        m.columns.insert("mail".into(), "salary".into());
        m.match_on = "external_id".into();
        let err = db.write_blocking(|tx| imports::set_mapping(tx, &who, up.id, m)).unwrap_err();
        let Error::Validation(errors) = err else { panic!() };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["columns.mail", "match_on"]);
    }
}

#[test]
fn dry_run_reports_and_writes_no_records() {
    for db in test_databases() {
        import(&db, "a.csv", CSV_ZH.as_bytes());
        let who = admin();
        let csv = "姓名,邮箱\n张伟伟,zhang.wei@gome.com.cn\n新人,new@x.cn\n坏,bad@\n";
        let up = db.write_blocking(|tx| imports::create(tx, &who, "contact", "d.csv", csv.as_bytes())).unwrap();
        let before =
            (count(&db, "contacts"), count(&db, "audit_log"), db.read_blocking(search::document_count).unwrap());
        let dry = db.write_blocking(|tx| imports::dry_run(tx, &who, up.id, None)).unwrap();
        assert_eq!((dry.rows_checked, dry.would_create, dry.would_update, dry.failed), (3, 1, 1, 1));
        assert_eq!(dry.errors[0].row, 4);
        assert_eq!(dry.errors[0].column, "邮箱");
        assert_eq!(
            before,
            (count(&db, "contacts"), count(&db, "audit_log"), db.read_blocking(search::document_count).unwrap())
        );
        let report = db.read_blocking(|tx| imports::errors_csv(tx, &who, up.id)).unwrap();
        assert!(String::from_utf8_lossy(&report).contains("4,邮箱,"));
        let import = db.read_blocking(|tx| imports::get(tx, &who, up.id)).unwrap();
        assert_eq!((import.status.as_str(), import.processed_rows), ("ready", 0));
    }
}

#[test]
fn a_killed_import_resumes_from_its_checkpoint_without_duplicates() {
    for db in test_databases() {
        let who = admin();
        let mut csv = String::from("name,email,phone\n");
        for i in 0..25 {
            csv.push_str(&format!("客户{i},c{i}@x.cn,1380013{i:04}\n"));
        }
        csv.push_str("broken\n");
        let up = db.write_blocking(|tx| imports::create(tx, &who, "contact", "big.csv", csv.as_bytes())).unwrap();
        // First run: killed after its first batch of 10 rows.
        let options = RunOptions { batch_rows: 10, stop_after_batches: Some(1) };
        let first = imports::run(&db, &who, up.id, options, &mut |_| Ok(())).unwrap();
        assert_eq!((first.status.as_str(), first.processed_rows, first.created), ("running", 10, 10));
        assert_eq!(count(&db, "contacts"), 10);
        // A batch that fails mid-way writes nothing, checkpoint included.
        let failing = RunOptions { batch_rows: 10, stop_after_batches: None };
        let err = imports::run(&db, &who, up.id, failing, &mut |_| Err("killed".into())).unwrap_err();
        assert!(matches!(err, Error::Internal(_)));
        let after_fail = db.read_blocking(|tx| imports::get(tx, &who, up.id)).unwrap();
        assert_eq!(after_fail.processed_rows, 20, "the batch committed before the failing progress report");
        // The restart resumes at the checkpoint and finishes.
        let done =
            imports::run(&db, &who, up.id, RunOptions { batch_rows: 10, stop_after_batches: None }, &mut |_| Ok(()))
                .unwrap();
        assert_eq!((done.status.as_str(), done.processed_rows, done.created, done.failed), ("done", 26, 25, 1));
        assert_eq!(count(&db, "contacts"), 25);
        assert_eq!(count(&db, "import_errors"), 1);
        // Running a finished import again does nothing.
        let again = imports::run(&db, &who, up.id, RunOptions::default(), &mut |_| Ok(())).unwrap();
        assert_eq!(again, done);
        assert_eq!(count(&db, "contacts"), 25);
        // Search finds imported contacts.
        let hits = db.read_blocking(|tx| customers::search::search(tx, &who, "客户7", None)).unwrap();
        assert!(!hits.is_empty());
    }
}

#[test]
fn the_job_runs_an_import_started_through_the_queue() {
    for db in test_databases() {
        let hash = passwords::hash("password123").unwrap();
        let manager = db
            .write_blocking(|tx| {
                let hq = kernel::setup::head_office(tx)?;
                let u = users::create(
                    tx,
                    &admin(),
                    users::NewUser {
                        email: "m@x.cn".into(),
                        name: "M".into(),
                        password: "password123".into(),
                        role: "manager".into(),
                        branch_id: hq,
                        ..Default::default()
                    },
                    hash,
                )?;
                kernel::identity::principal_for_user(tx, u.id)
            })
            .unwrap();
        let up = db.write_blocking(|tx| imports::create(tx, &manager, "contact", "a.csv", CSV_ZH.as_bytes())).unwrap();
        let job = db.write_blocking(|tx| imports::start(tx, &manager, up.id)).unwrap();
        assert_eq!(db.write_blocking(|tx| imports::start(tx, &manager, up.id)).unwrap(), job, "start is idempotent");
        let registry = kernel::jobs::Registry::new().with(imports::IMPORT_JOB, imports::import_job);
        let worker = kernel::jobs::Worker::new(db.db(), registry, "test");
        assert!(worker.run_once().unwrap());
        let import = db.read_blocking(|tx| imports::get(tx, &manager, up.id)).unwrap();
        assert_eq!((import.status.as_str(), import.created, import.progress), ("done", 5, 1.0));
        let job = db.read_blocking(|tx| kernel::jobs::get(tx, job)).unwrap().unwrap();
        assert_eq!(job.status, kernel::jobs::JobStatus::Done);
        let owners: Vec<Option<Id>> = all_contacts(&db).iter().map(|c| c.owner_id).collect();
        assert!(owners.iter().all(|o| *o == Some(manager.user_id)), "imported as the user who started it");
    }
}

#[test]
fn xlsx_with_chinese_headers_custom_fields_and_excel_dates() {
    for db in test_databases() {
        let who = admin();
        db.write_blocking(|tx| {
            let cat = fields::create_category(tx, &who, NewCategory { name: "连锁".into() })?;
            fields::create_field(
                tx,
                &who,
                NewCustomField {
                    category_id: cat.id,
                    record_type: Some("contact".into()),
                    key: "birthday".into(),
                    label: "生日".into(),
                    field_type: "date".into(),
                    required: false,
                    options: None,
                },
            )?;
            accounts::create(
                tx,
                &who,
                NewAccount {
                    name: "国美电器".into(),
                    category_id: Some(cat.id),
                    external_id: Some("GOME-001".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        for (col, h) in ["姓名", "邮箱", "手机", "公司", "生日"].iter().enumerate() {
            sheet.write_string(0, col as u16, *h).unwrap();
        }
        sheet.write_string(1, 0, "张伟").unwrap();
        sheet.write_string(1, 1, "zw@gome.cn").unwrap();
        sheet.write_number(1, 2, 13800138000.0).unwrap();
        sheet.write_string(1, 3, "国美电器").unwrap();
        sheet.write_number_with_format(1, 4, 45356.0, &date).unwrap();
        sheet.write_string(2, 0, "王芳").unwrap();
        sheet.write_string(2, 3, "GOME-001").unwrap();
        sheet.write_string(2, 4, "2024年3月6日").unwrap();
        sheet.write_string(3, 0, "李娜").unwrap();
        sheet.write_string(3, 3, "不存在的公司").unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let (up, done) = import(&db, "cards.xlsx", &bytes);
        assert_eq!((up.format.as_str(), up.encoding.as_str()), ("xlsx", "binary"));
        assert_eq!(up.suggested_mapping.columns["公司"], "account");
        assert_eq!(up.suggested_mapping.columns["生日"], "custom.birthday");
        assert_eq!((done.created, done.failed), (2, 1));
        let got = all_contacts(&db);
        assert_eq!(got[0].phone.as_deref(), Some("+8613800138000"));
        assert_eq!(got[0].custom["birthday"], "2024-03-05");
        assert_eq!(got[1].custom["birthday"], "2024-03-06");
        assert_eq!(got[0].account_id, got[1].account_id);
    }
}

#[test]
fn vcard_3_and_4_with_several_cards() {
    for db in test_databases() {
        let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:张;伟;;;\r\nFN:张伟\r\nORG:国美电器;销售部\r\nTEL;TYPE=CELL:138 0013 8000\r\nEMAIL;TYPE=INTERNET:zw@gome.cn\r\nEND:VCARD\r\n\
                  BEGIN:VCARD\r\nVERSION:3.0\r\nN:Smith;Anna;;;\r\nEMAIL:anna@example.com\r\nNOTE:met at the fair\\, hall 2\r\nEND:VCARD\r\n";
        let v4 = "BEGIN:VCARD\nVERSION:4.0\nFN:김민준\nTEL;VALUE=uri;TYPE=cell:tel:+82-10-1234-5678\nEMAIL;PREF=1:minjun@lotte.co.kr\nEND:VCARD\n\
                  BEGIN:VCARD\nVERSION:4.0\nFN:이서연\nitem1.EMAIL:seoyeon@emart.co.kr\nEND:VCARD\n\
                  BEGIN:VCARD\nVERSION:4.0\nEND:VCARD\n";
        let (up, done) = import(&db, "fair.vcf", v3.as_bytes());
        assert_eq!(up.format, "vcard");
        // ORG 国美电器 is no account here: that card fails, naming the column.
        assert_eq!((done.created, done.failed), (1, 1));
        let report = db.read_blocking(|tx| imports::errors_csv(tx, &admin(), up.id)).unwrap();
        let report = String::from_utf8_lossy(&report).into_owned();
        assert!(report.contains("1,account,\"no account is named"), "{report}");
        let (_, done) = import_with(&db, "contact", "fair.vcf", v3.as_bytes(), |m| {
            m.columns.insert("account".into(), "ignore".into());
        });
        assert_eq!((done.created, done.updated, done.skipped, done.failed), (1, 0, 1, 0));
        let (_, done) = import(&db, "kr.vcf", v4.as_bytes());
        assert_eq!((done.created, done.failed), (2, 1), "the card without a name fails");
        let got = all_contacts(&db);
        let names: Vec<&str> = got.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["Anna Smith", "张伟", "김민준", "이서연"]);
        assert_eq!(got[2].phone.as_deref(), Some("+821012345678"));
    }
}

#[test]
fn export_csv_has_a_bom_and_round_trips_through_import() {
    for db in test_databases() {
        let who = admin();
        db.write_blocking(|tx| {
            let cat = fields::create_category(tx, &who, NewCategory { name: "SME".into() })?;
            for (key, ty) in [("tier", "select"), ("since", "date"), ("tags", "multi_select"), ("vip", "boolean")] {
                fields::create_field(
                    tx,
                    &who,
                    NewCustomField {
                        category_id: cat.id,
                        record_type: Some("contact".into()),
                        key: key.into(),
                        label: key.into(),
                        field_type: ty.into(),
                        required: false,
                        options: matches!(ty, "select" | "multi_select")
                            .then(|| vec!["gold".to_owned(), "silver".to_owned()]),
                    },
                )?;
            }
            let shop = accounts::create(
                tx,
                &who,
                NewAccount { name: "Shop, \"the\" one".into(), category_id: Some(cat.id), ..Default::default() },
            )?;
            let custom =
                serde_json::json!({"tier": "gold", "since": "2024-03-05", "tags": ["gold", "silver"], "vip": true});
            contacts::create(
                tx,
                &who,
                contacts::NewContact {
                    name: "张伟".into(),
                    account_id: Some(shop.id),
                    email: Some("zw@x.cn".into()),
                    phone: Some("138 0013 8000".into()),
                    custom: custom.as_object().cloned(),
                    ..Default::default()
                },
            )?;
            contacts::create(tx, &who, contacts::NewContact { name: "Anna \"A\", Smith".into(), ..Default::default() })
        })
        .unwrap();
        let mut csv = Vec::new();
        let n = db
            .read_blocking(|tx| exports::contacts(tx, &who, &ContactFilter::default(), ExportFormat::Csv, &mut csv))
            .unwrap();
        assert_eq!(n, 2);
        assert!(csv.starts_with(b"\xEF\xBB\xBF"));
        let text = String::from_utf8(csv[3..].to_vec()).unwrap();
        assert!(text.starts_with("id,name,email,phone,account_id,account,owner_id,branch_id,created_at,updated_at,custom.tier,custom.since,custom.tags,custom.vip"), "{text}");
        let before = all_contacts(&db);
        let (up, done) = import(&db, "export.csv", &csv);
        assert_eq!(up.suggested_mapping.columns["id"], "ignore");
        assert_eq!(up.suggested_mapping.columns["custom.tags"], "custom.tags");
        // The e-mail-less contact cannot be matched, so it comes back as a new one; the
        // other is unchanged field for field.
        assert_eq!((done.created, done.updated, done.skipped, done.failed), (1, 0, 1, 0));
        let after = all_contacts(&db);
        assert_eq!(after[..2], before[..]);
        assert_eq!(after[2].name, "Anna \"A\", Smith");

        let mut xlsx = Vec::new();
        db.read_blocking(|tx| exports::contacts(tx, &who, &ContactFilter::default(), ExportFormat::Xlsx, &mut xlsx))
            .unwrap();
        let (_, done) = import(&db, "export.xlsx", &xlsx);
        assert_eq!((done.created, done.failed), (2, 0), "only the e-mail-less ones are new");

        let mut vcf = Vec::new();
        db.read_blocking(|tx| exports::contacts(tx, &who, &ContactFilter::default(), ExportFormat::Vcard, &mut vcf))
            .unwrap();
        let text = String::from_utf8(vcf.clone()).unwrap();
        assert!(text.contains("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:张伟\r\nN:张伟;;;;\r\nTEL;TYPE=CELL:+8613800138000\r\nEMAIL;TYPE=INTERNET:zw@x.cn\r\nORG:Shop\\, \"the\" one\r\nEND:VCARD"), "{text}");
        let (_, done) = import(&db, "export.vcf", &vcf);
        assert_eq!((done.created, done.skipped, done.failed), (4, 1, 0));

        let mut accounts_csv = Vec::new();
        db.read_blocking(|tx| {
            exports::accounts(tx, &who, &accounts::AccountFilter::default(), ExportFormat::Csv, &mut accounts_csv)
        })
        .unwrap();
        let (_, done) =
            import_with(&db, "account", "accounts.csv", &accounts_csv, |m| m.match_on = "external_id".into());
        assert_eq!((done.created, done.failed), (1, 0), "no external id to match on: created again");
    }
}

#[test]
fn permissions_are_checked() {
    for db in test_databases() {
        let hash = passwords::hash("password123").unwrap();
        let viewer = db
            .write_blocking(|tx| {
                let hq = kernel::setup::head_office(tx)?;
                let u = users::create(
                    tx,
                    &admin(),
                    users::NewUser {
                        email: "v@x.cn".into(),
                        name: "V".into(),
                        password: "password123".into(),
                        role: "sales".into(),
                        branch_id: hq,
                        ..Default::default()
                    },
                    hash,
                )?;
                kernel::identity::principal_for_user(tx, u.id)
            })
            .unwrap();
        let err =
            db.write_blocking(|tx| imports::create(tx, &viewer, "contact", "a.csv", CSV_ZH.as_bytes())).unwrap_err();
        assert!(matches!(err, Error::Forbidden(p) if p == "customers.import"));
        let mut out = Vec::new();
        let err = db
            .read_blocking(|tx| exports::contacts(tx, &viewer, &ContactFilter::default(), ExportFormat::Csv, &mut out))
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden(p) if p == "customers.export"));
        let up = db.write_blocking(|tx| imports::create(tx, &admin(), "contact", "a.csv", CSV_ZH.as_bytes())).unwrap();
        let err = db.read_blocking(|tx| imports::get(tx, &viewer, up.id)).unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)));
    }
}

#[test]
fn a_contact_of_an_account_sits_in_its_branch_and_its_phone_is_read_there() {
    for db in test_databases() {
        let who = admin();
        db.write_blocking(|tx| {
            let hq = kernel::setup::head_office(tx)?;
            let seoul = kernel::identity::branches::create(
                tx,
                &who,
                kernel::identity::branches::NewBranch {
                    name: "Seoul".into(),
                    parent_id: Some(hq),
                    region: Some("KR".into()),
                    ..Default::default()
                },
            )?;
            accounts::create(
                tx,
                &who,
                NewAccount { name: "롯데마트".into(), branch_id: Some(seoul.id), ..Default::default() },
            )
        })
        .unwrap();
        let csv = "이름,회사,전화\n김민준,롯데마트,010-1234-5678\n王芳,,139 0013 9000\n";
        let (_, done) = import(&db, "kr.csv", csv.as_bytes());
        assert_eq!((done.created, done.failed), (2, 0));
        let got = all_contacts(&db);
        let account = db.read_blocking(|tx| accounts::get(tx, &who, got[0].account_id.unwrap())).unwrap();
        assert_eq!(got[0].branch_id, account.branch_id);
        assert_eq!(got[0].phone.as_deref(), Some("+821012345678"));
        assert_eq!(got[1].phone.as_deref(), Some("+8613900139000"), "no account: the head office's CN");
    }
}

#[test]
fn a_key_repeated_in_a_later_batch_updates_the_record_an_earlier_batch_created() {
    // Batches of 4 rows: two new e-mails, then the two of the batch before (one in other
    // case, with a phone). On PostgreSQL neighbouring batches are written at once
    // (imports/pipeline.rs); a batch must still see the records the one before created.
    for db in test_databases() {
        let who = admin();
        let mut csv = String::from("name,email,phone\n");
        for b in 0..20 {
            csv.push_str(&format!("客户{},c{}@x.cn,\n客户{},c{}@x.cn,\n", 2 * b, 2 * b, 2 * b + 1, 2 * b + 1));
            if b > 0 {
                let (x, y) = (2 * b - 2, 2 * b - 1);
                csv.push_str(&format!("客户{x},C{x}@X.CN,1380013{x:04}\n客户{y},c{y}@x.cn,1380013{y:04}\n"));
            }
        }
        let up = db.write_blocking(|tx| imports::create(tx, &who, "contact", "r.csv", csv.as_bytes())).unwrap();
        let mut reported = Vec::new();
        let options = RunOptions { batch_rows: 4, stop_after_batches: None };
        let done = imports::run(&db, &who, up.id, options, &mut |i| {
            reported.push(i.processed_rows);
            Ok(())
        })
        .unwrap();
        assert_eq!((done.status.as_str(), done.created, done.updated, done.failed), ("done", 40, 38, 0));
        assert_eq!(count(&db, "contacts"), 40, "no second record for a repeated e-mail");
        let expected: Vec<i64> = (1..=20).map(|b| (b * 4).min(78)).collect();
        assert_eq!(reported, expected, "every batch reported once, in file order");
        let with_phone = all_contacts(&db).into_iter().filter(|c| c.phone.is_some()).count();
        assert_eq!(with_phone, 38);
    }
}
