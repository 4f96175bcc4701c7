//! The record types approvals can guard. An area registers one by implementing
//! [`RecordType`]: its key, the fields entry conditions may test (with their kinds, so a
//! condition on an unknown field or of the wrong kind is refused when the process is
//! defined), a loader of one record's values, and a hook that sets the record's
//! `approval_status` (which is also its lock: a record that is `pending` refuses changes).
use std::collections::BTreeMap;
use std::sync::Arc;

use kernel::{Id, Principal, Result, Tx};
use serde::Serialize;

use crate::amount::Decimal;
use crate::notifications::{NoticeKind, Text};

/// What a field holds, which decides the operators a condition on it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    /// A decimal number (a discount percentage, a quantity).
    Number,
    /// An amount with a currency; conditions compare amounts of the same currency.
    Money,
    /// Text compared whole (a category, a status).
    Text,
    /// A branch: `eq` one branch, or `within` a branch and everything below it.
    Branch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Field {
    pub key: &'static str,
    pub kind: FieldKind,
}

/// One field's value on one record.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Number(Decimal),
    Money {
        amount: Decimal,
        currency: String,
    },
    Text(String),
    /// The branch's id and materialised path (`/1/7/`).
    Branch {
        id: Id,
        path: String,
    },
    Null,
}

/// A record as approvals see it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub id: Id,
    /// Who asked (the requester): told of every step and the outcome.
    pub owner_id: Id,
    /// Whose role approvers are looked up in (this branch, then its parents).
    pub branch_id: Id,
    /// A short human description, e.g. `Expense claim: travel, 1999.00 CNY`.
    pub title: String,
    /// Where the record's page is, e.g. `/expenses/123`.
    pub link: String,
    pub values: BTreeMap<&'static str, FieldValue>,
}

/// Where a record stands in its approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
        }
    }
}

pub trait RecordType: Send + Sync + 'static {
    /// A stable key, e.g. `expense_claim`, `quote_discount`.
    fn key(&self) -> &'static str;
    /// The fields entry conditions may test.
    fn fields(&self) -> &'static [Field];
    /// The record as `who` may submit it: 404 when it is outside their scope, 409 when
    /// its state does not allow a submission (already pending or approved).
    fn load_for_submit(&self, tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Subject>;
    /// The record regardless of scope (approvers act on records outside their scope).
    fn load(&self, tx: &mut Tx<'_>, id: Id) -> Result<Option<Subject>>;
    /// Sets the record's approval status in the caller's transaction: `pending` locks
    /// it against changes, `approved` and `rejected` end the approval.
    fn set_approval_status(&self, tx: &mut Tx<'_>, id: Id, status: ApprovalStatus) -> Result<()>;
    /// The record type's name in notices, e.g. "Expense claim" / "费用报销" / "경비 청구"
    /// (a message of the area's own catalog); the key by default.
    fn label(&self) -> Text {
        Text::Plain(self.key().to_owned())
    }
}

/// The record types of this build, by key, and the kinds of notice users may choose to
/// receive (see [`crate::notifications`]).
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<&'static str, Arc<dyn RecordType>>,
    notice_kinds: Vec<NoticeKind>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}

impl Registry {
    /// No record types at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The record types the workflow crate brings itself (expense claims); areas add
    /// theirs with [`Registry::with`].
    pub fn standard() -> Self {
        let mut r = Self::empty().with(crate::expenses::ExpenseClaimType);
        r.notice_kinds = crate::notifications::KINDS.to_vec();
        r
    }

    /// Adds a kind of notice (an area that notifies: sales, service, …); a kind already
    /// listed is replaced.
    pub fn with_notice_kind(mut self, kind: NoticeKind) -> Self {
        self.notice_kinds.retain(|k| k.key != kind.key);
        self.notice_kinds.push(kind);
        self
    }

    /// The kinds of notice, in the order the preferences show them.
    pub fn notice_kinds(&self) -> &[NoticeKind] {
        &self.notice_kinds
    }

    pub fn with(mut self, record_type: impl RecordType) -> Self {
        self.types.insert(record_type.key(), Arc::new(record_type));
        self
    }

    pub fn get(&self, key: &str) -> Option<&Arc<dyn RecordType>> {
        self.types.get(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.keys().copied()
    }
}
