//! The demo data (`ow-extranet seed-demo`): two districts, staff for every role, units with
//! rights holders (fake people with valid ID check digits), certificates, one seized unit and
//! one mortgaged unit. Idempotent: what exists is left alone (and reported); staff credentials
//! appear only when the account is created, once.
//!
//! Seeding also queues a `CertificateStatus` `valid` message for every seeded certificate, so
//! the portal's `/verify` knows them.

use ow_domain::{IdNumber, RegistrationType, RightType};
use serde::Serialize;
use sqlx::Row;

use crate::AppState;
use crate::certificates::{self, IssueInput};
use crate::db;
use crate::error::{ExtranetError, Result};
use crate::exchange::{self, Message};
use crate::register::{self, PartyInput, Unit};
use crate::staff::{self, NewStaff, Role, StaffError};
use crate::workflow::TO_PORTAL;

/// What was seeded (the `--json` output of `seed-demo`).
#[derive(Debug, Clone, Serialize)]
pub struct SeedSummary {
    /// The districts.
    pub districts: Vec<SeedDistrict>,
    /// Staff accounts; `password` and `totp_secret` only when created by this run.
    pub staff: Vec<SeedStaff>,
    /// Units with their current holders and certificate.
    pub units: Vec<SeedUnit>,
    /// The units under a current seizure.
    pub seized_unit_codes: Vec<String>,
    /// Fake people (valid ID numbers) who hold nothing, to act as buyers.
    pub demo_buyers: Vec<SeedPerson>,
}

/// A district.
#[derive(Debug, Clone, Serialize)]
pub struct SeedDistrict {
    /// 6-digit code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Province abbreviation.
    pub province: String,
}

/// A staff account.
#[derive(Clone, Serialize)]
pub struct SeedStaff {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// The password, when created now.
    pub password: Option<String>,
    /// The TOTP secret (base32), when created now.
    pub totp_secret: Option<String>,
    /// The same secret as an `otpauth://totp/…` URI (what an authenticator app scans), when
    /// created now.
    pub otpauth_uri: Option<String>,
    /// Role codes.
    pub roles: Vec<String>,
    /// District code.
    pub district_code: String,
    /// Whether this run created it.
    pub created: bool,
}

impl std::fmt::Debug for SeedStaff {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedStaff")
            .field("username", &self.username)
            .field(
                "display_name",
                &ow_domain::mask::mask_name(&self.display_name),
            )
            .field("roles", &self.roles)
            .field("district_code", &self.district_code)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// A fake person.
#[derive(Clone, Serialize, PartialEq, Eq)]
pub struct SeedPerson {
    /// Name.
    pub name: String,
    /// ID number (valid check digit).
    pub id_number: String,
    /// Share of the right (holders) or empty.
    pub share: String,
}

impl std::fmt::Debug for SeedPerson {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedPerson")
            .field("name", &ow_domain::mask::mask_name(&self.name))
            .field(
                "id_number",
                &ow_domain::mask::mask_id_number(&self.id_number),
            )
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

/// A unit.
#[derive(Debug, Clone, Serialize)]
pub struct SeedUnit {
    /// 28-character unit code.
    pub unit_code: String,
    /// District.
    pub district_code: String,
    /// 坐落.
    pub location: String,
    /// Area.
    pub area_m2: String,
    /// Whether a seizure is current.
    pub seized: bool,
    /// Whether a mortgage is current.
    pub mortgaged: bool,
    /// The current holders.
    pub holders: Vec<SeedPerson>,
    /// The current (valid) certificate.
    pub certificate_number: Option<String>,
    /// Its verification code.
    pub verification_code: Option<String>,
}

struct DemoUnit {
    code: &'static str,
    location: &'static str,
    area: &'static str,
    holders: &'static [(&'static str, &'static str, &'static str)],
    seized: bool,
    mortgaged: bool,
}

const DISTRICTS: [(&str, &str, &str, &str, &str); 2] = [
    ("370781", "青州市", "鲁", "青州市不动产登记中心", "qz"),
    ("370702", "潍城区", "鲁", "潍坊市潍城区不动产登记中心", "wc"),
];

