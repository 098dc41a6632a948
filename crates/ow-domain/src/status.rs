//! [`CaseStatus`]: where an application stands, as pushed to the portal's timeline.
//!
//! | from | may move to |
//! |---|---|
//! | 已提交 `submitted` | `accepted`, `refused`, `supplement_requested`, `withdrawn` |
//! | 补正 `supplement_requested` | `submitted`, `accepted`, `refused`, `withdrawn` |
//! | 受理 `accepted` | `reviewed`, `supplement_requested`, `withdrawn`; `survey_review` for a business with a survey |
//! | 待权籍审核 `survey_review` | `accepted` (survey approved), `supplement_requested` (rejected: a corrected survey is needed), `refused`, `withdrawn` |
//! | 审核 `reviewed` | `recorded`, `withdrawn` |
//! | 登簿 `recorded` | `certificate_prepared` (`completed` only for a business without certificate) |
//! | 缮证 `certificate_prepared` | `completed` |
//! | 不予受理 `refused`, 办结 `completed`, 撤回 `withdrawn` | nothing (final) |
//!
//! - A supplement (补正) can be requested before acceptance (from `submitted`) or during review
//!   (from `accepted`). When the applicant supplies the materials the case goes back to
//!   `submitted` (pending acceptance), or straight to `accepted` when the registrar accepts it
//!   at once; it may also be refused or withdrawn from there.
//! - Refusal (不予受理) is possible only before acceptance (from `submitted` or
//!   `supplement_requested`). A refusal to register after acceptance (不予登记) is not a status
//!   of this list yet.
//! - Withdrawal (撤回) is allowed before recording (条例 §14–15, domain-facts §3.4 rule 1).
//! - Issuing (发证) and completion (办结) are one step here, and it needs a prepared certificate:
//!   a case at 登簿 cannot be issued before 缮证. Only a business that issues no certificate or
//!   proof (查封, see [`BusinessType::issues_certificate`]) goes from `recorded` straight to
//!   `completed`; ask with [`CaseStatus::next_statuses_for`] / [`CaseStatus::move_to_for`].
//!   The business-blind [`CaseStatus::next_statuses`] is the certificate flow.
//! - A business whose unit must first be surveyed (首次登记, [`BusinessType::needs_survey`]) may
//!   go from `accepted` to `survey_review` (待权籍审核) while the cadastral zone checks its survey
//!   package; the review brings it back to `accepted` (approved, with the unit code and area) or
//!   to `supplement_requested` (rejected, with the findings). Ask with
//!   [`CaseStatus::next_statuses_for`].
//! - `refused`, `withdrawn` and `completed` are final.

use std::fmt;

use crate::business::BusinessType;

/// The status of an application.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// 已提交: submitted online, waiting for acceptance.
    Submitted,
    /// 受理: accepted by a registrar.
    Accepted,
    /// 待权籍审核: the survey package is with the cadastral zone (intranet) for its checks and a
    /// surveyor's review.
    SurveyReview,
    /// 不予受理 / 不予登记: refused at acceptance, or after acceptance when review or the
    /// register's rules find it cannot be registered (final; the reason goes to the applicant).
    Refused,
    /// 补正: the applicant must supply or correct materials.
    SupplementRequested,
    /// 审核: review (including department checks) passed.
    Reviewed,
    /// 登簿: recorded in the register.
    Recorded,
    /// 缮证: certificate or proof prepared.
    CertificatePrepared,
    /// 办结: issued and completed (final).
    Completed,
    /// 撤回: withdrawn by the applicant before recording (final).
    Withdrawn,
}

/// A status change that the workflow does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "an application in status '{}' cannot move to '{}'; {}",
    from.code(),
    to.code(),
    if from.is_final() {
        "it is closed"
    } else {
        "follow accept, review, record, prepare certificate, complete"
    }
)]
pub struct StatusTransitionError {
    /// The current status.
    pub from: CaseStatus,
    /// The refused next status.
    pub to: CaseStatus,
}

impl StatusTransitionError {
    /// A short Chinese message for the portal or the registrar.
    pub fn message_zh(&self) -> String {
        if self.to == CaseStatus::Withdrawn && !self.from.is_final() {
            return "申请已登簿，不能撤回".into();
        }
        if self.from == CaseStatus::Recorded && self.to == CaseStatus::Completed {
            return "申请已登簿但尚未缮证，请先缮证再发证".into();
        }
        if self.from.is_final() {
            return format!("申请已{}，不能再办理", self.from.name_zh());
        }
        format!(
            "申请当前为“{}”状态，不能变更为“{}”",
            self.from.name_zh(),
            self.to.name_zh()
        )
    }
}

impl CaseStatus {
    /// Every status.
    pub const ALL: [Self; 10] = [
        Self::Submitted,
        Self::Accepted,
        Self::SurveyReview,
        Self::Refused,
        Self::SupplementRequested,
        Self::Reviewed,
        Self::Recorded,
        Self::CertificatePrepared,
        Self::Completed,
        Self::Withdrawn,
    ];

