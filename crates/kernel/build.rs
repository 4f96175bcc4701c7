#![expect(clippy::expect_used, reason = "a build script reports a broken source tree by failing the build")]
//! Embeds the migration files of both backends into the binary, so `rapport` runs from any
//! working directory. A migration must exist for both backends under the same name: the
//! build fails otherwise, which keeps the two schemas in lockstep.
use std::{env, fs, path::PathBuf};

fn list(dir: &PathBuf) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("../../migrations");
    let sqlite_dir = root.join("sqlite");
    let postgres_dir = root.join("postgres");
    println!("cargo:rerun-if-changed={}", sqlite_dir.display());
    println!("cargo:rerun-if-changed={}", postgres_dir.display());
    let sqlite = list(&sqlite_dir);
    let postgres = list(&postgres_dir);
    assert_eq!(sqlite, postgres, "migrations/sqlite and migrations/postgres must hold the same file names");

    let mut out = String::from("pub static MIGRATIONS: &[Migration] = &[\n");
    for name in &sqlite {
        let stem = name.trim_end_matches(".sql");
        let version: i64 = stem
            .split('_')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("migration {name} must start with a number, e.g. 0002_customers.sql"));
        println!("cargo:rerun-if-changed={}", sqlite_dir.join(name).display());
        println!("cargo:rerun-if-changed={}", postgres_dir.join(name).display());
        out.push_str(&format!(
            "    Migration {{ version: {version}, name: {stem:?}, sqlite: include_str!({:?}), postgres: include_str!({:?}) }},\n",
            sqlite_dir.join(name).canonicalize().expect("path").display().to_string(),
            postgres_dir.join(name).canonicalize().expect("path").display().to_string(),
        ));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("out dir")).join("migrations.rs");
    fs::write(dest, out).expect("write migrations.rs");
}
