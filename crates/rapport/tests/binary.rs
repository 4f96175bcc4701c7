//! Black-box tests of the real `rapport` binary: the CLI contract, a `kill -9` during
//! writes, and two nodes sharing one PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use kernel::testing::{TestDb, test_databases};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_rapport");

fn rapport(db: &TestDb, args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).env("RAPPORT_DATABASE_URL", db.url()).env("RAPPORT_LOG", "warn").output().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(db_url: &str) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RAPPORT_DATABASE_URL", db_url)
            .env("RAPPORT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("server prints its URL").to_owned();
        Server { child, url }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().new_agent()
}

fn get(url: &str, token: &str) -> (u16, Value) {
    let mut res = agent().get(url).header("Authorization", &format!("Bearer {token}")).call().unwrap();
    (res.status().as_u16(), res.body_mut().read_json().unwrap_or(Value::Null))
}

fn post(url: &str, token: &str, body: Value) -> Result<(u16, Value), ureq::Error> {
    let mut res = agent().post(url).header("Authorization", &format!("Bearer {token}")).send_json(body)?;
    Ok((res.status().as_u16(), res.body_mut().read_json().unwrap_or(Value::Null)))
}

fn admin_token(db: &TestDb) -> String {
    stdout(&rapport(
        db,
        &["user", "add", "--email", "root@example.com", "--password", "password123", "--role", "admin"],
    ));
    let token = stdout(&rapport(db, &["token", "create", "--email", "root@example.com"]));
    let lines: Vec<&str> = token.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone on stdout");
    assert!(lines[0].starts_with("rap_"));
    lines[0].to_owned()
}

