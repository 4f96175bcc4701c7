//! How a contacts import writes its batches: one thread reads and checks the next batch on
//! a read transaction while writers write the checked ones, each batch in its own
//! transaction that also moves the import's checkpoint.
//!
//! On SQLite there is one writer (SQLite has one). On PostgreSQL two writers, each on its
//! own connection, overlap: while the server updates one batch's indexes, the other batch
//! is sent. Measured on the 2-core VM, one writer left a third of the CPU idle, each side
//! waiting on the other's round trips.
//!
//! What keeps this as safe as one writer:
//! * batches commit in file order ([`Turnstile`]): a batch writes its rows, then waits until
//!   the one before it has committed and been reported before it moves the checkpoint and
//!   commits, so the checkpoint never skips a batch, a batch whose predecessor failed rolls
//!   back, and a run stopped by its progress report stops after the batch it reported;
//! * a batch holding an upsert key (e-mail, phone, external id) that an earlier batch of the
//!   file also holds waits for that batch to commit *before* it looks up existing records,
//!   so it updates the record the earlier batch created instead of creating a second one;
//! * no two batches wait on each other's row locks (which, with the turns, could
//!   deadlock): batches insert rows with new ids, update only records found by a key no
//!   other running batch holds, and the one unique column of contacts besides the id (the
//!   membership card) is not imported.
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};

use kernel::{Db, Error, Result};

use super::{CheckedBatch, Import, Parsed, Plan, RowResult, check_rows, move_checkpoint, write_batch};

/// Commits batches in order: batch `n` commits only after batches `0..n` committed and
/// were reported.
struct Turnstile {
    state: Mutex<Turn>,
    turned: Condvar,
}

struct Turn {
    /// How many batches (from the run's first) have committed and been reported.
    committed: usize,
    /// A batch failed or the run stopped: no later batch may commit.
    stopped: bool,
}

impl Turnstile {
    fn new() -> Self {
        Turnstile { state: Mutex::new(Turn { committed: 0, stopped: false }), turned: Condvar::new() }
    }

    /// Waits until every batch before `seq` has committed.
    fn wait_for(&self, seq: usize) -> Result<()> {
        let mut turn = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while turn.committed < seq && !turn.stopped {
            turn = self.turned.wait(turn).unwrap_or_else(PoisonError::into_inner);
        }
        if turn.stopped {
            return Err(Error::Internal("the import stopped before this batch's turn".into()));
        }
        Ok(())
    }

    fn committed(&self, seq: usize) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).committed = seq + 1;
        self.turned.notify_all();
    }

    fn stop(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).stopped = true;
        self.turned.notify_all();
    }

    fn stopped(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).stopped
    }
}

/// One checked batch on its way to a writer.
struct Batch {
    /// The batch's place in this run, from 0.
    seq: usize,
    /// Rows from..next of the file (0-based), the last batch or not.
    from: usize,
    next: usize,
    last: bool,
    checked: CheckedBatch,
    /// It holds an upsert key an earlier batch of the file holds.
    repeats_a_key: bool,
}

/// The upsert keys an import has met so far, as 64-bit hashes (a collision only makes a
/// batch wait when it need not).
#[derive(Default)]
struct SeenKeys(HashSet<u64>);

impl SeenKeys {
    /// Adds the batch's keys; says whether any was held by an earlier batch.
    fn add_batch(&mut self, plan: &Plan<'_>, batch: &CheckedBatch) -> bool {
        let mut own = HashSet::new();
        for (_, record) in &batch.good {
            if let Some(key) = record.key(&plan.match_on) {
                let mut h = DefaultHasher::new();
                key.to_lowercase().hash(&mut h);
                own.insert(h.finish());
            }
        }
        let repeats = own.iter().any(|k| self.0.contains(k));
        self.0.extend(own);
        repeats
    }
}

