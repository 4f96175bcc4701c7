//! In-app notifications: one row per notice for one user, written in the transaction of
//! the change that caused it; on commit a `notification` event (with the unread count)
//! reaches the user's open pages through `/api/v1/events`, so the header's bell updates.
//!
//! Each notice is composed in the recipient's language (`users.locale`) from [`Text`]s,
//! and goes out as the recipient chose for its kind (in-app, e-mail, both or neither;
//! both unless they said otherwise). Stored rows keep the words they were written with.
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::events::Event;
use kernel::i18n::Catalog;
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::{Error, Id, Principal, Result, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::registry::Registry;

/// The workflow area's notice texts.
pub const SOURCES: [(&str, &str); 3] = [
    ("en", include_str!("../i18n/en.ftl")),
    ("zh-CN", include_str!("../i18n/zh-CN.ftl")),
    ("ko-KR", include_str!("../i18n/ko-KR.ftl")),
];

/// The catalog of [`SOURCES`], parsed once.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::new(&SOURCES))
}

/// Words of a notice, rendered in the recipient's locale when the notice is written:
/// plain words (a record's own title, a comment, a name), a moment (shown in the
/// recipient's time zone), or a message of a catalog whose arguments are texts
/// themselves. Another area brings its own catalog (`Text::message`).
#[derive(Debug, Clone)]
pub enum Text {
    Plain(String),
    /// `2026-11-20 09:30` in the recipient's time zone.
    At(DateTime<Utc>),
    Message {
        catalog: fn() -> &'static Catalog,
        key: &'static str,
        args: Vec<(&'static str, Text)>,
    },
}

impl Text {
    /// A message of `catalog`.
    pub fn message(catalog: fn() -> &'static Catalog, key: &'static str) -> Text {
        Text::Message { catalog, key, args: Vec::new() }
    }

    /// A message of the workflow catalog.
    pub fn msg(key: &'static str) -> Text {
        Text::message(catalog, key)
    }

    /// Adds argument `name` (a message's `{ $name }`).
    pub fn arg(mut self, name: &'static str, value: impl Into<Text>) -> Text {
        if let Text::Message { args, .. } = &mut self {
            args.push((name, value.into()));
        }
        self
    }

