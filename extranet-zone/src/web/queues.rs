//! The case queues. A registrar lands on their own stage's queue (我的待办: the statuses in which
//! their roles can act, e.g. 待审核 for 审核 staff); tabs show every status with its count. Rows
//! show the applicant (masked), the address, the business type, the age and the deadline.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use ow_domain::{CaseStatus, mask};
use serde::Deserialize;

use super::{Layout, PageError, authed, fmt_ms, internal, render};
use crate::AppState;
use crate::cases::{self, Case, QueueExtras};
use crate::deadline::{self, Deadline};
use crate::staff::StaffMember;
use crate::workflow;

/// The routes of this part of the back office.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/cases", get(queue))
}

/// The queue name of a status: what the case waits for.
pub fn stage_label_zh(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::Submitted => "待受理",
        CaseStatus::SupplementRequested => "待补正",
        CaseStatus::Accepted => "待审核",
        CaseStatus::SurveyReview => "待权籍审核",
        CaseStatus::Reviewed => "待登簿",
        CaseStatus::Recorded => "待缮证",
        CaseStatus::CertificatePrepared => "待发证",
        CaseStatus::Completed => "已办结",
        CaseStatus::Refused => "不予受理/登记",
        CaseStatus::Withdrawn => "已撤回",
    }
}

/// The statuses in which `staff` can act, in workflow order: their own queue. A case waiting
/// for the applicant's supplement is not in anyone's queue.
pub fn own_stages(staff: &StaffMember) -> Vec<CaseStatus> {
    CaseStatus::ALL
        .into_iter()
        .filter(|s| {
            *s != CaseStatus::SupplementRequested && !workflow::available(*s, staff).is_empty()
        })
        .collect()
}

struct TabView {
    link: String,
    name: String,
    count: i64,
    selected: bool,
    code: &'static str,
}

struct QueueRow {
    no: String,
    business: &'static str,
    applicant: String,
    location: String,
    unit_code: String,
    status: &'static str,
    status_code: &'static str,
    received: String,
    age: String,
    due: String,
    left: String,
    /// `ok`, `warn` or `bad`: the deadline's badge.
    urgency: &'static str,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    layout: Layout,
    tabs: Vec<TabView>,
    heading: String,
    rows: Vec<QueueRow>,
}

#[derive(Deserialize)]
struct QueueQuery {
    status: Option<String>,
}

/// What the queue lists.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selection {
    /// The member's own stages.
    Mine(Vec<CaseStatus>),
    /// One status.
    One(CaseStatus),
    /// Everything in the district.
    All,
}

fn applicant_view(extras: &QueueExtras) -> String {
    match extras.applicants.as_slice() {
        [] => String::new(),
        [one] => mask::mask_name(one),
        [first, rest @ ..] => format!("{} 等{}人", mask::mask_name(first), rest.len() + 1),
    }
}

fn row_of(case: &Case, extras: &QueueExtras, now_ms: i64) -> QueueRow {
    let limit = deadline::time_limit_for_code(&case.business_type);
    let (due, left, urgency) = match (case.status, case.accepted_at_ms) {
        (CaseStatus::Completed | CaseStatus::Refused | CaseStatus::Withdrawn, _) => {
            (String::new(), String::new(), "ok")
        }
        (_, Some(accepted)) => {
            let d = Deadline::compute(accepted, limit, now_ms);
            let urgency = if d.overdue() {
                "bad"
            } else if d.working_days_left <= 1 {
                "warn"
            } else {
                "ok"
            };
            (d.due.format("%Y-%m-%d").to_string(), d.left_zh(), urgency)
        }
        (_, None) => (String::new(), format!("受理后{limit}个工作日"), "ok"),
    };
    QueueRow {
        no: case.application_no.clone(),
        business: case.business_zh(),
        applicant: applicant_view(extras),
        location: extras.location.clone().unwrap_or_default(),
        unit_code: case.unit_code.clone().unwrap_or_default(),
        status: stage_label_zh(case.status),
        status_code: case.status.code(),
        received: fmt_ms(case.received_at_ms),
        age: deadline::age_zh(case.received_at_ms, now_ms),
        due,
        left,
        urgency,
    }
}

