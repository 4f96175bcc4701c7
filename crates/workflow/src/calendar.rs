//! Working calendars, which step timeouts count in: per branch, each weekday's working
//! intervals (e.g. 09:00–12:00 and 13:00–18:00, Saturday 09:00–12:00) in the branch's time
//! zone, less its holidays, plus its make-up working days (China's 调休: a weekend day
//! worked around a public holiday).
//!
//! * Hours: a branch without its own hours (`approval_working_hours`) uses its nearest
//!   parent's, else [`Week::standard`] (Monday–Friday 09:00–18:00).
//! * Days (`approval_holidays`, kind `holiday` or `working`): those of the branch, its
//!   parents of the same region (a Korean branch under a Chinese head office does not
//!   keep China's holidays) and every branch (`branch_id` null) apply; for one date the
//!   nearest wins (the branch's own entry over its parent's over every branch's).
//! * A make-up working day is worked on the hours of the first weekday (Monday…Friday)
//!   that has any.
//! * [`presets`]: the public holidays of China and South Korea that an admin loads into a
//!   calendar with one action (idempotent: a date already in that calendar is kept).
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use kernel::audit::{self, Changes};
use kernel::db::{DbError, FromRow, Row};
use kernel::error::Validator;
use kernel::identity::branches;
use kernel::{Error, Id, Principal, Result, Tx};
use serde::{Deserialize, Serialize};

pub const DAY_START: u32 = 9;
pub const DAY_END: u32 = 18;

/// Weekday keys, Monday first (the order of [`Week`]'s days).
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A week's working intervals: seven lists (Monday first) of `(start, end)` seconds of the
/// local day, sorted, not overlapping, `end` at most 24:00.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Week(pub [Vec<(u32, u32)>; 7]);

impl Week {
    /// Monday to Friday, 09:00–18:00.
    pub fn standard() -> Week {
        let day = vec![(DAY_START * 3600, DAY_END * 3600)];
        Week([day.clone(), day.clone(), day.clone(), day.clone(), day, Vec::new(), Vec::new()])
    }

    fn of(&self, day: NaiveDate) -> &[(u32, u32)] {
        &self.0[day.weekday().num_days_from_monday() as usize]
    }

    /// The hours of a make-up working day: the first weekday's with any.
    fn make_up(&self) -> Vec<(u32, u32)> {
        self.0[..5].iter().find(|d| !d.is_empty()).cloned().unwrap_or_else(|| vec![(DAY_START * 3600, DAY_END * 3600)])
    }

    /// Validates what a client sent: weekday keys `mon`…`sun`, `HH:MM` times, each end
    /// after its start, no overlaps within a day. Omitted days have no hours.
    pub fn parse(input: &BTreeMap<String, Vec<Interval>>) -> Result<Week> {
        let mut v = Validator::new();
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for (key, intervals) in input {
            let Some(index) = WEEKDAYS.iter().position(|d| d.eq_ignore_ascii_case(key.trim())) else {
                v.add(&format!("week.{key}"), "is not a weekday (mon, tue, wed, thu, fri, sat, sun)");
                continue;
            };
            let mut day = Vec::new();
            for (i, interval) in intervals.iter().enumerate() {
                let field = |part: &str| format!("week.{}[{i}].{part}", WEEKDAYS[index]);
                let start = parse_time(&interval.start);
                let end = parse_time(&interval.end);
                match (start, end) {
                    (None, _) => v.add(&field("start"), "is not a time (HH:MM, 00:00 to 24:00)"),
                    (_, None) => v.add(&field("end"), "is not a time (HH:MM, 00:00 to 24:00)"),
                    (Some(s), Some(e)) if e <= s => v.add(&field("end"), "must be after start"),
                    (Some(s), Some(e)) => day.push((s, e, i)),
                }
            }
            day.sort_unstable();
            for pair in day.windows(2) {
                if pair[1].0 < pair[0].1 {
                    v.add(
                        &format!("week.{}[{}].start", WEEKDAYS[index], pair[1].2),
                        format!("overlaps {}–{}", hhmm(pair[0].0), hhmm(pair[0].1)),
                    );
                }
            }
            week[index] = day.into_iter().map(|(s, e, _)| (s, e)).collect();
        }
        v.finish()?;
        Ok(Week(week))
    }

    /// For clients: each weekday's intervals as `HH:MM` text.
    pub fn to_map(&self) -> BTreeMap<String, Vec<Interval>> {
        WEEKDAYS
            .iter()
            .zip(self.0.iter())
            .map(|(d, day)| {
                let list = day.iter().map(|(s, e)| Interval { start: hhmm(*s), end: hhmm(*e) }).collect();
                ((*d).to_owned(), list)
            })
            .collect()
    }
}