#[test]
fn cli_contract() {
    for db in test_databases() {
        let out = stdout(&rapport(&db, &["migrate"]));
        assert!(out.contains("schema at version"));
        let token = admin_token(&db);
        let list = stdout(&rapport(&db, &["user", "list"]));
        assert!(list.contains("root@example.com\tadmin\tactive"));
        // Bad input: non-zero exit, one line naming the problem, nothing written.
        let bad = rapport(&db, &["user", "add", "--email", "nope", "--password", "x", "--role", "ghost"]);
        assert!(!bad.status.success());
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("--email") && err.contains("--password") && err.contains("--role"), "{err}");
        let dup = rapport(
            &db,
            &["user", "add", "--email", "root@example.com", "--password", "password123", "--role", "admin"],
        );
        assert!(!dup.status.success());
        assert!(!rapport(&db, &["token", "create", "--email", "ghost@example.com"]).status.success());
        // passwd from standard input.
        let mut child = Command::new(BIN)
            .args(["user", "passwd", "--email", "root@example.com"])
            .env("RAPPORT_DATABASE_URL", db.url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"a new password\n").unwrap();
        assert!(child.wait().unwrap().success());
        // Backup: SQLite gives a consistent copy; PostgreSQL points to pg_dump.
        let dir = std::env::temp_dir().join(format!("rapport-backup-{}", kernel::Id::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("copy.db");
        let out = rapport(&db, &["backup", file.to_str().unwrap()]);
        match db.backend() {
            kernel::Backend::Sqlite => {
                assert!(stdout(&out).contains("integrity check ok"));
                let copy = kernel::Db::open(&format!("sqlite://{}", file.display())).unwrap();
                let n: Vec<i64> = copy.read_blocking(|tx| tx.query_sql("SELECT COUNT(*) FROM users", &[])).unwrap();
                assert_eq!(n, vec![1]);
            }
            kernel::Backend::Postgres => {
                assert!(!out.status.success());
                assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
            }
        }
        let _ = std::fs::remove_dir_all(dir);
        let _ = token;
    }
}

#[test]
fn kill_9_during_writes_loses_nothing_committed() {
    for db in test_databases() {
        let token = admin_token(&db);
        let server = Server::start(&db.url());
        let (_, me) = get(&format!("{}/api/v1/me", server.url), &token);
        let parent = me["branch_id"].as_str().unwrap().to_owned();
        // A writer keeps creating branches; every acknowledged one must survive.
        let url = format!("{}/api/v1/branches", server.url);
        let writer_token = token.clone();
        let (ack_tx, ack_rx) = std::sync::mpsc::channel::<String>();
        let writer = std::thread::spawn(move || {
            for i in 0.. {
                match post(&url, &writer_token, json!({"name": format!("branch {i}"), "parent_id": parent})) {
                    Ok((201, body)) => {
                        if ack_tx.send(body["id"].as_str().unwrap().to_owned()).is_err() {
                            return;
                        }
                    }
                    _ => return, // the server is gone
                }
            }
        });
        let mut acknowledged: Vec<String> = ack_rx.iter().take(40).collect();
        server.kill9();
        drop(ack_rx);
        writer.join().unwrap();
        // The restarted server has every acknowledged write, and the database is sound.
        let server = Server::start(&db.url());
        acknowledged.dedup();
        for id in &acknowledged {
            let (status, _) = get(&format!("{}/api/v1/branches/{id}", server.url), &token);
            assert_eq!(status, 200, "acknowledged branch {id} lost on {:?}", db.backend());
        }
        if db.backend() == kernel::Backend::Sqlite {
            let check: Vec<String> = db.read_blocking(|tx| tx.query_sql("PRAGMA integrity_check", &[])).unwrap();
            assert_eq!(check, vec!["ok".to_owned()]);
        }
        // Every branch row has its audit entry: no half-written unit of work.
        let orphans: Vec<i64> = db
            .read_blocking(|tx| {
                tx.query_sql(
                    "SELECT COUNT(*) FROM branches b WHERE NOT EXISTS \
                     (SELECT 1 FROM audit_log a WHERE a.record_type = 'branch' AND a.record_id = b.id) AND b.parent_id IS NOT NULL",
                    &[],
                )
            })
            .unwrap();
        assert_eq!(orphans, vec![0]);
    }
}

#[test]
fn two_nodes_on_one_postgres_behave_as_one_system() {
    let Some(db) = TestDb::postgres() else {
        eprintln!("skipped: RAPPORT_TEST_DATABASE_URL is not set");
        return;
    };
    let token = admin_token(&db);
    let a = Server::start(&db.url());
    let b = Server::start(&db.url());
    let (_, me) = get(&format!("{}/api/v1/me", a.url), &token);
    let (status, created) =
        post(&format!("{}/api/v1/branches", a.url), &token, json!({"name": "分店 A", "parent_id": me["branch_id"]}))
            .unwrap();
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let (status, seen) = get(&format!("{}/api/v1/branches/{id}", b.url), &token);
    assert_eq!(status, 200);
    assert_eq!(seen["name"], "分店 A");
    // A token revoked through one node stops working on the other at once.
    let (_, tokens) = get(&format!("{}/api/v1/tokens", b.url), &token);
    let token_id = tokens["items"][0]["id"].as_str().unwrap();
    let res = agent()
        .delete(&format!("{}/api/v1/tokens/{token_id}", b.url))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(get(&format!("{}/api/v1/me", a.url), &token).0, 401);
}

#[test]
fn import_and_export_on_the_cli() {
    for db in test_databases() {
        let dir = std::env::temp_dir().join(format!("rapport-io-{}", kernel::Id::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        std::fs::write(
            path("cards.csv"),
            "name,email,phone\n张伟,zhang@gome.cn,138 0013 8000\n坏行\n王芳,Wang@Gome.cn,\nBad Mail,bad@,\n",
        )
        .unwrap();
        let out = rapport(&db, &["import", "contacts", &path("cards.csv"), "--dry-run"]);
        let text = stdout(&out);
        assert!(text.contains("dry run of 4 rows: would create 2, update 0, skip 0; 2 failed"), "{text}");
        let out = rapport(&db, &["import", "contacts", &path("cards.csv")]);
        let text = stdout(&out);
        assert!(text.contains("created 2, updated 0, skipped 0, failed 2"), "{text}");
        assert!(text.contains(&format!("error report: {}", path("cards.csv.errors.csv"))), "{text}");
        let report = std::fs::read_to_string(path("cards.csv.errors.csv")).unwrap();
        assert!(report.contains("3,,the row has 1 columns but the header has 3"), "{report}");
        assert!(report.contains("5,email,"), "{report}");
        // A re-run creates nothing new.
        let text = stdout(&rapport(&db, &["import", "contacts", &path("cards.csv")]));
        assert!(text.contains("created 0, updated 0, skipped 2, failed 2"), "{text}");
        // The file itself unusable: non-zero, one line on stderr.
        std::fs::write(path("empty.csv"), "").unwrap();
        std::fs::write(path("photo.csv"), [0u8, 1, 2, 3, 0xff, 0xd8, 0, 0]).unwrap();
        std::fs::write(path("doc.pdf"), "%PDF-1.7").unwrap();
        for (file, why) in
            [("empty.csv", "empty"), ("photo.csv", "binary"), ("doc.pdf", "not CSV"), ("missing.csv", "reading")]
        {
            let out = rapport(&db, &["import", "contacts", &path(file)]);
            assert!(!out.status.success(), "{file}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(why) && err.trim().lines().count() == 1, "{file}: {err}");
        }
        let out = rapport(&db, &["import", "leads", &path("cards.csv")]);
        assert!(!out.status.success());
        // Export: CSV with a BOM that imports back unchanged; vCard; XLSX.
        let text = stdout(&rapport(&db, &["export", "contacts", &path("out.csv")]));
        assert!(text.contains("exported 2 contacts"), "{text}");
        let csv = std::fs::read(path("out.csv")).unwrap();
        assert!(csv.starts_with(b"\xEF\xBB\xBF"));
        assert!(String::from_utf8_lossy(&csv).contains("wang@gome.cn"));
        let text = stdout(&rapport(&db, &["import", "contacts", &path("out.csv")]));
        assert!(text.contains("created 0, updated 0, skipped 2, failed 0"), "{text}");
        stdout(&rapport(&db, &["export", "contacts", &path("out.vcf")]));
        assert!(std::fs::read_to_string(path("out.vcf")).unwrap().contains("FN:张伟\r\n"));
        stdout(&rapport(&db, &["export", "accounts", &path("out.xlsx")]));
        assert!(std::fs::read(path("out.xlsx")).unwrap().starts_with(b"PK"));
        assert!(!rapport(&db, &["export", "contacts", &path("out.txt")]).status.success());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
