//! The back office as registrars use it at the counter, over HTTP against the real server:
//! their own stage's queue, opinions with each step, confirmation of 登簿 and 发证, materials
//! opened in the browser, ID numbers in full for comparing with the ID card (and the view
//! logged), and the wide layout.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ow_extranet::exchange::{Disposition, InboundFile, MaterialRef, Message};

const QZ_UNIT_SOLE: &str = "370781001001GB00001F00010101";
const QZ_UNIT_SEIZED: &str = "370781001001GB00001F00020201";
const QZ_UNIT_5: &str = "370781002003GB00017F00030501";

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// Imports a transfer of `unit` from its first holder to the first demo buyer; the ID card is
/// a PNG named in Chinese.
async fn submit(server: &TestServer, no: &str, unit: &str) {
    let h = &server.unit(unit).holders[0];
    let b = &server.seed.demo_buyers[0];
    let mut msg = application(
        no,
        "370781",
        unit,
        vec![party(&h.name, &h.id_number, "1/1")],
        vec![party(&b.name, &b.id_number, "1/1")],
    );
    if let Message::ApplicationSubmitted(a) = &mut msg.envelope.message {
        a.materials.push(MaterialRef {
            item: "m03.png".into(),
            checklist_code: "applicant_identity".into(),
            file_name: "身份证 正面.png".into(),
            media_type: "image/png".into(),
            size: PNG.len() as u64,
            blake3: blake3::hash(PNG).to_hex().to_string(),
        });
    }
    msg.files.push(InboundFile::from_bytes(
        "m03.png",
        "image/png",
        PNG.to_vec(),
    ));
    assert_eq!(server.import(&msg).await, Some(Disposition::Imported));
}

