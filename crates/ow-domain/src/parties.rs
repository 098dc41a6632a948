//! Who transfers to whom in a transfer registration (转移登记): [`classify_transfer`] compares
//! the sellers (出卖人 / 义务人) with the buyers (买受人 / 权利人).
//!
//! Each side is a list of people, each with a share; both sides' shares sum to 1 (checked
//! elsewhere, see [`crate::Share::sum_is_one`]). A person is compared by a stable key — the ID
//! number, or its blind index where only that is at hand.
//!
//! | sellers → buyers | kind | allowed |
//! |---|---|---|
//! | nobody on both sides | [`TransferKind::Sale`] (一般转移) | yes |
//! | the buyers are some, not all, of the sellers: `{甲 1/2, 乙 1/2} → {甲 1}` | [`TransferKind::CoOwnerBuyout`] (共有人购买其他共有人份额) | yes |
//! | the same people with other shares: `{甲 1/2, 乙 1/2} → {甲 3/4, 乙 1/4}` | [`TransferKind::ShareChange`] (共有份额变化) | yes |
//! | some sellers stay and others join: `{甲 1} → {甲 1/2, 丙 1/2}` | [`TransferKind::PartialSale`] (部分份额转让，新增共有人) | yes |
//! | the same people with the same shares | — | **no**: nothing changes hands |
//!
//! The implementing rules (不动产登记暂行条例实施细则 §27) list "共有人增加或者减少以及共有不动产
//! 份额变化" among the cases of a transfer registration, so a buyout between co-owners and a
//! change of shares are transfers like a sale. An application whose buyers are exactly its
//! sellers, share for share, transfers nothing and is refused ([`SameAsSellers`]).

use std::collections::BTreeMap;

use crate::Share;

/// What kind of transfer the parties describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// 一般转移: the buyers are all new.
    Sale,
    /// 共有人购买其他共有人份额: some co-owners buy out the others (the buyers are a part of
    /// the sellers).
    CoOwnerBuyout,
    /// 共有份额变化: the same co-owners with other shares.
    ShareChange,
    /// 部分份额转让: some sellers keep a share and new people join.
    PartialSale,
}

impl TransferKind {
    /// The Chinese name shown to registrars and applicants.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Sale => "一般转移",
            Self::CoOwnerBuyout => "共有人购买其他共有人份额",
            Self::ShareChange => "共有份额变化",
            Self::PartialSale => "部分份额转让（新增共有人）",
        }
    }
}

/// The buyers are exactly the sellers, with the same shares: nothing is transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the buyers are exactly the sellers with the same shares, so nothing is transferred; \
     enter the people who acquire the property as buyers (a co-owner buying the others out is \
     a buyer alone), or apply for a correction if the register is wrong"
)]
pub struct SameAsSellers;

impl SameAsSellers {
    /// The Chinese message for the applicant.
    pub fn message_zh(&self) -> String {
        "买受人与出卖人完全相同（同样的人、同样的份额），没有发生转移，不能申请转移登记。\
         请填写取得房屋的人作为买受人（共有人购买其他共有人份额时，只填写购买方）；\
         如登记簿记载有误，请申请更正登记"
            .into()
    }
}

/// The kind of transfer from `sellers` to `buyers` (each a list of `(person key, share)`), or
/// [`SameAsSellers`] when the two sides are the same people with the same shares. A person
/// listed twice on one side counts with the sum of their shares.
pub fn classify_transfer<K: Ord>(
    sellers: &[(K, Share)],
    buyers: &[(K, Share)],
) -> Result<TransferKind, SameAsSellers> {
    fn side<K: Ord>(parties: &[(K, Share)]) -> BTreeMap<&K, Vec<Share>> {
        let mut m: BTreeMap<&K, Vec<Share>> = BTreeMap::new();
        for (k, s) in parties {
            m.entry(k).or_default().push(*s);
        }
        m
    }
    let sellers = side(sellers);
    let buyers = side(buyers);
    let staying = buyers.keys().filter(|k| sellers.contains_key(*k)).count();
    if staying == 0 {
        return Ok(TransferKind::Sale);
    }
    if staying < buyers.len() {
        return Ok(TransferKind::PartialSale);
    }
    // Every buyer is a seller.
    if buyers.len() < sellers.len() {
        return Ok(TransferKind::CoOwnerBuyout);
    }
    let same_shares = buyers.iter().all(|(k, b)| {
        sellers
            .get(k)
            .is_some_and(|s| same_total(s.as_slice(), b.as_slice()))
    });
    if same_shares {
        Err(SameAsSellers)
    } else {
        Ok(TransferKind::ShareChange)
    }
}

