//! Users: the people who log in. Every user belongs to one branch and has one role.
use chrono::{DateTime, Utc};
use sea_query::{Expr, ExprTrait, Iden, Order, Query};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Changes};
use crate::db::{DbError, FromRow, Row, Tx};
use crate::error::{Error, Result, Validator};
use crate::id::Id;
use crate::paging::{Cursor, Page, PageRequest, id_cursor};
use crate::principal::Principal;
use crate::values::{self, Email};

use super::{branches, passwords, roles};

#[derive(Iden)]
pub enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    Locale,
    TimeZone,
    BranchId,
    Role,
    ManagerId,
    Active,
    FailedLogins,
    LockedUntil,
    PasswordChangedAt,
    OwnerId,
    CreatedAt,
    UpdatedAt,
    Version,
    DeletedAt,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Id,
    pub email: String,
    pub name: String,
    /// `en`, `zh-CN` or `ko-KR`.
    pub locale: String,
    pub time_zone: String,
    pub branch_id: Id,
    pub role: String,
    pub manager_id: Option<Id>,
    pub active: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub owner_id: Option<Id>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl FromRow for User {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(User {
            id: row.get("id")?,
            email: row.get("email")?,
            name: row.get("name")?,
            locale: row.get("locale")?,
            time_zone: row.get("time_zone")?,
            branch_id: row.get("branch_id")?,
            role: row.get("role")?,
            manager_id: row.get("manager_id")?,
            active: row.get("active")?,
            locked_until: row.get("locked_until")?,
            owner_id: row.get("owner_id")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            version: row.get("version")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password: String,
    pub role: String,
    pub branch_id: Id,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub manager_id: Option<Id>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<String>,
    pub name: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub branch_id: Option<Id>,
    pub role: Option<String>,
    /// A user id to set the manager, `null` to clear it; leave it out to keep it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub manager_id: Option<Option<Id>>,
    pub active: Option<bool>,
    pub version: Option<i64>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Matches name or e-mail (case-insensitive substring).
    pub q: Option<String>,
    pub branch_id: Option<Id>,
    pub role: Option<String>,
    pub active: Option<bool>,
}

/// Every user row, live or deleted.
fn select_any() -> sea_query::SelectStatement {
    Query::select()
        .columns([
            (Users::Table, Users::Id),
            (Users::Table, Users::Email),
            (Users::Table, Users::Name),
            (Users::Table, Users::Locale),
            (Users::Table, Users::TimeZone),
            (Users::Table, Users::BranchId),
            (Users::Table, Users::Role),
            (Users::Table, Users::ManagerId),
            (Users::Table, Users::Active),
            (Users::Table, Users::LockedUntil),
            (Users::Table, Users::OwnerId),
            (Users::Table, Users::CreatedAt),
            (Users::Table, Users::UpdatedAt),
            (Users::Table, Users::Version),
        ])
        .from(Users::Table)
        .to_owned()
}

pub(crate) fn select() -> sea_query::SelectStatement {
    select_any().and_where(Expr::col((Users::Table, Users::DeletedAt)).is_null()).to_owned()
}

/// For users, "own" scope means oneself, and "branch" the users of one's branch subtree.
fn scoped(who: &Principal) -> sea_query::SelectStatement {
    select().cond_where(who.scope_condition((Users::Table, Users::Id), (Users::Table, Users::BranchId))).to_owned()
}

pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<User> {
    if id != who.user_id {
        who.require("identity.users.read")?;
    }
    let q = scoped(who).and_where(Expr::col((Users::Table, Users::Id)).eq(id.get())).to_owned();
    let found: Option<User> = tx.fetch_optional(&q)?;
    match found {
        Some(u) => Ok(u),
        // One's own record is always readable, whatever the scope.
        None if id == who.user_id => find(tx, id)?.ok_or(Error::NotFound("user")),
        None => Err(Error::NotFound("user")),
    }
}

/// A user by id, ignoring permissions and scope (for the system and display names).
pub fn find(tx: &mut Tx<'_>, id: Id) -> Result<Option<User>> {
    Ok(tx.fetch_optional(&select().and_where(Expr::col((Users::Table, Users::Id)).eq(id.get())).to_owned())?)
}

pub fn find_by_email(tx: &mut Tx<'_>, email: &str) -> Result<Option<User>> {
    let email = email.trim().to_lowercase();
    Ok(tx.fetch_optional(&select().and_where(Expr::col((Users::Table, Users::Email)).eq(email)).to_owned())?)
}

pub fn list(tx: &mut Tx<'_>, who: &Principal, filter: &UserFilter, page: &PageRequest) -> Result<Page<User>> {
    who.require("identity.users.read")?;
    let mut q = scoped(who).order_by((Users::Table, Users::Id), Order::Asc).limit(page.fetch_limit()).to_owned();
    if let Some(text) = filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", text.to_lowercase().replace(['\\', '%', '_'], ""));
        q.and_where(
            sea_query::Func::lower(Expr::col((Users::Table, Users::Name))).like(pattern.clone()).or(Expr::col((
                Users::Table,
                Users::Email,
            ))
            .like(pattern)),
        );
    }
    if let Some(b) = filter.branch_id {
        q.and_where(Expr::col((Users::Table, Users::BranchId)).eq(b.get()));
    }
    if let Some(r) = &filter.role {
        q.and_where(Expr::col((Users::Table, Users::Role)).eq(r.as_str()));
    }
    if let Some(a) = filter.active {
        q.and_where(Expr::col((Users::Table, Users::Active)).eq(a));
    }
    if let Some(Cursor { id, .. }) = &page.cursor {
        q.and_where(Expr::col((Users::Table, Users::Id)).gt(*id));
    }
    let rows: Vec<User> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |u| id_cursor(u.id)))
}

