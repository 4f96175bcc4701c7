//! Phone numbers: stored as E.164 (`+8613800138000`) next to what the user typed.
//!
//! A small normaliser rather than a phone-metadata library: it knows the national formats
//! of the two regions branches default to (CN, KR) and accepts any other number written
//! internationally (`+<country code> …`), checking only digits and length. Numbers that
//! come in through `+86`/`+82` are checked against the CN/KR rules as well, so the
//! normalised form parses back to itself.
use serde::Serialize;

/// Separators people type between digit groups.
const SEPARATORS: [char; 6] = [' ', '-', '.', '(', ')', '/'];

/// A valid phone number: E.164 plus the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Phone {
    e164: String,
    raw: String,
}

impl Phone {
    /// Parses `input` written in `region`'s national format (`CN` or `KR`; anything else
    /// accepts only international numbers) or internationally (`+…` or `00…`).
    pub fn parse(input: &str, region: &str) -> Result<Phone, String> {
        let raw = input.trim();
        if raw.is_empty() {
            return Err("is required".into());
        }
        if raw.chars().count() > 40 {
            return Err("is longer than 40 characters".into());
        }
        let mut digits = String::new();
        let mut international = false;
        for (i, c) in raw.chars().map(half_width).enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => international = true,
                c if SEPARATORS.contains(&c) => {}
                _ => return Err(format!("{raw:?} is not a phone number (only digits, spaces, + - . ( ) /)")),
            }
        }
        if !international && let Some(rest) = digits.strip_prefix("00") {
            international = true;
            digits = rest.to_owned();
        }
        let e164 = if international { international_number(&digits) } else { national_number(&digits, region) };
        e164.map(|e164| Phone { e164, raw: raw.to_owned() }).ok_or_else(|| {
            if international {
                format!("{raw:?} is not a valid international phone number")
            } else {
                format!("{raw:?} is not a valid {region} phone number (add +country code for other countries)")
            }
        })
    }

    /// `+` and 8 to 15 digits.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// What the user typed, trimmed.
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

/// Full-width digits and signs (typed with Chinese, Korean and Japanese input methods).
fn half_width(c: char) -> char {
    match c {
        '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
        '＋' => '+',
        '－' | '—' | '–' => '-',
        '（' => '(',
        '）' => ')',
        '\u{3000}' => ' ',
        c => c,
    }
}

/// Digits after `+`: the country code and the national significant number.
fn international_number(digits: &str) -> Option<String> {
    for (code, valid) in [("86", cn_significant as fn(&str) -> bool), ("82", kr_significant)] {
        if let Some(national) = digits.strip_prefix(code) {
            // `+86 (0)21 …`: the trunk zero is often written after the country code.
            let national = national.strip_prefix('0').unwrap_or(national);
            return valid(national).then(|| format!("+{code}{national}"));
        }
    }
    let ok = (8..=15).contains(&digits.len()) && !digits.starts_with('0');
    ok.then(|| format!("+{digits}"))
}

fn national_number(digits: &str, region: &str) -> Option<String> {
    let (code, valid): (&str, fn(&str) -> bool) = match region {
        "CN" => ("86", cn_significant),
        "KR" => ("82", kr_significant),
        _ => return None,
    };
    // A leading 0 is the trunk prefix (landlines in CN; every number but 15xx in KR).
    let significant = digits.strip_prefix('0').unwrap_or(digits);
    if significant.starts_with('0') {
        return None;
    }
    valid(significant).then(|| format!("+{code}{significant}"))
}

/// China: mobiles `1[3-9]` + 9 digits (typed without trunk prefix); landlines area code
/// `10`, `2x` or `xxx` then a 7- or 8-digit subscriber number.
fn cn_significant(n: &str) -> bool {
    let b = n.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) || b.is_empty() {
        return false;
    }
    match b[0] {
        b'1' if b.get(1) == Some(&b'0') => (9..=10).contains(&b.len()),
        b'1' => b.len() == 11 && matches!(b.get(1), Some(b'3'..=b'9')),
        b'2' => (9..=10).contains(&b.len()),
        b'3'..=b'9' => (10..=11).contains(&b.len()),
        _ => false,
    }
}

