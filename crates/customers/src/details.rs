//! The value types accounts and contacts share beyond name, e-mail and phone: postal
//! addresses, extra phones and e-mails, money amounts (a credit limit) and tags. Each is
//! checked and normalised here, and reports its problems under the field the client sent
//! (`addresses[1].country`, `phones[0]`, `tags`).
use kernel::error::Validator;
use kernel::values::{self, Email};
use kernel::{Id, Result, Tx};
use sea_query::{Expr, ExprTrait, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::phone::Phone;
use crate::record::RecordType;

/// The kinds of postal address.
pub const ADDRESS_KINDS: [&str; 4] = ["billing", "shipping", "office", "store"];

/// ISO 3166-1 alpha-2: every officially assigned code.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET \
FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR \
IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN \
MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY \
QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR \
TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// `CN`, `kr ` → `KR`; an unassigned code is refused.
pub fn check_country(input: &str) -> Result<String, String> {
    let code = input.trim().to_ascii_uppercase();
    if code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code) {
        Ok(code)
    } else {
        Err(format!("{:?} is not an ISO 3166-1 alpha-2 country code such as CN or KR", input.trim()))
    }
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// `billing`, `shipping`, `office` or `store`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default)]
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `CN`, `KR`.
    #[serde(default)]
    pub country: String,
}

/// At most this many addresses, extra phones or extra e-mails per record.
const LIST_MAX: usize = 20;

/// Checks and normalises addresses (trimmed, empty optional parts dropped, country
/// upper-cased); problems go under `addresses[i].<part>`.
pub(crate) fn check_addresses(v: &mut Validator, input: &[Address]) -> Vec<Address> {
    if input.len() > LIST_MAX {
        v.add("addresses", format!("at most {LIST_MAX} addresses"));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, a) in input.iter().enumerate() {
        let field = |part: &str| format!("addresses[{i}].{part}");
        let kind = a.kind.trim();
        if !ADDRESS_KINDS.contains(&kind) {
            v.add(&field("kind"), format!("must be one of {}", ADDRESS_KINDS.join(", ")));
        }
        let line1 = v.check(&field("line1"), values::name(&a.line1, 200));
        let city = v.check(&field("city"), values::name(&a.city, 100));
        let optional = |v: &mut Validator, part: &str, text: &Option<String>, max: usize| -> Option<String> {
            let t = text.as_deref().map(str::trim).filter(|t| !t.is_empty())?;
            v.check(&field(part), values::name(t, max))
        };
        let line2 = optional(v, "line2", &a.line2, 200);
        let province = optional(v, "province", &a.province, 100);
        let postcode = optional(v, "postcode", &a.postcode, 20);
        let country = v.check(&field("country"), check_country(&a.country));
        if let (Some(line1), Some(city), Some(country)) = (line1, city, country) {
            out.push(Address { kind: kind.to_owned(), line1, line2, city, province, postcode, country });
        }
    }
    out
}

/// An extra phone: E.164 and what was typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhoneEntry {
    /// E.164, e.g. `+8613800138000`.
    pub e164: String,
    /// As it was typed.
    pub raw: String,
}

/// Extra phones, each read like the primary one (national numbers in `region`); the
/// same number twice is kept once. Problems go under `phones[i]`.
pub(crate) fn check_phones(v: &mut Validator, input: &[String], region: &str) -> Vec<PhoneEntry> {
    if input.len() > LIST_MAX {
        v.add("phones", format!("at most {LIST_MAX} phones"));
        return Vec::new();
    }
    let mut out: Vec<PhoneEntry> = Vec::new();
    for (i, raw) in input.iter().enumerate() {
        if let Some(p) = v.check(&format!("phones[{i}]"), Phone::parse(raw, region))
            && !out.iter().any(|e| e.e164 == p.e164())
        {
            out.push(PhoneEntry { e164: p.e164().to_owned(), raw: p.raw().to_owned() });
        }
    }
    out
}

