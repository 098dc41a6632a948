//! 共有份额: a rights holder's share as an exact fraction.
//!
//! A [`Share`] is `numerator/denominator` with `u32` parts, always reduced, and
//! `0 < share ≤ 1`. It parses from a fraction (`1/2`), a decimal (`0.5`) or a percentage
//! (`50%`, `33.5%`) and displays as the reduced fraction (`1/2`, a whole share as `1/1`).
//! [`Share::sum_is_one`] checks exactly, without floating point, that the shares of a
//! 按份共有 (co-ownership in shares) add up to 1 (domain-facts §1: "shares total 1").

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::text::is_full_width;

/// Most digits after the decimal point of a decimal or percentage.
const MAX_FRACTION_DIGITS: usize = 9;

/// Why a share could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// Nothing was entered.
    #[error(
        "the share is empty; enter it as a fraction (1/2), a decimal (0.5) or a percentage (50%)"
    )]
    Empty,
    /// Full-width digits or symbols were entered.
    #[error(
        "the share contains full-width characters; \
         switch the input method to half-width and enter it again"
    )]
    FullWidth,
    /// Not a fraction, decimal or percentage.
    #[error(
        "the share must be a fraction (1/2), a decimal (0.5) or a percentage (50%), \
         using digits only"
    )]
    Malformed,
    /// The denominator is 0.
    #[error("the denominator of the share is 0; enter a positive denominator")]
    ZeroDenominator,
    /// The share is 0.
    #[error("the share is 0; every co-owner must hold a share greater than 0")]
    Zero,
    /// The share exceeds 1 (100%).
    #[error("the share is greater than 1 (100%); a co-owner cannot hold more than the whole")]
    GreaterThanOne,
    /// The reduced fraction does not fit 32-bit parts, or too many decimal places.
    #[error(
        "the share is too precise; use at most {MAX_FRACTION_DIGITS} decimal places or a \
         fraction whose parts are below 4294967296"
    )]
    TooPrecise,
}

impl ShareError {
    /// A short Chinese message for the applicant on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请填写共有份额，如1/2、0.5或50%".into(),
            Self::FullWidth => "共有份额含有全角字符，请切换到半角输入后重新输入".into(),
            Self::Malformed => "共有份额格式不正确，请填写如1/2、0.5或50%".into(),
            Self::ZeroDenominator => "共有份额的分母不能为0".into(),
            Self::Zero => "共有份额必须大于0".into(),
            Self::GreaterThanOne => "共有份额不能大于1（100%）".into(),
            Self::TooPrecise => "共有份额精度过高，请减少小数位数".into(),
        }
    }
}

/// A share `0 < n/d ≤ 1`, reduced. Construct it with [`Share::new`] or [`Share::parse`] (or
/// `str::parse`, or serde).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Share {
    numerator: u32,
    denominator: u32,
}

impl Share {
    /// The whole (1/1): sole ownership.
    pub const WHOLE: Self = Self {
        numerator: 1,
        denominator: 1,
    };

    /// Builds and reduces `numerator/denominator`.
    pub fn new(numerator: u32, denominator: u32) -> Result<Self, ShareError> {
        Self::from_u128(u128::from(numerator), u128::from(denominator))
    }