    /// The words in `locale` (English, then the key, where a message is missing), moments
    /// in `time_zone` (an IANA name; Asia/Shanghai when it is not one).
    pub fn render(&self, locale: &str, time_zone: &str) -> String {
        match self {
            Text::Plain(s) => s.clone(),
            Text::At(at) => {
                let tz: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
                at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
            }
            Text::Message { catalog, key, args } => {
                let values: Vec<(&str, String)> = args.iter().map(|(k, v)| (*k, v.render(locale, time_zone))).collect();
                let refs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
                catalog().t_args(locale, key, &refs)
            }
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::Plain(s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::Plain(s.clone())
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::Plain(s.to_owned())
    }
}

impl From<DateTime<Utc>> for Text {
    fn from(at: DateTime<Utc>) -> Text {
        Text::At(at)
    }
}

impl From<i64> for Text {
    fn from(n: i64) -> Text {
        Text::Plain(n.to_string())
    }
}

/// A kind of notice a user can switch on or off per channel; its label is a catalog message.
#[derive(Debug, Clone, Copy)]
pub struct NoticeKind {
    /// The `kind` of notifications rows, e.g. `approval.requested`.
    pub key: &'static str,
    pub catalog: fn() -> &'static Catalog,
    pub label_key: &'static str,
}

impl NoticeKind {
    pub const fn new(key: &'static str, catalog: fn() -> &'static Catalog, label_key: &'static str) -> NoticeKind {
        NoticeKind { key, catalog, label_key }
    }

    pub fn label(&self, locale: &str) -> String {
        (self.catalog)().t(locale, self.label_key)
    }
}

/// The kinds of notice the workflow area sends. Other areas add theirs to the
/// [`Registry`] (`Registry::with_notice_kind`), which lists these by default.
pub const KINDS: &[NoticeKind] = &[
    NoticeKind::new("approval.requested", catalog, "kind-approval-requested"),
    NoticeKind::new("approval.submitted", catalog, "kind-approval-submitted"),
    NoticeKind::new("approval.step", catalog, "kind-approval-step"),
    NoticeKind::new("approval.finished", catalog, "kind-approval-finished"),
    NoticeKind::new("approval.reminder", catalog, "kind-approval-reminder"),
    NoticeKind::new("approval.escalated", catalog, "kind-approval-escalated"),
];

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Id,
    /// One of the registered kinds ([`KINDS`]: `approval.requested`, `approval.step`, …).
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl FromRow for Notification {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Notification {
            id: row.get("id")?,
            kind: row.get("kind")?,
            title: row.get("title")?,
            body: row.get("body")?,
            link: row.get("link")?,
            created_at: row.get("created_at")?,
            read_at: row.get("read_at")?,
        })
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Tells `user_id` something, in the caller's transaction and in their language: a
/// notification and a live `notification` event once it commits (if they keep in-app
/// notices of this `kind` on), and a mail through the outbox (if they keep e-mail on).
pub fn notify(
    tx: &mut Tx<'_>,
    user_id: Id,
    kind: &str,
    title: impl Into<Text>,
    body: impl Into<Text>,
    link: Option<&str>,
) -> Result<()> {
    let (in_app, email) = choice(tx, user_id, kind)?;
    if !in_app && !email {
        return Ok(());
    }
    let (locale, zone) = kernel::identity::users::find(tx, user_id)?
        .map(|u| (u.locale, u.time_zone))
        .unwrap_or_else(|| ("en".into(), "Asia/Shanghai".into()));
    let title = truncate(&title.into().render(&locale, &zone), 300);
    let body = truncate(&body.into().render(&locale, &zone), 2000);
    if in_app {
        let id = Id::new();
        tx.execute_sql(
            "INSERT INTO notifications (id, user_id, kind, title, body, link, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                id.into(),
                user_id.into(),
                kind.into(),
                title.clone().into(),
                body.clone().into(),
                link.map(str::to_owned).into(),
                Utc::now().into(),
            ],
        )?;
        let unread = unread_of(tx, user_id)?;
        let inbox = inbox_of(tx, user_id)?;
        tx.emit(Event::for_user(
            "notification",
            user_id.get(),
            json!({"id": id, "kind": kind, "title": title, "unread": unread, "inbox": inbox}),
        ));
    }
    if email {
        let text = match link {
            Some(l) => format!("{body}\n\n{l}\n"),
            None => format!("{body}\n"),
        };
        crate::mail::queue(tx, user_id, &title, &text)?;
    }
    Ok(())
}

/// Whether `user_id` wants notices of `kind` in-app and by e-mail (both, by default).
fn choice(tx: &mut Tx<'_>, user_id: Id, kind: &str) -> Result<(bool, bool)> {
    let row: Option<PreferenceRow> = tx.query_opt_sql(
        "SELECT kind, in_app, email FROM notification_preferences WHERE user_id = $1 AND kind = $2",
        &[user_id.into(), kind.into()],
    )?;
    Ok(row.map_or((true, true), |r| (r.in_app, r.email)))
}

struct PreferenceRow {
    kind: String,
    in_app: bool,
    email: bool,
}

impl FromRow for PreferenceRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(PreferenceRow { kind: row.get("kind")?, in_app: row.get("in_app")?, email: row.get("email")? })
    }
}

/// How a user wants one kind of notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Preference {
    /// The kind, e.g. `approval.requested`.
    pub kind: String,
    /// The kind's name in the caller's language.
    pub label: String,
    /// A notification in the app (the bell).
    pub in_app: bool,
    /// A mail.
    pub email: bool,
}

/// One kind's choice in a change of preferences.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferenceInput {
    pub kind: String,
    pub in_app: bool,
    pub email: bool,
}

/// A change of preferences: the kinds listed are set, the others stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    pub items: Vec<PreferenceInput>,
}

/// The caller's preferences for every registered kind, in the registry's order.
pub fn preferences(tx: &mut Tx<'_>, who: &Principal, registry: &Registry) -> Result<Vec<Preference>> {
    let rows: Vec<PreferenceRow> = tx.query_sql(
        "SELECT kind, in_app, email FROM notification_preferences WHERE user_id = $1",
        &[who.user_id.into()],
    )?;
    Ok(registry
        .notice_kinds()
        .iter()
        .map(|k| {
            let row = rows.iter().find(|r| r.kind == k.key);
            Preference {
                kind: k.key.to_owned(),
                label: k.label(&who.locale),
                in_app: row.is_none_or(|r| r.in_app),
                email: row.is_none_or(|r| r.email),
            }
        })
        .collect())
}

