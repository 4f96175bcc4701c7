//! Search and customer-360 latency at scale (docs/benchmarks.md, "Search and customer 360").
//!
//! Run against a database seeded by `rapport demo --size large` and a Rapport server on it:
//!
//! ```sh
//! search_bench --db sqlite:///path/rapport.db --base http://127.0.0.1:8080 --token TOKEN [--rounds 100]
//! search_bench --db postgres://postgres@127.0.0.1:5432/rapport_bench --base ... --token ...
//! ```
//!
//! * **A (raw)**: the query a naive implementation would run, straight through the fastest
//!   driver (rusqlite / the synchronous `postgres` client): `name LIKE '%q%' OR email LIKE
//!   '%q%'` (phone digits: `phone_e164 LIKE`), first 20 rows, unranked — cheap when the text
//!   is common, a full table scan when it is rare.
//! * **B (Rapport)**: `GET /api/v1/search?q=&limit=20` through the full HTTP stack (token
//!   authentication, permission, data scope, ranking, JSON), one keep-alive connection.
//! * **360**: the reads behind the customer 360 page, one after the other, as Rapport's API:
//!   the account, its contacts (first 50), the first timeline page (20), its open tasks and
//!   its audit history — each alone and their sum, over many accounts.
//!
//! A and B alternate within every round; p50 and p95 over the rounds.
use std::time::Instant;

use rapport_benches::Rng;

struct Args {
    db: String,
    base: String,
    token: String,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args { db: String::new(), base: String::new(), token: String::new(), rounds: 100 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--db" => a.db = value,
            "--base" => a.base = value,
            "--token" => a.token = value,
            "--rounds" => a.rounds = value.parse().unwrap_or(100),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.db.is_empty() && !a.base.is_empty() && !a.token.is_empty(), "need --db, --base and --token");
    a
}

enum Raw {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl Raw {
    fn open(url: &str) -> Raw {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open sqlite");
            Raw::Sqlite(conn)
        } else {
            Raw::Postgres(postgres::Client::connect(url, postgres::NoTls).expect("connect postgres"))
        }
    }

    /// Ids of the first 20 rows whose `column(s)` contain `needle`.
    fn like(&mut self, needle: &str, phone: bool) -> usize {
        let pattern = format!("%{needle}%");
        let sql = if phone {
            "SELECT id FROM contacts WHERE deleted_at IS NULL AND phone_e164 LIKE $1 LIMIT 20"
        } else {
            "SELECT id FROM contacts WHERE deleted_at IS NULL AND (name LIKE $1 OR email LIKE $1) LIMIT 20"
        };
        match self {
            Raw::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&sql.replace("$1", "?1")).expect("prepare");
                stmt.query_map([&pattern], |r| r.get::<_, i64>(0)).expect("query").count()
            }
            Raw::Postgres(c) => c.query(sql, &[&pattern]).expect("query").len(),
        }
    }

    fn ids(&mut self, sql: &str) -> Vec<i64> {
        match self {
            Raw::Sqlite(c) => {
                let mut stmt = c.prepare(sql).expect("prepare");
                stmt.query_map([], |r| r.get::<_, i64>(0)).expect("query").map(|r| r.expect("row")).collect()
            }
            Raw::Postgres(c) => c.query(sql, &[]).expect("query").iter().map(|r| r.get::<_, i64>(0)).collect(),
        }
    }
}

