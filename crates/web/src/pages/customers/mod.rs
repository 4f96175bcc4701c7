//! The customer pages: account and contact lists with search-as-you-type, the customer
//! 360 pages (a profile and a registry of panels), forms whose custom part follows the
//! category's field definitions, activity logging in three taps, tasks and "my day", and
//! the header search.
pub mod accounts;
pub mod activity;
pub mod contacts;
pub mod details;
pub mod listing;
pub mod panels;
pub mod quality;
pub mod removal;
pub mod save;
pub mod search;
pub mod tasks;

use std::collections::HashMap;

use axum::Router;
use axum::http::HeaderMap;
use customers::fields::CustomField;
use customers::{accounts as caccounts, contacts as ccontacts};
use kernel::identity::{branches as kbranches, users};
use kernel::paging::{MAX_LIMIT, PageRequest};
use kernel::{Error, Id, Principal, Tx};
use serde_json::{Map, Value as Json};

use super::Ctx;
use super::admin::Opt;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(accounts::router())
        .merge(contacts::router())
        .merge(activity::router())
        .merge(tasks::router())
        .merge(search::router())
        .merge(details::router())
        .merge(quality::router())
        .merge(removal::router())
}

/// Whether htmx sent the request (it then wants a fragment, not a page).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

/// Names of users, branches, accounts and contacts shown next to ids, each looked up once
/// per page.
#[derive(Default)]
pub struct Names {
    users: HashMap<Id, String>,
    branches: HashMap<Id, String>,
    accounts: HashMap<Id, Option<String>>,
    contacts: HashMap<Id, Option<String>>,
}

impl Names {
    pub fn user(&mut self, tx: &mut Tx<'_>, id: Option<Id>) -> kernel::Result<String> {
        let Some(id) = id else { return Ok("—".into()) };
        if let Some(n) = self.users.get(&id) {
            return Ok(n.clone());
        }
        let name = users::find(tx, id)?.map_or_else(|| id.to_string(), |u| u.name);
        self.users.insert(id, name.clone());
        Ok(name)
    }

    pub fn branch(&mut self, tx: &mut Tx<'_>, id: Id) -> kernel::Result<String> {
        if let Some(n) = self.branches.get(&id) {
            return Ok(n.clone());
        }
        let name = kbranches::find(tx, id)?.map_or_else(|| id.to_string(), |b| b.name);
        self.branches.insert(id, name.clone());
        Ok(name)
    }

    /// The account's name if the caller sees it.
    pub fn account(&mut self, tx: &mut Tx<'_>, who: &Principal, id: Id) -> kernel::Result<Option<String>> {
        if let Some(n) = self.accounts.get(&id) {
            return Ok(n.clone());
        }
        let name = match caccounts::get(tx, who, id) {
            Ok(a) => Some(a.name),
            Err(Error::NotFound(_) | Error::Forbidden(_)) => None,
            Err(e) => return Err(e),
        };
        self.accounts.insert(id, name.clone());
        Ok(name)
    }

    /// The contact's name if the caller sees it.
    pub fn contact(&mut self, tx: &mut Tx<'_>, who: &Principal, id: Id) -> kernel::Result<Option<String>> {
        if let Some(n) = self.contacts.get(&id) {
            return Ok(n.clone());
        }
        let name = match ccontacts::get(tx, who, id) {
            Ok(c) => Some(c.name),
            Err(Error::NotFound(_) | Error::Forbidden(_)) => None,
            Err(e) => return Err(e),
        };
        self.contacts.insert(id, name.clone());
        Ok(name)
    }
}

/// A link to a record: (href, text).
pub struct Link {
    pub href: String,
    pub text: String,
}

/// One timeline entry ready to show.
pub struct TimelineEntry {
    pub id: String,
    pub kind: String,
    pub kind_label: String,
    pub subject: String,
    pub body: Option<String>,
    pub at: String,
    pub by: String,
    pub contact: Option<Link>,
}