/// (name, 17-digit ID prefix, share)
const UNITS: [DemoUnit; 7] = [
    DemoUnit {
        code: "370781001001GB00001F00010101",
        location: "青州市云门山街道驼山路88号1号楼1单元101室",
        area: "89.50",
        holders: &[("王建国", "37078119750312201", "1/1")],
        seized: false,
        mortgaged: false,
    },
    DemoUnit {
        code: "370781001001GB00001F00010102",
        location: "青州市云门山街道驼山路88号1号楼1单元102室",
        area: "96.20",
        holders: &[
            ("李明", "37078119820705103", "1/2"),
            ("张秀英", "37078119840219202", "1/2"),
        ],
        seized: false,
        mortgaged: false,
    },
    DemoUnit {
        code: "370781001001GB00001F00020201",
        location: "青州市云门山街道驼山路88号2号楼2单元201室",
        area: "120.00",
        holders: &[("赵志刚", "37078119680923301", "1/1")],
        seized: true,
        mortgaged: false,
    },
    DemoUnit {
        code: "370781001001GB00001F00020202",
        location: "青州市云门山街道驼山路88号2号楼2单元202室",
        area: "118.75",
        holders: &[("刘芳", "37078119900101402", "1/1")],
        seized: false,
        mortgaged: true,
    },
    DemoUnit {
        code: "370781002003GB00017F00030501",
        location: "青州市王府街道范公亭西路16号3号楼5单元501室",
        area: "135.60",
        holders: &[("陈磊", "37078119870614501", "1/1")],
        seized: false,
        mortgaged: false,
    },
    DemoUnit {
        code: "370702003002GB00012F00020301",
        location: "潍坊市潍城区城关街道向阳路25号2号楼3单元301室",
        area: "102.30",
        holders: &[("孙丽", "37070219791130602", "1/1")],
        seized: false,
        mortgaged: false,
    },
    DemoUnit {
        code: "370702003002GB00012F00020302",
        location: "潍坊市潍城区城关街道向阳路25号2号楼3单元302室",
        area: "99.80",
        holders: &[("周强", "37070219830808701", "1/1")],
        seized: false,
        mortgaged: false,
    },
];

const BUYERS: [(&str, &str); 3] = [
    ("张小三", "37078119900101234"),
    ("李小四", "37078119920202126"),
    ("钱多多", "37070219950315318"),
];

/// A full ID number from its 17 leading digits.
pub fn with_check_char(prefix: &str) -> String {
    let check = IdNumber::check_char_for(prefix).unwrap_or('0');
    format!("{prefix}{check}")
}

const STAFF: [(&str, &str, &[Role]); 5] = [
    ("accept", "受理员", &[Role::Accept]),
    ("review", "审核员", &[Role::Review]),
    ("record", "登簿员", &[Role::Record]),
    ("cert", "缮证员", &[Role::Certificate]),
    ("admin", "管理员", &[Role::DistrictAdmin]),
];

/// Seeds the demo data (idempotent) and returns what there is.
pub async fn seed_demo(state: &AppState) -> Result<SeedSummary> {
    let now = state.now_ms();
    let mut summary = SeedSummary {
        districts: Vec::new(),
        staff: Vec::new(),
        units: Vec::new(),
        seized_unit_codes: Vec::new(),
        demo_buyers: BUYERS
            .iter()
            .map(|(name, prefix)| SeedPerson {
                name: (*name).to_owned(),
                id_number: with_check_char(prefix),
                share: String::new(),
            })
            .collect(),
    };
    for (code, name, province, issuer, prefix) in DISTRICTS {
        sqlx::query(
            "INSERT INTO ext_districts (code, name, province, issuer) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (code) DO NOTHING",
        )
        .bind(code)
        .bind(name)
        .bind(province)
        .bind(issuer)
        .execute(state.store.writer())
        .await?;
        summary.districts.push(SeedDistrict {
            code: code.into(),
            name: name.into(),
            province: province.into(),
        });
        for (suffix, title, roles) in STAFF {
            let username = format!("{prefix}-{suffix}");
            let display_name = format!("{name}{title}");
            let created = staff::create_staff(
                &state.store,
                &state.pii,
                &state.hasher,
                state.settings.login.min_password_length,
                NewStaff {
                    username: username.clone(),
                    display_name: display_name.clone(),
                    district_code: code.into(),
                    roles: roles.to_vec(),
                    password: None,
                },
                None,
                now,
            )
            .await;
            let entry = match created {
                Ok(c) => SeedStaff {
                    username,
                    display_name,
                    password: Some(c.password),
                    totp_secret: Some(c.totp_base32),
                    otpauth_uri: Some(c.otpauth_uri),
                    roles: roles.iter().map(|r| r.code().to_owned()).collect(),
                    district_code: code.into(),
                    created: true,
                },
                Err(StaffError::Exists(_)) => SeedStaff {
                    username,
                    display_name,
                    password: None,
                    totp_secret: None,
                    otpauth_uri: None,
                    roles: roles.iter().map(|r| r.code().to_owned()).collect(),
                    district_code: code.into(),
                    created: false,
                },
                Err(StaffError::Invalid(m)) => return Err(ExtranetError::Invalid(m)),
                Err(StaffError::Other(e)) => return Err(e),
            };
            summary.staff.push(entry);
        }
    }
    for demo in &UNITS {
        let unit = seed_unit(state, demo, now).await?;
        if unit.seized {
            summary.seized_unit_codes.push(unit.unit_code.clone());
        }
        summary.units.push(unit);
    }
    state.after_commit().await;
    Ok(summary)
}

const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;

