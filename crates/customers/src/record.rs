//! What accounts and contacts share: where a record sits (branch and owner), its e-mail and
//! phone, duplicate look-up, soft delete and restore. Written once, used by both.
use chrono::{DateTime, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::branches::{self, Branch};
use kernel::identity::users;
use kernel::values::Email;
use kernel::{DataScope, Error, Id, Principal, Result, Tx};
use sea_query::{Alias, Condition, Expr, ExprTrait, Func, Query, SimpleExpr};
use serde::Serialize;
use serde_json::Value as Json;

use crate::phone::Phone;

/// Now, to the microsecond both backends store, so a record returned by a write equals
/// the record read back.
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// A JSON parameter for either backend.
pub(crate) fn json_value(value: Json) -> SimpleExpr {
    SimpleExpr::Value(sea_query::Value::Json(Some(Box::new(value))))
}

/// The kinds of customer record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    Account,
    Contact,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Account => "account",
            RecordType::Contact => "contact",
        }
    }

    pub fn parse(s: &str) -> Result<RecordType, String> {
        match s.trim() {
            "account" => Ok(RecordType::Account),
            "contact" => Ok(RecordType::Contact),
            _ => Err("must be account or contact".into()),
        }
    }

    pub(crate) fn table_name(self) -> &'static str {
        match self {
            RecordType::Account => "accounts",
            RecordType::Contact => "contacts",
        }
    }

    pub(crate) fn table(self) -> Alias {
        Alias::new(self.table_name())
    }

    pub(crate) fn col(self, column: &str) -> (Alias, Alias) {
        (self.table(), Alias::new(column))
    }

    /// The permission to see records of this type.
    pub(crate) fn read_permission(self) -> &'static str {
        match self {
            RecordType::Account => "customers.accounts.read",
            RecordType::Contact => "customers.contacts.read",
        }
    }

    /// The text columns search confirms a substring in.
    pub(crate) fn text_columns(self) -> &'static [&'static str] {
        match self {
            RecordType::Account => &["name", "email", "website", "external_id"],
            RecordType::Contact => &["name", "email", "title", "card_no"],
        }
    }

    /// The condition limiting a query on this table to the caller's data scope.
    pub(crate) fn scope(self, who: &Principal) -> Condition {
        who.scope_condition(self.col("owner_id"), self.col("branch_id"))
    }
}

/// A web address: `http(s)://host…`, no spaces.
pub(crate) fn check_url(input: &str) -> Result<String, String> {
    let s = input.trim();
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    let ok = s.len() <= 2000
        && host.is_some_and(|h| !h.is_empty() && !h.starts_with('.') && h.contains('.'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(s.to_owned()) } else { Err(format!("{s:?} is not a web address (https://…)")) }
}

/// An optional text field of a create or patch: `None` = not given, `Some(None)` = cleared
/// (`""`), `Some(Some(v))` = a valid new value; errors go to `v` under `field`.
pub(crate) fn optional<T>(
    v: &mut Validator,
    field: &str,
    input: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<Option<T>> {
    let text = input?.trim();
    if text.is_empty() {
        return Some(None);
    }
    v.check(field, parse(text)).map(Some)
}

pub(crate) fn check_email(v: &mut Validator, input: Option<&str>) -> Option<Option<String>> {
    optional(v, "email", input, |s| Email::parse(s).map(|e| e.as_str().to_owned()))
}

pub(crate) fn check_phone(v: &mut Validator, input: Option<&str>, region: &str) -> Option<Option<Phone>> {
    optional(v, "phone", input, |s| Phone::parse(s, region))
}

/// Where a new or moved record goes: a branch the caller reaches (their own branch when
/// not given) and an owner (the caller when not given). Someone whose scope is their own
/// rows can only give records to themselves.
pub(crate) fn place(
    tx: &mut Tx<'_>,
    who: &Principal,
    v: &mut Validator,
    branch_id: Option<Id>,
    owner_id: Option<Id>,
) -> Result<(Option<Branch>, Option<Id>)> {
    let branch_id = match branch_id {
        Some(b) => b,
        None if who.actor().is_some() => who.branch_id,
        None => kernel::setup::head_office(tx)?,
    };
    let branch = match branches::find(tx, branch_id)? {
        Some(b) if who.scope == DataScope::All || b.path.starts_with(&who.branch_path) => Some(b),
        Some(_) => {
            v.add("branch_id", "is outside the branches you reach");
            None
        }
        None => {
            v.add("branch_id", "no such branch");
            None
        }
    };
    let owner = match owner_id {
        None => who.actor(),
        Some(o) if Some(o) == who.actor() => Some(o),
        Some(_) if who.scope == DataScope::Own => {
            v.add("owner_id", "you can only own records yourself");
            None
        }
        Some(o) => match users::find(tx, o)? {
            Some(u) if u.active => {
                let reaches = match who.scope {
                    DataScope::All => true,
                    _ => branches::find(tx, u.branch_id)?.is_some_and(|b| b.path.starts_with(&who.branch_path)),
                };
                if !reaches {
                    v.add("owner_id", "is outside the branches you reach");
                }
                Some(u.id)
            }
            _ => {
                v.add("owner_id", "no such active user");
                None
            }
        },
    };
    Ok((branch, owner))
}

/// The branch a record sits in (for its phone region); its region is `CN` when unknown.
pub(crate) fn region_of(tx: &mut Tx<'_>, branch_id: Id) -> Result<String> {
    Ok(branches::find(tx, branch_id)?.map_or_else(|| "CN".to_owned(), |b| b.region))
}

/// A record in the caller's scope with the same normalised phone or e-mail.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DuplicateCandidate {
    pub id: Id,
    pub name: String,
    /// `email`, `phone` or both.
    pub matched_on: Vec<String>,
}

struct DuplicateRow {
    id: Id,
    name: String,
    email: Option<String>,
    phone_e164: Option<String>,
}

impl FromRow for DuplicateRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(DuplicateRow {
            id: row.get("id")?,
            name: row.get("name")?,
            email: row.get("email")?,
            phone_e164: row.get("phone_e164")?,
        })
    }
}

