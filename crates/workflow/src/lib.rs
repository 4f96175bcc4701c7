//! Workflow: approval processes any area can use, and expense claims, the first record
//! type they guard.
//!
//! * [`registry`]: areas register a record type (its key, the fields conditions may test,
//!   a loader of a record's values, and a hook that sets its `approval_status`, which also
//!   locks the record while an approval runs);
//! * [`processes`]: versioned process definitions: entry conditions, a priority, steps
//!   (sequential, parallel all|any|quorum, relay) and their approvers;
//! * [`engine`]: submit a record, decide (approve, reject, pass on), each one transaction;
//! * [`expenses`]: the built-in `expense_claim` record type.
pub mod amount;
pub mod calendar;
pub mod delegations;
pub mod demo;
pub mod engine;
pub mod expenses;
pub mod mail;
pub mod notifications;
pub mod processes;
pub mod registry;

pub use registry::{RecordType, Registry};

/// The permissions this area defines: (permission, what it allows).
pub const PERMISSIONS: &[(&str, &str)] = &[
    ("workflow.processes.read", "See approval process definitions"),
    ("workflow.processes.manage", "Define and edit approval processes"),
    ("workflow.approvals.read", "See your approval inbox"),
    ("workflow.approvals.decide", "Approve, reject or pass on the items you are asked to approve"),
    ("workflow.expenses.read", "See expense claims"),
    ("workflow.expenses.create", "Create, edit and submit your expense claims"),
];