/// Active users whose name or e-mail contains `text` (case-insensitive), by name, at most
/// `limit`: a directory for choosing a colleague (a relay hand-off), so no permission or
/// data scope applies; the caller decides who may look.
pub fn directory(tx: &mut Tx<'_>, text: &str, limit: u64) -> Result<Vec<User>> {
    let mut q = select()
        .and_where(Expr::col((Users::Table, Users::Active)).eq(true))
        .order_by((Users::Table, Users::Name), Order::Asc)
        .order_by((Users::Table, Users::Id), Order::Asc)
        .limit(limit)
        .to_owned();
    let text = text.trim().to_lowercase().replace(['\\', '%', '_'], "");
    if !text.is_empty() {
        let pattern = format!("%{text}%");
        q.and_where(
            sea_query::Func::lower(Expr::col((Users::Table, Users::Name))).like(pattern.clone()).or(Expr::col((
                Users::Table,
                Users::Email,
            ))
            .like(pattern)),
        );
    }
    Ok(tx.fetch_all(&q)?)
}

/// Deleted users (to restore them), with the permission and scope rules of [`list`].
pub fn list_deleted(tx: &mut Tx<'_>, who: &Principal, page: &PageRequest) -> Result<Page<User>> {
    who.require("identity.users.read")?;
    let mut q = select_any()
        .and_where(Expr::col((Users::Table, Users::DeletedAt)).is_not_null())
        .cond_where(who.scope_condition((Users::Table, Users::Id), (Users::Table, Users::BranchId)))
        .order_by((Users::Table, Users::Id), Order::Asc)
        .limit(page.fetch_limit())
        .to_owned();
    if let Some(Cursor { id, .. }) = &page.cursor {
        q.and_where(Expr::col((Users::Table, Users::Id)).gt(*id));
    }
    let rows: Vec<User> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |u| id_cursor(u.id)))
}