/// `HH:MM` (also `H:MM`, and `24:00` as the end of the day) → seconds of the day.
pub fn parse_time(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if m.len() != 2 || h.is_empty() || h.len() > 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 3600 + m * 60)
}

pub fn hhmm(seconds: u32) -> String {
    format!("{:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

/// One working interval of a day, `HH:MM` to `HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    #[schema(example = "09:00")]
    pub start: String,
    #[schema(example = "18:00")]
    pub end: String,
}

/// What a calendar day is: a holiday, or a make-up working day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    Holiday,
    Working,
}

impl DayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Working => "working",
        }
    }

    pub fn parse(text: &str) -> Option<DayKind> {
        match text {
            "holiday" => Some(DayKind::Holiday),
            "working" => Some(DayKind::Working),
            _ => None,
        }
    }
}

/// A branch's working calendar: time zone, weekly hours and the days that differ.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub tz: chrono_tz::Tz,
    pub week: Week,
    pub days: BTreeMap<NaiveDate, DayKind>,
}

impl Calendar {
    /// Monday–Friday 09:00–18:00 in `tz`, less `holidays`.
    pub fn standard(tz: chrono_tz::Tz, holidays: &BTreeSet<NaiveDate>) -> Calendar {
        Calendar { tz, week: Week::standard(), days: holidays.iter().map(|d| (*d, DayKind::Holiday)).collect() }
    }

    /// The working intervals of local `day` as instants.
    fn windows(&self, day: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let intervals = match self.days.get(&day) {
            Some(DayKind::Holiday) => return Vec::new(),
            Some(DayKind::Working) => self.week.make_up(),
            None => self.week.of(day).to_vec(),
        };
        let at = |seconds: u32| {
            let (date, seconds) = if seconds >= 86_400 { (day.succ_opt()?, seconds - 86_400) } else { (day, seconds) };
            let local = date.and_time(NaiveTime::from_num_seconds_from_midnight_opt(seconds, 0)?);
            self.tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
        };
        intervals.iter().filter_map(|(s, e)| Some((at(*s)?, at(*e)?))).collect()
    }

