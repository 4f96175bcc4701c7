//! Expense claims: the built-in record type approvals guard, so the whole mechanism is
//! usable before sales exists. A claim is the requester's own record (owner, their
//! branch); `approval_status` is `null` until submitted (`submitted_at` is null too; the
//! table says `draft`), then `pending`, `approved` or `rejected`. A pending or approved
//! claim refuses changes (409), receipts included; a rejected one may be edited and
//! submitted again.
//!
//! Receipts are [`kernel::attachments`] of the claim: whoever reads the claim (its
//! approvers too) lists and downloads them; whoever may edit it adds and deletes them.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kernel::attachments::{self, Attachment};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::check_version;
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::{DataScope, Error, Id, Principal, Result, Tx};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::amount::{Decimal, Money, exponent};
use crate::registry::{ApprovalStatus, Field, FieldKind, FieldValue, RecordType, Registry, Subject};

pub const RECORD_TYPE: &str = "expense_claim";

pub const CATEGORIES: &[&str] =
    &["travel", "lodging", "meals", "transport", "entertainment", "office", "training", "other"];

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExpenseClaim {
    pub id: Id,
    pub amount: Money,
    /// One of travel, lodging, meals, transport, entertainment, office, training, other.
    pub category: String,
    pub description: String,
    /// `pending`, `approved` or `rejected`; `null` while the claim was never submitted.
    pub approval_status: Option<String>,
    /// When the claim was last submitted for approval; `null` while it never was.
    pub submitted_at: Option<DateTime<Utc>>,
    pub owner_id: Id,
    pub branch_id: Id,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

struct ClaimRow {
    claim: ExpenseClaim,
    branch_path: String,
}

impl FromRow for ClaimRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let minor: i64 = row.get("amount_minor")?;
        let currency: String = row.get("currency")?;
        Ok(ClaimRow {
            claim: ExpenseClaim {
                id: row.get("id")?,
                amount: Money::from_minor(minor, &currency),
                category: row.get("category")?,
                description: row.get("description")?,
                approval_status: Some(row.get::<String>("approval_status")?).filter(|s| s != "draft"),
                submitted_at: row.get("submitted_at")?,
                owner_id: row.get("owner_id")?,
                branch_id: row.get("branch_id")?,
                created_at: row.get("created_at")?,
                updated_at: row.get("updated_at")?,
                version: row.get("version")?,
            },
            branch_path: row.get("branch_path")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClaim {
    pub amount: Option<Money>,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimPatch {
    #[serde(default)]
    pub amount: Option<Money>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub version: Option<i64>,
}

const SELECT: &str = "SELECT c.id, c.amount_minor, c.currency, c.category, c.description, c.approval_status, \
     c.owner_id, c.branch_id, c.created_at, c.updated_at, c.version, b.path AS branch_path, \
     (SELECT MAX(i.started_at) FROM approval_instances i WHERE i.record_type = 'expense_claim' \
      AND i.record_id = c.id) AS submitted_at \
     FROM expense_claims c JOIN branches b ON b.id = c.branch_id";

fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

fn check_category(input: &str) -> Result<String, String> {
    let c = input.trim().to_ascii_lowercase();
    if CATEGORIES.contains(&c.as_str()) {
        Ok(c)
    } else {
        Err(format!("{input:?} is not a category ({})", CATEGORIES.join(", ")))
    }
}

fn check_description(input: &str) -> Result<String, String> {
    let d = input.trim();
    match d.chars().count() {
        0 => Err("is required".into()),
        n if n > 2000 => Err("is longer than 2000 characters".into()),
        _ => Ok(d.to_owned()),
    }
}

fn check_money(v: &mut Validator, m: &Money) -> Option<(i64, String)> {
    match m.to_minor() {
        Ok(x) => Some(x),
        Err(errors) => {
            for (f, msg) in errors {
                v.add(f, msg);
            }
            None
        }
    }
}

fn find(tx: &mut Tx<'_>, id: Id) -> Result<Option<ClaimRow>> {
    Ok(tx.query_opt_sql(&format!("{SELECT} WHERE c.id = $1 AND c.deleted_at IS NULL"), &[id.into()])?)
}

/// Is `who` asked to approve this claim (now or before), or did they decide on it, or do
/// they stand in now for an approver it waits on? Approvers reach the claims they decide
/// on (and their receipts) even outside their data scope.
fn is_approver(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<bool> {
    let n: Vec<i64> = tx.query_sql(
        &format!(
            // Placeholders numbered in order of first appearance (SQLite binds them so).
            "SELECT COUNT(*) FROM approval_tasks t JOIN approval_instances i ON i.id = t.instance_id \
             WHERE (t.approver_id = $1 OR t.decided_by = $1 OR (t.status = 'pending' AND {})) \
             AND i.record_type = $3 AND i.record_id = $4",
            crate::delegations::DELEGATED
        ),
        &[who.user_id.into(), now().into(), RECORD_TYPE.into(), id.into()],
    )?;
    Ok(n.first().copied().unwrap_or(0) > 0)
}

/// The claim if `who` may read it: within their data scope, or they are one of its approvers.
pub fn fetch_readable(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<ExpenseClaim> {
    let row = find(tx, id)?.ok_or(Error::NotFound("expense claim"))?;
    if who.reaches(Some(row.claim.owner_id), &row.branch_path) || is_approver(tx, who, id)? {
        Ok(row.claim)
    } else {
        Err(Error::NotFound("expense claim"))
    }
}

fn fetch_in_scope(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<ExpenseClaim> {
    let row = find(tx, id)?.ok_or(Error::NotFound("expense claim"))?;
    if who.reaches(Some(row.claim.owner_id), &row.branch_path) {
        Ok(row.claim)
    } else {
        Err(Error::NotFound("expense claim"))
    }
}

#[instrument(skip_all, fields(claim.id = %id))]
pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<ExpenseClaim> {
    who.require("workflow.expenses.read")?;
    fetch_readable(tx, who, id)
}

/// Claims within the caller's data scope, newest first; `status` filters by approval status.
pub fn list(tx: &mut Tx<'_>, who: &Principal, status: Option<&str>, page: &PageRequest) -> Result<Page<ExpenseClaim>> {
    who.require("workflow.expenses.read")?;
    if let Some(s) = status
        && !matches!(s, "draft" | "pending" | "approved" | "rejected")
    {
        return Err(Error::field(
            "approval_status",
            "must be pending, approved, rejected, or draft for claims never submitted",
        ));
    }
    let mut sql = format!("{SELECT} WHERE c.deleted_at IS NULL AND c.id < $1");
    let mut params: Vec<sea_query::Value> = vec![page.cursor.as_ref().map_or(i64::MAX, |c| c.id).into()];
    match who.scope {
        DataScope::All => {}
        DataScope::Own => {
            params.push(who.user_id.into());
            sql.push_str(&format!(" AND c.owner_id = ${}", params.len()));
        }
        DataScope::Branch => {
            params.push(format!("{}%", who.branch_path).into());
            sql.push_str(&format!(" AND b.path LIKE ${}", params.len()));
        }
    }
    if let Some(s) = status {
        params.push(s.into());
        sql.push_str(&format!(" AND c.approval_status = ${}", params.len()));
    }
    params.push((page.fetch_limit() as i64).into());
    sql.push_str(&format!(" ORDER BY c.id DESC LIMIT ${}", params.len()));
    let rows: Vec<ClaimRow> = tx.query_sql(&sql, &params)?;
    let rows = rows.into_iter().map(|r| r.claim).collect();
    Ok(Page::from_rows(rows, page, |c| id_cursor(c.id)))
}

/// A new draft claim of the caller's, in the caller's branch.
#[instrument(skip_all)]
pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewClaim) -> Result<ExpenseClaim> {
    who.require("workflow.expenses.create")?;
    let mut v = Validator::new();
    let money = match &input.amount {
        Some(m) => check_money(&mut v, m),
        None => {
            v.add("amount", "is required");
            None
        }
    };
    let category = v.check("category", check_category(&input.category));
    let description = v.check("description", check_description(&input.description));
    let Some(owner) = who.actor() else {
        return Err(Error::field("owner_id", "an expense claim belongs to a user; the system cannot claim expenses"));
    };
    v.finish()?;
    let (Some((minor, currency)), Some(category), Some(description)) = (money, category, description) else {
        return Err(Error::field("amount", "is required"));
    };
    let now = now();
    let claim = ExpenseClaim {
        id: Id::new(),
        amount: Money::from_minor(minor, &currency),
        category,
        description,
        approval_status: None,
        submitted_at: None,
        owner_id: owner,
        branch_id: who.branch_id,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    tx.execute_sql(
        "INSERT INTO expense_claims (id, amount_minor, currency, category, description, approval_status, owner_id, \
         branch_id, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $8, 1)",
        &[
            claim.id.into(),
            minor.into(),
            currency.clone().into(),
            claim.category.clone().into(),
            claim.description.clone().into(),
            owner.into(),
            claim.branch_id.into(),
            now.into(),
        ],
    )?;
    let changes = Changes::new()
        .created("amount", &claim.amount.amount)
        .created("currency", &claim.amount.currency)
        .created("category", &claim.category)
        .created("description", &claim.description);
    audit::record(tx, who, "create", RECORD_TYPE, Some(claim.id), &changes)?;
    Ok(claim)
}

fn refuse_if_locked(claim: &ExpenseClaim) -> Result<()> {
    match claim.approval_status.as_deref() {
        Some("pending") => Err(Error::Conflict {
            field: Some("approval_status".into()),
            message: "the expense claim is awaiting approval and cannot change until the approval ends".into(),
        }),
        Some("approved") => Err(Error::Conflict {
            field: Some("approval_status".into()),
            message: "the expense claim is approved and can no longer change".into(),
        }),
        _ => Ok(()),
    }
}

#[instrument(skip_all, fields(claim.id = %id))]
pub fn update(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: ClaimPatch) -> Result<ExpenseClaim> {
    who.require("workflow.expenses.create")?;
    let old = fetch_in_scope(tx, who, id)?;
    refuse_if_locked(&old)?;
    check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    let mut minor = None;
    if let Some(m) = &patch.amount
        && let Some((m, c)) = check_money(&mut v, m)
    {
        new.amount = Money::from_minor(m, &c);
        minor = Some((m, c));
    }
    if let Some(c) = &patch.category
        && let Some(c) = v.check("category", check_category(c))
    {
        new.category = c;
    }
    if let Some(d) = &patch.description
        && let Some(d) = v.check("description", check_description(d))
    {
        new.description = d;
    }
    v.finish()?;
    let changes = Changes::new()
        .field("amount", &old.amount.amount, &new.amount.amount)
        .field("currency", &old.amount.currency, &new.amount.currency)
        .field("category", &old.category, &new.category)
        .field("description", &old.description, &new.description);
    if changes.is_empty() {
        return Ok(old);
    }
    let (m, c) = minor.unwrap_or_else(|| {
        let m = old.amount.to_minor().unwrap_or((0, old.amount.currency.clone()));
        (m.0, m.1)
    });
    new.updated_at = now();
    new.version = old.version + 1;
    // The status condition makes a submission that commits first win: the edit then
    // finds no row and is refused like any stale write.
    let n = tx.execute_sql(
        "UPDATE expense_claims SET amount_minor = $1, currency = $2, category = $3, description = $4, updated_at = $5, \
         version = $6 WHERE id = $7 AND version = $8 AND approval_status IN ('draft', 'rejected')",
        &[
            m.into(),
            c.into(),
            new.category.clone().into(),
            new.description.clone().into(),
            new.updated_at.into(),
            new.version.into(),
            id.into(),
            old.version.into(),
        ],
    )?;
    if n == 0 {
        return Err(Error::StaleVersion { current: old.version });
    }
    audit::record(tx, who, "update", RECORD_TYPE, Some(id), &changes)?;
    Ok(new)
}

/// Submits the claim for approval: starts the first matching approval process.
#[instrument(skip_all, fields(claim.id = %id))]
pub fn submit(tx: &mut Tx<'_>, who: &Principal, registry: &Registry, id: Id) -> Result<ExpenseClaim> {
    who.require("workflow.expenses.create")?;
    crate::engine::submit(tx, who, registry, RECORD_TYPE, id)?;
    fetch_readable(tx, who, id)
}

/// The receipts of a claim `who` may read (its approvers too), oldest first.
#[instrument(skip_all, fields(claim.id = %id))]
pub fn receipts(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Vec<Attachment>> {
    who.require("workflow.expenses.read")?;
    fetch_readable(tx, who, id)?;
    attachments::list(tx, RECORD_TYPE, id)
}

/// What a receipt may be: a photo or a scan.
const NOT_A_RECEIPT: &str = "is not an image (PNG, JPEG, GIF, WebP, HEIC) or a PDF; a receipt is a photo or a scan";

/// Adds a receipt (an image or a PDF, at most 10 MB) to a claim `who` may edit. A pending
/// or approved claim refuses it (409) like any other change.
#[instrument(skip_all, fields(claim.id = %id))]
pub fn add_receipt(tx: &mut Tx<'_>, who: &Principal, id: Id, file_name: &str, bytes: &[u8]) -> Result<Attachment> {
    who.require("workflow.expenses.create")?;
    let claim = fetch_in_scope(tx, who, id)?;
    refuse_if_locked(&claim)?;
    attachments::check_size(bytes)?;
    if attachments::sniff(bytes).is_none() {
        return Err(Error::field("file", NOT_A_RECEIPT));
    }
    touch_unlocked(tx, &claim)?;
    attachments::add(tx, who, RECORD_TYPE, id, file_name, bytes)
}

/// A receipt with its bytes, for whoever may read its claim (its approvers too); any
/// other caller gets a 404.
#[instrument(skip_all, fields(attachment.id = %attachment_id))]
pub fn receipt(tx: &mut Tx<'_>, who: &Principal, attachment_id: Id) -> Result<(Attachment, Vec<u8>)> {
    who.require("workflow.expenses.read")?;
    let a = receipt_meta(tx, attachment_id)?;
    readable_or_404(fetch_readable(tx, who, a.record_id))?;
    attachments::content(tx, attachment_id)?.ok_or(Error::NotFound("attachment"))
}

/// Deletes (softly) a receipt of a claim `who` may edit; refused while the claim is
/// pending or approved (409).
#[instrument(skip_all, fields(attachment.id = %attachment_id))]
pub fn remove_receipt(tx: &mut Tx<'_>, who: &Principal, attachment_id: Id) -> Result<Attachment> {
    who.require("workflow.expenses.create")?;
    let a = receipt_meta(tx, attachment_id)?;
    let claim = readable_or_404(fetch_in_scope(tx, who, a.record_id))?;
    refuse_if_locked(&claim)?;
    touch_unlocked(tx, &claim)?;
    attachments::delete(tx, who, attachment_id)
}

fn receipt_meta(tx: &mut Tx<'_>, attachment_id: Id) -> Result<Attachment> {
    attachments::find(tx, attachment_id)?.filter(|a| a.record_type == RECORD_TYPE).ok_or(Error::NotFound("attachment"))
}

/// A claim out of reach hides its receipts too: "attachment not found", not "claim".
fn readable_or_404(claim: Result<ExpenseClaim>) -> Result<ExpenseClaim> {
    claim.map_err(|e| match e {
        Error::NotFound(_) => Error::NotFound("attachment"),
        other => other,
    })
}

/// Marks the claim changed, on the condition that it is still a draft or rejected: a
/// submission that commits first wins and the receipt change is refused (409); on
/// PostgreSQL the row lock holds a racing submission back until this commits.
fn touch_unlocked(tx: &mut Tx<'_>, claim: &ExpenseClaim) -> Result<()> {
    let n = tx.execute_sql(
        "UPDATE expense_claims SET updated_at = $1 WHERE id = $2 AND approval_status IN ('draft', 'rejected')",
        &[now().into(), claim.id.into()],
    )?;
    if n == 0 {
        return Err(Error::conflict(
            "approval_status",
            "the expense claim is awaiting approval and cannot change until the approval ends",
        ));
    }
    Ok(())
}

/// The `expense_claim` record type: fields `amount` (money), `currency`, `category`
/// (text) and `branch`.
#[derive(Debug, Clone, Copy)]
pub struct ExpenseClaimType;

const FIELDS: &[Field] = &[
    Field { key: "amount", kind: FieldKind::Money },
    Field { key: "currency", kind: FieldKind::Text },
    Field { key: "category", kind: FieldKind::Text },
    Field { key: "branch", kind: FieldKind::Branch },
];

fn subject(row: ClaimRow) -> Subject {
    let c = row.claim;
    let (minor, currency) = c.amount.to_minor().unwrap_or((0, c.amount.currency.clone()));
    let mut values = BTreeMap::new();
    values.insert(
        "amount",
        FieldValue::Money { amount: Decimal::from_minor(minor, exponent(&currency)), currency: currency.clone() },
    );
    values.insert("currency", FieldValue::Text(currency));
    values.insert("category", FieldValue::Text(c.category.clone()));
    values.insert("branch", FieldValue::Branch { id: c.branch_id, path: row.branch_path });
    Subject {
        id: c.id,
        owner_id: c.owner_id,
        branch_id: c.branch_id,
        title: format!("{} {}: {}", c.category, c.amount.display(), c.description),
        link: format!("/expenses/{}", c.id),
        values,
    }
}

impl RecordType for ExpenseClaimType {
    fn key(&self) -> &'static str {
        RECORD_TYPE
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn load_for_submit(&self, tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Subject> {
        let row = find(tx, id)?.ok_or(Error::NotFound("expense claim"))?;
        if !who.reaches(Some(row.claim.owner_id), &row.branch_path) {
            return Err(Error::NotFound("expense claim"));
        }
        refuse_if_locked(&row.claim)?;
        Ok(subject(row))
    }

    fn load(&self, tx: &mut Tx<'_>, id: Id) -> Result<Option<Subject>> {
        Ok(find(tx, id)?.map(subject))
    }

    fn label(&self) -> crate::notifications::Text {
        crate::notifications::Text::msg("record-expense-claim")
    }

    fn set_approval_status(&self, tx: &mut Tx<'_>, id: Id, status: ApprovalStatus) -> Result<()> {
        tx.execute_sql(
            "UPDATE expense_claims SET approval_status = $1, version = version + 1, updated_at = $2 WHERE id = $3",
            &[status.as_str().into(), now().into(), id.into()],
        )?;
        Ok(())
    }
}
