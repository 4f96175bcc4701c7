//! Background jobs, on SQLite and (when `RAPPORT_TEST_DATABASE_URL` is set) PostgreSQL.
//!
//! No test sleeps to let time pass: workers get a hand-driven clock, so back-offs and
//! leases expire when the test says so.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on the first surprise")]
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kernel::events::Event;
use kernel::jobs::{self, Clock, Job, JobError, JobStatus, NewJob, Registry, Worker};
use kernel::testing::test_databases;
use kernel::{Db, DbError, Id};
use serde_json::json;

/// A clock that stands still until the test moves it.
#[derive(Clone)]
struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    fn starting_now() -> Self {
        ManualClock(Arc::new(Mutex::new(Utc::now())))
    }

    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }

    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }

    fn advance(&self, by: Duration) {
        let next = self.now() + chrono::Duration::from_std(by).unwrap();
        self.set(next);
    }

    fn clock(&self) -> Clock {
        let this = self.clone();
        Arc::new(move || this.now())
    }
}

fn enqueue(db: &Db, new: NewJob) -> Id {
    db.write_blocking(|tx| jobs::enqueue_with(tx, new)).unwrap()
}

fn job(db: &Db, id: Id) -> Job {
    db.read_blocking(|tx| jobs::get(tx, id)).unwrap().expect("job exists")
}

fn count_jobs(db: &Db) -> i64 {
    db.read_blocking(|tx| tx.query_sql::<i64>("SELECT COUNT(*) FROM jobs", &[])).unwrap()[0]
}

/// Waits until PostgreSQL's listener is connected, else its events would be missed.
fn wait_until_listening(db: &Db) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !db.events_connected() {
        assert!(std::time::Instant::now() < deadline, "event listener did not connect");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Collects `job.progress` events for `id` until one reports a final status.
fn events_until_final(rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>, id: Id) -> Vec<Event> {
    events_until_all_final(rx, &[id]).remove(&id).unwrap_or_default()
}

/// Collects `job.progress` events for each of `ids` until each reported a final status.
fn events_until_all_final(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    ids: &[Id],
) -> HashMap<Id, Vec<Event>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let mut seen: HashMap<Id, Vec<Event>> = HashMap::new();
    let mut open: Vec<Id> = ids.to_vec();
    while !open.is_empty() {
        let received = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(20), rx.recv()).await })
            .unwrap_or_else(|_| panic!("no final event for jobs {open:?}; saw {seen:?}"));
        let event = match received {
            Ok(event) => (*event).clone(),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(e) => panic!("event hub closed: {e}"),
        };
        let Some(id) = ids.iter().copied().find(|id| event.payload["job_id"] == json!(id.to_string())) else {
            continue;
        };
        if event.kind != jobs::PROGRESS_EVENT {
            continue;
        }
        if matches!(event.payload["status"].as_str(), Some("done" | "failed")) {
            open.retain(|&o| o != id);
        }
        seen.entry(id).or_default().push(event);
    }
    seen
}

#[test]
fn a_job_runs_to_done_with_its_result() {
    for test in test_databases() {
        let db = test.db();
        let user = Id::new();
        let registry = Registry::new().with("echo", move |ctx, payload| {
            assert_eq!(ctx.created_by(), Some(user));
            assert_eq!(ctx.attempt(), 1);
            Ok(json!({ "echoed": payload, "job": ctx.job_id().to_string() }))
        });
        let id = db.write_blocking(|tx| jobs::enqueue(tx, "echo", json!({"n": 7}), Some(user))).unwrap();
        let queued = job(&db, id);
        assert_eq!((queued.status, queued.attempts, queued.max_attempts), (JobStatus::Queued, 0, 5));

        let worker = Worker::new(db.clone(), registry, "test-node");
        assert!(worker.run_once().unwrap(), "{:?}: the job ran", db.backend());
        assert!(!worker.run_once().unwrap(), "nothing left to run");

        let done = job(&db, id);
        assert_eq!(done.status, JobStatus::Done);
        assert_eq!(done.result, Some(json!({ "echoed": {"n": 7}, "job": id.to_string() })));
        assert_eq!((done.attempts, done.progress, done.last_error.as_deref()), (1, 1.0, None));
        assert_eq!(done.created_by, Some(user));

        let api = serde_json::to_value(&done).unwrap();
        assert_eq!(api["id"], json!(id.to_string()));
        assert_eq!(api["created_by"], json!(user.to_string()));
        assert_eq!(api["status"], json!("done"));
        assert!(api.get("payload").is_none(), "the payload stays private");
    }
}

