//! A small blocking connection pool, shared by both backends.
//!
//! Connections are only ever taken and returned on blocking threads (see `Db::read` and
//! `Db::write`), so a PostgreSQL client — which owns a private tokio runtime — is never
//! dropped on an async thread. The pool itself is the one exception: it may be dropped
//! anywhere, so its `Drop` moves idle connections to a plain thread first.
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::DbError;

pub(crate) trait Connection: Send + 'static {
    /// False when the connection is known to be unusable and must not be reused.
    fn is_healthy(&self) -> bool;
}

type Connect<C> = Box<dyn Fn() -> Result<C, DbError> + Send + Sync>;

pub(crate) struct Pool<C: Connection> {
    state: Mutex<State<C>>,
    returned: Condvar,
    max_size: usize,
    connect: Connect<C>,
    wait: Duration,
}

struct State<C> {
    idle: Vec<C>,
    open: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock leaves the vector consistent; keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: Connection> Pool<C> {
    pub(crate) fn new(max_size: usize, connect: Connect<C>) -> Self {
        Pool {
            state: Mutex::new(State { idle: Vec::new(), open: 0 }),
            returned: Condvar::new(),
            max_size: max_size.max(1),
            connect,
            wait: Duration::from_secs(30),
        }
    }

    pub(crate) fn get(&self) -> Result<Pooled<'_, C>, DbError> {
        let mut state = lock(&self.state);
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled { pool: self, conn: Some(conn) });
            }
            if state.open < self.max_size {
                state.open += 1;
                drop(state);
                return match (self.connect)() {
                    Ok(conn) => Ok(Pooled { pool: self, conn: Some(conn) }),
                    Err(e) => {
                        lock(&self.state).open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let (next, timeout) = self.returned.wait_timeout(state, self.wait).unwrap_or_else(PoisonError::into_inner);
            state = next;
            if timeout.timed_out() && state.idle.is_empty() && state.open >= self.max_size {
                return Err(DbError::PoolTimeout);
            }
        }
    }

    /// Adds an already-open connection (the one that proved the server reachable).
    pub(crate) fn seed(&self, conn: C) {
        let mut state = lock(&self.state);
        state.open += 1;
        state.idle.push(conn);
    }

    fn put_back(&self, conn: C) {
        let mut state = lock(&self.state);
        if conn.is_healthy() {
            state.idle.push(conn);
        } else {
            state.open -= 1;
            drop(state);
            drop(conn);
        }
        self.returned.notify_one();
    }
}

impl<C: Connection> Drop for Pool<C> {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut lock(&self.state).idle);
        if idle.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropping a synchronous PostgreSQL client inside an async context panics
            // ("Cannot start a runtime from within a runtime"): drop them elsewhere.
            let _ = std::thread::spawn(move || drop(idle)).join();
        } else {
            drop(idle);
        }
    }
}

pub(crate) struct Pooled<'p, C: Connection> {
    pool: &'p Pool<C>,
    conn: Option<C>,
}

impl<C: Connection> std::ops::Deref for Pooled<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn.as_ref().unwrap_or_else(|| unreachable!("connection taken"))
    }
}

impl<C: Connection> std::ops::DerefMut for Pooled<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn.as_mut().unwrap_or_else(|| unreachable!("connection taken"))
    }
}

impl<C: Connection> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn);
        }
    }
}