/// Sets the caller's preferences for the kinds in `input` (422 naming `items[i].kind` for
/// a kind not registered or listed twice, and nothing written); audited.
pub fn set_preferences(
    tx: &mut Tx<'_>,
    who: &Principal,
    registry: &Registry,
    input: PreferencesInput,
) -> Result<Vec<Preference>> {
    if who.actor().is_none() {
        return Err(Error::Forbidden("notification preferences belong to a user".into()));
    }
    let mut v = kernel::error::Validator::new();
    for (i, item) in input.items.iter().enumerate() {
        let field = format!("items[{i}].kind");
        if !registry.notice_kinds().iter().any(|k| k.key == item.kind) {
            let known: Vec<&str> = registry.notice_kinds().iter().map(|k| k.key).collect();
            v.add(&field, format!("{:?} is not a kind of notice; known kinds: {}", item.kind, known.join(", ")));
        } else if input.items[..i].iter().any(|o| o.kind == item.kind) {
            v.add(&field, format!("{:?} is listed twice", item.kind));
        }
    }
    v.finish()?;
    let before = preferences(tx, who, registry)?;
    let mut changes = Changes::new();
    let now = Utc::now();
    for item in &input.items {
        let Some(old) = before.iter().find(|p| p.kind == item.kind) else { continue };
        if (old.in_app, old.email) == (item.in_app, item.email) {
            continue;
        }
        tx.execute_sql(
            "INSERT INTO notification_preferences (user_id, kind, in_app, email, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, kind) DO UPDATE SET in_app = excluded.in_app, email = excluded.email, \
             updated_at = excluded.updated_at",
            &[who.user_id.into(), item.kind.clone().into(), item.in_app.into(), item.email.into(), now.into()],
        )?;
        changes = changes.field(&format!("{}.in_app", item.kind), &old.in_app, &item.in_app).field(
            &format!("{}.email", item.kind),
            &old.email,
            &item.email,
        );
    }
    if !changes.is_empty() {
        audit::record(tx, who, "update", "notification_preferences", Some(who.user_id), &changes)?;
    }
    preferences(tx, who, registry)
}

fn inbox_of(tx: &mut Tx<'_>, user_id: Id) -> Result<i64> {
    let n: Vec<i64> = tx.query_sql(
        "SELECT COUNT(*) FROM approval_tasks WHERE approver_id = $1 AND status = 'pending'",
        &[user_id.into()],
    )?;
    Ok(n.first().copied().unwrap_or(0))
}

fn unread_of(tx: &mut Tx<'_>, user_id: Id) -> Result<i64> {
    let n: Vec<i64> =
        tx.query_sql("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", &[user_id.into()])?;
    Ok(n.first().copied().unwrap_or(0))
}

/// The caller's unread count (the bell).
pub fn unread(tx: &mut Tx<'_>, who: &Principal) -> Result<i64> {
    unread_of(tx, who.user_id)
}

/// The caller's notifications, newest first.
pub fn list(tx: &mut Tx<'_>, who: &Principal, page: &PageRequest) -> Result<Page<Notification>> {
    let after = page.cursor.as_ref().map_or(i64::MAX, |c| c.id);
    let rows: Vec<Notification> = tx.query_sql(
        "SELECT id, kind, title, body, link, created_at, read_at FROM notifications \
         WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        &[who.user_id.into(), after.into(), (page.fetch_limit() as i64).into()],
    )?;
    Ok(Page::from_rows(rows, page, |n| id_cursor(n.id)))
}

/// Marks the caller's notifications read: one, or (`None`) all. Returns the unread count.
pub fn mark_read(tx: &mut Tx<'_>, who: &Principal, id: Option<Id>) -> Result<i64> {
    let now = Utc::now();
    match id {
        Some(id) => tx.execute_sql(
            "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND id = $3 AND read_at IS NULL",
            &[now.into(), who.user_id.into(), id.into()],
        )?,
        None => tx.execute_sql(
            "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL",
            &[now.into(), who.user_id.into()],
        )?,
    };
    let unread = unread_of(tx, who.user_id)?;
    let inbox = inbox_of(tx, who.user_id)?;
    tx.emit(Event::for_user("notification", who.user_id.get(), json!({"unread": unread, "inbox": inbox})));
    Ok(unread)
}
