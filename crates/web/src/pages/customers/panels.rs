//! The panel registry of the customer 360 pages. An account or contact page is a profile
//! followed by panels; every section below the profile (contacts, timeline, tasks,
//! history) is a [`CustomerPanel`], and later areas (sales, service, loyalty, analytics)
//! add theirs with [`crate::AppState::with_panel`] in `main` — without editing this crate.
//!
//! All panels render inside the page's one read unit of work. A panel that fails (an
//! error or a panic) becomes a small error box; the rest of the page still shows.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use askama::Template;
use customers::RecordType;
use customers::{activities, contacts, tasks};
use kernel::paging::PageRequest;
use kernel::{Error, Id, Principal, Tx};

use super::{Names, TaskRow, TimelineEntry, timeline_entries};
use crate::pages::Ctx;
use crate::pages::admin::{AuditRow, audit_rows};

/// What a panel knows about the page it is on.
pub struct PanelContext<'a> {
    pub record_type: RecordType,
    /// The account or contact the page shows.
    pub id: Id,
    /// The account of the page: the account itself, or the contact's account.
    pub account_id: Option<Id>,
    /// The page's language, time zone, CSRF token and the caller's permissions.
    pub ctx: &'a Ctx,
    /// `?cursor=` of the page (the timeline's next page without JavaScript).
    pub cursor: Option<String>,
}

impl PanelContext<'_> {
    /// The page's path: `/accounts/<id>` or `/contacts/<id>`.
    pub fn base(&self) -> String {
        format!("/{}s/{}", self.record_type.as_str(), self.id)
    }
}

/// A rendered panel: a title and HTML the panel built (and escaped) itself.
pub struct Panel {
    pub title: String,
    pub html: String,
}

/// One section of the account and contact pages.
pub trait CustomerPanel: Send + Sync {
    /// A stable name (`contacts`, `sales.opportunities`), used as the section's id.
    fn key(&self) -> &'static str;
    /// Where it goes: lower first. Built-in: contacts 10, timeline 20, tasks 30,
    /// consent and privacy 80 (contacts), history 90.
    fn order(&self) -> i32;
    fn applies_to(&self, record_type: RecordType) -> bool;
    /// The panel, or `None` to leave it out (e.g. the caller may not see its data).
    fn render(&self, tx: &mut Tx<'_>, who: &Principal, cx: &PanelContext<'_>) -> kernel::Result<Option<Panel>>;
}

/// A panel ready for the page template.
pub struct Shown {
    pub key: &'static str,
    pub title: String,
    pub html: String,
    /// The panel failed: `html` is empty and the page shows an error box.
    pub failed: bool,
}

/// The registered panels, in order.
#[derive(Clone)]
pub struct Panels(Arc<Vec<Arc<dyn CustomerPanel>>>);

impl Panels {
    /// The built-in sections: contacts, timeline, open tasks, history.
    pub fn builtin() -> Panels {
        let list: Vec<Arc<dyn CustomerPanel>> = vec![
            Arc::new(ContactsPanel),
            Arc::new(TimelinePanel),
            Arc::new(TasksPanel),
            Arc::new(super::quality::ConsentPanel),
            Arc::new(HistoryPanel),
        ];
        Panels(Arc::new(list))
    }

    /// These panels and `panel`, kept in order (equal orders: registration order).
    pub fn with(&self, panel: Arc<dyn CustomerPanel>) -> Panels {
        let mut list: Vec<Arc<dyn CustomerPanel>> = self.0.iter().cloned().collect();
        list.push(panel);
        list.sort_by_key(|p| p.order());
        Panels(Arc::new(list))
    }

