//! Search over accounts and contacts (docs/search.md).
//!
//! Every record's searchable text is cut into *terms*, kept as one document per record in
//! `search_index` (an FTS5 table on SQLite, a GIN-indexed table on PostgreSQL) in the
//! same transaction as the record:
//!
//! * CJK and Hangul runs: every character and every two-character substring, so one- and
//!   two-character queries (`张`, `王芳`, `김`) are one exact-term look-up;
//! * other words (Latin letters and digits; e-mail local part and domain labels, web
//!   addresses): lower-cased prefixes of 2 to 10 characters;
//! * phones: every window of four digits of the E.164 number and of the typed number.
//!
//! A query is cut the same way: longer CJK runs, phone digits and long words look up their
//! terms and are then confirmed with a substring match on the candidate rows. The scope
//! and soft-delete filter are in the same SQL. Soft delete keeps the terms (the join
//! drops deleted rows), so restore costs nothing.
use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use kernel::db::{DbError, FromRow, Row};
use kernel::{Backend, Error, Id, Principal, Result, Tx};
use sea_query::{Alias, Condition, Expr, ExprTrait, Func, Order, Query, SimpleExpr, Value};
use serde::Serialize;

use crate::record::RecordType;

/// Longest word prefix stored; longer query words are confirmed by substring.
const MAX_PREFIX: usize = 10;
/// Shortest word prefix stored.
const MIN_PREFIX: usize = 2;
/// Digits per phone window.
const PHONE_WINDOW: usize = 4;
/// Longest name-start term (`^` + the first characters of the name).
const MAX_NAME_PREFIX: usize = 12;
/// Longest name stored whole as an exact-name term (`=` + the name).
const MAX_EXACT_NAME: usize = 64;
/// Term frequencies are counted up to this to choose the rarest.
const COUNT_CAP: i64 = 5000;
/// Most hits one search returns.
pub const MAX_LIMIT: u64 = 50;

/// The searchable fields of one record.
#[derive(Debug, Default, Clone)]
pub struct Document<'a> {
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub phone_e164: Option<&'a str>,
    pub phone_raw: Option<&'a str>,
    /// More numbers found by four-digit fragments like the phone (extra phones, the
    /// membership card number).
    pub numbers: Vec<&'a str>,
    /// Other text (web address, external id, card number, title).
    pub other: Vec<&'a str>,
}

/// Chinese, Japanese and Korean characters: indexed one by one and in pairs.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF | 0x3040..=0x30FF | 0x3130..=0x318F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Full-width ASCII (typed with CJK input methods) as ASCII, then lower case.
fn normalise(s: &str) -> String {
    s.chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, PartialEq)]
enum Token {
    Cjk(Vec<char>),
    Word(String),
}

/// Runs of CJK characters and runs of other letters and digits; everything else separates.
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut cjk = Vec::new();
    let mut word = String::new();
    for c in normalise(text).chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(Token::Word(std::mem::take(&mut word)));
            }
            cjk.push(c);
        } else if c.is_alphanumeric() {
            if !cjk.is_empty() {
                out.push(Token::Cjk(std::mem::take(&mut cjk)));
            }
            word.push(c);
        } else {
            if !cjk.is_empty() {
                out.push(Token::Cjk(std::mem::take(&mut cjk)));
            }
            if !word.is_empty() {
                out.push(Token::Word(std::mem::take(&mut word)));
            }
        }
    }
    if !cjk.is_empty() {
        out.push(Token::Cjk(cjk));
    }
    if !word.is_empty() {
        out.push(Token::Word(word));
    }
    out
}

fn digits(s: &str) -> String {
    normalise(s).chars().filter(char::is_ascii_digit).collect()
}

/// The terms of a record.
pub(crate) fn terms(doc: &Document<'_>) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    let texts = std::iter::once(doc.name).chain(doc.email).chain(doc.other.iter().copied());
    for text in texts {
        for token in tokens(text) {
            match token {
                Token::Cjk(chars) => {
                    for (i, c) in chars.iter().enumerate() {
                        out.insert(c.to_string());
                        if let Some(next) = chars.get(i + 1) {
                            out.insert(format!("{c}{next}"));
                        }
                    }
                }
                Token::Word(w) => {
                    let chars: Vec<char> = w.chars().collect();
                    for len in MIN_PREFIX..=chars.len().min(MAX_PREFIX) {
                        out.insert(chars[..len].iter().collect());
                    }
                }
            }
        }
    }
    // The ranking tiers as their own terms: `=name` (exact name) and `^prefix` (the name
    // starts with it), so the best hits are small look-ups even for a common surname.
    let key = name_key(doc.name);
    let chars: Vec<char> = key.chars().collect();
    if !chars.is_empty() && chars.len() <= MAX_EXACT_NAME {
        out.insert(format!("={key}"));
    }
    for len in 1..=chars.len().min(MAX_NAME_PREFIX) {
        if let Some(prefix) = name_prefix(&chars[..len]) {
            out.insert(prefix);
        }
    }
    for phone in [doc.phone_e164, doc.phone_raw].into_iter().flatten().chain(doc.numbers.iter().copied()) {
        let d = digits(phone);
        for i in 0..(d.len() + 1).saturating_sub(PHONE_WINDOW) {
            out.insert(d[i..i + PHONE_WINDOW].to_owned());
        }
    }
    out
}

