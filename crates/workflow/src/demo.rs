//! Demo data for `rapport demo`: the two processes of the issue (expense claims: the
//! requester's manager, then finance; large expenses from 10,000 CNY: two directors in
//! parallel) and expense claims in every state, some with a receipt: a small PNG drawn
//! here (no binary files in the repository).
use kernel::identity::{principal_for_user, users};
use kernel::{Channel, Error, Id, Principal, Result, Tx};
use serde_json::json;

use crate::amount::Money;
use crate::calendar;
use crate::engine::{self, Decision};
use crate::expenses::{self, NewClaim};
use crate::processes::{self, Condition, NewProcess, StepInput};
use crate::registry::Registry;

fn user_by_email(tx: &mut Tx<'_>, email: &str) -> Result<users::User> {
    users::find_by_email(tx, email)?.ok_or(Error::NotFound("demo user"))
}

/// Seeds in the caller's transaction. `requesters` file claims and get `manager` as
/// their manager; two directors are created in the head office with `password_hash`.
pub fn seed(tx: &mut Tx<'_>, password_hash: &str, requesters: &[&str], manager: &str) -> Result<()> {
    let system = Principal::system(Channel::Cli);
    let registry = Registry::standard();
    let hq = kernel::setup::head_office(tx)?;
    let manager = user_by_email(tx, manager)?;
    let mut people = Vec::new();
    for email in requesters {
        let u = user_by_email(tx, email)?;
        users::update(
            tx,
            &system,
            u.id,
            users::UserPatch { manager_id: Some(Some(manager.id)), ..Default::default() },
        )?;
        people.push(principal_for_user(tx, u.id)?);
    }
    let mut directors = Vec::new();
    for (email, name) in
        [("director1@demo.rapport.test", "陈静 Chen Jing"), ("director2@demo.rapport.test", "박지훈 Park Ji-hoon")]
    {
        let d = users::create(
            tx,
            &system,
            users::NewUser {
                email: email.into(),
                name: name.into(),
                // Checked for length only: the stored hash is `password_hash`.
                password: "unused-demo-password".into(),
                role: "manager".into(),
                branch_id: hq,
                locale: Some(if email.starts_with("director1") { "zh-CN" } else { "ko-KR" }.into()),
                ..Default::default()
            },
            password_hash.to_owned(),
        )?;
        directors.push(principal_for_user(tx, d.id)?);
    }
    let step = |kind: &str, approvers: serde_json::Value| StepInput {
        kind: kind.into(),
        approvers: approvers.as_array().cloned().unwrap_or_default(),
        ..Default::default()
    };
    processes::create(
        tx,
        &system,
        &registry,
        NewProcess {
            name: "费用报销 Expense claims".into(),
            record_type: expenses::RECORD_TYPE.into(),
            priority: Some(10),
            steps: vec![
                step("sequential", json!([{"kind": "manager"}])),
                step("sequential", json!([{"kind": "role", "role": "finance"}])),
            ],
            ..Default::default()
        },
    )?;
    processes::create(
        tx,
        &system,
        &registry,
        NewProcess {
            name: "大额费用 Large expenses".into(),
            record_type: expenses::RECORD_TYPE.into(),
            priority: Some(1),
            conditions: vec![Condition {
                field: "amount".into(),
                op: "gte".into(),
                value: json!({"amount": "10000", "currency": "CNY"}),
            }],
            steps: vec![step(
                "parallel",
                json!([{"kind": "user", "user_id": directors[0].user_id}, {"kind": "user", "user_id": directors[1].user_id}]),
            )],
            ..Default::default()
        },
    )?;
    let Some(requester) = people.first().cloned() else { return Ok(()) };
    let manager = principal_for_user(tx, manager.id)?;
    let claim = |tx: &mut Tx<'_>, who: &Principal, amount: &str, category: &str, description: &str| -> Result<Id> {
        let input = NewClaim {
            amount: Some(Money { amount: amount.into(), currency: "CNY".into() }),
            category: category.into(),
            description: description.into(),
        };
        Ok(expenses::create(tx, who, input)?.id)
    };
    // The first pending approval of `approver` on claim `id`.
    let task_of = |tx: &mut Tx<'_>, approver: &Principal, id: Id| -> Result<Id> {
        let page = kernel::paging::PageRequest::parse(Some(500), None)?;
        engine::list_mine(tx, approver, "pending", &page)?
            .items
            .into_iter()
            .find(|a| a.record_id == id)
            .map(|a| a.id)
            .ok_or(Error::NotFound("demo approval"))
    };
    // A draft, its taxi receipt already attached.
    let id = claim(tx, &requester, "86.00", "transport", "机场出租车 Taxi to Pudong airport")?;
    expenses::add_receipt(tx, &requester, id, "出租车发票.png", &receipt_png(7))?;
    // Waiting for the manager, with the hotel bill.
    let id = claim(tx, &requester, "1280.00", "lodging", "杭州出差住宿两晚 Two nights in Hangzhou")?;
    expenses::add_receipt(tx, &requester, id, "酒店账单 hotel bill.png", &receipt_png(12))?;
    expenses::submit(tx, &requester, &registry, id)?;
    // Approved by the manager, waiting for finance.
    let id = claim(tx, &requester, "460.00", "meals", "客户午餐 Lunch with 国美 buyers")?;
    expenses::add_receipt(tx, &requester, id, "餐费发票.png", &receipt_png(5))?;
    expenses::submit(tx, &requester, &registry, id)?;
    let t = task_of(tx, &manager, id)?;
    engine::decide(tx, &manager, &registry, t, Decision::Approve, Some("同意".into()))?;
    // Approved all the way.
    let id = claim(tx, &requester, "2350.00", "travel", "北京展会高铁 Train to the Beijing fair")?;
    expenses::submit(tx, &requester, &registry, id)?;
    let t = task_of(tx, &manager, id)?;
    engine::decide(tx, &manager, &registry, t, Decision::Approve, None)?;
    let finance: Vec<i64> = tx.query_sql(
        "SELECT t.approver_id FROM approval_tasks t JOIN approval_instances i ON i.id = t.instance_id \
         WHERE i.record_id = $1 AND t.status = 'pending' ORDER BY t.id LIMIT 1",
        &[id.into()],
    )?;
    let finance = principal_for_user(tx, Id(finance.first().copied().ok_or(Error::NotFound("demo approval"))?))?;
    let t = task_of(tx, &finance, id)?;
    engine::decide(tx, &finance, &registry, t, Decision::Approve, Some("已核对发票".into()))?;
    // Rejected by the manager.
    let id = claim(tx, &requester, "3999.00", "entertainment", "KTV 招待 Karaoke with a customer")?;
    expenses::submit(tx, &requester, &registry, id)?;
    let t = task_of(tx, &manager, id)?;
    engine::decide(tx, &manager, &registry, t, Decision::Reject, Some("请附上客户名单".into()))?;
    // A large expense: one director approved, the other still to decide.
    let other = people.get(1).cloned().unwrap_or_else(|| requester.clone());
    let id = claim(tx, &other, "18800.00", "training", "서울 교육 프로그램 Seoul training programme")?;
    expenses::add_receipt(tx, &other, id, "교육비 영수증.png", &receipt_png(9))?;
    expenses::submit(tx, &other, &registry, id)?;
    let t = task_of(tx, &directors[0], id)?;
    engine::decide(tx, &directors[0], &registry, t, Decision::Approve, Some("同意".into()))?;
    load_holidays(tx)
}

