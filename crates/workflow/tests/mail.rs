#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Notification mails through the outbox to a real SMTP server on loopback (a small sink
//! written here with std's TcpListener: it speaks enough SMTP for lettre and records
//! each envelope and message), on SQLite and (when configured) PostgreSQL.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine;
use kernel::identity::{passwords, users};
use kernel::jobs::{Registry, Worker};
use kernel::testing::test_databases;
use kernel::{Channel, Error, Principal};
use serde_json::json;
use workflow::amount::Money;
use workflow::engine::{self, Decision};
use workflow::expenses::{self, NewClaim};
use workflow::mail::{self, Smtp};
use workflow::processes::{self, NewProcess, StepInput};

#[derive(Debug, Clone, Default)]
struct Received {
    rcpt: Vec<String>,
    data: String,
}

/// Starts the sink; returns its port and what it received.
fn smtp_sink() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let store = inbox.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut out) = stream else { return };
            let mut lines = BufReader::new(out.try_clone().unwrap());
            let mut mail = Received::default();
            let _ = out.write_all(b"220 sink ESMTP\r\n");
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let upper = line.to_ascii_uppercase();
                let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    b"250-sink\r\n250 8BITMIME\r\n"
                } else if upper.starts_with("RCPT TO:") {
                    mail.rcpt.push(line[8..].trim().to_owned());
                    b"250 ok\r\n"
                } else if upper.starts_with("DATA") {
                    let _ = out.write_all(b"354 go on\r\n");
                    let mut data = String::new();
                    loop {
                        let mut l = String::new();
                        if lines.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                            break;
                        }
                        data.push_str(&l);
                    }
                    mail.data = data;
                    store.lock().unwrap().push(std::mem::take(&mut mail));
                    b"250 queued\r\n"
                } else if upper.starts_with("QUIT") {
                    let _ = out.write_all(b"221 bye\r\n");
                    break;
                } else {
                    b"250 ok\r\n"
                };
                let _ = out.write_all(reply);
            }
        }
    });
    (port, inbox)
}

/// A header's value, unfolded, with RFC 2047 `=?utf-8?b?…?=` words decoded.
fn header(data: &str, name: &str) -> String {
    let mut value = String::new();
    let mut inside = false;
    for line in data.split("\r\n") {
        if line.is_empty() {
            break;
        }
        if inside && (line.starts_with(' ') || line.starts_with('\t')) {
            value.push_str(line);
            continue;
        }
        inside = line.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase()));
        if inside {
            value.push_str(&line[name.len() + 1..]);
        }
    }
    // Whitespace between two encoded words is dropped; any other is kept.
    let mut out = String::new();
    let mut last_encoded = false;
    for word in value.split_whitespace() {
        let encoded = word.to_ascii_lowercase().starts_with("=?utf-8?b?") && word.ends_with("?=");
        let joined = encoded && last_encoded;
        if !out.is_empty() && !joined {
            out.push(' ');
        }
        if encoded {
            let bytes = base64::engine::general_purpose::STANDARD.decode(&word[10..word.len() - 2]).unwrap();
            out.push_str(&String::from_utf8(bytes).unwrap());
        } else {
            out.push_str(word);
        }
        last_encoded = encoded;
    }
    out
}

