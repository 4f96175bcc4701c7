//! Customers: categories with typed custom fields, accounts (organisations) and contacts
//! (people at them). Every function takes the caller's transaction and principal, checks
//! the permission and data scope in the query itself, validates every field at once,
//! writes, and audits.
pub mod accounts;
pub mod activities;
pub mod consent;
pub mod contacts;
pub mod details;
pub mod duplicates;
pub mod exports;
pub mod fields;
pub mod filter;
pub mod handover;
pub mod imports;
pub mod merge;
pub mod phone;
pub mod privacy;
mod record;
pub mod search;
pub mod tags;
pub mod tasks;
pub mod views;

pub use phone::Phone;
pub use record::{DuplicateCandidate, RecordType, duplicate_candidates};

/// The permissions this area defines: (permission, what it allows).
pub const PERMISSIONS: &[(&str, &str)] = &[
    ("customers.categories.read", "See customer categories and their custom fields"),
    ("customers.categories.manage", "Create customer categories and custom fields"),
    ("customers.accounts.read", "See accounts"),
    ("customers.accounts.create", "Create accounts"),
    ("customers.accounts.update", "Edit accounts"),
    ("customers.accounts.delete", "Delete and restore accounts"),
    ("customers.contacts.read", "See contacts"),
    ("customers.contacts.create", "Create contacts"),
    ("customers.contacts.update", "Edit contacts"),
    ("customers.contacts.delete", "Delete and restore contacts"),
    ("customers.activities.read", "See activities and account timelines"),
    ("customers.activities.create", "Log calls, visits, meetings, e-mails and notes"),
    ("customers.activities.update", "Edit activities"),
    ("customers.activities.delete", "Delete activities"),
    ("customers.tasks.read", "See tasks"),
    ("customers.tasks.create", "Create tasks"),
    ("customers.tasks.update", "Edit and complete tasks"),
    ("customers.tasks.delete", "Delete tasks"),
    ("customers.merge", "Merge duplicate accounts or contacts, and undo a merge"),
    ("customers.handover", "Hand everything a user owns over to another user"),
    ("customers.privacy", "Export or erase the personal data of a contact"),
    ("customers.import", "Import accounts and contacts from CSV, XLSX and vCard files"),
    ("customers.export", "Export account and contact lists to CSV, XLSX and vCard"),
];