/// Whether two lists of shares add up to the same fraction, compared exactly (a/b = c/d when
/// a·d = c·b) without floating point; a sum too large for 128 bits counts as different.
fn same_total(a: &[Share], b: &[Share]) -> bool {
    let sum = |list: &[Share]| -> Option<(u128, u128)> {
        list.iter().try_fold((0u128, 1u128), |(n, d), s| {
            let (sn, sd) = (u128::from(s.numerator()), u128::from(s.denominator()));
            Some((
                n.checked_mul(sd)?.checked_add(sn.checked_mul(d)?)?,
                d.checked_mul(sd)?,
            ))
        })
    };
    match (sum(a), sum(b)) {
        (Some((an, ad)), Some((bn, bd))) => match (an.checked_mul(bd), bn.checked_mul(ad)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Share {
        Share::parse(text).expect("share")
    }

    #[test]
    fn a_sale_to_new_people() {
        assert_eq!(
            classify_transfer(&[("甲", s("1"))], &[("丙", s("1/2")), ("丁", s("1/2"))]),
            Ok(TransferKind::Sale)
        );
    }

    #[test]
    fn buyers_exactly_the_sellers_are_refused() {
        assert_eq!(
            classify_transfer(&[("甲", s("1"))], &[("甲", s("1"))]),
            Err(SameAsSellers)
        );
        // Order and the way a share is written do not matter.
        assert_eq!(
            classify_transfer(
                &[("甲", s("1/2")), ("乙", s("1/2"))],
                &[("乙", s("2/4")), ("甲", s("50%"))]
            ),
            Err(SameAsSellers)
        );
        assert!(SameAsSellers.message_zh().contains("完全相同"));
        assert!(SameAsSellers.to_string().contains("nothing is transferred"));
    }

    #[test]
    fn co_owner_buyouts() {
        // 甲 buys 乙's half: the buyer alone, with the whole.
        assert_eq!(
            classify_transfer(&[("甲", s("1/2")), ("乙", s("1/2"))], &[("甲", s("1"))]),
            Ok(TransferKind::CoOwnerBuyout)
        );
        // Two of three co-owners buy the third out.
        assert_eq!(
            classify_transfer(
                &[("甲", s("1/3")), ("乙", s("1/3")), ("丙", s("1/3"))],
                &[("甲", s("1/2")), ("乙", s("1/2"))]
            ),
            Ok(TransferKind::CoOwnerBuyout)
        );
        assert_eq!(
            TransferKind::CoOwnerBuyout.name_zh(),
            "共有人购买其他共有人份额"
        );
    }

    #[test]
    fn share_changes_and_partial_sales() {
        assert_eq!(
            classify_transfer(
                &[("甲", s("1/2")), ("乙", s("1/2"))],
                &[("甲", s("3/4")), ("乙", s("1/4"))]
            ),
            Ok(TransferKind::ShareChange)
        );
        assert_eq!(
            classify_transfer(&[("甲", s("1"))], &[("甲", s("1/2")), ("丙", s("1/2"))]),
            Ok(TransferKind::PartialSale)
        );
        // A co-owner leaves and a new one joins.
        assert_eq!(
            classify_transfer(
                &[("甲", s("1/2")), ("乙", s("1/2"))],
                &[("甲", s("1/2")), ("丙", s("1/2"))]
            ),
            Ok(TransferKind::PartialSale)
        );
    }
}
