//! A registrar at the counter: log in with password + TOTP, carry applications through the
//! workflow over HTTP, and see the rules, roles and districts enforced.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ow_domain::CertificateNumber;
use ow_extranet::certificates;
use ow_extranet::exchange::{Disposition, Message};

const QZ_UNIT_SOLE: &str = "370781001001GB00001F00010101";
const QZ_UNIT_SEIZED: &str = "370781001001GB00001F00020201";
const QZ_UNIT_MORTGAGED: &str = "370781001001GB00001F00020202";
const QZ_UNIT_5: &str = "370781002003GB00017F00030501";

fn holder(server: &TestServer, unit: &str, i: usize) -> (String, String) {
    let h = &server.unit(unit).holders[i];
    (h.name.clone(), h.id_number.clone())
}

fn buyer(server: &TestServer, i: usize) -> (String, String) {
    let b = &server.seed.demo_buyers[i];
    (b.name.clone(), b.id_number.clone())
}

async fn submit_transfer(server: &TestServer, no: &str, unit: &str) {
    let (sn, si) = holder(server, unit, 0);
    let (bn, bi) = buyer(server, 0);
    let msg = application(
        no,
        "370781",
        unit,
        vec![party(&sn, &si, "1/1")],
        vec![party(&bn, &bi, "1/1")],
    );
    assert_eq!(server.import(&msg).await, Some(Disposition::Imported));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_runs_from_acceptance_to_certificate() {
    let mut server = TestServer::start().await;
    let old_cert = server
        .unit(QZ_UNIT_SOLE)
        .certificate_number
        .clone()
        .unwrap();
    submit_transfer(&server, "A20260001", QZ_UNIT_SOLE).await;

    let accept = server.login("qz-accept").await;
    let (_, queue) = accept.get("/cases").await;
    assert!(queue.contains("A20260001"), "{queue}");
    let (status, page) = accept.get("/cases/A20260001").await;
    assert_eq!(status, 200);
    assert!(page.contains("rules-ok"), "rule check shown: {page}");
    assert!(page.contains("张*三"), "buyer masked: {page}");
    assert!(
        !page.contains(&server.seed.demo_buyers[0].id_number),
        "ID masked"
    );
    let (status, page) = accept.act("A20260001", "accept", &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(case_status(&page), "accepted");

    // Staff download a material.
    let start = page.find("/cases/A20260001/materials/").unwrap();
    let link = page[start..].split('"').next().unwrap();
    let r = accept
        .client
        .get(format!("{}{}", accept.base, link))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.bytes().await.unwrap().starts_with(b"%PDF-"));

    let review = server.login("qz-review").await;
    let (status, page) = review.act("A20260001", "review", &[]).await;
    assert_eq!(
        (status, case_status(&page).as_str()),
        (200, "reviewed"),
        "{page}"
    );
    let record = server.login("qz-record").await;
    let (status, page) = record.act("A20260001", "record", &[]).await;
    assert_eq!(
        (status, case_status(&page).as_str()),
        (200, "recorded"),
        "{page}"
    );
    let cert = server.login("qz-cert").await;
    let (status, page) = cert.act("A20260001", "prepare", &[]).await;
    assert_eq!(
        (status, case_status(&page).as_str()),
        (200, "certificate_prepared"),
        "{page}"
    );
    let (status, page) = cert.act("A20260001", "issue", &[]).await;
    assert_eq!(
        (status, case_status(&page).as_str()),
        (200, "completed"),
        "{page}"
    );

    // The number: 鲁(<this year>)青州市不动产权第0000001号 — the first of the year.
    let mut conn = server.state.store.reader().acquire().await.unwrap();
    let certs = certificates::by_unit(&mut conn, QZ_UNIT_SOLE)
        .await
        .unwrap();
    let new = certs.iter().find(|c| c.status == "valid").unwrap();
    let number = CertificateNumber::parse(&new.number).unwrap();
    assert_eq!(number.as_str(), new.number);
    assert_eq!(number.province(), '鲁');
    assert_eq!(number.county(), "青州市");
    assert_eq!(number.sequence(), 1);
    let year = certificates::beijing(server.state.now_ms())
        .format("%Y")
        .to_string();
    assert_eq!(new.number, format!("鲁({year})青州市不动产权第0000001号"));
    drop(conn);
    let old = certs.iter().find(|c| c.number == old_cert).unwrap();
    assert_eq!(old.status, "cancelled");
    assert_eq!(old.cancelled_reason.as_deref(), Some("因转移登记注销"));

    // The register: the old right is historic, the buyer holds the unit now.
    let (status, unit_page) = cert.get(&format!("/units/{QZ_UNIT_SOLE}")).await;
    assert_eq!(status, 200);
    assert!(
        unit_page.contains("历史") && unit_page.contains("现势"),
        "{unit_page}"
    );
    assert!(unit_page.contains("已注销"), "{unit_page}");

    // The print page is the signed certificate with its QR code.
    let (status, print) = cert
        .get(&format!(
            "/certificates/print?no={}",
            new.number.replace('(', "%28").replace(')', "%29")
        ))
        .await;
    assert_eq!(status, 200);
    assert!(
        print.contains(&new.number) && print.contains("<svg"),
        "{print}"
    );

    // The portal was told every step, got the certificate and both certificate statuses.
    let outbox = server.outbox().await;
    let statuses: Vec<String> = outbox
        .iter()
        .filter_map(|(e, _)| match &e.message {
            Message::ApplicationStatus(s) if s.application_no == "A20260001" => {
                Some(s.status.clone())
            }
            _ => None,
        })
        .collect();
    // First the receipt of the import, which lets the portal drop its copies of the materials.
    let receipt = outbox.iter().find_map(|(e, _)| match &e.message {
        Message::ApplicationStatus(s) if s.application_no == "A20260001" => Some(s.clone()),
        _ => None,
    });
    assert!(
        receipt.is_some_and(|r| r.received_message_id.is_some() && r.status == "submitted"),
        "the import is acknowledged"
    );
    assert_eq!(
        statuses,
        [
            "submitted",
            "accepted",
            "reviewed",
            "recorded",
            "certificate_prepared",
            "completed"
        ]
    );
    let (envelope, files) = outbox
        .iter()
        .find(|(e, _)| matches!(e.message, Message::CertificateIssued(_)))
        .unwrap();
    let Message::CertificateIssued(issued) = &envelope.message else {
        unreachable!()
    };
    assert_eq!(issued.certificate_number, new.number);
    // The signed certificate travels sealed in the queued row, never as a file on disk.
    assert!(files.is_empty());
    assert!(!server.state.data_dir().join("outgoing").exists());
    let inline = ow_extranet::exchange::queued_inline_files(
        &server.state.store,
        &server.state.pii,
        &envelope.message_id,
    )
    .await
    .unwrap();
    assert_eq!(inline[0].item, issued.item);
    let json = inline[0].bytes.clone();
    let signed = ow_certificate::SignedCertificate::from_json(&json).unwrap();
    let mut trust = ow_certificate::CertificateTrust::new();
    trust
        .add_key_file(
            &server
                .state
                .settings
                .certificate_key_file
                .with_extension("pub"),
        )
        .unwrap();
    let doc = signed.verify(&trust).unwrap();
    assert_eq!(
        doc.holders[0].id_number,
        server.seed.demo_buyers[0].id_number
    );
    assert_eq!(doc.replaces[0].as_str(), old_cert);
    let cert_statuses: Vec<(String, String, Option<String>)> = outbox
        .iter()
        .filter_map(|(e, _)| match &e.message {
            Message::CertificateStatus(s) => Some((
                s.certificate_number.clone(),
                s.status.clone(),
                s.cancelled_reason.clone(),
            )),
            _ => None,
        })
        .collect();
    assert!(cert_statuses.contains(&(new.number.clone(), "valid".into(), None)));
    assert!(cert_statuses.contains(&(
        old_cert.clone(),
        "cancelled".into(),
        Some("因转移登记注销".into())
    )));
    // Every seeded certificate was announced too.
    for u in &server.seed.units {
        let n = u.certificate_number.clone().unwrap_or(old_cert.clone());
        assert!(cert_statuses.iter().any(|(c, _, _)| *c == n));
    }

    // A second transfer in the same district and year gets the next number.
    submit_transfer(&server, "A20260002", QZ_UNIT_5).await;
    accept.act("A20260002", "accept", &[]).await;
    review.act("A20260002", "review", &[]).await;
    record.act("A20260002", "record", &[]).await;
    // 发证 before 缮证 is refused: the case stays recorded and no number is taken.
    let (status, page) = cert.act("A20260002", "issue", &[]).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("请先缮证再发证"), "{page}");
    assert_eq!(case_status(&page), "recorded", "{page}");
    let (status, page) = cert.act("A20260002", "prepare", &[]).await;
    assert_eq!(status, 200, "{page}");
    let (status, page) = cert.act("A20260002", "issue", &[]).await;
    assert_eq!(
        (status, case_status(&page).as_str()),
        (200, "completed"),
        "{page}"
    );
    assert!(
        page.contains(&format!("鲁({year})青州市不动产权第0000002号")),
        "{page}"
    );

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seized_unit_cannot_be_recorded() {
    let mut server = TestServer::start().await;
    submit_transfer(&server, "A20260010", QZ_UNIT_SEIZED).await;
    let accept = server.login("qz-accept").await;
    let (_, page) = accept.get("/cases/A20260010").await;
    assert!(
        page.contains("data-rule=\"not_seized\""),
        "shown at acceptance: {page}"
    );
    // The registrar can refuse with the rule as the reason (prefilled).
    assert!(page.contains("查封期间不得办理转移登记"), "{page}");
    accept.act("A20260010", "accept", &[]).await;
    server
        .login("qz-review")
        .await
        .act("A20260010", "review", &[])
        .await;
    let record = server.login("qz-record").await;
    let (status, page) = record.act("A20260010", "record", &[]).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("查封"), "{page}");
    assert_eq!(case_status(&page), "reviewed");
    // 不予登记 with the rule as reason; the citizen is told why.
    let (status, page) = record
        .act(
            "A20260010",
            "refuse",
            &[("reason", "不符合规则“查封期间不得办理转移登记”")],
        )
        .await;
    assert_eq!(
        (status, case_status(&page).as_str()),
        (200, "refused"),
        "{page}"
    );
    let told = server.outbox().await.into_iter().any(|(e, _)| {
        matches!(&e.message, Message::ApplicationStatus(s)
            if s.application_no == "A20260010" && s.status == "refused"
            && s.reason.as_deref().is_some_and(|r| r.contains("查封")))
    });
    assert!(told);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sellers_must_be_the_holders_and_shares_must_sum_to_one() {
    let mut server = TestServer::start().await;
    let (bn, bi) = buyer(&server, 0);
    let (cn, ci) = buyer(&server, 1);
    // The seller is not the holder; the buyers' shares are 1/2 + 1/3.
    let msg = application(
        "A20260020",
        "370781",
        QZ_UNIT_SOLE,
        vec![party(&bn, &bi, "1/1")],
        vec![
            party(&cn, &ci, "1/2"),
            party("王五", &server.seed.demo_buyers[2].id_number, "1/3"),
        ],
    );
    assert_eq!(server.import(&msg).await, Some(Disposition::Imported));
    server
        .login("qz-accept")
        .await
        .act("A20260020", "accept", &[])
        .await;
    server
        .login("qz-review")
        .await
        .act("A20260020", "review", &[])
        .await;
    let (status, page) = server
        .login("qz-record")
        .await
        .act("A20260020", "record", &[])
        .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("义务人须为登记簿记载的现权利人"), "{page}");
    assert!(page.contains("权利人共有份额之和须为1"), "{page}");
    assert_eq!(case_status(&page), "reviewed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_case_records_on_a_unit_at_a_time() {
    let mut server = TestServer::start().await;
    submit_transfer(&server, "A20260030", QZ_UNIT_MORTGAGED).await;
    submit_transfer(&server, "A20260031", QZ_UNIT_MORTGAGED).await;
    let accept = server.login("qz-accept").await;
    let review = server.login("qz-review").await;
    for no in ["A20260030", "A20260031"] {
        accept.act(no, "accept", &[]).await;
        review.act(no, "review", &[]).await;
    }
    // Another process is recording on the unit: its lock row is there.
    sqlx::query(
        "INSERT INTO ext_unit_locks (unit_code, application_no, taken_at_ms) VALUES ($1, $2, $3)",
    )
    .bind(QZ_UNIT_MORTGAGED)
    .bind("OTHER-1")
    .bind(0_i64)
    .execute(server.state.store.writer())
    .await
    .unwrap();
    let record = server.login("qz-record").await;
    let (status, page) = record.act("A20260030", "record", &[]).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("同一不动产单元不得同时办理登簿"), "{page}");
    sqlx::query("DELETE FROM ext_unit_locks WHERE application_no = 'OTHER-1'")
        .execute(server.state.store.writer())
        .await
        .unwrap();
    // Both cases record at the same time: exactly one wins, the other is refused by a rule.
    let record2 = server.login_again("qz-record").await;
    let (a, b) = tokio::join!(
        record.act("A20260030", "record", &[]),
        record2.act("A20260031", "record", &[])
    );
    let wins = [&a, &b]
        .iter()
        .filter(|(s, p)| *s == 200 && case_status(p) == "recorded")
        .count();
    assert_eq!(wins, 1, "{} / {}", a.1, b.1);
    let loser = if a.0 == 200 { &b } else { &a };
    assert_eq!(loser.0, 409);
    assert!(loser.1.contains("不符合登簿规则"), "{}", loser.1);
    let locks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ext_unit_locks")
        .fetch_one(server.state.store.reader())
        .await
        .unwrap();
    assert_eq!(locks, 0, "locks are released with the transaction");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_districts_are_enforced() {
    let mut server = TestServer::start().await;
    submit_transfer(&server, "A20260040", QZ_UNIT_SOLE).await;
    let accept = server.login("qz-accept").await;
    // Wrong role: the acceptance clerk cannot review, the reviewer cannot accept.
    let review = server.login("qz-review").await;
    let (status, page) = review.act("A20260040", "accept", &[]).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("受理"), "{page}");
    accept.act("A20260040", "accept", &[]).await;
    let (status, page) = accept.act("A20260040", "review", &[]).await;
    assert_eq!(status, 403, "{page}");
    assert_eq!(case_status(&page), "accepted");
    // A refusal needs a reason.
    let (status, page) = review.act("A20260040", "refuse", &[("reason", "  ")]).await;
    assert_eq!(status, 400, "{page}");

    // District B sees nothing of district A.
    let other = server.login("wc-review").await;
    let (status, _) = other.get("/cases/A20260040").await;
    assert_eq!(status, 404);
    let (status, _) = other.act("A20260040", "review", &[]).await;
    assert_eq!(status, 404);
    let (status, _) = other.get(&format!("/units/{QZ_UNIT_SOLE}")).await;
    assert_eq!(status, 404);
    let cert = server
        .unit(QZ_UNIT_SOLE)
        .certificate_number
        .clone()
        .unwrap();
    let q = cert.replace('(', "%28").replace(')', "%29");
    let (status, _) = other.get(&format!("/certificates?no={q}")).await;
    assert_eq!(status, 404);
    let (status, _) = other.get(&format!("/certificates/print?no={q}")).await;
    assert_eq!(status, 404);
    let (_, queue) = other.get("/cases?status=all").await;
    assert!(!queue.contains("A20260040"));
    let (_, page) = accept.get("/cases/A20260040").await;
    assert_eq!(case_status(&page), "accepted", "untouched by district B");

    // Only a district admin manages staff, and only in their district.
    let (status, _) = accept.get("/staff").await;
    assert_eq!(status, 403);
    let admin = server.login("qz-admin").await;
    let (_, page) = admin.get("/staff").await;
    let csrf = csrf_of(&page);
    let (status, page) = admin
        .post(
            "/staff",
            &[
                ("csrf", &csrf),
                ("username", "qz-new"),
                ("display_name", "新同事"),
                ("roles", "accept"),
                ("roles", "review"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("只显示这一次"), "{page}");
    let created = ow_extranet::staff::find_by_username(&server.state.store, "qz-new")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.district_code, "370781");
    assert_eq!(created.roles.len(), 2);
    // A form without the CSRF token is refused.
    let (status, _) = admin
        .post(
            "/staff",
            &[
                ("username", "qz-x"),
                ("display_name", "x"),
                ("roles", "accept"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_needs_both_factors_and_locks_after_failures() {
    let mut server = TestServer::start().await;
    let (password, totp) = server.staff("qz-review");
    let r = Registrar::new(&server.base);
    let (status, _) = r.get("/cases").await;
    assert_eq!(status, 200); // redirected to the login page
    let (status, body) = r.password_step("qz-review", &password).await;
    assert_eq!(status, 200, "{body}");
    // Half-way sessions see no cases.
    let (_, body) = r.get("/cases").await;
    assert!(body.contains("工作人员登录"), "{body}");
    let secret = ow_web::totp::TotpSecret::from_base32(&totp).unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    let wrong = format!(
        "{:06}",
        (secret.code_at(now).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let (status, body) = r.totp_step(&wrong).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("动态口令不正确"), "{body}");
    let (_, body) = r.get("/cases").await;
    assert!(body.contains("工作人员登录"), "{body}");

    // Wrong passwords lock the account (5 failures in a row, counting the wrong code above).
    let r2 = Registrar::new(&server.base);
    let mut last = String::new();
    for _ in 0..4 {
        let (status, body) = r2.password_step("qz-review", "wrong-password-1A").await;
        assert_eq!(status, 401);
        last = body;
    }
    assert!(last.contains("锁定"), "{last}");
    let (status, body) = r2.password_step("qz-review", &password).await;
    assert_eq!(status, 401);
    assert!(
        body.contains("锁定"),
        "even the right password is refused: {body}"
    );
    // Unknown accounts get the same answer as a wrong password.
    let (status, body) = r2.password_step("nobody", "whatever-1A").await;
    assert_eq!(status, 401);
    assert!(body.contains("用户名或密码错误"), "{body}");
    // Logout ends the session.
    let s = server.login("qz-accept").await;
    let (_, page) = s.get("/cases").await;
    let csrf = csrf_of(&page);
    let (_, body) = s.post("/logout", &[("csrf", &csrf)]).await;
    assert!(body.contains("工作人员登录"));
    let (_, body) = s.get("/cases").await;
    assert!(body.contains("工作人员登录"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacceptable_content_is_refused_and_the_citizen_told_why() {
    let mut server = TestServer::start().await;
    let (sn, si) = holder(&server, QZ_UNIT_SOLE, 0);
    let (bn, bi) = buyer(&server, 0);
    // Unknown district.
    let msg = application(
        "A20260050",
        "999999",
        QZ_UNIT_SOLE,
        vec![party(&sn, &si, "1/1")],
        vec![party(&bn, &bi, "1/1")],
    );
    let d = server.import(&msg).await.unwrap();
    assert!(
        matches!(&d, Disposition::Refused { reason } if reason.contains("999999")),
        "{d:?}"
    );
    // Exactly once: the same message again is skipped.
    assert_eq!(server.import(&msg).await, None);
    // An executable renamed .pdf.
    let mut bad = application(
        "A20260051",
        "370781",
        QZ_UNIT_SOLE,
        vec![party(&sn, &si, "1/1")],
        vec![party(&bn, &bi, "1/1")],
    );
    let exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec();
    if let Message::ApplicationSubmitted(a) = &mut bad.envelope.message {
        a.materials[0].blake3 = blake3::hash(&exe).to_hex().to_string();
        a.materials[0].size = exe.len() as u64;
    }
    bad.files[0] = ow_extranet::exchange::InboundFile::from_bytes(
        bad.files[0].item.clone(),
        "application/pdf",
        exe,
    );
    let d = server.import(&bad).await.unwrap();
    assert!(
        matches!(&d, Disposition::Refused { reason } if reason.contains("PDF")),
        "{d:?}"
    );
    // An invalid ID number.
    let bad_id = application(
        "A20260052",
        "370781",
        QZ_UNIT_SOLE,
        vec![party(&sn, "11010119900307451X", "1/1")],
        vec![party(&bn, &bi, "1/1")],
    );
    let d = server.import(&bad_id).await.unwrap();
    assert!(
        matches!(&d, Disposition::Refused { reason } if reason.contains("身份证")),
        "{d:?}"
    );
    let outbox = server.outbox().await;
    for no in ["A20260050", "A20260051", "A20260052"] {
        assert!(
            outbox.iter().any(|(e, _)| matches!(&e.message,
                Message::ApplicationStatus(s) if s.application_no == no && s.status == "refused"
                && s.reason.is_some())),
            "{no} told"
        );
    }
    // Nothing of them became a case, and no bad material was stored.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ext_cases")
        .fetch_one(server.state.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ext_case_materials")
        .fetch_one(server.state.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 0);
    // A second delivery of an imported application under a new message id changes nothing.
    submit_transfer(&server, "A20260053", QZ_UNIT_SOLE).await;
    submit_transfer(&server, "A20260053", QZ_UNIT_SOLE).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ext_case_parties")
        .fetch_one(server.state.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supplement_request_and_supplement_materials() {
    let mut server = TestServer::start().await;
    submit_transfer(&server, "A20260060", QZ_UNIT_SOLE).await;
    let accept = server.login("qz-accept").await;
    let (status, _) = accept
        .act("A20260060", "supplement", &[("reason", "请补充完税凭证")])
        .await;
    assert_eq!(status, 400, "materials must be ticked");
    let (status, page) = accept
        .act(
            "A20260060",
            "supplement",
            &[("reason", "请补充完税凭证"), ("materials", "tax_receipt")],
        )
        .await;
    assert_eq!(
        (status, case_status(&page).as_str()),
        (200, "supplement_requested")
    );
    assert!(
        server
            .outbox()
            .await
            .iter()
            .any(|(e, _)| matches!(&e.message,
        Message::ApplicationStatus(s) if s.status == "supplement_requested"
            && s.requested_materials == ["tax_receipt"]
            && s.reason.as_deref() == Some("请补充完税凭证")))
    );
    let bytes = pdf("tax receipt");
    let sup = ow_extranet::exchange::InboundMessage {
        bundle_id: ow_store::new_id(),
        channel: "internet-to-extranet".parse().unwrap(),
        envelope: ow_extranet::exchange::Envelope::new(
            Message::SupplementSubmitted(ow_extranet::exchange::SupplementSubmitted {
                application_no: "A20260060".into(),
                note: "已补充".into(),
                materials: vec![ow_extranet::exchange::MaterialRef {
                    item: "s01.pdf".into(),
                    checklist_code: "tax_receipt".into(),
                    file_name: "完税凭证.pdf".into(),
                    media_type: "application/pdf".into(),
                    size: bytes.len() as u64,
                    blake3: blake3::hash(&bytes).to_hex().to_string(),
                }],
                submitted_at_ms: ow_store::now_ms(),
            }),
            ow_store::now_ms(),
        ),
        files: vec![ow_extranet::exchange::InboundFile::from_bytes(
            "s01.pdf",
            "application/pdf",
            bytes,
        )],
    };
    // A note with a NUL (PostgreSQL refuses U+0000 in text) is refused with a reason, on
    // every backend, and the case stays as it was.
    let mut with_nul = sup.clone();
    with_nul.envelope = ow_extranet::exchange::Envelope::new(sup.envelope.message.clone(), 1);
    if let Message::SupplementSubmitted(s) = &mut with_nul.envelope.message {
        s.note = "已补充\u{0}".into();
    }
    assert!(matches!(
        server.import(&with_nul).await,
        Some(Disposition::Refused { reason }) if reason.contains("控制字符")
    ));
    assert_eq!(server.import(&sup).await, Some(Disposition::Imported));
    let (_, page) = accept.get("/cases/A20260060").await;
    assert_eq!(case_status(&page), "submitted");
    assert!(
        page.contains("完税凭证.pdf") && page.contains("补正"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_verifies_and_names_an_edited_entry() {
    let mut server = TestServer::start().await;
    submit_transfer(&server, "A20260070", QZ_UNIT_SOLE).await;
    let accept = server.login("qz-accept").await;
    accept.act("A20260070", "accept", &[]).await;
    server
        .login("qz-review")
        .await
        .act("A20260070", "refuse", &[("reason", "材料不齐")])
        .await;
    submit_transfer(&server, "A20260071", QZ_UNIT_5).await;
    server.stop().await;
    let dir = server.audit_dir();
    let key = ow_keys::load_verifying_key(
        &server
            .state
            .settings
            .exchange
            .signing_key_file
            .with_extension("pub"),
    )
    .unwrap();
    let report = ow_ferrylog::verify_log(&dir, &key, ow_extranet::audit::AUDIT_ORIGIN).unwrap();
    assert_eq!(report.unsigned_tail, 0, "checkpoint written on shutdown");
    let entries = ow_ferrylog::read_entries(&dir).unwrap();
    let kinds: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.case_id.as_deref() == Some("A20260070"))
        .map(|e| (e.agent.clone(), e.kind.clone().unwrap()))
        .collect();
    let review_id = ow_extranet::staff::find_by_username(&server.state.store, "qz-review")
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        kinds[0],
        ("extranet-import".to_owned(), "case.submitted".to_owned())
    );
    assert_eq!(kinds[1].1, "case.accept");
    assert_eq!(
        kinds[2],
        (
            format!("staff-{review_id}"),
            "case.refuse-registration".to_owned()
        )
    );
    let refusal = entries
        .iter()
        .find(|e| e.kind.as_deref() == Some("case.refuse-registration"));
    // The entry holds a digest of the sealed reason, never the reason (personal data).
    let stored: String = sqlx::query_scalar(
        "SELECT reason FROM ext_case_events WHERE action = 'case.refuse-registration'",
    )
    .fetch_one(server.state.store.reader())
    .await
    .unwrap();
    assert!(stored.starts_with("v1."), "reason sealed in the row");
    let digest = ow_extranet::audit::sealed_reason_digest(&stored);
    assert_eq!(refusal.unwrap().reason.as_deref(), Some(digest.as_str()));
    let log_text = std::fs::read_to_string(dir.join(ow_ferrylog::ENTRIES_FILE)).unwrap();
    assert!(
        !log_text.contains("材料不齐"),
        "reason in clear in the audit log"
    );
    // Every event row knows its place in the log.
    let unlogged: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM ext_case_events WHERE audit_index IS NULL")
            .fetch_one(server.state.store.reader())
            .await
            .unwrap();
    assert_eq!(unlogged, 0);

    // Someone edits the refusal's reason: verification names the entry.
    let path = dir.join(ow_ferrylog::ENTRIES_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace(&digest[7..], &"0".repeat(32));
    assert_ne!(text, edited);
    std::fs::write(&path, edited).unwrap();
    let index = refusal.unwrap().index;
    let err = ow_ferrylog::verify_log(&dir, &key, ow_extranet::audit::AUDIT_ORIGIN).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("entry {index} was edited")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_under_the_back_offices_folders_holds_personal_data_in_clear() {
    let mut server = TestServer::start().await;
    let (seller, seller_id) = holder(&server, QZ_UNIT_SOLE, 0);
    let (buyer_name, buyer_id) = buyer(&server, 0);
    // The citizen's identity scan shows their name and number, and is named after them.
    let mut msg = application(
        "A20260080",
        "370781",
        QZ_UNIT_SOLE,
        vec![party(&seller, &seller_id, "1/1")],
        vec![party(&buyer_name, &buyer_id, "1/1")],
    );
    let scan = format!("%PDF-1.4\n% {buyer_name} {buyer_id}\n%%EOF\n").into_bytes();
    if let Message::ApplicationSubmitted(a) = &mut msg.envelope.message {
        a.materials[0].file_name = format!("{buyer_name}身份证.pdf");
        a.materials[0].size = scan.len() as u64;
        a.materials[0].blake3 = blake3::hash(&scan).to_hex().to_string();
    }
    let item = msg.files[0].item.clone();
    msg.files[0] = ow_extranet::exchange::InboundFile::from_bytes(item, "application/pdf", scan);
    assert_eq!(server.import(&msg).await, Some(Disposition::Imported));
    // A supplement request whose reason quotes the seller, and a supplement with a note.
    let accept = server.login("qz-accept").await;
    let reason = format!("请补充{seller}的完税凭证");
    let (status, page) = accept
        .act(
            "A20260080",
            "supplement",
            &[("reason", reason.as_str()), ("materials", "tax_receipt")],
        )
        .await;
    assert_eq!(
        (status, case_status(&page).as_str()),
        (200, "supplement_requested")
    );
    let receipt = pdf(&format!("{seller} tax receipt"));
    let sup = ow_extranet::exchange::InboundMessage {
        bundle_id: ow_store::new_id(),
        channel: "internet-to-extranet".parse().unwrap(),
        envelope: ow_extranet::exchange::Envelope::new(
            Message::SupplementSubmitted(ow_extranet::exchange::SupplementSubmitted {
                application_no: "A20260080".into(),
                note: format!("{buyer_name}已补充，电话13800138000"),
                materials: vec![ow_extranet::exchange::MaterialRef {
                    item: "s01.pdf".into(),
                    checklist_code: "tax_receipt".into(),
                    file_name: format!("{seller}完税凭证.pdf"),
                    media_type: "application/pdf".into(),
                    size: receipt.len() as u64,
                    blake3: blake3::hash(&receipt).to_hex().to_string(),
                }],
                submitted_at_ms: ow_store::now_ms(),
            }),
            ow_store::now_ms(),
        ),
        files: vec![ow_extranet::exchange::InboundFile::from_bytes(
            "s01.pdf",
            "application/pdf",
            receipt,
        )],
    };
    assert_eq!(server.import(&sup).await, Some(Disposition::Imported));
    // The staff page shows the file names and the reason, opened.
    let (_, page) = accept.get("/cases/A20260080").await;
    assert!(page.contains(&format!("{buyer_name}身份证.pdf")), "{page}");
    assert!(page.contains(&reason), "{page}");
    // Carried through to the certificate.
    let review = server.login("qz-review").await;
    let record = server.login("qz-record").await;
    let cert = server.login("qz-cert").await;
    for (staff, action, expect) in [
        (&accept, "accept", "accepted"),
        (&review, "review", "reviewed"),
        (&record, "record", "recorded"),
        (&cert, "prepare", "certificate_prepared"),
        (&cert, "issue", "completed"),
    ] {
        let (status, page) = staff.act("A20260080", action, &[]).await;
        assert_eq!(
            (status, case_status(&page).as_str()),
            (200, expect),
            "{action}"
        );
    }
    server.stop().await;

    // Every file under the back office's folders (data, materials, audit log, exchange work
    // folder, outbox, inbox), searched as it is on disk.
    use ow_pii::scan::{Needle, PersonalKind, scan_tree};
    let mut needles = vec![Needle::new(PersonalKind::Phone, "13800138000")];
    let people = server
        .seed
        .units
        .iter()
        .flat_map(|u| u.holders.iter())
        .chain(server.seed.demo_buyers.iter());
    for p in people {
        needles.push(Needle::new(PersonalKind::Name, &p.name));
        needles.push(Needle::new(PersonalKind::IdNumber, &p.id_number));
    }
    let root = server.dir.path();
    // Certificates travel sealed in the queued row, never as a file in `data/outgoing/`: no hit
    // at all is allowed.
    let hits = scan_tree(root, &needles);
    let list = hits
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(hits.is_empty(), "personal data in clear:\n{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_left_in_the_outgoing_folder_are_purged_unless_still_queued() {
    let mut server = TestServer::start().await;
    let data = server.state.settings.data_dir.clone();
    let outgoing = data.join("outgoing");
    std::fs::create_dir_all(&outgoing).unwrap();
    // Written by an earlier version: one already packed (no queued row names it), one whose
    // message still waits to be packed.
    let sent = outgoing.join("0190-sent.json");
    std::fs::write(&sent, "{\"holder\":\"370781199001012345\"}").unwrap();
    let waiting = outgoing.join("0190-waiting.json");
    std::fs::write(&waiting, "{}").unwrap();
    let mut tx = server.state.store.begin().await.unwrap();
    ow_extranet::exchange::enqueue(
        &mut tx,
        &server.state.pii,
        &ow_extranet::workflow::TO_PORTAL,
        Message::CertificateIssued(ow_extranet::exchange::CertificateIssued {
            application_no: "A20260099".into(),
            certificate_number: "鲁(2026)青州市不动产权第0000999号".into(),
            item: "certificate.json".into(),
        }),
        vec![ow_extranet::exchange::OutboundFile {
            item: "certificate.json".into(),
            media_type: "application/json".into(),
            path: waiting.clone(),
            sealed_context: None,
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let purged = ow_extranet::purge_outgoing(&data, &server.state.store)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(
        !sent.exists(),
        "an already packed certificate stays on disk"
    );
    assert!(waiting.exists(), "a certificate still queued was deleted");
    server.stop().await;
}
