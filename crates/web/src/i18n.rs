//! Translations (Fluent): English, Simplified Chinese and Korean, embedded in the binary.
//! The loader is `kernel::i18n::Catalog`; these are the pages' own texts.
use kernel::i18n::Catalog;

pub use kernel::i18n::LOCALES;

const SOURCES: [(&str, &str); 3] = [
    ("en", include_str!("../i18n/en.ftl")),
    ("zh-CN", include_str!("../i18n/zh-CN.ftl")),
    ("ko-KR", include_str!("../i18n/ko-KR.ftl")),
];

pub struct I18n {
    catalog: Catalog,
}

impl I18n {
    pub fn load() -> I18n {
        I18n { catalog: Catalog::new(&SOURCES) }
    }

    /// The message `key` in `locale`, falling back to English, then to the key itself.
    pub fn t(&self, locale: &str, key: &str) -> String {
        self.catalog.t(locale, key)
    }

    pub fn t_args(&self, locale: &str, key: &str, args: &[(&str, &str)]) -> String {
        self.catalog.t_args(locale, key, args)
    }

    /// Every message key of a locale (for the test that all locales are complete).
    pub fn keys(locale: &str) -> Vec<String> {
        let source = SOURCES.iter().find(|(l, _)| *l == locale).map(|(_, s)| *s).unwrap_or_default();
        kernel::i18n::keys(source)
    }
}

/// Picks a supported locale from an `Accept-Language` header.
pub fn negotiate(accept_language: Option<&str>) -> &'static str {
    let Some(header) = accept_language else { return "en" };
    let mut ranked: Vec<(f32, &str)> = header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    for (_, tag) in ranked {
        let lower = tag.to_ascii_lowercase();
        if lower.starts_with("zh") {
            return "zh-CN";
        }
        if lower.starts_with("ko") {
            return "ko-KR";
        }
        if lower.starts_with("en") {
            return "en";
        }
    }
    "en"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(Some("zh-CN,zh;q=0.9,en;q=0.8")), "zh-CN");
        assert_eq!(negotiate(Some("ko-KR,ko;q=0.9")), "ko-KR");
        assert_eq!(negotiate(Some("fr-FR,en;q=0.5,ko;q=0.7")), "ko-KR");
        assert_eq!(negotiate(Some("de")), "en");
        assert_eq!(negotiate(None), "en");
    }

    #[test]
    fn every_locale_has_every_key() {
        let en = I18n::keys("en");
        assert!(en.len() > 10);
        for locale in ["zh-CN", "ko-KR"] {
            let keys = I18n::keys(locale);
            let missing: Vec<&String> = en.iter().filter(|k| !keys.contains(k)).collect();
            assert!(missing.is_empty(), "{locale} lacks {missing:?}");
        }
    }
}
