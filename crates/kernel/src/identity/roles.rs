//! Roles: a set of permission patterns and a data scope. The built-in roles are created
//! at setup; an admin edits what each may do.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Changes};
use crate::db::{DbError, FromRow, Row, Tx};
use crate::error::{Error, Result, Validator};
use crate::principal::{DataScope, Principal, pattern_matches};

use super::permissions::is_well_formed;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Role {
    pub key: String,
    pub name: String,
    pub data_scope: DataScope,
    /// Permission names or patterns (`*` stands for one or more segments).
    pub permissions: Vec<String>,
    pub built_in: bool,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl FromRow for Role {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let scope: String = row.get("data_scope")?;
        let permissions: serde_json::Value = row.get("permissions")?;
        Ok(Role {
            key: row.get("key")?,
            name: row.get("name")?,
            data_scope: DataScope::parse(&scope).unwrap_or(DataScope::Own),
            permissions: serde_json::from_value(permissions).unwrap_or_default(),
            built_in: row.get("built_in")?,
            updated_at: row.get("updated_at")?,
            version: row.get("version")?,
        })
    }
}

/// The built-in roles: (key, name, scope, permission patterns). Customer categories and
/// their custom fields shape every record of the organisation, so only administrators
/// manage them; the other roles name the customer records they work on.
pub const BUILT_IN: &[(&str, &str, DataScope, &[&str])] = &[
    ("admin", "Administrator", DataScope::All, &["*"]),
    (
        "manager",
        "Manager",
        DataScope::Branch,
        &[
            "identity.users.read",
            "identity.branches.read",
            "identity.roles.read",
            "audit.log.read",
            "customers.*.read",
            "customers.accounts.*",
            "customers.contacts.*",
            "customers.activities.*",
            "customers.tasks.*",
            "customers.merge",
            "customers.handover",
            "customers.privacy",
            "customers.import",
            "customers.export",
            "sales.*",
            "service.*",
            "marketing.*",
            "analytics.*",
            "workflow.*",
        ],
    ),
    (
        "sales",
        "Sales representative",
        DataScope::Own,
        &[
            "identity.users.read",
            "identity.branches.read",
            "customers.*.read",
            "customers.accounts.*",
            "customers.contacts.*",
            "customers.activities.*",
            "customers.tasks.*",
            "sales.*",
            "workflow.approvals.*",
            "workflow.expenses.*",
        ],
    ),
    (
        "service",
        "Service agent",
        DataScope::Branch,
        &[
            "identity.users.read",
            "identity.branches.read",
            "customers.*.read",
            "service.*",
            "workflow.approvals.*",
            "workflow.expenses.*",
        ],
    ),
    (
        "marketing",
        "Marketing",
        DataScope::All,
        &["identity.users.read", "identity.branches.read", "customers.*.read", "marketing.*", "analytics.*.read"],
    ),
    // Business areas only: `*.read` would also reach the audit log, roles and everyone's
    // background jobs, which are for administrators and managers.
    (
        "finance",
        "Finance",
        DataScope::All,
        &[
            "identity.users.read",
            "identity.branches.read",
            "customers.*.read",
            "sales.*",
            "service.*.read",
            "marketing.*.read",
            "analytics.*.read",
            "workflow.*",
        ],
    ),
    (
        "viewer",
        "Viewer",
        DataScope::Branch,
        &[
            "identity.users.read",
            "identity.branches.read",
            "customers.*.read",
            "sales.*.read",
            "service.*.read",
            "marketing.*.read",
            "analytics.*.read",
            "workflow.*.read",
        ],
    ),
];

const SELECT: &str = "SELECT key, name, data_scope, permissions, built_in, updated_at, version FROM roles";

/// Creates any missing built-in role; leaves edited ones alone.
pub fn ensure_built_in(tx: &mut Tx<'_>) -> Result<(), DbError> {
    for (key, name, scope, permissions) in BUILT_IN {
        tx.execute_sql(
            "INSERT INTO roles (key, name, data_scope, permissions, built_in, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (key) DO NOTHING",
            &[
                (*key).into(),
                (*name).into(),
                scope.as_str().into(),
                sea_query::Value::Json(Some(Box::new(serde_json::json!(permissions)))),
                true.into(),
                super::now().into(),
            ],
        )?;
    }
    Ok(())
}

pub fn list(tx: &mut Tx<'_>, who: &Principal) -> Result<Vec<Role>> {
    who.require("identity.roles.read")?;
    Ok(tx.query_sql(&format!("{SELECT} ORDER BY built_in DESC, key"), &[])?)
}

/// A role by key, without a permission check (for validating references).
pub fn find(tx: &mut Tx<'_>, key: &str) -> Result<Option<Role>> {
    Ok(tx.query_opt_sql(&format!("{SELECT} WHERE key = $1"), &[key.into()])?)
}