    pub fn keys(&self) -> Vec<&'static str> {
        self.0.iter().map(|p| p.key()).collect()
    }

    /// Renders every panel that applies; a failing one becomes an error box. A panel
    /// refused for lack of permission is left out.
    pub fn render(&self, tx: &mut Tx<'_>, who: &Principal, cx: &PanelContext<'_>) -> Vec<Shown> {
        let mut out = Vec::new();
        for panel in self.0.iter().filter(|p| p.applies_to(cx.record_type)) {
            let key = panel.key();
            let result = catch_unwind(AssertUnwindSafe(|| panel.render(tx, who, cx)));
            match result {
                Ok(Ok(Some(p))) => out.push(Shown { key, title: p.title, html: p.html, failed: false }),
                Ok(Ok(None)) | Ok(Err(Error::Forbidden(_))) => {}
                Ok(Err(e)) => {
                    tracing::warn!(panel = key, error = %e, "customer panel failed");
                    out.push(failed(cx, key));
                }
                Err(_) => {
                    tracing::error!(panel = key, "customer panel panicked");
                    out.push(failed(cx, key));
                }
            }
        }
        out
    }
}

fn failed(cx: &PanelContext<'_>, key: &'static str) -> Shown {
    Shown { key, title: cx.ctx.t_or(&format!("panel-{key}"), key), html: String::new(), failed: true }
}

fn html<T: Template>(t: &T) -> kernel::Result<String> {
    t.render().map_err(|e| Error::Internal(format!("template: {e}")))
}

const PANEL_ROWS: u32 = 20;
/// Completed tasks the tasks panel shows under the open ones.
const RECENTLY_DONE: u32 = 5;

// ---------------------------------------------------------------------------------------
// Built-in panels

struct ContactsPanel;

#[derive(Template)]
#[template(path = "customers/panels/contacts.html")]
struct ContactsHtml<'a> {
    ctx: &'a Ctx,
    account_id: Id,
    rows: Vec<contacts::Contact>,
    more: bool,
}

impl CustomerPanel for ContactsPanel {
    fn key(&self) -> &'static str {
        "contacts"
    }
    fn order(&self) -> i32 {
        10
    }
    fn applies_to(&self, record_type: RecordType) -> bool {
        record_type == RecordType::Account
    }
    fn render(&self, tx: &mut Tx<'_>, who: &Principal, cx: &PanelContext<'_>) -> kernel::Result<Option<Panel>> {
        if !who.can("customers.contacts.read") {
            return Ok(None);
        }
        let filter = contacts::ContactFilter { account_id: Some(cx.id), ..Default::default() };
        let found = contacts::list(tx, who, &filter, &PageRequest::parse(Some(50), None)?)?;
        let more = found.next_cursor.is_some();
        let page = ContactsHtml { ctx: cx.ctx, account_id: cx.id, rows: found.items, more };
        Ok(Some(Panel { title: cx.ctx.t("panel-contacts"), html: html(&page)? }))
    }
}

struct TimelinePanel;

#[derive(Template)]
#[template(path = "customers/panels/timeline.html")]
struct TimelineHtml<'a> {
    ctx: &'a Ctx,
    entries: Vec<TimelineEntry>,
    more: Option<String>,
}

/// One page of the timeline of an account (every activity on it and its contacts, by
/// anyone) or of a contact (every activity on them, by anyone).
pub fn timeline_page(
    tx: &mut Tx<'_>,
    who: &Principal,
    record_type: RecordType,
    id: Id,
    cursor: Option<&str>,
) -> kernel::Result<kernel::paging::Page<activities::Activity>> {
    let page = PageRequest::parse(Some(PANEL_ROWS), cursor.filter(|c| !c.is_empty()))?;
    match record_type {
        RecordType::Account => activities::timeline(tx, who, id, &page),
        RecordType::Contact => activities::contact_timeline(tx, who, id, &page),
    }
}