/// A name as the ranking tiers compare it: normalised, whitespace collapsed.
fn name_key(name: &str) -> String {
    normalise(name).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The name-start term for the first characters of a name key, if such a query can be
/// asked: a single character only when it is CJK (one Latin letter is no query), never
/// ending in a space (queries are trimmed).
fn name_prefix(chars: &[char]) -> Option<String> {
    let last = *chars.last()?;
    if last == ' ' || (chars.len() == 1 && !is_cjk(last)) {
        return None;
    }
    Some(std::iter::once('^').chain(chars.iter().copied()).collect())
}

/// What a query asks: for each part, the terms any of which may drive the look-up (the
/// rarest is used) and, when those terms do not say everything, a substring to confirm.
#[derive(Debug, Default, PartialEq)]
struct Parsed {
    parts: Vec<Part>,
    /// The whole query, normalised, for ranking by name.
    text: String,
}

#[derive(Debug, PartialEq)]
struct Part {
    terms: Vec<String>,
    confirm: Option<Confirm>,
}

#[derive(Debug, PartialEq)]
enum Confirm {
    /// A substring of the name, e-mail or other text fields (lower-cased).
    Text(String),
    /// A substring of the phone's digits.
    Digits(String),
}

/// Separators people type in phone numbers.
fn is_phone_query(q: &str) -> bool {
    let n = normalise(q);
    n.chars().any(|c| c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '+' | '/'))
}

fn parse(q: &str) -> Parsed {
    let text = normalise(q).split_whitespace().collect::<Vec<_>>().join(" ");
    let mut parts = Vec::new();
    if is_phone_query(q) {
        let d = digits(q);
        if d.len() >= PHONE_WINDOW {
            // Windows that together cover every digit: the confirmation checks the rest.
            let mut starts: Vec<usize> = (0..=d.len() - PHONE_WINDOW).step_by(PHONE_WINDOW).collect();
            if starts.last() != Some(&(d.len() - PHONE_WINDOW)) {
                starts.push(d.len() - PHONE_WINDOW);
            }
            let terms = starts.iter().map(|&i| d[i..i + PHONE_WINDOW].to_owned()).collect();
            let confirm = (d.len() > PHONE_WINDOW).then(|| Confirm::Digits(d.clone()));
            parts.push(Part { terms, confirm });
            return Parsed { parts, text };
        }
        // Fewer than four digits: searched as a word (a store number in a name).
    }
    for token in tokens(q) {
        match token {
            Token::Cjk(chars) if chars.len() <= 2 => {
                parts.push(Part { terms: vec![chars.iter().collect()], confirm: None });
            }
            Token::Cjk(chars) => {
                let terms = chars.windows(2).map(|w| w.iter().collect()).collect();
                parts.push(Part { terms, confirm: Some(Confirm::Text(chars.iter().collect())) });
            }
            Token::Word(w) => {
                let chars: Vec<char> = w.chars().collect();
                if chars.len() < MIN_PREFIX {
                    continue;
                }
                let term: String = chars[..chars.len().min(MAX_PREFIX)].iter().collect();
                let confirm = (chars.len() > MAX_PREFIX).then_some(Confirm::Text(w));
                parts.push(Part { terms: vec![term], confirm });
            }
        }
    }
    Parsed { parts, text }
}

/// The index's token for a term of a record of `kind`: the kind's letter, then the term
/// with every ASCII character other than a letter, a digit, `=` or `^` written as `_` and
/// two hex digits. A token so never holds a space (the separator of a document on both
/// backends), a quote or a backslash: FTS5's `ascii` tokenizer (token characters `=^_`)
/// and PostgreSQL's `string_to_array(terms, ' ')` both see it whole, and it can be put
/// in SQL as a literal.
fn token(kind: RecordType, term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 1);
    push_token(&mut out, kind, term);
    out
}

fn push_token(out: &mut String, kind: RecordType, term: &str) {
    out.push(match kind {
        RecordType::Account => 'a',
        RecordType::Contact => 'c',
    });
    for c in term.chars() {
        if !c.is_ascii() || c.is_ascii_alphanumeric() || c == '=' || c == '^' {
            out.push(c);
        } else {
            let _ = write!(out, "_{:02x}", c as u32);
        }
    }
}