struct DemoBranch {
    id: Id,
    parent_region: Option<String>,
    region: String,
}

impl kernel::db::FromRow for DemoBranch {
    fn from_row(row: &kernel::db::Row<'_>) -> std::result::Result<Self, kernel::db::DbError> {
        Ok(DemoBranch { id: row.get("id")?, parent_region: row.get("parent_region")?, region: row.get("region")? })
    }
}

/// The built-in public holidays of each branch's region, loaded where the region starts
/// (the root, or a branch of another region than its parent); the branches below inherit them.
pub fn load_holidays(tx: &mut Tx<'_>) -> Result<()> {
    let system = Principal::system(Channel::Cli);
    let branches: Vec<DemoBranch> = tx.query_sql(
        "SELECT b.id, b.region, p.region AS parent_region FROM branches b LEFT JOIN branches p ON p.id = b.parent_id \
         WHERE b.deleted_at IS NULL ORDER BY b.id",
        &[],
    )?;
    for b in branches.iter().filter(|b| b.parent_region.as_deref() != Some(b.region.as_str())) {
        for year in calendar::presets::years(&b.region) {
            let input =
                calendar::PresetInput { country: Some(b.region.clone()), year: Some(year), branch_id: Some(b.id) };
            calendar::load_preset(tx, &system, input)?;
        }
    }
    Ok(())
}

/// A small greyscale PNG that looks like a till receipt: a paper strip with `lines`
/// printed lines and a bold total. Stored (uncompressed) deflate, so no library is needed;
/// about 3 KB.
pub fn receipt_png(lines: usize) -> Vec<u8> {
    const W: usize = 48;
    const H: usize = 72;
    let mut raw = Vec::with_capacity(H * (W + 1));
    for y in 0..H {
        raw.push(0); // filter: none
        for x in 0..W {
            let margin = !(4..W - 4).contains(&x);
            let row = y.saturating_sub(6);
            let line = y >= 6 && row % 5 == 0 && row / 5 < lines;
            // Line lengths vary a little, like item names; the amounts are right-aligned.
            let len = 14 + (row * 7) % 17;
            let printed = line && ((6..6 + len).contains(&x) || (W - 12..W - 6).contains(&x));
            let total = (H - 10..H - 7).contains(&y) && (6..W - 6).contains(&x);
            raw.push(if margin {
                0xd0
            } else if printed || total {
                0x30
            } else {
                0xfa
            });
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(W as u32).to_be_bytes());
    ihdr.extend_from_slice(&(H as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// zlib with stored deflate blocks (at most 65,535 bytes each).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_png_specification() {
        // The CRC of an IEND chunk's type is fixed: AE 42 60 82.
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
    }

    #[test]
    fn receipt_png_is_a_small_png() {
        let png = receipt_png(7);
        assert_eq!(kernel::attachments::sniff(&png), Some("image/png"));
        assert!(png.len() < 4096, "{} bytes", png.len());
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
    }
}