    /// Parses `1/2`, `0.5` or `50%` (surrounding spaces trimmed, spaces around `/` allowed).
    pub fn parse(input: &str) -> Result<Self, ShareError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ShareError::Empty);
        }
        if s.chars().any(is_full_width) {
            return Err(ShareError::FullWidth);
        }
        if let Some(percent) = s.strip_suffix('%') {
            let (n, d) = parse_decimal(percent.trim_end())?;
            return Self::from_u128(n, d * 100);
        }
        if let Some((n, d)) = s.split_once('/') {
            let n = parse_integer(n.trim())?;
            let d = parse_integer(d.trim())?;
            return Self::from_u128(n, d);
        }
        let (n, d) = parse_decimal(s)?;
        Self::from_u128(n, d)
    }

    fn from_u128(numerator: u128, denominator: u128) -> Result<Self, ShareError> {
        if denominator == 0 {
            return Err(ShareError::ZeroDenominator);
        }
        if numerator == 0 {
            return Err(ShareError::Zero);
        }
        if numerator > denominator {
            return Err(ShareError::GreaterThanOne);
        }
        let g = gcd(numerator, denominator);
        let (Ok(numerator), Ok(denominator)) =
            (u32::try_from(numerator / g), u32::try_from(denominator / g))
        else {
            return Err(ShareError::TooPrecise);
        };
        Ok(Self {
            numerator,
            denominator,
        })
    }

    /// The reduced numerator.
    pub fn numerator(self) -> u32 {
        self.numerator
    }

    /// The reduced denominator.
    pub fn denominator(self) -> u32 {
        self.denominator
    }

    /// Whether the shares add up to exactly 1. An empty slice adds up to 0, so `false`.
    ///
    /// Exact: a running sum in `u128` (cross-multiplication, reduced at every step); in the
    /// rare case that the common denominator outgrows `u128`, the sum is finished with
    /// arbitrary-precision integers.
    ///
    /// ```
    /// use ow_domain::Share;
    /// let s = |t: &str| Share::parse(t).expect("share");
    /// assert!(Share::sum_is_one(&[s("1/3"), s("1/3"), s("1/3")]));
    /// assert!(!Share::sum_is_one(&[s("0.33"), s("0.33"), s("0.33")]));
    /// ```
    pub fn sum_is_one(shares: &[Share]) -> bool {
        sum_is_one_u128(shares).unwrap_or_else(|| sum_is_one_big(shares))
    }
}

/// `Some(answer)`, or `None` if the common denominator overflows `u128`.
fn sum_is_one_u128(shares: &[Share]) -> Option<bool> {
    if shares.is_empty() {
        return Some(false);
    }
    let (mut n, mut d) = (0u128, 1u128);
    for s in shares {
        let (a, b) = (u128::from(s.numerator), u128::from(s.denominator));
        let l = (d / gcd(d, b)).checked_mul(b)?;
        n = n.checked_mul(l / d)?.checked_add(a.checked_mul(l / b)?)?;
        d = l;
        let g = gcd(n, d);
        n /= g;
        d /= g;
        if n > d {
            // Every share is positive, so the sum can only grow.
            return Some(false);
        }
    }
    Some(n == d)
}

/// Exact check with arbitrary-precision integers: with `L = lcm(denominators)`,
/// `Σ nᵢ/dᵢ = 1 ⇔ Σ nᵢ·(L/dᵢ) = L`.
fn sum_is_one_big(shares: &[Share]) -> bool {
    if shares.is_empty() {
        return false;
    }
    let mut lcm = Big::from(1);
    for s in shares {
        let rem = lcm.rem_small(s.denominator);
        let g = gcd(u128::from(s.denominator), u128::from(rem));
        let factor = u128::from(s.denominator) / g;
        lcm.mul_small(u32::try_from(factor).unwrap_or(u32::MAX));
    }
    let mut sum = Big::from(0);
    for s in shares {
        let mut term = lcm.div_small(s.denominator);
        term.mul_small(s.numerator);
        sum.add(&term);
    }
    sum == lcm
}

/// A minimal unsigned big integer (little-endian base-2³² limbs, no trailing zero limbs), just
/// enough for [`sum_is_one_big`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from(v: u32) -> Self {
        let mut b = Self(vec![v]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn div_small(&self, d: u32) -> Self {
        let mut out = vec![0u32; self.0.len()];
        let mut rem = 0u64;
        for (i, limb) in self.0.iter().enumerate().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            out[i] = (cur / u64::from(d)) as u32;
            rem = cur % u64::from(d);
        }
        let mut q = Self(out);
        q.trim();
        q
    }

    fn rem_small(&self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter().rev() {
            rem = ((rem << 32) | u64::from(*limb)) % u64::from(d);
        }
        rem as u32
    }

    fn add(&mut self, other: &Self) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        let mut carry = 0u64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let v = u64::from(*limb) + u64::from(other.0.get(i).copied().unwrap_or(0)) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Parses up to 10 ASCII digits.
fn parse_integer(s: &str) -> Result<u128, ShareError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ShareError::Malformed);
    }
    if s.trim_start_matches('0').len() > 10 {
        return Err(ShareError::TooPrecise);
    }
    s.parse().map_err(|_| ShareError::Malformed)
}