async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let district = &auth.staff.district_code;
    let mine = own_stages(&auth.staff);
    let selection = match q.status.as_deref() {
        None | Some("") | Some("mine") if !mine.is_empty() => Selection::Mine(mine.clone()),
        None | Some("") | Some("mine") | Some("all") => Selection::All,
        Some(code) => Selection::One(CaseStatus::from_code(code).ok_or(PageError::NotFound)?),
    };
    let statuses: Vec<CaseStatus> = match &selection {
        Selection::Mine(s) => s.clone(),
        Selection::One(s) => vec![*s],
        Selection::All => Vec::new(),
    };
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let counts = cases::counts(&mut conn, district).await.map_err(internal)?;
    let list = cases::queue(&mut conn, district, &statuses)
        .await
        .map_err(internal)?;
    let extras = cases::queue_extras(&mut conn, &state.pii, &list)
        .await
        .map_err(internal)?;
    drop(conn);
    let mut tabs = Vec::new();
    if !mine.is_empty() {
        tabs.push(TabView {
            link: "/cases".into(),
            name: format!(
                "我的待办（{}）",
                mine.iter()
                    .map(|s| stage_label_zh(*s))
                    .collect::<Vec<_>>()
                    .join("、")
            ),
            count: counts
                .iter()
                .filter(|(s, _)| mine.contains(s))
                .map(|(_, n)| n)
                .sum(),
            selected: matches!(selection, Selection::Mine(_)),
            code: "mine",
        });
    }
    for (s, n) in &counts {
        tabs.push(TabView {
            link: format!("/cases?status={}", s.code()),
            name: stage_label_zh(*s).to_owned(),
            count: *n,
            selected: selection == Selection::One(*s),
            code: s.code(),
        });
    }
    tabs.push(TabView {
        link: "/cases?status=all".into(),
        name: "全部".into(),
        count: counts.iter().map(|(_, n)| n).sum(),
        selected: selection == Selection::All,
        code: "all",
    });
    let heading = match &selection {
        Selection::Mine(s) => format!(
            "我的待办：{}",
            s.iter()
                .map(|s| stage_label_zh(*s))
                .collect::<Vec<_>>()
                .join("、")
        ),
        Selection::One(s) => stage_label_zh(*s).to_owned(),
        Selection::All => "全部业务".to_owned(),
    };
    let now = state.now_ms();
    let page = QueuePage {
        layout: Layout::for_staff("业务队列", &auth),
        tabs,
        heading,
        rows: list
            .iter()
            .zip(&extras)
            .map(|(c, e)| row_of(c, e, now))
            .collect(),
    };
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staff::Role;

    fn member(roles: &[Role]) -> StaffMember {
        StaffMember {
            id: "s".into(),
            username: "u".into(),
            display_name: "d".into(),
            district_code: "370781".into(),
            district_name: "青州市".into(),
            roles: roles.to_vec(),
        }
    }

    #[test]
    fn each_role_has_its_own_stage() {
        assert_eq!(
            own_stages(&member(&[Role::Accept])),
            [CaseStatus::Submitted]
        );
        // A reviewer also sees what waits for the cadastral zone (they may only refuse it).
        assert_eq!(
            own_stages(&member(&[Role::Review])),
            [CaseStatus::Accepted, CaseStatus::SurveyReview]
        );
        assert_eq!(
            workflow::available(CaseStatus::SurveyReview, &member(&Role::ALL)),
            [workflow::Action::Refuse]
        );
        assert_eq!(own_stages(&member(&[Role::Record])), [CaseStatus::Reviewed]);
        let cert = own_stages(&member(&[Role::Certificate]));
        assert!(cert.contains(&CaseStatus::CertificatePrepared), "{cert:?}");
        assert!(cert.contains(&CaseStatus::Recorded), "{cert:?}");
        assert!(own_stages(&member(&[Role::DistrictAdmin])).is_empty());
        assert_eq!(stage_label_zh(CaseStatus::Accepted), "待审核");
        assert_eq!(stage_label_zh(CaseStatus::SurveyReview), "待权籍审核");
    }

    #[test]
    fn applicants_are_masked() {
        let one = QueueExtras {
            location: None,
            applicants: vec!["张三".into()],
        };
        assert_eq!(applicant_view(&one), "张*");
        let two = QueueExtras {
            location: None,
            applicants: vec!["王小明".into(), "李四".into()],
        };
        assert_eq!(applicant_view(&two), "王*明 等2人");
    }
}
