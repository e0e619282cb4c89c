//! Money: integer fen (1 yuan = 100 fen). See docs/protocol.md#money.
//!
//! No floating point touches money anywhere in Tongbao. Amounts are parsed exactly from text and
//! displayed with two decimals.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of digital RMB in fen.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(pub u64);

/// Why a text amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing to parse.
    #[error("amount is empty")]
    Empty,
    /// A minus sign: amounts are never negative.
    #[error("amount {0:?} is negative")]
    Negative(String),
    /// More than two digits after the point.
    #[error("amount {0:?} has more than two decimals (the smallest unit is 1 fen = 0.01)")]
    TooPrecise(String),
    /// Not of the form 12, 12.5, 12.50 or ¥12.50.
    #[error("amount {0:?} is not a number like 12, 12.5 or ¥12.50")]
    Malformed(String),
    /// Larger than a u64 of fen.
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// Whole yuan as fen, `None` on overflow.
    pub fn from_yuan(yuan: u64) -> Option<Fen> {
        yuan.checked_mul(100).map(Fen)
    }

    /// Checked addition.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// Checked subtraction.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    /// Sum of an iterator, `None` on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Fen>>(iter: I) -> Option<Fen> {
        iter.into_iter()
            .try_fold(Fen::ZERO, |acc, x| acc.checked_add(x))
    }

    /// The amount as plain text without the currency sign: `12.50`.
    pub fn plain(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "¥{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl FromStr for Fen {
    type Err = AmountError;

    /// Parses `12`, `12.5`, `12.50`, `¥12.50` (also `￥` and a `CNY ` prefix) exactly.
    fn from_str(input: &str) -> Result<Fen, AmountError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        let s = s
            .strip_prefix('¥')
            .or_else(|| s.strip_prefix('￥'))
            .or_else(|| s.strip_prefix("CNY "))
            .unwrap_or(s)
            .trim_start();
        if s.starts_with('-') {
            return Err(AmountError::Negative(input.to_string()));
        }
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (s, None),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) {
            return Err(AmountError::Malformed(input.to_string()));
        }
        let frac_fen: u64 = match frac {
            None => 0,
            Some(f) if !digits(f) => return Err(AmountError::Malformed(input.to_string())),
            Some(f) if f.len() > 2 => return Err(AmountError::TooPrecise(input.to_string())),
            Some(f) if f.len() == 1 => u64::from(f.as_bytes()[0] - b'0') * 10,
            Some(f) => u64::from(f.as_bytes()[0] - b'0') * 10 + u64::from(f.as_bytes()[1] - b'0'),
        };
        let overflow = || AmountError::Overflow(input.to_string());
        let yuan: u64 = whole.parse().map_err(|_| overflow())?;
        yuan.checked_mul(100)
            .and_then(|f| f.checked_add(frac_fen))
            .map(Fen)
            .ok_or_else(overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        let ok = [
            ("12", 1200),
            ("12.5", 1250),
            ("12.50", 1250),
            ("¥12.50", 1250),
            ("￥0.01", 1),
            ("CNY 3", 300),
            (" 7.07 ", 707),
            ("0", 0),
            ("184467440737095516.15", u64::MAX),
        ];
        for (text, fen) in ok {
            assert_eq!(text.parse::<Fen>(), Ok(Fen(fen)), "{text}");
        }
    }

    #[test]
    fn refuses_bad_amounts() {
        assert_eq!("".parse::<Fen>(), Err(AmountError::Empty));
        assert_eq!("¥".parse::<Fen>(), Err(AmountError::Empty));
        assert!(matches!("-1".parse::<Fen>(), Err(AmountError::Negative(_))));
        assert!(matches!(
            "¥-1.00".parse::<Fen>(),
            Err(AmountError::Negative(_))
        ));
        assert!(matches!(
            "1.234".parse::<Fen>(),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(
            "184467440737095516.16".parse::<Fen>(),
            Err(AmountError::Overflow(_))
        ));
        assert!(matches!(
            "99999999999999999999".parse::<Fen>(),
            Err(AmountError::Overflow(_))
        ));
        for bad in [
            "1e3", "1.", ".5", "+1", "1,00", "12.5.0", "NaN", "1 000", "١٢",
        ] {
            assert!(
                matches!(bad.parse::<Fen>(), Err(AmountError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Fen(1250).to_string(), "¥12.50");
        assert_eq!(Fen(5).to_string(), "¥0.05");
        assert_eq!(Fen(0).plain(), "0.00");
        for fen in [0u64, 1, 99, 100, 12345, u64::MAX] {
            assert_eq!(Fen(fen).to_string().parse::<Fen>(), Ok(Fen(fen)));
        }
    }
}
