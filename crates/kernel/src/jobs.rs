//! Durable background jobs: imports, sends, rollups — anything too slow for a request.
//!
//! # How a job lives
//!
//! * [`enqueue`] writes a `jobs` row **in the caller's transaction**. A job is therefore
//!   an outbox row: it exists if and only if the change that asked for it committed, and
//!   a rolled-back request leaves no job behind.
//! * A [`Worker`] (one or more per node, each on its own plain thread) claims one due job
//!   at a time. On PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED`, so any number of
//!   nodes can share one queue without two of them taking the same job; on SQLite writes
//!   are serialised anyway.
//! * A claim is a **lease**: the job is `running`, owned by the worker's node name until
//!   `locked_until`. [`JobContext::progress`] renews the lease. If a node dies, its lease
//!   runs out and another worker claims the job again. Every claim increments `attempts`,
//!   and `(locked_by, attempts)` fences each claim: a worker that lost its lease cannot
//!   overwrite the outcome recorded by the worker that took over.
//! * A handler returns a result (→ `done`), a [`JobError::Retryable`] (→ `queued` again
//!   after an exponential back-off, until `max_attempts`, then `failed`) or a
//!   [`JobError::Permanent`] (→ `failed` at once). A panic counts as retryable and never
//!   takes the worker thread down. A kind no handler is registered for fails at once.
//!
//! # Every job kind must be idempotent
//!
//! Delivery is **at least once**: a handler can run again after it did (part of) its work
//! — the node died before recording the outcome, the lease expired during a long pause,
//! the outcome's write failed. Write handlers so that running them twice has the same
//! effect as running them once: key writes on the job id or on natural keys, upsert
//! rather than insert, check "already sent" markers before sending, and commit work in
//! chunks that remember how far they got.
//!
//! # Progress
//!
//! A handler calls [`JobContext::progress`] as it goes (at least once per lease, default
//! five minutes). Each write is its own short transaction, and emits a `job.progress`
//! event to the user who created the job, so the UI can show a live bar. Writes are
//! throttled to about four a second; the final state is always written.
use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_query::Value;
use serde::Serialize;

use crate::db::{Backend, Db, DbError, FromRow, Row, Tx};
use crate::events::Event;
use crate::id::Id;
use crate::paging::{Page, PageRequest, id_cursor};
use crate::principal::Principal;

/// The event kind the UI listens to for live job state.
pub const PROGRESS_EVENT: &str = "job.progress";

/// The housekeeping job: purges expired sessions and old login failures. Queued at
/// start-up and on demand from the jobs page.
pub const MAINTENANCE_KIND: &str = "system.cleanup";

/// Who may see every job, not only the ones they started.
pub const READ_ALL_PERMISSION: &str = "system.jobs.read";

/// Attempts a job gets unless [`NewJob::max_attempts`] says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The longest wait between two attempts, however many attempts failed.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// How long a claim lasts without a [`JobContext::progress`] call, unless
/// [`Worker::with_lease`] says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

/// How often an idle worker looks for due jobs, unless [`Worker::with_poll_interval`]
/// says otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

// Four progress writes a second are plenty for a progress bar and cost nothing next to
// the job itself; a handler that reports every row of a million-row import must not
// turn into a million transactions.
const PROGRESS_THROTTLE: Duration = Duration::from_millis(250);

