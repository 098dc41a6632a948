//! Sample certificates and a fixed key for the tests (and the vectors in
//! `docs/e-certificate.md`).

use chrono::DateTime;
use ed25519_dalek::SigningKey;
use ow_domain::{
    CertificateKind, CertificateNumber, PersonName, RegistrationType, RightType, Share, UnitCode,
};

use crate::code::VerificationCode;
use crate::document::{AreaM2, ECertificate, FORMAT, Holder, IdDocumentType, JointOwnership};
use crate::license_id::LicenseId;

/// The Ed25519 key whose 32-byte seed is 0x00, 0x01, … 0x1f.
pub(crate) fn fixed_key() -> SigningKey {
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = i as u8;
    }
    SigningKey::from_bytes(&seed)
}

fn holder(name: &str, id: &str, share: Option<&str>) -> Holder {
    Holder {
        name: PersonName::parse(name).expect("name"),
        id_type: IdDocumentType::ResidentId,
        id_number: id.into(),
        share: share.map(|s| Share::parse(s).expect("share")),
    }
}

/// A rights certificate with one holder, issued on a transfer.
pub(crate) fn sample() -> ECertificate {
    ECertificate {
        format: FORMAT.into(),
        certificate_number: CertificateNumber::parse("鲁(2026)青州市不动产权第0000123号")
            .expect("number"),
        license_id: LicenseId::new(CertificateKind::RightsCertificate, "370781", 123, 1)
            .expect("license id"),
        issuer: "青州市不动产登记中心".into(),
        district_code: "370781".into(),
        unit_code: UnitCode::parse("370781001001GB00001F00010101").expect("unit code"),
        location: "青州市云门山街道驼山路88号3号楼2单元101室".into(),
        right_type: RightType::StateConstructionLandAndBuilding,
        right_nature: "出让/市场化商品房".into(),
        registration_type: RegistrationType::Transfer,
        usage: "城镇住宅用地/成套住宅".into(),
        area_m2: AreaM2::parse("89.50").expect("area"),
        use_term: "2010年01月01日起2080年12月31日止".into(),
        holders: vec![holder("张小三", "370781199001012347", None)],
        joint_ownership: JointOwnership::Sole,
        obligors: Vec::new(),
        recorded_at: DateTime::parse_from_rfc3339("2026-03-02T09:30:00+08:00").expect("time"),
        issued_at: DateTime::parse_from_rfc3339("2026-03-02T15:00:00+08:00").expect("time"),
        case_id: "2026030200123".into(),
        verification_code: VerificationCode::parse("7KQ4M-X9PTB").expect("code"),
        replaces: vec![
            CertificateNumber::parse("鲁(2025)青州市不动产权第0000077号").expect("number"),
        ],
        notes: String::new(),
    }
}

/// The same certificate held by two people in equal shares (按份共有).
pub(crate) fn sample_in_shares() -> ECertificate {
    ECertificate {
        holders: vec![
            holder("张小三", "370781199001012347", Some("1/2")),
            holder("李小四", "370781199202021266", Some("1/2")),
        ],
        joint_ownership: JointOwnership::InShares,
        notes: "共有人张小三、李小四各占1/2份额。".into(),
        ..sample()
    }
}
