//! The rules checked before recording (登簿) a transfer, each refusal naming its rule in Chinese
//! (domain facts §3.4): the sellers are exactly the current rights holders; the buyers' shares
//! add up to 1; the buyers are not exactly the sellers (`ow_domain::parties`: a buyout between
//! co-owners is a transfer, the same people with the same shares is not); the unit is not seized
//! (查封); no other case is recording on the same unit.
//!
//! [`evaluate`] is pure (unit-tested); [`check_case`] gathers its input from the database. The
//! same check runs when a case is shown (so the registrar can refuse with the rule as reason)
//! and inside the record transaction, where it decides.

use std::collections::BTreeSet;

use ow_domain::{BusinessType, Share};
use ow_pii::PiiKeyring;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::cases::Party;
use crate::error::Result;
use crate::register::{self, Seizure};

/// A rule that a case breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleViolation {
    /// Stable code, e.g. `not_seized`.
    pub rule: &'static str,
    /// The rule in Chinese, e.g. `查封期间不得办理转移登记`.
    pub title_zh: &'static str,
    /// What is wrong in this case.
    pub message_zh: String,
}

impl RuleViolation {
    /// `规则：title；message` — the text used as a refusal reason.
    pub fn reason_zh(&self) -> String {
        format!("不符合规则“{}”：{}", self.title_zh, self.message_zh)
    }
}

/// The unit must be registered in the district.
pub const UNIT_REGISTERED: (&str, &str) = ("unit_registered", "不动产单元须已在本区县登记");
/// The sellers must be exactly the current holders.
pub const SELLERS_ARE_HOLDERS: (&str, &str) =
    ("sellers_are_holders", "义务人须为登记簿记载的现权利人");
/// The buyers' shares must add up to 1.
pub const SHARES_SUM_TO_ONE: (&str, &str) = ("shares_sum_to_one", "权利人共有份额之和须为1");
/// The buyers must not be exactly the sellers with the same shares.
pub const BUYERS_ARE_NOT_SELLERS: (&str, &str) = (
    "buyers_are_not_sellers",
    "买受人不得与出卖人完全相同（须发生转移）",
);
/// No transfer while seized.
pub const NOT_SEIZED: (&str, &str) = ("not_seized", "查封期间不得办理转移登记");
/// A first registration needs its survey approved (the unit code comes from it).
pub const SURVEY_APPROVED: (&str, &str) = (
    "survey_approved",
    "首次登记须经权籍调查审核通过并取得不动产单元号",
);
/// A first registration registers a new unit.
pub const UNIT_IS_NEW: (&str, &str) = (
    "unit_is_new",
    "首次登记的不动产单元须为登记簿中尚无现势权利的新单元",
);
/// A first registration's unit page must be entered before 登簿.
pub const UNIT_PAGE_COMPLETE: (&str, &str) = (
    "unit_page_complete",
    "登簿前须填写新单元的坐落、用途、权利性质和使用期限",
);
/// One recording per unit at a time.
pub const NO_CONCURRENT_RECORDING: (&str, &str) =
    ("no_concurrent_recording", "同一不动产单元不得同时办理登簿");

/// What the rules look at.
#[derive(Debug, Clone, Default)]
pub struct RuleInput {
    /// The case.
    pub application_no: String,
    /// Whether the unit was found in the district's register.
    pub unit_found: bool,
    /// Blind indexes of the sellers' ID numbers.
    pub seller_indexes: Vec<String>,
    /// Blind indexes of the current holders' ID numbers (empty if no current right).
    pub holder_indexes: Vec<String>,
    /// The buyers' shares as given.
    pub buyer_shares: Vec<String>,
    /// The sellers' shares as given, in the order of `seller_indexes`.
    pub seller_shares: Vec<String>,
    /// Blind indexes of the buyers' ID numbers, in the order of `buyer_shares`.
    pub buyer_indexes: Vec<String>,
    /// The unit's seizures.
    pub seizures: Vec<Seizure>,
    /// The application holding the unit's recording lock, if any.
    pub lock_holder: Option<String>,
    /// Now, Unix ms.
    pub now_ms: i64,
}