#[test]
fn progress_is_recorded_and_announced_to_the_creator() {
    for test in test_databases() {
        let db = test.db();
        wait_until_listening(&db);
        let user = Id::new();
        let seen_mid_run: Arc<Mutex<Option<Job>>> = Arc::default();
        let seen = seen_mid_run.clone();
        let registry = Registry::new().with("import", move |ctx, _| {
            ctx.progress(0.5, "halfway")?;
            let now = ctx.db().read_blocking(|tx| jobs::get(tx, ctx.job_id()))?;
            *seen.lock().unwrap() = now;
            // Probably throttled; the final write must carry this message anyway.
            ctx.progress(0.75, "almost there")?;
            Ok(json!({"rows": 10}))
        });
        let id = db.write_blocking(|tx| jobs::enqueue(tx, "import", json!({}), Some(user))).unwrap();
        let mut rx = db.events().subscribe();
        assert!(Worker::new(db.clone(), registry, "test-node").run_once().unwrap());

        let mid = seen_mid_run.lock().unwrap().clone().expect("handler read its job");
        assert_eq!(mid.status, JobStatus::Running);
        assert_eq!((mid.progress, mid.message.as_deref()), (0.5, Some("halfway")));

        let done = job(&db, id);
        assert_eq!(done.status, JobStatus::Done);
        assert_eq!((done.progress, done.message.as_deref()), (1.0, Some("almost there")));

        let events = events_until_final(&mut rx, id);
        assert!(events.iter().all(|e| e.user_id == Some(user.get())), "{events:?}");
        assert!(
            events.iter().any(|e| e.payload["progress"] == json!(0.5) && e.payload["message"] == json!("halfway")),
            "{:?}: {events:?}",
            db.backend()
        );
        let last = events.last().unwrap();
        assert_eq!(last.payload["status"], json!("done"));
        assert_eq!(last.payload["progress"], json!(1.0));
        assert_eq!(last.payload["message"], json!("almost there"));
    }
}

#[test]
fn a_job_without_a_creator_announces_nothing() {
    for test in test_databases() {
        let db = test.db();
        let mut rx = db.events().subscribe();
        let registry = Registry::new().with("quiet", |ctx, _| {
            ctx.progress(0.5, "halfway")?;
            Ok(json!(null))
        });
        let id = enqueue(&db, NewJob::new("quiet", json!({})));
        assert!(Worker::new(db.clone(), registry, "test-node").run_once().unwrap());
        assert_eq!(job(&db, id).progress, 1.0);
        // On SQLite events are published synchronously on commit, so none means none.
        if db.backend() == kernel::Backend::Sqlite {
            assert!(rx.try_recv().is_err());
        }
    }
}