    /// Working seconds between `from` and `to`.
    pub fn working_seconds(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let mut day = from.with_timezone(&self.tz).date_naive();
        let last = to.with_timezone(&self.tz).date_naive();
        let mut total = 0;
        while day <= last {
            for (open, close) in self.windows(day) {
                let (start, end) = (open.max(from), close.min(to));
                if end > start {
                    total += (end - start).num_seconds();
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        total
    }

    /// The instant `seconds` working seconds after `from` (deadlines, tests); `from` itself
    /// when the calendar has no working time in ten years.
    pub fn add_working_seconds(&self, from: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
        let mut left = seconds.max(0);
        let mut day = from.with_timezone(&self.tz).date_naive();
        for _ in 0..3660 {
            for (open, close) in self.windows(day) {
                let start = open.max(from);
                if close > start {
                    let window = (close - start).num_seconds();
                    if left <= window {
                        return start + chrono::Duration::seconds(left);
                    }
                    left -= window;
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        from
    }
}

/// Working seconds between `from` and `to` on Monday–Friday 09:00–18:00 in `tz`, less `holidays`.
pub fn working_seconds(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: chrono_tz::Tz,
    holidays: &BTreeSet<NaiveDate>,
) -> i64 {
    Calendar::standard(tz, holidays).working_seconds(from, to)
}

/// The instant `seconds` working seconds after `from` on the standard week in `tz`.
pub fn add_working_seconds(
    from: DateTime<Utc>,
    seconds: i64,
    tz: chrono_tz::Tz,
    holidays: &BTreeSet<NaiveDate>,
) -> DateTime<Utc> {
    Calendar::standard(tz, holidays).add_working_seconds(from, seconds)
}

struct BranchLink {
    parent_id: Option<Id>,
    time_zone: String,
    region: String,
}

impl FromRow for BranchLink {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(BranchLink {
            parent_id: row.get("parent_id")?,
            time_zone: row.get("time_zone")?,
            region: row.get("region")?,
        })
    }
}

/// A branch's place in the tree, for its calendar.
struct Chain {
    /// The branch and its parents, nearest first (where hours come from).
    all: Vec<Id>,
    /// Those of the branch's own region (where days come from: a Korean branch does
    /// not keep its Chinese head office's holidays).
    same_region: Vec<Id>,
    tz: chrono_tz::Tz,
}

fn chain(tx: &mut Tx<'_>, branch: Id) -> Result<Chain> {
    let mut c = Chain { all: Vec::new(), same_region: Vec::new(), tz: chrono_tz::Asia::Shanghai };
    let mut region = None;
    let mut at = Some(branch);
    while let Some(id) = at {
        let rows: Vec<BranchLink> =
            tx.query_sql("SELECT parent_id, time_zone, region FROM branches WHERE id = $1", &[id.into()])?;
        let Some(link) = rows.into_iter().next() else { break };
        if region.is_none() {
            c.tz = link.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
            region = Some(link.region.clone());
        }
        c.all.push(id);
        if region.as_deref() == Some(link.region.as_str()) {
            c.same_region.push(id);
        }
        at = link.parent_id.filter(|p| !c.all.contains(p));
    }
    Ok(c)
}

struct HoursRow {
    branch_id: Id,
    week: String,
}

impl FromRow for HoursRow {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(HoursRow { branch_id: row.get("branch_id")?, week: row.get("week")? })
    }
}

/// The hours that apply to the first branch of `chain` and the branch they come from
/// (`None`: the standard week).
fn effective_hours(tx: &mut Tx<'_>, chain: &[Id]) -> Result<(Week, Option<Id>)> {
    for id in chain {
        let rows: Vec<HoursRow> =
            tx.query_sql("SELECT branch_id, week FROM approval_working_hours WHERE branch_id = $1", &[(*id).into()])?;
        if let Some(row) = rows.into_iter().next() {
            let week = serde_json::from_str(&row.week).map_err(|e| Error::Internal(format!("working hours: {e}")))?;
            return Ok((week, Some(row.branch_id)));
        }
    }
    Ok((Week::standard(), None))
}

/// The working calendar of `branch`: its time zone, its (or its nearest parent's) hours,
/// and the holidays and working days of it, its parents and every branch.
pub fn for_branch(tx: &mut Tx<'_>, branch: Id) -> Result<Calendar> {
    let chain = chain(tx, branch)?;
    let (week, _) = effective_hours(tx, &chain.all)?;
    let days = effective_days(tx, &chain.same_region, None)?
        .into_iter()
        .filter_map(|d| Some((d.day, DayKind::parse(&d.kind)?)));
    Ok(Calendar { tz: chain.tz, week, days: days.collect() })
}

/// The holidays that apply to `branch` (its own, its same-region parents' and every branch's).
pub fn holidays(tx: &mut Tx<'_>, branch: Id) -> Result<BTreeSet<NaiveDate>> {
    let calendar = for_branch(tx, branch)?;
    Ok(calendar.days.into_iter().filter(|(_, k)| *k == DayKind::Holiday).map(|(d, _)| d).collect())
}

/// A branch's working hours as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BranchHours {
    pub branch_id: Id,
    /// `own`, `inherited` (from `inherited_from`) or `default` (Monday–Friday 09:00–18:00).
    pub source: String,
    pub inherited_from: Option<Id>,
    /// Each weekday (`mon`…`sun`) with its working intervals.
    #[schema(value_type = Object)]
    pub week: BTreeMap<String, Vec<Interval>>,
}

/// New working hours of a branch: weekday (`mon`…`sun`) → intervals; an omitted day has none.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursInput {
    #[schema(value_type = Object)]
    pub week: BTreeMap<String, Vec<Interval>>,
}

fn existing_branch(tx: &mut Tx<'_>, id: Id, field: &str) -> Result<()> {
    match branches::find(tx, id)? {
        Some(_) => Ok(()),
        None if field.is_empty() => Err(Error::NotFound("branch")),
        None => Err(Error::field(field, "no such branch")),
    }
}

/// The working hours that apply to `branch` and where they come from.
pub fn hours(tx: &mut Tx<'_>, who: &Principal, branch: Id) -> Result<BranchHours> {
    who.require("workflow.processes.read")?;
    hours_of(tx, branch)
}

fn hours_of(tx: &mut Tx<'_>, branch: Id) -> Result<BranchHours> {
    existing_branch(tx, branch, "")?;
    let chain = chain(tx, branch)?;
    let (week, from) = effective_hours(tx, &chain.all)?;
    let source = match from {
        None => "default",
        Some(b) if b == branch => "own",
        Some(_) => "inherited",
    };
    Ok(BranchHours {
        branch_id: branch,
        source: source.into(),
        inherited_from: from.filter(|b| *b != branch),
        week: week.to_map(),
    })
}

/// Sets a branch's own working hours (its child branches without their own inherit them).
pub fn set_hours(
    tx: &mut Tx<'_>,
    who: &Principal,
    branch: Id,
    input: HoursInput,
    now: DateTime<Utc>,
) -> Result<BranchHours> {
    who.require("workflow.processes.manage")?;
    existing_branch(tx, branch, "")?;
    let week = Week::parse(&input.week)?;
    let before = hours_of(tx, branch)?;
    let text = serde_json::to_string(&week).map_err(|e| Error::Internal(e.to_string()))?;
    let n = tx.execute_sql(
        "UPDATE approval_working_hours SET week = $1, updated_at = $2, version = version + 1 WHERE branch_id = $3",
        &[text.clone().into(), now.into(), branch.into()],
    )?;
    if n == 0 {
        tx.execute_sql(
            "INSERT INTO approval_working_hours (branch_id, week, updated_at) VALUES ($1, $2, $3)",
            &[branch.into(), text.into(), now.into()],
        )?;
    }
    let after = hours_of(tx, branch)?;
    let changes =
        Changes::new().field("week", &before.week, &after.week).field("source", &before.source, &after.source);
    audit::record(tx, who, "update", "approval_working_hours", Some(branch), &changes)?;
    Ok(after)
}

/// Drops a branch's own hours: it inherits again.
pub fn clear_hours(tx: &mut Tx<'_>, who: &Principal, branch: Id) -> Result<BranchHours> {
    who.require("workflow.processes.manage")?;
    existing_branch(tx, branch, "")?;
    let before = hours_of(tx, branch)?;
    tx.execute_sql("DELETE FROM approval_working_hours WHERE branch_id = $1", &[branch.into()])?;
    let after = hours_of(tx, branch)?;
    if before != after {
        let changes =
            Changes::new().field("week", &before.week, &after.week).field("source", &before.source, &after.source);
        audit::record(tx, who, "update", "approval_working_hours", Some(branch), &changes)?;
    }
    Ok(after)
}

/// A holiday or make-up working day of one calendar (a branch, or every branch).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CalendarDay {
    pub id: Id,
    /// The branch whose calendar holds the day; `null`: every branch.
    pub branch_id: Option<Id>,
    #[schema(value_type = String, example = "2026-10-01")]
    pub day: NaiveDate,
    /// `holiday` or `working` (a make-up working day).
    pub kind: String,
    pub name: String,
}

impl FromRow for CalendarDay {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let day: String = row.get("day")?;
        Ok(CalendarDay {
            id: row.get("id")?,
            branch_id: row.get("branch_id")?,
            day: NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|e| DbError::Column { column: "day".into(), message: e.to_string() })?,
            kind: row.get("kind")?,
            name: row.get("name")?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCalendarDay {
    /// Omitted or `null`: every branch.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub branch_id: Option<Id>,
    /// `YYYY-MM-DD`.
    pub day: Option<String>,
    /// `holiday` (default) or `working`.
    #[serde(default)]
    pub kind: Option<String>,
    pub name: Option<String>,
}

const DAY_COLUMNS: &str = "id, branch_id, day, kind, name";

/// The days that apply to the first branch of `chain` (or, for an empty chain, every
/// branch's own list), one per date, the nearest calendar's.
fn effective_days(tx: &mut Tx<'_>, chain: &[Id], year: Option<i32>) -> Result<Vec<CalendarDay>> {
    let (from, to) = match year {
        Some(y) => (format!("{y:04}-01-01"), format!("{:04}-01-01", y + 1)),
        None => ("0000-01-01".into(), "9999-12-31".into()),
    };
    let rows: Vec<CalendarDay> = tx.query_sql(
        &format!("SELECT {DAY_COLUMNS} FROM approval_holidays WHERE day >= $1 AND day < $2 ORDER BY day, id"),
        &[from.into(), to.into()],
    )?;
    let rank = |b: Option<Id>| match b {
        None => Some(chain.len()),
        Some(b) => chain.iter().position(|c| *c == b),
    };
    let mut best: BTreeMap<NaiveDate, (usize, CalendarDay)> = BTreeMap::new();
    for row in rows {
        let Some(r) = rank(row.branch_id) else { continue };
        if best.get(&row.day).is_none_or(|(have, _)| r < *have) {
            best.insert(row.day, (r, row));
        }
    }
    Ok(best.into_values().map(|(_, d)| d).collect())
}

/// The holidays and working days of a year: for `branch`, those that apply to it (its
/// own, its same-region parents', every branch's; `branch_id` says whose); without,
/// every branch's.
pub fn days(tx: &mut Tx<'_>, who: &Principal, branch: Option<Id>, year: Option<i32>) -> Result<Vec<CalendarDay>> {
    who.require("workflow.processes.read")?;
    if let Some(y) = year
        && !(2000..=2100).contains(&y)
    {
        return Err(Error::field("year", "must be a year from 2000 to 2100"));
    }
    let chain = match branch {
        Some(b) => {
            existing_branch(tx, b, "branch_id")?;
            chain(tx, b)?.same_region
        }
        None => Vec::new(),
    };
    effective_days(tx, &chain, year)
}

/// Adds a holiday or a make-up working day to one calendar; a date already in that
/// calendar is refused (delete it first).
pub fn add_day(tx: &mut Tx<'_>, who: &Principal, input: NewCalendarDay) -> Result<CalendarDay> {
    who.require("workflow.processes.manage")?;
    let mut v = Validator::new();
    let day = match input.day.as_deref().map(str::trim) {
        None | Some("") => {
            v.add("day", "is required");
            None
        }
        Some(text) => {
            let parsed = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().filter(|d| (2000..=2100).contains(&d.year()));
            if parsed.is_none() {
                v.add("day", "is not a date (YYYY-MM-DD, years 2000 to 2100)");
            }
            parsed
        }
    };
    let kind = match input.kind.as_deref().map(str::trim) {
        None | Some("") => Some(DayKind::Holiday),
        Some(k) => {
            let kind = DayKind::parse(k);
            if kind.is_none() {
                v.add("kind", "must be holiday or working");
            }
            kind
        }
    };
    let name = v.check("name", kernel::values::name(input.name.as_deref().unwrap_or(""), 200));
    if let Some(b) = input.branch_id
        && branches::find(tx, b)?.is_none()
    {
        v.add("branch_id", "no such branch");
    }
    if let Some(d) = day {
        let text = d.format("%Y-%m-%d").to_string();
        let same: Vec<i64> = tx.query_sql(
            "SELECT COUNT(*) FROM approval_holidays WHERE COALESCE(branch_id, 0) = $1 AND day = $2",
            &[input.branch_id.map_or(0, Id::get).into(), text.into()],
        )?;
        if same.first().copied().unwrap_or(0) > 0 {
            v.add("day", "is already in this calendar; delete it first");
        }
    }
    v.finish()?;
    let (Some(day), Some(kind), Some(name)) = (day, kind, name) else {
        return Err(Error::field("day", "is required"));
    };
    let d = CalendarDay { id: Id::new(), branch_id: input.branch_id, day, kind: kind.as_str().into(), name };
    insert_day(tx, &d)?;
    let changes = Changes::new()
        .created("branch_id", &d.branch_id)
        .created("day", &d.day)
        .created("kind", &d.kind)
        .created("name", &d.name);
    audit::record(tx, who, "create", "approval_holiday", Some(d.id), &changes)?;
    Ok(d)
}

/// Inserts `d` unless its calendar already has its date; whether it did.
fn insert_day(tx: &mut Tx<'_>, d: &CalendarDay) -> Result<bool> {
    let n = tx.execute_sql(
        "INSERT INTO approval_holidays (id, branch_id, day, kind, name) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            d.id.into(),
            d.branch_id.map(Id::get).into(),
            d.day.format("%Y-%m-%d").to_string().into(),
            d.kind.clone().into(),
            d.name.clone().into(),
        ],
    )?;
    Ok(n == 1)
}

/// Adds a holiday for one branch or (`None`) every branch.
pub fn add_holiday(tx: &mut Tx<'_>, who: &Principal, branch: Option<Id>, day: NaiveDate, name: &str) -> Result<()> {
    let input = NewCalendarDay {
        branch_id: branch,
        day: Some(day.format("%Y-%m-%d").to_string()),
        kind: None,
        name: Some(name.into()),
    };
    add_day(tx, who, input).map(|_| ())
}

/// Removes a holiday or working day.
pub fn delete_day(tx: &mut Tx<'_>, who: &Principal, id: Id) -> Result<CalendarDay> {
    who.require("workflow.processes.manage")?;
    let rows: Vec<CalendarDay> =
        tx.query_sql(&format!("SELECT {DAY_COLUMNS} FROM approval_holidays WHERE id = $1"), &[id.into()])?;
    let Some(d) = rows.into_iter().next() else { return Err(Error::NotFound("calendar day")) };
    tx.execute_sql("DELETE FROM approval_holidays WHERE id = $1", &[id.into()])?;
    let changes = Changes::new().field("day", &Some(d.day), &None).field("name", &Some(d.name.clone()), &None);
    audit::record(tx, who, "delete", "approval_holiday", Some(id), &changes)?;
    Ok(d)
}

/// Loading a preset: which one, into which calendar.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresetInput {
    /// `CN` or `KR`.
    pub country: Option<String>,
    pub year: Option<i32>,
    /// Omitted or `null`: every branch.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub branch_id: Option<Id>,
}

/// What loading a preset did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PresetReport {
    /// Days added.
    pub added: u32,
    /// Days the calendar already had (kept as they are).
    pub skipped: u32,
}