    /// English snake-case code, also the serde form, e.g. `supplement_requested`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::SurveyReview => "survey_review",
            Self::Refused => "refused",
            Self::SupplementRequested => "supplement_requested",
            Self::Reviewed => "reviewed",
            Self::Recorded => "recorded",
            Self::CertificatePrepared => "certificate_prepared",
            Self::Completed => "completed",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// The status for a code, or `None`.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Chinese name shown on the timeline, e.g. `补正`.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Submitted => "已提交",
            Self::Accepted => "受理",
            Self::SurveyReview => "待权籍审核",
            Self::Refused => "不予受理",
            Self::SupplementRequested => "补正",
            Self::Reviewed => "审核",
            Self::Recorded => "登簿",
            Self::CertificatePrepared => "缮证",
            Self::Completed => "办结",
            Self::Withdrawn => "撤回",
        }
    }

    /// Whether no further change is possible.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Refused | Self::Completed | Self::Withdrawn)
    }

    /// The statuses this one may move to.
    pub fn next_statuses(self) -> &'static [CaseStatus] {
        use CaseStatus::*;
        match self {
            Submitted => &[Accepted, Refused, SupplementRequested, Withdrawn],
            SupplementRequested => &[Submitted, Accepted, Refused, Withdrawn],
            Accepted => &[Reviewed, SupplementRequested, Refused, Withdrawn],
            SurveyReview => &[Accepted, SupplementRequested, Refused, Withdrawn],
            Reviewed => &[Recorded, Refused, Withdrawn],
            Recorded => &[CertificatePrepared],
            CertificatePrepared => &[Completed],
            Refused | Completed | Withdrawn => &[],
        }
    }

    /// The statuses this one may move to in a case of `business`: as
    /// [`next_statuses`](Self::next_statuses), except that a business issuing no certificate
    /// (查封) completes straight from `recorded` (it has nothing to prepare).
    pub fn next_statuses_for(self, business: BusinessType) -> &'static [CaseStatus] {
        match self {
            Self::Recorded if !business.issues_certificate() => &[Self::Completed],
            Self::Accepted if business.needs_survey() => &[
                Self::Reviewed,
                Self::SurveyReview,
                Self::SupplementRequested,
                Self::Refused,
                Self::Withdrawn,
            ],
            other => other.next_statuses(),
        }
    }

    /// Whether the workflow allows moving from `self` to `next`.
    pub fn can_move_to(self, next: CaseStatus) -> bool {
        self.next_statuses().contains(&next)
    }

    /// Whether the workflow allows moving from `self` to `next` in a case of `business`.
    pub fn can_move_to_for(self, next: CaseStatus, business: BusinessType) -> bool {
        self.next_statuses_for(business).contains(&next)
    }

    /// `Ok(next)` if the move is allowed in a case of `business`, otherwise an error naming
    /// both statuses.
    pub fn move_to_for(
        self,
        next: CaseStatus,
        business: BusinessType,
    ) -> Result<CaseStatus, StatusTransitionError> {
        if self.can_move_to_for(next, business) {
            Ok(next)
        } else {
            Err(StatusTransitionError {
                from: self,
                to: next,
            })
        }
    }

    /// `Ok(next)` if the move is allowed, otherwise an error naming both statuses.
    pub fn move_to(self, next: CaseStatus) -> Result<CaseStatus, StatusTransitionError> {
        if self.can_move_to(next) {
            Ok(next)
        } else {
            Err(StatusTransitionError {
                from: self,
                to: next,
            })
        }
    }

    /// Whether the applicant may still withdraw (before 登簿).
    pub fn can_withdraw(self) -> bool {
        self.can_move_to(Self::Withdrawn)
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

#[cfg(test)]
mod tests {
    use super::CaseStatus::*;
    use super::*;

    #[test]
    fn happy_path() {
        let path = [
            Submitted,
            Accepted,
            Reviewed,
            Recorded,
            CertificatePrepared,
            Completed,
        ];
        for pair in path.windows(2) {
            assert!(
                pair[0].can_move_to(pair[1]),
                "{:?} -> {:?}",
                pair[0],
                pair[1]
            );
            assert_eq!(pair[0].move_to(pair[1]), Ok(pair[1]));
        }
    }

    #[test]
    fn issuing_needs_a_prepared_certificate() {
        assert!(!Recorded.can_move_to(Completed), "发证 without 缮证");
        let e = Recorded.move_to(Completed).expect_err("skips 缮证");
        assert_eq!(e.message_zh(), "申请已登簿但尚未缮证，请先缮证再发证");
        for b in BusinessType::ALL {
            if b.issues_certificate() {
                assert!(!Recorded.can_move_to_for(Completed, b), "{b:?}");
                assert_eq!(
                    Recorded.move_to_for(CertificatePrepared, b),
                    Ok(CertificatePrepared)
                );
                assert!(CertificatePrepared.can_move_to_for(Completed, b));
            }
        }
        // 查封 has nothing to prepare: recorded completes it, and 缮证 is not a step.
        let seizure = BusinessType::Seizure;
        assert!(!seizure.issues_certificate());
        assert_eq!(Recorded.move_to_for(Completed, seizure), Ok(Completed));
        assert!(!Recorded.can_move_to_for(CertificatePrepared, seizure));
        // Every other status moves as in the certificate flow, whatever the business (but
        // for the survey step of a business that needs one).
        for s in CaseStatus::ALL {
            if s != Recorded {
                for b in BusinessType::ALL {
                    if s == Accepted && b.needs_survey() {
                        continue;
                    }
                    assert_eq!(s.next_statuses_for(b), s.next_statuses(), "{s:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn no_skipping_or_going_back() {
        assert!(!Submitted.can_move_to(Reviewed));
        assert!(!Accepted.can_move_to(Recorded));
        assert!(!Reviewed.can_move_to(CertificatePrepared));
        assert!(!Recorded.can_move_to(Reviewed));
        assert!(!Reviewed.can_move_to(Accepted));
        assert!(
            Accepted.can_move_to(Refused) && Reviewed.can_move_to(Refused),
            "不予登记"
        );
        assert!(
            !Recorded.can_move_to(Refused),
            "recorded in the register: correction, not refusal"
        );
        for s in CaseStatus::ALL {
            assert!(!s.can_move_to(s), "{s:?} to itself");
            assert!(!s.can_move_to(Submitted) || s == SupplementRequested);
        }
    }

    #[test]
    fn supplement_loops_back() {
        assert!(Submitted.can_move_to(SupplementRequested));
        assert!(Accepted.can_move_to(SupplementRequested));
        assert!(SupplementRequested.can_move_to(Submitted));
        assert!(SupplementRequested.can_move_to(Accepted));
        assert!(SupplementRequested.can_move_to(Refused));
        assert!(!SupplementRequested.can_move_to(Reviewed));
        assert!(!Reviewed.can_move_to(SupplementRequested));
    }

    #[test]
    fn only_a_business_with_a_survey_waits_for_its_review() {
        let first = BusinessType::FirstRegistration;
        assert!(first.needs_survey());
        assert!(Accepted.can_move_to_for(SurveyReview, first));
        assert!(!Accepted.can_move_to(SurveyReview));
        for b in BusinessType::ALL {
            if !b.needs_survey() {
                assert!(!Accepted.can_move_to_for(SurveyReview, b), "{b:?}");
            }
        }
        // Approved: back to review; rejected: a corrected survey is needed.
        assert_eq!(SurveyReview.move_to_for(Accepted, first), Ok(Accepted));
        assert!(SurveyReview.can_move_to(SupplementRequested));
        assert!(SurveyReview.can_withdraw());
        assert!(
            !SurveyReview.can_move_to(Reviewed),
            "no review before the survey's"
        );
        assert!(!SurveyReview.can_move_to(Recorded));
        assert_eq!(CaseStatus::from_code("survey_review"), Some(SurveyReview));
        assert_eq!(SurveyReview.name_zh(), "待权籍审核");
    }

    #[test]
    fn withdrawal_only_before_recording() {
        for s in [Submitted, SupplementRequested, Accepted, Reviewed] {
            assert!(s.can_withdraw(), "{s:?}");
        }
        for s in [Recorded, CertificatePrepared, Completed, Refused, Withdrawn] {
            assert!(!s.can_withdraw(), "{s:?}");
        }
    }

    #[test]
    fn final_states() {
        for s in CaseStatus::ALL {
            assert_eq!(s.is_final(), s.next_statuses().is_empty(), "{s:?}");
        }
        assert!(Refused.is_final() && Completed.is_final() && Withdrawn.is_final());
    }

    #[test]
    fn codes_names_serde() {
        for s in CaseStatus::ALL {
            assert_eq!(CaseStatus::from_code(s.code()), Some(s));
            let json = serde_json::to_string(&s).expect("serialize");
            assert_eq!(json, format!("\"{}\"", s.code()));
            assert_eq!(
                serde_json::from_str::<CaseStatus>(&json).expect("deserialize"),
                s
            );
            assert!(!s.name_zh().is_empty());
        }
        assert_eq!(SupplementRequested.name_zh(), "补正");
        assert!(serde_json::from_str::<CaseStatus>("\"archived\"").is_err());
    }

    #[test]
    fn transition_errors() {
        let e = Recorded.move_to(Withdrawn).expect_err("too late");
        assert_eq!(e.message_zh(), "申请已登簿，不能撤回");
        assert!(e.to_string().contains("recorded"));
        let e = Completed.move_to(Reviewed).expect_err("closed");
        assert_eq!(e.message_zh(), "申请已办结，不能再办理");
        assert!(e.to_string().contains("closed"));
        let e = Submitted.move_to(Recorded).expect_err("skip");
        assert!(!e.message_zh().is_empty());
        for from in CaseStatus::ALL {
            for to in CaseStatus::ALL {
                if let Err(e) = from.move_to(to) {
                    assert!(!e.message_zh().is_empty());
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