/// Writes the rows `start..` of a contacts import, [`super::RunOptions`] and progress as
/// in [`super::run`]; `after_batch` hears each committed batch in order and says whether
/// the run stops there.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_contacts(
    db: &Db,
    plan: Plan<'_>,
    parsed: &Parsed,
    start: usize,
    batch_rows: usize,
    stop_after_batches: Option<usize>,
    after_batch: &mut dyn FnMut(&Import, bool) -> Result<bool>,
) -> Result<Import> {
    let writers = match db.backend() {
        kernel::Backend::Sqlite => 1,
        kernel::Backend::Postgres => 2,
    };
    let writer_plan = plan.clone();
    let turnstile = Turnstile::new();
    std::thread::scope(|scope| {
        let (to_writers, batches) = mpsc::sync_channel::<Result<Batch>>(writers + 1);
        let (to_main, results) = mpsc::channel::<Result<(usize, bool, Import)>>();
        let (turnstile, writer_plan) = (&turnstile, &writer_plan);
        scope.spawn(move || check_batches(db, plan, parsed, start, batch_rows, writers > 1, to_writers));
        let batches = Arc::new(Mutex::new(batches));
        for _ in 0..writers {
            let (batches, to_main) = (Arc::clone(&batches), to_main.clone());
            scope.spawn(move || {
                loop {
                    let next = batches.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    // A closed channel: the checking thread is done or stopped.
                    let Ok(batch) = next else { return };
                    if turnstile.stopped() {
                        return;
                    }
                    let batch = match batch {
                        Ok(b) if stop_after_batches.is_some_and(|n| b.seq >= n) => return,
                        Ok(b) => b,
                        Err(e) => {
                            turnstile.stop();
                            let _ = to_main.send(Err(e));
                            return;
                        }
                    };
                    let (seq, last) = (batch.seq, batch.last);
                    match write_in_turn(db, writer_plan, turnstile, batch) {
                        // The next batch may commit once the run has heard of this one.
                        Ok(current) => {
                            let _ = to_main.send(Ok((seq, last, current)));
                        }
                        Err(e) => {
                            turnstile.stop();
                            let _ = to_main.send(Err(e));
                            return;
                        }
                    }
                }
            });
        }
        drop(to_main);
        let outcome = (|| loop {
            let (seq, last, current) =
                results.recv().map_err(|_| Error::Internal("the import's writers stopped".into()))??;
            if after_batch(&current, last)? {
                return Ok(current);
            }
            // Only now may the next batch commit: a run stopped by its progress report
            // (a cancelled job) stops right after the batch it last reported.
            turnstile.committed(seq);
        })();
        // Whatever ended the run, no batch after this one starts or commits.
        turnstile.stop();
        outcome
    })
}

/// The checking thread: reads and checks batches in file order and hands them on.
#[allow(clippy::too_many_arguments)]
fn check_batches(
    db: &Db,
    mut plan: Plan<'_>,
    parsed: &Parsed,
    start: usize,
    batch_rows: usize,
    track_keys: bool,
    to_writers: mpsc::SyncSender<Result<Batch>>,
) {
    let mut seen = SeenKeys::default();
    let mut rows = parsed.rows().enumerate().skip(start);
    let mut next = start;
    for seq in 0.. {
        let rows: Vec<(usize, RowResult)> = rows.by_ref().take(batch_rows).collect();
        let last = rows.len() < batch_rows;
        let from = next;
        next += rows.len();
        let checked = db.read_blocking(|tx| check_rows(tx, &mut plan, &parsed.headers, &rows)).map(|checked| {
            let repeats_a_key = track_keys && seen.add_batch(&plan, &checked);
            Batch { seq, from, next, last, checked, repeats_a_key }
        });
        let stop = last || checked.is_err();
        // A closed channel means the writers stopped (an error, or stop_after_batches).
        if to_writers.send(checked).is_err() || stop {
            return;
        }
    }
}

/// Writes one batch in its own transaction, committing only after the batches before it.
fn write_in_turn(db: &Db, plan: &Plan<'_>, turnstile: &Turnstile, batch: Batch) -> Result<Import> {
    let Batch { seq, from, next, last, checked, repeats_a_key } = batch;
    db.write_blocking(|tx| {
        if repeats_a_key {
            // Its look-up of existing records must see what the earlier batches wrote.
            turnstile.wait_for(seq)?;
        }
        let counts = write_batch(tx, plan, checked)?;
        turnstile.wait_for(seq)?;
        move_checkpoint(tx, plan, counts, from, next, last)
    })
}
