//! The permissions the foundation defines, named `area.thing.action`. Each area crate
//! publishes its own list the same way; the web layer joins them into the catalogue the
//! role editor shows and role updates are validated against.

/// (permission, what it allows)
pub const FOUNDATION: &[(&str, &str)] = &[
    ("identity.users.read", "See users"),
    ("identity.users.create", "Create users"),
    ("identity.users.update", "Edit users, reset their passwords"),
    ("identity.users.delete", "Deactivate and delete users"),
    ("identity.branches.read", "See branches"),
    ("identity.branches.create", "Create branches"),
    ("identity.branches.update", "Edit and move branches"),
    ("identity.branches.delete", "Delete branches"),
    ("identity.roles.read", "See roles and their permissions"),
    ("identity.roles.update", "Change roles, their permissions and data scope"),
    ("identity.tokens.manage", "See and revoke other users' API tokens"),
    ("audit.log.read", "Read the whole audit log"),
    ("system.jobs.read", "See every background job"),
];

/// A permission name or pattern is well formed: dotted lower-case segments, `*` allowed.
pub fn is_well_formed(p: &str) -> bool {
    !p.is_empty()
        && p.split('.').all(|seg| {
            seg == "*"
                || (!seg.is_empty() && seg.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        })
}