/// The rows of the queue table: `data-case` values in order.
fn queue_cases(page: &str) -> Vec<String> {
    page.split("data-case=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_registrar_lands_on_their_own_stage_queue() {
    let server = TestServer::start().await;
    submit(&server, "Q20260001", QZ_UNIT_SOLE).await;
    submit(&server, "Q20260002", QZ_UNIT_5).await;
    let accept = server.login("qz-accept").await;
    accept.act("Q20260002", "accept", &[]).await;

    let (status, page) = accept.get("/cases").await;
    assert_eq!(status, 200);
    assert!(page.contains("我的待办：待受理"), "{page}");
    assert_eq!(queue_cases(&page), ["Q20260001"]);

    // 审核 staff see 待审核 with the accepted case, not 已提交.
    let review = server.login("qz-review").await;
    let (_, page) = review.get("/cases").await;
    assert!(page.contains("我的待办：待审核"), "{page}");
    assert_eq!(queue_cases(&page), ["Q20260002"]);
    // The row: applicant masked, address, business type, age, deadline from acceptance.
    let buyer = &server.seed.demo_buyers[0];
    assert!(
        page.contains(&ow_domain::mask::mask_name(&buyer.name)),
        "{page}"
    );
    assert!(
        !page.contains(&buyer.name),
        "the applicant's name is masked"
    );
    assert!(
        page.contains(&server.unit(QZ_UNIT_5).location),
        "address shown: {page}"
    );
    assert!(page.contains("二手房转移登记"));
    assert!(page.contains("分钟"), "age: {page}");
    assert!(
        page.contains("剩5个工作日"),
        "deadline of a transfer: {page}"
    );
    assert!(
        page.contains("法定节假日"),
        "the help text says holidays are not counted yet"
    );

    // The other stages: 登簿 and 缮证 start empty; a district admin sees everything.
    let (_, page) = server.login("qz-record").await.get("/cases").await;
    assert!(page.contains("我的待办：待登簿"), "{page}");
    assert!(page.contains("id=\"queue-empty\""));
    let (_, page) = server.login("qz-admin").await.get("/cases").await;
    assert!(page.contains("全部业务"), "{page}");
    assert_eq!(queue_cases(&page).len(), 2);
    // Any status can still be listed.
    let (_, page) = review.get("/cases?status=submitted").await;
    assert_eq!(queue_cases(&page), ["Q20260001"]);
    assert!(page.contains("受理后5个工作日"), "{page}");
    assert_eq!(review.get("/cases?status=nonsense").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_and_record_need_an_opinion_kept_sealed_out_of_the_audit_log() {
    let mut server = TestServer::start().await;
    submit(&server, "Q20260010", QZ_UNIT_SOLE).await;
    let accept = server.login("qz-accept").await;
    accept.act("Q20260010", "accept", &[]).await;
    let review = server.login("qz-review").await;
    let (_, page) = review.get("/cases/Q20260010").await;
    assert!(page.contains("审核意见"), "{page}");

    for blank in ["", "  \r\n\t "] {
        let (status, page) = review
            .act_raw("Q20260010", "review", &[("opinion", blank)])
            .await;
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("请填写审核意见"), "{page}");
        assert_eq!(case_status(&page), "accepted");
    }
    let too_long = "很".repeat(1001);
    let (status, page) = review
        .act_raw("Q20260010", "review", &[("opinion", &too_long)])
        .await;
    assert_eq!(status, 400);
    assert!(
        page.contains(&too_long),
        "what was typed comes back: {page}"
    );

    let opinion = "经审核，买卖双方身份与证件一致，\n同意登记。";
    let (status, page) = review
        .act_raw("Q20260010", "review", &[("opinion", opinion)])
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(case_status(&page), "reviewed");
    assert!(
        page.contains("审核意见：</strong>经审核，买卖双方身份与证件一致，\n同意登记。"),
        "history shows the opinion: {page}"
    );

    let record = server.login("qz-record").await;
    let (status, page) = record.act_raw("Q20260010", "record", &[]).await;
    assert_eq!(status, 400);
    assert!(page.contains("请填写登簿意见"), "{page}");
    let (status, page) = record
        .act("Q20260010", "record", &[("opinion", "同意登簿。")])
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(case_status(&page), "recorded");
    assert!(page.contains("登簿意见：</strong>同意登簿。"), "{page}");

    server.stop().await;
    let entries = ow_ferrylog::read_entries(server.audit_dir()).unwrap();
    let of_case: Vec<_> = entries
        .iter()
        .filter(|e| e.case_id.as_deref() == Some("Q20260010"))
        .collect();
    let review_entry = of_case
        .iter()
        .find(|e| e.kind.as_deref() == Some("case.review"))
        .unwrap();
    assert_eq!(review_entry.reason.as_deref(), Some("opinion-given"));
    let accept_entry = of_case
        .iter()
        .find(|e| e.kind.as_deref() == Some("case.accept"))
        .unwrap();
    assert_eq!(accept_entry.reason, None);
    let log = std::fs::read_to_string(server.audit_dir().join(ow_ferrylog::ENTRIES_FILE)).unwrap();
    assert!(
        !log.contains("买卖双方"),
        "the opinion's text is not in the log"
    );
    assert!(
        !log.contains("同意登簿"),
        "the opinion's text is not in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_and_issue_are_confirmed_on_a_page_of_their_own() {
    let server = TestServer::start().await;
    submit(&server, "Q20260020", QZ_UNIT_SOLE).await;
    server
        .login("qz-accept")
        .await
        .act("Q20260020", "accept", &[])
        .await;
    server
        .login("qz-review")
        .await
        .act("Q20260020", "review", &[])
        .await;
    let record = server.login("qz-record").await;

    // The button answers with a confirmation page; nothing is recorded yet.
    let (status, page) = record
        .act_raw("Q20260020", "record", &[("opinion", "同意登簿 <b>")])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("确认登簿"), "{page}");
    assert!(page.contains("不能撤销"), "{page}");
    assert!(page.contains("name=\"confirmed\" value=\"yes\""), "{page}");
    assert!(
        page.contains("同意登簿 &lt;b&gt;") || page.contains("同意登簿 &#60;b&#62;"),
        "opinion carried, escaped: {page}"
    );
    assert!(!page.contains("<script"), "no JavaScript: {page}");
    let (_, case) = record.get("/cases/Q20260020").await;
    assert_eq!(
        case_status(&case),
        "reviewed",
        "not recorded before confirming"
    );
    // Anything but `yes` is not a confirmation.
    let (_, page) = record
        .act_raw(
            "Q20260020",
            "record",
            &[("opinion", "同意"), ("confirmed", "1")],
        )
        .await;
    assert!(page.contains("id=\"confirm-form\""));
    // Confirming records.
    let (_, confirm) = record
        .act_raw("Q20260020", "record", &[("opinion", "同意登簿 <b>")])
        .await;
    let (status, page) = record.confirm("Q20260020", "record", &confirm).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(case_status(&page), "recorded");
    assert!(
        page.contains("登簿意见：</strong>同意登簿 &lt;b&gt;")
            || page.contains("登簿意见：</strong>同意登簿 &#60;b&#62;"),
        "{page}"
    );

    let cert = server.login("qz-cert").await;
    cert.act("Q20260020", "prepare", &[]).await;
    let (status, page) = cert.act_raw("Q20260020", "issue", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("确认发证"), "{page}");
    assert!(page.contains("证书号"), "{page}");
    let (_, case) = cert.get("/cases/Q20260020").await;
    assert_eq!(case_status(&case), "certificate_prepared");
    let (status, page) = cert.confirm("Q20260020", "issue", &page).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(case_status(&page), "completed");

    // A case the rules refuse: no confirmation page, the case page says why (as 登簿 would).
    submit(&server, "Q20260021", QZ_UNIT_SEIZED).await;
    server
        .login_again("qz-accept")
        .await
        .act("Q20260021", "accept", &[])
        .await;
    server
        .login_again("qz-review")
        .await
        .act("Q20260021", "review", &[])
        .await;
    let (status, page) = record
        .act_raw("Q20260021", "record", &[("opinion", "同意")])
        .await;
    assert_eq!(status, 409);
    assert!(page.contains("data-rule=\"not_seized\""), "{page}");
    assert_eq!(case_status(&page), "reviewed");
    assert!(!page.contains("id=\"confirm-form\""), "{page}");
    // Without the opinion there is no confirmation page but the case page with the error.
    let (status, page) = record.act_raw("Q20260021", "record", &[]).await;
    assert_eq!(status, 400);
    assert!(page.contains("请填写登簿意见"));
    // Another role cannot even reach the confirmation page.
    let (status, _) = cert
        .act_raw("Q20260021", "record", &[("opinion", "同意")])
        .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materials_open_in_the_browser_sandboxed_with_their_real_name() {
    let server = TestServer::start().await;
    submit(&server, "Q20260030", QZ_UNIT_SOLE).await;
    let accept = server.login("qz-accept").await;
    let (_, page) = accept.get("/cases/Q20260030").await;
    assert!(page.contains("身份证 正面.png"), "{page}");
    assert!(
        page.contains("target=\"_blank\" rel=\"noopener\""),
        "{page}"
    );
    let links: Vec<String> = page
        .split("href=\"/cases/Q20260030/materials/")
        .skip(1)
        .map(|s| {
            format!(
                "/cases/Q20260030/materials/{}",
                s.split('"').next().unwrap()
            )
        })
        .collect();
    assert_eq!(links.len(), 3);
    let mut seen_png = false;
    for link in &links {
        let r = accept
            .client
            .get(format!("{}{link}", accept.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        let disposition = h["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("inline; filename=\""),
            "{disposition}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("sandbox; default-src 'none'"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let body = r.bytes().await.unwrap();
        if h["content-type"] == "image/png" {
            seen_png = true;
            assert_eq!(
                disposition,
                "inline; filename=\"material.png\"; \
                 filename*=UTF-8''%E8%BA%AB%E4%BB%BD%E8%AF%81%20%E6%AD%A3%E9%9D%A2.png"
            );
            assert_eq!(&body[..], PNG);
        } else {
            assert_eq!(h["content-type"], "application/pdf");
            assert!(disposition.contains("filename*=UTF-8''"), "{disposition}");
            assert!(body.starts_with(b"%PDF-"));
        }
    }
    assert!(seen_png);
    // Another district, or no session: nothing.
    let other = server.login("wc-accept").await;
    let r = other
        .client
        .get(format!("{}{}", other.base, links[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::get(format!("{}{}", server.base, links[0]))
        .await
        .unwrap();
    assert!(r.url().path().starts_with("/login"), "{}", r.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_district_registrar_sees_ids_in_full_and_the_view_is_logged() {
    let mut server = TestServer::start().await;
    submit(&server, "Q20260040", QZ_UNIT_SOLE).await;
    let buyer = server.seed.demo_buyers[0].clone();
    let seller = server.unit(QZ_UNIT_SOLE).holders[0].clone();
    let accept = server.login("qz-accept").await;

    let (_, page) = accept.get("/cases/Q20260040").await;
    assert!(!page.contains(&buyer.id_number), "masked by default");
    assert!(page.contains("id=\"show-full-ids\""), "{page}");
    let (status, page) = accept.get("/cases/Q20260040?ids=full").await;
    assert_eq!(status, 200);
    assert!(page.contains(&buyer.id_number), "{page}");
    assert!(page.contains(&seller.id_number), "{page}");
    assert!(page.contains(&buyer.name), "{page}");
    assert!(page.contains("id=\"ids-full\""));
    assert!(
        page.contains("查阅完整姓名和证件号码"),
        "the view is in the history: {page}"
    );

    // Another district: 404; a district admin without a registrar role: 403, nothing logged.
    let other = server.login("wc-accept").await;
    let (status, page) = other.get("/cases/Q20260040?ids=full").await;
    assert_eq!(status, 404);
    assert!(!page.contains(&buyer.id_number));
    let admin = server.login("qz-admin").await;
    let (_, page) = admin.get("/cases/Q20260040").await;
    assert!(!page.contains("id=\"show-full-ids\""));
    let (status, page) = admin.get("/cases/Q20260040?ids=full").await;
    assert_eq!(status, 403);
    assert!(!page.contains(&buyer.id_number));
    assert_eq!(accept.get("/cases/Q20260040?ids=all").await.0, 404);

    server.stop().await;
    let accept_id = ow_extranet::staff::find_by_username(&server.state.store, "qz-accept")
        .await
        .unwrap()
        .unwrap()
        .id;
    let entries = ow_ferrylog::read_entries(server.audit_dir()).unwrap();
    let views: Vec<_> = entries
        .iter()
        .filter(|e| e.kind.as_deref() == Some("case.view-personal-data"))
        .collect();
    assert_eq!(views.len(), 1, "one view, by the district registrar");
    assert_eq!(views[0].agent, format!("staff-{accept_id}"));
    assert_eq!(views[0].case_id.as_deref(), Some("Q20260040"));
    assert_eq!(views[0].reason.as_deref(), Some("person-name,id-number"));
    let log = std::fs::read_to_string(server.audit_dir().join(ow_ferrylog::ENTRIES_FILE)).unwrap();
    assert!(!log.contains(&buyer.id_number));
    assert!(!log.contains(&buyer.name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_use_the_width_of_a_counter_screen() {
    let server = TestServer::start().await;
    let accept = server.login("qz-accept").await;
    let (_, page) = accept.get("/cases").await;
    assert!(page.contains("href=\"/static/backoffice.css\""), "{page}");
    let r = reqwest::get(format!("{}/static/backoffice.css", server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let css = r.text().await.unwrap();
    assert!(
        css.contains("main.container { max-width: 120rem; }"),
        "{css}"
    );
    assert!(css.contains(".case-columns"), "{css}");
}
