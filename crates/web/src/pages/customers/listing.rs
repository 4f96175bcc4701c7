//! What the account and contact lists share beyond the table: the query string as the
//! crate's filter reads it (`AccountFilter::from_query` / `ContactFilter::from_query`, one
//! parser for the API, saved views, exports and these pages), sortable headers, custom
//! field filter inputs, saved views and the export links.
use axum::extract::Query;
use axum::http::Uri;
use customers::fields::CustomField;
use kernel::{Id, Principal, Tx};

use super::Pairs;
use crate::pages::admin::Opt;
use crate::pages::{Ctx, FormErrors, enc};

/// A list page's query: the filter pairs (blank values dropped, as a GET form sends every
/// input) and the page's own parameters.
#[derive(Default, Clone)]
pub struct ListParams {
    /// What the crate's `from_query` reads (and a saved view stores).
    pub pairs: Vec<(String, String)>,
    pub cursor: Option<String>,
    /// A record just deleted (offered for restore).
    pub deleted: Option<String>,
    /// A saved view to apply.
    pub view: Option<Id>,
}

impl ListParams {
    pub fn from_raw(raw: Vec<(String, String)>) -> ListParams {
        let mut out = ListParams::default();
        for (k, v) in raw {
            if v.trim().is_empty() {
                continue;
            }
            match k.as_str() {
                "cursor" => out.cursor = Some(v),
                "deleted" => out.deleted = Some(v),
                "view" => out.view = v.trim().parse::<i64>().ok().map(Id),
                // The submit button of the filter form, not a filter.
                "apply" => {}
                _ => out.pairs.push((k, v)),
            }
        }
        out
    }

