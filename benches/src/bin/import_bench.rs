//! Contact import throughput against the raw batched insert of the same rows
//! (docs/benchmarks.md, "Import").
//!
//! ```sh
//! cargo build --release -j1 -p rapport
//! CARGO_TARGET_DIR=$PWD/benches/target cargo build --release -j1 --manifest-path benches/Cargo.toml --bin import_bench
//! benches/target/release/import_bench --rapport target/release/rapport [--rows 1000000] [--only sqlite|postgres]
//!     [--pg-url postgres://postgres@127.0.0.1:5432] [--dir /tmp/import_bench]
//! ```
//!
//! * The CSV: `name,email,phone` rows with Chinese, Korean and Latin names, unique mixed-case
//!   e-mails and Chinese mobiles typed in several formats.
//! * **A (raw)**: the same rows, already normalised (lower-cased e-mail, E.164 phone), written
//!   into a freshly migrated Rapport database's `contacts` table the way `Tx::insert_rows`
//!   writes them: 1,000 rows per transaction, multi-row `INSERT`s of 500 rows on SQLite,
//!   `COPY … FROM STDIN` on PostgreSQL. No search terms, no audit, no validation. (The
//!   kernel itself cannot be linked here: this project pins rusqlite 0.39 for sqlx.)
//! * **B (Rapport)**: `rapport import contacts FILE` on another freshly migrated database,
//!   wall clock for the whole process: read the file, store it in the database, detect the
//!   encoding, map, validate and normalise every row (name, e-mail, E.164 phone in the
//!   branch's region), look up existing records by e-mail per batch (upsert), insert the
//!   contacts, their search documents, duplicate keys and one audit entry each, and write the
//!   checkpoint — 1,000 rows per transaction.
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::Command;
use std::time::Instant;

use rapport_benches::Rng;

struct Args {
    rapport: String,
    rows: usize,
    only: Option<String>,
    pg_url: String,
    dir: String,
}

