//! The back office's side of the cadastral zone: the register log that feeds the intranet's
//! mirror, a first registration's survey sent to the intranet (by the gateway, or on media when
//! confidential) and the review that comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, party, pdf};
use ow_bundle::{Channel, Zone};
use ow_extranet::exchange::{
    self, ApplicationSubmitted, Disposition, Envelope, InboundFile, InboundMessage, MaterialRef,
    Message, ReviewFinding, ReviewedParcel, SurveyReview,
};
use ow_extranet::survey::{self, SurveyFormat, SurveyUpload};
use ow_extranet::{register_log, staff};

const TO_INTRANET: Channel = Channel {
    from: Zone::Extranet,
    to: Zone::Intranet,
};

const SURVEY_TXT: &str = "[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n带号=38\n\
[地块坐标]\n5,0.5000,D001,示例地块,面,,070101,0701,@\n\
J1,1,3380000.000,38500000.000\nJ2,1,3380000.000,38500100.000\n\
J3,1,3379950.000,38500100.000\nJ4,1,3379950.000,38500000.000\n\
J1,1,3380000.000,38500000.000\n";

/// Messages queued towards the intranet, with their route.
async fn to_intranet(server: &TestServer) -> Vec<(Envelope, String)> {
    let queued = exchange::queued_messages(&server.state.store, &server.state.pii, &TO_INTRANET)
        .await
        .unwrap();
    let mut out = Vec::new();
    for (envelope, _) in queued {
        let route: String =
            sqlx::query_scalar("SELECT route FROM exchange_outbox WHERE message_id = $1")
                .bind(&envelope.message_id)
                .fetch_one(server.state.store.writer())
                .await
                .unwrap();
        out.push((envelope, route));
    }
    out
}

/// A first registration (首次登记): applicants only, no unit code yet, one PDF.
fn first_registration(no: &str, district: &str) -> InboundMessage {
    let bytes = pdf(&format!("{no} land source"));
    let message = Message::ApplicationSubmitted(ApplicationSubmitted {
        application_no: no.into(),
        district_code: district.into(),
        business_type: "1000301".into(),
        unit_code: None,
        certificate_number: None,
        sellers: Vec::new(),
        buyers: vec![party("欧阳明月", "11010519491231002X", "1/1")],
        price_fen: 0,
        materials: vec![MaterialRef {
            item: "m01.pdf".into(),
            checklist_code: "land_source".into(),
            file_name: "出让合同.pdf".into(),
            media_type: "application/pdf".into(),
            size: bytes.len() as u64,
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        }],
        applicant_ref: "acct-first".into(),
        submitted_at_ms: ow_store::now_ms(),
    });
    InboundMessage {
        bundle_id: ow_store::new_id(),
        channel: Channel {
            from: Zone::Internet,
            to: Zone::Extranet,
        },
        envelope: Envelope::new(message, ow_store::now_ms()),
        files: vec![InboundFile::from_bytes("m01.pdf", "application/pdf", bytes)],
    }
}

fn review_message(review: SurveyReview) -> InboundMessage {
    InboundMessage {
        bundle_id: ow_store::new_id(),
        channel: Channel {
            from: Zone::Intranet,
            to: Zone::Extranet,
        },
        envelope: Envelope::new(Message::SurveyReview(review), ow_store::now_ms()),
        files: Vec::new(),
    }
}

async fn import(server: &TestServer, msg: &InboundMessage) -> Option<Disposition> {
    server.import(msg).await
}

async fn status_of(server: &TestServer, no: &str) -> (String, Option<String>) {
    let row: (String, Option<String>) =
        sqlx::query_as("SELECT status, unit_code FROM ext_cases WHERE application_no = $1")
            .bind(no)
            .fetch_one(server.state.store.writer())
            .await
            .unwrap();
    row
}

/// The status messages queued for the portal about `no`: (status, reason).
async fn portal_statuses(server: &TestServer, no: &str) -> Vec<(String, Option<String>)> {
    server
        .outbox()
        .await
        .into_iter()
        .filter_map(|(e, _)| match e.message {
            Message::ApplicationStatus(s) if s.application_no == no => Some((s.status, s.reason)),
            _ => None,
        })
        .collect()
}

