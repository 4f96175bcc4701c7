//! Contact pages: the list, the contact 360 page, create and edit (the custom fields of
//! their account's category), delete with confirmation and restore.
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use customers::RecordType;
use customers::accounts as caccounts;
use customers::contacts::{self as ccontacts, Contact, ContactFilter, ContactPatch, NewContact};
use kernel::error::Validator;
use kernel::paging::PageRequest;
use kernel::{Id, Principal, Tx};
use serde_json::Value as Json;

use super::accounts::{
    Created, CustomPart, FormPage, ListFilter, ListPage, ListRow, ProfileRow, RecordPage, ShowQuery, address_list,
    custom_rows, more_link, notice, tag_links,
};
use super::details::{self, address_kinds, address_rows, form_addresses, set_addresses, split_tags};
use super::listing::{self, Column, Extras, ListParams, custom_filters, export_links, saved_views, tag_choices};
use super::panels::PanelContext;
use super::save;
use super::{
    Link, Names, Pairs, account_choices, branch_tree, categories, category_options, custom_values, definitions,
    field_inputs, id_options, user_choices,
};
use crate::error::ApiError;
use crate::pages::admin::{Opt, branch_options};
use crate::pages::{CsrfForm, FormErrors, PageError, PageResult, act, load, load_with_ctx, render, see_other};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(list).post(create))
        .route("/contacts/new", get(new_form))
        .route("/contacts/views", post(save_view))
        .route("/contacts/views/{id}/delete", post(delete_view))
        .route("/contacts/custom-fields", get(custom_part))
        .route("/contacts/{id}", get(show).post(update))
        .route("/contacts/{id}/edit", get(edit_form))
}

async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(raw): Query<Vec<(String, String)>>,
) -> PageResult {
    list_page(state, creds, ListParams::from_raw(raw), None).await
}