/// A record's document: its tokens, separated by spaces.
pub(crate) fn document_text(kind: RecordType, doc: &Document<'_>) -> String {
    let mut out = String::with_capacity(512);
    for term in terms(doc) {
        if !out.is_empty() {
            out.push(' ');
        }
        push_token(&mut out, kind, &term);
    }
    out
}

/// The column holding a document's record id.
fn id_column(backend: Backend) -> &'static str {
    match backend {
        // The FTS5 table's rowid is the record id.
        Backend::Sqlite => "rowid",
        Backend::Postgres => "record_id",
    }
}

/// The condition on `search_index` selecting the documents that carry every token.
/// Tokens go in as literals (see [`token`]): PostgreSQL then plans each look-up for its
/// own term from its statistics, walking the primary key backwards for a common term and
/// reading the GIN index for a rare one (migration 0017 says why `search_tokens` costs
/// what it does), where a prepared statement's generic plan would pick one for all.
fn holds_all(backend: Backend, tokens: &[String], table: &str) -> String {
    match backend {
        Backend::Sqlite => {
            let expr: Vec<String> = tokens.iter().map(|t| format!("\"{t}\"")).collect();
            format!("{table} MATCH '{}'", expr.join(" AND "))
        }
        Backend::Postgres => {
            let list: Vec<String> = tokens.iter().map(|t| format!("'{t}'")).collect();
            format!("search_tokens({table}.terms) @> ARRAY[{}]::text[]", list.join(", "))
        }
    }
}

/// The ids of the records carrying every token, as a sub-select.
fn postings_sql(backend: Backend, tokens: &[String]) -> String {
    format!(
        "SELECT {id} FROM search_index WHERE {cond}",
        id = id_column(backend),
        cond = holds_all(backend, tokens, "search_index")
    )
}

/// PostgreSQL: the condition that one document (of `table`) carries every token, as a
/// plain substring search of its text. Where a document is checked on its own (a probe by
/// id, a window of the newest), this is far cheaper than splitting it with
/// `search_tokens`, which is kept for the GIN index.
fn holds_all_text(tokens: &[String], table: &str) -> String {
    let each: Vec<String> =
        tokens.iter().map(|t| format!("strpos(' ' || {table}.terms || ' ', ' {t} ') > 0")).collect();
    each.join(" AND ")
}

/// PostgreSQL: how many of the newest documents a look-up first checks one by one.
const RECENT_WINDOW: u64 = 4_096;
/// PostgreSQL: matches in that window from which a term counts as common.
const COMMON_IN_WINDOW: i64 = 64;

struct Count(i64);

impl FromRow for Count {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Count(row.get("n")?))
    }
}

/// How many records carry every token, counted up to [`COUNT_CAP`].
fn frequency(tx: &mut Tx<'_>, tokens: &[String]) -> Result<i64> {
    let sql = format!("SELECT count(*) AS n FROM ({} LIMIT {COUNT_CAP}) t", postings_sql(tx.backend(), tokens));
    let rows: Vec<Count> = tx.query_sql(&sql, &[])?;
    Ok(rows.first().map_or(0, |c| c.0))
}

struct Posting(i64);

impl FromRow for Posting {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Posting(row.get("record_id")?))
    }
}

/// The ids of at most `limit` records carrying `token` with ids below `before`, newest
/// first. SQLite: one ordered read of the FTS5 index (it walks its doclists from the end).
/// PostgreSQL: first the newest [`RECENT_WINDOW`] documents by the primary key, checked
/// one by one and stopping at `limit` (all a common term needs, and bounded for any
/// term); then, below that window, the GIN index. Both plans are chosen here, not by the
/// planner: its estimate of a term's frequency comes from a sample, and a walk down the
/// primary key for a term rarer than estimated read every document (2.6 s at 1M).
fn postings(tx: &mut Tx<'_>, token: &str, before: Option<i64>, limit: u64) -> Result<Vec<i64>> {
    let tokens = [token.to_owned()];
    match tx.backend() {
        Backend::Sqlite => {
            let below = before.map(|b| format!(" AND rowid < {b}")).unwrap_or_default();
            let sql = format!(
                "SELECT rowid AS record_id FROM search_index WHERE {cond}{below} ORDER BY rowid DESC LIMIT {limit}",
                cond = holds_all(Backend::Sqlite, &tokens, "search_index")
            );
            let rows: Vec<Posting> = tx.query_sql(&sql, &[])?;
            Ok(rows.into_iter().map(|p| p.0).collect())
        }
        Backend::Postgres => {
            let below = before.map(|b| format!("WHERE record_id < {b}")).unwrap_or_default();
            let recent = format!(
                "SELECT record_id FROM (SELECT record_id, terms FROM search_index {below} \
                 ORDER BY record_id DESC LIMIT {RECENT_WINDOW}) recent \
                 WHERE {cond} ORDER BY record_id DESC LIMIT {limit}",
                cond = holds_all_text(&tokens, "recent")
            );
            let rows: Vec<Posting> = tx.query_sql(&recent, &[])?;
            let mut ids: Vec<i64> = rows.into_iter().map(|p| p.0).collect();
            if ids.len() as u64 >= limit {
                return Ok(ids);
            }
            let floor = format!(
                "SELECT record_id FROM search_index {below} ORDER BY record_id DESC OFFSET {} LIMIT 1",
                RECENT_WINDOW - 1
            );
            let Some(floor) = tx.query_opt_sql::<Posting>(&floor, &[])? else {
                return Ok(ids); // the window held every document below `before`
            };
            // `record_id + 0`: the order must not tempt the planner into the primary key.
            let older = format!(
                "SELECT record_id FROM search_index WHERE {cond} AND record_id < {floor} \
                 ORDER BY record_id + 0 DESC LIMIT {rest}",
                cond = holds_all(Backend::Postgres, &tokens, "search_index"),
                floor = floor.0,
                rest = limit - ids.len() as u64
            );
            let rows: Vec<Posting> = tx.query_sql(&older, &[])?;
            ids.extend(rows.into_iter().map(|p| p.0));
            Ok(ids)
        }
    }
}

