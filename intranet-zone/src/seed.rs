//! The demo data (`ow-intranet seed-demo`): the extranet's two demo districts, demo surveyors
//! and existing parcels around the extranet's demo units (`extranet-zone/src/seed.rs`: the
//! parcel code is the first 19 characters of a unit code), plus a neighbour parcel, so a demo
//! survey that overlaps one of them is rejected by the checks. Idempotent: what exists is left
//! alone; credentials appear only when an account is created.
//!
//! Coordinates are CGCS2000 3-degree Gauss-Krüger metres without the zone prefix (青州市 in
//! zone 39, 潍城区 in zone 40), roughly where the places are.

use geo::{LineString, MultiPolygon, Polygon};
use serde::Serialize;

use crate::AppState;
use crate::error::Result;
use crate::parcels;
use crate::surveyors::{self, NewSurveyor, Role, SurveyorError};

/// What was seeded (`seed-demo --json`).
#[derive(Debug, Clone, Serialize)]
pub struct SeedSummary {
    /// The districts (code, name).
    pub districts: Vec<(String, String)>,
    /// Surveyor accounts; credentials only when created by this run.
    pub surveyors: Vec<SeedSurveyor>,
    /// Existing parcels (code, area m², created by this run).
    pub parcels: Vec<SeedParcel>,
}

/// A surveyor account.
#[derive(Clone, Serialize)]
pub struct SeedSurveyor {
    /// Login name.
    pub username: String,
    /// District.
    pub district_code: String,
    /// Role codes.
    pub roles: Vec<String>,
    /// The password, when created now.
    pub password: Option<String>,
    /// The TOTP secret (base32), when created now.
    pub totp_secret: Option<String>,
    /// The `otpauth://` URI, when created now.
    pub otpauth_uri: Option<String>,
}

impl std::fmt::Debug for SeedSurveyor {
    /// Credentials are never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedSurveyor")
            .field("username", &self.username)
            .field("district_code", &self.district_code)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// An existing parcel.
#[derive(Debug, Clone, Serialize)]
pub struct SeedParcel {
    /// Parcel code (19 characters).
    pub parcel_code: String,
    /// Area, m² (two decimals).
    pub area_m2: String,
    /// Whether this run created it.
    pub created: bool,
}

/// The demo districts (the extranet's).
pub const DISTRICTS: [(&str, &str); 2] = [("370781", "青州市"), ("370702", "潍城区")];

/// The demo surveyors: login name, display name, district, roles.
const SURVEYORS: [(&str, &str, &str, &[Role]); 3] = [
    ("qz-survey", "周测绘", "370781", &[Role::Surveyor]),
    (
        "qz-chief",
        "吴审查",
        "370781",
        &[Role::Surveyor, Role::Chief],
    ),
    ("wc-survey", "郑测绘", "370702", &[Role::Surveyor]),
];

/// The demo parcels: code, name, rectangle (min easting, min northing, width, height).
pub const PARCELS: [(&str, &str, [f64; 4]); 4] = [
    // The demo units 370781001001GB00001F0001…/F0002… stand on this parcel.
    (
        "370781001001GB00001",
        "云门山街道示范小区一期",
        [632_000.0, 4_062_000.0, 100.0, 80.0],
    ),
    // Its eastern neighbour (no registered unit yet).
    (
        "370781001001GB00002",
        "云门山街道示范小区二期",
        [632_100.0, 4_062_000.0, 80.0, 80.0],
    ),
    (
        "370781002003GB00017",
        "王府街道示范地块",
        [633_000.0, 4_063_000.0, 60.0, 50.0],
    ),
    (
        "370702003002GB00012",
        "潍城区示范地块",
        [420_000.0, 4_064_000.0, 90.0, 70.0],
    ),
];

/// The rectangle `[x, y, w, h]` as a multipolygon.
pub fn rectangle(r: [f64; 4]) -> MultiPolygon<f64> {
    let [x, y, w, h] = r;
    MultiPolygon::new(vec![Polygon::new(
        LineString::from(vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]),
        vec![],
    )])
}