    /// The first value of a filter parameter, or "".
    pub fn get(&self, name: &str) -> &str {
        self.pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// The filter as a query string (`tag=vip&sort=name`).
    pub fn query(&self) -> String {
        encode(&self.pairs)
    }

    /// Some filter or search applies (sorting alone is not one).
    pub fn filtered(&self) -> bool {
        self.pairs.iter().any(|(k, _)| k != "sort")
    }

    /// This filter with another sort, from the first page.
    fn with_sort(&self, sort: &str) -> String {
        let mut pairs: Vec<(String, String)> = self.pairs.iter().filter(|(k, _)| k != "sort").cloned().collect();
        pairs.push(("sort".into(), sort.to_owned()));
        encode(&pairs)
    }
}

pub fn encode(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// A stored view's query string as pairs (what the crate checked when it was saved).
pub fn decode(query: &str) -> Vec<(String, String)> {
    let uri: Option<Uri> = format!("/?{}", query.trim_start_matches('?')).parse().ok();
    uri.and_then(|u| Query::<Vec<(String, String)>>::try_from_uri(&u).ok()).map(|q| q.0).unwrap_or_default()
}

/// A column header; sortable ones link to the list in their order (again: reversed).
#[derive(Clone)]
pub struct Column {
    pub label: String,
    pub href: Option<String>,
    /// `▲` or `▼` on the sorted column.
    pub mark: &'static str,
}

impl Column {
    /// The header cell's `aria-sort` attribute (a fixed string) on the sorted column.
    pub fn aria_sort(&self) -> &'static str {
        match self.mark {
            "▲" => " aria-sort=\"ascending\"",
            "▼" => " aria-sort=\"descending\"",
            _ => "",
        }
    }

    pub fn plain(label: String) -> Column {
        Column { label, href: None, mark: "" }
    }

    /// A header sorting by `key` (`name`, `created_at`, `updated_at`).
    pub fn sorted(label: String, area: &str, key: &str, params: &ListParams) -> Column {
        let current = params.get("sort");
        let (next, mark) = if current == key {
            (format!("-{key}"), "▲")
        } else if current.strip_prefix('-') == Some(key) {
            (key.to_owned(), "▼")
        } else {
            (key.to_owned(), "")
        };
        Column { label, href: Some(format!("/{area}?{}", params.with_sort(&next))), mark }
    }
}

/// One input of the custom-field filter row.
pub struct CustomFilter {
    pub key: String,
    pub label: String,
    /// `text`, `range` (number, money, date: `.gte` and `.lte`), `select`, `boolean`.
    pub input: &'static str,
    /// The input type of ranges: `text` (numbers, money) or `date`.
    pub range_type: &'static str,
    pub value: String,
    pub gte: String,
    pub lte: String,
    pub options: Vec<String>,
}

impl CustomFilter {
    pub fn name(&self, suffix: &str) -> String {
        format!("custom.{}{suffix}", self.key)
    }
}

/// The filter inputs for a category's fields (long text cannot be filtered usefully and
/// is left out).
pub fn custom_filters(defs: &[CustomField], params: &ListParams) -> Vec<CustomFilter> {
    defs.iter()
        .filter(|d| d.field_type != "long_text")
        .map(|d| {
            let name = format!("custom.{}", d.key);
            let (input, range_type) = match d.field_type.as_str() {
                // Text, so a refused value stays in the input beside its message.
                "number" | "money" => ("range", "text"),
                "date" => ("range", "date"),
                "select" | "multi_select" => ("select", ""),
                "boolean" => ("boolean", ""),
                _ => ("text", ""),
            };
            CustomFilter {
                key: d.key.clone(),
                label: d.label.clone(),
                input,
                range_type,
                value: params.get(&name).to_owned(),
                gte: params.get(&format!("{name}.gte")).to_owned(),
                lte: params.get(&format!("{name}.lte")).to_owned(),
                options: d.options.clone(),
            }
        })
        .collect()
}

/// What the list shows above and around its table beyond the plain filters.
#[derive(Default)]
pub struct Extras {
    pub tag: String,
    /// Tags in use, for the datalist.
    pub tags: Vec<String>,
    pub custom: Vec<CustomFilter>,
    pub sort: String,
    /// The sort choices (the headers sort too, but phones show rows as cards).
    pub sorts: Vec<Opt>,
    pub views: Vec<Opt>,
    /// The applied view when it is the caller's own (it may be deleted here).
    pub own_view: Option<String>,
    /// The current filter as a query string (saved by "Save view", sent to exports).
    pub query: String,
    pub can_save_view: bool,
    /// Export links: (label, href). The export endpoints belong to the "io" area.
    pub exports: Vec<(String, String)>,
    /// A refused filter or view, shown above the table.
    pub errors: FormErrors,
}

impl Extras {
    /// The custom filter inputs' names, comma-separated: a category change leaves them
    /// out (`hx-params="not …"`), since they belong to the previous category.
    pub fn custom_names(&self) -> String {
        let mut names = Vec::new();
        for c in &self.custom {
            if c.input == "range" {
                names.push(c.name(".gte"));
                names.push(c.name(".lte"));
            } else {
                names.push(c.name(""));
            }
        }
        names.join(",")
    }
}

/// What [`saved_views`] finds: the dropdown, the applied view's pairs, and its id when
/// it is the caller's own.
pub struct Views {
    pub options: Vec<Opt>,
    pub applied: Option<QueryPairs>,
    pub own: Option<String>,
}

/// The sort choices of the filter form, `current` selected.
pub fn sort_options(ctx: &Ctx, current: &str) -> Vec<Opt> {
    [
        ("name", "customers-sort-name"),
        ("-name", "customers-sort-name-desc"),
        ("-created_at", "customers-sort-newest"),
        ("created_at", "customers-sort-oldest"),
        ("-updated_at", "customers-sort-changed"),
        ("updated_at", "customers-sort-unchanged"),
    ]
    .iter()
    .map(|(v, k)| Opt::new(*v, ctx.t(k), *v == current))
    .collect()
}

/// Tags in use on `record_type` records, most used first (none when refused).
pub fn tag_choices(tx: &mut Tx<'_>, who: &Principal, record_type: &str) -> kernel::Result<Vec<String>> {
    if !who.can(if record_type == "account" { "customers.accounts.read" } else { "customers.contacts.read" }) {
        return Ok(Vec::new());
    }
    Ok(customers::tags::list(tx, who, record_type, None, Some(100))?.into_iter().map(|t| t.tag).collect())
}

/// A list's query as name/value pairs.
pub type QueryPairs = Vec<(String, String)>;

/// The caller's and the shared saved views of `record_type`, and the pairs of `chosen`
/// when it is one of them.
pub fn saved_views(tx: &mut Tx<'_>, who: &Principal, record_type: &str, chosen: Option<Id>) -> kernel::Result<Views> {
    let page = kernel::paging::PageRequest::parse(Some(kernel::paging::MAX_LIMIT), None)?;
    let views = customers::views::list(tx, who, Some(record_type), &page)?.items;
    let chosen_view = chosen.and_then(|c| views.iter().find(|v| v.id == c));
    let applied = chosen_view.map(|v| decode(&v.query));
    let own = chosen_view.filter(|v| v.owner_id.is_some() && v.owner_id == who.actor()).map(|v| v.id.to_string());
    let options = views
        .iter()
        .map(|v| {
            let label = if v.shared && v.owner_id != who.actor() { format!("{} ↗", v.name) } else { v.name.clone() };
            Opt::new(v.id.to_string(), label, Some(v.id) == chosen)
        })
        .collect();
    Ok(Views { options, applied, own })
}

/// The export links for the current filter (the endpoints are the "io" area's:
/// `GET /api/v1/{area}/export?format=..&<filters>`).
pub fn export_links(ctx: &Ctx, area: &str, params: &ListParams) -> Vec<(String, String)> {
    let formats: &[&str] = if area == "contacts" { &["csv", "xlsx", "vcf"] } else { &["csv", "xlsx"] };
    let query = params.query();
    formats
        .iter()
        .map(|f| {
            let href = if query.is_empty() {
                format!("/api/v1/{area}/export?format={f}")
            } else {
                format!("/api/v1/{area}/export?format={f}&{query}")
            };
            (ctx.ta("customers-export-as", "format", &f.to_uppercase()), href)
        })
        .collect()
}

/// The submitted "Save view" form.
pub fn new_view(form: &Pairs, record_type: &str) -> customers::views::NewSavedView {
    customers::views::NewSavedView {
        name: form.get("view_name").to_owned(),
        record_type: record_type.to_owned(),
        query: form.get("query").to_owned(),
        shared: form.get("shared") == "true",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_drop_blanks_and_keep_the_page_parameters_apart() {
        let raw = [("q", ""), ("tag", "vip"), ("cursor", "abc"), ("view", "7"), ("custom.tier", "A"), ("apply", "")];
        let p = ListParams::from_raw(raw.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        assert_eq!(p.query(), "tag=vip&custom.tier=A");
        assert_eq!(p.cursor.as_deref(), Some("abc"));
        assert_eq!(p.view, Some(Id(7)));
        assert!(p.filtered());
        assert_eq!(decode("tag=vip&q=%E5%8D%8E+x"), vec![("tag".into(), "vip".into()), ("q".into(), "华 x".into())]);
        let c = Column::sorted("Name".into(), "accounts", "name", &p);
        assert_eq!(c.href.as_deref(), Some("/accounts?tag=vip&custom.tier=A&sort=name"));
    }
}