fn violation(rule: (&'static str, &'static str), message: String) -> RuleViolation {
    RuleViolation {
        rule: rule.0,
        title_zh: rule.1,
        message_zh: message,
    }
}

/// Every rule `input` breaks, in a fixed order.
pub fn evaluate(input: &RuleInput) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    if !input.unit_found {
        out.push(violation(
            UNIT_REGISTERED,
            "申请的不动产单元在本区县登记簿中不存在，请核对单元号或证书号".into(),
        ));
    } else {
        let sellers: BTreeSet<&str> = input.seller_indexes.iter().map(String::as_str).collect();
        let holders: BTreeSet<&str> = input.holder_indexes.iter().map(String::as_str).collect();
        if holders.is_empty() {
            out.push(violation(
                SELLERS_ARE_HOLDERS,
                "该不动产单元没有现势权利，无法办理转移登记".into(),
            ));
        } else if sellers != holders || input.seller_indexes.len() != sellers.len() {
            let missing = holders.difference(&sellers).count();
            let extra = sellers.difference(&holders).count();
            let mut parts = Vec::new();
            if extra > 0 {
                parts.push(format!("{extra}名义务人不是登记簿记载的现权利人"));
            }
            if missing > 0 {
                parts.push(format!("{missing}名现权利人未作为义务人申请"));
            }
            if parts.is_empty() {
                parts.push("义务人重复".into());
            }
            out.push(violation(SELLERS_ARE_HOLDERS, parts.join("；")));
        }
        let current: Vec<&Seizure> = input
            .seizures
            .iter()
            .filter(|s| s.in_force(input.now_ms))
            .collect();
        if let Some(first) = current.first() {
            out.push(violation(
                NOT_SEIZED,
                format!(
                    "该不动产单元已被{}{}（{}），查封期间不得办理转移登记",
                    first.court,
                    first.kind_zh(),
                    first.document_no
                ),
            ));
        }
        if let Some(other) = &input.lock_holder
            && other != &input.application_no
        {
            out.push(violation(
                NO_CONCURRENT_RECORDING,
                format!("该不动产单元正在办理业务{other}的登簿，请待其完成后再办理"),
            ));
        }
    }
    let keyed = |indexes: &[String], shares: &[String]| -> Vec<(String, Share)> {
        indexes
            .iter()
            .zip(shares)
            .filter_map(|(i, s)| Some((i.clone(), Share::parse(s).ok()?)))
            .collect()
    };
    let sellers = keyed(&input.seller_indexes, &input.seller_shares);
    let buyers = keyed(&input.buyer_indexes, &input.buyer_shares);
    if !sellers.is_empty()
        && !buyers.is_empty()
        && let Err(e) = ow_domain::classify_transfer(&sellers, &buyers)
    {
        out.push(violation(BUYERS_ARE_NOT_SELLERS, e.message_zh()));
    }
    out.extend(share_violations(&input.buyer_shares));
    out
}

/// The rules of a first registration (首次登记) before 登簿: the survey was approved and gave
/// the unit its code; the unit is new (no current right on it); the registrar entered its
/// register page (坐落, 用途, 权利性质, 使用期限); the holders' shares add up to 1; no other case
/// is recording the unit.
pub fn evaluate_first_registration(input: &FirstRegistrationInput) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    match &input.unit_code {
        None => out.push(violation(
            SURVEY_APPROVED,
            "权籍调查成果尚未审核通过，还没有不动产单元号".into(),
        )),
        Some(code) => {
            if input.has_current_right {
                out.push(violation(
                    UNIT_IS_NEW,
                    format!("不动产单元{code}已有现势权利，不能再办理首次登记"),
                ));
            }
            if !input.unit_page_complete {
                out.push(violation(
                    UNIT_PAGE_COMPLETE,
                    "请先在“新建不动产单元”中填写坐落、用途、权利性质和使用期限".into(),
                ));
            }
            if let Some(other) = &input.lock_holder
                && other != &input.application_no
            {
                out.push(violation(
                    NO_CONCURRENT_RECORDING,
                    format!("该不动产单元正在办理业务{other}的登簿，请待其完成后再办理"),
                ));
            }
        }
    }
    out.extend(share_violations(&input.holder_shares));
    out
}

