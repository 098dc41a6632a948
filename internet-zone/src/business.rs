//! What differs between the businesses the portal offers: which steps an application has and
//! what each step asks for. Everything the pages, the API and the checks need to know about a
//! business is answered here from the draft's [`BusinessType`], so no other file branches on
//! the business itself.

use ow_domain::BusinessType;

/// The businesses a citizen may start on the portal, in the order the apply page offers them.
pub const OFFERED: [BusinessType; 2] = [
    BusinessType::TransferSecondHand,
    BusinessType::FirstRegistration,
];

/// The business of an application whose business is not said (the API's single request
/// without `business_type`, and every application of earlier versions).
pub const DEFAULT: BusinessType = BusinessType::TransferSecondHand;

/// The checklist code whose file may be a survey package (界址点坐标 TXT or GeoJSON).
pub const SURVEY_ITEM: &str = "cadastral_survey";

/// How one business's application is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The business.
    pub business: BusinessType,
    /// Whether the unit must be named (unit code or certificate number); otherwise the unit is
    /// new and the surveyor assigns its code.
    pub unit_required: bool,
    /// Whether there are sellers (义务人).
    pub has_sellers: bool,
    /// Whether a price is asked for.
    pub has_price: bool,
    /// The label of the certificate-number field.
    pub certificate_label_zh: &'static str,
    /// The label of the applicants (权利人) side.
    pub applicants_label_zh: &'static str,
}

/// The profile of `business`. Businesses the portal does not offer get the transfer's shape
/// (they are refused before a draft exists, see [`offered`]).
pub fn profile(business: BusinessType) -> Profile {
    match business {
        BusinessType::FirstRegistration => Profile {
            business,
            unit_required: false,
            has_sellers: false,
            has_price: false,
            certificate_label_zh: "国有建设用地使用权证书号（选填）",
            applicants_label_zh: "权利人（申请人）",
        },
        _ => Profile {
            business,
            unit_required: true,
            has_sellers: true,
            has_price: true,
            certificate_label_zh: "不动产权证书号（出卖人持有）",
            applicants_label_zh: "买受人（权利人）",
        },
    }
}

/// The offered business with this code (`1000301`, `2000402`, …), if the portal offers it.
pub fn offered(code: &str) -> Option<BusinessType> {
    BusinessType::from_code(code.trim()).filter(|b| OFFERED.contains(b))
}

/// Whether a file for checklist item `code` of `business` is read as a survey package.
pub fn takes_survey(business: BusinessType, code: &str) -> bool {
    business.needs_survey() && code == SURVEY_ITEM
}

/// Whether `code` is on `business`'s checklist.
pub fn is_checklist_code(business: BusinessType, code: &str) -> bool {
    business.required_materials().iter().any(|m| m.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_registration_has_no_sellers_and_takes_a_survey() {
        let p = profile(BusinessType::FirstRegistration);
        assert!(!p.has_sellers && !p.unit_required && !p.has_price);
        assert!(takes_survey(BusinessType::FirstRegistration, SURVEY_ITEM));
        assert!(!takes_survey(BusinessType::TransferSecondHand, SURVEY_ITEM));
        assert!(is_checklist_code(
            BusinessType::FirstRegistration,
            SURVEY_ITEM
        ));
        assert!(!is_checklist_code(
            BusinessType::FirstRegistration,
            "sale_contract"
        ));
    }

    #[test]
    fn only_offered_codes_are_accepted() {
        assert_eq!(offered("1000301"), Some(BusinessType::FirstRegistration));
        assert_eq!(offered(DEFAULT.code()), Some(DEFAULT));
        assert_eq!(offered("nonsense"), None);
        let other = BusinessType::ALL
            .into_iter()
            .find(|b| !OFFERED.contains(b))
            .map(|b| b.code());
        assert_eq!(other.and_then(offered), None);
    }
}
