//! The richer parts of the account and contact forms: addresses as repeated fieldsets
//! (`addresses[0].city`, …) that work without JavaScript, tags as one comma-separated
//! input, extra phones and e-mails one per line, and the typed values (numbers, dates)
//! the page reads before the crate checks the rest.
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use chrono::NaiveDate;
use customers::details::{ADDRESS_KINDS, Address};
use kernel::error::Validator;

use super::Pairs;
use crate::pages::{Ctx, PageResult, load, render};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/tags/suggest", get(suggest_tags))
}

/// The options of a tags input's datalist.
#[derive(Template)]
#[template(path = "customers/tag_options.html")]
pub struct TagOptions {
    pub options: Vec<String>,
}

#[derive(serde::Deserialize)]
pub struct TagQuery {
    record_type: String,
    #[serde(default)]
    tags: String,
}

/// Completions for the last tag of a comma-separated input (htmx swaps them into the
/// datalist): each is the whole input with the last tag completed, since a datalist
/// offers whole values.
async fn suggest_tags(State(state): State<AppState>, creds: Credentials, Query(q): Query<TagQuery>) -> PageResult {
    let typed = q.tags.clone();
    let (head, last) = match typed.rfind([',', '，']) {
        Some(at) => {
            let sep = typed[at..].chars().next().map_or(1, char::len_utf8);
            (typed[..at + sep].to_owned(), typed[at + sep..].trim().to_lowercase())
        }
        None => (String::new(), typed.trim().to_lowercase()),
    };
    let record_type = q.record_type.clone();
    let prefix = last.clone();
    let (_, found) = load(&state, creds, "/", move |tx, who| {
        customers::tags::list(tx, who, &record_type, Some(prefix.as_str()).filter(|p| !p.is_empty()), Some(10))
    })
    .await?;
    let before: Vec<String> = split_tags(&head).into_iter().map(|t| t.to_lowercase()).collect();
    let lead = if head.is_empty() { String::new() } else { format!("{} ", head.trim_end()) };
    let options = found.into_iter().filter(|t| !before.contains(&t.tag)).map(|t| format!("{lead}{}", t.tag)).collect();
    Ok(render(&TagOptions { options }))
}

/// At most this many address rows are read from a form (the crate allows 20).
const MAX_ROWS: usize = 21;

/// One address fieldset of a form.
pub struct AddressRow {
    pub index: usize,
    pub kind: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub province: String,
    pub postcode: String,
    pub country: String,
}

impl AddressRow {
    /// The input name of one part: `addresses[1].country` (what the crate's errors name).
    pub fn name(&self, part: &str) -> String {
        format!("addresses[{}].{part}", self.index)
    }

    /// The element id of one part (no brackets or dots).
    pub fn id(&self, part: &str) -> String {
        format!("addresses-{}-{part}", self.index)
    }
}

/// The addresses a form sends: rows with anything typed (the kind alone does not count)
/// and not marked for removal, in order. A refused form is shown again from this list,
/// so the crate's `addresses[i]` errors land on the row the user sees as row `i`.
pub fn form_addresses(form: &Pairs) -> Vec<Address> {
    let mut out = Vec::new();
    for i in 0..MAX_ROWS {
        let part = |p: &str| form.get(&format!("addresses[{i}].{p}")).trim().to_owned();
        if form.get(&format!("addresses[{i}].remove")) == "1" {
            continue;
        }
        let opt = |p: &str| Some(part(p)).filter(|s| !s.is_empty());
        let a = Address {
            kind: part("kind"),
            line1: part("line1"),
            line2: opt("line2"),
            city: part("city"),
            province: opt("province"),
            postcode: opt("postcode"),
            country: part("country"),
        };
        let typed = !(a.line1.is_empty()
            && a.line2.is_none()
            && a.city.is_empty()
            && a.province.is_none()
            && a.postcode.is_none()
            && a.country.is_empty());
        if typed {
            out.push(a);
        }
    }
    out
}