fn check_role(tx: &mut Tx<'_>, who: &Principal, v: &mut Validator, key: &str) -> Result<Option<String>> {
    match roles::find(tx, key.trim())? {
        None => {
            v.add("role", format!("{key:?} is not a role"));
            Ok(None)
        }
        Some(role) if !roles::may_grant(who, &role) => {
            v.add("role", "you cannot give a role with permissions you do not hold");
            Ok(None)
        }
        Some(role) => Ok(Some(role.key)),
    }
}

fn check_branch(tx: &mut Tx<'_>, who: &Principal, v: &mut Validator, id: Id) -> Result<Option<Id>> {
    let Some(branch) = branches::find(tx, id)? else {
        v.add("branch_id", "no such branch");
        return Ok(None);
    };
    if !who.reaches(None, &branch.path) && who.scope != crate::principal::DataScope::Own {
        v.add("branch_id", "is outside the branches you manage");
        return Ok(None);
    }
    Ok(Some(branch.id))
}

fn check_manager(tx: &mut Tx<'_>, v: &mut Validator, id: Option<Id>, user: Option<Id>) -> Result<()> {
    if let Some(m) = id {
        if Some(m) == user {
            v.add("manager_id", "a user cannot be their own manager");
        } else if find(tx, m)?.is_none() {
            v.add("manager_id", "no such user");
        }
    }
    Ok(())
}

/// Validates a new user's fields; the password is hashed by the caller off the async
/// threads (see [`create`]).
pub fn validate_new(tx: &mut Tx<'_>, who: &Principal, input: &NewUser) -> Result<()> {
    who.require("identity.users.create")?;
    let mut v = Validator::new();
    v.check("email", Email::parse(&input.email));
    v.check("name", values::name(&input.name, 200));
    v.check("password", passwords::check_policy(&input.password));
    if let Some(l) = &input.locale {
        v.check("locale", values::locale(l));
    }
    if let Some(tz) = &input.time_zone {
        v.check("time_zone", values::time_zone(tz));
    }
    check_role(tx, who, &mut v, &input.role)?;
    check_branch(tx, who, &mut v, input.branch_id)?;
    check_manager(tx, &mut v, input.manager_id, None)?;
    v.finish()
}

