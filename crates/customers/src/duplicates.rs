//! The duplicate scan (docs/duplicates.md): candidate pairs of accounts or contacts that
//! share a normalised e-mail, an E.164 phone or a normalised name, ranked by how much they
//! share.
//!
//! The scan never compares every record with every other. It groups records that share a
//! key, keeps the groups of 2..=[`MAX_GROUP`] (names: [`MAX_NAME_GROUP`]) live records the
//! caller can see, and scores only the pairs inside those groups. E-mail and phone groups
//! are read from the records' own indexes (`lower(email)`, `phone_e164`); the name keys,
//! which no column holds, live in `dedupe_keys`, rewritten by [`sync`] from every write
//! path (create, update, delete, restore, merge, erase).
use std::collections::{BTreeMap, BTreeSet};

use kernel::db::{DbError, FromRow, Row};
use kernel::{Id, Principal, Result, Tx};
use sea_query::{Alias, Expr, ExprTrait, Order, Query, Value};
use serde::Serialize;

use crate::record::RecordType;

/// E-mail and phone groups larger than this are not a duplicate signal on their own (a
/// shared `info@` address, a switchboard); their members still pair up through other keys.
pub const MAX_GROUP: i64 = 25;
/// The same for name groups: common names (王芳, 김민준) collide by the dozen in a large
/// base, and a name alone is weak evidence, so only rare names group.
pub const MAX_NAME_GROUP: i64 = 8;
/// Most groups one scan reads.
const MAX_GROUPS: u64 = 20_000;
/// Most pairs one scan returns; default [`DEFAULT_LIMIT`].
pub const MAX_LIMIT: usize = 500;
pub const DEFAULT_LIMIT: usize = 50;
/// Ids per `IN (…)` list.
const BATCH: usize = 500;

/// Full-width ASCII folded, lower case, then cut into runs of letters and digits
/// (punctuation and spaces separate; CJK and Hangul characters are letters).
fn name_tokens(name: &str) -> Vec<String> {
    let folded: String = name
        .chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect();
    folded.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// The grouping keys of one record: `(kind, key)`.
///
/// * `email`: the lower-cased address;
/// * `phone`: the E.164 number;
/// * `name`: the name's letters and digits in order (`Kim Min-jun` → `kimminjun`,
///   `王 芳` → `王芳`), ignoring case, width, spaces and punctuation;
/// * `name_tokens`: the same with its words sorted, for names of two or more words, so
///   `Kim Minjun` and `Minjun Kim` meet.
pub fn keys(name: &str, email: Option<&str>, phone: Option<&str>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(e) = email.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty()) {
        out.push(("email", e));
    }
    if let Some(p) = phone.map(str::trim).filter(|p| !p.is_empty()) {
        out.push(("phone", p.to_owned()));
    }
    let mut tokens = name_tokens(name);
    let joined = tokens.concat();
    if joined.chars().count() >= 2 {
        out.push(("name", joined));
        if tokens.len() >= 2 {
            tokens.sort();
            out.push(("name_tokens", tokens.concat()));
        }
    }
    out
}

struct Source {
    id: Id,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<Id>,
}

impl FromRow for Source {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Source {
            id: row.get("id")?,
            name: row.get("name")?,
            email: row.get("email")?,
            phone: row.get("phone_e164")?,
            company: row.get("company")?,
        })
    }
}

/// The column naming a record's company: a contact's account, an account's parent.
fn company_column(kind: RecordType) -> &'static str {
    match kind {
        RecordType::Account => "parent_id",
        RecordType::Contact => "account_id",
    }
}

/// Live, unmerged (and for contacts, not erased) records of `kind`.
fn live_sources(kind: RecordType) -> sea_query::SelectStatement {
    let mut q = Query::select()
        .columns([kind.col("id"), kind.col("name"), kind.col("email"), kind.col("phone_e164")])
        .expr_as(Expr::col(kind.col(company_column(kind))), Alias::new("company"))
        .from(kind.table())
        .and_where(Expr::col(kind.col("deleted_at")).is_null())
        .and_where(Expr::col(kind.col("merged_into")).is_null())
        .to_owned();
    if kind == RecordType::Contact {
        q.and_where(Expr::col(kind.col("erased_at")).is_null());
    }
    q
}

const KEY_COLUMNS: [&str; 4] = ["record_type", "record_id", "kind", "key"];

