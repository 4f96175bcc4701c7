//! Account pages: the list (search as you type, filters, cursor paging), the customer 360
//! page, the create and edit forms (custom fields of the chosen category, duplicate
//! warning, stale-version check), delete with confirmation and restore.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use customers::accounts::{self as caccounts, Account, AccountFilter, AccountPatch, NewAccount};
use customers::{DuplicateCandidate, RecordType};
use kernel::error::Validator;
use kernel::paging::PageRequest;
use kernel::{Error, Id};
use serde::Deserialize;
use serde_json::Value as Json;

use super::details::{
    self, AddressRow, address_kinds, address_rows, form_addresses, set_addresses, split_lines, split_tags,
};
use super::listing::{self, Column, Extras, ListParams, custom_filters, export_links, saved_views, tag_choices};
use super::panels::{PanelContext, Shown};
use super::save;
use super::{
    FieldInput, Link, Names, Pairs, account_choices, branch_tree, categories, category_options, custom_values,
    definitions, field_inputs, id_options, show_value, user_choices,
};
use crate::error::ApiError;
use crate::pages::admin::{Opt, branch_options};
use crate::pages::{
    CsrfForm, Ctx, FormErrors, PageError, PageResult, WithErrors, act, enc, load, load_with_ctx, render, see_other,
};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/accounts", get(list).post(create))
        .route("/accounts/new", get(new_form))
        .route("/accounts/views", post(save_view))
        .route("/accounts/views/{id}/delete", post(delete_view))
        .route("/accounts/custom-fields", get(custom_part))
        .route("/accounts/{id}", get(show).post(update))
        .route("/accounts/{id}/edit", get(edit_form))
}

// ---------------------------------------------------------------------------------------
// List

/// One select filter above a list.
pub struct ListFilter {
    pub name: &'static str,
    pub label: String,
    pub options: Vec<Opt>,
}

/// One row of a customer list.
pub struct ListRow {
    pub href: String,
    pub name: String,
    pub cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "customers/list.html")]
pub struct ListPage {
    pub ctx: Ctx,
    /// `accounts` or `contacts`: the path and translation prefix.
    pub area: &'static str,
    pub q: String,
    pub filters: Vec<ListFilter>,
    /// The name column's header (sortable).
    pub name_column: Column,
    pub columns: Vec<Column>,
    pub rows: Vec<ListRow>,
    pub next: Option<String>,
    /// Some filter or search is applied (the empty state then says so).
    pub filtered: bool,
    pub can_create: bool,
    /// May see and restore deleted records (the "Deleted" link).
    pub can_delete: bool,
    pub notice: Option<String>,
    /// A record just deleted, offered for restore.
    pub deleted: Option<String>,
    pub extras: Extras,
}

impl ListPage {
    fn key(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.area)
    }
}

/// Custom-field columns a list shows for a chosen category.
pub const CUSTOM_COLUMNS: usize = 3;

async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(raw): Query<Vec<(String, String)>>,
) -> PageResult {
    list_page(state, creds, ListParams::from_raw(raw), None).await
}

