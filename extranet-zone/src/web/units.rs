//! The register (units, rights, seizures, mortgages) and certificates.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{
    Layout, PageError, PartyView, authed, fmt_ms, id_type_zh, internal, render, url_encode, yuan,
};
use crate::AppState;
use crate::certificates;
use crate::register;

/// The routes of this part of the back office.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/units", get(units_page))
        .route("/units/{code}", get(unit_page))
        .route("/certificates", get(certificate_page))
        .route("/certificates/print", get(certificate_print))
}

struct UnitRow {
    code: String,
    location: String,
    area: String,
}

#[derive(Template)]
#[template(path = "units.html")]
struct UnitsPage {
    layout: Layout,
    units: Vec<UnitRow>,
}

async fn units_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let units = register::units(&mut conn, &auth.staff.district_code)
        .await
        .map_err(internal)?;
    Ok(render(&UnitsPage {
        layout: Layout::for_staff("登记簿", &auth),
        units: units
            .into_iter()
            .map(|u| UnitRow {
                code: u.unit_code,
                location: u.location,
                area: u.area_m2,
            })
            .collect(),
    }))
}

struct RightView {
    status: &'static str,
    current: bool,
    registration_type: &'static str,
    application_no: String,
    recorded: String,
    ended: String,
    holders: Vec<PartyView>,
}

struct SeizureView {
    kind: &'static str,
    court: String,
    document_no: String,
    term: String,
    in_force: bool,
}

struct MortgageView {
    mortgagee: String,
    method: &'static str,
    amount: String,
    term: String,
    current: bool,
}

struct CertView {
    number: String,
    link: String,
    status: &'static str,
    valid: bool,
    issued: String,
    holders: String,
    cancelled: String,
}

#[derive(Template)]
#[template(path = "unit.html")]
struct UnitPage {
    layout: Layout,
    unit_code: String,
    location: String,
    area: String,
    usage: String,
    right_type: &'static str,
    right_nature: String,
    use_term: String,
    rights: Vec<RightView>,
    seizures: Vec<SeizureView>,
    mortgages: Vec<MortgageView>,
    certificates: Vec<CertView>,
}

fn cert_view(c: &certificates::CertificateRow) -> CertView {
    CertView {
        link: format!("/certificates?no={}", url_encode(&c.number)),
        number: c.number.clone(),
        status: c.status_zh(),
        valid: c.status == certificates::VALID,
        issued: fmt_ms(c.issued_at_ms),
        holders: c.holders_masked.join("、"),
        cancelled: match (c.cancelled_at_ms, &c.cancelled_reason) {
            (Some(at), Some(r)) => format!("{} {}", fmt_ms(at), r),
            _ => String::new(),
        },
    }
}

async fn unit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let unit = register::unit(&mut conn, &auth.staff.district_code, &code)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)?;
    let now = state.now_ms();
    let rights = register::rights(&mut conn, &state.pii, &code)
        .await
        .map_err(internal)?;
    let seizures = register::seizures(&mut conn, &code)
        .await
        .map_err(internal)?;
    let mortgages = register::mortgages(&mut conn, &code)
        .await
        .map_err(internal)?;
    let certs = certificates::by_unit(&mut conn, &code)
        .await
        .map_err(internal)?;
    let page = UnitPage {
        layout: Layout::for_staff(format!("不动产单元 {code}"), &auth),
        right_type: unit.right_type_zh(),
        unit_code: unit.unit_code,
        location: unit.location,
        area: unit.area_m2,
        usage: unit.usage,
        right_nature: unit.right_nature,
        use_term: unit.use_term,
        rights: rights
            .iter()
            .map(|r| RightView {
                status: if r.status == register::CURRENT {
                    "现势"
                } else {
                    "历史"
                },
                current: r.status == register::CURRENT,
                registration_type: r.registration_type_zh(),
                application_no: r.application_no.clone().unwrap_or_default(),
                recorded: fmt_ms(r.recorded_at_ms),
                ended: r.ended_at_ms.map(fmt_ms).unwrap_or_default(),
                holders: r
                    .holders
                    .iter()
                    .map(|h| PartyView {
                        name: h.name_masked(),
                        id_type: id_type_zh(&h.id_type),
                        id_number: h.id_masked(),
                        phone: String::new(),
                        share: h.share.clone(),
                    })
                    .collect(),
            })
            .collect(),
        seizures: seizures
            .iter()
            .map(|s| SeizureView {
                kind: s.kind_zh(),
                court: s.court.clone(),
                document_no: s.document_no.clone(),
                term: format!("{} 至 {}", fmt_ms(s.starts_at_ms), fmt_ms(s.ends_at_ms)),
                in_force: s.in_force(now),
            })
            .collect(),
        mortgages: mortgages
            .iter()
            .map(|m| MortgageView {
                mortgagee: m.mortgagee.clone(),
                method: if m.method == 2 {
                    "最高额抵押"
                } else {
                    "一般抵押"
                },
                amount: yuan(m.amount_fen),
                term: format!("{} 至 {}", fmt_ms(m.starts_at_ms), fmt_ms(m.ends_at_ms)),
                current: m.status == register::CURRENT,
            })
            .collect(),
        certificates: certs.iter().map(cert_view).collect(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "certificate.html")]
struct CertificatePage {
    layout: Layout,
    cert: CertView,
    unit_code: String,
    location: String,
    application_no: String,
    print_link: String,
}

#[derive(Deserialize)]
struct CertQuery {
    no: Option<String>,
}

async fn certificate_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CertQuery>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let no = q.no.unwrap_or_default();
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let c = certificates::get(&mut conn, &auth.staff.district_code, &no)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)?;
    Ok(render(&CertificatePage {
        layout: Layout::for_staff(format!("证书 {}", c.number), &auth),
        print_link: format!("/certificates/print?no={}", url_encode(&c.number)),
        unit_code: c.unit_code.clone(),
        location: c.location.clone(),
        application_no: c.application_no.clone().unwrap_or_default(),
        cert: cert_view(&c),
    }))
}

async fn certificate_print(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CertQuery>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let no = q.no.unwrap_or_default();
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let (signed, _code) =
        certificates::signed(&mut conn, &state.pii, &auth.staff.district_code, &no)
            .await
            .map_err(internal)?
            .ok_or(PageError::NotFound)?;
    tracing::info!(staff_id = %auth.staff.id, "certificate printed");
    let html = ow_certificate::render_html(&signed, &state.settings.portal_verify_url)
        .map_err(internal)?;
    Ok(Html(html).into_response())
}
