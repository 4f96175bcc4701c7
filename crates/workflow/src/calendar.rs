//! Working calendars: Monday to Friday, 09:00–18:00 in the branch's time zone, less the
//! holidays configured for the branch or for every branch (`approval_holidays`; Chinese
//! and Korean public holidays are entered there, as they move every year).
use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use kernel::{Error, Id, Principal, Result, Tx};

pub const DAY_START: u32 = 9;
pub const DAY_END: u32 = 18;

/// Working seconds between `from` and `to` in time zone `tz`, skipping weekends and `holidays`.
pub fn working_seconds(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: chrono_tz::Tz,
    holidays: &BTreeSet<NaiveDate>,
) -> i64 {
    if to <= from {
        return 0;
    }
    let mut day = from.with_timezone(&tz).date_naive();
    let last = to.with_timezone(&tz).date_naive();
    let mut total = 0;
    while day <= last {
        let working = !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&day);
        if working {
            let at = |h: u32| {
                let local = day.and_time(NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN));
                tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
            };
            if let (Some(open), Some(close)) = (at(DAY_START), at(DAY_END)) {
                let start = open.max(from);
                let end = close.min(to);
                if end > start {
                    total += (end - start).num_seconds();
                }
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    total
}

/// The instant `seconds` working seconds after `from` (for deadlines and tests).
pub fn add_working_seconds(
    from: DateTime<Utc>,
    seconds: i64,
    tz: chrono_tz::Tz,
    holidays: &BTreeSet<NaiveDate>,
) -> DateTime<Utc> {
    let mut left = seconds.max(0);
    let mut day = from.with_timezone(&tz).date_naive();
    // Ten years of days bounds the walk; a calendar without working days never ends.
    for _ in 0..3660 {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&day) {
            let at = |h: u32| {
                let local = day.and_time(NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN));
                tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
            };
            if let (Some(open), Some(close)) = (at(DAY_START), at(DAY_END)) {
                let start = open.max(from);
                if close > start {
                    let window = (close - start).num_seconds();
                    if left <= window {
                        return start + chrono::Duration::seconds(left);
                    }
                    left -= window;
                }
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    from
}

/// The holidays that apply to `branch` (its own and every branch's).
pub fn holidays(tx: &mut Tx<'_>, branch: Id) -> Result<BTreeSet<NaiveDate>> {
    let days: Vec<String> =
        tx.query_sql("SELECT day FROM approval_holidays WHERE branch_id IS NULL OR branch_id = $1", &[branch.into()])?;
    Ok(days.iter().filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).collect())
}

/// Adds a holiday for one branch or (`None`) every branch.
pub fn add_holiday(tx: &mut Tx<'_>, who: &Principal, branch: Option<Id>, day: NaiveDate, name: &str) -> Result<()> {
    who.require("workflow.processes.manage")?;
    let name = kernel::values::name(name, 200).map_err(|e| Error::field("name", e))?;
    let id = Id::new();
    tx.execute_sql(
        "INSERT INTO approval_holidays (id, branch_id, day, name) VALUES ($1, $2, $3, $4)",
        &[id.into(), branch.map(Id::get).into(), day.format("%Y-%m-%d").to_string().into(), name.clone().into()],
    )?;
    kernel::audit::record(
        tx,
        who,
        "create",
        "approval_holiday",
        Some(id),
        &kernel::audit::Changes::new().created("day", &day).created("name", &name),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn counts_only_working_hours_in_the_branch_zone() {
        let sh: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let none = BTreeSet::new();
        // Friday 17:00 to Monday 10:00 in Shanghai: one hour Friday, one Monday.
        let s = working_seconds(at("2026-03-06T09:00:00Z"), at("2026-03-09T02:00:00Z"), sh, &none);
        assert_eq!(s, 2 * 3600);
        // A whole working day is 9 hours; a holiday is none.
        let day = (at("2026-03-09T00:00:00Z"), at("2026-03-09T15:59:59Z"));
        assert_eq!(working_seconds(day.0, day.1, sh, &none), 9 * 3600);
        let holiday = BTreeSet::from([NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()]);
        assert_eq!(working_seconds(day.0, day.1, sh, &holiday), 0);
        // The same instants in Seoul (one hour ahead) start the day an hour earlier.
        let seoul: chrono_tz::Tz = "Asia/Seoul".parse().unwrap();
        assert_eq!(working_seconds(at("2026-03-09T00:00:00Z"), at("2026-03-09T01:00:00Z"), seoul, &none), 3600);
        assert_eq!(working_seconds(at("2026-03-09T00:00:00Z"), at("2026-03-09T01:00:00Z"), sh, &none), 0);
        // Adding working time is the inverse.
        let from = at("2026-03-06T08:30:00Z");
        for hours in [0, 1, 2, 9, 20] {
            let to = add_working_seconds(from, hours * 3600, sh, &holiday);
            assert_eq!(working_seconds(from, to, sh, &holiday), hours * 3600, "{hours}");
        }
    }
}