/// Imports a first registration, accepts it and sends its survey; returns the package id.
async fn sent_for_review(server: &TestServer, no: &str, confidential: bool) -> String {
    let district = staff_member(server, "qz-accept").await.district_code;
    assert_eq!(
        import(server, &first_registration(no, &district)).await,
        Some(Disposition::Imported)
    );
    let registrar = server.login("qz-accept").await;
    let (code, body) = registrar.act(no, "accept", &[]).await;
    assert_eq!(code, 200, "{body}");
    let material = survey::store_counter_file(
        &server.state,
        no,
        survey::SURVEY_CHECKLIST,
        "界址点坐标.txt",
        "text/plain",
        std::io::Cursor::new(SURVEY_TXT.as_bytes().to_vec()),
    )
    .await
    .unwrap();
    let reviewer = staff_member(server, "qz-review").await;
    survey::send(
        &server.state,
        &reviewer,
        no,
        SurveyUpload {
            format: SurveyFormat::BoundaryTxt,
            survey_material_id: material,
            report_material_id: None,
            confidential,
        },
    )
    .await
    .unwrap()
}

async fn staff_member(server: &TestServer, username: &str) -> staff::StaffMember {
    staff::find_by_username(&server.state.store, username)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no staff {username}"))
}

#[tokio::test]
async fn every_recorded_right_is_in_the_register_log_and_queued_once_in_order() {
    let mut server = TestServer::start().await;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT district_code, seq FROM ext_register_log ORDER BY district_code, seq",
    )
    .fetch_all(server.state.store.writer())
    .await
    .unwrap();
    assert!(!rows.is_empty(), "the demo register has rights");
    // Per district: 1, 2, 3 … without gaps.
    let mut expected: std::collections::HashMap<String, i64> = Default::default();
    for (district, seq) in &rows {
        let next = expected.entry(district.clone()).or_insert(0);
        *next += 1;
        assert_eq!(*next, *seq, "{district}");
    }
    let queued = register_log::queue_unsent(&server.state.store, &server.state.pii)
        .await
        .unwrap();
    assert_eq!(queued, rows.len());
    assert_eq!(
        register_log::queue_unsent(&server.state.store, &server.state.pii)
            .await
            .unwrap(),
        0,
        "queued once"
    );
    let mut carried = 0;
    for (envelope, route) in to_intranet(&server).await {
        assert_eq!(route, "gateway");
        let Message::RegisterLog(log) = envelope.message else {
            panic!("only register-log messages so far");
        };
        for pair in log.entries.windows(2) {
            assert_eq!(pair[0].seq + 1, pair[1].seq, "consecutive");
        }
        for e in &log.entries {
            assert_eq!(&e.unit_code[..6], log.district_code);
            assert_eq!(e.state, "current");
            assert!(
                e.area_m2.as_deref().is_some_and(|a| a.contains('.')),
                "{e:?}"
            );
        }
        carried += log.entries.len();
    }
    assert_eq!(carried, rows.len());
    server.stop().await;
}

