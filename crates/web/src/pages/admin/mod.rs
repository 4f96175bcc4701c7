//! Administration pages: users, branches, roles and the audit log.
pub mod audit;
pub mod branches;
pub mod roles;
pub mod users;

use axum::Router;
use kernel::audit::AuditEntry;
use kernel::identity::{branches as kbranches, roles as kroles};
use kernel::{Principal, Tx};

use super::Ctx;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().merge(users::router()).merge(branches::router()).merge(roles::router()).merge(audit::router())
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

pub fn role_options(roles: &[kroles::Role], selected: &str) -> Vec<Opt> {
    roles.iter().map(|r| Opt::new(r.key.clone(), r.name.clone(), r.key == selected)).collect()
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
            channel: e.channel.clone(),
            action: e.action.clone(),
            record: match e.record_id {
                Some(id) => format!("{} {id}", e.record_type),
                None => e.record_type.clone(),
            },
            changes: if e.changes.as_object().is_some_and(|o| o.is_empty()) {
                String::new()
            } else {
                e.changes.to_string()
            },
        })
        .collect()
}