/// Live records of `kind` within the caller's scope that share `email` (lower-cased) or
/// `phone` (E.164) with record `except`; at most ten, oldest first.
pub(crate) fn duplicates(
    tx: &mut Tx<'_>,
    who: &Principal,
    kind: RecordType,
    except: Id,
    email: Option<&str>,
    phone: Option<&str>,
) -> Result<Vec<DuplicateCandidate>> {
    let mut matches = Condition::any();
    if let Some(e) = email {
        matches = matches.add(Func::lower(Expr::col(kind.col("email"))).eq(e.to_lowercase()));
    }
    if let Some(p) = phone {
        matches = matches.add(Expr::col(kind.col("phone_e164")).eq(p));
    }
    if matches.is_empty() {
        return Ok(Vec::new());
    }
    let q = Query::select()
        .columns([kind.col("id"), kind.col("name"), kind.col("email"), kind.col("phone_e164")])
        .from(kind.table())
        .and_where(Expr::col(kind.col("deleted_at")).is_null())
        .and_where(Expr::col(kind.col("id")).ne(except.get()))
        .cond_where(matches)
        .cond_where(kind.scope(who))
        .order_by(kind.col("id"), sea_query::Order::Asc)
        .limit(10)
        .to_owned();
    let rows: Vec<DuplicateRow> = tx.fetch_all(&q)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut matched_on = Vec::new();
            if email.is_some()
                && r.email.as_deref().map(str::to_lowercase).as_deref() == email.map(str::to_lowercase).as_deref()
            {
                matched_on.push("email".to_owned());
            }
            if phone.is_some() && r.phone_e164.as_deref() == phone {
                matched_on.push("phone".to_owned());
            }
            DuplicateCandidate { id: r.id, name: r.name, matched_on }
        })
        .collect())
}

/// The records of `kind` a create with this e-mail and phone (as typed) would report as
/// `duplicate_candidates`, found without writing anything: for asking "create anyway?"
/// before saving. A phone is read in the region of `branch_id` (else the caller's branch);
/// values that do not parse match nothing (the create reports them).
pub fn duplicate_candidates(
    tx: &mut Tx<'_>,
    who: &Principal,
    kind: RecordType,
    email: Option<&str>,
    phone: Option<&str>,
    branch_id: Option<Id>,
) -> Result<Vec<DuplicateCandidate>> {
    who.require(kind.read_permission())?;
    let email = email.and_then(|e| Email::parse(e.trim()).ok()).map(|e| e.as_str().to_owned());
    let phone = match phone.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => {
            let region = region_of(tx, branch_id.unwrap_or(who.branch_id))?;
            Phone::parse(p, &region).ok().map(|p| p.e164().to_owned())
        }
        None => None,
    };
    duplicates(tx, who, kind, Id(0), email.as_deref(), phone.as_deref())
}