pub fn timeline_entries(
    tx: &mut Tx<'_>,
    ctx: &Ctx,
    names: &mut Names,
    items: &[customers::activities::Activity],
) -> kernel::Result<Vec<TimelineEntry>> {
    let Some(who) = ctx.user.as_ref() else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for a in items {
        let contact = match a.contact_id {
            Some(c) => names.contact(tx, who, c)?.map(|text| Link { href: format!("/contacts/{c}"), text }),
            None => None,
        };
        out.push(TimelineEntry {
            id: a.id.to_string(),
            kind: a.kind.clone(),
            kind_label: ctx.t_or(&format!("activity-kind-{}", a.kind), &a.kind),
            subject: a.subject.clone(),
            body: a.body.clone(),
            at: ctx.datetime(&a.occurred_at),
            by: names.user(tx, a.owner_id)?,
            contact,
        });
    }
    Ok(out)
}

/// One task ready to show, with its complete (or undo) button.
pub struct TaskRow {
    pub id: String,
    pub subject: String,
    pub due: String,
    pub overdue: bool,
    pub done: bool,
    pub account: Option<Link>,
    pub assignee: String,
}

pub fn task_row(
    tx: &mut Tx<'_>,
    ctx: &Ctx,
    names: &mut Names,
    t: &customers::tasks::Task,
    with_account: bool,
) -> kernel::Result<TaskRow> {
    let account = match (with_account, t.account_id, ctx.user.as_ref()) {
        (true, Some(a), Some(who)) => {
            names.account(tx, who, a)?.map(|text| Link { href: format!("/accounts/{a}"), text })
        }
        _ => None,
    };
    Ok(TaskRow {
        id: t.id.to_string(),
        subject: t.subject.clone(),
        due: ctx.datetime(&t.due_at),
        overdue: t.status == "open" && t.due_at < chrono::Utc::now(),
        done: t.status == "done",
        account,
        assignee: names.user(tx, Some(t.assignee_id))?,
    })
}

pub fn task_rows(
    tx: &mut Tx<'_>,
    ctx: &Ctx,
    names: &mut Names,
    items: &[customers::tasks::Task],
    with_account: bool,
) -> kernel::Result<Vec<TaskRow>> {
    items.iter().map(|t| task_row(tx, ctx, names, t, with_account)).collect()
}

// ---------------------------------------------------------------------------------------
// Forms

/// A submitted form as its name/value pairs (several values per name for multi-selects).
#[derive(Default, Clone)]
pub struct Pairs(pub Vec<(String, String)>);

impl Pairs {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The value of `name` when given and not blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        let v = self.get(name).trim();
        (!v.is_empty()).then(|| v.to_owned())
    }

    pub fn id(&self, name: &str) -> Option<Id> {
        self.get(name).trim().parse::<i64>().ok().map(Id)
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| k != name);
        self.0.push((name.to_owned(), value.into()));
    }
}

/// What a custom field's input shows.
#[derive(Default, Clone)]
pub struct FieldValue {
    pub text: String,
    pub list: Vec<String>,
    pub currency: String,
    pub checked: bool,
}

impl FieldValue {
    fn from_stored(value: Option<&Json>) -> FieldValue {
        let mut out = FieldValue::default();
        match value {
            Some(Json::String(s)) => out.text = s.clone(),
            Some(Json::Number(n)) => out.text = n.to_string(),
            Some(Json::Bool(b)) => out.checked = *b,
            Some(Json::Array(items)) => out.list = items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
            Some(Json::Object(o)) => {
                out.text = o.get("amount").and_then(Json::as_str).unwrap_or_default().to_owned();
                out.currency = o.get("currency").and_then(Json::as_str).unwrap_or_default().to_owned();
            }
            _ => {}
        }
        out
    }

