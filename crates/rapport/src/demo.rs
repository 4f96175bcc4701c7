//! `rapport demo`: a demo organisation to explore — head office, three regional trade
//! companies, two stores under one of them, and one user per built-in role — and its
//! customers (`customers` below): categories with custom fields, chains with their stores,
//! contacts, two years of activities and tasks; `--size large` adds a million contacts and
//! ten million activities for benchmarks.
mod customers;

use anyhow::{Result, bail};
use kernel::identity::{branches, passwords, users};
use kernel::{Channel, Db, Id, Principal};

pub const DEMO_PASSWORD: &str = "rapport-demo";
pub const ADMIN_EMAIL: &str = "admin@demo.rapport.test";

/// Seeds the organisation unless it is already there; returns the admin's login.
pub fn seed(db: &Db, size: &str) -> Result<(String, String)> {
    if !matches!(size, "small" | "large") {
        bail!("--size: use small or large");
    }
    seed_organisation(db)?;
    customers::seed_small(db)?;
    if size == "large" {
        customers::seed_large(db)?;
    }
    Ok((ADMIN_EMAIL.to_owned(), DEMO_PASSWORD.to_owned()))
}

/// The branches and one user per role, unless the admin is already there.
fn seed_organisation(db: &Db) -> Result<()> {
    let already = db.read_blocking(|tx| users::find_by_email(tx, ADMIN_EMAIL))?;
    if already.is_some() {
        return Ok(());
    }
    let system = Principal::system(Channel::Cli);
    // One hash for every demo user: they share the demo password, and argon2 is slow on purpose.
    let hash = passwords::hash(DEMO_PASSWORD)?;
    db.write_blocking(|tx| -> kernel::Result<()> {
        let hq = kernel::setup::head_office(tx)?;
        branches::update(
            tx,
            &system,
            hq,
            branches::BranchPatch { name: Some("总部 Head office".into()), ..Default::default() },
        )?;
        let branch = |tx: &mut kernel::Tx<'_>, parent: Id, name: &str, code: &str, kind: &str| {
            branches::create(
                tx,
                &system,
                branches::NewBranch {
                    name: name.into(),
                    parent_id: Some(parent),
                    code: Some(code.into()),
                    kind: Some(kind.into()),
                    ..Default::default()
                },
            )
            .map(|b| b.id)
        };
        let east = branch(tx, hq, "华东贸易公司 East China Trade Co.", "EAST", "trade_company")?;
        let north = branch(tx, hq, "华北贸易公司 North China Trade Co.", "NORTH", "trade_company")?;
        let _south = branch(tx, hq, "华南贸易公司 South China Trade Co.", "SOUTH", "trade_company")?;
        let shanghai = branch(tx, east, "上海南京路店 Shanghai Nanjing Rd store", "SH-001", "store")?;
        let _hangzhou = branch(tx, east, "杭州西湖店 Hangzhou West Lake store", "HZ-001", "store")?;
        let people: [(&str, &str, &str, Id, &str); 7] = [
            ("admin", ADMIN_EMAIL, "管理员 Admin", hq, "zh-CN"),
            ("manager", "manager@demo.rapport.test", "王芳 Wang Fang", east, "zh-CN"),
            ("sales", "sales@demo.rapport.test", "李强 Li Qiang", shanghai, "zh-CN"),
            ("service", "service@demo.rapport.test", "김민준 Kim Min-jun", east, "ko-KR"),
            ("marketing", "marketing@demo.rapport.test", "Emma Clarke", hq, "en"),
            ("finance", "finance@demo.rapport.test", "张伟 Zhang Wei", hq, "zh-CN"),
            ("viewer", "viewer@demo.rapport.test", "이서연 Lee Seo-yeon", north, "ko-KR"),
        ];
        for (role, email, name, branch_id, locale) in people {
            users::create(
                tx,
                &system,
                users::NewUser {
                    email: email.into(),
                    name: name.into(),
                    password: DEMO_PASSWORD.into(),
                    role: role.into(),
                    branch_id,
                    locale: Some(locale.into()),
                    ..Default::default()
                },
                hash.clone(),
            )?;
        }
        workflow::demo::seed(
            tx,
            &hash,
            &["sales@demo.rapport.test", "service@demo.rapport.test"],
            "manager@demo.rapport.test",
        )?;
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("seeding the demo organisation: {e}"))?;
    Ok(())
}