#[test]
fn a_retryable_failure_is_retried_after_a_back_off() {
    for test in test_databases() {
        let db = test.db();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let registry = Registry::new().with("flaky", move |ctx, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            if ctx.attempt() == 1 { Err(JobError::retryable("the mail server is busy")) } else { Ok(json!("sent")) }
        });
        let id = enqueue(&db, NewJob::new("flaky", json!({})));
        let clock = ManualClock::starting_now();
        let worker = Worker::new(db.clone(), registry, "test-node").with_clock(clock.clock());

        assert!(worker.run_once().unwrap());
        let waiting = job(&db, id);
        assert_eq!(waiting.status, JobStatus::Queued);
        assert_eq!(waiting.attempts, 1);
        assert_eq!(waiting.last_error.as_deref(), Some("the mail server is busy"));
        let expected_run_at = clock.now() + chrono::Duration::from_std(jobs::retry_delay(1)).unwrap();
        assert_eq!(waiting.run_at.timestamp_micros(), expected_run_at.timestamp_micros());

        assert!(!worker.run_once().unwrap(), "backing off");
        clock.set(waiting.run_at);
        assert!(worker.run_once().unwrap());
        let done = job(&db, id);
        assert_eq!((done.status, done.attempts, done.result), (JobStatus::Done, 2, Some(json!("sent"))));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn retry_delay_doubles_and_is_capped() {
    assert_eq!(jobs::retry_delay(1), Duration::from_secs(2));
    assert_eq!(jobs::retry_delay(2), Duration::from_secs(4));
    assert_eq!(jobs::retry_delay(5), Duration::from_secs(32));
    assert_eq!(jobs::retry_delay(12), jobs::MAX_RETRY_DELAY);
    assert_eq!(jobs::retry_delay(u32::MAX), jobs::MAX_RETRY_DELAY);
}

#[test]
fn a_job_fails_after_its_last_attempt_with_the_last_error() {
    for test in test_databases() {
        let db = test.db();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let registry = Registry::new().with("doomed", move |ctx, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            Err(JobError::retryable(format!("timeout on attempt {}", ctx.attempt())))
        });
        let id = enqueue(&db, NewJob { max_attempts: 3, ..NewJob::new("doomed", json!({})) });
        let clock = ManualClock::starting_now();
        let worker = Worker::new(db.clone(), registry, "test-node").with_clock(clock.clock());

        for _ in 0..3 {
            assert!(worker.run_once().unwrap());
            clock.advance(jobs::MAX_RETRY_DELAY);
        }
        assert!(!worker.run_once().unwrap(), "no fourth attempt");
        let failed = job(&db, id);
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.attempts, 3);
        assert_eq!(failed.last_error.as_deref(), Some("timeout on attempt 3"));
        assert_eq!(failed.result, None);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}

#[test]
fn a_permanent_failure_fails_at_once() {
    for test in test_databases() {
        let db = test.db();
        let registry = Registry::new()
            .with("bad", |_, payload| Err(JobError::permanent(format!("no customer {}", payload["id"]))));
        let id = enqueue(&db, NewJob::new("bad", json!({"id": 42})));
        let clock = ManualClock::starting_now();
        let worker = Worker::new(db.clone(), registry, "test-node").with_clock(clock.clock());
        assert!(worker.run_once().unwrap());
        clock.advance(jobs::MAX_RETRY_DELAY);
        assert!(!worker.run_once().unwrap());
        let failed = job(&db, id);
        assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
        assert_eq!(failed.last_error.as_deref(), Some("no customer 42"));
    }
}

#[test]
fn a_panicking_handler_counts_as_a_retryable_failure() {
    for test in test_databases() {
        let db = test.db();
        let registry = Registry::new().with("fragile", |ctx, _| {
            if ctx.attempt() == 1 {
                panic!("index out of bounds in row 3");
            }
            Ok(json!("recovered"))
        });
        let id = enqueue(&db, NewJob::new("fragile", json!({})));
        let clock = ManualClock::starting_now();
        let worker = Worker::new(db.clone(), registry, "test-node").with_clock(clock.clock());

        assert!(worker.run_once().unwrap(), "a panic is recorded, not propagated");
        let retrying = job(&db, id);
        assert_eq!(retrying.status, JobStatus::Queued);
        let error = retrying.last_error.unwrap();
        assert!(error.contains("panicked") && error.contains("index out of bounds in row 3"), "{error}");

        clock.advance(jobs::MAX_RETRY_DELAY);
        assert!(worker.run_once().unwrap());
        assert_eq!(job(&db, id).result, Some(json!("recovered")));
    }
}

#[test]
fn an_unknown_kind_fails_with_a_clear_message() {
    for test in test_databases() {
        let db = test.db();
        let id = enqueue(&db, NewJob::new("no-such-kind", json!({})));
        let worker = Worker::new(db.clone(), Registry::new().with("other", |_, _| Ok(json!(null))), "node-7");
        assert!(worker.run_once().unwrap());
        let failed = job(&db, id);
        assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
        let error = failed.last_error.unwrap();
        assert!(
            error.contains("no handler") && error.contains("\"no-such-kind\"") && error.contains("node-7"),
            "{error}"
        );
    }
}