/// Loads a country's public holidays (and make-up working days) of a year into one
/// calendar. Idempotent: a date the calendar already has is kept as it is.
pub fn load_preset(tx: &mut Tx<'_>, who: &Principal, input: PresetInput) -> Result<PresetReport> {
    who.require("workflow.processes.manage")?;
    let mut v = Validator::new();
    let country = input.country.as_deref().map(|c| c.trim().to_ascii_uppercase()).unwrap_or_default();
    if !presets::COUNTRIES.contains(&country.as_str()) {
        v.add("country", "must be CN or KR");
    }
    let days = match input.year {
        None => {
            v.add("year", "is required");
            None
        }
        Some(y) => {
            let days = presets::days(&country, y);
            if days.is_none() && presets::COUNTRIES.contains(&country.as_str()) {
                let years: Vec<String> = presets::years(&country).iter().map(i32::to_string).collect();
                v.add("year", format!("no built-in {country} holidays for {y} (available: {})", years.join(", ")));
            }
            days
        }
    };
    if let Some(b) = input.branch_id
        && branches::find(tx, b)?.is_none()
    {
        v.add("branch_id", "no such branch");
    }
    v.finish()?;
    let Some(days) = days else { return Err(Error::field("year", "is required")) };
    let mut report = PresetReport { added: 0, skipped: 0 };
    for (day, kind, name) in days {
        let d = CalendarDay {
            id: Id::new(),
            branch_id: input.branch_id,
            day,
            kind: kind.as_str().into(),
            name: name.into(),
        };
        if insert_day(tx, &d)? {
            report.added += 1;
        } else {
            report.skipped += 1;
        }
    }
    if report.added > 0 {
        let changes = Changes::new()
            .created("preset", &format!("{country} {}", input.year.unwrap_or_default()))
            .created("branch_id", &input.branch_id)
            .created("added", &report.added);
        audit::record(tx, who, "load_preset", "approval_holiday", input.branch_id, &changes)?;
    }
    Ok(report)
}

