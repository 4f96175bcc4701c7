//! Decimal amounts without floating point: money (`{"amount": "1999.00", "currency":
//! "CNY"}`) and the numbers conditions compare.
use serde::{Deserialize, Serialize};

/// Digits after the point a currency's amounts carry (ISO 4217 minor unit).
pub fn exponent(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" => 0,
        _ => 2,
    }
}

/// A decimal number scaled by 10^6, exact for every amount and percentage Rapport keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Decimal(pub i128);

const SCALE_DIGITS: u32 = 6;

impl Decimal {
    /// Parses `-12`, `1999.5`, `0.125`; at most 6 digits after the point, 18 before.
    pub fn parse(input: &str) -> Result<Decimal, String> {
        let s = input.trim();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !ok(whole) || !ok(frac) || (digits.contains('.') && frac.is_empty()) {
            return Err(format!("{input:?} is not a decimal number"));
        }
        if whole.len() > 18 || frac.len() > SCALE_DIGITS as usize {
            return Err(format!("{input:?} has too many digits"));
        }
        let whole: i128 = whole.parse().map_err(|_| format!("{input:?} is not a decimal number"))?;
        let mut f: i128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| "bad fraction".to_owned())? };
        f *= 10i128.pow(SCALE_DIGITS - frac.len() as u32);
        let v = whole * 10i128.pow(SCALE_DIGITS) + f;
        Ok(Decimal(if negative { -v } else { v }))
    }

    /// A JSON number or a string holding one.
    pub fn from_json(value: &serde_json::Value) -> Result<Decimal, String> {
        match value {
            serde_json::Value::String(s) => Decimal::parse(s),
            serde_json::Value::Number(n) => Decimal::parse(&n.to_string()),
            other => Err(format!("{other} is not a number")),
        }
    }

    pub fn from_minor(minor: i64, exponent: u32) -> Decimal {
        Decimal(i128::from(minor) * 10i128.pow(SCALE_DIGITS - exponent))
    }
}

/// Money as the API shows it: a decimal string and an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// A decimal string, e.g. `"1999.00"`.
    pub amount: String,
    /// ISO 4217, e.g. `CNY`, `KRW`, `USD`.
    pub currency: String,
}

impl Money {
    /// The amount in minor units (fen, cents; won have none) and the currency, checked:
    /// positive, no more digits after the point than the currency has, a 3-letter code.
    pub fn to_minor(&self) -> Result<(i64, String), Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let currency = self.currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(("amount.currency", format!("{:?} is not a 3-letter currency code", self.currency)));
        }
        let exp = exponent(&currency);
        let minor = match Decimal::parse(&self.amount) {
            Err(e) => {
                errors.push(("amount.amount", e));
                None
            }
            Ok(d) => {
                let unit = 10i128.pow(SCALE_DIGITS - exp);
                if d.0 % unit != 0 {
                    errors.push((
                        "amount.amount",
                        format!("{currency} amounts have at most {exp} digits after the point"),
                    ));
                    None
                } else if d.0 <= 0 {
                    errors.push(("amount.amount", "must be more than zero".to_owned()));
                    None
                } else {
                    i64::try_from(d.0 / unit).ok().or_else(|| {
                        errors.push(("amount.amount", "is too large".to_owned()));
                        None
                    })
                }
            }
        };
        match minor {
            Some(m) if errors.is_empty() => Ok((m, currency)),
            _ => Err(errors),
        }
    }

    pub fn from_minor(minor: i64, currency: &str) -> Money {
        let exp = exponent(currency);
        let amount = if exp == 0 {
            minor.to_string()
        } else {
            let unit = 10i64.pow(exp);
            let sign = if minor < 0 { "-" } else { "" };
            format!("{sign}{}.{:0width$}", (minor / unit).abs(), (minor % unit).abs(), width = exp as usize)
        };
        Money { amount, currency: currency.to_owned() }
    }

    /// The amount for people to read: thousands grouped (`1,999.00 CNY`, `88,000 KRW`), the
    /// way English, Chinese and Korean all write it.
    pub fn display(&self) -> String {
        let (sign, digits) = match self.amount.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", self.amount.as_str()),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (digits, None),
        };
        let mut grouped = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        match fraction {
            Some(f) => format!("{sign}{grouped}.{f} {}", self.currency),
            None => format!("{sign}{grouped} {}", self.currency),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(Decimal::parse("100000").unwrap(), Decimal(100_000_000_000));
        assert_eq!(Decimal::parse("0.1").unwrap(), Decimal(100_000));
        assert_eq!(Decimal::parse("-2.5").unwrap(), Decimal(-2_500_000));
        for bad in ["", "1.", ".5", "1e3", "abc", "1.1234567", "--1"] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
        assert!(Decimal::parse("10.5").unwrap() > Decimal::parse("10").unwrap());
    }

    #[test]
    fn money_round_trips_through_minor_units() {
        let m = Money { amount: "1999.5".into(), currency: "cny".into() };
        assert_eq!(m.to_minor().unwrap(), (199_950, "CNY".into()));
        assert_eq!(Money::from_minor(199_950, "CNY").amount, "1999.50");
        assert_eq!(Money::from_minor(5, "USD").amount, "0.05");
        let won = Money { amount: "50000".into(), currency: "KRW".into() };
        assert_eq!(won.to_minor().unwrap(), (50_000, "KRW".into()));
        assert_eq!(Money::from_minor(50_000, "KRW").amount, "50000");
        assert_eq!(Money::from_minor(50_000, "KRW").display(), "50,000 KRW");
        assert_eq!(Money::from_minor(123_456_789, "CNY").display(), "1,234,567.89 CNY");
        assert_eq!(Money::from_minor(-99_900, "USD").display(), "-999.00 USD");
        assert_eq!(Money::from_minor(5, "USD").display(), "0.05 USD");
        assert!(Money { amount: "1.5".into(), currency: "KRW".into() }.to_minor().is_err());
        assert!(Money { amount: "0".into(), currency: "CNY".into() }.to_minor().is_err());
        assert!(Money { amount: "1".into(), currency: "yuan".into() }.to_minor().is_err());
        assert_eq!(Decimal::from_minor(199_950, 2), Decimal::parse("1999.50").unwrap());
    }
}