fn like_contains(s: &str) -> String {
    // Tokens hold only letters and digits: nothing to escape.
    format!("%{s}%")
}

/// The condition selecting the records of `kind` that match `query`; `None` when the
/// query has nothing to look up (no record matches).
fn condition(tx: &mut Tx<'_>, kind: RecordType, parsed: &Parsed) -> Result<Option<Condition>> {
    let mut tokens: Vec<String> =
        parsed.parts.iter().flat_map(|p| p.terms.iter()).map(|term| token(kind, term)).collect();
    tokens.sort();
    tokens.dedup();
    if tokens.is_empty() {
        return Ok(None);
    }
    let record_id = format!("\"{}\".\"id\"", kind.table_name());
    // Common terms: probe each candidate row's own document by its id (`EXISTS`), so a
    // list in id order stops after a page instead of first gathering every matching id
    // (SQLite built the whole `IN` set: 150k ids for `gome` at 1M contacts, 48 ms).
    let matches = match tx.backend() {
        Backend::Sqlite => {
            let n = frequency(tx, &tokens)?;
            if n == 0 {
                return Ok(None);
            }
            if n >= COUNT_CAP {
                format!(
                    "EXISTS (SELECT 1 FROM search_index WHERE rowid = {record_id} AND {cond})",
                    cond = holds_all(Backend::Sqlite, &tokens, "search_index")
                )
            } else {
                format!("{record_id} IN ({})", postings_sql(Backend::Sqlite, &tokens))
            }
        }
        Backend::Postgres => {
            // How common, from the newest documents: a bounded read, where counting
            // through the index could be planned as a scan of every document.
            let sql = format!(
                "SELECT count(*) AS n FROM (SELECT terms FROM search_index ORDER BY record_id DESC \
                 LIMIT {RECENT_WINDOW}) recent WHERE {cond}",
                cond = holds_all_text(&tokens, "recent")
            );
            let n = tx.query_sql::<Count>(&sql, &[])?.first().map_or(0, |c| c.0);
            if n >= COMMON_IN_WINDOW {
                format!(
                    "EXISTS (SELECT 1 FROM search_index WHERE record_id = {record_id} AND {cond})",
                    cond = holds_all_text(&tokens, "search_index")
                )
            } else {
                format!("{record_id} IN ({})", postings_sql(Backend::Postgres, &tokens))
            }
        }
    };
    let cond = Condition::all().add(Expr::cust(matches));
    Ok(Some(confirmations(cond, kind, parsed)))
}

/// `cond` and the substring confirmations of the query's parts.
fn confirmations(mut cond: Condition, kind: RecordType, parsed: &Parsed) -> Condition {
    for part in &parsed.parts {
        match &part.confirm {
            None => {}
            Some(Confirm::Text(s)) => {
                let mut any = Condition::any();
                for column in kind.text_columns() {
                    any = any.add(Func::lower(Expr::col(kind.col(column))).like(like_contains(s)));
                }
                if kind == RecordType::Account {
                    // Extra e-mails: a JSON list, compared as its text.
                    let emails = Expr::col(kind.col("emails")).cast_as(Alias::new("TEXT"));
                    any = any.add(Func::lower(emails).like(like_contains(s)));
                }
                cond = cond.add(any);
            }
            Some(Confirm::Digits(d)) => {
                let mut any = Condition::any();
                // A national number typed with its trunk 0 (`010 1234 …`, `021 …`).
                let rest = d.strip_prefix('0').filter(|r| r.len() >= PHONE_WINDOW);
                for digits in std::iter::once(d.as_str()).chain(rest) {
                    any = any.add(Expr::col(kind.col("phone_e164")).like(like_contains(digits)));
                    any = match kind {
                        // Extra phones: a JSON list holding each number's E.164 form.
                        RecordType::Account => any
                            .add(Expr::col(kind.col("phones")).cast_as(Alias::new("TEXT")).like(like_contains(digits))),
                        RecordType::Contact => any.add(Expr::col(kind.col("card_no")).like(like_contains(digits))),
                    };
                }
                cond = cond.add(any);
            }
        }
    }
    cond
}