/// Makes `id` look claimed by a node that then died, its lease ending at `until`.
fn claimed_by_dead_node(db: &Db, id: Id, until: DateTime<Utc>) {
    db.write_blocking(|tx| {
        tx.execute_sql(
            "UPDATE jobs SET status = 'running', locked_by = 'dead-node', locked_until = $1, \
                    attempts = attempts + 1 WHERE id = $2",
            &[sea_query::Value::ChronoDateTimeUtc(Some(until)), id.into()],
        )
    })
    .unwrap();
}

#[test]
fn an_expired_lease_is_reclaimed() {
    for test in test_databases() {
        let db = test.db();
        let registry = Registry::new().with("rollup", |_, _| Ok(json!("rolled up")));
        let id = enqueue(&db, NewJob::new("rollup", json!({})));
        let clock = ManualClock::starting_now();
        let lease_end = clock.now() + chrono::Duration::seconds(60);
        claimed_by_dead_node(&db, id, lease_end);
        let worker = Worker::new(db.clone(), registry, "test-node").with_clock(clock.clock());

        assert!(!worker.run_once().unwrap(), "the lease still holds");
        assert_eq!(job(&db, id).status, JobStatus::Running);

        clock.set(lease_end + chrono::Duration::seconds(1));
        assert!(worker.run_once().unwrap(), "the lease ran out");
        let done = job(&db, id);
        assert_eq!((done.status, done.attempts), (JobStatus::Done, 2));
        assert_eq!(done.result, Some(json!("rolled up")));
        let error = done.last_error.unwrap();
        assert!(error.contains("dead-node"), "the takeover is on record: {error}");
    }
}

