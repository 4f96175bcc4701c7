//! Live events: raised inside a unit of work, published once it commits.
//!
//! On SQLite the committing process publishes to its own hub. On PostgreSQL every event
//! travels through `NOTIFY` and every node's listener (the sender's included) publishes
//! it, so a browser connected to any node sees a change made on any other.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub(crate) const PG_CHANNEL: &str = "rapport_events";

/// Something that happened, for the users it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// What happened, e.g. `job.progress`, `task.reminder`.
    pub kind: String,
    /// The one user to tell; `None` tells every logged-in user.
    pub user_id: Option<i64>,
    pub payload: serde_json::Value,
}

impl Event {
    pub fn for_user(kind: &str, user_id: i64, payload: serde_json::Value) -> Self {
        Event { kind: kind.to_owned(), user_id: Some(user_id), payload }
    }

    pub fn for_everyone(kind: &str, payload: serde_json::Value) -> Self {
        Event { kind: kind.to_owned(), user_id: None, payload }
    }
}

#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Arc<Event>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> Self {
        EventHub { sender: broadcast::channel(1024).0 }
    }

    pub fn publish(&self, event: Event) {
        // No subscriber is not an error: nobody is watching right now.
        let _ = self.sender.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

/// A thread holding one PostgreSQL connection in `LISTEN`; reconnects with back-off.
pub(crate) struct PgListener {
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
}

impl PgListener {
    pub(crate) fn start(config: postgres::Config, hub: EventHub) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(AtomicBool::new(false));
        let (thread_stop, thread_connected) = (stop.clone(), connected.clone());
        let spawned = std::thread::Builder::new().name("rapport-listen".into()).spawn(move || {
            let mut backoff = Duration::from_millis(200);
            while !thread_stop.load(Ordering::Relaxed) {
                match listen(&config, &hub, &thread_stop, &thread_connected) {
                    Ok(()) => return,
                    Err(e) => {
                        thread_connected.store(false, Ordering::Relaxed);
                        tracing::warn!(error = %e, "event listener lost its connection; retrying");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the event listener thread");
        }
        PgListener { stop, connected }
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

impl Drop for PgListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn listen(
    config: &postgres::Config,
    hub: &EventHub,
    stop: &AtomicBool,
    connected: &AtomicBool,
) -> Result<(), postgres::Error> {
    let mut client = config.connect(postgres::NoTls)?;
    client.batch_execute(&format!("LISTEN {PG_CHANNEL}"))?;
    connected.store(true, Ordering::Relaxed);
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        {
            let mut notifications = client.notifications();
            let mut batch = notifications.timeout_iter(Duration::from_millis(250));
            use postgres::fallible_iterator::FallibleIterator;
            while let Some(n) = batch.next()? {
                match serde_json::from_str::<Event>(n.payload()) {
                    Ok(event) => hub.publish(event),
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed event"),
                }
            }
        }
        if client.is_closed() {
            // Surfaces the connection error, which makes the caller reconnect.
            client.simple_query("SELECT 1")?;
        }
    }
}