/// Queries are what a person types: at most 200 characters (each part costs a look-up).
fn check_length(q: &str) -> Result<()> {
    if q.chars().count() > 200 {
        return Err(Error::field("q", "is longer than 200 characters"));
    }
    Ok(())
}

/// The filter a list applies for `q=`: records of `kind` matching `q`, or `None` when none
/// can (the list is then empty).
pub(crate) fn filter(tx: &mut Tx<'_>, kind: RecordType, q: &str) -> Result<Option<Condition>> {
    check_length(q)?;
    let parsed = parse(q);
    condition(tx, kind, &parsed)
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Hit {
    /// `account` or `contact`.
    pub record_type: String,
    pub id: Id,
    pub name: String,
    /// 3: the name is the query; 2: the name starts with it; 1: another match.
    pub score: i64,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub updated_at: DateTime<Utc>,
}

struct HitRow {
    id: Id,
    name: String,
    score: i64,
    email: Option<String>,
    phone: Option<String>,
    updated_at: DateTime<Utc>,
}

impl FromRow for HitRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(HitRow {
            id: row.get("id")?,
            name: row.get("name")?,
            score: row.get("score")?,
            email: row.get("email")?,
            phone: row.get("phone_e164")?,
            updated_at: row.get("updated_at")?,
        })
    }
}

/// The columns of a hit, from the record table.
fn hit_columns(kind: RecordType) -> [(Alias, Alias); 5] {
    [kind.col("id"), kind.col("name"), kind.col("email"), kind.col("phone_e164"), kind.col("updated_at")]
}

fn to_hits(kind: RecordType, rows: Vec<HitRow>) -> Vec<Hit> {
    rows.into_iter()
        .map(|r| Hit {
            record_type: kind.as_str().to_owned(),
            id: r.id,
            name: r.name,
            score: r.score,
            email: r.email,
            phone: r.phone,
            updated_at: r.updated_at,
        })
        .collect()
}

/// Postings read per step of a walk at first; each further step reads four times more.
const WALK_FIRST_STEP: u64 = 64;
const WALK_MAX_STEP: u64 = 16_384;

/// The newest `limit` visible records of `kind` carrying `term`, scored `score`: a walk
/// down the term's postings from the newest, in steps — read the next postings, then
/// fetch those records by primary key with the scope and soft-delete filter — until
/// `limit` rows are found or the postings run out.
/// However common the term, the first step usually suffices. (Done in steps rather than
/// as one join so neither planner can choose to read the whole range: PostgreSQL's merge
/// join walked a whole record table backwards to reach a few old matches.)
fn walk(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, term: &str, score: i64, limit: u64) -> Result<Vec<Hit>> {
    let mut hits: Vec<Hit> = Vec::new();
    let mut before: Option<i64> = None;
    let mut step = Ord::max(WALK_FIRST_STEP, limit * 2);
    let token = token(kind, term);
    loop {
        let ids = postings(tx, &token, before, step)?;
        let Some(&last) = ids.last() else { break };
        let q = Query::select()
            .columns(hit_columns(kind))
            .expr_as(Expr::val(score).cast_as(Alias::new("BIGINT")), Alias::new("score"))
            .from(kind.table())
            .and_where(Expr::col(kind.col("id")).is_in(ids.iter().copied()))
            .and_where(Expr::col(kind.col("deleted_at")).is_null())
            .cond_where(kind.scope(who))
            .order_by(kind.col("id"), Order::Desc)
            .limit(limit - hits.len() as u64)
            .to_owned();
        let rows: Vec<HitRow> = tx.fetch_all(&q)?;
        hits.extend(to_hits(kind, rows));
        if hits.len() as u64 >= limit || (ids.len() as u64) < step {
            break;
        }
        before = Some(last);
        step = Ord::min(step * 4, WALK_MAX_STEP);
    }
    Ok(hits)
}