/// Soft delete of a live record in the caller's scope.
pub(crate) fn soft_delete(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, id: Id) -> Result<()> {
    kernel::records::soft_delete(tx, kind.table_name(), id, kind.scope(who), kind.as_str())?;
    crate::duplicates::sync(tx, kind, id)?;
    audit::record(tx, who, "delete", kind.as_str(), Some(id), &Changes::new())
}

/// Undoes [`soft_delete`] for a record in the caller's scope.
pub(crate) fn restore(tx: &mut Tx<'_>, who: &Principal, kind: RecordType, id: Id) -> Result<()> {
    let q = Query::update()
        .table(kind.table())
        .value(Alias::new("deleted_at"), Option::<DateTime<Utc>>::None)
        .value(Alias::new("updated_at"), now())
        .value(Alias::new("version"), Expr::col(kind.col("version")).add(1))
        .and_where(Expr::col(kind.col("id")).eq(id.get()))
        .and_where(Expr::col(kind.col("deleted_at")).is_not_null())
        // A merged-away record comes back only by undoing its merge.
        .and_where(Expr::col(kind.col("merged_into")).is_null())
        .cond_where(kind.scope(who))
        .to_owned();
    if tx.execute(&q)? == 0 {
        return Err(Error::NotFound(match kind {
            RecordType::Account => "deleted account",
            RecordType::Contact => "deleted contact",
        }));
    }
    crate::duplicates::sync(tx, kind, id)?;
    audit::record(tx, who, "restore", kind.as_str(), Some(id), &Changes::new())
}

/// The records of `scoped` (a select of one record type's columns, already limited to the
/// caller's scope) whose `column` (`email`, compared lower-cased, or another indexed
/// column) is one of `keys`, in id order: the upsert look-up of imports, one query per
/// batch of up to 1,000 keys.
///
/// On PostgreSQL the look-up runs with sequential scans off. An import writes into a table
/// whose statistics lag far behind it (a table never analysed has none): planned with
/// default selectivities, 1,000 keys looked like most of the table, and every batch read
/// every row, computing `lower(email)` for each: a quadratic import.
pub(crate) fn find_by_keys<T: FromRow>(
    tx: &mut Tx<'_>,
    kind: RecordType,
    scoped: sea_query::SelectStatement,
    column: &str,
    keys: &[String],
) -> Result<Vec<T>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let col = Expr::col(kind.col(column));
    let cond =
        if column == "email" { Func::lower(col).is_in(keys.iter().cloned()) } else { col.is_in(keys.iter().cloned()) };
    let q = scoped.to_owned().and_where(cond).order_by(kind.col("id"), sea_query::Order::Asc).to_owned();
    if tx.backend() != kernel::Backend::Postgres {
        return Ok(tx.fetch_all(&q)?);
    }
    tx.batch("SET LOCAL enable_seqscan = off")?;
    let found = tx.fetch_all(&q)?;
    tx.batch("SET LOCAL enable_seqscan = on")?;
    Ok(found)
}

/// What a bulk insert writes for a new account or contact beside its row and tags: its
/// search document and its duplicate keys, cut ahead of the write (an import does this on
/// its checking thread).
pub(crate) struct Indexed {
    id: Id,
    document: String,
    keys: Vec<Vec<sea_query::Value>>,
}

impl Indexed {
    pub(crate) fn new(kind: RecordType, id: Id, document: &crate::search::Document<'_>) -> Indexed {
        Indexed {
            id,
            document: crate::search::document_text(kind, document),
            keys: crate::duplicates::key_rows_of(kind, id, document.name),
        }
    }
}

/// What a bulk insert writes beside the rows, as a create does: the tag rows, the search
/// documents and the duplicate keys.
pub(crate) fn insert_indexes(
    tx: &mut Tx<'_>,
    kind: RecordType,
    tags: &[(Id, &[String])],
    records: Vec<Indexed>,
) -> Result<()> {
    crate::details::insert_tags(tx, kind, tags)?;
    let mut documents = Vec::with_capacity(records.len());
    let mut keys = Vec::with_capacity(records.len() * 3);
    for r in records {
        documents.push((r.id, r.document));
        keys.extend(r.keys);
    }
    crate::search::insert_document_texts(tx, documents)?;
    crate::duplicates::insert_key_rows(tx, &keys)
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls() {
        assert_eq!(check_url(" https://gome.com.cn/shop?x=1 ").unwrap(), "https://gome.com.cn/shop?x=1");
        assert!(check_url("http://예시.한국").is_ok());
        for bad in ["gome.com", "https://", "https://localhost", "ftp://a.b", "https://a b.c", "https://.x.y"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