// Every column of `Job`, in one place so the claim's RETURNING and `get` agree.
const JOB_COLUMNS: &str = "id, kind, status, progress, message, attempts, max_attempts, run_at, \
                           last_error, result, created_by, created_at, updated_at";

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for `run_at` and a free worker (also after a retryable failure).
    Queued,
    /// Claimed by a worker whose lease has not run out.
    Running,
    Done,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(JobStatus::Queued),
            "running" => Some(JobStatus::Running),
            "done" => Some(JobStatus::Done),
            "failed" => Some(JobStatus::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as the UI and API see it. The payload is left out on purpose: it is the
/// handler's input and may hold data the viewer should not see.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: Id,
    pub kind: String,
    pub status: JobStatus,
    /// 0 to 1.
    pub progress: f64,
    /// What the handler last said it was doing.
    pub message: Option<String>,
    /// Claims so far, the running one included.
    pub attempts: u32,
    pub max_attempts: u32,
    /// When the job becomes due (again, after a retryable failure).
    #[schema(value_type = String, format = DateTime)]
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// What the handler returned, once `done`.
    pub result: Option<serde_json::Value>,
    pub created_by: Option<Id>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

fn count_column(row: &Row<'_>, name: &str) -> Result<u32, DbError> {
    let n: i64 = row.get(name)?;
    u32::try_from(n).map_err(|e| DbError::Column { column: name.to_owned(), message: e.to_string() })
}

impl FromRow for Job {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        let status: String = row.get("status")?;
        Ok(Job {
            id: row.get("id")?,
            kind: row.get("kind")?,
            status: JobStatus::parse(&status).ok_or_else(|| DbError::Column {
                column: "status".into(),
                message: format!("unknown job status {status:?}"),
            })?,
            progress: row.get("progress")?,
            message: row.get("message")?,
            attempts: count_column(row, "attempts")?,
            max_attempts: count_column(row, "max_attempts")?,
            run_at: row.get("run_at")?,
            last_error: row.get("last_error")?,
            result: row.get("result")?,
            created_by: row.get("created_by")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
        })
    }
}

/// Everything [`enqueue_with`] needs; [`NewJob::new`] fills in the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    pub payload: serde_json::Value,
    /// The user to tell about progress, and who may see the job.
    pub created_by: Option<Id>,
    /// At least 1; 0 is treated as 1.
    pub max_attempts: u32,
    /// Not before this instant; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        NewJob { kind: kind.into(), payload, created_by: None, max_attempts: DEFAULT_MAX_ATTEMPTS, run_at: None }
    }
}

fn json(value: serde_json::Value) -> Value {
    Value::Json(Some(Box::new(value)))
}

fn at(instant: DateTime<Utc>) -> Value {
    Value::ChronoDateTimeUtc(Some(instant))
}

fn text(s: impl Into<String>) -> Value {
    Value::String(Some(s.into()))
}

fn opt_text(s: Option<String>) -> Value {
    Value::String(s)
}

/// Queues a job of `kind`, due now, with the default number of attempts. Runs in the
/// caller's transaction: the job exists iff that transaction commits.
pub fn enqueue(tx: &mut Tx, kind: &str, payload: serde_json::Value, created_by: Option<Id>) -> Result<Id, DbError> {
    enqueue_with(tx, NewJob { created_by, ..NewJob::new(kind, payload) })
}

/// [`enqueue`] with every option.
pub fn enqueue_with(tx: &mut Tx, job: NewJob) -> Result<Id, DbError> {
    let id = Id::new();
    let now = Utc::now();
    tx.execute_sql(
        "INSERT INTO jobs (id, kind, payload, status, progress, attempts, max_attempts, run_at, \
                           created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, 'queued', 0, 0, $4, $5, $6, $7, $7)",
        &[
            id.into(),
            text(job.kind),
            json(job.payload),
            Value::BigInt(Some(i64::from(job.max_attempts.max(1)))),
            at(job.run_at.unwrap_or(now)),
            Value::BigInt(job.created_by.map(Id::get)),
            at(now),
        ],
    )?;
    Ok(id)
}

/// The job `id`, or `None` if there is no such job.
pub fn get(tx: &mut Tx, id: Id) -> Result<Option<Job>, DbError> {
    tx.query_opt_sql(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"), &[id.into()])
}

/// Whether `who` may see `job`: its creator, or a holder of [`READ_ALL_PERMISSION`].
pub fn visible_to(job: &Job, who: &Principal) -> bool {
    job.created_by == Some(who.user_id) || who.can(READ_ALL_PERMISSION)
}

/// The jobs `who` may see, newest first: the ones they started, or every job for
/// holders of [`READ_ALL_PERMISSION`]. The limit is part of the query, so a page never
/// holds fewer rows than it could because of other users' jobs.
pub fn list(tx: &mut Tx, who: &Principal, page: &PageRequest) -> crate::Result<Page<Job>> {
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if !who.can(READ_ALL_PERMISSION) {
        params.push(Value::BigInt(Some(who.user_id.get())));
        conditions.push(format!("created_by = ${}", params.len()));
    }
    if let Some(cursor) = &page.cursor {
        params.push(Value::BigInt(Some(cursor.id)));
        conditions.push(format!("id < ${}", params.len()));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    // Ids grow with time (see `Id`), so the id orders jobs by creation and is the key.
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs{filter} ORDER BY id DESC LIMIT {}", page.fetch_limit());
    let rows: Vec<Job> = tx.query_sql(&sql, &params)?;
    Ok(Page::from_rows(rows, page, |job| id_cursor(job.id)))
}

/// Why a handler did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Might work later (a timeout, a busy server, a lock): re-queued with back-off
    /// until the job runs out of attempts.
    #[error("{0}")]
    Retryable(String),
    /// Will never work (bad payload, the record is gone): failed at once.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn retryable(reason: impl fmt::Display) -> Self {
        JobError::Retryable(reason.to_string())
    }

    pub fn permanent(reason: impl fmt::Display) -> Self {
        JobError::Permanent(reason.to_string())
    }
}