/// The list for `params`; a refused filter (or a refused "Save view", `refused`) shows
/// its messages above an empty table with 422, never a 500.
pub async fn list_page(
    state: AppState,
    creds: Credentials,
    mut params: ListParams,
    refused: Option<ApiError>,
) -> PageResult {
    let view = params.view;
    let given = params.clone();
    let (ctx, (found, cats, tree, owners, defs, rows_meta, tags, views)) =
        load(&state, creds, "/accounts", move |tx, who| {
            who.require("customers.accounts.read")?;
            let views = saved_views(tx, who, "account", view)?;
            let pairs = views.applied.clone().unwrap_or_else(|| given.pairs.clone());
            let found = AccountFilter::from_query(&pairs).and_then(|filter| {
                let page = PageRequest::parse(None, given.cursor.as_deref())?;
                let found = caccounts::list(tx, who, &filter, &page)?;
                Ok((filter, found))
            });
            let (filter, found) = match found {
                Ok((f, found)) => (f, Ok(found)),
                Err(e @ Error::Validation(_)) => {
                    (AccountFilter::from_query(&pairs).unwrap_or_default(), Err(ApiError::from(e)))
                }
                Err(e) => return Err(e),
            };
            let cats = categories(tx, who)?;
            let tree = branch_tree(tx, who)?;
            let owners = user_choices(tx, who, filter.owner_id)?;
            let defs = definitions(tx, who, filter.category_id, RecordType::Account)?;
            let mut names = Names::default();
            let mut meta = Vec::new();
            for a in found.as_ref().map(|p| p.items.as_slice()).unwrap_or_default() {
                meta.push(names.user(tx, a.owner_id)?);
            }
            let tags = tag_choices(tx, who, "account")?;
            Ok((found, cats, tree, owners, defs, meta, tags, views))
        })
        .await?;
    if let Some(pairs) = views.applied {
        params.pairs = pairs;
    }
    let (found, mut error) = match found {
        Ok(found) => (found, None),
        Err(e) => (kernel::paging::Page { items: Vec::new(), next_cursor: None }, Some(e)),
    };
    if refused.is_some() {
        error = refused;
    }
    let status_code = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    let errors = match error {
        Some(e) => FormErrors::from_error(&ctx, e)?,
        None => FormErrors::default(),
    };
    let status = params.get("status").to_owned();
    let mut filters = Vec::new();
    if !cats.is_empty() {
        filters.push(ListFilter {
            name: "category_id",
            label: ctx.t("field-category"),
            options: category_options(&cats, params.get("category_id").parse().ok().map(Id)),
        });
    }
    if !tree.is_empty() {
        filters.push(ListFilter {
            name: "branch_id",
            label: ctx.t("field-branch"),
            options: branch_options(&tree, params.get("branch_id").parse().ok().map(Id)),
        });
    }
    filters.push(ListFilter {
        name: "owner_id",
        label: ctx.t("field-owner"),
        options: id_options(&owners, params.get("owner_id").parse().ok().map(Id)),
    });
    filters.push(ListFilter {
        name: "status",
        label: ctx.t("field-status"),
        options: caccounts::STATUSES
            .iter()
            .map(|s| Opt::new(*s, ctx.t(&format!("account-status-{s}")), *s == status))
            .collect(),
    });
    let names: std::collections::HashMap<Id, &str> = cats.iter().map(|c| (c.id, c.name.as_str())).collect();
    let mut columns: Vec<Column> = ["field-category", "field-status", "field-phone", "field-email", "field-owner"]
        .map(|k| Column::plain(ctx.t(k)))
        .to_vec();
    let shown: Vec<&customers::fields::CustomField> = defs.iter().take(CUSTOM_COLUMNS).collect();
    columns.extend(shown.iter().map(|d| Column::plain(d.label.clone())));
    columns.push(Column::sorted(ctx.t("field-created"), "accounts", "created_at", &params));
    columns.push(Column::sorted(ctx.t("field-updated"), "accounts", "updated_at", &params));
    let rows = found
        .items
        .iter()
        .zip(rows_meta)
        .map(|(a, owner)| {
            let mut cells = vec![
                a.category_id.and_then(|c| names.get(&c).map(|n| (*n).to_owned())).unwrap_or_default(),
                ctx.t(&format!("account-status-{}", a.status)),
                a.phone_raw.clone().or(a.phone.clone()).unwrap_or_default(),
                a.email.clone().unwrap_or_default(),
                owner,
            ];
            cells.extend(shown.iter().map(|d| a.custom.get(&d.key).map(|v| show_value(v, &ctx)).unwrap_or_default()));
            cells.push(ctx.datetime(&a.created_at));
            cells.push(ctx.datetime(&a.updated_at));
            ListRow { href: format!("/accounts/{}", a.id), name: a.name.clone(), cells }
        })
        .collect();
    let next = found.next_cursor.as_ref().map(|c| more_link("accounts", &params, c));
    let deleted = params.deleted.clone().filter(|d| d.parse::<i64>().is_ok());
    let extras = Extras {
        tag: params.get("tag").to_owned(),
        tags,
        custom: custom_filters(&defs, &params),
        sort: params.get("sort").to_owned(),
        sorts: listing::sort_options(&ctx, params.get("sort")),
        views: views.options,
        own_view: views.own,
        query: params.query(),
        can_save_view: true,
        exports: export_links(&ctx, "accounts", &params),
        errors,
    };
    let page = ListPage {
        area: "accounts",
        q: params.get("q").to_owned(),
        filters,
        name_column: Column::sorted(ctx.t("field-name"), "accounts", "name", &params),
        columns,
        rows,
        next,
        filtered: params.filtered(),
        can_create: ctx.can("customers.accounts.create"),
        can_delete: ctx.can("customers.accounts.delete"),
        notice: deleted.as_ref().map(|_| ctx.t("accounts-deleted-done")),
        deleted,
        extras,
        ctx,
    };
    Ok((status_code, render(&page)).into_response())
}

