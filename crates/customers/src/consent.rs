//! Consent per channel (e-mail, SMS, phone, post) with its source and time, every change
//! kept as a new row; the do-not-contact flag; and [`may_contact`], the one question
//! marketing and service areas ask before reaching out.
use chrono::{DateTime, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::{Error, Id, Principal, Result, Tx};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::contacts;
use crate::record::now;

pub const CHANNELS: [&str; 4] = ["email", "sms", "phone", "post"];

/// One consent decision.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Consent {
    pub id: Id,
    /// `email`, `sms`, `phone` or `post`.
    pub channel: String,
    pub granted: bool,
    /// Where it was given or withdrawn: `web form`, `event`, `phone`, `import`, …
    pub source: String,
    pub at: DateTime<Utc>,
    /// Who recorded it.
    pub actor_id: Option<Id>,
}

impl FromRow for Consent {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Consent {
            id: row.get("id")?,
            channel: row.get("channel")?,
            granted: row.get("granted")?,
            source: row.get("source")?,
            at: row.get("at")?,
            actor_id: row.get("actor_id")?,
        })
    }
}

/// A contact's consents: the current decision per channel and the whole history.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Consents {
    pub contact_id: Id,
    pub do_not_contact: bool,
    pub do_not_contact_reason: Option<String>,
    /// The newest decision of each channel that has one.
    pub current: Vec<Consent>,
    /// Every decision, newest first.
    pub history: Vec<Consent>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    pub granted: bool,
    /// `web form`, `event`, `phone`, `import`, … (1–100 characters).
    pub source: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoNotContactInput {
    pub value: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

struct Flag {
    do_not_contact: bool,
    reason: Option<String>,
    erased: bool,
}

impl FromRow for Flag {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let erased: Option<DateTime<Utc>> = row.get("erased_at")?;
        Ok(Flag {
            do_not_contact: row.get("do_not_contact")?,
            reason: row.get("do_not_contact_reason")?,
            erased: erased.is_some(),
        })
    }
}

fn flag(tx: &mut Tx<'_>, contact_id: Id) -> Result<Option<Flag>> {
    Ok(tx.query_opt_sql(
        "SELECT do_not_contact, do_not_contact_reason, erased_at FROM contacts WHERE id = $1 AND deleted_at IS NULL",
        &[contact_id.into()],
    )?)
}

const SELECT: &str = "SELECT id, channel, granted, source, at, actor_id FROM consents";

/// Every consent decision of a contact, newest first (no permission check).
pub(crate) fn history(tx: &mut Tx<'_>, contact_id: Id) -> Result<Vec<Consent>> {
    Ok(tx.query_sql(&format!("{SELECT} WHERE contact_id = $1 ORDER BY id DESC"), &[contact_id.into()])?)
}

/// The consents of a contact the caller may read.
pub fn list(tx: &mut Tx<'_>, who: &Principal, contact_id: Id) -> Result<Consents> {
    contacts::get(tx, who, contact_id)?;
    let history = history(tx, contact_id)?;
    let mut current: Vec<Consent> = Vec::new();
    for c in &history {
        if !current.iter().any(|k| k.channel == c.channel) {
            current.push(c.clone());
        }
    }
    current.sort_by_key(|c| CHANNELS.iter().position(|ch| *ch == c.channel));
    let f = flag(tx, contact_id)?.ok_or(Error::NotFound("contact"))?;
    Ok(Consents { contact_id, do_not_contact: f.do_not_contact, do_not_contact_reason: f.reason, current, history })
}

/// Records a consent decision for `channel`. Needs `customers.contacts.update` on the
/// contact; audited on the contact.
#[instrument(skip_all, fields(contact.id = %contact_id))]
pub fn set(tx: &mut Tx<'_>, who: &Principal, contact_id: Id, channel: &str, input: ConsentInput) -> Result<Consent> {
    who.require("customers.contacts.update")?;
    contacts::fetch_in_scope(tx, who, contact_id)?;
    let mut v = Validator::new();
    if !CHANNELS.contains(&channel) {
        v.add("channel", format!("must be one of {}", CHANNELS.join(", ")));
    }
    let source = input.source.trim();
    if source.is_empty() || source.chars().count() > 100 || source.chars().any(char::is_control) {
        v.add("source", "say where the consent came from (1–100 characters), e.g. web form");
    }
    v.finish()?;
    let before = history(tx, contact_id)?.into_iter().find(|c| c.channel == channel).map(|c| c.granted);
    let consent = Consent {
        id: Id::new(),
        channel: channel.to_owned(),
        granted: input.granted,
        source: source.to_owned(),
        at: now(),
        actor_id: who.actor(),
    };
    tx.execute_sql(
        "INSERT INTO consents (id, contact_id, channel, granted, source, at, actor_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            consent.id.into(),
            contact_id.into(),
            consent.channel.clone().into(),
            consent.granted.into(),
            consent.source.clone().into(),
            consent.at.into(),
            consent.actor_id.map(Id::get).into(),
        ],
    )?;
    let changes = Changes::new()
        .field(&format!("consent.{channel}"), &before, &Some(consent.granted))
        .created("source", &consent.source);
    audit::record(tx, who, "consent", "contact", Some(contact_id), &changes)?;
    Ok(consent)
}

/// Sets or clears a contact's do-not-contact flag. Needs `customers.contacts.update`.
#[instrument(skip_all, fields(contact.id = %contact_id))]
pub fn set_do_not_contact(
    tx: &mut Tx<'_>,
    who: &Principal,
    contact_id: Id,
    input: DoNotContactInput,
) -> Result<Consents> {
    who.require("customers.contacts.update")?;
    contacts::fetch_in_scope(tx, who, contact_id)?;
    let reason = input.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned);
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(Error::field("reason", "at most 500 characters"));
    }
    let old = flag(tx, contact_id)?.ok_or(Error::NotFound("contact"))?;
    let reason = if input.value { reason } else { None };
    tx.execute_sql(
        "UPDATE contacts SET do_not_contact = $1, do_not_contact_reason = $2, updated_at = $3, version = version + 1 WHERE id = $4",
        &[input.value.into(), reason.clone().into(), now().into(), contact_id.into()],
    )?;
    let changes = Changes::new().field("do_not_contact", &old.do_not_contact, &input.value).field(
        "do_not_contact_reason",
        &old.reason,
        &reason,
    );
    audit::record(tx, who, "update", "contact", Some(contact_id), &changes)?;
    list(tx, who, contact_id)
}

/// Whether the company may reach contact `contact_id` on `channel`: false when the
/// contact is gone, erased or marked do-not-contact, or when its newest decision for the
/// channel is not a grant (no decision at all is a no). No permission check: the caller
/// (a campaign send, a job) has already chosen the contact.
pub fn may_contact(tx: &mut Tx<'_>, contact_id: Id, channel: &str) -> Result<bool> {
    let Some(f) = flag(tx, contact_id)? else { return Ok(false) };
    if f.do_not_contact || f.erased {
        return Ok(false);
    }
    let newest: Option<Consent> = tx.query_opt_sql(
        &format!("{SELECT} WHERE contact_id = $1 AND channel = $2 ORDER BY id DESC LIMIT 1"),
        &[contact_id.into(), channel.into()],
    )?;
    Ok(newest.is_some_and(|c| c.granted))
}