fn key_rows(kind: RecordType, sources: &[Source]) -> Vec<Vec<Value>> {
    rows_for(kind, sources.iter().map(|s| (s.id, s.name.as_str())))
}

/// The `dedupe_keys` rows of records: their name keys. (Their e-mail and phone keys are
/// columns of the records themselves, indexed there; storing them again cost an import
/// two random index writes per contact.)
fn rows_for<'a>(kind: RecordType, records: impl IntoIterator<Item = (Id, &'a str)>) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for (id, name) in records {
        for (k, key) in keys(name, None, None) {
            rows.push(vec![kind.as_str().into(), id.get().into(), k.into(), key.into()]);
        }
    }
    rows
}

/// Rewrites the grouping keys of one record from its current row: none when it is
/// deleted, merged away or erased. Every write path of accounts and contacts calls this
/// once, in its transaction.
pub fn sync(tx: &mut Tx<'_>, kind: RecordType, id: Id) -> Result<()> {
    tx.execute_sql(
        "DELETE FROM dedupe_keys WHERE record_type = $1 AND record_id = $2",
        &[kind.as_str().into(), id.get().into()],
    )?;
    let q = live_sources(kind).and_where(Expr::col(kind.col("id")).eq(id.get())).to_owned();
    let sources: Vec<Source> = tx.fetch_all(&q)?;
    tx.insert_rows("dedupe_keys", &KEY_COLUMNS, &key_rows(kind, &sources))?;
    Ok(())
}

/// The `dedupe_keys` rows of one new record, for [`insert_key_rows`].
pub(crate) fn key_rows_of(kind: RecordType, id: Id, name: &str) -> Vec<Vec<Value>> {
    rows_for(kind, std::iter::once((id, name)))
}

/// Writes key rows cut ahead by [`key_rows_of`].
pub(crate) fn insert_key_rows(tx: &mut Tx<'_>, rows: &[Vec<Value>]) -> Result<()> {
    tx.insert_rows("dedupe_keys", &KEY_COLUMNS, rows)?;
    Ok(())
}

/// Whether the keys of `kind` have been built (after the migration they are built on
/// first use, by [`build`]).
pub fn is_built(tx: &mut Tx<'_>, kind: RecordType) -> Result<bool> {
    let rows: Vec<String> =
        tx.query_sql("SELECT record_type FROM dedupe_state WHERE record_type = $1", &[kind.as_str().into()])?;
    Ok(!rows.is_empty())
}

/// (Re)builds every key of `kind` from the records, in pages of 10,000: the backfill for
/// records written before this table existed or by bulk paths that bypass [`sync`].
/// Returns the number of records read.
pub fn build(tx: &mut Tx<'_>, kind: RecordType) -> Result<u64> {
    tx.execute_sql("DELETE FROM dedupe_keys WHERE record_type = $1", &[kind.as_str().into()])?;
    let mut after = 0i64;
    let mut count = 0u64;
    loop {
        let q = live_sources(kind)
            .and_where(Expr::col(kind.col("id")).gt(after))
            .order_by(kind.col("id"), Order::Asc)
            .limit(10_000)
            .to_owned();
        let sources: Vec<Source> = tx.fetch_all(&q)?;
        let Some(last) = sources.last() else { break };
        after = last.id.get();
        count += sources.len() as u64;
        tx.insert_rows("dedupe_keys", &KEY_COLUMNS, &key_rows(kind, &sources))?;
    }
    tx.execute_sql("DELETE FROM dedupe_state WHERE record_type = $1", &[kind.as_str().into()])?;
    tx.execute_sql(
        "INSERT INTO dedupe_state (record_type, built_at) VALUES ($1, $2)",
        &[kind.as_str().into(), crate::record::now().into()],
    )?;
    Ok(count)
}

/// Builds the keys of `kind` unless they are built. Needs the read permission of `kind`.
pub fn ensure_built(tx: &mut Tx<'_>, who: &Principal, kind: RecordType) -> Result<()> {
    who.require(kind.read_permission())?;
    if !is_built(tx, kind)? {
        build(tx, kind)?;
    }
    Ok(())
}

/// A ranked candidate pair.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    /// The two records, older first.
    pub ids: Vec<Id>,
    /// 1..=100: e-mail 45, phone 40, same name 30 (or similar name 20), same company 15.
    pub score: u32,
    /// `same_email`, `same_phone`, `same_name`, `similar_name`, `same_company`.
    pub reasons: Vec<String>,
    /// The records' names, in the order of `ids`.
    pub names: Vec<String>,
}