    fn from_form(form: &Pairs, key: &str) -> FieldValue {
        let name = format!("custom.{key}");
        FieldValue {
            text: form.get(&name).to_owned(),
            list: form.all(&name).into_iter().map(str::to_owned).collect(),
            currency: form.get(&format!("{name}.currency")).to_owned(),
            checked: form.get(&name) == "true",
        }
    }
}

/// One typed input of the custom part of a form.
pub struct FieldInput {
    pub name: String,
    pub label: String,
    /// `text`, `textarea`, `number`, `money`, `date`, `checkbox`, `select`, `multi`,
    /// `email`, `tel`, `url`.
    pub input: &'static str,
    pub required: bool,
    pub value: FieldValue,
    pub options: Vec<String>,
    pub error: Option<String>,
}

impl FieldInput {
    pub fn has(&self, option: &str) -> bool {
        self.value.list.iter().any(|v| v == option) || self.value.text == option
    }
}

fn input_kind(field_type: &str) -> &'static str {
    match field_type {
        "long_text" => "textarea",
        "number" => "number",
        "money" => "money",
        "date" => "date",
        "boolean" => "checkbox",
        "select" => "select",
        "multi_select" => "multi",
        "email" => "email",
        "phone" => "tel",
        "url" => "url",
        _ => "text",
    }
}

/// The inputs for `defs`, showing what was typed (`form`) or else what is stored.
pub fn field_inputs(
    defs: &[CustomField],
    stored: Option<&Map<String, Json>>,
    form: Option<&Pairs>,
    errors: &super::FormErrors,
) -> Vec<FieldInput> {
    defs.iter()
        .map(|d| FieldInput {
            name: format!("custom.{}", d.key),
            label: d.label.clone(),
            input: input_kind(&d.field_type),
            required: d.required,
            value: match form {
                Some(f) => FieldValue::from_form(f, &d.key),
                None => FieldValue::from_stored(stored.and_then(|s| s.get(&d.key))),
            },
            options: d.options.clone(),
            error: errors.get(&format!("custom.{}", d.key)).map(str::to_owned),
        })
        .collect()
}

/// The custom values of a submitted form, typed by their definitions. Empty inputs are
/// left out, or sent as `null` (cleared) when `clear` (an edit).
pub fn custom_values(defs: &[CustomField], form: &Pairs, clear: bool) -> Map<String, Json> {
    let mut out = Map::new();
    for d in defs {
        let v = FieldValue::from_form(form, &d.key);
        let text = v.text.trim();
        let value = match d.field_type.as_str() {
            "boolean" => Some(Json::Bool(v.checked)),
            "multi_select" => {
                let list: Vec<Json> =
                    v.list.iter().filter(|s| !s.trim().is_empty()).map(|s| Json::String(s.clone())).collect();
                (!list.is_empty()).then_some(Json::Array(list))
            }
            _ if text.is_empty() => None,
            "number" => Some(match (text.parse::<i64>(), text.parse::<f64>()) {
                (Ok(i), _) => Json::from(i),
                (_, Ok(f)) => {
                    serde_json::Number::from_f64(f).map_or_else(|| Json::String(text.to_owned()), Json::Number)
                }
                _ => Json::String(text.to_owned()),
            }),
            "money" => {
                let currency = v.currency.trim();
                let currency = if currency.is_empty() { "CNY" } else { currency };
                Some(serde_json::json!({"amount": text, "currency": currency}))
            }
            _ => Some(Json::String(text.to_owned())),
        };
        match value {
            Some(value) => {
                out.insert(d.key.clone(), value);
            }
            None if clear => {
                out.insert(d.key.clone(), Json::Null);
            }
            None => {}
        }
    }
    out
}

/// A stored custom value as text.
pub fn show_value(value: &Json, ctx: &Ctx) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Bool(true) => ctx.t("yes"),
        Json::Bool(false) => ctx.t("no"),
        Json::Number(n) => n.to_string(),
        Json::Array(items) => items.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(", "),
        Json::Object(o) => format!(
            "{} {}",
            o.get("amount").and_then(Json::as_str).unwrap_or_default(),
            o.get("currency").and_then(Json::as_str).unwrap_or_default()
        ),
        Json::Null => String::new(),
    }
}

