//! Rapport's kernel: what every business area stands on.
//!
//! * [`db`]: `Db` and `Tx`, one unit of work over SQLite or PostgreSQL, and migrations;
//! * [`id`], [`error`], [`paging`], [`values`]: ids, the one error type, cursor pages,
//!   validated domain values;
//! * [`principal`]: who is asking, their permissions and data scope;
//! * [`audit`]: the append-only audit log;
//! * [`attachments`]: files attached to records of any type (the owning area checks access);
//! * [`identity`]: branches, roles, users, sessions, API tokens, login;
//! * [`i18n`]: Fluent translation catalogs (each crate brings its own texts);
//! * [`jobs`] and [`events`]: durable background jobs, and live events published when a
//!   unit of work commits.
pub mod attachments;
pub mod audit;
pub mod db;
pub mod error;
pub mod events;
pub mod i18n;
pub mod id;
pub mod identity;
pub mod jobs;
pub mod paging;
pub mod principal;
pub mod records;
pub mod setup;
pub mod testing;
pub mod values;

pub use db::{Backend, Db, DbError, Tx};
pub use error::{Error, FieldError, Result};
pub use id::Id;
pub use principal::{Channel, DataScope, Principal};