#[test]
fn a_job_whose_last_attempt_died_fails_instead_of_running_again() {
    for test in test_databases() {
        let db = test.db();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let registry = Registry::new().with("crashy", move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(json!(null))
        });
        let id = enqueue(&db, NewJob { max_attempts: 1, ..NewJob::new("crashy", json!({})) });
        let clock = ManualClock::starting_now();
        claimed_by_dead_node(&db, id, clock.now() - chrono::Duration::seconds(1));
        let worker = Worker::new(db.clone(), registry, "test-node").with_clock(clock.clock());

        assert!(worker.run_once().unwrap());
        let failed = job(&db, id);
        assert_eq!(failed.status, JobStatus::Failed);
        let error = failed.last_error.unwrap();
        assert!(error.starts_with("gave up after 1 attempts") && error.contains("dead-node"), "{error}");
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn a_worker_that_lost_its_lease_cannot_overwrite_the_outcome() {
    for test in test_databases() {
        let db = test.db();
        let id = enqueue(&db, NewJob::new("send", json!({})));
        // After the enqueue, so the job is due by this clock.
        let clock = ManualClock::starting_now();
        let late_progress: Arc<Mutex<Option<Result<(), JobError>>>> = Arc::default();

        // While the slow worker's handler runs, its lease runs out and a second worker
        // (whose clock is past the lease) takes the job over and finishes it.
        let takeover_db = db.clone();
        let takeover_clock = ManualClock(Arc::new(Mutex::new(clock.now() + chrono::Duration::seconds(120))));
        let late = late_progress.clone();
        let slow = Registry::new().with("send", move |ctx, _| {
            let fast = Registry::new().with("send", |_, _| Ok(json!("sent by fast")));
            let takeover = Worker::new(takeover_db.clone(), fast, "fast-node").with_clock(takeover_clock.clock());
            assert!(takeover.run_once()?);
            *late.lock().unwrap() = Some(ctx.progress(0.9, "still sending"));
            Ok(json!("sent by slow"))
        });
        let worker =
            Worker::new(db.clone(), slow, "slow-node").with_clock(clock.clock()).with_lease(Duration::from_secs(60));
        assert!(worker.run_once().unwrap());

        let progress = late_progress.lock().unwrap().clone().expect("handler reported");
        assert!(matches!(progress, Err(JobError::Retryable(ref e)) if e.contains("no longer held")), "{progress:?}");
        let done = job(&db, id);
        assert_eq!(done.status, JobStatus::Done);
        assert_eq!(done.result, Some(json!("sent by fast")), "the slow worker's outcome was discarded");
        assert_eq!(done.attempts, 2);
    }
}

#[test]
fn a_job_enqueued_in_a_rolled_back_write_does_not_exist() {
    for test in test_databases() {
        let db = test.db();
        let mut enqueued = None;
        let result: Result<(), DbError> = db.write_blocking(|tx| {
            enqueued = Some(jobs::enqueue(tx, "email", json!({"to": "a@example.com"}), None)?);
            Err(DbError::Config("the caller's change failed validation".into()))
        });
        assert!(result.is_err());
        let id = enqueued.expect("enqueue ran before the rollback");
        assert!(db.read_blocking(|tx| jobs::get(tx, id)).unwrap().is_none());
        assert_eq!(count_jobs(&db), 0);
        let worker = Worker::new(db.clone(), Registry::new().with("email", |_, _| Ok(json!(null))), "test-node");
        assert!(!worker.run_once().unwrap());
    }
}

#[test]
fn two_workers_on_two_handles_run_each_job_exactly_once() {
    const JOBS: usize = 50;
    for test in test_databases() {
        let first = test.db();
        // A second handle has its own pool (and, on SQLite, its own writer connection),
        // as a second node would.
        let second = Db::open(&test.url()).unwrap();
        let runs: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
        let registry = {
            let runs = runs.clone();
            Registry::new().with("count", move |ctx, payload| {
                let n = payload["n"].as_u64().ok_or_else(|| JobError::permanent("no n"))?;
                *runs.lock().unwrap().entry(n).or_default() += 1;
                // A little database work per job widens the window for a double claim.
                ctx.progress(0.5, "counting")?;
                Ok(json!(n))
            })
        };
        first
            .write_blocking(|tx| -> Result<(), DbError> {
                for n in 0..JOBS {
                    jobs::enqueue(tx, "count", json!({ "n": n }), None)?;
                }
                Ok(())
            })
            .unwrap();

        let start = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [(first.clone(), "node-a"), (second.clone(), "node-b")]
            .into_iter()
            .map(|(db, node)| {
                let worker = Worker::new(db, registry.clone(), node);
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    let mut ran = 0;
                    while worker.run_once().unwrap() {
                        ran += 1;
                    }
                    ran
                })
            })
            .collect();
        let ran: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();

        assert_eq!(ran.iter().sum::<usize>(), JOBS, "{:?}: per worker {ran:?}", first.backend());
        let runs = runs.lock().unwrap();
        assert_eq!(runs.len(), JOBS);
        assert!(runs.values().all(|&count| count == 1), "{runs:?}");
        let done = first
            .read_blocking(|tx| {
                tx.query_sql::<i64>("SELECT COUNT(*) FROM jobs WHERE status = 'done' AND attempts = 1", &[])
            })
            .unwrap()[0];
        assert_eq!(done, JOBS as i64);
        // The second handle's connections close on this thread, not on an async one.
        drop(second);
    }
}

#[test]
fn a_spawned_worker_survives_panics_and_shuts_down() {
    for test in test_databases() {
        let db = test.db();
        wait_until_listening(&db);
        let user = Id::new();
        let registry = Registry::new().with("explode", |_, _| panic!("boom")).with("fine", |_, payload| Ok(payload));
        let mut rx = db.events().subscribe();
        let exploding =
            enqueue(&db, NewJob { created_by: Some(user), max_attempts: 1, ..NewJob::new("explode", json!({})) });
        let fine = enqueue(&db, NewJob { created_by: Some(user), ..NewJob::new("fine", json!({"ok": true})) });

        let handle =
            Worker::new(db.clone(), registry, "spawned").with_poll_interval(Duration::from_millis(20)).spawn().unwrap();
        handle.wake();
        let events = events_until_all_final(&mut rx, &[exploding, fine]);
        assert_eq!(events[&exploding].last().unwrap().payload["status"], json!("failed"));
        assert_eq!(events[&fine].last().unwrap().payload["status"], json!("done"));
        handle.shutdown();

        assert_eq!(job(&db, fine).result, Some(json!({"ok": true})));
        assert!(job(&db, exploding).last_error.unwrap().contains("boom"));
    }
}