/// What the first-registration rules look at.
#[derive(Debug, Clone, Default)]
pub struct FirstRegistrationInput {
    /// The case.
    pub application_no: String,
    /// The unit code the approved survey assigned, if any.
    pub unit_code: Option<String>,
    /// Whether the unit already has a current right.
    pub has_current_right: bool,
    /// Whether the new unit's register page is filled in.
    pub unit_page_complete: bool,
    /// The applicants' (new holders') shares.
    pub holder_shares: Vec<String>,
    /// The application holding the unit's recording lock, if any.
    pub lock_holder: Option<String>,
}

/// The shares must parse and add up to exactly 1.
fn share_violations(given: &[String]) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    let mut shares = Vec::with_capacity(given.len());
    let mut bad = None;
    for s in given {
        match Share::parse(s) {
            Ok(share) => shares.push(share),
            Err(e) => {
                bad.get_or_insert(format!("份额“{s}”无效：{}", e.message_zh()));
            }
        }
    }
    if let Some(message) = bad {
        out.push(violation(SHARES_SUM_TO_ONE, message));
    } else if !Share::sum_is_one(&shares) {
        let listed = given.join(" + ");
        out.push(violation(
            SHARES_SUM_TO_ONE,
            if listed.is_empty() {
                "没有权利人".into()
            } else {
                format!("权利人份额 {listed} 之和不等于1")
            },
        ));
    }
    out
}

/// Which case the rules are checked for.
#[derive(Debug, Clone, Copy)]
pub struct CaseKey<'a> {
    /// The application number.
    pub application_no: &'a str,
    /// Its district.
    pub district: &'a str,
    /// Its business code.
    pub business: &'a str,
    /// Its unit, when it has one.
    pub unit_code: Option<&'a str>,
}