/// The "More" link: the same filter from after the last row.
pub fn more_link(area: &str, params: &ListParams, cursor: &str) -> String {
    let query = params.query();
    if query.is_empty() {
        format!("/{area}?cursor={}", enc(cursor))
    } else {
        format!("/{area}?{query}&cursor={}", enc(cursor))
    }
}

/// Deletes one of the caller's views (only the owner can), back to the plain list.
async fn delete_view(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    act(&state, creds, form, "/accounts", move |tx, who| customers::views::delete(tx, who, Id(id))).await
}

/// "Save view": stores the current filter under a name, then opens it.
async fn save_view(
    State(state): State<AppState>,
    creds: Credentials,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let form = Pairs(pairs);
    let creds = creds.with_csrf(form.opt("csrf_token"));
    let input = listing::new_view(&form, "account");
    let query = input.query.clone();
    match state.write(creds.clone(), move |tx, who| customers::views::create(tx, who, input)).await {
        Ok(v) => Ok(see_other(&format!("/accounts?view={}", v.id))),
        Err(e) => {
            let params = ListParams::from_raw(listing::decode(&query));
            list_page(state, creds, params, Some(e)).await
        }
    }
}

// ---------------------------------------------------------------------------------------
// Customer 360

/// One labelled value of a profile.
pub struct ProfileRow {
    pub label: String,
    pub value: String,
    pub href: Option<String>,
}

impl ProfileRow {
    pub fn new(label: String, value: impl Into<String>) -> ProfileRow {
        ProfileRow { label, value: value.into(), href: None }
    }

    pub fn link(label: String, value: impl Into<String>, href: String) -> ProfileRow {
        ProfileRow { label, value: value.into(), href: Some(href) }
    }
}

#[derive(Template)]
#[template(path = "customers/record.html")]
pub struct RecordPage {
    pub ctx: Ctx,
    /// `accounts` or `contacts`.
    pub area: &'static str,
    pub id: String,
    pub name: String,
    pub subtitle: String,
    pub profile: Vec<ProfileRow>,
    pub custom: Vec<ProfileRow>,
    /// Accounts above this one, top first (account pages only).
    pub parents: Vec<Link>,
    /// Accounts directly below (a chain's stores).
    pub children: Vec<Link>,
    pub panels: Vec<Shown>,
    pub can_edit: bool,
    pub can_delete: bool,
    /// The "Log" button and its kinds (call, visit, meeting, e-mail, note).
    pub can_log: bool,
    pub kinds: Vec<(&'static str, String)>,
    pub notice: Option<String>,
    /// Tags, each linking to the list filtered by it.
    pub tags: Vec<Link>,
    /// (kind label, one-line address).
    pub addresses: Vec<(String, String)>,
    /// Contacts who are members: the member card.
    pub member: Vec<ProfileRow>,
    /// The merge that was just done, for the notice's Undo button (users who may merge).
    pub undo_merge: Option<String>,
}

/// Tag links to `area`'s list filtered by each tag.
pub fn tag_links(area: &str, tags: &[String]) -> Vec<Link> {
    tags.iter().map(|t| Link { href: format!("/{area}?tag={}", enc(t)), text: t.clone() }).collect()
}

/// The addresses of a profile: (kind label, one line).
pub fn address_list(ctx: &Ctx, list: &[customers::details::Address]) -> Vec<(String, String)> {
    list.iter().map(|a| (ctx.t_or(&format!("address-kind-{}", a.kind), &a.kind), details::address_line(a))).collect()
}

/// The kinds of activity with their labels, for the "Log" buttons.
pub fn kinds(ctx: &Ctx) -> Vec<(&'static str, String)> {
    customers::activities::KINDS.iter().map(|k| (*k, ctx.t(&format!("activity-kind-{k}")))).collect()
}

impl RecordPage {
    fn key(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.area)
    }
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    pub saved: Option<String>,
    pub cursor: Option<String>,
    /// The merge just done (`?saved=merged&merge=<id>`): the notice offers its undo.
    pub merge: Option<String>,
}

