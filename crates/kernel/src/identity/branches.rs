//! Branches: the organisation tree (head office → regions / trade companies → stores).
//! Each branch keeps its materialised path (`/1/7/12/`), so "this branch and everything
//! under it" is one indexed prefix match, on both backends.
use chrono::{DateTime, Utc};
use sea_query::{Expr, ExprTrait, Iden, Order, Query, SimpleExpr};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Changes};
use crate::db::{DbError, FromRow, Row, Tx};
use crate::error::{Error, Result, Validator};
use crate::id::Id;
use crate::paging::{Page, PageRequest, id_cursor};
use crate::principal::Principal;
use crate::values;

#[derive(Iden)]
pub enum Branches {
    Table,
    Id,
    ParentId,
    Name,
    Code,
    Kind,
    Path,
    Region,
    TimeZone,
    OwnerId,
    CreatedAt,
    UpdatedAt,
    Version,
    DeletedAt,
}

pub const KINDS: [&str; 4] = ["hq", "region", "trade_company", "store"];
/// Phone-number regions a branch may default to.
pub const REGIONS: [&str; 2] = ["CN", "KR"];

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Branch {
    pub id: Id,
    pub parent_id: Option<Id>,
    pub name: String,
    pub code: Option<String>,
    /// `hq`, `region`, `trade_company` or `store`.
    pub kind: String,
    /// Default region for phone numbers entered at this branch (`CN`, `KR`).
    pub region: String,
    pub time_zone: String,
    #[serde(skip)]
    pub path: String,
    /// How deep in the tree (head office = 0).
    pub depth: usize,
    pub owner_id: Option<Id>,
    /// A branch belongs to itself for data-scope purposes.
    pub branch_id: Id,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl FromRow for Branch {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let id: Id = row.get("id")?;
        let path: String = row.get("path")?;
        Ok(Branch {
            id,
            parent_id: row.get("parent_id")?,
            name: row.get("name")?,
            code: row.get("code")?,
            kind: row.get("kind")?,
            region: row.get("region")?,
            time_zone: row.get("time_zone")?,
            depth: path.matches('/').count().saturating_sub(2),
            path,
            owner_id: row.get("owner_id")?,
            branch_id: id,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            version: row.get("version")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBranch {
    pub name: String,
    /// The parent branch; `null` only for the head office of an empty organisation.
    #[serde(default)]
    pub parent_id: Option<Id>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchPatch {
    pub name: Option<String>,
    /// Moves the branch (and everything under it) below another branch.
    pub parent_id: Option<Id>,
    /// `""` clears the code.
    pub code: Option<String>,
    pub kind: Option<String>,
    pub region: Option<String>,
    pub time_zone: Option<String>,
    /// The version the client last saw; a mismatch is refused with 412.
    pub version: Option<i64>,
}

/// Every column a `Branch` is read from and written with, in one order.
const COLUMNS: [Branches; 12] = [
    Branches::Id,
    Branches::ParentId,
    Branches::Name,
    Branches::Code,
    Branches::Kind,
    Branches::Path,
    Branches::Region,
    Branches::TimeZone,
    Branches::OwnerId,
    Branches::CreatedAt,
    Branches::UpdatedAt,
    Branches::Version,
];

/// Every branch row, live or deleted.
fn select_any() -> sea_query::SelectStatement {
    Query::select().columns(COLUMNS).from(Branches::Table).to_owned()
}

fn select() -> sea_query::SelectStatement {
    select_any().and_where(Expr::col(Branches::DeletedAt).is_null()).to_owned()
}

/// Branches are visible down the caller's subtree. A role scoped to `own` rows still sees
/// its own branch and those below it: people need their organisation to do their work.
fn in_scope(who: &Principal) -> SimpleExpr {
    match who.scope {
        crate::principal::DataScope::All => Expr::value(true),
        _ => Expr::col(Branches::Path).like(format!("{}%", who.branch_path)),
    }
}

fn check_kind(v: &mut Validator, kind: Option<&str>) -> Option<String> {
    let kind = kind?;
    v.check(
        "kind",
        KINDS
            .iter()
            .find(|k| **k == kind)
            .map(|k| (*k).to_owned())
            .ok_or_else(|| format!("must be one of {}", KINDS.join(", "))),
    )
}

fn check_region(v: &mut Validator, region: Option<&str>) -> Option<String> {
    let region = region?.trim().to_uppercase();
    v.check(
        "region",
        REGIONS
            .iter()
            .find(|r| **r == region)
            .map(|r| (*r).to_owned())
            .ok_or_else(|| format!("must be one of {}", REGIONS.join(", "))),
    )
}

fn check_code(v: &mut Validator, code: Option<&str>) -> Option<Option<String>> {
    let code = code?.trim();
    if code.is_empty() {
        return Some(None);
    }
    v.check("code", values::name(code, 40).map(Some))
}

pub fn get(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Branch> {
    who.require("identity.branches.read")?;
    fetch_in_scope(tx, who, id)
}

fn fetch_in_scope(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Branch> {
    let q = select().and_where(Expr::col(Branches::Id).eq(id.get())).and_where(in_scope(who)).to_owned();
    tx.fetch_optional(&q)?.ok_or(Error::NotFound("branch"))
}

/// Any branch by id, ignoring scope (for joining display names).
pub fn find(tx: &mut Tx<'_>, id: Id) -> Result<Option<Branch>> {
    Ok(tx.fetch_optional(&select().and_where(Expr::col(Branches::Id).eq(id.get())).to_owned())?)
}

/// The whole visible tree, depth-first (parents before children), for pickers and the
/// admin page. Organisations have thousands of branches, not millions.
pub fn tree(tx: &mut Tx<'_>, who: &Principal) -> Result<Vec<Branch>> {
    who.require("identity.branches.read")?;
    let q = select().and_where(in_scope(who)).order_by(Branches::Path, Order::Asc).to_owned();
    Ok(tx.fetch_all(&q)?)
}

pub fn list(tx: &mut Tx<'_>, who: &Principal, parent_id: Option<Id>, page: &PageRequest) -> Result<Page<Branch>> {
    who.require("identity.branches.read")?;
    let mut q =
        select().and_where(in_scope(who)).order_by(Branches::Id, Order::Asc).limit(page.fetch_limit()).to_owned();
    if let Some(parent) = parent_id {
        q.and_where(Expr::col(Branches::ParentId).eq(parent.get()));
    }
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col(Branches::Id).gt(c.id));
    }
    let rows: Vec<Branch> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |b| id_cursor(b.id)))
}

/// Deleted branches (to restore them), with the permission and scope rules of [`list`].
pub fn list_deleted(tx: &mut Tx<'_>, who: &Principal, page: &PageRequest) -> Result<Page<Branch>> {
    who.require("identity.branches.read")?;
    let mut q = select_any()
        .and_where(Expr::col(Branches::DeletedAt).is_not_null())
        .and_where(in_scope(who))
        .order_by(Branches::Id, Order::Asc)
        .limit(page.fetch_limit())
        .to_owned();
    if let Some(c) = &page.cursor {
        q.and_where(Expr::col(Branches::Id).gt(c.id));
    }
    let rows: Vec<Branch> = tx.fetch_all(&q)?;
    Ok(Page::from_rows(rows, page, |b| id_cursor(b.id)))
}

pub fn create(tx: &mut Tx<'_>, who: &Principal, input: NewBranch) -> Result<Branch> {
    who.require("identity.branches.create")?;
    let mut v = Validator::new();
    let name = v.check("name", values::name(&input.name, 200));
    let code = check_code(&mut v, input.code.as_deref()).flatten();
    let kind = check_kind(&mut v, input.kind.as_deref());
    let region = check_region(&mut v, input.region.as_deref());
    let time_zone = input.time_zone.as_deref().and_then(|tz| v.check("time_zone", values::time_zone(tz)));
    let parent = match input.parent_id {
        Some(pid) => match fetch_in_scope(tx, who, pid) {
            Ok(p) => Some(p),
            Err(Error::NotFound(_)) => {
                v.add("parent_id", "no such branch");
                None
            }
            Err(e) => return Err(e),
        },
        None => {
            let roots: Vec<i64> =
                tx.query_sql("SELECT COUNT(*) FROM branches WHERE parent_id IS NULL AND deleted_at IS NULL", &[])?;
            if roots.first().copied().unwrap_or(0) > 0 {
                v.add("parent_id", "is required: the organisation already has its head office");
            }
            None
        }
    };
    v.finish()?;
    let id = Id::new();
    let now = super::now();
    let branch = Branch {
        id,
        parent_id: parent.as_ref().map(|p| p.id),
        name: name.unwrap_or_default(),
        code,
        kind: kind.unwrap_or_else(|| if parent.is_none() { "hq" } else { "store" }.to_owned()),
        region: region.or_else(|| parent.as_ref().map(|p| p.region.clone())).unwrap_or_else(|| "CN".into()),
        time_zone: time_zone
            .or_else(|| parent.as_ref().map(|p| p.time_zone.clone()))
            .unwrap_or_else(|| values::DEFAULT_TIME_ZONE.into()),
        path: format!("{}{}/", parent.as_ref().map_or("/", |p| p.path.as_str()), id),
        depth: parent.as_ref().map_or(0, |p| p.depth + 1),
        owner_id: who.actor(),
        branch_id: id,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let insert = Query::insert()
        .into_table(Branches::Table)
        .columns(COLUMNS)
        .values_panic([
            id.into(),
            branch.parent_id.map(|p| p.get()).into(),
            branch.name.clone().into(),
            branch.code.clone().into(),
            branch.kind.clone().into(),
            branch.path.clone().into(),
            branch.region.clone().into(),
            branch.time_zone.clone().into(),
            branch.owner_id.map(|o| o.get()).into(),
            now.into(),
            now.into(),
            1i64.into(),
        ])
        .to_owned();
    tx.execute(&insert)?;
    let changes = Changes::new()
        .created("name", &branch.name)
        .created("parent_id", &branch.parent_id)
        .created("code", &branch.code)
        .created("kind", &branch.kind)
        .created("region", &branch.region)
        .created("time_zone", &branch.time_zone);
    audit::record(tx, who, "create", "branch", Some(id), &changes)?;
    Ok(branch)
}

pub fn update(tx: &mut Tx<'_>, who: &Principal, id: Id, patch: BranchPatch) -> Result<Branch> {
    who.require("identity.branches.update")?;
    let old = fetch_in_scope(tx, who, id)?;
    super::check_version(old.version, patch.version)?;
    let mut v = Validator::new();
    let mut new = old.clone();
    if let Some(name) = &patch.name {
        new.name = v.check("name", values::name(name, 200)).unwrap_or_default();
    }
    if let Some(code) = check_code(&mut v, patch.code.as_deref()) {
        new.code = code;
    }
    if let Some(kind) = check_kind(&mut v, patch.kind.as_deref()) {
        new.kind = kind;
    }
    if let Some(region) = check_region(&mut v, patch.region.as_deref()) {
        new.region = region;
    }
    if let Some(tz) = patch.time_zone.as_deref().and_then(|tz| v.check("time_zone", values::time_zone(tz))) {
        new.time_zone = tz;
    }
    let mut moved_from: Option<String> = None;
    if let Some(parent_id) = patch.parent_id.filter(|p| Some(*p) != old.parent_id) {
        if old.parent_id.is_none() {
            v.add("parent_id", "the head office cannot be moved");
        } else {
            match fetch_in_scope(tx, who, parent_id) {
                Ok(parent) if parent.path.starts_with(&old.path) => {
                    v.add("parent_id", "a branch cannot move below itself");
                }
                Ok(parent) => {
                    moved_from = Some(old.path.clone());
                    new.parent_id = Some(parent.id);
                    new.path = format!("{}{}/", parent.path, id);
                    new.depth = parent.depth + 1;
                }
                Err(Error::NotFound(_)) => v.add("parent_id", "no such branch"),
                Err(e) => return Err(e),
            }
        }
    }
    v.finish()?;
    let changes = Changes::new()
        .field("name", &old.name, &new.name)
        .field("code", &old.code, &new.code)
        .field("kind", &old.kind, &new.kind)
        .field("region", &old.region, &new.region)
        .field("time_zone", &old.time_zone, &new.time_zone)
        .field("parent_id", &old.parent_id, &new.parent_id);
    if changes.is_empty() {
        return Ok(old);
    }
    new.updated_at = super::now();
    new.version = old.version + 1;
    let update = Query::update()
        .table(Branches::Table)
        .values([
            (Branches::Name, new.name.clone().into()),
            (Branches::Code, new.code.clone().into()),
            (Branches::Kind, new.kind.clone().into()),
            (Branches::Region, new.region.clone().into()),
            (Branches::TimeZone, new.time_zone.clone().into()),
            (Branches::ParentId, new.parent_id.map(|p| p.get()).into()),
            (Branches::UpdatedAt, new.updated_at.into()),
            (Branches::Version, new.version.into()),
        ])
        .and_where(Expr::col(Branches::Id).eq(id.get()))
        .and_where(Expr::col(Branches::Version).eq(old.version))
        .to_owned();
    crate::records::update_versioned(tx, &update, old.version)?;
    if let Some(old_path) = moved_from {
        // Rewrite the path of the branch and of everything under it.
        tx.execute_sql(
            "UPDATE branches SET path = $1 || substr(path, $2) WHERE path LIKE $3",
            &[new.path.clone().into(), ((old_path.len() + 1) as i64).into(), format!("{old_path}%").into()],
        )?;
    }
    audit::record(tx, who, "update", "branch", Some(id), &changes)?;
    Ok(new)
}

/// Soft delete; refused while users or live branches still belong to it.
pub fn delete(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<()> {
    who.require("identity.branches.delete")?;
    let branch = fetch_in_scope(tx, who, id)?;
    if branch.parent_id.is_none() {
        return Err(Error::Conflict { field: None, message: "the head office cannot be deleted".into() });
    }
    let children: Vec<i64> =
        tx.query_sql("SELECT COUNT(*) FROM branches WHERE parent_id = $1 AND deleted_at IS NULL", &[id.into()])?;
    if children.first().copied().unwrap_or(0) > 0 {
        return Err(Error::Conflict {
            field: None,
            message: "the branch still has branches under it; move or delete them first".into(),
        });
    }
    let users: Vec<i64> =
        tx.query_sql("SELECT COUNT(*) FROM users WHERE branch_id = $1 AND deleted_at IS NULL", &[id.into()])?;
    if users.first().copied().unwrap_or(0) > 0 {
        return Err(Error::Conflict {
            field: None,
            message: "users still belong to this branch; move them first".into(),
        });
    }
    let now = super::now();
    tx.execute(
        &Query::update()
            .table(Branches::Table)
            .values([
                (Branches::DeletedAt, now.into()),
                (Branches::UpdatedAt, now.into()),
                (Branches::Version, (branch.version + 1).into()),
            ])
            .and_where(Expr::col(Branches::Id).eq(id.get()))
            .to_owned(),
    )?;
    audit::record(tx, who, "delete", "branch", Some(id), &Changes::new())?;
    Ok(())
}

/// Undoes a soft delete (its parent must still exist).
pub fn restore(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<Branch> {
    who.require("identity.branches.delete")?;
    let scope = in_scope(who);
    let q = Query::update()
        .table(Branches::Table)
        .values([
            (Branches::DeletedAt, Option::<DateTime<Utc>>::None.into()),
            (Branches::UpdatedAt, super::now().into()),
        ])
        .and_where(Expr::col(Branches::Id).eq(id.get()))
        .and_where(Expr::col(Branches::DeletedAt).is_not_null())
        .and_where(scope)
        .and_where(
            Expr::col(Branches::ParentId).in_subquery(
                Query::select()
                    .column(Branches::Id)
                    .from(Branches::Table)
                    .and_where(Expr::col(Branches::DeletedAt).is_null())
                    .to_owned(),
            ),
        )
        .to_owned();
    if tx.execute(&q)? == 0 {
        return Err(Error::NotFound("deleted branch"));
    }
    audit::record(tx, who, "restore", "branch", Some(id), &Changes::new())?;
    fetch_in_scope(tx, who, id)
}