/// Parses `int[.frac]` into `(numerator, 10^frac_len)`.
fn parse_decimal(s: &str) -> Result<(u128, u128), ShareError> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if s.ends_with('.') || (int.is_empty() && frac.is_empty()) {
        return Err(ShareError::Malformed);
    }
    let int = if int.is_empty() {
        0
    } else {
        parse_integer(int)?
    };
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ShareError::Malformed);
    }
    if frac.len() > MAX_FRACTION_DIGITS {
        return Err(ShareError::TooPrecise);
    }
    let scale = 10u128.pow(frac.len() as u32);
    let frac = if frac.is_empty() {
        0
    } else {
        parse_integer(frac)?
    };
    Ok((int * scale + frac, scale))
}

impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Share {
    fn cmp(&self, other: &Self) -> Ordering {
        let l = u64::from(self.numerator) * u64::from(other.denominator);
        let r = u64::from(other.numerator) * u64::from(self.denominator);
        l.cmp(&r)
    }
}

impl FromStr for Share {
    type Err = ShareError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

impl serde::Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn s(t: &str) -> Share {
        Share::parse(t).expect(t)
    }

    #[test]
    fn parse_forms() {
        for (input, n, d) in [
            ("1/2", 1, 2),
            (" 2 / 4 ", 1, 2),
            ("0.5", 1, 2),
            (".5", 1, 2),
            ("50%", 1, 2),
            ("50.0 %", 1, 2),
            ("1", 1, 1),
            ("1.000", 1, 1),
            ("100%", 1, 1),
            ("1/1", 1, 1),
            ("33.5%", 67, 200),
            ("0.333", 333, 1000),
            ("0.000000001", 1, 1_000_000_000),
            ("4294967295/4294967295", 1, 1),
            ("1/4294967295", 1, 4_294_967_295),
        ] {
            let sh = s(input);
            assert_eq!((sh.numerator(), sh.denominator()), (n, d), "{input}");
        }
        assert_eq!(s("3/6").to_string(), "1/2");
        assert_eq!(Share::new(6, 8), Ok(s("3/4")));
        assert_eq!(Share::WHOLE, s("1"));
    }

    #[test]
    fn refusals() {
        use ShareError as E;
        assert_eq!(Share::parse(""), Err(E::Empty));
        assert_eq!(Share::parse("１/2"), Err(E::FullWidth));
        assert_eq!(Share::parse("５０％"), Err(E::FullWidth));
        assert_eq!(Share::parse("half"), Err(E::Malformed));
        assert_eq!(Share::parse("1/"), Err(E::Malformed));
        assert_eq!(Share::parse("/2"), Err(E::Malformed));
        assert_eq!(Share::parse("1/2/3"), Err(E::Malformed));
        assert_eq!(Share::parse("-1/2"), Err(E::Malformed));
        assert_eq!(Share::parse("0,5"), Err(E::Malformed));
        assert_eq!(Share::parse("5."), Err(E::Malformed));
        assert_eq!(Share::parse("."), Err(E::Malformed));
        assert_eq!(Share::parse("%"), Err(E::Malformed));
        assert_eq!(Share::parse("1/0"), Err(E::ZeroDenominator));
        assert_eq!(Share::parse("0/3"), Err(E::Zero));
        assert_eq!(Share::parse("0"), Err(E::Zero));
        assert_eq!(Share::parse("0%"), Err(E::Zero));
        assert_eq!(Share::parse("3/2"), Err(E::GreaterThanOne));
        assert_eq!(Share::parse("1.01"), Err(E::GreaterThanOne));
        assert_eq!(Share::parse("100.1%"), Err(E::GreaterThanOne));
        assert_eq!(Share::parse("0.0000000001"), Err(E::TooPrecise));
        assert_eq!(Share::parse("1/4294967296"), Err(E::TooPrecise));
        assert_eq!(Share::parse("1/99999999999"), Err(E::TooPrecise));
        assert_eq!(Share::new(0, 1), Err(E::Zero));
        assert_eq!(Share::new(1, 0), Err(E::ZeroDenominator));
    }