/// The newest `limit` visible records of `kind` matching `cond`, scored `score`.
fn newest(
    tx: &mut Tx<'_>,
    who: &Principal,
    kind: RecordType,
    cond: Condition,
    score: i64,
    limit: u64,
) -> Result<Vec<Hit>> {
    let q = Query::select()
        .columns(hit_columns(kind))
        .expr_as(Expr::val(score).cast_as(Alias::new("BIGINT")), Alias::new("score"))
        .from(kind.table())
        .cond_where(cond)
        .and_where(Expr::col(kind.col("deleted_at")).is_null())
        .cond_where(kind.scope(who))
        .order_by(kind.col("id"), Order::Desc)
        .limit(limit)
        .to_owned();
    let rows: Vec<HitRow> = tx.fetch_all(&q)?;
    Ok(to_hits(kind, rows))
}

/// The one term that says everything about the query, if there is one.
fn single_term(parsed: &Parsed) -> Option<&str> {
    match parsed.parts.as_slice() {
        [Part { terms, confirm: None }] if terms.len() == 1 => terms.first().map(String::as_str),
        _ => None,
    }
}

/// A short query that may be (the start of) a name: three tiers, each its own bounded
/// look-up — the exact-name term, the name-start term, then every other match — so a
/// common surname costs three index walks of at most `limit` rows each.
fn search_tiers(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, parsed: &Parsed, limit: u64) -> Result<Vec<Hit>> {
    let mut hits: Vec<Hit> = Vec::new();
    let take = |hits: &mut Vec<Hit>, found: Vec<Hit>| {
        for hit in found {
            if !hits.iter().any(|h| h.id == hit.id) {
                hits.push(hit);
            }
        }
    };
    for (score, term) in [(3, format!("={}", parsed.text)), (2, format!("^{}", parsed.text))] {
        if hits.len() as u64 >= limit {
            break;
        }
        let found = walk(tx, who, kind, &term, score, limit + hits.len() as u64)?;
        take(&mut hits, found);
    }
    if (hits.len() as u64) < limit {
        let n = limit + hits.len() as u64;
        let found = match single_term(parsed) {
            Some(term) => walk(tx, who, kind, term, 1, n)?,
            None => match condition(tx, kind, parsed)? {
                Some(cond) => newest(tx, who, kind, cond, 1, n)?,
                None => Vec::new(),
            },
        };
        take(&mut hits, found);
    }
    hits.truncate(limit as usize);
    Ok(hits)
}

/// Any other query (phone digits, long text): its matches are few, so they are ranked in
/// one statement.
fn search_ranked(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, parsed: &Parsed, limit: u64) -> Result<Vec<Hit>> {
    if let Some(term) = single_term(parsed) {
        // Four digits: one term, nothing to rank by name.
        return walk(tx, who, kind, term, 1, limit);
    }
    let Some(cond) = condition(tx, kind, parsed)? else { return Ok(Vec::new()) };
    let name = || Func::lower(Expr::col(kind.col("name")));
    let prefix = format!("{}%", parsed.text.replace(['%', '_', '\\'], ""));
    let score: SimpleExpr = Expr::case(name().eq(parsed.text.clone()), Expr::cust("3"))
        .case(name().like(prefix), Expr::cust("2"))
        .finally(Expr::cust("1"))
        .into();
    let score = score.cast_as(Alias::new("BIGINT"));
    let q = Query::select()
        .columns(hit_columns(kind))
        .expr_as(score, Alias::new("score"))
        .from(kind.table())
        .cond_where(cond)
        .and_where(Expr::col(kind.col("deleted_at")).is_null())
        .cond_where(kind.scope(who))
        .order_by(Alias::new("score"), Order::Desc)
        .order_by(kind.col("id"), Order::Desc)
        .limit(limit)
        .to_owned();
    let rows: Vec<HitRow> = tx.fetch_all(&q)?;
    Ok(to_hits(kind, rows))
}

