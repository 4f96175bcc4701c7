//! Domain values that validate on construction and cannot exist invalid.
use serde::{Deserialize, Serialize};

/// A lower-cased, syntactically valid e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, String> {
        let text = input.trim().to_lowercase();
        if text.is_empty() {
            return Err("is required".into());
        }
        if text.chars().count() > 254 {
            return Err("is longer than 254 characters".into());
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err(format!("{input:?} is not an e-mail address (no @)"));
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | ':' | '"' | '@' | '[' | ']' | '\\')
            });
        if !domain_ok || !local_ok {
            return Err(format!("{input:?} is not an e-mail address"));
        }
        Ok(Email(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A trimmed, non-empty display name of at most `max` characters.
pub fn name(input: &str, max: usize) -> Result<String, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("is required".into());
    }
    if text.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(text.to_owned())
}

/// The interface languages Rapport speaks.
pub const LOCALES: [&str; 3] = ["en", "zh-CN", "ko-KR"];

pub fn locale(input: &str) -> Result<String, String> {
    LOCALES
        .iter()
        .find(|l| l.eq_ignore_ascii_case(input.trim()))
        .map(|l| (*l).to_owned())
        .ok_or_else(|| format!("must be one of {}", LOCALES.join(", ")))
}

/// An IANA time zone name such as `Asia/Shanghai`.
pub fn time_zone(input: &str) -> Result<String, String> {
    input
        .trim()
        .parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| format!("{input:?} is not a time zone (e.g. Asia/Shanghai, Asia/Seoul)"))
}

pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(Email::parse("  Wang.Fang@Gome.COM.cn ").unwrap().as_str(), "wang.fang@gome.com.cn");
        assert_eq!(Email::parse("김민준@예시.한국").unwrap().as_str(), "김민준@예시.한국");
        for bad in ["", "no-at", "a@b", "a@.b.c", "a b@c.d", "@c.d", "a@c..d"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_locales_zones() {
        assert_eq!(name("  王芳 ", 10).unwrap(), "王芳");
        assert!(name("   ", 10).is_err());
        assert!(name(&"x".repeat(11), 10).is_err());
        assert_eq!(locale("zh-cn").unwrap(), "zh-CN");
        assert!(locale("fr").is_err());
        assert_eq!(time_zone("Asia/Seoul").unwrap(), "Asia/Seoul");
        assert!(time_zone("Mars/Base").is_err());
    }
}