/// Korea: mobiles `01x`, Seoul `02`, other areas and VoIP `0[3-8]x`, and the 8-digit
/// nationwide numbers `15xx`, `16xx`, `18xx` (no trunk prefix).
fn kr_significant(n: &str) -> bool {
    let b = n.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) || b.is_empty() {
        return false;
    }
    match (b[0], b.get(1)) {
        (b'1', Some(b'5' | b'6' | b'8')) => b.len() == 8,
        (b'1', Some(b'0' | b'1' | b'6'..=b'9')) => (9..=10).contains(&b.len()),
        (b'2', _) => (8..=9).contains(&b.len()),
        (b'3'..=b'8', _) => (9..=10).contains(&b.len()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    fn e164(input: &str, region: &str) -> String {
        Phone::parse(input, region).unwrap_or_else(|e| panic!("{input}: {e}")).e164
    }

    #[test]
    fn national_and_international_forms() {
        assert_eq!(e164("138 0013 8000", "CN"), "+8613800138000");
        assert_eq!(e164("+86 138-0013-8000", "CN"), "+8613800138000");
        assert_eq!(e164("+86 138-0013-8000", "KR"), "+8613800138000");
        assert_eq!(e164("0086 13800138000", "KR"), "+8613800138000");
        assert_eq!(e164("(021) 6123 4567", "CN"), "+862161234567");
        assert_eq!(e164("010-1234-5678", "CN"), "+861012345678");
        assert_eq!(e164("0755-1234567", "CN"), "+867551234567");
        assert_eq!(e164("+86 (0)21 6123 4567", "CN"), "+862161234567");
        assert_eq!(e164("010-1234-5678", "KR"), "+821012345678");
        assert_eq!(e164("02-123-4567", "KR"), "+8221234567");
        assert_eq!(e164("031-1234-5678", "KR"), "+823112345678");
        assert_eq!(e164("1588-1234", "KR"), "+8215881234");
        assert_eq!(e164("+82 10 1234 5678", "CN"), "+821012345678");
        assert_eq!(e164("+1 415 555 0100", "CN"), "+14155550100");
        assert_eq!(e164("＋８６　１３８００１３８０００", "CN"), "+8613800138000");
        let p = Phone::parse("  138 0013 8000 ", "CN").unwrap();
        assert_eq!(p.raw(), "138 0013 8000");
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for (bad, region) in [
            ("", "CN"),
            ("   ", "CN"),
            ("call me", "CN"),
            ("138 0013 800", "CN"),    // one digit short
            ("238 0013 8000 1", "CN"), // too long
            ("6123 4567", "CN"),       // landline without area code
            ("12345", "CN"),
            ("+1 555", "CN"),
            ("+1234567890123456", "CN"), // longer than E.164 allows
            ("+86 123", "CN"),
            ("02-12", "KR"),
            ("138 0013 8000", "US"),
            ("138+0013", "CN"),
            ("138 0013 8000 ext 5", "CN"),
            ("000 1234 5678", "KR"),
        ] {
            assert!(Phone::parse(bad, region).is_err(), "{bad:?} in {region} was accepted");
        }
    }

    /// Property: every accepted number, in any formatting, normalises to an E.164 form
    /// that parses back to itself (in any region), and formatting never changes it.
    #[test]
    fn normalising_twice_changes_nothing() {
        let mut rng = rand::rng();
        let separators = [" ", "-", ".", "", "  ", " - "];
        for _ in 0..5000 {
            let len = rng.random_range(6..=16);
            let mut digits: String = (0..len).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
            if rng.random_bool(0.3) {
                digits = format!("1{}{}", rng.random_range(3..=9), &digits[..digits.len().min(9)]);
            }
            let region = if rng.random_bool(0.5) { "CN" } else { "KR" };
            let prefix = ["", "+", "+86 ", "+82 ", "00"][rng.random_range(0..5)];
            let mut typed = String::from(prefix);
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && rng.random_bool(0.25) {
                    typed.push_str(separators[rng.random_range(0..separators.len())]);
                }
                typed.push(c);
            }
            let Ok(phone) = Phone::parse(&typed, region) else { continue };
            let e = phone.e164();
            assert!(e.starts_with('+') && (9..=16).contains(&e.len()), "{typed:?} → {e}");
            assert!(e[1..].bytes().all(|b| b.is_ascii_digit()), "{typed:?} → {e}");
            for again_region in ["CN", "KR", "US"] {
                assert_eq!(Phone::parse(e, again_region).map(|p| p.e164).as_deref(), Ok(e), "{typed:?}");
            }
            let plain: String = typed.chars().filter(|c| !SEPARATORS.contains(c)).collect();
            assert_eq!(Phone::parse(&plain, region).map(|p| p.e164).as_deref(), Ok(e), "{typed:?} vs {plain:?}");
        }
    }
}