fn args() -> Args {
    let mut a = Args {
        rapport: "target/release/rapport".into(),
        rows: 1_000_000,
        only: None,
        pg_url: "postgres://postgres@127.0.0.1:5432".into(),
        dir: std::env::temp_dir().join("import_bench").to_string_lossy().into_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--rapport" => a.rapport = value,
            "--rows" => a.rows = value.parse().expect("--rows N"),
            "--only" => a.only = Some(value),
            "--pg-url" => a.pg_url = value,
            "--dir" => a.dir = value,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

const FAMILY_ZH: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
const GIVEN_ZH: &[&str] = &["芳", "伟", "娜", "秀英", "敏", "静", "丽", "强", "磊", "洋"];
const FAMILY_KO: &[&str] = &["김", "이", "박", "최", "정"];
const GIVEN_KO: &[&str] = &["민준", "서연", "지훈", "수아", "우진"];
const LATIN: &[&str] = &["Emma Rossi", "Liam Chen", "Olivia Park", "Noah Kim", "Mia Wang"];

struct Row {
    name: String,
    email: String,
    phone_raw: String,
    phone_e164: String,
}

fn row(i: usize, rng: &mut Rng) -> Row {
    let name = match rng.below(10) {
        0..=5 => format!("{}{}", FAMILY_ZH[rng.below(10) as usize], GIVEN_ZH[rng.below(10) as usize]),
        6..=8 => format!("{}{}", FAMILY_KO[rng.below(5) as usize], GIVEN_KO[rng.below(5) as usize]),
        _ => LATIN[rng.below(5) as usize].to_owned(),
    };
    let digits = format!("13{:09}", i);
    let phone_raw = match i % 3 {
        0 => format!("{} {} {}", &digits[..3], &digits[3..7], &digits[7..]),
        1 => format!("+86 {}-{}-{}", &digits[..3], &digits[3..7], &digits[7..]),
        _ => digits.clone(),
    };
    Row {
        email: format!("User.{i}@Example{}.com", i % 97).to_lowercase(),
        name,
        phone_e164: format!("+86{digits}"),
        phone_raw,
    }
}

fn generate(path: &str, rows: usize) {
    let mut rng = Rng::new(7);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create the CSV"));
    writeln!(out, "name,email,phone").unwrap();
    for i in 0..rows {
        let r = row(i, &mut rng);
        // Mixed case in the file: the import lower-cases.
        let email = if i % 2 == 0 { r.email.to_uppercase() } else { r.email };
        writeln!(out, "{},{},{}", r.name, email, r.phone_raw).unwrap();
    }
}

fn rapport(bin: &str, url: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .env("RAPPORT_DATABASE_URL", url)
        .env("RAPPORT_LOG", "warn")
        .output()
        .expect("run rapport");
    assert!(out.status.success(), "rapport {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const COLUMNS: &str = "id, name, account_id, branch_id, owner_id, email, phone_e164, phone_raw, custom, created_at, updated_at, version";

fn raw_sqlite(path: &str, rows: &[Row]) -> f64 {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;").unwrap();
    let branch: i64 = conn.query_row("SELECT id FROM branches ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let started = Instant::now();
    let base: i64 = 1 << 50;
    for (b, batch) in rows.chunks(1000).enumerate() {
        let tx = conn.transaction().unwrap();
        for (c, chunk) in batch.chunks(500).enumerate() {
            let mut sql = format!("INSERT INTO contacts ({COLUMNS}) VALUES ");
            sql.push_str(&vec!["(?, ?, NULL, ?, NULL, ?, ?, ?, '{}', ?, ?, 1)"; chunk.len()].join(", "));
            let mut stmt = tx.prepare_cached(&sql).unwrap();
            let mut params: Vec<rusqlite::types::Value> = Vec::with_capacity(chunk.len() * 8);
            for (k, r) in chunk.iter().enumerate() {
                let id = base + (b * 1000 + c * 500 + k) as i64;
                params.push(id.into());
                params.push(r.name.clone().into());
                params.push(branch.into());
                params.push(r.email.clone().into());
                params.push(r.phone_e164.clone().into());
                params.push(r.phone_raw.clone().into());
                params.push(now.clone().into());
                params.push(now.clone().into());
            }
            stmt.execute(rusqlite::params_from_iter(params)).unwrap();
        }
        tx.commit().unwrap();
    }
    started.elapsed().as_secs_f64()
}

fn raw_postgres(url: &str, rows: &[Row]) -> f64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let branch: i64 = client.query_one("SELECT id FROM branches ORDER BY id LIMIT 1", &[]).unwrap().get(0);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let started = Instant::now();
    let base: i64 = 1 << 50;
    let mut line = String::new();
    for (b, batch) in rows.chunks(1000).enumerate() {
        let mut tx = client.transaction().unwrap();
        {
            let mut w = tx.copy_in(&format!("COPY contacts ({COLUMNS}) FROM STDIN")).unwrap();
            for (k, r) in batch.iter().enumerate() {
                line.clear();
                let id = base + (b * 1000 + k) as i64;
                let _ = writeln!(
                    line,
                    "{id}\t{}\t\\N\t{branch}\t\\N\t{}\t{}\t{}\t{{}}\t{now}\t{now}\t1",
                    r.name, r.email, r.phone_e164, r.phone_raw
                );
                w.write_all(line.as_bytes()).unwrap();
            }
            w.finish().unwrap();
        }
        tx.commit().unwrap();
    }
    started.elapsed().as_secs_f64()
}

fn fresh_pg(server: &str, name: &str) -> String {
    let mut admin = postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls).unwrap();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    format!("{server}/{name}")
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.dir).unwrap();
    let csv = format!("{}/contacts.csv", a.dir);
    let started = Instant::now();
    generate(&csv, a.rows);
    let size = std::fs::metadata(&csv).unwrap().len();
    println!("generated {} rows ({:.1} MB) in {:.1} s", a.rows, size as f64 / 1e6, started.elapsed().as_secs_f64());
    let mut rng = Rng::new(7);
    let rows: Vec<Row> = (0..a.rows).map(|i| row(i, &mut rng)).collect();
    let mut table = String::from(
        "| backend | A raw insert rows/s | B import rows/s | B/A |\n|---|---|---|---|\n",
    );
    for backend in ["sqlite", "postgres"] {
        if a.only.as_deref().is_some_and(|o| o != backend) {
            continue;
        }
        let (raw_url, import_url) = if backend == "sqlite" {
            for f in ["raw.db", "raw.db-wal", "raw.db-shm", "import.db", "import.db-wal", "import.db-shm"] {
                let _ = std::fs::remove_file(format!("{}/{f}", a.dir));
            }
            (format!("sqlite://{}/raw.db", a.dir), format!("sqlite://{}/import.db", a.dir))
        } else {
            (fresh_pg(&a.pg_url, "import_bench_raw"), fresh_pg(&a.pg_url, "import_bench_import"))
        };
        rapport(&a.rapport, &raw_url, &["migrate"]);
        rapport(&a.rapport, &import_url, &["migrate"]);
        let raw_secs = if backend == "sqlite" {
            raw_sqlite(&format!("{}/raw.db", a.dir), &rows)
        } else {
            raw_postgres(&raw_url, &rows)
        };
        let raw_rate = a.rows as f64 / raw_secs;
        println!("{backend}: A raw insert {} rows in {raw_secs:.1} s = {raw_rate:.0} rows/s", a.rows);
        let started = Instant::now();
        let out = rapport(&a.rapport, &import_url, &["import", "contacts", &csv]);
        let import_secs = started.elapsed().as_secs_f64();
        let import_rate = a.rows as f64 / import_secs;
        println!("{backend}: B import {} rows in {import_secs:.1} s = {import_rate:.0} rows/s\n{}", a.rows, out.trim());
        assert!(out.contains(&format!("created {}, updated 0, skipped 0, failed 0", a.rows)), "{out}");
        // What the import wrote beside the contacts.
        let documents = if backend == "sqlite" { "search_index_docsize" } else { "search_index" };
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM contacts), (SELECT COUNT(*) FROM {documents}), \
             (SELECT COUNT(*) FROM audit_log), (SELECT COUNT(*) FROM dedupe_keys)"
        );
        let written: [i64; 4] = if backend == "sqlite" {
            let conn = rusqlite::Connection::open(format!("{}/import.db", a.dir)).unwrap();
            conn.query_row(&sql, [], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])).unwrap()
        } else {
            let row = postgres::Client::connect(&import_url, postgres::NoTls).unwrap().query_one(&sql, &[]).unwrap();
            [row.get(0), row.get(1), row.get(2), row.get(3)]
        };
        let [contacts, documents, audit, keys] = written;
        println!(
            "{backend}: B wrote {contacts} contacts, {documents} search documents, {audit} audit entries, {keys} duplicate keys"
        );
        let _ = writeln!(
            table,
            "| {backend} | {raw_rate:.0} | {import_rate:.0} | **{:.0}%** |",
            100.0 * import_rate / raw_rate
        );
    }
    println!("\n{table}");
}