/// Accounts and contacts matching `q` that the caller may see, best first: the exact name,
/// then names starting with the query, then other matches; newest record first within
/// each (ids are time-ordered). Record types the caller may not read are left out; at
/// most [`MAX_LIMIT`] hits.
pub fn search(tx: &mut Tx<'_>, who: &Principal, q: &str, limit: Option<u64>) -> Result<Vec<Hit>> {
    let kinds: Vec<RecordType> =
        [RecordType::Account, RecordType::Contact].into_iter().filter(|k| who.can(k.read_permission())).collect();
    if kinds.is_empty() {
        who.require(RecordType::Contact.read_permission())?;
    }
    let limit = limit.unwrap_or(20);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::field("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    check_length(q)?;
    let parsed = parse(q);
    if parsed.parts.is_empty() {
        return Ok(Vec::new());
    }
    let tiers = !is_phone_query(q) && parsed.text.chars().count() <= MAX_NAME_PREFIX;
    let mut hits = Vec::new();
    for kind in kinds {
        hits.extend(if tiers {
            search_tiers(tx, who, kind, &parsed, limit)?
        } else {
            search_ranked(tx, who, kind, &parsed, limit)?
        });
    }
    hits.sort_by(|a, b| b.score.cmp(&a.score).then(b.id.cmp(&a.id)));
    hits.truncate(limit as usize);
    Ok(hits)
}

/// Replaces the document of one record (after its create or update, same transaction).
pub(crate) fn index(tx: &mut Tx<'_>, kind: RecordType, id: Id, doc: &Document<'_>) -> Result<()> {
    remove(tx, kind, id)?;
    insert_documents(tx, kind, &[(id, doc.clone())])
}

/// Documents written per bulk statement.
const DOCUMENTS_PER_INSERT: usize = 5_000;

/// Writes the documents of records that have none yet (new records, or after the caller
/// removed theirs), in bulk: the path for imports and large loads, which must not pay a
/// round trip per record.
pub fn insert_documents(tx: &mut Tx<'_>, kind: RecordType, docs: &[(Id, Document<'_>)]) -> Result<()> {
    let texts: Vec<(Id, String)> = docs.iter().map(|(id, doc)| (*id, document_text(kind, doc))).collect();
    insert_document_texts(tx, texts)
}

/// Writes documents already cut by [`document_text`] (an import cuts them on its checking
/// thread, off the writer's).
pub(crate) fn insert_document_texts(tx: &mut Tx<'_>, docs: Vec<(Id, String)>) -> Result<()> {
    let columns = [id_column(tx.backend()), "terms"];
    let mut rows: Vec<Vec<Value>> = Vec::with_capacity(docs.len().min(DOCUMENTS_PER_INSERT));
    for (id, text) in docs {
        rows.push(vec![id.get().into(), text.into()]);
        if rows.len() == DOCUMENTS_PER_INSERT {
            tx.insert_rows("search_index", &columns, &rows)?;
            rows.clear();
        }
    }
    tx.insert_rows("search_index", &columns, &rows)?;
    Ok(())
}

/// How many records the search index holds (for checks and benchmarks).
pub fn document_count(tx: &mut Tx<'_>) -> Result<i64> {
    let sql = match tx.backend() {
        // A contentless FTS5 table cannot be counted itself; its document-size table has
        // one row per document.
        Backend::Sqlite => "SELECT count(*) AS n FROM search_index_docsize",
        Backend::Postgres => "SELECT count(*) AS n FROM search_index",
    };
    let rows: Vec<Count> = tx.query_sql(sql, &[])?;
    Ok(rows.first().map_or(0, |c| c.0))
}

/// Whether the search index holds a document for record `id`.
pub fn is_indexed(tx: &mut Tx<'_>, id: Id) -> Result<bool> {
    let sql = match tx.backend() {
        Backend::Sqlite => "SELECT count(*) AS n FROM search_index_docsize WHERE id = $1",
        Backend::Postgres => "SELECT count(*) AS n FROM search_index WHERE record_id = $1",
    };
    let rows: Vec<Count> = tx.query_sql(sql, &[id.get().into()])?;
    Ok(rows.first().is_some_and(|c| c.0 > 0))
}

/// Records read per batch by [`reindex_all`].
const REINDEX_BATCH: u64 = 5_000;