pub fn get(tx: &mut Tx<'_>, who: &Principal, key: &str) -> Result<Role> {
    who.require("identity.roles.read")?;
    find(tx, key)?.ok_or(Error::NotFound("role"))
}

/// Whether `who` may hand out `role`: never more than the giver holds.
pub fn may_grant(who: &Principal, role: &Role) -> bool {
    who.permissions.iter().any(|p| p == "*")
        || role.permissions.iter().all(|p| who.permissions.iter().any(|mine| pattern_matches(mine, p) || mine == p))
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Lower-case letters, digits and `_`, e.g. `regional_director`.
    pub key: String,
    pub name: String,
    pub data_scope: DataScope,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    pub name: Option<String>,
    pub data_scope: Option<DataScope>,
    pub permissions: Option<Vec<String>>,
    pub version: Option<i64>,
}

fn check_permissions(v: &mut Validator, permissions: &[String], known: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for p in permissions {
        let p = p.trim();
        if !is_well_formed(p) {
            v.add("permissions", format!("{p:?} is not a permission name"));
        } else if !p.contains('*') && !known.contains(&p) {
            v.add("permissions", format!("{p:?} is not a known permission"));
        } else if !out.iter().any(|o: &String| o == p) {
            out.push(p.to_owned());
        }
    }
    out.sort();
    out
}

/// `known` is the permission catalogue of every area in this build.
pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewRole, known: &[&str]) -> Result<Role> {
    who.require("identity.roles.update")?;
    let mut v = Validator::new();
    let key = input.key.trim().to_owned();
    if key.is_empty()
        || key.len() > 40
        || !key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        v.add("key", "use 1–40 lower-case letters, digits or _");
    }
    let name = v.check("name", crate::values::name(&input.name, 100));
    let permissions = check_permissions(&mut v, &input.permissions, known);
    v.finish()?;
    let role = Role {
        key,
        name: name.unwrap_or_default(),
        data_scope: input.data_scope,
        permissions,
        built_in: false,
        updated_at: super::now(),
        version: 1,
    };
    if !may_grant(who, &role) {
        return Err(Error::Forbidden("a permission you do not hold".into()));
    }
    tx.execute_sql(
        "INSERT INTO roles (key, name, data_scope, permissions, built_in, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, 1)",
        &[
            role.key.clone().into(),
            role.name.clone().into(),
            role.data_scope.as_str().into(),
            sea_query::Value::Json(Some(Box::new(serde_json::json!(role.permissions)))),
            false.into(),
            role.updated_at.into(),
        ],
    )
    .map_err(|e| match Error::from(e) {
        Error::Conflict { .. } => Error::conflict("key", "a role with this key exists"),
        other => other,
    })?;
    audit::record(
        tx,
        who,
        "create",
        "role",
        None,
        &Changes::new()
            .created("key", &role.key)
            .created("data_scope", &role.data_scope)
            .created("permissions", &role.permissions),
    )?;
    Ok(role)
}

pub fn update(tx: &mut Tx<'_>, who: &Principal, key: &str, patch: RolePatch, known: &[&str]) -> Result<Role> {
    who.require("identity.roles.update")?;
    let old = find(tx, key)?.ok_or(Error::NotFound("role"))?;
    super::check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    if let Some(name) = &patch.name {
        new.name = v.check("name", crate::values::name(name, 100)).unwrap_or_default();
    }
    if let Some(scope) = patch.data_scope {
        new.data_scope = scope;
    }
    if let Some(permissions) = &patch.permissions {
        new.permissions = check_permissions(&mut v, permissions, known);
    }
    if old.key == "admin" && (new.permissions != ["*"] || new.data_scope != DataScope::All) {
        v.add("permissions", "the admin role keeps every permission, so the organisation can never lock itself out");
    }
    v.finish()?;
    if !may_grant(who, &new) {
        return Err(Error::Forbidden("a permission you do not hold".into()));
    }
    let changes = Changes::new()
        .field("name", &old.name, &new.name)
        .field("data_scope", &old.data_scope, &new.data_scope)
        .field("permissions", &old.permissions, &new.permissions);
    if changes.is_empty() {
        return Ok(old);
    }
    new.version += 1;
    new.updated_at = super::now();
    let n = tx.execute_sql(
        "UPDATE roles SET name = $1, data_scope = $2, permissions = $3, updated_at = $4, version = $5 WHERE key = $6 AND version = $7",
        &[
            new.name.clone().into(),
            new.data_scope.as_str().into(),
            sea_query::Value::Json(Some(Box::new(serde_json::json!(new.permissions)))),
            new.updated_at.into(),
            new.version.into(),
            key.into(),
            old.version.into(),
        ],
    )?;
    if n == 0 {
        return Err(Error::StaleVersion { current: old.version });
    }
    // Roles are keyed by text; the audit entry names the role in its changes.
    audit::record(tx, who, "permission_change", "role", None, &changes.created("key", &key))?;
    Ok(new)
}
