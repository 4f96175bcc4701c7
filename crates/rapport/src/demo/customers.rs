//! Demo customers.
//!
//! * Small (every `rapport demo`): seven categories with custom fields, ~200 accounts
//!   (chain headquarters with their stores, department stores, franchise and specialty
//!   stores, SMEs, individual members; with regions, addresses, credit terms and tags)
//!   through the validated `accounts::create`; ~5,000 contacts with Chinese, Korean and
//!   English names (about half of them members with a card number, birthday, gender and
//!   household; some with titles and tags; a few planted duplicate pairs: the same phone,
//!   the name spelled differently) and ~20,000 activities over two years through the bulk
//!   path (`contacts::insert_many`: the same rows, tag rows, search terms and duplicate keys
//!   the validated paths write, without one audit entry per generated row);
//!   tasks through `tasks::create`, some due today and some overdue for each demo user.
//!   Skipped when its first category exists.
//! * Large (`--size large`): 20,000 accounts, 1,000,000 contacts and 10,000,000
//!   activities in batches of one transaction each; a re-run resumes after the last
//!   complete batch (batches are found by their accounts' external ids).
//!
//! Everything is generated from a fixed seed, so two runs produce the same names.
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate, SubsecRound, Utc};
use customers::contacts::{self, Contact};
use customers::details::Address;
use customers::search::{self, Document};
use customers::{Phone, RecordType, accounts, fields, tasks};
use kernel::identity::users;
use kernel::{Channel, Db, Id, Principal, Tx};
use sea_query::Value as V;
use serde_json::{Map, Value as Json, json};

use super::ADMIN_EMAIL;

/// Marks the small data set: its first category.
const FIRST_CATEGORY: &str = "跨国连锁 Multinational chain";

/// A small deterministic generator (xorshift64*): demo data needs variety, not secrecy.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗",
];
const GIVEN: [&str; 24] = [
    "芳", "伟", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀", "英",
    "华", "慧", "建", "平", "霞",
];
const KO_FAMILY: [&str; 8] = ["김", "이", "박", "최", "정", "강", "조", "윤"];
const KO_GIVEN: [&str; 12] =
    ["민준", "서연", "지호", "하은", "도윤", "서준", "지우", "예준", "수빈", "현우", "지민", "유진"];
const EN_GIVEN: [&str; 14] = [
    "Liam", "Olivia", "Noah", "Emma", "James", "Ava", "Lucas", "Mia", "Mason", "Sophia", "Ethan", "Grace", "Daniel",
    "Chloe",
];
const EN_FAMILY: [&str; 12] =
    ["Smith", "Brown", "Clarke", "Taylor", "Wilson", "Evans", "Walker", "Wright", "Green", "Hall", "Wood", "King"];
const PINYIN: [&str; 12] = ["wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun"];
const DOMAINS: [&str; 8] =
    ["gome.com.cn", "suning.com", "qq.com", "163.com", "naver.com", "daum.net", "gmail.com", "outlook.com"];
const CITIES: [&str; 12] =
    ["上海", "北京", "杭州", "南京", "广州", "深圳", "成都", "武汉", "苏州", "天津", "重庆", "西安"];
const KINDS: [&str; 5] = ["call", "visit", "meeting", "email", "note"];
/// Cities with the sales region they belong to (accounts' `region`).
const CITY_REGIONS: [(&str, &str); 12] = [
    ("上海", "East China"),
    ("杭州", "East China"),
    ("南京", "East China"),
    ("苏州", "East China"),
    ("北京", "North China"),
    ("天津", "North China"),
    ("广州", "South China"),
    ("深圳", "South China"),
    ("成都", "West China"),
    ("重庆", "West China"),
    ("武汉", "Central China"),
    ("西安", "Northwest China"),
];
const STREETS: [&str; 8] = ["南京", "淮海", "中山", "人民", "解放", "建国", "长安", "延安"];
const TITLES: [&str; 6] = [
    "店长 Store manager",
    "采购经理 Purchasing manager",
    "财务 Accountant",
    "销售代表 Sales representative",
    "점장 Store manager",
    "Category manager",
];
const CONTACT_TAGS: [&str; 4] = ["vip", "newsletter", "wholesale", "birthday-club"];
/// Contacts copied with the name spelled differently and the same phone typed another way,
/// so the duplicate scan has something to show.
const PLANTED_DUPLICATES: usize = 6;