/// Why two records look alike, and the score.
fn compare(a: &Source, b: &Source) -> (u32, Vec<String>) {
    let ka: BTreeSet<(&str, String)> = keys(&a.name, a.email.as_deref(), a.phone.as_deref()).into_iter().collect();
    let kb: BTreeSet<(&str, String)> = keys(&b.name, b.email.as_deref(), b.phone.as_deref()).into_iter().collect();
    let shared: BTreeSet<&str> = ka.intersection(&kb).map(|(k, _)| *k).collect();
    let mut score: u32 = 0;
    let mut reasons = Vec::new();
    if shared.contains("email") {
        score += 45;
        reasons.push("same_email".to_owned());
    }
    if shared.contains("phone") {
        score += 40;
        reasons.push("same_phone".to_owned());
    }
    if shared.contains("name") {
        score += 30;
        reasons.push("same_name".to_owned());
    } else if shared.contains("name_tokens") {
        score += 20;
        reasons.push("similar_name".to_owned());
    }
    if a.company.is_some() && a.company == b.company {
        score += 15;
        reasons.push("same_company".to_owned());
    }
    (Ord::min(score, 100u32), reasons)
}

struct Member {
    kind: String,
    key: String,
    record_id: Id,
}

impl FromRow for Member {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Member { kind: row.get("kind")?, key: row.get("key")?, record_id: row.get("record_id")? })
    }
}

fn keys_table() -> Alias {
    Alias::new("dedupe_keys")
}

fn key_col(name: &str) -> (Alias, Alias) {
    (keys_table(), Alias::new(name))
}

/// The live records of `kind` the caller sees (`query` reads from their table).
fn visible(mut query: sea_query::SelectStatement, who: &Principal, kind: RecordType) -> sea_query::SelectStatement {
    query
        .and_where(Expr::col(kind.col("deleted_at")).is_null())
        .and_where(Expr::col(kind.col("merged_into")).is_null())
        .cond_where(kind.scope(who));
    if kind == RecordType::Contact {
        query.and_where(Expr::col(kind.col("erased_at")).is_null());
    }
    query
}