/// The contact list for `params`; a refused filter or "Save view" shows its messages
/// with 422.
async fn list_page(
    state: AppState,
    creds: Credentials,
    mut params: ListParams,
    refused: Option<ApiError>,
) -> PageResult {
    let view = params.view;
    let given = params.clone();
    let (ctx, (found, cats, tree, owners, meta, account, defs, tags, views)) =
        load(&state, creds, "/contacts", move |tx, who| {
            who.require("customers.contacts.read")?;
            let views = saved_views(tx, who, "contact", view)?;
            let pairs = views.applied.clone().unwrap_or_else(|| given.pairs.clone());
            let found = ContactFilter::from_query(&pairs).and_then(|filter| {
                let page = PageRequest::parse(None, given.cursor.as_deref())?;
                let found = ccontacts::list(tx, who, &filter, &page)?;
                Ok((filter, found))
            });
            let (filter, found) = match found {
                Ok((f, found)) => (f, Ok(found)),
                Err(e @ kernel::Error::Validation(_)) => {
                    (ContactFilter::from_query(&pairs).unwrap_or_default(), Err(ApiError::from(e)))
                }
                Err(e) => return Err(e),
            };
            // The account filter (from an account's page) shows as a choice of one.
            let account = match filter.account_id {
                Some(a) => Names::default().account(tx, who, a)?.map(|name| (a, name)),
                None => None,
            };
            let cats = categories(tx, who)?;
            let tree = branch_tree(tx, who)?;
            let owners = user_choices(tx, who, filter.owner_id)?;
            let defs = definitions(tx, who, filter.category_id, RecordType::Contact)?;
            let mut names = Names::default();
            let mut meta = Vec::new();
            for c in found.as_ref().map(|p| p.items.as_slice()).unwrap_or_default() {
                let account = match c.account_id {
                    Some(a) => names.account(tx, who, a)?.unwrap_or_default(),
                    None => String::new(),
                };
                meta.push((account, names.user(tx, c.owner_id)?));
            }
            let tags = tag_choices(tx, who, "contact")?;
            Ok((found, cats, tree, owners, meta, account, defs, tags, views))
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
    let pick = |name: &str| params.get(name).parse().ok().map(Id);
    let mut filters = Vec::new();
    if let Some((id, name)) = account {
        filters.push(ListFilter {
            name: "account_id",
            label: ctx.t("field-account"),
            options: vec![Opt::new(id.to_string(), name, true)],
        });
    }
    if !cats.is_empty() {
        filters.push(ListFilter {
            name: "category_id",
            label: ctx.t("field-category"),
            options: category_options(&cats, pick("category_id")),
        });
    }
    if !tree.is_empty() {
        filters.push(ListFilter {
            name: "branch_id",
            label: ctx.t("field-branch"),
            options: branch_options(&tree, pick("branch_id")),
        });
    }
    filters.push(ListFilter {
        name: "owner_id",
        label: ctx.t("field-owner"),
        options: id_options(&owners, pick("owner_id")),
    });
    let status = params.get("status").to_owned();
    filters.push(ListFilter {
        name: "status",
        label: ctx.t("field-status"),
        options: ccontacts::STATUSES
            .iter()
            .map(|s| Opt::new(*s, ctx.t(&format!("contact-status-{s}")), *s == status))
            .collect(),
    });
    let member = params.get("is_member").to_owned();
    filters.push(ListFilter {
        name: "is_member",
        label: ctx.t("field-is-member"),
        options: vec![
            Opt::new("true", ctx.t("yes"), member == "true"),
            Opt::new("false", ctx.t("no"), member == "false"),
        ],
    });
    let mut columns: Vec<Column> =
        ["field-account", "field-phone", "field-email", "field-owner"].map(|k| Column::plain(ctx.t(k))).to_vec();
    let shown: Vec<&customers::fields::CustomField> = defs.iter().take(super::accounts::CUSTOM_COLUMNS).collect();
    columns.extend(shown.iter().map(|d| Column::plain(d.label.clone())));
    columns.push(Column::sorted(ctx.t("field-created"), "contacts", "created_at", &params));
    columns.push(Column::sorted(ctx.t("field-updated"), "contacts", "updated_at", &params));
    let rows = found
        .items
        .iter()
        .zip(meta)
        .map(|(c, (account, owner))| {
            let mut cells = vec![
                account,
                c.phone_raw.clone().or(c.phone.clone()).unwrap_or_default(),
                c.email.clone().unwrap_or_default(),
                owner,
            ];
            cells.extend(
                shown.iter().map(|d| c.custom.get(&d.key).map(|v| super::show_value(v, &ctx)).unwrap_or_default()),
            );
            cells.push(ctx.datetime(&c.created_at));
            cells.push(ctx.datetime(&c.updated_at));
            ListRow { href: format!("/contacts/{}", c.id), name: c.name.clone(), cells }
        })
        .collect();
    let next = found.next_cursor.as_ref().map(|c| more_link("contacts", &params, c));
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
        exports: export_links(&ctx, "contacts", &params),
        errors,
    };
    let page = ListPage {
        area: "contacts",
        q: params.get("q").to_owned(),
        filters,
        name_column: Column::sorted(ctx.t("field-name"), "contacts", "name", &params),
        columns,
        rows,
        next,
        filtered: params.filtered(),
        can_create: ctx.can("customers.contacts.create"),
        can_delete: ctx.can("customers.contacts.delete"),
        notice: deleted.as_ref().map(|_| ctx.t("contacts-deleted-done")),
        deleted,
        extras,
        ctx,
    };
    Ok((status_code, render(&page)).into_response())
}

/// Deletes one of the caller's views (only the owner can), back to the plain list.
async fn delete_view(
    State(state): State<AppState>,
    creds: Credentials,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    act(&state, creds, form, "/contacts", move |tx, who| customers::views::delete(tx, who, Id(id))).await
}

/// "Save view": stores the current filter under a name, then opens it.
async fn save_view(
    State(state): State<AppState>,
    creds: Credentials,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let form = Pairs(pairs);
    let creds = creds.with_csrf(form.opt("csrf_token"));
    let input = listing::new_view(&form, "contact");
    let query = input.query.clone();
    match state.write(creds.clone(), move |tx, who| customers::views::create(tx, who, input)).await {
        Ok(v) => Ok(see_other(&format!("/contacts?view={}", v.id))),
        Err(e) => {
            let params = ListParams::from_raw(listing::decode(&query));
            list_page(state, creds, params, Some(e)).await
        }
    }
}

/// The category whose contact fields a contact of `account` carries.
fn account_category(tx: &mut Tx<'_>, who: &Principal, account: Option<Id>) -> kernel::Result<Option<Id>> {
    match account {
        Some(a) => match caccounts::get(tx, who, a) {
            Ok(a) => Ok(a.category_id),
            Err(kernel::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        },
        None => Ok(None),
    }
}

/// The category whose contact fields a contact carries: its own, else its account's.
fn contact_category(
    tx: &mut Tx<'_>,
    who: &Principal,
    own: Option<Id>,
    account: Option<Id>,
) -> kernel::Result<Option<Id>> {
    match own {
        Some(c) => Ok(Some(c)),
        None => account_category(tx, who, account),
    }
}

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
    let loaded = load_with_ctx(&state, creds, "/contacts", move |tx, who, ctx| {
        let c = ccontacts::get(tx, who, id)?;
        let mut names = Names::default();
        let mut profile = Vec::new();
        let mut parents = Vec::new();
        if let Some(a) = c.account_id {
            let name = names.account(tx, who, a)?;
            if let Some(n) = &name {
                parents.push(Link { href: format!("/accounts/{a}"), text: n.clone() });
            }
            profile.push(match name {
                Some(n) => ProfileRow::link(ctx.t("field-account"), n, format!("/accounts/{a}")),
                None => ProfileRow::new(ctx.t("field-account"), "…"),
            });
        }
        profile.push(ProfileRow::new(ctx.t("field-owner"), names.user(tx, c.owner_id)?));
        profile.push(ProfileRow::new(ctx.t("field-team"), names.branch(tx, c.branch_id)?));
        if let Some(p) = c.phone_raw.clone().or(c.phone.clone()) {
            profile.push(ProfileRow::link(
                ctx.t("field-phone"),
                p,
                format!("tel:{}", c.phone.clone().unwrap_or_default()),
            ));
        }
        if let Some(e) = &c.email {
            profile.push(ProfileRow::link(ctx.t("field-email"), e.clone(), format!("mailto:{e}")));
        }
        profile.push(ProfileRow::new(ctx.t("field-status"), ctx.t(&format!("contact-status-{}", c.status))));
        if let Some(t) = &c.title {
            profile.push(ProfileRow::new(ctx.t("field-title"), t.clone()));
        }
        if let Some(cat) = c.category_id {
            let name = categories(tx, who)?.into_iter().find(|x| x.id == cat).map(|x| x.name);
            profile.push(ProfileRow::new(ctx.t("field-category"), name.unwrap_or_else(|| "—".into())));
        }
        let category = contact_category(tx, who, c.category_id, c.account_id)?;
        let defs = definitions(tx, who, category, RecordType::Contact)?;
        let custom = custom_rows(ctx, &defs, &c.custom);
        let cx = PanelContext { record_type: RecordType::Contact, id, account_id: c.account_id, ctx, cursor };
        let shown = panels.render(tx, who, &cx);
        Ok((c, profile, custom, parents, shown))
    })
    .await;
    let (ctx, (c, profile, custom, parents, panels)) =
        match super::quality::or_moved(&state, again, RecordType::Contact, id, loaded).await? {
            Ok(found) => found,
            Err(moved) => return Ok(moved),
        };
    Ok(render(&RecordPage {
        area: "contacts",
        id: c.id.to_string(),
        name: c.name.clone(),
        subtitle: ctx.t("contacts-one"),
        profile,
        custom,
        parents,
        children: Vec::new(),
        panels,
        can_edit: ctx.can("customers.contacts.update"),
        can_delete: ctx.can("customers.contacts.delete"),
        can_log: ctx.can("customers.activities.create"),
        kinds: super::accounts::kinds(&ctx),
        notice: notice(&ctx, q.saved.as_deref()),
        undo_merge: q.merge.clone().filter(|m| m.parse::<i64>().is_ok() && ctx.can("customers.merge")),
        tags: tag_links("contacts", &c.tags),
        addresses: address_list(&ctx, &c.addresses),
        member: member_card(&ctx, &c),
        ctx,
    }))
}

/// The member card of a contact who is a member (empty otherwise).
fn member_card(ctx: &crate::pages::Ctx, c: &Contact) -> Vec<ProfileRow> {
    if !c.is_member {
        return Vec::new();
    }
    let dash = || "—".to_owned();
    vec![
        ProfileRow::new(ctx.t("field-card-no"), c.card_no.clone().unwrap_or_else(dash)),
        ProfileRow::new(ctx.t("field-birthday"), c.birthday.map_or_else(dash, |d| d.to_string())),
        ProfileRow::new(ctx.t("field-gender"), c.gender.as_ref().map_or_else(dash, |g| ctx.t(&format!("gender-{g}")))),
        ProfileRow::new(ctx.t("field-household-size"), c.household_size.map_or_else(dash, |n| n.to_string())),
        ProfileRow::new(ctx.t("field-member-since"), c.member_since.map_or_else(dash, |d| d.to_string())),
    ]
}

fn stored_form(c: &Contact) -> Pairs {
    let mut f = Pairs::default();
    f.set("name", c.name.clone());
    f.set("account_id", c.account_id.map(|a| a.to_string()).unwrap_or_default());
    f.set("branch_id", c.branch_id.to_string());
    f.set("owner_id", c.owner_id.map(|o| o.to_string()).unwrap_or_default());
    f.set("email", c.email.clone().unwrap_or_default());
    f.set("phone", c.phone_raw.clone().or(c.phone.clone()).unwrap_or_default());
    f.set("category_id", c.category_id.map(|a| a.to_string()).unwrap_or_default());
    f.set("status", c.status.clone());
    f.set("title", c.title.clone().unwrap_or_default());
    f.set("tags", c.tags.join(", "));
    set_addresses(&mut f, &c.addresses);
    if c.is_member {
        f.set("is_member", "true");
    }
    f.set("card_no", c.card_no.clone().unwrap_or_default());
    f.set("birthday", c.birthday.map(|d| d.to_string()).unwrap_or_default());
    f.set("gender", c.gender.clone().unwrap_or_default());
    f.set("household_size", c.household_size.map(|d| d.to_string()).unwrap_or_default());
    f.set("member_since", c.member_since.map(|d| d.to_string()).unwrap_or_default());
    f.set("version", c.version.to_string());
    f
}

async fn form_page(
    state: &AppState,
    creds: Credentials,
    id: Option<Id>,
    typed: Option<Pairs>,
    fresh_version: bool,
) -> Result<FormPage, PageError> {
    let typed_account = typed.as_ref().map(|f| f.id("account_id"));
    let typed_category = typed.as_ref().map(|f| f.id("category_id"));
    let (ctx, (stored, tree, owners, accounts, defs, cats, tags)) = load(state, creds, "/contacts", move |tx, who| {
        let stored = match id {
            Some(id) => {
                let c = ccontacts::get(tx, who, id)?;
                who.require("customers.contacts.update")?;
                Some(c)
            }
            None => {
                who.require("customers.contacts.create")?;
                None
            }
        };
        let account = typed_account.unwrap_or(stored.as_ref().and_then(|c| c.account_id));
        let tree = branch_tree(tx, who)?;
        let owners = user_choices(tx, who, stored.as_ref().and_then(|c| c.owner_id))?;
        let accounts = account_choices(tx, who, account)?;
        let own = typed_category.unwrap_or(stored.as_ref().and_then(|c| c.category_id));
        let category = contact_category(tx, who, own, account)?;
        let defs = definitions(tx, who, category, RecordType::Contact)?;
        let cats = categories(tx, who)?;
        let tags = tag_choices(tx, who, "contact")?;
        Ok((stored, tree, owners, accounts, defs, cats, tags))
    })
    .await?;
    let typed_form = typed.is_some();
    let mut form = match (typed, &stored) {
        (Some(f), _) => f,
        (None, Some(c)) => stored_form(c),
        (None, None) => {
            let mut f = Pairs::default();
            if let Some(me) = &ctx.user {
                f.set("owner_id", me.user_id.to_string());
            }
            f.set("status", "active");
            f
        }
    };
    if fresh_version && let Some(c) = &stored {
        form.set("version", c.version.to_string());
    }
    let errors = FormErrors::default();
    let custom = if typed_form {
        field_inputs(&defs, None, Some(&form), &errors)
    } else {
        field_inputs(&defs, stored.as_ref().map(|c| &c.custom), None, &errors)
    };
    let status = match form.get("status") {
        "" => "active".to_owned(),
        s => s.to_owned(),
    };
    let gender = form.get("gender").to_owned();
    Ok(FormPage {
        area: "contacts",
        id: id.map(|i| i.to_string()),
        categories: category_options(&cats, form.id("category_id")),
        accounts: id_options(&accounts, form.id("account_id")),
        branches: branch_options(&tree, form.id("branch_id")),
        owners: id_options(&owners, form.id("owner_id")),
        statuses: ccontacts::STATUSES
            .iter()
            .map(|s| Opt::new(*s, ctx.t(&format!("contact-status-{s}")), *s == status))
            .collect(),
        custom,
        errors,
        duplicates: Vec::new(),
        addresses: address_rows(&form),
        address_kinds: address_kinds(&ctx),
        genders: ccontacts::GENDERS.iter().map(|g| Opt::new(*g, ctx.t(&format!("gender-{g}")), *g == gender)).collect(),
        tag_choices: tags,
        form,
        ctx,
    })
}

async fn new_form(
    State(state): State<AppState>,
    creds: Credentials,
    Query(q): Query<Vec<(String, String)>>,
) -> PageResult {
    let prefill = Pairs(q);
    let typed = prefill.opt("account_id").map(|a| {
        let mut f = Pairs::default();
        f.set("account_id", a);
        f
    });
    let mut page = form_page(&state, creds, None, typed, false).await?;
    if let Some(me) = page.ctx.user.as_ref().map(|u| u.user_id.to_string()) {
        if page.form.get("owner_id").is_empty() {
            page.form.set("owner_id", me.clone());
        }
        for o in &mut page.owners {
            o.selected = o.value == page.form.get("owner_id");
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
    let account = form.id("account_id");
    let own = form.id("category_id");
    let (ctx, defs) = load(&state, creds, "/contacts", move |tx, who| {
        let category = contact_category(tx, who, own, account)?;
        definitions(tx, who, category, RecordType::Contact)
    })
    .await?;
    let custom = field_inputs(&defs, None, Some(&form), &FormErrors::default());
    Ok(render(&CustomPart { ctx, custom }))
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
            let account = f.id("account_id");
            let category = contact_category(tx, who, f.id("category_id"), account)?;
            let defs = definitions(tx, who, category, RecordType::Contact)?;
            let member = member_values(&f)?;
            let input = NewContact {
                name: f.get("name").to_owned(),
                account_id: account,
                branch_id: f.id("branch_id"),
                owner_id: f.id("owner_id"),
                email: f.opt("email"),
                phone: f.opt("phone"),
                custom: Some(custom_values(&defs, &f, false)),
                category_id: f.id("category_id"),
                status: f.opt("status"),
                title: f.opt("title"),
                addresses: Some(form_addresses(&f)),
                is_member: Some(f.get("is_member") == "true"),
                card_no: f.opt("card_no"),
                birthday: member.birthday,
                gender: f.opt("gender"),
                household_size: member.household_size,
                member_since: member.member_since,
                tags: Some(split_tags(f.get("tags"))),
            };
            let (email, phone) = (input.email.as_deref(), input.phone.as_deref());
            let kind = RecordType::Contact;
            if let Some(found) = save::unconfirmed_duplicates(tx, who, kind, confirmed, email, phone, input.branch_id)?
            {
                return Ok(found);
            }
            ccontacts::create(tx, who, input).map(|c| Created::Saved(c.id))
        })
        .await;
    save::answer(result, "contacts", false, |stale| form_page(&state, creds, None, Some(form), stale)).await
}

/// The member fields the page reads as numbers and dates (the crate checks the rest).
struct Member {
    birthday: Option<chrono::NaiveDate>,
    household_size: Option<i64>,
    member_since: Option<chrono::NaiveDate>,
}

fn member_values(f: &Pairs) -> kernel::Result<Member> {
    let mut v = Validator::new();
    let m = Member {
        birthday: details::date(&mut v, f, "birthday"),
        household_size: details::int(&mut v, f, "household_size"),
        member_since: details::date(&mut v, f, "member_since"),
    };
    v.finish()?;
    Ok(m)
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
            let old = ccontacts::get(tx, who, id)?;
            let member = member_values(&f)?;
            let account = f.id("account_id");
            let category = contact_category(tx, who, f.id("category_id"), account.or(old.account_id))?;
            let defs = definitions(tx, who, category, RecordType::Contact)?;
            let mut custom = custom_values(&defs, &f, true);
            for key in old.custom.keys() {
                custom.entry(key.clone()).or_insert(Json::Null);
            }
            let text = |name: &str| Some(f.get(name).trim().to_owned());
            let patch = ContactPatch {
                name: text("name"),
                account_id: account,
                branch_id: f.id("branch_id"),
                owner_id: f.id("owner_id"),
                email: text("email"),
                phone: text("phone"),
                custom: Some(custom),
                category_id: Some(f.id("category_id")),
                status: f.opt("status"),
                title: text("title"),
                addresses: Some(form_addresses(&f)),
                is_member: Some(f.get("is_member") == "true"),
                card_no: text("card_no"),
                birthday: Some(member.birthday),
                gender: text("gender"),
                household_size: Some(member.household_size),
                member_since: Some(member.member_since),
                tags: Some(split_tags(f.get("tags"))),
                version: f.get("version").parse().ok(),
            };
            ccontacts::update(tx, who, id, patch)
        })
        .await;
    let result = result.map(|_| Created::Saved(id));
    save::answer(result, "contacts", true, |stale| form_page(&state, creds, Some(id), Some(form), stale)).await
}