/// Extra e-mails, lower-cased, each once. Problems go under `emails[i]`.
pub(crate) fn check_emails(v: &mut Validator, input: &[String]) -> Vec<String> {
    if input.len() > LIST_MAX {
        v.add("emails", format!("at most {LIST_MAX} e-mails"));
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in input.iter().enumerate() {
        if let Some(e) = v.check(&format!("emails[{i}]"), Email::parse(raw).map(|e| e.as_str().to_owned()))
            && !out.contains(&e)
        {
            out.push(e);
        }
    }
    out
}

/// A money amount as a decimal string with at most two decimals (`"50000"`, `"50000.5"`,
/// `"50000.00"`), not negative, in minor units: `"50000.00"` → 5000000.
pub fn parse_money(input: &str) -> Result<i64, String> {
    let s = input.trim();
    let bad = || format!("{s:?} is not an amount with at most two decimals, such as \"50000.00\"");
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let ok = !whole.is_empty()
        && whole.len() <= 15
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= 2
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && s.contains('.') != fraction.is_empty();
    if !ok {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let cents: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    whole.checked_mul(100).and_then(|w| w.checked_add(cents)).ok_or_else(bad)
}

/// Minor units as the decimal string with two places: 5000000 → `"50000.00"`.
pub fn format_money(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// At most this many tags per record, each at most `TAG_MAX` characters.
pub const TAGS_MAX: usize = 20;
pub const TAG_MAX: usize = 40;

/// One tag: trimmed, lower-cased, 1..=40 characters, no control characters.
pub fn normalise_tag(input: &str) -> Result<String, String> {
    let t = input.trim().to_lowercase();
    if t.is_empty() {
        return Err("a tag cannot be empty".into());
    }
    if t.chars().count() > TAG_MAX {
        return Err(format!("tag {t:?} is longer than {TAG_MAX} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err(format!("tag {t:?} contains a control character"));
    }
    Ok(t)
}

/// A record's tags, normalised, each once, in the order given; problems go under `tags`.
pub(crate) fn check_tags(v: &mut Validator, input: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in input {
        if let Some(t) = v.check("tags", normalise_tag(t))
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    if out.len() > TAGS_MAX {
        v.add("tags", format!("at most {TAGS_MAX} tags"));
    }
    out
}

/// Replaces the tag rows of a record (after its own `tags` column was written).
pub(crate) fn write_tags(tx: &mut Tx<'_>, kind: RecordType, id: Id, tags: &[String]) -> Result<()> {
    let delete = Query::delete()
        .from_table(sea_query::Alias::new("record_tags"))
        .and_where(Expr::col(sea_query::Alias::new("record_type")).eq(kind.as_str()))
        .and_where(Expr::col(sea_query::Alias::new("record_id")).eq(id.get()))
        .to_owned();
    tx.execute(&delete)?;
    if tags.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert()
        .into_table(sea_query::Alias::new("record_tags"))
        .columns([
            sea_query::Alias::new("tag"),
            sea_query::Alias::new("record_type"),
            sea_query::Alias::new("record_id"),
        ])
        .to_owned();
    for t in tags {
        insert.values_panic([t.clone().into(), kind.as_str().into(), id.get().into()]);
    }
    tx.execute(&insert)?;
    Ok(())
}

/// Writes the tag rows of new records in bulk (they have none yet).
pub(crate) fn insert_tags(tx: &mut Tx<'_>, kind: RecordType, records: &[(Id, &[String])]) -> Result<()> {
    let rows: Vec<Vec<sea_query::Value>> = records
        .iter()
        .flat_map(|(id, tags)| tags.iter().map(move |t| vec![t.clone().into(), kind.as_str().into(), id.get().into()]))
        .collect();
    tx.insert_rows("record_tags", &["tag", "record_type", "record_id"], &rows)?;
    Ok(())
}

/// `null` given (clear it) versus not given (keep it), for patches.
pub(crate) fn given<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A JSON list column read back (`[]` when it holds anything else).
pub(crate) fn list_from<T: serde::de::DeserializeOwned>(value: Json) -> Vec<T> {
    serde_json::from_value(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact() {
        assert_eq!(parse_money("50000.00"), Ok(5_000_000));
        assert_eq!(parse_money(" 12.5 "), Ok(1250));
        assert_eq!(parse_money("7"), Ok(700));
        assert_eq!(format_money(5_000_000), "50000.00");
        assert_eq!(format_money(1205), "12.05");
        for bad in ["12.345", "-1", "1,000", "", ".5", "5.", "abc", "1e3", "9999999999999999"] {
            assert!(parse_money(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn countries_and_tags() {
        assert_eq!(check_country(" kr"), Ok("KR".into()));
        assert!(check_country("XX").is_err());
        assert!(check_country("CHN").is_err());
        assert_eq!(COUNTRIES.split(' ').count(), 249);
        assert_eq!(normalise_tag("  VIP "), Ok("vip".into()));
        assert!(normalise_tag(" ").is_err());
        assert!(normalise_tag(&"x".repeat(41)).is_err());
        let mut v = Validator::new();
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        check_tags(&mut v, &many);
        assert!(v.finish().is_err());
    }

    #[test]
    fn addresses_name_the_bad_part() {
        let mut v = Validator::new();
        let out = check_addresses(
            &mut v,
            &[
                Address {
                    kind: "store".into(),
                    line1: " 1 Nanjing Rd ".into(),
                    city: "Shanghai".into(),
                    country: "cn".into(),
                    postcode: Some(" ".into()),
                    ..Default::default()
                },
                Address {
                    kind: "home".into(),
                    line1: "x".into(),
                    city: "y".into(),
                    country: "ZZ".into(),
                    ..Default::default()
                },
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].country, "CN");
        assert_eq!(out[0].line1, "1 Nanjing Rd");
        assert_eq!(out[0].postcode, None);
        let fields: Vec<String> = match v.finish() {
            Err(kernel::Error::Validation(e)) => e.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(fields, ["addresses[1].kind", "addresses[1].country"]);
    }
}