/// The field definitions of `category` for `record_type`; none when the caller may not
/// read categories.
pub fn definitions(
    tx: &mut Tx<'_>,
    who: &Principal,
    category: Option<Id>,
    record_type: customers::RecordType,
) -> kernel::Result<Vec<CustomField>> {
    let Some(category) = category else { return Ok(Vec::new()) };
    if !who.can("customers.categories.read") {
        return Ok(Vec::new());
    }
    let filter = customers::fields::FieldFilter {
        category_id: Some(category),
        record_type: Some(record_type.as_str().to_owned()),
    };
    Ok(customers::fields::list_fields(tx, who, &filter, &PageRequest::parse(Some(MAX_LIMIT), None)?)?.items)
}

/// Category choices (empty when the caller may not read them).
pub fn categories(tx: &mut Tx<'_>, who: &Principal) -> kernel::Result<Vec<customers::fields::Category>> {
    if !who.can("customers.categories.read") {
        return Ok(Vec::new());
    }
    Ok(customers::fields::list_categories(tx, who, &PageRequest::parse(Some(MAX_LIMIT), None)?)?.items)
}

pub fn category_options(list: &[customers::fields::Category], selected: Option<Id>) -> Vec<Opt> {
    list.iter().map(|c| Opt::new(c.id.to_string(), c.name.clone(), Some(c.id) == selected)).collect()
}

/// Branches the caller reaches (empty when they may not read branches).
pub fn branch_tree(tx: &mut Tx<'_>, who: &Principal) -> kernel::Result<Vec<kbranches::Branch>> {
    if !who.can("identity.branches.read") {
        return Ok(Vec::new());
    }
    kbranches::tree(tx, who)
}

/// Active users the caller sees, for owner and assignee pickers (at most 500), plus the
/// current one; empty when the caller may not read users.
pub fn user_choices(tx: &mut Tx<'_>, who: &Principal, current: Option<Id>) -> kernel::Result<Vec<(Id, String)>> {
    if !who.can("identity.users.read") {
        return Ok(vec![(who.user_id, who.name.clone())]);
    }
    let filter = users::UserFilter { active: Some(true), ..Default::default() };
    let mut out: Vec<(Id, String)> = users::list(tx, who, &filter, &PageRequest::parse(Some(MAX_LIMIT), None)?)?
        .items
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    if let Some(c) = current.filter(|c| !out.iter().any(|(id, _)| id == c))
        && let Some(u) = users::find(tx, c)?
    {
        out.push((u.id, u.name));
    }
    Ok(out)
}

/// (id, name) pairs as select options.
pub fn id_options(list: &[(Id, String)], selected: Option<Id>) -> Vec<Opt> {
    list.iter().map(|(id, name)| Opt::new(id.to_string(), name.clone(), Some(*id) == selected)).collect()
}

/// Accounts for a picker (the first 500 the caller sees, plus the current one).
pub fn account_choices(tx: &mut Tx<'_>, who: &Principal, current: Option<Id>) -> kernel::Result<Vec<(Id, String)>> {
    if !who.can("customers.accounts.read") {
        return Ok(Vec::new());
    }
    let page = PageRequest::parse(Some(MAX_LIMIT), None)?;
    let mut out: Vec<(Id, String)> = caccounts::list(tx, who, &caccounts::AccountFilter::default(), &page)?
        .items
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    if let Some(c) = current.filter(|c| !out.iter().any(|(id, _)| id == c))
        && let Ok(a) = caccounts::get(tx, who, c)
    {
        out.push((a.id, a.name));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// A path inside this site to go back to (never another site).
pub fn local_path(back: &str, fallback: &str) -> String {
    if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') {
        back.to_owned()
    } else {
        fallback.to_owned()
    }
}