/// Writes stored addresses into a form's pairs.
pub fn set_addresses(form: &mut Pairs, list: &[Address]) {
    for (i, a) in list.iter().enumerate() {
        let mut set = |p: &str, v: &str| form.set(&format!("addresses[{i}].{p}"), v);
        set("kind", &a.kind);
        set("line1", &a.line1);
        set("line2", a.line2.as_deref().unwrap_or_default());
        set("city", &a.city);
        set("province", a.province.as_deref().unwrap_or_default());
        set("postcode", a.postcode.as_deref().unwrap_or_default());
        set("country", &a.country);
    }
}

/// The fieldsets a form shows: its addresses, then `blank` empty rows (one always, one
/// more per "Add another address").
pub fn address_rows(form: &Pairs) -> Vec<AddressRow> {
    let list = form_addresses(form);
    let blank = if form.get("add_address").is_empty() { 1 } else { 2 };
    let mut rows: Vec<AddressRow> = list
        .into_iter()
        .enumerate()
        .map(|(index, a)| AddressRow {
            index,
            kind: a.kind,
            line1: a.line1,
            line2: a.line2.unwrap_or_default(),
            city: a.city,
            province: a.province.unwrap_or_default(),
            postcode: a.postcode.unwrap_or_default(),
            country: a.country,
        })
        .collect();
    for _ in 0..blank {
        if rows.len() >= MAX_ROWS - 1 {
            break;
        }
        rows.push(AddressRow {
            index: rows.len(),
            kind: String::new(),
            line1: String::new(),
            line2: String::new(),
            city: String::new(),
            province: String::new(),
            postcode: String::new(),
            country: String::new(),
        });
    }
    rows
}

/// The address kinds with their labels.
pub fn address_kinds(ctx: &Ctx) -> Vec<(&'static str, String)> {
    ADDRESS_KINDS.iter().map(|k| (*k, ctx.t(&format!("address-kind-{k}")))).collect()
}

/// `vip, 华东，Key account` → `["vip", "华东", "Key account"]` (the crate normalises them).
pub fn split_tags(text: &str) -> Vec<String> {
    text.split([',', '，', ';', '\n']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// One value per line (blank lines skipped).
pub fn split_lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// A whole number typed into `name`, `None` when blank; an error names the field.
pub fn int(v: &mut Validator, form: &Pairs, name: &str) -> Option<i64> {
    let text = form.get(name).trim();
    if text.is_empty() {
        return None;
    }
    v.check(name, text.parse::<i64>().map_err(|_| format!("{text:?} is not a whole number")))
}

/// A date typed into `name` (YYYY-MM-DD), `None` when blank; an error names the field.
pub fn date(v: &mut Validator, form: &Pairs, name: &str) -> Option<NaiveDate> {
    let text = form.get(name).trim();
    if text.is_empty() {
        return None;
    }
    v.check(
        name,
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("{text:?} is not a date (YYYY-MM-DD)")),
    )
}

/// An address as one line for the profile.
pub fn address_line(a: &Address) -> String {
    let mut parts: Vec<&str> = vec![a.line1.as_str()];
    parts.extend(a.line2.as_deref());
    parts.push(a.city.as_str());
    parts.extend(a.province.as_deref());
    parts.extend(a.postcode.as_deref());
    parts.push(a.country.as_str());
    parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        Pairs(list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn blank_and_removed_rows_are_left_out_and_the_rest_renumbered() {
        let form = pairs(&[
            ("addresses[0].kind", "billing"),
            ("addresses[0].line1", "1 Road"),
            ("addresses[0].remove", "1"),
            ("addresses[1].kind", "store"),
            ("addresses[2].kind", "office"),
            ("addresses[2].city", "Seoul"),
            ("addresses[2].country", "kr"),
        ]);
        let list = form_addresses(&form);
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].kind.as_str(), list[0].city.as_str()), ("office", "Seoul"));
        let rows = address_rows(&form);
        assert_eq!(rows.len(), 2, "the address and one blank row");
        assert_eq!(rows[0].name("country"), "addresses[0].country");
        assert_eq!(split_tags(" VIP, 华东，,x "), ["VIP", "华东", "x"]);
    }
}