/// Gathers the rule input for a case and evaluates it. `unit_code` is the case's unit;
/// `business` its business code (a first registration has rules of its own,
/// [`evaluate_first_registration`]).
pub async fn check_case(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    case: CaseKey<'_>,
    parties: &[Party],
    now_ms: i64,
) -> Result<Vec<RuleViolation>> {
    let CaseKey {
        application_no,
        district,
        business,
        unit_code,
    } = case;
    if BusinessType::from_code(business).is_some_and(BusinessType::needs_survey) {
        let mut input = FirstRegistrationInput {
            application_no: application_no.to_owned(),
            unit_code: unit_code.map(str::to_owned),
            holder_shares: parties
                .iter()
                .filter(|p| p.role == crate::cases::BUYER)
                .map(|p| p.share.clone())
                .collect(),
            ..FirstRegistrationInput::default()
        };
        if let Some(code) = unit_code {
            input.has_current_right = register::current_right(conn, pii, code).await?.is_some();
            input.unit_page_complete = crate::survey::new_unit(conn, application_no)
                .await?
                .is_some_and(|u| u.is_complete());
            input.lock_holder = register::lock_holder(conn, code).await?;
        }
        return Ok(evaluate_first_registration(&input));
    }
    let mut input = RuleInput {
        application_no: application_no.to_owned(),
        now_ms,
        seller_indexes: parties
            .iter()
            .filter(|p| p.role == crate::cases::SELLER)
            .map(|p| p.id_index.clone())
            .collect(),
        buyer_shares: parties
            .iter()
            .filter(|p| p.role == crate::cases::BUYER)
            .map(|p| p.share.clone())
            .collect(),
        seller_shares: parties
            .iter()
            .filter(|p| p.role == crate::cases::SELLER)
            .map(|p| p.share.clone())
            .collect(),
        buyer_indexes: parties
            .iter()
            .filter(|p| p.role == crate::cases::BUYER)
            .map(|p| p.id_index.clone())
            .collect(),
        ..RuleInput::default()
    };
    if let Some(code) = unit_code
        && register::unit(conn, district, code).await?.is_some()
    {
        input.unit_found = true;
        if let Some(right) = register::current_right(conn, pii, code).await? {
            input.holder_indexes = right.holders.iter().map(|h| h.id_index.clone()).collect();
        }
        input.seizures = register::seizures(conn, code).await?;
        input.lock_holder = register::lock_holder(conn, code).await?;
    }
    Ok(evaluate(&input))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RuleInput {
        RuleInput {
            application_no: "A1".into(),
            unit_found: true,
            seller_indexes: vec!["h1".into(), "h2".into()],
            holder_indexes: vec!["h2".into(), "h1".into()],
            buyer_shares: vec!["1/2".into(), "1/2".into()],
            now_ms: 1_000,
            ..RuleInput::default()
        }
    }

    fn seizure(status: &str, ends: i64) -> Seizure {
        Seizure {
            id: "s".into(),
            status: status.into(),
            kind: 1,
            court: "青州市人民法院".into(),
            document_no: "(2026)鲁0781执123号".into(),
            starts_at_ms: 0,
            ends_at_ms: ends,
            released_at_ms: None,
        }
    }

    #[test]
    fn a_clean_transfer_passes() {
        assert!(evaluate(&base()).is_empty());
    }

    #[test]
    fn sellers_must_be_exactly_the_holders() {
        let mut i = base();
        i.seller_indexes = vec!["h1".into()];
        let v = evaluate(&i);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].rule, "sellers_are_holders");
        assert!(v[0].message_zh.contains("未作为义务人"));
        i.seller_indexes = vec!["h1".into(), "h2".into(), "x".into()];
        assert!(
            evaluate(&i)[0]
                .message_zh
                .contains("不是登记簿记载的现权利人")
        );
        i.seller_indexes = vec!["h1".into(), "h1".into(), "h2".into()];
        assert_eq!(evaluate(&i)[0].rule, "sellers_are_holders");
    }

    #[test]
    fn shares_must_sum_to_one() {
        let mut i = base();
        i.buyer_shares = vec!["1/2".into(), "1/3".into()];
        let v = evaluate(&i);
        assert_eq!(v[0].rule, "shares_sum_to_one");
        assert!(v[0].reason_zh().contains("份额"));
        i.buyer_shares = vec!["abc".into()];
        assert_eq!(evaluate(&i)[0].rule, "shares_sum_to_one");
        i.buyer_shares = vec!["1/3".into(), "1/3".into(), "1/3".into()];
        assert!(evaluate(&i).is_empty());
    }

    #[test]
    fn buyers_exactly_the_sellers_are_refused_but_a_co_owner_buyout_passes() {
        let mut i = base();
        i.seller_shares = vec!["1/2".into(), "1/2".into()];
        // The two co-owners "buy" from themselves, share for share.
        i.buyer_indexes = vec!["h2".into(), "h1".into()];
        let v = evaluate(&i);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].rule, "buyers_are_not_sellers");
        assert!(
            v[0].reason_zh().contains("完全相同"),
            "{}",
            v[0].reason_zh()
        );
        // h1 buys h2's half: a buyout, recorded like a sale.
        i.buyer_indexes = vec!["h1".into()];
        i.buyer_shares = vec!["1".into()];
        assert!(evaluate(&i).is_empty());
        // The same two with other shares: a change of shares, a transfer too.
        i.buyer_indexes = vec!["h1".into(), "h2".into()];
        i.buyer_shares = vec!["3/4".into(), "1/4".into()];
        assert!(evaluate(&i).is_empty());
    }

    #[test]
    fn a_seized_unit_cannot_be_transferred() {
        let mut i = base();
        i.seizures = vec![seizure("current", 2_000)];
        let v = evaluate(&i);
        assert_eq!(v[0].rule, "not_seized");
        assert!(v[0].reason_zh().contains("查封"));
        i.seizures = vec![seizure("released", 2_000), seizure("current", 500)];
        assert!(
            evaluate(&i).is_empty(),
            "released or lapsed seizures do not block"
        );
    }

    #[test]
    fn another_recording_blocks() {
        let mut i = base();
        i.lock_holder = Some("A2".into());
        assert_eq!(evaluate(&i)[0].rule, "no_concurrent_recording");
        i.lock_holder = Some("A1".into());
        assert!(evaluate(&i).is_empty());
    }

    #[test]
    fn unknown_unit() {
        let mut i = base();
        i.unit_found = false;
        assert_eq!(evaluate(&i)[0].rule, "unit_registered");
    }
}
