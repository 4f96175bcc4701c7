//! Who is asking: a user (through the UI, the API, the CLI, an import or a job), their
//! permissions and their data scope. Area functions check both, in the query itself.
use std::collections::BTreeSet;

use sea_query::{Condition, Expr, ExprTrait, IntoColumnRef, Query};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;

/// How a change arrived; recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Ui,
    Api,
    Cli,
    Import,
    Job,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Ui => "ui",
            Channel::Api => "api",
            Channel::Cli => "cli",
            Channel::Import => "import",
            Channel::Job => "job",
        }
    }
}

/// Which rows a role's permissions reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataScope {
    /// Rows the user owns.
    Own,
    /// Rows of the user's branch and every branch below it.
    Branch,
    /// Every row.
    All,
}

impl DataScope {
    pub fn as_str(self) -> &'static str {
        match self {
            DataScope::Own => "own",
            DataScope::Branch => "branch",
            DataScope::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<DataScope> {
        match s {
            "own" => Some(DataScope::Own),
            "branch" => Some(DataScope::Branch),
            "all" => Some(DataScope::All),
            _ => None,
        }
    }
}

/// Does a granted permission pattern cover `permission`? Patterns are dotted names in
/// which `*` stands for one or more segments: `*`, `customers.*`, `*.read`.
pub fn pattern_matches(pattern: &str, permission: &str) -> bool {
    fn go(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"*"), Some(_)) => (1..=s.len()).any(|n| go(&p[1..], &s[n..])),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let s: Vec<&str> = permission.split('.').collect();
    go(&p, &s)
}

#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub user_id: Id,
    pub name: String,
    pub email: String,
    pub branch_id: Id,
    /// Materialised path of the user's branch, e.g. `/1/7/`; the branch scope is
    /// every branch whose path starts with it.
    pub branch_path: String,
    pub role: String,
    pub scope: DataScope,
    pub permissions: BTreeSet<String>,
    pub locale: String,
    pub time_zone: String,
    pub channel: Channel,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// The API token used, if any.
    pub token_id: Option<Id>,
}

impl Principal {
    pub fn can(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| pattern_matches(p, permission))
    }

    /// `Ok` if the caller holds `permission`, else 403 naming it.
    pub fn require(&self, permission: &str) -> Result<()> {
        if self.can(permission) { Ok(()) } else { Err(Error::Forbidden(permission.to_owned())) }
    }

    /// The condition limiting a query to the rows this caller's data scope reaches.
    /// `owner` and `branch` name the table's owner and branch columns.
    pub fn scope_condition(&self, owner: impl IntoColumnRef, branch: impl IntoColumnRef) -> Condition {
        match self.scope {
            DataScope::All => Condition::all(),
            DataScope::Own => Condition::all().add(Expr::col(owner).eq(self.user_id.get())),
            DataScope::Branch => Condition::all().add(Expr::col(branch).in_subquery(self.branch_subtree())),
        }
    }

    /// `SELECT id FROM branches WHERE path LIKE '<my path>%'`
    pub fn branch_subtree(&self) -> sea_query::SelectStatement {
        Query::select()
            .column(crate::identity::branches::Branches::Id)
            .from(crate::identity::branches::Branches::Table)
            .and_where(Expr::col(crate::identity::branches::Branches::Path).like(format!("{}%", self.branch_path)))
            .to_owned()
    }

    /// Whether a row with this owner and branch path is within the caller's scope.
    pub fn reaches(&self, owner_id: Option<Id>, branch_path: &str) -> bool {
        match self.scope {
            DataScope::All => true,
            DataScope::Own => owner_id == Some(self.user_id),
            DataScope::Branch => branch_path.starts_with(&self.branch_path),
        }
    }

    /// The principal of the system itself (migrations, demo seeding, the CLI acting for
    /// an operator at the machine): every permission, every row.
    pub fn system(channel: Channel) -> Principal {
        Principal {
            user_id: Id(0),
            name: "system".into(),
            email: String::new(),
            branch_id: Id(0),
            branch_path: "/".into(),
            role: "admin".into(),
            scope: DataScope::All,
            permissions: BTreeSet::from(["*".to_owned()]),
            locale: "en".into(),
            time_zone: "Asia/Shanghai".into(),
            channel,
            ip: None,
            request_id: None,
            token_id: None,
        }
    }

    /// The acting user's id for `owner_id`/`actor_id` columns (`None` for the system).
    pub fn actor(&self) -> Option<Id> {
        (self.user_id.0 != 0).then_some(self.user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "identity.users.read"));
        assert!(pattern_matches("identity.*", "identity.users.read"));
        assert!(pattern_matches("*.read", "identity.users.read"));
        assert!(pattern_matches("identity.users.read", "identity.users.read"));
        assert!(!pattern_matches("identity.users.read", "identity.users.update"));
        assert!(!pattern_matches("*.read", "identity.users.update"));
        assert!(!pattern_matches("customers.*", "identity.users.read"));
        assert!(!pattern_matches("identity.users", "identity.users.read"));
    }
}