#[test]
fn notification_mails_reach_a_real_smtp_server_once_with_utf8_subjects() {
    for db in test_databases() {
        let (port, received) = smtp_sink();
        let admin = Principal::system(Channel::Cli);
        let hash = passwords::hash("password123").unwrap();
        let hq = db.write_blocking(kernel::setup::head_office).unwrap();
        let user = |email: &str, name: &str, role: &str, locale: &str| -> Principal {
            db.write_blocking(|tx| {
                let u = users::create(
                    tx,
                    &admin,
                    users::NewUser {
                        email: email.into(),
                        name: name.into(),
                        password: "password123".into(),
                        role: role.into(),
                        branch_id: hq,
                        locale: Some(locale.into()),
                        ..Default::default()
                    },
                    hash.clone(),
                )?;
                kernel::identity::principal_for_user(tx, u.id)
            })
            .unwrap()
        };
        // Each hears in their own language: 王芳 in Chinese, 김민준 in Korean.
        let wang = user("wang.fang@example.cn", "王芳", "manager", "zh-CN");
        let kim = user("kim.minjun@example.kr", "김민준", "sales", "ko-KR");
        let registry = workflow::Registry::standard();
        db.write_blocking(|tx| {
            processes::create(
                tx,
                &admin,
                &registry,
                NewProcess {
                    name: "报销审批 / 경비 승인".into(),
                    record_type: "expense_claim".into(),
                    steps: vec![StepInput {
                        kind: "sequential".into(),
                        approvers: vec![json!({"kind": "user", "user_id": wang.user_id})],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )
        })
        .unwrap();
        let claim = db
            .write_blocking(|tx| {
                expenses::create(
                    tx,
                    &kim,
                    NewClaim {
                        amount: Some(Money { amount: "88000".into(), currency: "KRW".into() }),
                        category: "meals".into(),
                        description: "서울 고객 만찬 · 首尔客户晚宴".into(),
                    },
                )
            })
            .unwrap();
        db.write_blocking(|tx| expenses::submit(tx, &kim, &registry, claim.id)).unwrap();
        let task = db
            .read_blocking(|tx| {
                engine::list_mine(tx, &wang, "pending", &kernel::paging::PageRequest::parse(None, None)?)
            })
            .unwrap()
            .items[0]
            .id;
        db.write_blocking(|tx| engine::decide(tx, &wang, &registry, task, Decision::Approve, Some("同意".into())))
            .unwrap();
        // No SMTP server configured yet: the jobs finish as skipped and the mails wait.
        let unconfigured = Worker::new(db.db(), Registry::new().with(mail::SEND_JOB, mail::send_job(Ok(None))), "t");
        while unconfigured.run_once().unwrap() {}
        assert!(received.lock().unwrap().is_empty());
        // Once one is, start-up gives each waiting mail one job (and no second one).
        assert_eq!(db.write_blocking(mail::requeue_unsent).unwrap(), 3);
        assert_eq!(db.write_blocking(mail::requeue_unsent).unwrap(), 0);
        let smtp = Smtp::parse(&format!("smtp://127.0.0.1:{port}"), Some("Rapport <rapport@example.com>")).unwrap();
        let worker =
            Worker::new(db.db(), Registry::new().with(mail::SEND_JOB, mail::send_job(Ok(Some(smtp.clone())))), "t");
        while worker.run_once().unwrap() {}
        let mails = received.lock().unwrap().clone();
        // 王芳 was asked; 김민준 heard of the step and of the outcome.
        assert_eq!(mails.len(), 3, "{mails:?}");
        let mut seen: Vec<(String, String)> =
            mails.iter().map(|m| (m.rcpt.join(","), header(&m.data, "Subject"))).collect();
        seen.sort();
        let title = "meals 88,000 KRW: 서울 고객 만찬 · 首尔客户晚宴";
        assert_eq!(
            seen,
            [
                ("<kim.minjun@example.kr>".to_owned(), format!("王芳님이 1단계를 승인했습니다: {title}")),
                ("<kim.minjun@example.kr>".to_owned(), format!("승인됨: {title}")),
                ("<wang.fang@example.cn>".to_owned(), format!("待您审批：{title}")),
            ]
        );
        let to: Vec<String> = mails.iter().map(|m| header(&m.data, "To")).collect();
        assert!(to.iter().any(|t| t.contains("王芳") && t.contains("wang.fang@example.cn")), "{to:?}");
        assert!(to.iter().any(|t| t.contains("김민준")), "{to:?}");
        assert!(mails.iter().all(|m| m.data.contains("Message-ID: <outbox-")));
        // Every row is marked sent; sending again sends nothing (no doubles).
        let sent = db
            .read_blocking(|tx| tx.query_sql::<i64>("SELECT COUNT(*) FROM mail_outbox WHERE status = 'sent'", &[]))
            .unwrap()[0];
        assert_eq!(sent, 3);
        let ids: Vec<i64> = db.read_blocking(|tx| tx.query_sql::<i64>("SELECT id FROM mail_outbox", &[])).unwrap();
        for id in ids {
            assert!(!mail::deliver(&db.db(), &smtp, kernel::Id(id)).unwrap());
        }
        assert_eq!(received.lock().unwrap().len(), 3);
        let _: Option<Error> = None;
    }
}

#[test]
fn smtp_settings_are_checked() {
    assert_eq!(Smtp::parse("smtp://mail.example.com:2525", None).unwrap().port, 2525);
    assert_eq!(Smtp::parse("smtp://mail.example.com", None).unwrap().port, 25);
    assert!(Smtp::parse("http://x", None).is_err());
    assert!(Smtp::parse("smtp://x:port", None).is_err());
    assert!(Smtp::parse("smtp://x:25", Some("not an address")).is_err());
}