/// A person's name in Chinese (60 %), Korean (20 %) or English (20 %), an e-mail and a
/// mobile (CN or KR, typed with spaces or dashes as people do).
fn person(rng: &mut Rng, n: usize) -> (String, String, String) {
    match rng.below(10) {
        0..=5 => {
            let mut name = (*rng.pick(&SURNAMES)).to_owned();
            for _ in 0..1 + rng.below(2) {
                name.push_str(GIVEN[rng.below(GIVEN.len())]);
            }
            let mobile = format!("1{}{}", 3 + rng.below(7), 100_000_000 + rng.below(900_000_000));
            let typed = format!("{} {} {}", &mobile[..3], &mobile[3..7], &mobile[7..]);
            let email = format!("{}{n}@{}", rng.pick(&PINYIN), rng.pick(&DOMAINS[..4]));
            (name, email, typed)
        }
        6..=7 => {
            let name = format!("{}{}", rng.pick(&KO_FAMILY), rng.pick(&KO_GIVEN));
            let typed = format!("+82 10-{}-{}", 1000 + rng.below(9000), 1000 + rng.below(9000));
            let email = format!("user{n}@{}", rng.pick(&DOMAINS[4..]));
            (name, email, typed)
        }
        _ => {
            let (given, family) = (*rng.pick(&EN_GIVEN), *rng.pick(&EN_FAMILY));
            let mobile = format!("1{}{}", 3 + rng.below(7), 100_000_000 + rng.below(900_000_000));
            let email = format!("{}.{}{n}@{}", given.to_lowercase(), family.to_lowercase(), rng.pick(&DOMAINS));
            (format!("{given} {family}"), email, format!("+86 {mobile}"))
        }
    }
}

/// A demo user who owns customers: id and branch.
#[derive(Clone, Copy)]
struct Owner {
    id: Id,
    branch: Id,
}

fn owners(tx: &mut Tx<'_>) -> kernel::Result<Vec<Owner>> {
    let mut out = Vec::new();
    for email in ["sales@demo.rapport.test", "manager@demo.rapport.test", "service@demo.rapport.test", ADMIN_EMAIL] {
        if let Some(u) = users::find_by_email(tx, email)? {
            out.push(Owner { id: u.id, branch: u.branch_id });
        }
    }
    if out.is_empty() {
        return Err(kernel::Error::NotFound("demo users"));
    }
    Ok(out)
}

fn count(tx: &mut Tx<'_>, sql: &str, params: &[V]) -> kernel::Result<i64> {
    let rows: Vec<i64> = tx.query_sql(sql, params)?;
    Ok(rows.first().copied().unwrap_or(0))
}