impl From<DbError> for JobError {
    /// Database trouble is usually passing (a restart, a dropped connection, a
    /// serialisation failure); and when it is not, attempts run out anyway.
    fn from(e: DbError) -> Self {
        JobError::Retryable(e.to_string())
    }
}

/// What runs a job of one kind: the payload in, a JSON result out.
pub type Handler = Arc<dyn Fn(&JobContext, serde_json::Value) -> Result<serde_json::Value, JobError> + Send + Sync>;

/// Which handler runs which job kind. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<&str> = self.kinds().collect();
        kinds.sort_unstable();
        f.debug_struct("Registry").field("kinds", &kinds).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the handler for `kind`. Registering a kind twice is a wiring mistake:
    /// debug builds panic, release builds keep the later handler.
    pub fn register<F>(&mut self, kind: &str, handler: F) -> &mut Self
    where
        F: Fn(&JobContext, serde_json::Value) -> Result<serde_json::Value, JobError> + Send + Sync + 'static,
    {
        let previous = self.handlers.insert(kind.to_owned(), Arc::new(handler));
        debug_assert!(previous.is_none(), "job kind {kind:?} registered twice");
        self
    }

    /// [`Registry::register`] in builder form.
    pub fn with<F>(mut self, kind: &str, handler: F) -> Self
    where
        F: Fn(&JobContext, serde_json::Value) -> Result<serde_json::Value, JobError> + Send + Sync + 'static,
    {
        self.register(kind, handler);
        self
    }

    pub fn handler(&self, kind: &str) -> Option<&Handler> {
        self.handlers.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}

/// What time it is, as far as the worker is concerned; tests move it forward.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How long to wait before the next attempt after `attempts` failed ones:
/// 2^attempts seconds, at most [`MAX_RETRY_DELAY`].
pub fn retry_delay(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(31)).min(MAX_RETRY_DELAY)
}

fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    // A century is "never" for a lease or a back-off, and keeps the instant within what
    // both backends store (and, on SQLite, within four-digit years that sort as text).
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    chrono::Duration::from_std(by.min(CENTURY)).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(now)
}

/// The progress a handler reported last, and when it was last written.
struct Reported {
    fraction: f64,
    message: Option<String>,
    written_at: Option<Instant>,
}

/// What a handler gets besides its payload.
pub struct JobContext {
    db: Db,
    job_id: Id,
    kind: String,
    created_by: Option<Id>,
    attempt: u32,
    node: String,
    lease: Duration,
    clock: Clock,
    stop: Arc<AtomicBool>,
    reported: Mutex<Reported>,
}

