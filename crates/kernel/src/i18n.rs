//! Translations (Fluent) for any crate: a [`Catalog`] is built once from a crate's own
//! `(locale, source)` pairs, embedded with `include_str!`. The web crate keeps its page
//! texts in one catalog, workflow its notice texts in another; a message missing in a
//! locale falls back to English, then to its key, so a gap shows, never panics.
use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// The locales Rapport speaks (`users.locale`).
pub const LOCALES: [&str; 3] = ["en", "zh-CN", "ko-KR"];

pub struct Catalog {
    bundles: HashMap<String, FluentBundle<FluentResource>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.bundles.keys()).finish()
    }
}

impl Catalog {
    /// Parses each source; errors are logged (the good messages of a file still load).
    pub fn new(sources: &[(&str, &str)]) -> Catalog {
        let mut bundles = HashMap::new();
        for (locale, source) in sources {
            let resource = FluentResource::try_new((*source).to_owned()).unwrap_or_else(|(res, errors)| {
                tracing::error!(?errors, locale, "translation file has errors");
                res
            });
            let lang: unic_langid::LanguageIdentifier = locale.parse().unwrap_or_default();
            let mut bundle = FluentBundle::new_concurrent(vec![lang]);
            bundle.set_use_isolating(false);
            if let Err(errors) = bundle.add_resource(resource) {
                tracing::error!(?errors, locale, "duplicate translation keys");
            }
            bundles.insert((*locale).to_owned(), bundle);
        }
        Catalog { bundles }
    }

    /// The message `key` in `locale`, falling back to English, then to the key itself.
    pub fn t(&self, locale: &str, key: &str) -> String {
        self.format(locale, key, None)
    }

    /// The message `key` with string arguments.
    pub fn t_args(&self, locale: &str, key: &str, args: &[(&str, &str)]) -> String {
        let mut fluent = FluentArgs::new();
        for (k, v) in args {
            fluent.set(*k, FluentValue::from(*v));
        }
        self.format(locale, key, Some(&fluent))
    }

    /// Whether `locale` (or English) has message `key`.
    pub fn has(&self, locale: &str, key: &str) -> bool {
        [locale, "en"].iter().any(|l| self.bundles.get(*l).is_some_and(|b| b.has_message(key)))
    }

    fn format(&self, locale: &str, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        for candidate in [locale, "en"] {
            let Some(bundle) = self.bundles.get(candidate) else { continue };
            let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else { continue };
            let mut errors = Vec::new();
            return bundle.format_pattern(pattern, args, &mut errors).into_owned();
        }
        key.to_owned()
    }
}

/// The message keys a Fluent source defines (for tests that every locale has every key).
pub fn keys(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.starts_with('-'))
        .filter_map(|l| l.split_once(" =").map(|(k, _)| k.trim().to_owned()))
        .collect()
}

/// The keys of `sources`' English source missing in another locale, by locale.
pub fn missing_keys(sources: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
    let en = sources.iter().find(|(l, _)| *l == "en").map(|(_, s)| keys(s)).unwrap_or_default();
    sources
        .iter()
        .filter(|(l, _)| *l != "en")
        .filter_map(|(l, s)| {
            let have = keys(s);
            let missing: Vec<String> = en.iter().filter(|k| !have.contains(k)).cloned().collect();
            (!missing.is_empty()).then(|| ((*l).to_owned(), missing))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCES: [(&str, &str); 2] =
        [("en", "hello = Hello, { $name }!\nonly-en = English\n"), ("zh-CN", "hello = 你好，{ $name }！\n")];

    #[test]
    fn formats_and_falls_back_to_english_then_the_key() {
        let c = Catalog::new(&SOURCES);
        assert_eq!(c.t_args("zh-CN", "hello", &[("name", "王芳")]), "你好，王芳！");
        assert_eq!(c.t_args("ko-KR", "hello", &[("name", "Kim")]), "Hello, Kim!");
        assert_eq!(c.t("zh-CN", "only-en"), "English");
        assert_eq!(c.t("en", "nope"), "nope");
        assert!(c.has("zh-CN", "only-en") && !c.has("en", "nope"));
        assert_eq!(missing_keys(&SOURCES), [("zh-CN".to_owned(), vec!["only-en".to_owned()])]);
    }
}