fn get(agent: &ureq::Agent, args: &Args, path: &str) -> String {
    let url = format!("{}{path}", args.base);
    let mut resp = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {}", args.token))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    resp.body_mut().read_to_string().expect("body")
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// (p50, p95, max)
fn percentiles(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.95), v[v.len() - 1])
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn main() {
    let args = args();
    let mut raw = Raw::open(&args.db);
    let backend = if args.db.starts_with("sqlite") { "SQLite" } else { "PostgreSQL" };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(true).build().into();
    let contacts = raw.ids("SELECT count(*) FROM contacts")[0];
    let activities = raw.ids("SELECT count(*) FROM activities")[0];
    // The issue's phone examples: ten contacts created through the API (the validated
    // path, at full size) unless the seed planted them.
    if raw.ids("SELECT count(*) FROM contacts WHERE phone_e164 LIKE '%1380013800%'")[0] == 0 {
        for i in 0..10 {
            let body = format!(r#"{{"name": "张伟{i}", "phone": "138 0013 800{i}"}}"#);
            agent
                .post(&format!("{}/api/v1/contacts", args.base))
                .header("Authorization", &format!("Bearer {}", args.token))
                .header("Content-Type", "application/json")
                .send(&body)
                .expect("create a contact");
        }
    }
    println!("## {backend}: {contacts} contacts, {activities} activities, {} rounds\n", args.rounds);
    println!("| query | hits | A raw LIKE p50 / p95 ms | B Rapport search p50 / p95 ms |");
    println!("|---|---|---|---|");
    let queries: [(&str, &str, bool); 10] = [
        ("张", "张", false),
        ("王", "王", false),
        ("王芳", "王芳", false),
        ("김", "김", false),
        ("김민준", "김민준", false),
        ("138 0013", "1380013", true),
        ("0013 8000", "00138000", true),
        ("@gome", "@gome", false),
        ("gome", "gome", false),
        ("zzzz", "zzzz", false),
    ];
    for (q, needle, phone) in queries {
        let (mut a, mut b, mut hits) = (Vec::new(), Vec::new(), 0);
        let path = format!("/api/v1/search?q={}&limit=20", encode(q));
        get(&agent, &args, &path); // warm the connection and the statement cache
        for _ in 0..args.rounds {
            let t = Instant::now();
            raw.like(needle, phone);
            a.push(ms(t));
            let t = Instant::now();
            let body = get(&agent, &args, &path);
            b.push(ms(t));
            hits = body.matches("\"record_type\"").count();
        }
        let (a50, a95, _) = percentiles(&a);
        let (b50, b95, bmax) = percentiles(&b);
        println!("| `{q}` | {hits} | {a50:.2} / {a95:.2} | **{b50:.2} / {b95:.2}** (max {bmax:.1}) |");
    }
    // The lists' q= filter: first page, id order.
    for q in ["王", "gome", "138 0013"] {
        let path = format!("/api/v1/contacts?q={}&limit=50", encode(q));
        get(&agent, &args, &path);
        let mut b = Vec::new();
        for _ in 0..args.rounds {
            let t = Instant::now();
            get(&agent, &args, &path);
            b.push(ms(t));
        }
        let (b50, b95, bmax) = percentiles(&b);
        println!("| contacts list `q={q}`, 50 | | | {b50:.2} / {b95:.2} (max {bmax:.1}) |");
    }

    // Customer 360: accounts spread over the whole table (the bulk accounts have 50
    // contacts and ~500 timeline entries each).
    let ids = raw.ids("SELECT id FROM accounts WHERE external_id LIKE 'BULK-%' ORDER BY id");
    let ids = if ids.is_empty() { raw.ids("SELECT id FROM accounts ORDER BY id") } else { ids };
    let mut rng = Rng::new(42);
    let names = ["account", "contacts (50)", "timeline (20)", "open tasks", "history", "**360 total**"];
    let mut parts: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let timeline_rows = get(&agent, &args, &format!("/api/v1/accounts/{}/timeline?limit=20", ids[0]));
    let contact_rows = get(&agent, &args, &format!("/api/v1/contacts?account_id={}&limit=50", ids[0]));
    for _ in 0..args.rounds {
        let id = *rng.pick(&ids);
        let paths = [
            format!("/api/v1/accounts/{id}"),
            format!("/api/v1/contacts?account_id={id}&limit=50"),
            format!("/api/v1/accounts/{id}/timeline?limit=20"),
            format!("/api/v1/tasks?account_id={id}&status=open"),
            format!("/api/v1/audit?record_type=account&record_id={id}"),
        ];
        let all = Instant::now();
        for (i, path) in paths.iter().enumerate() {
            let t = Instant::now();
            get(&agent, &args, path);
            parts[i].push(ms(t));
        }
        parts[names.len() - 1].push(ms(all));
    }
    println!(
        "\n360 reads over {} accounts (e.g. {} contacts, {} timeline entries on the first page):\n",
        ids.len(),
        contact_rows.matches("\"account_id\"").count(),
        timeline_rows.matches("\"occurred_at\"").count()
    );
    println!("| read | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|");
    for (name, values) in names.iter().zip(&parts) {
        let (p50, p95, max) = percentiles(values);
        println!("| {name} | {p50:.2} | {p95:.2} | {max:.1} |");
    }
}