/// Built-in public holidays. China: the State Council's yearly notice (放假调休, with the
/// make-up working days). South Korea: the government's public holidays (관공서의 공휴일)
/// with substitute holidays (대체공휴일) and election days; lunar dates as the Korea
/// Astronomy and Space Science Institute reckons them in Korean time (Seollal 2027 is
/// 7 February in Korea, a day after the Chinese New Year).
pub mod presets {
    use chrono::NaiveDate;

    use super::DayKind;

    pub const COUNTRIES: [&str; 2] = ["CN", "KR"];

    type Entry = (u32, u32, DayKind, &'static str);
    use DayKind::{Holiday as H, Working as W};

    const CN_2026: &[Entry] = &[
        (1, 1, H, "元旦"),
        (1, 2, H, "元旦"),
        (1, 3, H, "元旦"),
        (1, 4, W, "元旦调休上班"),
        (2, 14, W, "春节调休上班"),
        (2, 15, H, "春节"),
        (2, 16, H, "春节"),
        (2, 17, H, "春节"),
        (2, 18, H, "春节"),
        (2, 19, H, "春节"),
        (2, 20, H, "春节"),
        (2, 21, H, "春节"),
        (2, 22, H, "春节"),
        (2, 23, H, "春节"),
        (2, 28, W, "春节调休上班"),
        (4, 4, H, "清明节"),
        (4, 5, H, "清明节"),
        (4, 6, H, "清明节"),
        (5, 1, H, "劳动节"),
        (5, 2, H, "劳动节"),
        (5, 3, H, "劳动节"),
        (5, 4, H, "劳动节"),
        (5, 5, H, "劳动节"),
        (5, 9, W, "劳动节调休上班"),
        (6, 19, H, "端午节"),
        (6, 20, H, "端午节"),
        (6, 21, H, "端午节"),
        (9, 20, W, "国庆节调休上班"),
        (9, 25, H, "中秋节"),
        (9, 26, H, "中秋节"),
        (9, 27, H, "中秋节"),
        (10, 1, H, "国庆节"),
        (10, 2, H, "国庆节"),
        (10, 3, H, "国庆节"),
        (10, 4, H, "国庆节"),
        (10, 5, H, "国庆节"),
        (10, 6, H, "国庆节"),
        (10, 7, H, "国庆节"),
        (10, 10, W, "国庆节调休上班"),
    ];

    const KR_2026: &[Entry] = &[
        (1, 1, H, "신정"),
        (2, 16, H, "설날 연휴"),
        (2, 17, H, "설날"),
        (2, 18, H, "설날 연휴"),
        (3, 1, H, "삼일절"),
        (3, 2, H, "대체공휴일 (삼일절)"),
        (5, 5, H, "어린이날"),
        (5, 24, H, "부처님오신날"),
        (5, 25, H, "대체공휴일 (부처님오신날)"),
        (6, 3, H, "전국동시지방선거"),
        (6, 6, H, "현충일"),
        (7, 17, H, "제헌절"),
        (8, 15, H, "광복절"),
        (8, 17, H, "대체공휴일 (광복절)"),
        (9, 24, H, "추석 연휴"),
        (9, 25, H, "추석"),
        (9, 26, H, "추석 연휴"),
        (10, 3, H, "개천절"),
        (10, 5, H, "대체공휴일 (개천절)"),
        (10, 9, H, "한글날"),
        (12, 25, H, "기독탄신일"),
    ];

    const KR_2027: &[Entry] = &[
        (1, 1, H, "신정"),
        (2, 6, H, "설날 연휴"),
        (2, 7, H, "설날"),
        (2, 8, H, "설날 연휴"),
        (2, 9, H, "대체공휴일 (설날)"),
        (3, 1, H, "삼일절"),
        (5, 5, H, "어린이날"),
        (5, 13, H, "부처님오신날"),
        (6, 6, H, "현충일"),
        (7, 17, H, "제헌절"),
        (8, 15, H, "광복절"),
        (8, 16, H, "대체공휴일 (광복절)"),
        (9, 14, H, "추석 연휴"),
        (9, 15, H, "추석"),
        (9, 16, H, "추석 연휴"),
        (10, 3, H, "개천절"),
        (10, 4, H, "대체공휴일 (개천절)"),
        (10, 9, H, "한글날"),
        (10, 11, H, "대체공휴일 (한글날)"),
        (12, 25, H, "기독탄신일"),
        (12, 27, H, "대체공휴일 (기독탄신일)"),
    ];

    fn table(country: &str, year: i32) -> Option<&'static [Entry]> {
        match (country, year) {
            ("CN", 2026) => Some(CN_2026),
            ("KR", 2026) => Some(KR_2026),
            ("KR", 2027) => Some(KR_2027),
            _ => None,
        }
    }