#[tokio::test]
async fn a_survey_goes_to_the_intranet_and_its_approval_brings_the_case_back_with_its_unit_code() {
    let mut server = TestServer::start().await;
    let no = "SQ20261203FR0001";
    let package = sent_for_review(&server, no, false).await;
    assert_eq!(status_of(&server, no).await.0, "survey_review");
    let sent: Vec<_> = to_intranet(&server)
        .await
        .into_iter()
        .filter_map(|(e, route)| match e.message {
            Message::SurveyPackage(p) => Some((p, route)),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1);
    let (p, route) = &sent[0];
    assert_eq!(route, "gateway");
    assert_eq!(
        (p.package_id.as_str(), p.format.as_str()),
        (package.as_str(), "boundary-txt")
    );
    assert_eq!(p.survey.size, SURVEY_TXT.len() as u64);
    assert_eq!(
        p.survey.blake3,
        blake3::hash(SURVEY_TXT.as_bytes()).to_hex().to_string()
    );
    assert!(
        portal_statuses(&server, no)
            .await
            .iter()
            .any(|(s, _)| s == "survey_review"),
        "the citizen sees 待权籍审核"
    );

    let district = staff_member(&server, "qz-accept").await.district_code;
    let unit_code = format!("{district}001001GB00099F00010001");
    let approved = SurveyReview {
        application_no: no.into(),
        package_id: package.clone(),
        outcome: "approved".into(),
        parcels: vec![ReviewedParcel {
            number: "D001".into(),
            unit_code: unit_code.clone(),
            area_m2: "5000.00".into(),
        }],
        findings: Vec::new(),
        reason: None,
        reviewed_at_ms: ow_store::now_ms(),
    };
    assert_eq!(
        import(&server, &review_message(approved.clone())).await,
        Some(Disposition::Imported)
    );
    assert_eq!(
        status_of(&server, no).await,
        ("accepted".into(), Some(unit_code.clone()))
    );
    let told = portal_statuses(&server, no).await;
    let (_, reason) = told.last().unwrap();
    assert!(reason.as_deref().unwrap().contains(&unit_code), "{told:?}");

    // The same review again (a disc imported twice is refused by the ferry; a review re-sent
    // under a new message id is refused here): nothing changes.
    match import(&server, &review_message(approved)).await {
        Some(Disposition::Refused { reason }) => assert!(reason.contains("already"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A review of a package this back office never sent.
    let mut stray = SurveyReview {
        application_no: no.into(),
        package_id: uuid::Uuid::now_v7().to_string(),
        outcome: "approved".into(),
        parcels: Vec::new(),
        findings: Vec::new(),
        reason: None,
        reviewed_at_ms: 1,
    };
    assert!(matches!(
        import(&server, &review_message(stray.clone())).await,
        Some(Disposition::Refused { .. })
    ));
    stray.package_id = package;
    stray.application_no = "SQ-other".into();
    assert!(matches!(
        import(&server, &review_message(stray)).await,
        Some(Disposition::Refused { .. })
    ));
    assert_eq!(status_of(&server, no).await.0, "accepted");

    // 登簿 needs the new unit's page: refused, naming the rule, until the registrar fills it.
    let review = server.login("qz-review").await;
    let (status, page) = review.act(no, "review", &[]).await;
    assert_eq!(
        (status, common::case_status(&page).as_str()),
        (200, "reviewed"),
        "{page}"
    );
    let record = server.login("qz-record").await;
    let (status, page) = record
        .act_raw(no, "record", &[("opinion", "同意登簿")])
        .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("unit_page_complete"), "{page}");
    let reviewer = staff_member(&server, "qz-review").await;
    let mut input = survey::UnitPageInput {
        location: "青州市云门山街道测试路1号".into(),
        usage: "住宅".into(),
        right_type: "4".into(),
        right_nature: "出让".into(),
        use_term: "2026-01-01起2095-12-31止".into(),
    };
    let bad = survey::UnitPageInput {
        location: "坐落\u{1b}[2J".into(),
        ..input.clone()
    };
    assert!(matches!(
        survey::set_unit_page(&server.state, &reviewer, no, &bad).await,
        Err(survey::UnitPageError::Invalid(_))
    ));
    input.right_type = "23".into();
    assert!(matches!(
        survey::set_unit_page(&server.state, &reviewer, no, &input).await,
        Err(survey::UnitPageError::Invalid(_))
    ));
    input.right_type = "4".into();
    survey::set_unit_page(&server.state, &reviewer, no, &input)
        .await
        .unwrap();
    let (status, page) = record.act(no, "record", &[]).await;
    assert_eq!(
        (status, common::case_status(&page).as_str()),
        (200, "recorded"),
        "{page}"
    );
    let cert = server.login("qz-cert").await;
    assert_eq!(cert.act(no, "prepare", &[]).await.0, 200);
    let (status, page) = cert.act(no, "issue", &[]).await;
    assert_eq!(
        (status, common::case_status(&page).as_str()),
        (200, "completed"),
        "{page}"
    );

    // The register has the new unit with the survey's area, the applicant as holder, a
    // certificate, and the register log an entry 首次 (100) for the mirror.
    let mut conn = server.state.store.reader().acquire().await.unwrap();
    let unit = ow_extranet::register::unit(&mut conn, &district, &unit_code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (unit.area_m2.as_str(), unit.location.as_str()),
        ("5000.00", "青州市云门山街道测试路1号")
    );
    let right = ow_extranet::register::current_right(&mut conn, &server.state.pii, &unit_code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(right.holders.len(), 1);
    let certs = ow_extranet::certificates::by_unit(&mut conn, &unit_code)
        .await
        .unwrap();
    assert_eq!(certs.iter().filter(|c| c.status == "valid").count(), 1);
    let logged: (String, String) = sqlx::query_as(
        "SELECT registration_type, state FROM ext_register_log WHERE unit_code = $1",
    )
    .bind(&unit_code)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(logged, ("100".to_string(), "current".to_string()));
    drop(conn);
    server.stop().await;
}

#[tokio::test]
async fn a_rejected_survey_asks_the_citizen_for_a_corrected_one_in_plain_words() {
    let mut server = TestServer::start().await;
    let no = "SQ20261203FR0002";
    let package = sent_for_review(&server, no, true).await;
    // Confidential: the media route, never the gateway.
    let routes: Vec<String> = to_intranet(&server)
        .await
        .into_iter()
        .filter(|(e, _)| matches!(e.message, Message::SurveyPackage(_)))
        .map(|(_, route)| route)
        .collect();
    assert_eq!(routes, vec!["media".to_string()]);

    let rejected = SurveyReview {
        application_no: no.into(),
        package_id: package,
        outcome: "rejected".into(),
        parcels: Vec::new(),
        findings: vec![ReviewFinding {
            code: "overlap-existing".into(),
            severity: "error".into(),
            parcel: Some("D001".into()),
            point: None,
            message: "与已登记宗地重叠 120.50 平方米".into(),
            advice: "请核对界址点坐标后重新测量".into(),
        }],
        reason: Some("与邻宗地重叠".into()),
        reviewed_at_ms: ow_store::now_ms(),
    };
    assert_eq!(
        import(&server, &review_message(rejected)).await,
        Some(Disposition::Imported)
    );
    assert_eq!(
        status_of(&server, no).await,
        ("supplement_requested".into(), None)
    );
    let told = portal_statuses(&server, no).await;
    let (status, reason) = told.last().unwrap();
    assert_eq!(status, "supplement_requested");
    let reason = reason.as_deref().unwrap();
    assert!(
        reason.contains("与已登记宗地重叠 120.50 平方米"),
        "{reason}"
    );
    assert!(reason.contains("请核对界址点坐标后重新测量"), "{reason}");
    // The stored findings are sealed: not in clear in the database.
    let stored: String = sqlx::query_scalar(
        "SELECT review_sealed FROM ext_survey_packages WHERE application_no = $1",
    )
    .bind(no)
    .fetch_one(server.state.store.writer())
    .await
    .unwrap();
    assert!(!stored.contains("重叠"), "{stored}");
    server.stop().await;
}

#[tokio::test]
async fn a_survey_is_sent_only_for_an_accepted_first_registration_by_a_reviewer() {
    let mut server = TestServer::start().await;
    let district = staff_member(&server, "qz-accept").await.district_code;
    let no = "SQ20261203FR0003";
    assert_eq!(
        import(&server, &first_registration(no, &district)).await,
        Some(Disposition::Imported)
    );
    let material = survey::store_counter_file(
        &server.state,
        no,
        survey::SURVEY_CHECKLIST,
        "survey.txt",
        "text/plain",
        std::io::Cursor::new(SURVEY_TXT.as_bytes().to_vec()),
    )
    .await
    .unwrap();
    let upload = SurveyUpload {
        format: SurveyFormat::BoundaryTxt,
        survey_material_id: material,
        report_material_id: None,
        confidential: false,
    };
    let reviewer = staff_member(&server, "qz-review").await;
    // Not accepted yet.
    let err = survey::send(&server.state, &reviewer, no, upload.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ow_extranet::workflow::ActionError::Transition(_)),
        "{err}"
    );
    let acceptor = staff_member(&server, "qz-accept").await;
    let registrar = server.login("qz-accept").await;
    assert_eq!(registrar.act(no, "accept", &[]).await.0, 200);
    if !acceptor.has(staff::Role::Review) {
        let err = survey::send(&server.state, &acceptor, no, upload.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ow_extranet::workflow::ActionError::Forbidden { .. }),
            "{err}"
        );
    }
    // A material of another case cannot be sent with this one.
    let mut foreign = upload.clone();
    foreign.survey_material_id = "not-a-material".into();
    assert!(matches!(
        survey::send(&server.state, &reviewer, no, foreign).await,
        Err(ow_extranet::workflow::ActionError::NotFound)
    ));
    // A transfer never waits for a survey.
    assert!(
        survey::send(&server.state, &reviewer, no, upload)
            .await
            .is_ok()
    );
    assert!(!ow_domain::CaseStatus::Accepted.can_move_to_for(
        ow_domain::CaseStatus::SurveyReview,
        ow_domain::BusinessType::TransferSecondHand
    ));
    server.stop().await;
}