#[test]
fn a_job_can_be_scheduled_for_later() {
    for test in test_databases() {
        let db = test.db();
        let clock = ManualClock::starting_now();
        let later = clock.now() + chrono::Duration::hours(1);
        let id = enqueue(&db, NewJob { run_at: Some(later), ..NewJob::new("reminder", json!({})) });
        let worker =
            Worker::new(db.clone(), Registry::new().with("reminder", |_, _| Ok(json!("reminded"))), "test-node")
                .with_clock(clock.clock());
        assert!(!worker.run_once().unwrap(), "not due yet");
        clock.set(later);
        assert!(worker.run_once().unwrap());
        assert_eq!(job(&db, id).status, JobStatus::Done);
    }
}

/// A user with the given permissions, as `jobs::list` sees them.
fn someone(user: Id, permissions: &[&str]) -> kernel::Principal {
    kernel::Principal {
        user_id: user,
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        ..kernel::Principal::system(kernel::Channel::Ui)
    }
}

fn list_all(db: &Db, who: &kernel::Principal, limit: u32) -> (Vec<Id>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let request = kernel::paging::PageRequest::parse(Some(limit), cursor.as_deref()).unwrap();
        let page = db.read_blocking(|tx| jobs::list(tx, who, &request)).unwrap();
        pages += 1;
        assert!(page.items.len() <= limit as usize);
        ids.extend(page.items.iter().map(|j| j.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (ids, pages),
        }
    }
}

#[test]
fn list_shows_own_jobs_newest_first_with_cursor_paging() {
    for test in test_databases() {
        let db = test.db();
        let (alice, bob) = (Id::new(), Id::new());
        let mut mine = Vec::new();
        for n in 0..5 {
            mine.push(enqueue(&db, NewJob { created_by: Some(alice), ..NewJob::new("echo", json!({"n": n})) }));
            // Interleave other users' and system jobs, so a page limited only after
            // reading would come up short.
            enqueue(&db, NewJob { created_by: Some(bob), ..NewJob::new("echo", json!({})) });
            enqueue(&db, NewJob::new(jobs::MAINTENANCE_KIND, json!({})));
        }
        let newest_first: Vec<Id> = mine.iter().rev().copied().collect();

        let (ids, pages) = list_all(&db, &someone(alice, &[]), 2);
        assert_eq!(ids, newest_first, "{:?}: alice sees her own jobs, newest first", db.backend());
        assert_eq!(pages, 3, "2 + 2 + 1");

        let (ids, _) = list_all(&db, &someone(alice, &[]), 50);
        assert_eq!(ids, newest_first);

        let (ids, _) = list_all(&db, &someone(Id::new(), &[]), 10);
        assert!(ids.is_empty(), "a user without jobs sees none");

        // The reader of every job sees all fifteen, newest first, each exactly once.
        let (ids, pages) = list_all(&db, &someone(Id::new(), &[jobs::READ_ALL_PERMISSION]), 4);
        assert_eq!(ids.len(), 15);
        assert_eq!(pages, 4);
        let mut sorted = ids.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(ids, sorted);
        let (ids, _) = list_all(&db, &someone(Id::new(), &["system.*"]), 100);
        assert_eq!(ids.len(), 15, "a pattern granting system.jobs.read counts");

        // The listed job is the whole public view.
        let request = kernel::paging::PageRequest::parse(Some(1), None).unwrap();
        let page = db.read_blocking(|tx| jobs::list(tx, &someone(alice, &[]), &request)).unwrap();
        assert_eq!(page.items, vec![job(&db, mine[4])]);
        assert!(jobs::visible_to(&page.items[0], &someone(alice, &[])));
        assert!(!jobs::visible_to(&page.items[0], &someone(bob, &[])));
    }
}