    /// The years built in for `country`.
    pub fn years(country: &str) -> Vec<i32> {
        (2026..=2027).filter(|y| table(country, *y).is_some()).collect()
    }

    /// The days of `country`'s preset for `year`, if built in.
    pub fn days(country: &str, year: i32) -> Option<Vec<(NaiveDate, DayKind, &'static str)>> {
        let entries = table(country, year)?;
        Some(
            entries
                .iter()
                .filter_map(|(m, d, kind, name)| Some((NaiveDate::from_ymd_opt(year, *m, *d)?, *kind, *name)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::Weekday;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
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

    fn week(json: serde_json::Value) -> Result<Week> {
        let map: BTreeMap<String, Vec<Interval>> = serde_json::from_value(json).unwrap();
        Week::parse(&map)
    }

    #[test]
    fn lunch_breaks_saturday_half_days_and_make_up_days() {
        let sh: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let w = week(serde_json::json!({
            "mon": [{"start": "13:00", "end": "18:00"}, {"start": "09:00", "end": "12:00"}],
            "tue": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "wed": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "thu": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "fri": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "sat": [{"start": "9:00", "end": "12:00"}],
        }))
        .unwrap();
        assert_eq!(w.0[0], vec![(9 * 3600, 12 * 3600), (13 * 3600, 18 * 3600)], "sorted");
        assert!(w.0[6].is_empty());
        let mut cal = Calendar { tz: sh, week: w, days: BTreeMap::new() };
        // Monday 2026-03-09, 11:00 to 14:00 local: the lunch hour does not count.
        assert_eq!(cal.working_seconds(at("2026-03-09T03:00:00Z"), at("2026-03-09T06:00:00Z")), 2 * 3600);
        // A whole Monday is 8 hours; Saturday 3; Sunday none; the week 5×8+3.
        assert_eq!(cal.working_seconds(at("2026-03-08T16:00:00Z"), at("2026-03-09T16:00:00Z")), 8 * 3600);
        assert_eq!(cal.working_seconds(at("2026-03-13T16:00:00Z"), at("2026-03-15T16:00:00Z")), 3 * 3600);
        assert_eq!(cal.working_seconds(at("2026-03-08T16:00:00Z"), at("2026-03-15T16:00:00Z")), 43 * 3600);
        // 11:30 Monday plus one working hour is 13:30 (after lunch).
        assert_eq!(cal.add_working_seconds(at("2026-03-09T03:30:00Z"), 3600), at("2026-03-09T05:30:00Z"));
        // Friday 17:00 plus two hours: one Friday, one Saturday morning (10:00).
        assert_eq!(cal.add_working_seconds(at("2026-03-13T09:00:00Z"), 2 * 3600), at("2026-03-14T02:00:00Z"));
        // A make-up working Sunday (调休) is worked on Monday's hours; a holiday Saturday is not.
        cal.days.insert(date("2026-03-15"), DayKind::Working);
        cal.days.insert(date("2026-03-14"), DayKind::Holiday);
        assert_eq!(date("2026-03-15").weekday(), Weekday::Sun);
        assert_eq!(cal.working_seconds(at("2026-03-13T16:00:00Z"), at("2026-03-15T16:00:00Z")), 8 * 3600);
        assert_eq!(cal.add_working_seconds(at("2026-03-13T09:00:00Z"), 2 * 3600), at("2026-03-15T02:00:00Z"));
        // Inverse, across breaks, half-days and special days.
        let from = at("2026-03-12T02:10:00Z");
        for minutes in [0, 30, 170, 181, 480, 1000, 5000] {
            let to = cal.add_working_seconds(from, minutes * 60);
            assert_eq!(cal.working_seconds(from, to), minutes * 60, "{minutes}");
        }
        // An interval may end at midnight.
        let late = week(serde_json::json!({"mon": [{"start": "20:00", "end": "24:00"}]})).unwrap();
        let late = Calendar { tz: sh, week: late, days: BTreeMap::new() };
        assert_eq!(late.working_seconds(at("2026-03-08T16:00:00Z"), at("2026-03-10T16:00:00Z")), 4 * 3600);
    }

    #[test]
    fn bad_weeks_name_the_field() {
        let fields = |json| match week(json) {
            Err(Error::Validation(errors)) => errors.into_iter().map(|e| e.field).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let bad = serde_json::json!({
            "mon": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "18:00"}],
            "tue": [{"start": "18:00", "end": "09:00"}],
            "wed": [{"start": "9", "end": "12:00"}],
            "thu": [{"start": "09:00", "end": "24:30"}],
            "someday": [],
        });
        assert_eq!(
            fields(bad),
            ["week.mon[1].start", "week.someday", "week.thu[0].end", "week.tue[0].end", "week.wed[0].start"]
        );
    }

    #[test]
    fn presets_fall_on_the_right_days() {
        for country in presets::COUNTRIES {
            for year in presets::years(country) {
                let days = presets::days(country, year).unwrap();
                let dates: BTreeSet<_> = days.iter().map(|d| d.0).collect();
                assert_eq!(dates.len(), days.len(), "{country} {year}: one entry per date");
                // Make-up working days are weekend days.
                for (d, kind, _) in &days {
                    if *kind == DayKind::Working {
                        assert!(matches!(d.weekday(), Weekday::Sat | Weekday::Sun), "{d}");
                    }
                }
            }
        }
        assert_eq!(presets::years("CN"), [2026]);
        assert_eq!(presets::years("KR"), [2026, 2027]);
        // Korean substitute holidays are Mondays or, after Seollal 2027, Tuesday.
        let kr = presets::days("KR", 2027).unwrap();
        let subs: Vec<_> = kr.iter().filter(|d| d.2.starts_with("대체")).map(|d| d.0.weekday()).collect();
        assert_eq!(subs, [Weekday::Tue, Weekday::Mon, Weekday::Mon, Weekday::Mon, Weekday::Mon]);
        let seollal = kr.iter().find(|d| d.2 == "설날").unwrap().0;
        assert_eq!((seollal, seollal.weekday()), (date("2027-02-07"), Weekday::Sun));
        // China 2026: the 9-day Spring Festival, and 14 and 28 February worked.
        let cn = presets::days("CN", 2026).unwrap();
        assert_eq!(cn.iter().filter(|d| d.2 == "春节").count(), 9);
        assert_eq!(cn.iter().filter(|d| d.1 == DayKind::Working).count(), 6);
    }
}