/// A category and its custom fields: (key, label, type, required, options).
type CategorySpec =
    (&'static str, &'static [(&'static str, &'static str, &'static str, bool, &'static [&'static str])]);

const CHAIN_FIELDS: &[(&str, &str, &str, bool, &[&str])] = &[
    ("store_count", "门店数 Stores", "number", true, &[]),
    ("shelf_share", "货架占比 % Shelf share", "number", false, &[]),
    ("opening_date", "合作开始 Partner since", "date", false, &[]),
    ("tier", "等级 Tier", "select", false, &["A", "B", "C"]),
    ("credit_limit", "信用额度 Credit limit", "money", false, &[]),
];
const STORE_FIELDS: &[(&str, &str, &str, bool, &[&str])] = &[
    ("shelf_share", "货架占比 % Shelf share", "number", false, &[]),
    ("opening_date", "开业日期 Opening date", "date", false, &[]),
    ("tier", "等级 Tier", "select", false, &["A", "B", "C"]),
];
const CATEGORIES: [CategorySpec; 7] = [
    (FIRST_CATEGORY, CHAIN_FIELDS),
    ("国内连锁 Domestic chain", CHAIN_FIELDS),
    (
        "百货商场 Department store",
        &[
            ("floors", "楼层数 Floors", "number", false, &[]),
            ("shelf_share", "货架占比 % Shelf share", "number", false, &[]),
            ("opening_date", "开业日期 Opening date", "date", false, &[]),
            ("tier", "等级 Tier", "select", false, &["A", "B", "C"]),
        ],
    ),
    ("加盟店 Franchise store", STORE_FIELDS),
    ("专卖店 Specialty store", STORE_FIELDS),
    (
        "中小企业 SME",
        &[
            ("employees", "员工数 Employees", "number", false, &[]),
            ("industry", "行业 Industry", "select", false, &["retail", "wholesale", "services", "manufacturing"]),
        ],
    ),
    (
        "个人会员 Individual member",
        &[
            ("card_no", "会员卡号 Card number", "text", true, &[]),
            ("birthday", "生日 Birthday", "date", false, &[]),
            ("gender", "性别 Gender", "select", false, &["female", "male", "other"]),
        ],
    ),
];

/// Custom values for an account of category `index` in [`CATEGORIES`].
fn custom_values(rng: &mut Rng, index: usize, stores: usize, n: usize) -> Map<String, Json> {
    let date = |rng: &mut Rng| format!("{}-{:02}-{:02}", 2005 + rng.below(20), 1 + rng.below(12), 1 + rng.below(28));
    let tier = |rng: &mut Rng| Json::from(["A", "B", "C"][rng.below(3)]);
    let mut m = Map::new();
    match index {
        0 | 1 => {
            m.insert("store_count".into(), json!(stores.max(1)));
            m.insert("shelf_share".into(), json!(5 + rng.below(30)));
            m.insert("opening_date".into(), json!(date(rng)));
            m.insert("tier".into(), tier(rng));
            let amount = format!("{}.00", 100_000 * (1 + rng.below(50)));
            m.insert("credit_limit".into(), json!({"amount": amount, "currency": "CNY"}));
        }
        2 => {
            m.insert("floors".into(), json!(3 + rng.below(8)));
            m.insert("shelf_share".into(), json!(5 + rng.below(20)));
            m.insert("opening_date".into(), json!(date(rng)));
            m.insert("tier".into(), tier(rng));
        }
        3 | 4 => {
            m.insert("shelf_share".into(), json!(10 + rng.below(60)));
            m.insert("opening_date".into(), json!(date(rng)));
            m.insert("tier".into(), tier(rng));
        }
        5 => {
            m.insert("employees".into(), json!(5 + rng.below(200)));
            let industry = ["retail", "wholesale", "services", "manufacturing"][rng.below(4)];
            m.insert("industry".into(), json!(industry));
        }
        _ => {
            m.insert("card_no".into(), json!(format!("M{:08}", 10_000_000 + n)));
            m.insert(
                "birthday".into(),
                json!(format!("{}-{:02}-{:02}", 1960 + rng.below(45), 1 + rng.below(12), 1 + rng.below(28))),
            );
            m.insert("gender".into(), Json::from(["female", "male"][rng.below(2)]));
        }
    }
    m
}

/// An account the bulk paths attach contacts and activities to.
#[derive(Clone, Copy)]
struct Placed {
    id: Id,
    branch: Id,
    owner: Id,
}

/// Seeds the small data set unless its first category exists.
pub fn seed_small(db: &Db) -> Result<()> {
    let done = db.read_blocking(|tx| {
        count(tx, "SELECT count(*) FROM customer_categories WHERE name = $1", &[V::from(FIRST_CATEGORY)])
    })?;
    if done > 0 {
        return Ok(());
    }
    let started = Instant::now();
    let system = Principal::system(Channel::Cli);
    let (n_accounts, n_contacts, n_activities) = db
        .write_blocking(|tx| -> kernel::Result<(usize, usize, usize)> {
            let owners = owners(tx)?;
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            let mut categories = Vec::new();
            for (name, specs) in CATEGORIES {
                let c = fields::create_category(tx, &system, fields::NewCategory { name: name.into() })?;
                for (key, label, field_type, required, options) in specs {
                    fields::create_field(
                        tx,
                        &system,
                        fields::NewCustomField {
                            category_id: c.id,
                            record_type: None,
                            key: (*key).into(),
                            label: (*label).into(),
                            field_type: (*field_type).into(),
                            required: *required,
                            options: (!options.is_empty()).then(|| options.iter().map(|o| (*o).to_owned()).collect()),
                        },
                    )?;
                }
                categories.push(c.id);
            }
            let mut placed: Vec<Placed> = Vec::new();
            let mut n = 0usize;
            let mut account = |tx: &mut Tx<'_>,
                               rng: &mut Rng,
                               name: String,
                               category: usize,
                               parent: Option<Id>,
                               stores: usize|
             -> kernel::Result<Id> {
                n += 1;
                let owner = owners[n % owners.len()];
                let phone = if name.chars().any(|c| ('\u{AC00}'..='\u{D7AF}').contains(&c)) {
                    format!("+82 2-{}-{}", 1000 + rng.below(9000), 1000 + rng.below(9000))
                } else {
                    format!("021 {} {}", 5000 + rng.below(5000), 1000 + rng.below(9000))
                };
                let (city, region) = CITY_REGIONS[rng.below(CITY_REGIONS.len())];
                let mut tags = Vec::new();
                if parent.is_none() && stores > 1 {
                    tags.push("key-account".to_owned());
                }
                if region == "North China" {
                    tags.push("north".to_owned());
                }
                if rng.below(6) == 0 {
                    tags.push("vip".to_owned());
                }
                // Chain headquarters and department stores buy on credit; stores and members do not.
                let credit = matches!(category, 0..=2 | 5) && parent.is_none();
                let a = accounts::create(
                    tx,
                    &system,
                    accounts::NewAccount {
                        name,
                        category_id: Some(categories[category]),
                        parent_id: parent,
                        branch_id: Some(owner.branch),
                        owner_id: Some(owner.id),
                        email: Some(format!("info{n}@{}", DOMAINS[n % 2])),
                        phone: Some(phone),
                        external_id: Some(format!("DEMO-{n:05}")),
                        custom: Some(custom_values(rng, category, stores, n)),
                        region: Some(region.into()),
                        addresses: Some(vec![Address {
                            kind: if parent.is_some() { "store" } else { "office" }.into(),
                            line1: format!("{}路{}号", rng.pick(&STREETS), 1 + rng.below(999)),
                            city: city.into(),
                            postcode: Some(format!("{}", 100_000 + rng.below(800_000))),
                            country: "CN".into(),
                            ..Default::default()
                        }]),
                        phones: (stores > 1)
                            .then(|| vec![format!("400 {} {}", 100 + rng.below(900), 1000 + rng.below(9000))]),
                        credit_limit: credit.then(|| format!("{}.00", 50_000 * (1 + rng.below(40)))),
                        payment_terms_days: credit.then(|| [30, 45, 60, 90][rng.below(4)]),
                        tags: Some(tags),
                        ..Default::default()
                    },
                )?;
                placed.push(Placed { id: a.id, branch: a.branch_id, owner: owner.id });
                Ok(a.id)
            };
            let chains: [(&str, usize, usize); 10] = [
                ("沃尔玛中国 Walmart China", 0, 12),
                ("家乐福 Carrefour", 0, 12),
                ("麦德龙 Metro", 0, 12),
                ("Costco 好市多", 0, 12),
                ("国美电器 Gome Electrical", 1, 11),
                ("苏宁易购 Suning", 1, 11),
                ("永辉超市 Yonghui", 1, 11),
                ("华润万家 CR Vanguard", 1, 11),
                ("롯데마트 Lotte Mart", 1, 11),
                ("이마트 E-Mart", 1, 11),
            ];
            for (name, category, stores) in chains {
                let hq = account(tx, &mut rng, format!("{name} 总部"), category, None, stores)?;
                let short = name.split(' ').next().unwrap_or(name);
                for i in 0..stores {
                    let city = CITIES[(i + category) % CITIES.len()];
                    // Domestic chains' stores are franchised; multinationals own theirs.
                    let store_category = if category == 1 { 3 } else { 0 };
                    account(tx, &mut rng, format!("{short}{city}{}号店", i + 1), store_category, Some(hq), 1)?;
                }
            }
            let singles: [(usize, usize, &[&str]); 5] = [
                (2, 25, &["百货", "购物中心", "商厦", "Department Store"]),
                (3, 15, &["电器加盟店", "家电专营", "Appliance Franchise"]),
                (4, 20, &["厨电专卖", "小家电旗舰店", "Specialty Store"]),
                (5, 20, &["电器商行", "贸易有限公司", "Trading Co."]),
                (6, 10, &[]),
            ];
            for (category, how_many, suffixes) in singles {
                for i in 0..how_many {
                    let name = if suffixes.is_empty() {
                        person(&mut rng, i).0
                    } else {
                        format!("{}{}", CITIES[rng.below(CITIES.len())], suffixes[i % suffixes.len()])
                    };
                    let name = if suffixes.is_empty() { name } else { format!("{name} {}", i + 1) };
                    account(tx, &mut rng, name, category, None, 1)?;
                }
            }
            let n_accounts = placed.len();
            let (contacts, activities) =
                bulk(tx, &mut rng, &placed, &owners, categories.get(6).copied(), 5_000, 4, 730)?;
            let now = Utc::now();
            let mut k = 0;
            for owner in &owners {
                for (days, subject) in [
                    (-9, "回访投诉客户 Follow up the complaint"),
                    (-3, "寄送报价单 Send the quotation"),
                    (-1, "确认陈列照片 Confirm the display photos"),
                    (0, "拜访门店 Store visit"),
                    (0, "电话确认订单 Call to confirm the order"),
                    (0, "准备周报 Prepare the weekly report"),
                    (2, "年度合同续签 Renew the annual contract"),
                    (7, "新品培训 New product training"),
                ] {
                    k += 1;
                    let a = placed[(k * 7) % placed.len()];
                    let due = (now + Duration::days(days)).trunc_subsecs(0);
                    tasks::create(
                        tx,
                        &system,
                        tasks::NewTask {
                            subject: subject.into(),
                            due_at: Some(due),
                            assignee_id: Some(owner.id),
                            account_id: Some(a.id),
                            ..Default::default()
                        },
                    )?;
                }
            }
            Ok((n_accounts, contacts, activities))
        })
        .context("seeding the demo customers")?;
    println!(
        "demo: {n_accounts} accounts, {n_contacts} contacts, {n_activities} activities in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

const ACTIVITY_COLUMNS: [&str; 11] = [
    "id",
    "kind",
    "account_id",
    "contact_id",
    "subject",
    "occurred_at",
    "branch_id",
    "owner_id",
    "created_at",
    "updated_at",
    "version",
];

/// Writes `contacts` contacts spread over `accounts` (one in five without an account);
/// about half are members (those without an account in `member_category`, when given),
/// some have titles and tags, and a few are planted duplicates of earlier ones. Then
/// `per_contact` activities each over the last `days` days by the demo users. Returns
/// the numbers written.
#[allow(clippy::too_many_arguments)]
fn bulk(
    tx: &mut Tx<'_>,
    rng: &mut Rng,
    accounts: &[Placed],
    owners: &[Owner],
    member_category: Option<Id>,
    contacts: usize,
    per_contact: usize,
    days: i64,
) -> kernel::Result<(usize, usize)> {
    let now = Utc::now().trunc_subsecs(0);
    let today = now.date_naive();
    let date = |rng: &mut Rng, from: i32, years: usize| {
        NaiveDate::from_ymd_opt(from + rng.below(years) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32)
            .filter(|d| *d <= today)
    };
    let mut people: Vec<(Contact, Option<Placed>)> = Vec::with_capacity(contacts);
    let mut seq = count(tx, "SELECT count(*) FROM contacts", &[])? as usize;
    for i in 0..contacts {
        seq += 1;
        let (name, email, mut typed) = person(rng, seq);
        if seq % 50_000 < 10 {
            // The example fragments (`138 0013`, `0013 8000`) find these.
            typed = format!("138 0013 800{}", seq % 10);
        }
        let phone = Phone::parse(&typed, "CN").map_err(|e| kernel::Error::field("phone", e))?;
        let account = (rng.below(5) > 0).then(|| *rng.pick(accounts));
        let id = Id::new();
        let owner = account.map_or_else(|| owners[id.get() as usize % owners.len()].id, |a| a.owner);
        let branch = account.map_or_else(|| owners[id.get() as usize % owners.len()].branch, |a| a.branch);
        let member = account.is_none() || rng.below(8) < 3;
        let mut tags = Vec::new();
        if rng.below(7) == 0 {
            tags.push((*rng.pick(&CONTACT_TAGS)).to_owned());
        }
        let mut c = Contact {
            id,
            name,
            account_id: account.map(|a| a.id),
            branch_id: branch,
            owner_id: Some(owner),
            email: Some(email),
            phone: Some(phone.e164().to_owned()),
            phone_raw: Some(phone.raw().to_owned()),
            custom: Map::new(),
            category_id: if account.is_none() { member_category } else { None },
            status: "active".into(),
            title: (account.is_some() && rng.below(5) < 3).then(|| (*rng.pick(&TITLES)).to_owned()),
            addresses: Vec::new(),
            is_member: member,
            card_no: member.then(|| format!("88{seq:08}")),
            birthday: if member { date(rng, 1950, 55) } else { None },
            gender: member.then(|| ["female", "male", "female", "male", "other"][rng.below(5)].to_owned()),
            household_size: member.then(|| 1 + rng.below(6) as i32),
            member_since: if member { date(rng, 2012, 14) } else { None },
            tags,
            created_at: now,
            updated_at: now,
            version: 1,
            duplicate_candidates: None,
        };
        // A planted duplicate: an earlier person again, the name spelled another way
        // (spaced out, or in lower case) and the same phone typed without separators.
        let gap = contacts / (PLANTED_DUPLICATES + 1);
        if gap > 0 && i > 0 && i % gap == 0 && i / gap <= PLANTED_DUPLICATES {
            let (of, _) = &people[i / 2];
            c.name = if of.name.is_ascii() {
                of.name.to_lowercase()
            } else {
                of.name.chars().map(String::from).collect::<Vec<_>>().join(" ")
            };
            c.phone.clone_from(&of.phone);
            c.phone_raw = of.phone.as_ref().map(|p| p.trim_start_matches("+86").to_owned());
            c.email = None;
        }
        people.push((c, account));
    }
    let list: Vec<&Contact> = people.iter().map(|(c, _)| c).collect();
    contacts::insert_many(tx, &list)?;
    let subjects: [(&str, &[&str]); 5] = [
        ("call", &["电话回访 Follow-up call", "확인 전화 Confirmation call", "询问补货 Restock call"]),
        ("visit", &["门店拜访 Store visit", "陈列检查 Display check", "매장 방문 Store visit"]),
        ("meeting", &["季度会议 Quarterly review", "新品推介 Product launch meeting"]),
        ("email", &["发送报价 Quotation sent", "促销方案 Promotion plan"]),
        ("note", &["客户反馈 Customer feedback", "竞品信息 Competitor note"]),
    ];
    let mut rows = Vec::with_capacity(people.len() * per_contact);
    let mut written = 0;
    for (contact, account) in &people {
        let id = contact.id;
        for _ in 0..per_contact {
            let (kind, list) = subjects[rng.below(KINDS.len())];
            let at = now - Duration::seconds(rng.below((days * 86_400) as usize) as i64);
            let owner = owners[rng.below(owners.len())];
            let branch = account.map_or(owner.branch, |a| a.branch);
            rows.push(vec![
                V::from(Id::new().get()),
                V::from(kind),
                V::BigInt(account.map(|a| a.id.get())),
                V::from(id.get()),
                V::from(*rng.pick(list)),
                V::from(at),
                V::from(branch.get()),
                V::from(owner.id.get()),
                V::from(at),
                V::from(at),
                V::from(1i64),
            ]);
        }
        if rows.len() >= 50_000 {
            written += tx.insert_rows("activities", &ACTIVITY_COLUMNS, &rows)? as usize;
            rows.clear();
        }
    }
    written += tx.insert_rows("activities", &ACTIVITY_COLUMNS, &rows)? as usize;
    Ok((people.len(), written))
}

/// Accounts per large batch; each gets 50 contacts with 10 activities each.
const LARGE_ACCOUNTS_PER_BATCH: usize = 400;
const LARGE_BATCHES: usize = 50;
const LARGE_CONTACTS_PER_ACCOUNT: usize = 50;
const LARGE_ACTIVITIES_PER_CONTACT: usize = 10;

/// Seeds 1,000,000 contacts and 10,000,000 activities (on top of the small set), in 50
/// batches of one transaction each, printing progress; resumes after the last complete
/// batch.
pub fn seed_large(db: &Db) -> Result<()> {
    let done = db.read_blocking(|tx| {
        count(tx, "SELECT count(*) FROM accounts WHERE external_id LIKE $1", &[V::from("BULK-%")])
    })? as usize;
    let first = done / LARGE_ACCOUNTS_PER_BATCH;
    if first >= LARGE_BATCHES {
        return Ok(());
    }
    let started = Instant::now();
    println!(
        "demo --size large: {} contacts and {} activities in {LARGE_BATCHES} batches",
        LARGE_BATCHES * LARGE_ACCOUNTS_PER_BATCH * LARGE_CONTACTS_PER_ACCOUNT,
        LARGE_BATCHES * LARGE_ACCOUNTS_PER_BATCH * LARGE_CONTACTS_PER_ACCOUNT * LARGE_ACTIVITIES_PER_CONTACT
    );
    let category = db
        .read_blocking(|tx| {
            let rows: Vec<i64> = tx.query_sql(
                "SELECT id FROM customer_categories WHERE name = $1",
                &[V::from("加盟店 Franchise store")],
            )?;
            Ok::<_, kernel::Error>(rows.first().copied())
        })?
        .context("the small demo data set is missing its categories")?;
    if db.backend() == kernel::Backend::Sqlite {
        // The term index takes its inserts in random order: with SQLite's default cache a
        // batch spends most of its time re-reading index pages once the index outgrows it.
        // Up to 1 GB for this load only (the writer connection; put back at the end).
        db.write_blocking(|tx| tx.batch("PRAGMA cache_size = -1000000"))?;
    }
    for batch in first..LARGE_BATCHES {
        // Batches start in a partly deleted state only if the process died mid-transaction,
        // which the database rolled back: each batch is all or nothing.
        let (contacts, activities) = db
            .write_blocking(|tx| -> kernel::Result<(usize, usize)> {
                let owners = owners(tx)?;
                let mut rng = Rng(0xA076_1D64_78BD_642F ^ (batch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let now = Utc::now().trunc_subsecs(0);
                let mut rows = Vec::new();
                let mut placed = Vec::new();
                let mut names = Vec::new();
                for i in 0..LARGE_ACCOUNTS_PER_BATCH {
                    let n = batch * LARGE_ACCOUNTS_PER_BATCH + i;
                    let owner = owners[n % owners.len()];
                    let id = Id::new();
                    let name = format!("{}{}电器 {}号店", CITIES[n % CITIES.len()], rng.pick(&SURNAMES), n + 1);
                    let tier = ["A", "B", "C"][rng.below(3)];
                    let custom = json!({"shelf_share": 10 + rng.below(60), "tier": tier});
                    rows.push(vec![
                        V::from(id.get()),
                        V::from(name.clone()),
                        V::from(category),
                        V::from(owner.branch.get()),
                        V::from(owner.id.get()),
                        V::from("active"),
                        V::from(format!("BULK-{n:06}")),
                        V::Json(Some(Box::new(custom))),
                        V::from(now),
                        V::from(now),
                    ]);
                    names.push((id, name, format!("BULK-{n:06}")));
                    placed.push(Placed { id, branch: owner.branch, owner: owner.id });
                }
                tx.insert_rows(
                    "accounts",
                    &[
                        "id",
                        "name",
                        "category_id",
                        "branch_id",
                        "owner_id",
                        "status",
                        "external_id",
                        "custom",
                        "created_at",
                        "updated_at",
                    ],
                    &rows,
                )?;
                let docs: Vec<(Id, Document<'_>)> = names
                    .iter()
                    .map(|(id, name, ext)| (*id, Document { name, other: vec![ext.as_str()], ..Default::default() }))
                    .collect();
                search::insert_documents(tx, RecordType::Account, &docs)?;
                bulk(
                    tx,
                    &mut rng,
                    &placed,
                    &owners,
                    None,
                    LARGE_ACCOUNTS_PER_BATCH * LARGE_CONTACTS_PER_ACCOUNT,
                    LARGE_ACTIVITIES_PER_CONTACT,
                    730,
                )
            })
            .with_context(|| format!("large demo batch {}", batch + 1))?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  batch {:>2}/{LARGE_BATCHES}: +{contacts} contacts, +{activities} activities ({secs:.0} s, {:.0} contacts/s)",
            batch + 1,
            ((batch + 1 - first) * contacts) as f64 / secs.max(0.001)
        );
    }
    let analyse = Instant::now();
    match db.backend() {
        kernel::Backend::Postgres => db.read_blocking(|tx| {
            for table in ["search_index", "contacts", "accounts", "activities"] {
                tx.batch(&format!("VACUUM ANALYZE {table}"))?;
            }
            Ok::<_, kernel::Error>(())
        })?,
        _ => db.write_blocking(|tx| tx.batch("ANALYZE; PRAGMA cache_size = -32000"))?,
    }
    println!(
        "demo --size large: done in {:.0} s (statistics {:.0} s)",
        started.elapsed().as_secs_f64(),
        analyse.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_have_valid_phones_and_varied_scripts() {
        let mut rng = Rng(7);
        let mut scripts = [0; 3];
        for n in 0..500 {
            let (name, email, typed) = person(&mut rng, n);
            assert!(Phone::parse(&typed, "CN").is_ok(), "{typed}");
            assert!(email.contains('@'));
            let first = name.chars().next().unwrap();
            scripts[if ('\u{AC00}'..='\u{D7AF}').contains(&first) {
                1
            } else if first.is_ascii() {
                2
            } else {
                0
            }] += 1;
        }
        assert!(scripts.iter().all(|n| *n > 50), "{scripts:?}");
    }

    #[test]
    fn small_demo_is_complete_searchable_and_idempotent_on_both_backends() {
        for db in kernel::testing::test_databases() {
            super::super::seed(&db, "small").unwrap();
            let counts = |db: &Db| -> Vec<i64> {
                db.read_blocking(|tx| {
                    let mut out = Vec::new();
                    for table in ["customer_categories", "custom_fields", "accounts", "contacts", "activities", "tasks"]
                    {
                        out.push(count(tx, &format!("SELECT count(*) FROM {table}"), &[])?);
                    }
                    out.push(count(tx, "SELECT count(*) FROM accounts WHERE parent_id IS NOT NULL", &[])?);
                    Ok::<_, kernel::Error>(out)
                })
                .unwrap()
            };
            let first = counts(&db);
            assert_eq!(first[0], 7, "categories");
            assert!(first[1] >= 20, "custom fields");
            assert!((190..=230).contains(&first[2]), "accounts {first:?}");
            assert_eq!(first[3], 5_000);
            assert_eq!(first[4], 20_000);
            assert!(first[6] > 100, "stores under chain headquarters");
            super::super::seed(&db, "small").unwrap();
            assert_eq!(counts(&db), first, "a second run adds nothing");

            // The demo sales rep has tasks today and overdue, and finds customers by name.
            let sales = db
                .read_blocking(|tx| {
                    let u = users::find_by_email(tx, "sales@demo.rapport.test")?.unwrap();
                    kernel::identity::principal_for_user(tx, u.id)
                })
                .unwrap();
            let day = db.read_blocking(|tx| tasks::my_day(tx, &sales, Utc::now(), "Asia/Shanghai")).unwrap();
            assert!(!day.today.is_empty() && !day.overdue.is_empty());
            let admin = Principal::system(Channel::Cli);
            for q in ["王", "김", "gome", "沃尔玛"] {
                let hits = db.read_blocking(|tx| search::search(tx, &admin, q, Some(5))).unwrap();
                assert_eq!(hits.len(), 5, "{q}");
            }

            // About half the contacts are members, each with their own card, found by it.
            let (members, cards, tagged, tag_rows, regions) = db
                .read_blocking(|tx| {
                    Ok::<_, kernel::Error>((
                        count(tx, "SELECT count(*) FROM contacts WHERE is_member", &[])?,
                        count(tx, "SELECT count(DISTINCT card_no) FROM contacts WHERE birthday IS NOT NULL AND gender IS NOT NULL", &[])?,
                        count(tx, "SELECT count(*) FROM contacts WHERE tags <> '[]'", &[])?,
                        count(tx, "SELECT count(*) FROM record_tags WHERE record_type = 'contact'", &[])?,
                        count(tx, "SELECT count(*) FROM accounts WHERE region IS NOT NULL AND addresses <> '[]'", &[])?,
                    ))
                })
                .unwrap();
            assert!((2_000..=3_000).contains(&members), "members {members}");
            assert!(cards > members * 9 / 10, "cards {cards} of {members}");
            assert!(tagged > 300 && tag_rows == tagged, "tagged {tagged}, tag rows {tag_rows}");
            assert_eq!(regions, first[2], "every account has a region and an address");
            let card: Vec<String> = db
                .read_blocking(|tx| {
                    tx.query_sql(
                        "SELECT card_no FROM contacts WHERE card_no IS NOT NULL ORDER BY card_no DESC LIMIT 1",
                        &[],
                    )
                })
                .unwrap();
            let by_card = |q: &str| -> Vec<String> {
                let hits = db.read_blocking(|tx| search::search(tx, &admin, q, Some(50))).unwrap();
                db.read_blocking(|tx| {
                    let mut out = Vec::new();
                    for h in &hits {
                        let rows: Vec<String> = tx.query_sql(
                            "SELECT card_no FROM contacts WHERE id = $1 AND card_no IS NOT NULL",
                            &[V::from(h.id.get())],
                        )?;
                        out.extend(rows);
                    }
                    Ok::<_, kernel::Error>(out)
                })
                .unwrap()
            };
            assert_eq!(by_card(&card[0]), [card[0].clone()], "the whole card number finds its member");
            assert!(by_card(&card[0][3..]).contains(&card[0]), "so does a fragment");

            // Tag filters and the duplicate scan see the bulk-written records.
            for tag in ["vip", "key-account", "north"] {
                let filter = accounts::AccountFilter { tag: Some(tag.into()), ..Default::default() };
                let page = db
                    .read_blocking(|tx| accounts::list(tx, &admin, &filter, &kernel::paging::PageRequest::default()))
                    .unwrap();
                assert!(!page.items.is_empty(), "{tag}");
            }
            let filter = contacts::ContactFilter { tag: Some("vip".into()), ..Default::default() };
            let page = db
                .read_blocking(|tx| contacts::list(tx, &admin, &filter, &kernel::paging::PageRequest::default()))
                .unwrap();
            assert!(!page.items.is_empty(), "contacts tagged vip");
            let pairs = db
                .write_blocking(|tx| {
                    customers::duplicates::ensure_built(tx, &admin, RecordType::Contact)?;
                    customers::duplicates::scan(tx, &admin, RecordType::Contact, Some(100))
                })
                .unwrap();
            let planted = pairs
                .iter()
                .filter(|p| p.reasons.iter().any(|r| r == "same_phone") && p.names[0] != p.names[1])
                .count();
            assert!(planted >= PLANTED_DUPLICATES, "{pairs:?}");
        }
    }
}