async fn seed_unit(state: &AppState, demo: &DemoUnit, now: i64) -> Result<SeedUnit> {
    let district_code = &demo.code[..6];
    let mut tx = state.store.begin().await?;
    let exists = register::unit(&mut tx, district_code, demo.code).await?;
    if exists.is_none() {
        let unit = Unit {
            unit_code: demo.code.into(),
            district_code: district_code.into(),
            location: demo.location.into(),
            area_m2: demo.area.into(),
            usage: "城镇住宅用地/成套住宅".into(),
            right_type: i64::from(RightType::StateConstructionLandAndBuilding.code()),
            right_nature: "出让/市场化商品房".into(),
            use_term: "2010年01月01日起2080年12月31日止".into(),
        };
        register::insert_unit(&mut tx, &unit, now).await?;
        let holders: Vec<PartyInput> = demo
            .holders
            .iter()
            .map(|(name, prefix, share)| PartyInput {
                name: (*name).into(),
                id_type: "1".into(),
                id_number: with_check_char(prefix),
                share: (*share).into(),
            })
            .collect();
        let recorded = now - 2 * YEAR_MS;
        let right_id = register::insert_right(
            &mut tx,
            &state.pii,
            &unit.unit_code,
            RegistrationType::Transfer,
            None,
            &holders,
            recorded,
            None,
        )
        .await?;
        let right = register::right(&mut tx, &state.pii, &right_id)
            .await?
            .ok_or_else(|| ExtranetError::Corrupt("seeded right vanished".into()))?;
        let district = certificates::district(&mut tx, district_code)
            .await?
            .ok_or_else(|| ExtranetError::Corrupt("seeded district vanished".into()))?;
        let issued = certificates::issue(
            &mut tx,
            &state.pii,
            &state.cert_key,
            IssueInput {
                district: &district,
                unit: &unit,
                right: &right,
                registration_type: RegistrationType::Transfer,
                application_no: None,
                recorded_at_ms: recorded,
                issued_at_ms: recorded + 3600 * 1000,
                replaces: Vec::new(),
                issued_by: None,
            },
        )
        .await?;
        exchange::enqueue(
            &mut tx,
            &state.pii,
            &TO_PORTAL,
            Message::CertificateStatus(issued.status),
            Vec::new(),
        )
        .await?;
        if demo.seized {
            register::insert_seizure(
                &mut tx,
                &unit.unit_code,
                1,
                "青州市人民法院",
                "(2026)鲁0781执保123号",
                now - 30 * 24 * 3600 * 1000,
                now + 3 * YEAR_MS,
                now,
            )
            .await?;
        }
        if demo.mortgaged {
            register::insert_mortgage(
                &mut tx,
                &unit.unit_code,
                "中国建设银行股份有限公司青州支行",
                1,
                50_000_000,
                now - YEAR_MS,
                now + 20 * YEAR_MS,
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    // Report what is there now.
    let mut conn = state.store.reader().acquire().await?;
    let right = register::current_right(&mut conn, &state.pii, demo.code).await?;
    let holders = right
        .map(|r| {
            r.holders
                .into_iter()
                .map(|h| SeedPerson {
                    name: h.name,
                    id_number: h.id_number,
                    share: h.share,
                })
                .collect()
        })
        .unwrap_or_default();
    let seized = register::seizures(&mut conn, demo.code)
        .await?
        .iter()
        .any(|s| s.in_force(now));
    let mortgaged = register::mortgages(&mut conn, demo.code)
        .await?
        .iter()
        .any(|m| m.status == register::CURRENT);
    let cert = sqlx::query(
        "SELECT certificate_number, code_sealed FROM ext_certificates WHERE unit_code = $1 \
         AND status = 'valid' ORDER BY issued_at_ms DESC",
    )
    .bind(demo.code)
    .fetch_optional(&mut *conn)
    .await?;
    let (certificate_number, verification_code) = match cert {
        Some(row) => {
            let number: String = row.try_get("certificate_number")?;
            let sealed: String = row.try_get("code_sealed")?;
            let code = db::open(
                &state.pii,
                db::CODE_FIELD,
                &format!("ext_certificates:{number}"),
                &sealed,
            )?;
            (Some(number), Some(code))
        }
        None => (None, None),
    };
    Ok(SeedUnit {
        unit_code: demo.code.into(),
        district_code: district_code.into(),
        location: demo.location.into(),
        area_m2: demo.area.into(),
        seized,
        mortgaged,
        holders,
        certificate_number,
        verification_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_people_have_valid_id_numbers_and_units_valid_codes() {
        for u in &UNITS {
            ow_domain::UnitCode::parse(u.code).unwrap();
            for (_, prefix, _) in u.holders {
                IdNumber::parse(&with_check_char(prefix)).unwrap();
            }
        }
        for (_, prefix) in BUYERS {
            IdNumber::parse(&with_check_char(prefix)).unwrap();
        }
    }
}
