//! Dates and numbers in the reader's locale and time zone.
use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

const MONTHS_EN: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTHS_EN_LONG: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn zone(tz: &str) -> Tz {
    tz.parse().unwrap_or(Tz::UTC)
}

/// en "22 Nov 2026, 21:05", zh-CN "2026年11月22日 21:05", ko-KR "2026. 11. 22. 21:05".
pub fn datetime(at: &DateTime<Utc>, tz: &str, locale: &str) -> String {
    let l = at.with_timezone(&zone(tz));
    let (y, m, d, h, min) = (l.year(), l.month(), l.day(), l.hour(), l.minute());
    match locale {
        "zh-CN" => format!("{y}年{m}月{d}日 {h:02}:{min:02}"),
        "ko-KR" => format!("{y}. {m}. {d}. {h:02}:{min:02}"),
        _ => format!("{d} {} {y}, {h:02}:{min:02}", MONTHS_EN[m as usize - 1]),
    }
}

/// A long date with the weekday: en "Sunday, 22 November 2026", zh-CN "2026年11月22日 星期日",
/// ko-KR "2026년 11월 22일 일요일".
pub fn long_date(at: &DateTime<Utc>, tz: &str, locale: &str) -> String {
    let l = at.with_timezone(&zone(tz));
    let (y, m, d) = (l.year(), l.month(), l.day());
    let w = l.weekday();
    match locale {
        "zh-CN" => {
            let names = ["一", "二", "三", "四", "五", "六", "日"];
            format!("{y}年{m}月{d}日 星期{}", names[w.num_days_from_monday() as usize])
        }
        "ko-KR" => {
            let names = ["월", "화", "수", "목", "금", "토", "일"];
            format!("{y}년 {m}월 {d}일 {}요일", names[w.num_days_from_monday() as usize])
        }
        _ => format!("{}, {d} {} {y}", weekday_en(w), MONTHS_EN_LONG[m as usize - 1]),
    }
}

fn weekday_en(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// Whole numbers with thousands separators (all three locales group by three with commas).
pub fn number(n: i64, _locale: &str) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_per_locale() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 13, 5, 0).unwrap();
        assert_eq!(datetime(&at, "Asia/Shanghai", "en"), "22 Nov 2026, 21:05");
        assert_eq!(datetime(&at, "Asia/Shanghai", "zh-CN"), "2026年11月22日 21:05");
        assert_eq!(datetime(&at, "Asia/Shanghai", "ko-KR"), "2026. 11. 22. 21:05");
        assert_eq!(datetime(&at, "Asia/Seoul", "ko-KR"), "2026. 11. 22. 22:05");
        assert_eq!(long_date(&at, "UTC", "en"), "Sunday, 22 November 2026");
        assert_eq!(long_date(&at, "UTC", "zh-CN"), "2026年11月22日 星期日");
        assert_eq!(long_date(&at, "UTC", "ko-KR"), "2026년 11월 22일 일요일");
        assert_eq!(number(1234567, "en"), "1,234,567");
        assert_eq!(number(-1000, "ko-KR"), "-1,000");
        assert_eq!(number(999, "zh-CN"), "999");
    }
}