impl JobContext {
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn job_id(&self) -> Id {
        self.job_id
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn created_by(&self) -> Option<Id> {
        self.created_by
    }

    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// True once the worker was asked to shut down. A long handler may return
    /// [`JobError::Retryable`] early so the job resumes on another node sooner.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Reports how far the job got (`fraction` from 0 to 1) and what it is doing, and
    /// renews the lease. Calls within a quarter second of the last write are only
    /// remembered (the final state is written when the handler returns), except
    /// `fraction >= 1`, which is always written.
    ///
    /// Fails with a [`JobError::Retryable`] when this worker no longer holds the job
    /// (its lease ran out and another worker took over): the handler should stop.
    ///
    /// Call it between units of work, never inside one: it opens its own write, and on
    /// SQLite a write inside a write waits for itself forever.
    pub fn progress(&self, fraction: f64, message: &str) -> Result<(), JobError> {
        let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        {
            let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
            reported.fraction = fraction;
            reported.message = Some(message.to_owned());
            let recent = reported.written_at.is_some_and(|t| t.elapsed() < PROGRESS_THROTTLE);
            if recent && fraction < 1.0 {
                return Ok(());
            }
            reported.written_at = Some(Instant::now());
        }
        let now = (self.clock)();
        let updated = self.db.write_blocking(|tx| -> Result<u64, DbError> {
            let updated = tx.execute_sql(
                "UPDATE jobs SET progress = $1, message = $2, locked_until = $3, updated_at = $4 \
                 WHERE id = $5 AND locked_by = $6 AND attempts = $7 AND status = 'running'",
                &[
                    Value::Double(Some(fraction)),
                    text(message),
                    at(later(now, self.lease)),
                    at(now),
                    self.job_id.into(),
                    text(self.node.as_str()),
                    Value::BigInt(Some(i64::from(self.attempt))),
                ],
            )?;
            if updated == 1
                && let Some(event) = progress_event(
                    self.job_id,
                    &self.kind,
                    self.created_by,
                    JobStatus::Running,
                    fraction,
                    Some(message),
                )
            {
                tx.emit(event);
            }
            Ok(updated)
        })?;
        if updated == 0 {
            return Err(JobError::Retryable(format!(
                "job {} is no longer held by {} (attempt {}): its lease ran out and another worker took it over",
                self.job_id, self.node, self.attempt
            )));
        }
        Ok(())
    }

    fn last_reported(&self) -> (f64, Option<String>) {
        let reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        (reported.fraction, reported.message.clone())
    }
}

fn progress_event(
    job_id: Id,
    kind: &str,
    created_by: Option<Id>,
    status: JobStatus,
    progress: f64,
    message: Option<&str>,
) -> Option<Event> {
    let user = created_by?;
    Some(Event::for_user(
        PROGRESS_EVENT,
        user.get(),
        serde_json::json!({
            "job_id": job_id.to_string(),
            "kind": kind,
            "status": status.as_str(),
            "progress": progress,
            "message": message,
        }),
    ))
}

/// A claimed job: the public view plus the handler's input.
struct Claimed {
    job: Job,
    payload: serde_json::Value,
}

impl FromRow for Claimed {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
        Ok(Claimed { job: Job::from_row(row)?, payload: row.get("payload")? })
    }
}

/// How one attempt ended.
enum Outcome {
    Done(serde_json::Value),
    Retry { error: String, run_at: DateTime<Utc> },
    Failed(String),
}

/// Runs due jobs. [`Worker::run_once`] for one job at a time, [`Worker::spawn`] for a
/// background loop on its own thread.
pub struct Worker {
    db: Db,
    registry: Registry,
    node: String,
    clock: Clock,
    lease: Duration,
    poll_interval: Duration,
    stop: Arc<AtomicBool>,
}