/// Where the scan reads one kind of grouping key.
#[derive(Clone, Copy)]
enum KeySource {
    /// `email` (compared lower-cased) or `phone` (`phone_e164`): the record's own column,
    /// read through its index.
    Column(&'static str),
    /// `name` or `name_tokens`: `dedupe_keys`.
    Names(&'static str),
}

impl KeySource {
    fn kind(self) -> &'static str {
        match self {
            KeySource::Column(k) | KeySource::Names(k) => k,
        }
    }

    /// The key as an expression, and the query that reads it for the visible records.
    fn select(self, who: &Principal, kind: RecordType) -> (sea_query::SimpleExpr, sea_query::SelectStatement) {
        match self {
            KeySource::Column(column) => {
                let key: sea_query::SimpleExpr = match column {
                    "email" => sea_query::Func::lower(Expr::col(kind.col("email"))).into(),
                    _ => Expr::col(kind.col("phone_e164")),
                };
                let q = Query::select().from(kind.table()).and_where(key.clone().is_not_null()).to_owned();
                (key, visible(q, who, kind))
            }
            KeySource::Names(name_kind) => {
                let q = Query::select()
                    .from(keys_table())
                    .inner_join(kind.table(), Expr::col(kind.col("id")).equals(key_col("record_id")))
                    .and_where(Expr::col(key_col("record_type")).eq(kind.as_str()))
                    .and_where(Expr::col(key_col("kind")).eq(name_kind))
                    .to_owned();
                (Expr::col(key_col("key")), visible(q, who, kind))
            }
        }
    }

    /// Keys shared by 2..=MAX_GROUP (names: MAX_NAME_GROUP) visible records: one pass over
    /// the key's index, at most MAX_GROUPS.
    fn groups(self, who: &Principal, kind: RecordType) -> sea_query::SelectStatement {
        let most = match self {
            KeySource::Column(_) => MAX_GROUP,
            KeySource::Names(_) => MAX_NAME_GROUP,
        };
        let (key, q) = self.select(who, kind);
        q.to_owned()
            .expr_as(key.clone(), Alias::new("key"))
            .add_group_by([key])
            .and_having(Expr::cust(format!("COUNT(*) BETWEEN 2 AND {most}")))
            .limit(MAX_GROUPS)
            .to_owned()
    }

    /// The visible records holding one of `keys`.
    fn members(self, who: &Principal, kind: RecordType, keys: &[String]) -> sea_query::SelectStatement {
        let (key, q) = self.select(who, kind);
        q.to_owned()
            .expr_as(Expr::val(self.kind()), Alias::new("kind"))
            .expr_as(key.clone(), Alias::new("key"))
            .expr_as(Expr::col(kind.col("id")), Alias::new("record_id"))
            .and_where(key.is_in(keys.iter().map(String::as_str)))
            .to_owned()
    }
}

/// Candidate duplicate pairs among the records of `kind` the caller can see, best first
/// (score, then the older pair). Keys must be built ([`ensure_built`]).
pub fn scan(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, limit: Option<usize>) -> Result<Vec<Candidate>> {
    who.require(kind.read_permission())?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    // 1. and 2. Keys shared by 2..=MAX_GROUP visible records, then those records.
    let mut members: BTreeMap<(String, String), Vec<Id>> = BTreeMap::new();
    let mut groups_of = |tx: &mut Tx<'_>, source: KeySource| -> Result<()> {
        let groups: Vec<String> = tx.fetch_all(&source.groups(who, kind))?;
        for chunk in groups.chunks(BATCH) {
            let rows: Vec<Member> = tx.fetch_all(&source.members(who, kind, chunk))?;
            for m in rows {
                members.entry((m.kind, m.key)).or_default().push(m.record_id);
            }
        }
        Ok(())
    };
    groups_of(tx, KeySource::Column("email"))?;
    groups_of(tx, KeySource::Column("phone"))?;
    groups_of(tx, KeySource::Names("name"))?;
    groups_of(tx, KeySource::Names("name_tokens"))?;
    // 3. Pairs within each group, then the records they name.
    let mut pairs: BTreeSet<(Id, Id)> = BTreeSet::new();
    for ids in members.values_mut() {
        ids.sort();
        ids.dedup();
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                pairs.insert((*a, *b));
            }
        }
    }
    let ids: BTreeSet<Id> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let ids: Vec<i64> = ids.into_iter().map(Id::get).collect();
    let mut records: BTreeMap<Id, Source> = BTreeMap::new();
    for chunk in ids.chunks(BATCH) {
        let q = live_sources(kind).and_where(Expr::col(kind.col("id")).is_in(chunk.iter().copied())).to_owned();
        let rows: Vec<Source> = tx.fetch_all(&q)?;
        records.extend(rows.into_iter().map(|r| (r.id, r)));
    }
    let mut out: Vec<Candidate> = pairs
        .into_iter()
        .filter_map(|(a, b)| {
            let (ra, rb) = (records.get(&a)?, records.get(&b)?);
            let (score, reasons) = compare(ra, rb);
            (score > 0).then(|| Candidate {
                ids: vec![a, b],
                score,
                reasons,
                names: vec![ra.name.clone(), rb.name.clone()],
            })
        })
        .collect();
    out.sort_by(|x, y| y.score.cmp(&x.score).then(x.ids.cmp(&y.ids)));
    out.truncate(limit);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_keys() {
        let k = |n: &str| keys(n, None, None);
        assert_eq!(k("Kim Min-jun"), vec![("name", "kimminjun".into()), ("name_tokens", "junkimmin".into())]);
        assert_eq!(k("KIM MINJUN")[0], k("kim minjun")[0]);
        assert_eq!(k("Ｋｉｍ　Ｍｉｎｊｕｎ")[0], k("kim minjun")[0]);
        assert_eq!(k("Minjun Kim")[1], k("Kim Minjun")[1]);
        assert_ne!(k("Minjun Kim")[0], k("Kim Minjun")[0]);
        assert_eq!(k("王 芳")[0], ("name", "王芳".into()));
        assert_eq!(k("王芳·"), vec![("name", "王芳".into())]);
        assert_eq!(k("김민준")[0], ("name", "김민준".into()));
        assert!(k("王").is_empty());
        let all = keys("x", Some(" A@B.cn "), Some("+8613800138000"));
        assert_eq!(all, vec![("email", "a@b.cn".into()), ("phone", "+8613800138000".into())]);
    }
}
