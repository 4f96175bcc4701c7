//! E-mail through an outbox. A notice that should also be mailed writes a `mail_outbox`
//! row and a `workflow.send_mail` job in the transaction of the change itself, so a mail
//! exists if and only if the change committed. The job sends it over SMTP (lettre) and
//! then marks the row `sent` in its own transaction.
//!
//! Delivery is **at least once**: SMTP cannot take part in our transaction, so a crash
//! after the server accepted the message and before `sent` committed sends it again when
//! the job's lease runs out. Every send of one row carries the same `Message-ID`
//! (`<outbox-ID@rapport>`), so mail clients and servers that drop duplicates see one
//! message. The other choice, marking the row before sending (at most once), could lose a
//! mail in the same window, which is worse for approvals. A row already `sent` is never
//! sent again, so a job run twice after a successful send does nothing.
//!
//! Configuration: `RAPPORT_SMTP_URL=smtp://host:port` (plain SMTP, for a relay on the
//! same machine or network; no TLS), `RAPPORT_SMTP_FROM` (default `Rapport
//! <rapport@localhost>`). Without a URL, rows stay `queued` and jobs finish as skipped;
//! [`requeue_unsent`] at the next start with a URL sends them.
use chrono::Utc;
use kernel::jobs::{self, JobContext, JobError};
use kernel::{Db, Error, Id, Result, Tx};
use lettre::message::{Mailbox, header::ContentType};
use lettre::{Message, SmtpTransport, Transport};
use serde_json::{Value as Json, json};

pub const SEND_JOB: &str = "workflow.send_mail";

/// Where mail goes.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub from: String,
}

impl Smtp {
    /// `smtp://host[:port]` (port 25 by default).
    pub fn parse(url: &str, from: Option<&str>) -> std::result::Result<Smtp, String> {
        let rest = url
            .trim()
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("RAPPORT_SMTP_URL {url:?} must look like smtp://host:port"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("RAPPORT_SMTP_URL {url:?}: bad port {p:?}"))?),
            None => (rest, 25),
        };
        if host.is_empty() {
            return Err(format!("RAPPORT_SMTP_URL {url:?} names no host"));
        }
        let from = from.unwrap_or("Rapport <rapport@localhost>").to_owned();
        from.parse::<Mailbox>().map_err(|e| format!("RAPPORT_SMTP_FROM {from:?}: {e}"))?;
        Ok(Smtp { host: host.to_owned(), port, from })
    }

    /// From `RAPPORT_SMTP_URL` and `RAPPORT_SMTP_FROM`; `None` when no URL is set.
    pub fn from_env() -> std::result::Result<Option<Smtp>, String> {
        match std::env::var("RAPPORT_SMTP_URL").ok().filter(|u| !u.trim().is_empty()) {
            None => Ok(None),
            Some(url) => Smtp::parse(&url, std::env::var("RAPPORT_SMTP_FROM").ok().as_deref()).map(Some),
        }
    }
}

/// Queues a mail to user `user_id` in the caller's transaction (if the user has an address).
pub fn queue(tx: &mut Tx<'_>, user_id: Id, subject: &str, body: &str) -> Result<()> {
    let Some(user) = kernel::identity::users::find(tx, user_id)? else { return Ok(()) };
    if !user.active || user.email.is_empty() {
        return Ok(());
    }
    let id = Id::new();
    tx.execute_sql(
        "INSERT INTO mail_outbox (id, to_email, to_name, subject, body, status, attempts, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6)",
        &[id.into(), user.email.into(), user.name.into(), subject.into(), body.into(), Utc::now().into()],
    )?;
    jobs::enqueue(tx, SEND_JOB, json!({"outbox_id": id}), None)?;
    Ok(())
}

struct Outgoing {
    to_email: String,
    to_name: String,
    subject: String,
    body: String,
}

impl kernel::db::FromRow for Outgoing {
    fn from_row(row: &kernel::db::Row<'_>) -> std::result::Result<Self, kernel::DbError> {
        Ok(Outgoing {
            to_email: row.get("to_email")?,
            to_name: row.get("to_name")?,
            subject: row.get("subject")?,
            body: row.get("body")?,
        })
    }
}