impl Worker {
    /// `node` names this worker in `locked_by`; make it unique per process (host name
    /// plus process id, say) so an operator can tell whose lease a job holds.
    pub fn new(db: Db, registry: Registry, node: impl Into<String>) -> Self {
        Worker {
            db,
            registry,
            node: node.into(),
            clock: Arc::new(Utc::now),
            lease: DEFAULT_LEASE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Replaces the wall clock (for tests: make back-offs and leases pass instantly).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// How long a claim lasts without a progress call before another worker may take
    /// the job over. Longer means slower recovery from a dead node; shorter means a
    /// handler must report progress more often.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Claims one due job (or one whose lease ran out), runs it and records the
    /// outcome. Returns whether there was a job to run. An `Err` is database trouble;
    /// a failing job is recorded on the job and is not an error here.
    pub fn run_once(&self) -> Result<bool, DbError> {
        let Some(claimed) = self.claim()? else {
            return Ok(false);
        };
        let Claimed { job, payload } = claimed;
        let ctx = JobContext {
            db: self.db.clone(),
            job_id: job.id,
            kind: job.kind.clone(),
            created_by: job.created_by,
            attempt: job.attempts,
            node: self.node.clone(),
            lease: self.lease,
            clock: self.clock.clone(),
            stop: self.stop.clone(),
            reported: Mutex::new(Reported { fraction: job.progress, message: job.message.clone(), written_at: None }),
        };

        tracing::debug!(job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempts,
            job.last_error = job.last_error.as_deref().unwrap_or(""), "job claimed");
        let outcome = if job.attempts > job.max_attempts {
            // Only a reclaim gets here (a retry is never queued past the last attempt):
            // the last attempt's worker stopped mid-way, and the claim said so in
            // `last_error`.
            Outcome::Failed(format!(
                "gave up after {} attempts: {}",
                job.max_attempts,
                job.last_error.as_deref().unwrap_or("the last attempt did not finish"),
            ))
        } else {
            self.execute(&ctx, &job, payload)
        };
        self.finish(&ctx, outcome)?;
        Ok(true)
    }

    fn claim(&self) -> Result<Option<Claimed>, DbError> {
        let now = (self.clock)();
        // A job is claimable when it is queued and due, or when it is running under a
        // lease that ran out (its worker died or hung). Writes on SQLite are serialised,
        // so the plain subquery is enough there; PostgreSQL needs row locks that other
        // claimers skip instead of waiting for.
        self.db.write_blocking(|tx| {
            let lock = match tx.backend() {
                Backend::Sqlite => "",
                Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            };
            let sql = format!(
                "UPDATE jobs SET status = 'running', locked_by = $1, locked_until = $2, \
                        attempts = attempts + 1, updated_at = $3, \
                        last_error = CASE WHEN status = 'running' \
                            THEN 'the lease of ' || COALESCE(locked_by, '?') || ' ran out before it finished' \
                            ELSE last_error END \
                 WHERE id = (SELECT id FROM jobs \
                             WHERE (status = 'queued' AND run_at <= $3) \
                                OR (status = 'running' AND locked_until < $3) \
                             ORDER BY run_at, id LIMIT 1 {lock}) \
                 RETURNING {JOB_COLUMNS}, payload"
            );
            let claimed: Option<Claimed> =
                tx.query_opt_sql(&sql, &[text(self.node.as_str()), at(later(now, self.lease)), at(now)])?;
            if let Some(Claimed { job, .. }) = &claimed
                && let Some(event) = progress_event(
                    job.id,
                    &job.kind,
                    job.created_by,
                    JobStatus::Running,
                    job.progress,
                    job.message.as_deref(),
                )
            {
                tx.emit(event);
            }
            Ok(claimed)
        })
    }

    fn execute(&self, ctx: &JobContext, job: &Job, payload: serde_json::Value) -> Outcome {
        let Some(handler) = self.registry.handler(&job.kind) else {
            return Outcome::Failed(format!(
                "no handler is registered for job kind {:?} on worker {}",
                job.kind, self.node
            ));
        };
        let started = Instant::now();
        // The handler is not trusted to leave shared state consistent after a panic,
        // but it shares nothing with this loop except `ctx`, which is dropped after.
        let result = catch_unwind(AssertUnwindSafe(|| handler(ctx, payload))).unwrap_or_else(|panic| {
            Err(JobError::Retryable(format!("the handler panicked: {}", panic_message(&*panic))))
        });
        let elapsed_ms = started.elapsed().as_millis();
        match result {
            Ok(value) => {
                tracing::info!(job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempts, elapsed_ms, "job done");
                Outcome::Done(value)
            }
            Err(JobError::Retryable(error)) if job.attempts < job.max_attempts => {
                let delay = retry_delay(job.attempts);
                tracing::warn!(job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempts,
                    job.retry_in_s = delay.as_secs(), error = %error, "job failed; will retry");
                Outcome::Retry { error, run_at: later((self.clock)(), delay) }
            }
            Err(JobError::Retryable(error)) => {
                tracing::error!(job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempts,
                    error = %error, "job failed on its last attempt");
                Outcome::Failed(error)
            }
            Err(JobError::Permanent(error)) => {
                tracing::error!(job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempts,
                    error = %error, "job failed permanently");
                Outcome::Failed(error)
            }
        }
    }

    /// Records how the attempt ended, if this worker still holds the job.
    fn finish(&self, ctx: &JobContext, outcome: Outcome) -> Result<(), DbError> {
        let (fraction, message) = ctx.last_reported();
        let (status, fraction, error, result, run_at) = match outcome {
            Outcome::Done(value) => (JobStatus::Done, 1.0, None, Some(value), None),
            Outcome::Retry { error, run_at } => (JobStatus::Queued, fraction, Some(error), None, Some(run_at)),
            Outcome::Failed(error) => (JobStatus::Failed, fraction, Some(error), None, None),
        };
        let now = (self.clock)();
        let recorded = self.db.write_blocking(|tx| -> Result<u64, DbError> {
            let updated = tx.execute_sql(
                "UPDATE jobs SET status = $1, progress = $2, message = $3, \
                        last_error = COALESCE($4, last_error), result = $5, run_at = COALESCE($6, run_at), \
                        locked_by = NULL, locked_until = NULL, updated_at = $7 \
                 WHERE id = $8 AND locked_by = $9 AND attempts = $10 AND status = 'running'",
                &[
                    text(status.as_str()),
                    Value::Double(Some(fraction)),
                    opt_text(message.clone()),
                    opt_text(error),
                    Value::Json(result.map(Box::new)),
                    Value::ChronoDateTimeUtc(run_at),
                    at(now),
                    ctx.job_id.into(),
                    text(self.node.as_str()),
                    Value::BigInt(Some(i64::from(ctx.attempt))),
                ],
            )?;
            if updated == 1
                && let Some(event) =
                    progress_event(ctx.job_id, &ctx.kind, ctx.created_by, status, fraction, message.as_deref())
            {
                tx.emit(event);
            }
            Ok(updated)
        })?;
        if recorded == 0 {
            // Another worker took the job over after this one's lease ran out; its
            // outcome wins, and the job being idempotent makes the double run harmless.
            tracing::warn!(job.id = %ctx.job_id, job.kind = %ctx.kind, job.attempt = ctx.attempt,
                "job outcome discarded: the lease ran out and another worker took the job over");
        }
        Ok(())
    }

    /// Runs the worker loop on a dedicated thread until the handle is shut down or
    /// dropped. A plain thread, not a tokio task: handlers block, and the synchronous
    /// PostgreSQL client must never be dropped on an async thread.
    pub fn spawn(self) -> std::io::Result<WorkerHandle> {
        let stop = self.stop.clone();
        let (wake, woken) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            // An interior NUL would make `spawn` panic; the name is only for humans.
            .name(format!("jobs-{}", self.node.replace('\0', "")))
            .spawn(move || self.run_loop(&woken))?;
        Ok(WorkerHandle { stop, wake: Some(wake), thread: Some(thread) })
    }

    fn run_loop(&self, woken: &mpsc::Receiver<()>) {
        let mut error_backoff = self.poll_interval;
        while !self.stop.load(Ordering::Relaxed) {
            // `run_once` already contains handler panics; this guards the loop against
            // a bug of its own, so one bad job can never stop all background work.
            let wait = match catch_unwind(AssertUnwindSafe(|| self.run_once())) {
                Ok(Ok(true)) => {
                    error_backoff = self.poll_interval;
                    continue;
                }
                Ok(Ok(false)) => {
                    error_backoff = self.poll_interval;
                    self.poll_interval
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, worker = %self.node, "job worker cannot reach the database; retrying");
                    error_backoff = (error_backoff * 2).min(Duration::from_secs(30));
                    error_backoff
                }
                Err(panic) => {
                    tracing::error!(panic = %panic_message(&*panic), worker = %self.node, "job worker loop panicked");
                    error_backoff = (error_backoff * 2).min(Duration::from_secs(30));
                    error_backoff
                }
            };
            match woken.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// Controls a spawned [`Worker`]. Dropping it stops the worker and waits for the job
/// in hand to finish, like [`WorkerHandle::shutdown`]. That wait blocks: in async code,
/// shut down from `spawn_blocking`.
pub struct WorkerHandle {
    stop: Arc<AtomicBool>,
    wake: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Makes an idle worker look for jobs now instead of at its next poll (call it
    /// after enqueueing something urgent on this node).
    pub fn wake(&self) {
        if let Some(wake) = &self.wake {
            // A full or closed channel means the worker is already awake or gone.
            let _ = wake.send(());
        }
    }

    /// Stops the loop after the job in hand and waits for the thread to end.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the sender ends an idle wait at once.
        self.wake.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("job worker thread panicked");
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