/// Creates a user whose password was already hashed with [`passwords::hash`].
pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewUser, password_hash: String) -> Result<User> {
    validate_new(tx, who, &input)?;
    let email = Email::parse(&input.email).map_err(|m| Error::field("email", m))?;
    let branch = branches::find(tx, input.branch_id)?.ok_or(Error::field("branch_id", "no such branch"))?;
    let now = super::now();
    let user = User {
        id: Id::new(),
        email: email.as_str().to_owned(),
        name: values::name(&input.name, 200).map_err(|m| Error::field("name", m))?,
        locale: input
            .locale
            .as_deref()
            .map(values::locale)
            .transpose()
            .map_err(|m| Error::field("locale", m))?
            .unwrap_or_else(|| "zh-CN".into()),
        time_zone: input
            .time_zone
            .as_deref()
            .map(values::time_zone)
            .transpose()
            .map_err(|m| Error::field("time_zone", m))?
            .unwrap_or(branch.time_zone),
        branch_id: branch.id,
        role: input.role.trim().to_owned(),
        manager_id: input.manager_id,
        active: true,
        locked_until: None,
        owner_id: who.actor(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let insert = Query::insert()
        .into_table(Users::Table)
        .columns([
            Users::Id,
            Users::Email,
            Users::Name,
            Users::PasswordHash,
            Users::Locale,
            Users::TimeZone,
            Users::BranchId,
            Users::Role,
            Users::ManagerId,
            Users::Active,
            Users::FailedLogins,
            Users::PasswordChangedAt,
            Users::OwnerId,
            Users::CreatedAt,
            Users::UpdatedAt,
            Users::Version,
        ])
        .values_panic([
            user.id.into(),
            user.email.clone().into(),
            user.name.clone().into(),
            password_hash.into(),
            user.locale.clone().into(),
            user.time_zone.clone().into(),
            user.branch_id.into(),
            user.role.clone().into(),
            user.manager_id.map(|m| m.get()).into(),
            true.into(),
            0i64.into(),
            now.into(),
            user.owner_id.map(|o| o.get()).into(),
            now.into(),
            now.into(),
            1i64.into(),
        ])
        .to_owned();
    tx.execute(&insert).map_err(|e| match Error::from(e) {
        Error::Conflict { .. } => Error::conflict("email", "a user with this e-mail exists"),
        other => other,
    })?;
    let changes = Changes::new()
        .created("email", &user.email)
        .created("name", &user.name)
        .created("role", &user.role)
        .created("branch_id", &user.branch_id)
        .created("locale", &user.locale)
        .created("time_zone", &user.time_zone);
    audit::record(tx, who, "create", "user", Some(user.id), &changes)?;
    Ok(user)
}

pub fn update(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: UserPatch) -> Result<User> {
    let editing_self = id == who.user_id;
    let old = get(tx, who, id)?;
    // Users may change their own name, language and time zone; everything else, and
    // anyone else, needs identity.users.update.
    let touches_admin_fields = patch.email.is_some()
        || patch.branch_id.is_some()
        || patch.role.is_some()
        || patch.manager_id.is_some()
        || patch.active.is_some();
    if !editing_self || touches_admin_fields {
        who.require("identity.users.update")?;
    }
    super::check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    if let Some(e) = patch.email.as_deref().and_then(|e| v.check("email", Email::parse(e))) {
        new.email = e.as_str().to_owned();
    }
    if let Some(n) = &patch.name {
        new.name = v.check("name", values::name(n, 200)).unwrap_or_default();
    }
    if let Some(l) = &patch.locale {
        new.locale = v.check("locale", values::locale(l)).unwrap_or_default();
    }
    if let Some(tz) = &patch.time_zone {
        new.time_zone = v.check("time_zone", values::time_zone(tz)).unwrap_or_default();
    }
    if let Some(r) = &patch.role {
        if let Some(r) = check_role(tx, who, &mut v, r)? {
            new.role = r;
        }
        if editing_self && new.role != old.role {
            v.add("role", "you cannot change your own role");
        }
    }
    if let Some(b) = patch.branch_id
        && let Some(b) = check_branch(tx, who, &mut v, b)?
    {
        new.branch_id = b;
    }
    if let Some(manager) = patch.manager_id {
        check_manager(tx, &mut v, manager, Some(id))?;
        new.manager_id = manager;
    }
    if let Some(a) = patch.active {
        if editing_self && !a {
            v.add("active", "you cannot deactivate yourself");
        }
        new.active = a;
    }
    v.finish()?;
    let changes = Changes::new()
        .field("email", &old.email, &new.email)
        .field("name", &old.name, &new.name)
        .field("locale", &old.locale, &new.locale)
        .field("time_zone", &old.time_zone, &new.time_zone)
        .field("role", &old.role, &new.role)
        .field("branch_id", &old.branch_id, &new.branch_id)
        .field("manager_id", &old.manager_id, &new.manager_id)
        .field("active", &old.active, &new.active);
    if changes.is_empty() {
        return Ok(old);
    }
    new.version = old.version + 1;
    new.updated_at = super::now();
    let q = Query::update()
        .table(Users::Table)
        .values([
            (Users::Email, new.email.clone().into()),
            (Users::Name, new.name.clone().into()),
            (Users::Locale, new.locale.clone().into()),
            (Users::TimeZone, new.time_zone.clone().into()),
            (Users::Role, new.role.clone().into()),
            (Users::BranchId, new.branch_id.into()),
            (Users::ManagerId, new.manager_id.map(|m| m.get()).into()),
            (Users::Active, new.active.into()),
            (Users::UpdatedAt, new.updated_at.into()),
            (Users::Version, new.version.into()),
        ])
        .and_where(Expr::col(Users::Id).eq(id.get()))
        .and_where(Expr::col(Users::Version).eq(old.version))
        .to_owned();
    let n = tx.execute(&q).map_err(|e| match Error::from(e) {
        Error::Conflict { .. } => Error::conflict("email", "a user with this e-mail exists"),
        other => other,
    })?;
    if n == 0 {
        return Err(Error::StaleVersion { current: old.version });
    }
    if !new.active && old.active {
        super::sessions::end_all_for_user(tx, id)?;
    }
    audit::record(tx, who, "update", "user", Some(id), &changes)?;
    Ok(new)
}

/// Soft delete: the user can no longer log in; their records keep their owner.
pub fn delete(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    who.require("identity.users.delete")?;
    if id == who.user_id {
        return Err(Error::Conflict { field: None, message: "you cannot delete yourself".into() });
    }
    let user = get(tx, who, id)?;
    let now = super::now();
    tx.execute(
        &Query::update()
            .table(Users::Table)
            .values([
                (Users::DeletedAt, now.into()),
                (Users::Active, false.into()),
                (Users::UpdatedAt, now.into()),
                (Users::Version, (user.version + 1).into()),
            ])
            .and_where(Expr::col(Users::Id).eq(id.get()))
            .to_owned(),
    )?;
    super::sessions::end_all_for_user(tx, id)?;
    tx.execute_sql(
        "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        &[now.into(), id.into()],
    )?;
    audit::record(tx, who, "delete", "user", Some(id), &Changes::new())?;
    Ok(())
}

pub fn restore(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<User> {
    who.require("identity.users.delete")?;
    let q = Query::update()
        .table(Users::Table)
        .values([
            (Users::DeletedAt, Option::<DateTime<Utc>>::None.into()),
            (Users::Active, true.into()),
            (Users::UpdatedAt, super::now().into()),
        ])
        .and_where(Expr::col((Users::Table, Users::Id)).eq(id.get()))
        .and_where(Expr::col((Users::Table, Users::DeletedAt)).is_not_null())
        .cond_where(who.scope_condition((Users::Table, Users::Id), (Users::Table, Users::BranchId)))
        .to_owned();
    if tx.execute(&q)? == 0 {
        return Err(Error::NotFound("deleted user"));
    }
    audit::record(tx, who, "restore", "user", Some(id), &Changes::new())?;
    get(tx, who, id)
}

/// The stored hash, for verifying the current password before a change.
pub fn password_hash(tx: &mut Tx<'_>, id: Id) -> Result<Option<String>> {
    Ok(tx.query_opt_sql("SELECT password_hash FROM users WHERE id = $1 AND deleted_at IS NULL", &[id.into()])?)
}

/// Sets a new password (already hashed). A user changing their own password keeps
/// `keep_session`; every other session of theirs ends.
pub fn set_password(
    tx: &mut Tx<'_>,
    who: &Principal,
    id: Id,
    new_hash: String,
    keep_session: Option<&str>,
) -> Result<()> {
    if id != who.user_id {
        who.require("identity.users.update")?;
        get(tx, who, id)?;
    }
    let now = super::now();
    let n = tx.execute_sql(
        "UPDATE users SET password_hash = $1, password_changed_at = $2, failed_logins = 0, locked_until = NULL, updated_at = $3 \
         WHERE id = $4 AND deleted_at IS NULL",
        &[new_hash.into(), now.into(), now.into(), id.into()],
    )?;
    if n == 0 {
        return Err(Error::NotFound("user"));
    }
    super::sessions::end_all_except(tx, id, keep_session)?;
    let action = if id == who.user_id { "password_change" } else { "password_reset" };
    audit::record(tx, who, action, "user", Some(id), &Changes::new().redacted("password"))?;
    Ok(())
}