/// Sends outbox row `id` if it is not sent yet; returns whether it sent it.
pub fn deliver(db: &Db, smtp: &Smtp, id: Id) -> std::result::Result<bool, JobError> {
    let row: Option<Outgoing> = db
        .write_blocking(|tx| {
            let n = tx.execute_sql(
                "UPDATE mail_outbox SET status = 'sending', attempts = attempts + 1 WHERE id = $1 AND status IN ('queued', 'sending')",
                &[id.into()],
            )?;
            if n == 0 {
                return Ok::<_, Error>(None);
            }
            Ok(tx.query_opt_sql("SELECT to_email, to_name, subject, body FROM mail_outbox WHERE id = $1", &[id.into()])?)
        })
        .map_err(JobError::retryable)?;
    let Some(row) = row else { return Ok(false) };
    let bad = |e: String| {
        let _ = db.write_blocking(|tx| {
            tx.execute_sql(
                "UPDATE mail_outbox SET status = 'failed', last_error = $1 WHERE id = $2",
                &[e.clone().into(), id.into()],
            )
        });
        JobError::permanent(e)
    };
    let from: Mailbox = smtp.from.parse().map_err(|e| bad(format!("from address: {e}")))?;
    let to_address = row.to_email.parse().map_err(|e| bad(format!("to address {}: {e}", row.to_email)))?;
    let message = Message::builder()
        .from(from)
        .to(Mailbox::new(Some(row.to_name.clone()), to_address))
        .subject(row.subject.clone())
        .message_id(Some(format!("<outbox-{id}@rapport>")))
        .header(ContentType::TEXT_PLAIN)
        .body(row.body.clone())
        .map_err(|e| bad(format!("building the message: {e}")))?;
    let transport = SmtpTransport::builder_dangerous(smtp.host.as_str()).port(smtp.port).build();
    if let Err(e) = transport.send(&message) {
        let reason = e.to_string();
        let _ = db.write_blocking(|tx| {
            tx.execute_sql(
                "UPDATE mail_outbox SET status = 'queued', last_error = $1 WHERE id = $2 AND status = 'sending'",
                &[reason.clone().into(), id.into()],
            )
        });
        return Err(JobError::retryable(format!("SMTP {}:{}: {reason}", smtp.host, smtp.port)));
    }
    db.write_blocking(|tx| {
        tx.execute_sql(
            "UPDATE mail_outbox SET status = 'sent', sent_at = $1, last_error = NULL WHERE id = $2",
            &[Utc::now().into(), id.into()],
        )
    })
    .map_err(JobError::retryable)?;
    Ok(true)
}

/// Gives every mail still `queued` without a pending send job a new job: mails queued while
/// no SMTP server was configured (their jobs finished as skipped) go out once one is. Run at
/// start-up when `RAPPORT_SMTP_URL` is set; a mail with a job still waiting gets no second
/// one, so nothing is sent twice. Returns the number of mails given a job.
pub fn requeue_unsent(tx: &mut Tx<'_>) -> Result<u64> {
    let queued: Vec<Id> = tx.query_sql("SELECT id FROM mail_outbox WHERE status = 'queued' ORDER BY id", &[])?;
    let mut requeued = 0;
    for id in queued {
        // Lock the row first, so two nodes starting together see each other's job (on
        // PostgreSQL the second waits here, then its next statement sees the first's commit).
        let locked = tx.execute_sql(
            "UPDATE mail_outbox SET attempts = attempts WHERE id = $1 AND status = 'queued'",
            &[id.into()],
        )?;
        let waiting: Vec<Json> = tx.query_sql(
            "SELECT payload FROM jobs WHERE kind = $1 AND status IN ('queued', 'running')",
            &[SEND_JOB.into()],
        )?;
        let has_job = waiting.iter().any(|p| p["outbox_id"].as_str() == Some(id.to_string().as_str()));
        if locked == 1 && !has_job {
            jobs::enqueue(tx, SEND_JOB, json!({"outbox_id": id}), None)?;
            requeued += 1;
        }
    }
    Ok(requeued)
}

/// The handler of [`SEND_JOB`] (payload `{"outbox_id"}`), sending through `smtp`.
pub fn send_job(
    smtp: std::result::Result<Option<Smtp>, String>,
) -> impl Fn(&JobContext, Json) -> std::result::Result<Json, JobError> + Send + Sync + 'static {
    move |ctx, payload| {
        let Some(id) = payload["outbox_id"].as_str().and_then(|s| s.parse::<Id>().ok()) else {
            return Err(JobError::permanent(format!("not a mail payload: {payload}")));
        };
        match &smtp {
            Err(e) => Err(JobError::permanent(e)),
            Ok(None) => Ok(json!({"skipped": "RAPPORT_SMTP_URL is not set"})),
            Ok(Some(smtp)) => Ok(json!({"sent": deliver(ctx.db(), smtp, id)?})),
        }
    }
}