pub fn notice(ctx: &Ctx, saved: Option<&str>) -> Option<String> {
    saved.map(|s| match s {
        "created" => ctx.t("customers-created"),
        "restored" => ctx.t("customers-restored"),
        "logged" => ctx.t("activity-logged"),
        "task" => ctx.t("tasks-created"),
        "merged" => ctx.t("merge-done"),
        "unmerged" => ctx.t("merge-undone"),
        "consent" => ctx.t("consent-saved"),
        "erased" => ctx.t("privacy-erased"),
        _ => ctx.t("form-saved"),
    })
}

/// How far up a hierarchy the page walks.
const MAX_DEPTH: usize = 16;

async fn show(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Query(q): Query<ShowQuery>,
) -> PageResult {
    let id = Id(id);
    let again = creds.clone();
    let panels = state.panels.clone();
    let cursor = q.cursor.clone();
    let loaded = load_with_ctx(&state, creds, "/accounts", move |tx, who, ctx| {
        let a = caccounts::get(tx, who, id)?;
        let mut names = Names::default();
        let mut parents = Vec::new();
        let mut up = a.parent_id;
        while let Some(p) = up {
            if parents.len() >= MAX_DEPTH {
                break;
            }
            match caccounts::get(tx, who, p) {
                Ok(parent) => {
                    parents.push(Link { href: format!("/accounts/{}", parent.id), text: parent.name.clone() });
                    up = parent.parent_id;
                }
                Err(Error::NotFound(_)) => {
                    parents.push(Link { href: String::new(), text: "…".into() });
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        parents.reverse();
        let children = caccounts::children(tx, who, id, 200)?
            .into_iter()
            .map(|c| Link { href: format!("/accounts/{}", c.id), text: c.name })
            .collect();
        let category = match a.category_id {
            Some(c) => categories(tx, who)?.into_iter().find(|x| x.id == c).map(|x| x.name),
            None => None,
        };
        let mut profile = vec![
            ProfileRow::new(ctx.t("field-category"), category.unwrap_or_else(|| "—".into())),
            ProfileRow::new(ctx.t("field-status"), ctx.t(&format!("account-status-{}", a.status))),
            ProfileRow::new(ctx.t("field-owner"), names.user(tx, a.owner_id)?),
            ProfileRow::new(ctx.t("field-team"), names.branch(tx, a.branch_id)?),
        ];
        if let Some(p) = a.phone_raw.clone().or(a.phone.clone()) {
            profile.push(ProfileRow::link(
                ctx.t("field-phone"),
                p,
                format!("tel:{}", a.phone.clone().unwrap_or_default()),
            ));
        }
        if let Some(e) = &a.email {
            profile.push(ProfileRow::link(ctx.t("field-email"), e.clone(), format!("mailto:{e}")));
        }
        if let Some(w) = &a.website {
            profile.push(ProfileRow::link(ctx.t("field-website"), w.clone(), w.clone()));
        }
        if let Some(x) = &a.external_id {
            profile.push(ProfileRow::new(ctx.t("field-external-id"), x.clone()));
        }
        if let Some(r) = &a.region {
            profile.push(ProfileRow::new(ctx.t("field-region"), r.clone()));
        }
        for p in &a.phones {
            profile.push(ProfileRow::link(ctx.t("field-phones"), p.raw.clone(), format!("tel:{}", p.e164)));
        }
        for e in &a.emails {
            profile.push(ProfileRow::link(ctx.t("field-emails"), e.clone(), format!("mailto:{e}")));
        }
        if let Some(c) = &a.credit_limit {
            profile.push(ProfileRow::new(ctx.t("field-credit-limit"), c.clone()));
        }
        if let Some(d) = a.payment_terms_days {
            profile
                .push(ProfileRow::new(ctx.t("field-payment-terms"), ctx.ta("customers-days", "days", &d.to_string())));
        }
        let defs = definitions(tx, who, a.category_id, RecordType::Account)?;
        let custom = custom_rows(ctx, &defs, &a.custom);
        let cx = PanelContext { record_type: RecordType::Account, id, account_id: Some(id), ctx, cursor };
        let shown = panels.render(tx, who, &cx);
        Ok((a, profile, custom, parents, children, shown))
    })
    .await;
    let (ctx, page) = match super::quality::or_moved(&state, again, RecordType::Account, id, loaded).await? {
        Ok(found) => found,
        Err(moved) => return Ok(moved),
    };
    let (a, profile, custom, parents, children, panels) = page;
    Ok(render(&RecordPage {
        area: "accounts",
        id: a.id.to_string(),
        name: a.name,
        subtitle: ctx.t("accounts-one"),
        profile,
        custom,
        parents,
        children,
        panels,
        can_edit: ctx.can("customers.accounts.update"),
        can_delete: ctx.can("customers.accounts.delete"),
        can_log: ctx.can("customers.activities.create"),
        kinds: kinds(&ctx),
        notice: notice(&ctx, q.saved.as_deref()),
        undo_merge: q.merge.clone().filter(|m| m.parse::<i64>().is_ok() && ctx.can("customers.merge")),
        tags: tag_links("accounts", &a.tags),
        addresses: address_list(&ctx, &a.addresses),
        member: Vec::new(),
        ctx,
    }))
}

/// The custom fields of a profile, in definition order, then stored values without a
/// definition (a changed category) as stored.
pub fn custom_rows(
    ctx: &Ctx,
    defs: &[customers::fields::CustomField],
    values: &serde_json::Map<String, Json>,
) -> Vec<ProfileRow> {
    let mut rows: Vec<ProfileRow> = defs
        .iter()
        .map(|d| {
            let value = values.get(&d.key).map(|v| show_value(v, ctx)).filter(|v| !v.is_empty());
            ProfileRow::new(d.label.clone(), value.unwrap_or_else(|| "—".into()))
        })
        .collect();
    for (k, v) in values {
        if !defs.iter().any(|d| &d.key == k) {
            rows.push(ProfileRow::new(k.clone(), show_value(v, ctx)));
        }
    }
    rows
}

// ---------------------------------------------------------------------------------------
// Forms

/// A record that may be a duplicate, shown before a create.
pub struct DuplicateRow {
    pub href: String,
    pub name: String,
    pub matched: String,
}

pub fn duplicate_rows(ctx: &Ctx, area: &str, found: &[DuplicateCandidate]) -> Vec<DuplicateRow> {
    found
        .iter()
        .map(|d| DuplicateRow {
            href: format!("/{area}/{}", d.id),
            name: d.name.clone(),
            matched: d.matched_on.iter().map(|m| ctx.t(&format!("field-{m}"))).collect::<Vec<_>>().join(", "),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "customers/form.html")]
pub struct FormPage {
    pub ctx: Ctx,
    pub area: &'static str,
    /// `None` when creating.
    pub id: Option<String>,
    pub form: Pairs,
    pub categories: Vec<Opt>,
    /// Parent accounts (account form) or accounts (contact form).
    pub accounts: Vec<Opt>,
    pub branches: Vec<Opt>,
    pub owners: Vec<Opt>,
    pub statuses: Vec<Opt>,
    pub custom: Vec<FieldInput>,
    pub errors: FormErrors,
    pub duplicates: Vec<DuplicateRow>,
    /// The address fieldsets (what was typed or stored, then a blank one).
    pub addresses: Vec<AddressRow>,
    pub address_kinds: Vec<(&'static str, String)>,
    /// Contact forms: the gender choices.
    pub genders: Vec<Opt>,
    /// Tags in use, for the tags input's datalist.
    pub tag_choices: Vec<String>,
}

impl FormPage {
    fn key(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.area)
    }

    /// The messages under a list field and its items (`phones`, `phones[2]`), joined.
    pub fn list_error(&self, name: &str) -> Option<String> {
        let item = format!("{name}[");
        let found: Vec<&str> = self
            .errors
            .fields
            .iter()
            .filter(|e| e.field == name || e.field.starts_with(&item))
            .map(|e| e.message.as_str())
            .collect();
        (!found.is_empty()).then(|| found.join("; "))
    }

    /// Whether a form value is the checkbox's "on".
    pub fn checked(&self, name: &str) -> bool {
        self.form.get(name) == "true"
    }
}

impl WithErrors for FormPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

/// The custom part of a form alone (htmx swaps it in when the category changes).
#[derive(Template)]
#[template(path = "customers/custom_part.html")]
pub struct CustomPart {
    pub ctx: Ctx,
    pub custom: Vec<FieldInput>,
}

fn stored_form(a: &Account) -> Pairs {
    let mut f = Pairs::default();
    f.set("name", a.name.clone());
    f.set("category_id", a.category_id.map(|c| c.to_string()).unwrap_or_default());
    f.set("parent_id", a.parent_id.map(|c| c.to_string()).unwrap_or_default());
    f.set("branch_id", a.branch_id.to_string());
    f.set("owner_id", a.owner_id.map(|c| c.to_string()).unwrap_or_default());
    f.set("status", a.status.clone());
    f.set("email", a.email.clone().unwrap_or_default());
    f.set("phone", a.phone_raw.clone().or(a.phone.clone()).unwrap_or_default());
    f.set("website", a.website.clone().unwrap_or_default());
    f.set("external_id", a.external_id.clone().unwrap_or_default());
    f.set("region", a.region.clone().unwrap_or_default());
    f.set("credit_limit", a.credit_limit.clone().unwrap_or_default());
    f.set("payment_terms_days", a.payment_terms_days.map(|d| d.to_string()).unwrap_or_default());
    f.set("phones", a.phones.iter().map(|p| p.raw.as_str()).collect::<Vec<_>>().join("\n"));
    f.set("emails", a.emails.join("\n"));
    f.set("tags", a.tags.join(", "));
    set_addresses(&mut f, &a.addresses);
    f.set("version", a.version.to_string());
    f
}

/// The form page: for a new account (`id` none) or an edit; `typed` is what the user sent
/// (shown again after a refusal). A stale edit shows the typed values with the stored
/// version, so saving again overwrites knowingly.
async fn form_page(
    state: &AppState,
    creds: Credentials,
    id: Option<Id>,
    typed: Option<Pairs>,
    fresh_version: bool,
) -> Result<FormPage, PageError> {
    let typed_category = typed.as_ref().and_then(|f| f.id("category_id"));
    let typed_parent = typed.as_ref().and_then(|f| f.id("parent_id"));
    let has_typed = typed.is_some();
    let (ctx, (stored, cats, tree, owners, parents, defs, tags)) = load(state, creds, "/accounts", move |tx, who| {
        let stored = match id {
            Some(id) => {
                let a = caccounts::get(tx, who, id)?;
                who.require("customers.accounts.update")?;
                Some(a)
            }
            None => {
                who.require("customers.accounts.create")?;
                None
            }
        };
        let category = if has_typed { typed_category } else { stored.as_ref().and_then(|a| a.category_id) };
        let parent = if has_typed { typed_parent } else { stored.as_ref().and_then(|a| a.parent_id) };
        let cats = categories(tx, who)?;
        let tree = branch_tree(tx, who)?;
        let owners = user_choices(tx, who, stored.as_ref().and_then(|a| a.owner_id))?;
        let mut parents = account_choices(tx, who, parent)?;
        parents.retain(|(p, _)| Some(*p) != id);
        let defs = definitions(tx, who, category, RecordType::Account)?;
        let tags = tag_choices(tx, who, "account")?;
        Ok((stored, cats, tree, owners, parents, defs, tags))
    })
    .await?;
    let typed_form = typed.is_some();
    let mut form = match (typed, &stored) {
        (Some(f), _) => f,
        (None, Some(a)) => stored_form(a),
        (None, None) => {
            let mut f = Pairs::default();
            f.set("status", "active");
            if let Some(me) = &ctx.user {
                f.set("owner_id", me.user_id.to_string());
                f.set("branch_id", me.branch_id.to_string());
            }
            f
        }
    };
    if fresh_version && let Some(a) = &stored {
        form.set("version", a.version.to_string());
    }
    let errors = FormErrors::default();
    let custom = if typed_form {
        field_inputs(&defs, None, Some(&form), &errors)
    } else {
        field_inputs(&defs, stored.as_ref().map(|a| &a.custom), None, &errors)
    };
    let status = form.get("status").to_owned();
    Ok(FormPage {
        area: "accounts",
        id: id.map(|i| i.to_string()),
        categories: category_options(&cats, form.id("category_id")),
        accounts: id_options(&parents, form.id("parent_id")),
        branches: branch_options(&tree, form.id("branch_id")),
        owners: id_options(&owners, form.id("owner_id")),
        statuses: caccounts::STATUSES
            .iter()
            .map(|s| Opt::new(*s, ctx.t(&format!("account-status-{s}")), *s == status))
            .collect(),
        custom,
        errors,
        duplicates: Vec::new(),
        addresses: address_rows(&form),
        address_kinds: address_kinds(&ctx),
        genders: Vec::new(),
        tag_choices: tags,
        form,
        ctx,
    })
}

/// Shows the form again with the refusal's messages next to the fields, custom ones too.
pub fn refuse_form(mut page: FormPage, e: ApiError) -> PageResult {
    let status = e.status;
    let errors = FormErrors::from_error(&page.ctx, e)?;
    for input in &mut page.custom {
        input.error = errors.get(&input.name).map(str::to_owned);
    }
    page.errors = errors;
    Ok((status, render(&page)).into_response())
}

async fn new_form(
    State(state): State<AppState>,
    creds: Credentials,
    Query(q): Query<Vec<(String, String)>>,
) -> PageResult {
    let prefill = Pairs(q);
    let mut page = form_page(&state, creds, None, None, false).await?;
    if let Some(p) = prefill.opt("parent_id") {
        page.form.set("parent_id", p.clone());
        for o in &mut page.accounts {
            o.selected = o.value == p;
        }
    }
    Ok(render(&page))
}

async fn edit_form(State(state): State<AppState>, creds: Credentials, Path(id): Path<i64>) -> PageResult {
    Ok(render(&form_page(&state, creds, Some(Id(id)), None, false).await?))
}

async fn custom_part(
    State(state): State<AppState>,
    creds: Credentials,
    Query(q): Query<Vec<(String, String)>>,
) -> PageResult {
    let form = Pairs(q);
    let category = form.id("category_id");
    let (ctx, defs) =
        load(&state, creds, "/accounts", move |tx, who| definitions(tx, who, category, RecordType::Account)).await?;
    let custom = field_inputs(&defs, None, Some(&form), &FormErrors::default());
    Ok(render(&CustomPart { ctx, custom }))
}

fn new_account(form: &Pairs, custom: serde_json::Map<String, Json>) -> kernel::Result<NewAccount> {
    let mut v = Validator::new();
    let payment_terms_days = details::int(&mut v, form, "payment_terms_days");
    v.finish()?;
    Ok(NewAccount {
        name: form.get("name").to_owned(),
        category_id: form.id("category_id"),
        parent_id: form.id("parent_id"),
        branch_id: form.id("branch_id"),
        owner_id: form.id("owner_id"),
        status: form.opt("status"),
        email: form.opt("email"),
        phone: form.opt("phone"),
        website: form.opt("website"),
        external_id: form.opt("external_id"),
        custom: Some(custom),
        region: form.opt("region"),
        addresses: Some(form_addresses(form)),
        phones: Some(split_lines(form.get("phones"))),
        emails: Some(split_lines(form.get("emails"))),
        credit_limit: form.opt("credit_limit"),
        payment_terms_days,
        tags: Some(split_tags(form.get("tags"))),
    })
}

/// The outcome of a create that may stop to ask about duplicates.
pub enum Created {
    Saved(Id),
    Duplicates(Vec<DuplicateCandidate>),
}

async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let form = Pairs(pairs);
    let creds = creds.with_csrf(form.opt("csrf_token"));
    let confirmed = form.get("confirm_duplicates") == "1";
    if !form.get("add_address").is_empty() {
        return Ok(render(&form_page(&state, creds, None, Some(form), false).await?));
    }
    let f = form.clone();
    let result = state
        .write(creds.clone(), move |tx, who| {
            let defs = definitions(tx, who, f.id("category_id"), RecordType::Account)?;
            let input = new_account(&f, custom_values(&defs, &f, false))?;
            let (email, phone) = (input.email.as_deref(), input.phone.as_deref());
            let kind = RecordType::Account;
            if let Some(found) = save::unconfirmed_duplicates(tx, who, kind, confirmed, email, phone, input.branch_id)?
            {
                return Ok(found);
            }
            caccounts::create(tx, who, input).map(|a| Created::Saved(a.id))
        })
        .await;
    save::answer(result, "accounts", false, |stale| form_page(&state, creds, None, Some(form), stale)).await
}

async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let id = Id(id);
    let form = Pairs(pairs);
    let creds = creds.with_csrf(form.opt("csrf_token"));
    if !form.get("add_address").is_empty() {
        return Ok(render(&form_page(&state, creds, Some(id), Some(form), false).await?));
    }
    let f = form.clone();
    let result = state
        .write(creds.clone(), move |tx, who| {
            let mut v = Validator::new();
            let payment_terms_days = details::int(&mut v, &f, "payment_terms_days");
            v.finish()?;
            let old = caccounts::get(tx, who, id)?;
            let category = f.id("category_id");
            let defs = definitions(tx, who, category, RecordType::Account)?;
            let mut custom = custom_values(&defs, &f, true);
            // Values of another category's fields are dropped with the category.
            for key in old.custom.keys() {
                custom.entry(key.clone()).or_insert(Json::Null);
            }
            let text = |name: &str| Some(f.get(name).trim().to_owned());
            let patch = AccountPatch {
                name: text("name"),
                category_id: category,
                parent_id: f.id("parent_id"),
                branch_id: f.id("branch_id"),
                owner_id: f.id("owner_id"),
                status: f.opt("status"),
                email: text("email"),
                phone: text("phone"),
                website: text("website"),
                external_id: text("external_id"),
                custom: Some(custom),
                region: text("region"),
                addresses: Some(form_addresses(&f)),
                phones: Some(split_lines(f.get("phones"))),
                emails: Some(split_lines(f.get("emails"))),
                credit_limit: text("credit_limit"),
                payment_terms_days: Some(payment_terms_days),
                tags: Some(split_tags(f.get("tags"))),
                version: f.get("version").parse().ok(),
            };
            caccounts::update(tx, who, id, patch)
        })
        .await;
    let result = result.map(|_| Created::Saved(id));
    save::answer(result, "accounts", true, |stale| form_page(&state, creds, Some(id), Some(form), stale)).await
}