/// Writes the terms of the records of `kind` selected by `cond` (deleted ones included),
/// at most `limit` in id order, each cut from its row by the same function as the write
/// paths (`accounts::search_document`, `contacts::search_document`). Returns how many
/// records were read and the last id.
fn index_rows(tx: &mut Tx<'_>, kind: RecordType, cond: Condition, limit: u64) -> Result<(u64, Option<Id>)> {
    match kind {
        RecordType::Account => {
            let q = crate::accounts::every_row().cond_where(cond).limit(limit).to_owned();
            let rows: Vec<crate::accounts::Account> = tx.fetch_all(&q)?;
            let docs: Vec<(Id, Document<'_>)> =
                rows.iter().map(|a| (a.id, crate::accounts::search_document(a))).collect();
            insert_documents(tx, kind, &docs)?;
            Ok((rows.len() as u64, rows.last().map(|a| a.id)))
        }
        RecordType::Contact => {
            let q = crate::contacts::every_row().cond_where(cond).limit(limit).to_owned();
            let rows: Vec<crate::contacts::Contact> = tx.fetch_all(&q)?;
            let docs: Vec<(Id, Document<'_>)> =
                rows.iter().map(|c| (c.id, crate::contacts::search_document(c))).collect();
            insert_documents(tx, kind, &docs)?;
            Ok((rows.len() as u64, rows.last().map(|c| c.id)))
        }
    }
}

/// Rebuilds every record's terms (after a bulk import that bypassed the write paths, or
/// after the terms changed), in batches of [`REINDEX_BATCH`] records. Returns the number
/// of records indexed.
pub fn reindex_all(tx: &mut Tx<'_>) -> Result<u64> {
    match tx.backend() {
        Backend::Sqlite => tx.batch("INSERT INTO search_index (search_index) VALUES ('delete-all')")?,
        Backend::Postgres => tx.batch("TRUNCATE search_index")?,
    }
    tx.execute_sql("DELETE FROM search_rebuilds", &[])?;
    let mut count = 0;
    for kind in [RecordType::Account, RecordType::Contact] {
        let mut after: Option<Id> = None;
        loop {
            let cond = match after {
                Some(id) => Condition::all().add(Expr::col(kind.col("id")).gt(id.get())),
                None => Condition::all(),
            };
            let (n, last) = index_rows(tx, kind, cond, REINDEX_BATCH)?;
            count += n;
            match last {
                Some(id) if n == REINDEX_BATCH => after = Some(id),
                _ => break,
            }
        }
        crate::duplicates::build(tx, kind)?;
    }
    Ok(count)
}

/// Rewrites the terms of one record from its row (after a merge or an erasure changed it
/// outside the record's own update path); removes them when the record is gone.
pub(crate) fn reindex_one(tx: &mut Tx<'_>, kind: RecordType, id: Id) -> Result<()> {
    remove(tx, kind, id)?;
    index_rows(tx, kind, Condition::all().add(Expr::col(kind.col("id")).eq(id.get())), 1)?;
    Ok(())
}

/// Removes the document of one record (an erased person). Record ids are unique across
/// record types, so the id alone names the document.
pub(crate) fn remove(tx: &mut Tx<'_>, _kind: RecordType, id: Id) -> Result<()> {
    let sql = format!("DELETE FROM search_index WHERE {} = $1", id_column(tx.backend()));
    tx.execute_sql(&sql, &[Value::from(id.get())])?;
    Ok(())
}

/// Rebuilds the index when a migration asked for it (a row in `search_rebuilds`: the
/// index's layout changed, and terms are cut in Rust, not SQL). Run at start-up; returns
/// the number of records indexed, if it ran.
pub fn rebuild_if_requested(tx: &mut Tx<'_>) -> Result<Option<u64>> {
    let asked: Vec<Count> = tx.query_sql("SELECT count(*) AS n FROM search_rebuilds", &[])?;
    if asked.first().is_none_or(|c| c.0 == 0) {
        return Ok(None);
    }
    reindex_all(tx).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_terms() {
        let doc = Document {
            name: "王芳 Fang",
            email: Some("wang@gome.com.cn"),
            phone_e164: Some("+8613800138000"),
            phone_raw: Some("138 0013 8000"),
            numbers: vec!["8800123456"],
            other: vec![],
        };
        let t = terms(&doc);
        let t: std::collections::BTreeMap<String, ()> = t.into_iter().map(|k| (k, ())).collect();
        for expected in [
            "王", "芳", "王芳", "fa", "fang", "wa", "wang", "gome", "com", "cn", "1380", "0013", "8000", "8800", "0123",
        ] {
            assert!(t.contains_key(expected), "{expected}");
        }
        assert!(!t.contains_key("f"));
        for tier in ["=王芳 fang", "^王", "^王芳", "^王芳 ", "^王芳 f", "^王芳 fang"] {
            assert_eq!(t.contains_key(tier), tier != "^王芳 ", "{tier}");
        }
        let latin = terms(&Document { name: "  Emma   Clarke ", ..Default::default() });
        assert!(latin.contains("=emma clarke") && latin.contains("^em") && latin.contains("^emma clarke"));
        assert!(!latin.contains("^e"), "one Latin letter is no query");
    }

    #[test]
    fn queries() {
        assert_eq!(parse("张").parts, vec![Part { terms: vec!["张".into()], confirm: None }]);
        assert_eq!(parse("王芳").parts, vec![Part { terms: vec!["王芳".into()], confirm: None }]);
        assert_eq!(
            parse("김민준").parts,
            vec![Part {
                terms: vec!["김민".into(), "민준".into()], confirm: Some(Confirm::Text("김민준".into()))
            }]
        );
        assert_eq!(
            parse("138 0013").parts,
            vec![Part { terms: vec!["1380".into(), "0013".into()], confirm: Some(Confirm::Digits("1380013".into())) }]
        );
        assert_eq!(parse("@gome").parts, vec![Part { terms: vec!["gome".into()], confirm: None }]);
        assert_eq!(parse("ＧＯＭＥ").parts, parse("gome").parts);
        assert!(parse("g").parts.is_empty());
        assert!(parse("  ").parts.is_empty());
    }
}
