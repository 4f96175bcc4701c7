//! Shared pieces of Rapport's benchmark binaries: a tiny blocking connection pool, a
//! deterministic generator of realistic rows, and the statistics we report
//! (median with min–max, see shared/PERFORMANCE.md).

use std::sync::{Condvar, Mutex, PoisonError};

/// A fixed-size pool for connections used only from blocking threads.
///
/// Deliberately minimal: the spike and the raw HTTP baseline must measure the driver,
/// not a pool's features. All connections are opened up front, so `get` never connects.
pub struct BlockingPool<C: Send + 'static> {
    idle: Mutex<Vec<C>>,
    returned: Condvar,
}

impl<C: Send + 'static> BlockingPool<C> {
    pub fn new(conns: Vec<C>) -> Self {
        BlockingPool {
            idle: Mutex::new(conns),
            returned: Condvar::new(),
        }
    }

    /// Takes a connection, waiting for one if all are busy. Call on a blocking thread.
    pub fn get(&self) -> Pooled<'_, C> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(conn) = idle.pop() {
                return Pooled {
                    pool: self,
                    conn: Some(conn),
                };
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl<C: Send + 'static> Drop for BlockingPool<C> {
    fn drop(&mut self) {
        // The synchronous `postgres` client owns a private tokio runtime, and dropping it
        // on a thread that is inside another tokio runtime panics ("Cannot start a runtime
        // from within a runtime"). The last reference to a pool may well be released on an
        // async worker (axum state, a finished task), so hand the connections to a plain
        // thread and drop them there.
        let conns = std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner));
        if !conns.is_empty() {
            let _ = std::thread::spawn(move || drop(conns)).join();
        }
    }
}

pub struct Pooled<'a, C: Send + 'static> {
    pool: &'a BlockingPool<C>,
    conn: Option<C>,
}

impl<C: Send + 'static> std::ops::Deref for Pooled<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl<C: Send + 'static> std::ops::DerefMut for Pooled<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl<C: Send + 'static> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            self.pool.returned.notify_one();
        }
    }
}

/// SplitMix64: a small, fast, deterministic generator, so every run (and both designs)
/// see exactly the same data without pulling in a random-number crate.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant at these sizes.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// Skewed pick: index `i` is chosen with weight ~ 1/(i+1), so a few values (big
    /// cities, big branches) dominate and the long tail stays thin, as in real data.
    pub fn skewed(&mut self, n: usize) -> usize {
        // Harmonic weights by rejection: cheap and good enough for test data.
        loop {
            let i = self.below(n as u64) as usize;
            if self.below((i + 1) as u64) == 0 {
                return i;
            }
        }
    }
}

const CN_FAMILY: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
];
const CN_GIVEN: &[&str] = &[
    "秀英", "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军",
];
const KO_NAMES: &[&str] = &["김민준", "이서연", "박지훈", "최수아", "정하준", "강지우"];
const LATIN_FIRST: &[&str] = &[
    "Lia", "Mark", "Anna", "Jürgen", "Sofia", "Liam", "Chloé", "Ivan", "Emma",
];
const LATIN_LAST: &[&str] = &[
    "Müller", "Smith", "Rossi", "Dubois", "Novak", "García", "Wang", "Lee", "Kim",
];
const CITIES: &[&str] = &[
    "上海",
    "北京",
    "深圳",
    "广州",
    "Seoul",
    "杭州",
    "成都",
    "Hong Kong",
    "서울",
    "Singapore",
    "武汉",
    "Frankfurt",
    "南京",
    "Busan",
    "西安",
    "Taipei",
    "苏州",
    "London",
    "重庆",
    "Lyon",
];

/// A contact-like row as the CRM stores it.
pub struct Contact {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub city: &'static str,
    /// Microseconds since the Unix epoch (UTC).
    pub created_at_us: i64,
}

/// Mixed Chinese / Korean / Latin names, like a trade-fair import in this market.
pub fn person_name(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=4 => format!("{}{}", rng.pick(CN_FAMILY), rng.pick(CN_GIVEN)),
        5 => rng.pick(KO_NAMES).to_string(),
        6 | 7 => format!("{} {}", rng.pick(LATIN_FIRST), rng.pick(LATIN_LAST)),
        // Both scripts in one field, as business cards often have.
        _ => format!(
            "{}{} {} {}",
            rng.pick(CN_FAMILY),
            rng.pick(CN_GIVEN),
            rng.pick(LATIN_FIRST),
            rng.pick(LATIN_LAST)
        ),
    }
}

/// Phones in the formats people actually type.
pub fn phone(rng: &mut Rng) -> String {
    let n = rng.below(100_000_000);
    match rng.below(5) {
        0 => format!("+86 138 {:04} {:04}", n / 10_000, n % 10_000),
        1 => format!("(021) {:04}-{:04}", n / 10_000, n % 10_000),
        2 => format!("010-{n:08}"),
        3 => format!("+82 10-{:04}-{:04}", n / 10_000, n % 10_000),
        _ => format!("139{n:08}"),
    }
}

/// 2026-01-01T00:00:00Z in microseconds; created_at values spread over the year after it.
pub const BASE_TIME_US: i64 = 1_767_225_600_000_000;

pub fn contact(rng: &mut Rng, id: i64) -> Contact {
    Contact {
        id,
        name: person_name(rng),
        // Unique because the id is; mixed domains so the index is not trivially ordered.
        email: format!(
            "c{id}@{}",
            rng.pick(&["example.com", "mail.cn", "corp.kr", "shop.de"])
        ),
        phone: phone(rng),
        city: CITIES[rng.skewed(CITIES.len())],
        created_at_us: BASE_TIME_US + rng.below(365 * 86_400_000_000) as i64,
    }
}

/// RFC 3339 UTC text, the form Rapport stores instants in on SQLite.
pub fn rfc3339_us(us: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(us).expect("timestamp in range");
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Median, min and max of a non-empty sample.
pub fn summary(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// "12,345" style, for tables people read.
pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// Compact "13.6k" style for ranges.
pub fn compact(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}k", x / 1000.0)
    } else if x >= 1000.0 {
        format!("{:.2}k", x / 1000.0)
    } else {
        format!("{:.0}", x)
    }
}

/// "**12,345** [11.9k–13.0k]" without the bold: median [min–max].
pub fn fmt_summary(values: &[f64]) -> String {
    let (m, lo, hi) = summary(values);
    format!("{} [{}–{}]", thousands(m), compact(lo), compact(hi))
}