    #[test]
    fn sums() {
        assert!(Share::sum_is_one(&[Share::WHOLE]));
        assert!(Share::sum_is_one(&[s("1/2"), s("50%")]));
        assert!(Share::sum_is_one(&[s("1/3"), s("1/3"), s("1/3")]));
        assert!(Share::sum_is_one(&[
            s("0.25"),
            s("1/4"),
            s("12.5%"),
            s("3/8")
        ]));
        assert!(!Share::sum_is_one(&[]));
        assert!(!Share::sum_is_one(&[s("1/2")]));
        assert!(!Share::sum_is_one(&[s("1/2"), s("1/2"), s("1/3")]));
        assert!(!Share::sum_is_one(&[
            s("0.33"),
            s("0.33"),
            s("0.34"),
            s("0.000000001")
        ]));
        assert!(!Share::sum_is_one(&[s("1/3"); 4]));
        assert!(Share::sum_is_one(&vec![s("1/1000"); 1000]));
        assert!(!Share::sum_is_one(&vec![s("1/1000"); 999]));
    }

    fn primes_below(mut n: u32, count: usize) -> Vec<u32> {
        let mut out = Vec::new();
        while out.len() < count {
            n -= 1;
            if (2..)
                .take_while(|i| i * i <= n)
                .all(|i| !n.is_multiple_of(i))
            {
                out.push(n);
            }
        }
        out
    }

    #[test]
    fn sums_beyond_u128_fall_back_to_exact_big_integers() {
        // Five groups of 1/5 written over denominators 5·p with large distinct primes p: the
        // first five shares alone need a common denominator of about 2^150.
        let primes = primes_below(858_993_459, 5);
        let mut shares: Vec<Share> = primes
            .iter()
            .map(|&p| Share::new(1, 5 * p).expect("share"))
            .collect();
        shares.extend(
            primes
                .iter()
                .map(|&p| Share::new(p - 1, 5 * p).expect("share")),
        );
        assert_eq!(
            sum_is_one_u128(&shares),
            None,
            "this case must overflow u128"
        );
        assert!(Share::sum_is_one(&shares));
        // Move one unit of one numerator: no longer 1.
        let last = shares.len() - 1;
        let p = primes[4];
        shares[last] = Share::new(p - 2, 5 * p).expect("share");
        assert!(!Share::sum_is_one(&shares));
    }

    #[test]
    fn property_fast_and_big_paths_agree() {
        let mut rng = Rng::new(0x5ba2e);
        for _ in 0..2_000 {
            // Random shares that add up to 1: split a denominator into positive parts.
            let den = 1 + rng.below(10_000) as u32;
            let mut left = den;
            let mut shares = Vec::new();
            while left > 0 {
                let take = 1 + rng.below(u64::from(left)) as u32;
                shares.push(Share::new(take, den).expect("share"));
                left -= take;
            }
            assert!(Share::sum_is_one(&shares));
            assert!(sum_is_one_big(&shares));
            // Perturb: replace one share by a different one.
            let i = rng.below(shares.len() as u64) as usize;
            let other = Share::new(1 + rng.below(999) as u32, 1000).expect("share");
            if other != shares[i] {
                shares[i] = other;
                assert!(!Share::sum_is_one(&shares));
                assert!(!sum_is_one_big(&shares));
            }
        }
    }

    #[test]
    fn ordering() {
        assert!(s("1/3") < s("1/2"));
        assert!(s("2/3") > s("0.5"));
        assert_eq!(s("1/2").cmp(&s("50%")), Ordering::Equal);
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let sh = s("0.25");
        let json = serde_json::to_string(&sh).expect("serialize");
        assert_eq!(json, "\"1/4\"");
        assert_eq!(
            serde_json::from_str::<Share>(&json).expect("deserialize"),
            sh
        );
        assert_eq!(
            serde_json::from_str::<Share>("\"25%\"").expect("deserialize"),
            sh
        );
        assert!(serde_json::from_str::<Share>("\"3/2\"").is_err());
        assert!(serde_json::from_str::<Share>("\"0\"").is_err());
    }

    #[test]
    fn chinese_messages_are_non_empty() {
        use ShareError as E;
        for e in [
            E::Empty,
            E::FullWidth,
            E::Malformed,
            E::ZeroDenominator,
            E::Zero,
            E::GreaterThanOne,
            E::TooPrecise,
        ] {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}
