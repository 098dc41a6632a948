//! The 权籍调查 panel of a first registration's case page, over HTTP: the survey sent with the
//! counter's pre-check (unreadable files stay, findings need 「已核对，仍送审」, classified
//! packages go on media), who may send, the packages and their reviews, and the new unit's
//! page after an approval.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Registrar, TestServer, application, case_status, csrf_of, party, pdf};
use ow_bundle::{Channel, Zone};
use ow_extranet::exchange::{
    self, ApplicationSubmitted, Disposition, Envelope, InboundFile, InboundMessage, MaterialRef,
    Message, ReviewFinding, ReviewedParcel, SurveyReview,
};
use reqwest::multipart::{Form, Part};

const TO_INTRANET: Channel = Channel {
    from: Zone::Extranet,
    to: Zone::Intranet,
};

const DISTRICT: &str = "370781";

const SURVEY_TXT: &str = "[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n带号=38\n\
[地块坐标]\n5,0.5000,D001,示例地块,面,,070101,0701,@\n\
J1,1,3380000.000,38500000.000\nJ2,1,3380000.000,38500100.000\n\
J3,1,3379950.000,38500100.000\nJ4,1,3379950.000,38500000.000\n\
J1,1,3380000.000,38500000.000\n";

/// A first registration (首次登记) of `no` in 青州市.
fn first_registration(no: &str) -> InboundMessage {
    let bytes = pdf(&format!("{no} land source"));
    let message = Message::ApplicationSubmitted(ApplicationSubmitted {
        application_no: no.into(),
        district_code: DISTRICT.into(),
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

/// Imports a first registration and accepts it (`accept` is qz-accept signed in: a TOTP code
/// signs in once).
async fn accepted(server: &TestServer, accept: &Registrar, no: &str) {
    assert_eq!(
        server.import(&first_registration(no)).await,
        Some(Disposition::Imported)
    );
    let (status, page) = accept.act(no, "accept", &[]).await;
    assert_eq!((status, case_status(&page).as_str()), (200, "accepted"));
}

/// The survey packages queued towards the intranet, with their route.
async fn sent_packages(server: &TestServer) -> Vec<(exchange::SurveyPackage, String)> {
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
        if let Message::SurveyPackage(p) = envelope.message {
            out.push((p, route));
        }
    }
    out
}

/// What the send form carries.
struct Upload<'a> {
    csrf: Option<String>,
    survey: &'a [u8],
    survey_name: &'a str,
    report: Option<Vec<u8>>,
    confidential: bool,
    acknowledged: bool,
}

impl<'a> Upload<'a> {
    fn txt(survey: &'a str) -> Self {
        Upload {
            csrf: None,
            survey: survey.as_bytes(),
            survey_name: "界址点坐标.txt",
            report: None,
            confidential: false,
            acknowledged: false,
        }
    }
}

/// Posts the send form of case `no` as a browser does (token first, then the files); the
/// token is taken from the case page (or the queue, for a case the member cannot see) unless
/// `csrf` is given (`Some("")` sends none).
async fn send(r: &Registrar, no: &str, u: Upload<'_>) -> (u16, String) {
    let csrf = match u.csrf {
        Some(c) => c,
        None => {
            let (status, page) = r.get(&format!("/cases/{no}")).await;
            if status == 200 {
                csrf_of(&page)
            } else {
                csrf_of(&r.get("/cases").await.1)
            }
        }
    };
    let mut form = Form::new();
    if !csrf.is_empty() {
        form = form.text("csrf", csrf);
    }
    form = form.part(
        "survey",
        Part::bytes(u.survey.to_vec())
            .file_name(u.survey_name.to_owned())
            .mime_str("text/plain")
            .unwrap(),
    );
    if let Some(report) = u.report {
        form = form.part(
            "report",
            Part::bytes(report)
                .file_name("权籍调查报告.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    }
    if u.confidential {
        form = form.text("confidential", "yes");
    }
    if u.acknowledged {
        form = form.text("acknowledged", "yes");
    }
    let resp = r
        .client
        .post(format!("{}/cases/{no}/survey", r.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn status_of(server: &TestServer, no: &str) -> String {
    sqlx::query_scalar("SELECT status FROM ext_cases WHERE application_no = $1")
        .bind(no)
        .fetch_one(server.state.store.writer())
        .await
        .unwrap()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_is_on_a_first_registration_only() {
    let mut server = TestServer::start().await;
    let accept = server.login("qz-accept").await;
    accepted(&server, &accept, "FR-PANEL-1").await;
    let unit = server.unit("370781001001GB00001F00010101").clone();
    let holder = &unit.holders[0];
    let buyer = &server.seed.demo_buyers[0];
    let transfer = application(
        "TR-PANEL-1",
        DISTRICT,
        &unit.unit_code,
        vec![party(&holder.name, &holder.id_number, "1/1")],
        vec![party(&buyer.name, &buyer.id_number, "1/1")],
    );
    assert_eq!(server.import(&transfer).await, Some(Disposition::Imported));

    let review = server.login("qz-review").await;
    let (status, page) = review.get("/cases/FR-PANEL-1").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"survey-panel\""), "{page}");
    assert!(
        page.contains("id=\"survey-send\""),
        "a reviewer gets the form: {page}"
    );
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    assert!(page.contains("涉密或面积超过6平方公里的成果只能光盘摆渡，不经网闸"));
    let (status, page) = review.get("/cases/TR-PANEL-1").await;
    assert_eq!(status, 200);
    assert!(!page.contains("survey-panel"), "{page}");
    // A transfer has no survey to send.
    let (status, _) = send(&review, "TR-PANEL-1", Upload::txt(SURVEY_TXT)).await;
    assert_eq!(status, 404);
    // The acceptor sees the panel but not the form.
    let (_, page) = accept.get("/cases/FR-PANEL-1").await;
    assert!(page.contains("id=\"survey-panel\""), "{page}");
    assert!(!page.contains("id=\"survey-send\""), "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_file_is_shown_with_its_line_and_nothing_is_sent() {
    let mut server = TestServer::start().await;
    let accept = server.login("qz-accept").await;
    let no = "FR-BAD-1";
    accepted(&server, &accept, no).await;
    let review = server.login("qz-review").await;
    let garbage = SURVEY_TXT.replace("J3,1,3379950.000,38500100.000", "这一行不是坐标");
    let (status, page) = send(&review, no, Upload::txt(&garbage)).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("id=\"survey-problems\""), "{page}");
    assert!(page.contains("第9行"), "the garbage line is named: {page}");
    assert!(page.contains("未送审"), "{page}");
    assert!(sent_packages(&server).await.is_empty());
    assert_eq!(status_of(&server, no).await, "accepted");
    // Nothing stored either: the case has no survey material.
    let stored: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM ext_case_materials WHERE application_no = $1 \
         AND checklist_code = 'cadastral_survey'",
    )
    .bind(no)
    .fetch_one(server.state.store.writer())
    .await
    .unwrap();
    assert_eq!(stored, 0);
    // Larger than the rest of the back office takes (64 KiB), under the materials limit: read
    // and judged like any other.
    let long = format!("{garbage}{}", "这一行不是坐标\n".repeat(8 * 1024));
    assert!(long.len() > 100 * 1024);
    let (status, page) = send(&review, no, Upload::txt(&long)).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("第9行"), "{page}");
    // A report that is not a PDF is refused too.
    let mut u = Upload::txt(SURVEY_TXT);
    u.report = Some(b"<html><script>alert(1)</script></html>".to_vec());
    let (status, page) = send(&review, no, u).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("PDF"), "{page}");
    assert!(sent_packages(&server).await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_survey_goes_through_the_gateway_and_a_classified_one_on_media() {
    let mut server = TestServer::start().await;
    let accept = server.login("qz-accept").await;
    accepted(&server, &accept, "FR-GOOD-1").await;
    accepted(&server, &accept, "FR-SECRET-1").await;
    accepted(&server, &accept, "FR-SECRET-2").await;
    let review = server.login("qz-review").await;

    let mut u = Upload::txt(SURVEY_TXT);
    u.report = Some(pdf("survey report"));
    let (status, page) = send(&review, "FR-GOOD-1", u).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(case_status(&page), "survey_review", "{page}");
    assert!(page.contains("待权籍审核"), "{page}");
    assert!(page.contains("经网闸送审"), "{page}");
    assert!(page.contains("data-outcome=\"waiting\""), "{page}");
    assert!(!page.contains("id=\"survey-send\""), "sent once: {page}");
    let sent = sent_packages(&server).await;
    assert_eq!(sent.len(), 1);
    let (p, route) = &sent[0];
    assert_eq!(route, "gateway");
    assert_eq!(p.application_no, "FR-GOOD-1");
    assert_eq!(p.format, "boundary-txt");
    assert!(!p.confidential);
    assert_eq!(
        p.survey.blake3,
        blake3::hash(SURVEY_TXT.as_bytes()).to_hex().to_string()
    );
    assert!(p.report.is_some(), "the report travels with it");

    // 涉密 ticked: the media route.
    let mut u = Upload::txt(SURVEY_TXT);
    u.confidential = true;
    let (status, page) = send(&review, "FR-SECRET-1", u).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(case_status(&page), "survey_review");
    assert!(page.contains("经光盘摆渡送审"), "{page}");
    // Marked classified in the file, the box not ticked: forced onto media, with a notice.
    let classified = SURVEY_TXT.replace("带号=38\n", "带号=38\n密级=秘密\n");
    let (status, page) = send(&review, "FR-SECRET-2", Upload::txt(&classified)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("只能光盘摆渡，不经网闸"), "{page}");
    let routes: Vec<(String, String, bool)> = sent_packages(&server)
        .await
        .into_iter()
        .map(|(p, r)| (p.application_no, r, p.confidential))
        .collect();
    assert_eq!(
        routes,
        vec![
            ("FR-GOOD-1".to_string(), "gateway".to_string(), false),
            ("FR-SECRET-1".to_string(), "media".to_string(), true),
            ("FR-SECRET-2".to_string(), "media".to_string(), true),
        ]
    );
    // A case waiting for its review cannot be sent again.
    let (status, page) = send(&review, "FR-GOOD-1", Upload::txt(SURVEY_TXT)).await;
    assert_eq!(status, 409, "{page}");
    assert_eq!(sent_packages(&server).await.len(), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_of_the_counter_check_need_an_explicit_acknowledgement() {
    let mut server = TestServer::start().await;
    let accept = server.login("qz-accept").await;
    let no = "FR-ACK-1";
    accepted(&server, &accept, no).await;
    let review = server.login("qz-review").await;
    // The declared area (0.9 ha) does not match the boundary (0.5 ha).
    let mismatch = SURVEY_TXT.replace("5,0.5000,D001", "5,0.9000,D001");
    let (status, page) = send(&review, no, Upload::txt(&mismatch)).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("id=\"survey-findings\""), "{page}");
    assert!(page.contains("data-severity=\"error\""), "{page}");
    assert!(page.contains("id=\"survey-ack\""), "{page}");
    assert!(page.contains("已核对，仍送审"), "{page}");
    assert!(sent_packages(&server).await.is_empty());
    let mut u = Upload::txt(&mismatch);
    u.acknowledged = true;
    let (status, page) = send(&review, no, u).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(case_status(&page), "survey_review");
    assert_eq!(sent_packages(&server).await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_reviewer_of_the_district_with_the_token_may_send() {
    let mut server = TestServer::start().await;
    let accept = server.login("qz-accept").await;
    let no = "FR-WHO-1";
    accepted(&server, &accept, no).await;
    let (status, page) = send(&accept, no, Upload::txt(SURVEY_TXT)).await;
    assert_eq!(status, 403, "{page}");
    let other = server.login("wc-review").await;
    let (status, page) = send(&other, no, Upload::txt(SURVEY_TXT)).await;
    assert_eq!(status, 404, "{page}");
    let (status, _) = other.get(&format!("/cases/{no}")).await;
    assert_eq!(status, 404);
    let review = server.login("qz-review").await;
    let mut u = Upload::txt(SURVEY_TXT);
    u.csrf = Some(String::new());
    let (status, page) = send(&review, no, u).await;
    assert_eq!(status, 400, "{page}");
    let mut u = Upload::txt(SURVEY_TXT);
    u.csrf = Some("forged".into());
    let (status, _) = send(&review, no, u).await;
    assert_eq!(status, 400);
    // Not signed in: the login page, nothing sent.
    let anonymous = Registrar::new(&server.base);
    let mut u = Upload::txt(SURVEY_TXT);
    u.csrf = Some("x".into());
    let (_, page) = send(&anonymous, no, u).await;
    assert!(page.contains("登录"), "{page}");
    assert!(sent_packages(&server).await.is_empty());
    assert_eq!(status_of(&server, no).await, "accepted");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_approval_the_unit_page_is_filled_in_and_a_rejection_lists_its_findings() {
    let mut server = TestServer::start().await;
    let accept = server.login("qz-accept").await;
    accepted(&server, &accept, "FR-OK-1").await;
    accepted(&server, &accept, "FR-NO-1").await;
    let review = server.login("qz-review").await;
    for no in ["FR-OK-1", "FR-NO-1"] {
        let (status, page) = send(&review, no, Upload::txt(SURVEY_TXT)).await;
        assert_eq!(status, 200, "{page}");
    }
    let sent = sent_packages(&server).await;
    let package_of = |no: &str| {
        sent.iter()
            .find(|(p, _)| p.application_no == no)
            .map(|(p, _)| p.package_id.clone())
            .unwrap()
    };
    let unit_code = format!("{DISTRICT}001001GB00099F00010001");
    let approved = SurveyReview {
        application_no: "FR-OK-1".into(),
        package_id: package_of("FR-OK-1"),
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
        server.import(&review_message(approved)).await,
        Some(Disposition::Imported)
    );
    let rejected = SurveyReview {
        application_no: "FR-NO-1".into(),
        package_id: package_of("FR-NO-1"),
        outcome: "rejected".into(),
        parcels: Vec::new(),
        findings: vec![ReviewFinding {
            code: "overlap-existing".into(),
            severity: "error".into(),
            parcel: Some("D001".into()),
            point: Some("J3".into()),
            message: "与已登记宗地重叠 120.50 平方米".into(),
            advice: "请核对界址点坐标后重新测量".into(),
        }],
        reason: Some("与邻宗地重叠".into()),
        reviewed_at_ms: ow_store::now_ms(),
    };
    assert_eq!(
        server.import(&review_message(rejected)).await,
        Some(Disposition::Imported)
    );

    // The rejection: its findings and reason on the page.
    let (status, page) = review.get("/cases/FR-NO-1").await;
    assert_eq!(status, 200);
    assert_eq!(case_status(&page), "supplement_requested");
    assert!(page.contains("data-outcome=\"rejected\""), "{page}");
    assert!(page.contains("与已登记宗地重叠 120.50 平方米"), "{page}");
    assert!(page.contains("请核对界址点坐标后重新测量"), "{page}");
    assert!(page.contains("地块D001，J3"), "{page}");
    assert!(page.contains("审核意见：与邻宗地重叠"), "{page}");
    assert!(!page.contains("id=\"unit-page\""), "{page}");

    // The approval: unit code and area, and the unit page form for the reviewer.
    let (status, page) = review.get("/cases/FR-OK-1").await;
    assert_eq!(status, 200);
    assert_eq!(case_status(&page), "accepted");
    assert!(page.contains("data-outcome=\"approved\""), "{page}");
    assert!(
        page.contains(&format!("{unit_code}（5000.00 平方米）")),
        "{page}"
    );
    assert!(page.contains("id=\"unit-page\""), "{page}");
    assert!(
        !page.contains("id=\"survey-send\""),
        "approved: no new send: {page}"
    );
    let (status, _) = send(&review, "FR-OK-1", Upload::txt(SURVEY_TXT)).await;
    assert_eq!(status, 409, "an approved survey is not sent again");

    let csrf = csrf_of(&page);
    // A field left empty: refused, what was typed stays.
    let (status, page) = review
        .post(
            "/cases/FR-OK-1/survey/unit",
            &[
                ("csrf", &csrf),
                ("location", "青州市云门山街道测试路1号"),
                ("usage", ""),
                ("right_type", "3"),
                ("right_nature", "出让"),
                ("use_term", "2026-01-01起2095-12-31止"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("请填写用途"), "{page}");
    assert!(
        page.contains("value=\"青州市云门山街道测试路1号\""),
        "{page}"
    );
    // Without the token: refused.
    let (status, _) = review
        .post("/cases/FR-OK-1/survey/unit", &[("location", "x")])
        .await;
    assert_eq!(status, 400);
    // Saved.
    let (status, page) = review
        .post(
            "/cases/FR-OK-1/survey/unit",
            &[
                ("csrf", &csrf),
                ("location", "青州市云门山街道测试路1号"),
                ("usage", "住宅"),
                ("right_type", "3"),
                ("right_nature", "出让"),
                ("use_term", "2026-01-01起2095-12-31止"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("新单元的登簿信息已保存"), "{page}");
    assert!(page.contains("value=\"住宅\""), "{page}");
    assert!(
        page.contains("<option value=\"3\" selected>"),
        "the right type chosen: {page}"
    );
    // Others see it read-only; another district not at all.
    let record = server.login("qz-record").await;
    let (_, page) = record.get("/cases/FR-OK-1").await;
    assert!(!page.contains("id=\"unit-page\""), "{page}");
    assert!(page.contains("<dd>住宅</dd>"), "{page}");
    assert!(page.contains("<dd>国有建设用地使用权</dd>"), "{page}");
    let (status, _) = record
        .post(
            "/cases/FR-OK-1/survey/unit",
            &[
                ("csrf", &csrf_of(&page)),
                ("location", "x"),
                ("usage", "x"),
                ("right_type", "4"),
                ("right_nature", "x"),
                ("use_term", "x"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    let other = server.login("wc-review").await;
    let (_, q) = other.get("/cases").await;
    let (status, _) = other
        .post(
            "/cases/FR-OK-1/survey/unit",
            &[
                ("csrf", &csrf_of(&q)),
                ("location", "x"),
                ("usage", "x"),
                ("right_type", "4"),
                ("right_nature", "x"),
                ("use_term", "x"),
            ],
        )
        .await;
    assert_eq!(status, 404);
    let mut conn = server.state.store.reader().acquire().await.unwrap();
    let unit = ow_extranet::survey::new_unit(&mut conn, "FR-OK-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((unit.usage.as_str(), unit.right_type), ("住宅", 3));
    drop(conn);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_materials_limit_is_refused_and_nothing_is_sent() {
    let mut server = TestServer::start_with(|s| s.materials.max_file_bytes = 32 * 1024).await;
    let accept = server.login("qz-accept").await;
    let no = "FR-BIG-1";
    accepted(&server, &accept, no).await;
    let review = server.login("qz-review").await;
    let big = format!("{SURVEY_TXT}{}", "\n".repeat(40 * 1024));
    let (status, page) = send(&review, no, Upload::txt(&big)).await;
    assert_eq!(status, 413, "{page}");
    assert!(page.contains("超过"), "{page}");
    assert!(page.contains("未送审"), "{page}");
    let mut u = Upload::txt(SURVEY_TXT);
    let mut report = pdf("report");
    report.resize(40 * 1024, b' ');
    u.report = Some(report);
    let (status, page) = send(&review, no, u).await;
    assert_eq!(status, 413, "{page}");
    assert!(page.contains("权籍调查报告超过"), "{page}");
    assert!(sent_packages(&server).await.is_empty());
    assert_eq!(status_of(&server, no).await, "accepted");
    // Within the limit it goes.
    let (status, page) = send(&review, no, Upload::txt(SURVEY_TXT)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(sent_packages(&server).await.len(), 1);
    server.stop().await;
}

const SURVEY_GEOJSON: &str = r#"{"type": "FeatureCollection", "zone": 38, "zone_width": 3,
 "features": [{"type": "Feature",
   "properties": {"kind": "parcel", "number": "D001", "declared_area_m2": 5000.0},
   "geometry": {"type": "Polygon", "coordinates": [[[38500000, 3380000], [38500100, 3380000],
     [38500100, 3379950], [38500000, 3379950], [38500000, 3380000]]]}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_geojson_survey_is_sent_as_geojson() {
    let mut server = TestServer::start().await;
    let accept = server.login("qz-accept").await;
    let no = "FR-GEO-1";
    accepted(&server, &accept, no).await;
    let review = server.login("qz-review").await;
    let mut u = Upload::txt(SURVEY_GEOJSON);
    u.survey_name = "成果.geojson";
    let (status, page) = send(&review, no, u).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("GeoJSON，经网闸送审"), "{page}");
    let sent = sent_packages(&server).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.format, "geojson");
    assert_eq!(sent[0].0.survey.media_type, "application/geo+json");
    server.stop().await;
}

/// A first registration as the portal sends it with the applicant's survey package (TXT,
/// `text/plain`, checklist `cadastral_survey`).
fn first_registration_with_survey(no: &str, survey: &[u8]) -> InboundMessage {
    let mut msg = first_registration(no);
    let Message::ApplicationSubmitted(app) = &mut msg.envelope.message else {
        unreachable!("first_registration builds an ApplicationSubmitted");
    };
    app.materials.push(MaterialRef {
        item: "m02.txt".into(),
        checklist_code: "cadastral_survey".into(),
        file_name: "界址点坐标.txt".into(),
        media_type: "text/plain".into(),
        size: survey.len() as u64,
        blake3: blake3::hash(survey).to_hex().to_string(),
    });
    msg.envelope = Envelope::new(msg.envelope.message.clone(), ow_store::now_ms());
    msg.files.push(InboundFile::from_bytes(
        "m02.txt",
        "text/plain",
        survey.to_vec(),
    ));
    msg
}

#[tokio::test]
async fn the_applicants_survey_is_imported_and_sent_without_uploading_it_again() {
    let mut server = TestServer::start().await;
    // Text that is not a survey package is refused at import, like a file that is not a PDF.
    let garbage = first_registration_with_survey("FR-APPL-0", "你好，这不是坐标".as_bytes());
    assert!(matches!(
        server.import(&garbage).await,
        Some(Disposition::Refused { .. })
    ));
    // A GBK package is imported.
    let gbk = encoding_rs::GBK.encode(SURVEY_TXT).0.into_owned();
    let msg = first_registration_with_survey("FR-APPL-1", &gbk);
    assert_eq!(server.import(&msg).await, Some(Disposition::Imported));
    let accept = server.login("qz-accept").await;
    let (status, page) = accept.act("FR-APPL-1", "accept", &[]).await;
    assert_eq!((status, case_status(&page).as_str()), (200, "accepted"));

    let review = server.login("qz-review").await;
    let (status, page) = review.get("/cases/FR-APPL-1").await;
    assert_eq!(status, 200);
    assert!(page.contains("送审申请人提交的成果"), "{page}");
    let marker = "name=\"material\" value=\"";
    let start = page.find(marker).expect("a submitted survey listed") + marker.len();
    let material = page[start..start + page[start..].find('"').unwrap()].to_owned();
    let csrf = csrf_of(&page);
    // Another case's material id is not taken.
    let (status, _) = review
        .post(
            "/cases/FR-APPL-1/survey/submitted",
            &[("csrf", &csrf), ("material", "not-a-material")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(sent_packages(&server).await.is_empty());
    let (status, page) = review
        .post(
            "/cases/FR-APPL-1/survey/submitted",
            &[("csrf", &csrf), ("material", &material)],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(case_status(&page), "survey_review", "{page}");
    let sent = sent_packages(&server).await;
    assert_eq!(sent.len(), 1);
    let (p, route) = &sent[0];
    assert_eq!(route, "gateway");
    assert_eq!(p.format, "boundary-txt");
    assert_eq!(p.survey.blake3, blake3::hash(&gbk).to_hex().to_string());
    server.stop().await;
}