/// Seeds the demo data (idempotent).
pub async fn seed_demo(state: &AppState) -> Result<SeedSummary> {
    let mut summary = SeedSummary {
        districts: Vec::new(),
        surveyors: Vec::new(),
        parcels: Vec::new(),
    };
    for (code, name) in DISTRICTS {
        sqlx::query(
            "INSERT INTO int_districts (code, name) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING",
        )
        .bind(code)
        .bind(name)
        .execute(state.store.writer())
        .await?;
        summary.districts.push((code.into(), name.into()));
    }
    for (username, display, district, roles) in SURVEYORS {
        let created = surveyors::create_surveyor(
            &state.store,
            &state.pii,
            &state.hasher,
            state.settings.login.min_password_length,
            NewSurveyor {
                username: username.into(),
                display_name: display.into(),
                district_code: district.into(),
                roles: roles.to_vec(),
                password: None,
            },
            state.now_ms(),
        )
        .await;
        let (password, totp_secret, otpauth_uri) = match created {
            Ok(c) => (Some(c.password), Some(c.totp_base32), Some(c.otpauth_uri)),
            Err(SurveyorError::Exists(_)) => (None, None, None),
            Err(SurveyorError::Other(e)) => return Err(e),
            Err(SurveyorError::Invalid(m)) => return Err(crate::IntranetError::Invalid(m)),
        };
        summary.surveyors.push(SeedSurveyor {
            username: username.into(),
            district_code: district.into(),
            roles: roles.iter().map(|r| r.code().to_owned()).collect(),
            password,
            totp_secret,
            otpauth_uri,
        });
    }
    for (code, name, rect) in PARCELS {
        let geometry = rectangle(rect);
        let area = rect[2] * rect[3];
        let mut tx = state.store.begin().await?;
        let exists: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM int_parcels WHERE parcel_code = $1")
                .bind(code)
                .fetch_one(&mut *tx)
                .await?;
        let created = exists == 0;
        if created {
            let id = parcels::insert(
                &mut tx,
                &state.pii,
                &parcels::NewParcel {
                    parcel_code: code,
                    unit_code: None,
                    district_code: &code[..6],
                    name,
                    geometry: &geometry,
                    area_m2: area,
                    package_id: None,
                    application_no: None,
                    surveyor_id: None,
                    action: "seeded",
                },
                state.now_ms(),
            )
            .await?;
            tx.commit().await?;
            state.index_write().insert(id, geometry);
        }
        summary.parcels.push(SeedParcel {
            parcel_code: code.into(),
            area_m2: crate::db::area_text(area),
            created,
        });
    }
    Ok(summary)
}

/// A boundary-point TXT file (界址点坐标, UTF-8) with one rectangular parcel `[x, y, w, h]` in
/// zone 39, its declared area the rectangle's, the closing point repeated.
pub fn boundary_txt(number: &str, name: &str, rect: [f64; 4]) -> String {
    let [x, y, w, h] = rect;
    let corners = [(x, y + h), (x + w, y + h), (x + w, y), (x, y)];
    let mut out = format!(
        "[属性描述]\n格式版本号=1.0\n数据产生单位=演示测绘公司\n坐标系=2000国家大地坐标系\n\
         几度分带=3\n投影类型=高斯克吕格\n计量单位=米\n带号=39\n精度=0.001\n[地块坐标]\n\
         5,{:.4},{number},{name},面,,071,0701,@\n",
        w * h / 10_000.0
    );
    for (i, (e, n)) in corners.iter().chain(corners.first()).enumerate() {
        let label = i % 4 + 1;
        out.push_str(&format!("J{label},1,{n:.3},{:.3}\n", 39_000_000.0 + e));
    }
    out
}

/// Demo survey files for the portal (`seed-demo --surveys-out DIR`): one that overlaps the
/// demo parcel 370781001001GB00001 (the checks reject it) and a clean one beside it.
pub fn demo_surveys() -> Vec<(&'static str, String)> {
    vec![
        (
            "demo-survey-overlapping.txt",
            boundary_txt(
                "D001",
                "示范小区扩建地块",
                [632_050.0, 4_062_040.0, 100.0, 80.0],
            ),
        ),
        (
            "demo-survey-clean.txt",
            boundary_txt(
                "D001",
                "示范新建地块",
                [634_000.0, 4_062_000.0, 100.0, 50.0],
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_surveys_parse_and_only_one_overlaps() {
        let cfg = ow_survey::CheckConfig::default();
        let index = crate::checks::ParcelIndex::bulk_load(
            PARCELS
                .iter()
                .enumerate()
                .map(|(i, (_, _, r))| (i64::try_from(i).unwrap_or(0), rectangle(*r)))
                .collect(),
        );
        let tol = crate::checks::Tolerance::default();
        let mut overlapping = Vec::new();
        for (name, text) in demo_surveys() {
            let checked = crate::checks::parse_and_check(text.as_bytes(), "boundary-txt", &cfg);
            assert!(
                checked.findings.is_empty(),
                "{name}: {:?}",
                checked.findings
            );
            assert_eq!(checked.parcels.len(), 1, "{name}");
            let hits = crate::checks::spatial(&checked, &index, &Default::default(), &tol);
            if !hits.is_empty() {
                overlapping.push(name);
            }
        }
        assert_eq!(overlapping, vec!["demo-survey-overlapping.txt"]);
    }
}
