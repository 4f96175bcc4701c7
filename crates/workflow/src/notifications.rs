//! In-app notifications: one row per notice for one user, written in the transaction of
//! the change that caused it; on commit a `notification` event (with the unread count)
//! reaches the user's open pages through `/api/v1/events`, so the header's bell updates.
use chrono::{DateTime, Utc};
use kernel::db::{DbError, FromRow, Row};
use kernel::events::Event;
use kernel::paging::{Page, PageRequest, id_cursor};
use kernel::{Id, Principal, Result, Tx};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Id,
    /// `approval.requested`, `approval.submitted`, `approval.step`, `approval.finished`.
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

/// Tells `user_id` something, in the caller's transaction: a notification, a live
/// `notification` event once it commits, and a mail through the outbox.
pub fn notify(tx: &mut Tx<'_>, user_id: Id, kind: &str, title: &str, body: &str, link: Option<&str>) -> Result<()> {
    let id = Id::new();
    tx.execute_sql(
        "INSERT INTO notifications (id, user_id, kind, title, body, link, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            id.into(),
            user_id.into(),
            kind.into(),
            truncate(title, 300).into(),
            truncate(body, 2000).into(),
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
    let text = match link {
        Some(l) => format!("{body}\n\n{l}\n"),
        None => format!("{body}\n"),
    };
    crate::mail::queue(tx, user_id, &truncate(title, 300), &text)
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