impl CustomerPanel for TimelinePanel {
    fn key(&self) -> &'static str {
        "timeline"
    }
    fn order(&self) -> i32 {
        20
    }
    fn applies_to(&self, _: RecordType) -> bool {
        true
    }
    fn render(&self, tx: &mut Tx<'_>, who: &Principal, cx: &PanelContext<'_>) -> kernel::Result<Option<Panel>> {
        if !who.can("customers.activities.read") {
            return Ok(None);
        }
        let found = timeline_page(tx, who, cx.record_type, cx.id, cx.cursor.as_deref())?;
        let mut names = Names::default();
        let entries = timeline_entries(tx, cx.ctx, &mut names, &found.items)?;
        let base = cx.base();
        let more = found.next_cursor.map(|c| format!("{base}/timeline?cursor={}", crate::pages::enc(&c)));
        let page = TimelineHtml { ctx: cx.ctx, entries, more };
        Ok(Some(Panel { title: cx.ctx.t("panel-timeline"), html: html(&page)? }))
    }
}

struct TasksPanel;

#[derive(Template)]
#[template(path = "customers/panels/tasks.html")]
struct TasksHtml<'a> {
    ctx: &'a Ctx,
    new_link: Option<String>,
    rows: Vec<TaskRow>,
    /// The last few completed (newest first), so what was done is in sight too.
    done: Vec<TaskRow>,
    back: String,
}

impl CustomerPanel for TasksPanel {
    fn key(&self) -> &'static str {
        "tasks"
    }
    fn order(&self) -> i32 {
        30
    }
    fn applies_to(&self, _: RecordType) -> bool {
        true
    }
    fn render(&self, tx: &mut Tx<'_>, who: &Principal, cx: &PanelContext<'_>) -> kernel::Result<Option<Panel>> {
        if !who.can("customers.tasks.read") {
            return Ok(None);
        }
        let mut filter = tasks::TaskFilter { status: Some("open".into()), ..Default::default() };
        match cx.record_type {
            RecordType::Account => filter.account_id = Some(cx.id),
            RecordType::Contact => filter.contact_id = Some(cx.id),
        }
        let found = tasks::list(tx, who, &filter, &PageRequest::parse(Some(50), None)?)?;
        let mut names = Names::default();
        let rows = super::task_rows(tx, cx.ctx, &mut names, &found.items, false)?;
        filter.status = Some("done".into());
        let done = tasks::list(tx, who, &filter, &PageRequest::parse(Some(RECENTLY_DONE), None)?)?;
        let done = super::task_rows(tx, cx.ctx, &mut names, &done.items, false)?;
        let new_link = who.can("customers.tasks.create").then(|| match cx.record_type {
            RecordType::Account => format!("/tasks/new?account_id={}", cx.id),
            RecordType::Contact => format!(
                "/tasks/new?contact_id={}{}",
                cx.id,
                cx.account_id.map(|a| format!("&account_id={a}")).unwrap_or_default()
            ),
        });
        let page = TasksHtml { ctx: cx.ctx, new_link, rows, done, back: cx.base() };
        Ok(Some(Panel { title: cx.ctx.t("panel-tasks"), html: html(&page)? }))
    }
}

struct HistoryPanel;

#[derive(Template)]
#[template(path = "customers/panels/history.html")]
struct HistoryHtml<'a> {
    ctx: &'a Ctx,
    history: Vec<AuditRow>,
}

impl CustomerPanel for HistoryPanel {
    fn key(&self) -> &'static str {
        "history"
    }
    fn order(&self) -> i32 {
        90
    }
    fn applies_to(&self, _: RecordType) -> bool {
        true
    }
    fn render(&self, tx: &mut Tx<'_>, _who: &Principal, cx: &PanelContext<'_>) -> kernel::Result<Option<Panel>> {
        // The page already checked that the caller sees the record; its history is theirs.
        let entries =
            kernel::audit::history(tx, cx.record_type.as_str(), cx.id, &PageRequest::parse(Some(PANEL_ROWS), None)?)?
                .items;
        let page = HistoryHtml { ctx: cx.ctx, history: audit_rows(cx.ctx, &entries) };
        Ok(Some(Panel { title: cx.ctx.t("history"), html: html(&page)? }))
    }
}
