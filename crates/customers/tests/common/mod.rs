//! What the customer store tests share: building their branches and users, counting rows
//! and reading the fields of a validation error.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
use kernel::identity::{branches, principal_for_user, users};
use kernel::testing::TestDb;
use kernel::{Error, Id, Principal, Tx};

/// A branch below `parent`, with its region if given.
pub fn branch(tx: &mut Tx<'_>, admin: &Principal, name: &str, parent: Id, region: Option<&str>) -> Result<Id, Error> {
    let b = branches::NewBranch {
        name: name.into(),
        parent_id: Some(parent),
        region: region.map(Into::into),
        ..Default::default()
    };
    branches::create(tx, admin, b).map(|b| b.id)
}

/// A user of `branch` with `role` (its name is its e-mail, its password `password123`,
/// hashed as `hash`), in `time_zone` if given, as the principal it signs in as.
pub fn user(
    db: &TestDb,
    admin: &Principal,
    hash: &str,
    email: &str,
    role: &str,
    branch: Id,
    time_zone: Option<&str>,
) -> Principal {
    db.write_blocking(|tx| {
        let u = users::NewUser {
            email: email.into(),
            name: email.into(),
            password: "password123".into(),
            role: role.into(),
            branch_id: branch,
            time_zone: time_zone.map(Into::into),
            ..Default::default()
        };
        let u = users::create(tx, admin, u, hash.to_owned())?;
        principal_for_user(tx, u.id)
    })
    .unwrap()
}

pub fn count(db: &TestDb, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    db.read_blocking(|tx| tx.query_sql::<i64>(&sql, &[])).unwrap()[0]
}

pub fn field_names(e: Error) -> Vec<String> {
    match e {
        Error::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}
