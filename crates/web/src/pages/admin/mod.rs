//! Administration pages: users, branches, roles and the audit log.
pub mod audit;
pub mod branches;
pub mod handover;
pub mod roles;
pub mod users;

use axum::Router;
use kernel::audit::AuditEntry;
use kernel::identity::{branches as kbranches, roles as kroles};
use kernel::{Principal, Tx};

use super::Ctx;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(users::router())
        .merge(branches::router())
        .merge(roles::router())
        .merge(audit::router())
        .merge(handover::router())
}

/// One `<option>` of a select.
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Opt {
    pub fn new(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Opt {
        Opt { value: value.into(), label: label.into(), selected }
    }
}

/// Branches as select options, indented by depth.
pub fn branch_options(tree: &[kbranches::Branch], selected: Option<kernel::Id>) -> Vec<Opt> {
    tree.iter()
        .map(|b| {
            let indent = "\u{2003}".repeat(b.depth);
            Opt::new(b.id.to_string(), format!("{indent}{}", b.name), Some(b.id) == selected)
        })
        .collect()
}

pub fn role_options(ctx: &Ctx, roles: &[kroles::Role], selected: &str) -> Vec<Opt> {
    roles.iter().map(|r| Opt::new(r.key.clone(), role_label(ctx, &r.key, &r.name), r.key == selected)).collect()
}

/// A role's name: translated for the built-in roles (`role-<key>`), as stored otherwise.
pub fn role_label(ctx: &Ctx, key: &str, name: &str) -> String {
    ctx.t_or(&format!("role-{key}"), name)
}

pub fn scope_label(ctx: &Ctx, scope: kernel::DataScope) -> String {
    ctx.t(&format!("scope-{}", scope.as_str()))
}

pub fn kind_label(ctx: &Ctx, kind: &str) -> String {
    ctx.t_or(&format!("branches-kind-{kind}"), kind)
}

/// Audit actions, channels and record types of the foundation, each with a message
/// `audit-action-<x>`, `audit-channel-<x>`, `record-type-<x>`; others show as stored.
pub const AUDIT_ACTIONS: &[&str] = &[
    "create",
    "update",
    "delete",
    "restore",
    "login",
    "login_failed",
    "token_use",
    "revoke",
    "password_change",
    "password_reset",
    "permission_change",
];
pub const AUDIT_CHANNELS: &[&str] = &["ui", "api", "cli", "import", "job"];
pub const RECORD_TYPES: &[&str] = &["user", "branch", "role", "api_token"];

pub fn action_label(ctx: &Ctx, action: &str) -> String {
    ctx.t_or(&format!("audit-action-{action}"), action)
}

pub fn channel_label(ctx: &Ctx, channel: &str) -> String {
    ctx.t_or(&format!("audit-channel-{channel}"), channel)
}

pub fn record_type_label(ctx: &Ctx, record_type: &str) -> String {
    ctx.t_or(&format!("record-type-{record_type}"), record_type)
}

pub fn locale_options(selected: &str) -> Vec<Opt> {
    super::LANGUAGES.iter().map(|(tag, label)| Opt::new(*tag, *label, *tag == selected)).collect()
}

pub fn time_zone_options(selected: &str) -> Vec<Opt> {
    let mut zones: Vec<&str> = super::TIME_ZONES.to_vec();
    if !selected.is_empty() && !zones.contains(&selected) {
        zones.insert(0, selected);
    }
    zones.into_iter().map(|z| Opt::new(z, z, z == selected)).collect()
}

/// What the pickers of user forms need.
pub fn user_choices(tx: &mut Tx<'_>, who: &Principal) -> kernel::Result<(Vec<kroles::Role>, Vec<kbranches::Branch>)> {
    Ok((kroles::list(tx, who)?, kbranches::tree(tx, who)?))
}

/// An audit entry ready to show.
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub channel: String,
    pub action: String,
    pub record: String,
    pub changes: String,
}

pub fn audit_rows(ctx: &Ctx, entries: &[AuditEntry]) -> Vec<AuditRow> {
    entries
        .iter()
        .map(|e| AuditRow {
            at: ctx.datetime(&e.at),
            actor: e.actor_name.clone().unwrap_or_else(|| "—".into()),
            channel: channel_label(ctx, &e.channel),
            action: action_label(ctx, &e.action),
            record: match e.record_id {
                Some(id) => format!("{} {id}", record_type_label(ctx, &e.record_type)),
                None => record_type_label(ctx, &e.record_type),
            },
            changes: if e.changes.as_object().is_some_and(|o| o.is_empty()) {
                String::new()
            } else {
                e.changes.to_string()
            },
        })
        .collect()
}
