//! End-to-end tests of the citizen portal over HTTP, like a phone browser would use it.

mod common;

use common::*;
use ow_exchange::{
    ApplicationStatus, CertificateIssued, CertificateStatus, Disposition, InboundFile, Message,
};
use reqwest::StatusCode;

const SELLER: (&str, &str) = ("王大山", "11010519491231002X");
const BUYER1: (&str, &str) = ("张小三", "440524188001010014");
const BUYER2: (&str, &str) = ("李小四", "110101199003074477");

#[tokio::test]
async fn register_login_apply_submit_on_every_backend() {
    for db in ow_store::testing::all_backends().await {
        let url = match db.backend {
            ow_store::Backend::Sqlite => None,
            ow_store::Backend::Postgres => Some(db.url.clone()),
        };
        let p = start(url).await;
        let c = browser();
        register(&p, &c, BUYER1.0, BUYER1.1, "13812345678").await;
        let (status, url, _) = login(&p, &c, "13812345678", PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        assert!(url.ends_with("/applications"), "{url}");

        let (_, _, account) = page(&c, &p.url("/account")).await;
        assert!(account.contains("张*三"), "{account}");
        assert!(account.contains("440524********0014"), "{account}");
        assert!(!account.contains(BUYER1.1));

        let no = apply(&p, &c, SELLER, [BUYER1, BUYER2]).await;
        assert!(no.starts_with("SQ") && no.len() == 16, "{no}");
        let (_, _, list) = page(&c, &p.url("/applications")).await;
        assert!(list.contains(&no), "{list}");
        let (status, _, detail) = page(&c, &p.url(&format!("/applications/{no}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            detail.contains("已提交") && detail.contains("受理"),
            "{detail}"
        );

        // The application left as a queued outbox message with its materials, in the same
        // transaction as the number.
        let queued = p
            .count(&format!(
                "SELECT COUNT(*) FROM exchange_outbox WHERE case_id = '{no}' AND kind = 'application-submitted' AND channel = 'internet-to-extranet'"
            ))
            .await;
        assert_eq!(queued, 1);
        let files: String =
            sqlx::query_scalar("SELECT files_json FROM exchange_outbox WHERE case_id = $1")
                .bind(&no)
                .fetch_one(p.state.store.reader())
                .await
                .unwrap();
        let files: Vec<serde_json::Value> = serde_json::from_str(&files).unwrap();
        assert_eq!(files.len(), 5);
        for f in &files {
            assert!(std::path::Path::new(f["path"].as_str().unwrap()).exists());
        }
        // District from the unit code.
        let district: String = sqlx::query_scalar(
            "SELECT district_code FROM inet_applications WHERE application_no = $1",
        )
        .bind(&no)
        .fetch_one(p.state.store.reader())
        .await
        .unwrap();
        assert_eq!(district, "370781");
        p.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn bad_inputs_are_refused_with_clear_messages_and_nothing_stored() {
    let p = start(None).await;
    let c = browser();
    // Bad ID check digit.
    let (_, _, html) = page(&c, &p.url("/register")).await;
    let csrf = csrf_of(&html);
    let (status, _, body) = post_form(
        &c,
        &p.url("/register"),
        &[
            ("csrf", &csrf),
            ("name", "张小三"),
            ("id_number", "11010119900307451X"),
            ("phone", "13812345678"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("校验位"), "{body}");
    // Weak password.
    let (status, _, body) = post_form(
        &c,
        &p.url("/register"),
        &[
            ("csrf", &csrf),
            ("name", "张小三"),
            ("id_number", BUYER1.1),
            ("phone", "13812345678"),
            ("password", "short"),
            ("password_confirm", "short"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("密码至少需要"), "{body}");
    // Missing CSRF token on a form.
    let (status, _, body) = post_form(
        &c,
        &p.url("/register"),
        &[
            ("name", "张小三"),
            ("id_number", BUYER1.1),
            ("phone", "13812345678"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_accounts").await, 0);

    register(&p, &c, BUYER1.0, BUYER1.1, "13812345678").await;
    // Registering the same ID number again is answered like a new one (no one learns who has
    // an account) and changes nothing; tests/accounts.rs covers it in full.
    register(&p, &c, "张小三", BUYER1.1, "13900001111").await;
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_accounts").await, 1);

    login(&p, &c, BUYER1.1, PASSWORD).await;
    let draft = new_draft(&p, &c).await;
    let (_, _, html) = page(&c, &p.url(&format!("/drafts/{draft}/parties"))).await;
    let csrf = csrf_of(&html);
    // Shares that do not sum to 1: the parties page says so beside the buyers and links there.
    person(&p, &c, &draft, "seller/new", SELLER, "").await;
    person(&p, &c, &draft, "buyer/1", BUYER1, "1/2").await;
    person(&p, &c, &draft, "buyer/new", BUYER2, "1/3").await;
    let (status, _, body) = post_form(
        &c,
        &p.url(&format!("/drafts/{draft}/parties")),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("份额之和必须等于1"), "{body}");
    assert!(body.contains("href=\"#buyers\""), "{body}");
    assert!(body.contains("id=\"buyers-error\""), "{body}");
    // An executable renamed .pdf, and an oversize file: refused, nothing stored.
    let exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00PE\x00\x00".to_vec();
    let (status, body) = upload(&p, &c, &draft, "sale_contract", "合同.pdf", exe).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("不是 PDF、JPEG 或 PNG 文件"), "{body}");
    let mut big = pdf("big");
    big.resize(70 * 1024, b' ');
    let (status, body) = upload(&p, &c, &draft, "sale_contract", "合同.pdf", big).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("过大"), "{body}");
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_materials").await, 0);
    assert_eq!(p.state.files.count(), 0);

    // Submitting an incomplete draft is refused; without the CSRF token, refused outright.
    let r = c
        .post(p.url(&format!("/drafts/{draft}/submit")))
        .form(&[("x", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, _, body) = post_form(
        &c,
        &p.url(&format!("/drafts/{draft}/submit")),
        &[("csrf", &csrf), ("declaration", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("请上传"), "{body}");
    // The check page's errors link to the page that has the field.
    assert!(
        body.contains(&format!(
            "href=\"/drafts/{draft}/materials#material_sale_contract\""
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("href=\"/drafts/{draft}/parties#buyers\"")),
        "{body}"
    );
    assert_eq!(p.count("SELECT COUNT(*) FROM exchange_outbox").await, 0);
    assert_eq!(
        p.count("SELECT COUNT(*) FROM inet_applications WHERE application_no IS NOT NULL")
            .await,
        0
    );
    p.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_a_retry_time() {
    let p = start(None).await;
    let c = browser();
    register(&p, &c, BUYER1.0, BUYER1.1, "13812345678").await;
    for _ in 0..2 {
        let (status, _, body) = login(&p, &c, BUYER1.1, "Wrong#password1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("账号或密码不正确"), "{body}");
    }
    let (status, _, body) = login(&p, &c, BUYER1.1, "Wrong#password1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("锁定") && body.contains("北京时间"), "{body}");
    // Even the right password is refused while locked.
    let (status, _, body) = login(&p, &c, BUYER1.1, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("锁定"), "{body}");
    // An unknown account gets the same answer as a wrong password, never a lockout.
    for _ in 0..4 {
        let (status, _, body) = login(&p, &c, "13900009999", "Wrong#password1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("账号或密码不正确"));
    }
    p.stop().await;
}

#[tokio::test]
async fn timeline_supplement_certificate_and_verify_from_imported_messages() {
    let p = start(None).await;
    let c = browser();
    register(&p, &c, BUYER1.0, BUYER1.1, "13812345678").await;
    login(&p, &c, BUYER1.1, PASSWORD).await;
    let no = apply(&p, &c, SELLER, [BUYER1, BUYER2]).await;

    let status = |s: &str, reason: Option<&str>, requested: Vec<String>, at: i64| {
        Message::ApplicationStatus(ApplicationStatus {
            application_no: no.clone(),
            status: s.into(),
            reason: reason.map(str::to_owned),
            requested_materials: requested,
            changed_at_ms: at,
            received_message_id: None,
        })
    };
    let t0 = ow_store::now_ms();
    assert_eq!(
        p.import(status("accepted", None, vec![], t0 + 1), vec![])
            .await,
        Disposition::Imported
    );
    // The registrar's reason quotes the buyer: personal data, sealed at rest.
    let supplement = status(
        "supplement_requested",
        Some("张小三的完税凭证不清晰，请重新上传"),
        vec!["tax_receipt".into()],
        t0 + 2,
    );
    assert_eq!(
        p.import(supplement.clone(), vec![]).await,
        Disposition::Imported
    );
    // The same status again (a re-sent message) adds nothing.
    assert_eq!(p.import(supplement, vec![]).await, Disposition::Imported);
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_timeline").await, 3);
    // An unknown application is refused with a reason.
    let unknown = Message::ApplicationStatus(ApplicationStatus {
        application_no: "SQ20990101000001".into(),
        status: "accepted".into(),
        reason: None,
        requested_materials: vec![],
        changed_at_ms: t0,
        received_message_id: None,
    });
    assert!(matches!(
        p.import(unknown, vec![]).await,
        Disposition::Refused { .. }
    ));

    let (_, _, detail) = page(&c, &p.url(&format!("/applications/{no}"))).await;
    assert!(detail.contains("完税凭证不清晰"), "{detail}");
    assert!(detail.contains("提交补正材料"), "{detail}");
    // Upload supplement materials: an executable is refused, a PDF goes out as a message.
    let csrf = csrf_of(&detail);
    let send_with = |note: &str, bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf.clone())
            .text("checklist_code", "tax_receipt")
            .text("note", note.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("张小三完税凭证.pdf"),
            );
        c.post(p.url(&format!("/applications/{no}/supplements")))
            .multipart(form)
            .send()
    };
    let send = |bytes: Vec<u8>| send_with("已重新扫描，联系电话13812345678", bytes);
    // A NUL (which PostgreSQL refuses, and which would have stopped the channel at the back
    // office) or another control character in the note: refused here, nothing queued.
    for note in ["已重新\u{0}扫描", "已重新\u{1b}[2J扫描"] {
        let r = send_with(note, pdf("supplement")).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("控制字符"));
    }
    assert_eq!(
        p.count(&format!("SELECT COUNT(*) FROM exchange_outbox WHERE case_id = '{no}' AND kind = 'supplement-submitted'")).await,
        0
    );
    let r = send(b"MZ\x90\x00 not a pdf".to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("不是 PDF"));
    let r = send(format!("%PDF-1.4\n% {} {}\n", BUYER1.0, BUYER1.1).into_bytes())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("补正材料已提交"));
    assert_eq!(
        p.count(&format!("SELECT COUNT(*) FROM exchange_outbox WHERE case_id = '{no}' AND kind = 'supplement-submitted'")).await,
        1
    );

    for (i, s) in [
        "accepted",
        "reviewed",
        "recorded",
        "certificate_prepared",
        "completed",
    ]
    .iter()
    .enumerate()
    {
        p.import(status(s, None, vec![], t0 + 10 + i as i64), vec![])
            .await;
    }
    // The certificate arrives, signed by the extranet.
    let (signed, code) = p.certificate(
        200,
        &no,
        &[(BUYER1.0, BUYER1.1, "1/2"), (BUYER2.0, BUYER2.1, "1/2")],
    );
    let number = signed.certificate.certificate_number.as_str().to_owned();
    let issued = Message::CertificateIssued(CertificateIssued {
        application_no: no.clone(),
        certificate_number: number.clone(),
        item: "certificate.json".into(),
    });
    let file = InboundFile::from_bytes(
        "certificate.json",
        "application/json",
        signed.to_json().unwrap().into_bytes(),
    );
    assert_eq!(
        p.import(issued.clone(), vec![file.clone()]).await,
        Disposition::Imported
    );
    // A certificate signed by another key is refused.
    let mut forged = signed.clone();
    forged.certificate.location = "别处".into();
    let forged_file = InboundFile::from_bytes(
        "certificate.json",
        "application/json",
        forged.to_json().unwrap().into_bytes(),
    );
    assert!(matches!(
        p.import(issued, vec![forged_file]).await,
        Disposition::Refused { .. }
    ));

    let (_, _, certs) = page(&c, &p.url("/certificates")).await;
    assert!(certs.contains(&number), "{certs}");
    let id = certs
        .split("/certificates/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let json = c
        .get(p.url(&format!("/certificates/{id}/download")))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::OK);
    let downloaded =
        ow_certificate::SignedCertificate::from_json(&json.bytes().await.unwrap()).unwrap();
    assert_eq!(downloaded, signed);
    let (status, _, print) = page(&c, &p.url(&format!("/certificates/{id}/print"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        print.contains("<svg") && print.contains(&number),
        "printable page with QR"
    );

    // /verify, without login, from the QR link.
    let anon = browser();
    let link = ow_certificate::verify_url(
        &p.url("/verify"),
        &signed.certificate.certificate_number,
        &code,
    );
    let (status, _, v) = page(&anon, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v.contains("查验结果：有效"), "{v}");
    assert!(v.contains("张*三") && !v.contains(BUYER1.1), "{v}");
    // Wrong code for a real number: not genuine, nothing about which part was wrong.
    let wrong = ow_certificate::VerificationCode::generate().unwrap();
    let link = ow_certificate::verify_url(
        &p.url("/verify"),
        &signed.certificate.certificate_number,
        &wrong,
    );
    let (_, _, v) = page(&anon, &link).await;
    assert!(v.contains("查验结果：证书编号与验证码不匹配"), "{v}");
    assert!(v.contains("请核对"), "{v}");
    assert!(!v.contains("非真实证书") && !v.contains("张*三"));
    // The uploaded file verifies; an altered one does not.
    let (_, _, vp) = page(&anon, &p.url("/verify")).await;
    let csrf = csrf_of(&vp);
    for (bytes, expect) in [
        (signed.to_json().unwrap().into_bytes(), "查验结果：有效"),
        (
            forged.to_json().unwrap().into_bytes(),
            "查验结果：非真实证书",
        ),
    ] {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf.clone())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("cert.json"),
            );
        let r = anon
            .post(p.url("/verify/file"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.text().await.unwrap();
        assert!(body.contains(expect), "{body}");
    }
    // The seller's old certificate: published as cancelled.
    let old = ow_domain::CertificateNumber::parse("鲁(2025)青州市不动产权第0000077号").unwrap();
    let old_code = ow_certificate::VerificationCode::generate().unwrap();
    let cancelled = Message::CertificateStatus(CertificateStatus {
        certificate_number: old.as_str().into(),
        status: "cancelled".into(),
        code_digest: ow_certificate::code_digest(&old, &old_code),
        holders_masked: vec!["王*山（110105********002X）".into()],
        unit_code: UNIT.into(),
        location: "青州市云门山街道驼山路88号3号楼2单元101室".into(),
        issued_at_ms: t0 - 86_400_000,
        cancelled_at_ms: Some(t0),
        cancelled_reason: Some(format!("转移登记，由{number}替代")),
        application_no: Some(no.clone()),
    });
    assert_eq!(p.import(cancelled, vec![]).await, Disposition::Imported);
    let (_, _, v) = page(
        &anon,
        &ow_certificate::verify_url(&p.url("/verify"), &old, &old_code),
    )
    .await;
    assert!(
        v.contains("查验结果：已注销") && v.contains("转移登记"),
        "{v}"
    );
    // A late "valid" never revives a cancelled certificate.
    let revive = Message::CertificateStatus(CertificateStatus {
        certificate_number: old.as_str().into(),
        status: "valid".into(),
        code_digest: ow_certificate::code_digest(&old, &old_code),
        holders_masked: vec![],
        unit_code: UNIT.into(),
        location: String::new(),
        issued_at_ms: t0 - 86_400_000,
        cancelled_at_ms: None,
        cancelled_reason: None,
        application_no: None,
    });
    p.import(revive, vec![]).await;
    let (_, _, v) = page(
        &anon,
        &ow_certificate::verify_url(&p.url("/verify"), &old, &old_code),
    )
    .await;
    assert!(v.contains("查验结果：已注销"), "{v}");
    // API verify.
    let r: serde_json::Value = anon
        .post(p.url("/api/v1/verify"))
        .json(&serde_json::json!({"certificate_number": number, "code": code.grouped()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["outcome"], "valid");

    // After the whole flow — supplement with a note and a file named after the citizen, a
    // reason quoting them, an issued certificate — no file the portal wrote holds their name,
    // ID number or phone in clear.
    let data_dir = p.data_dir.clone();
    let _keep = p.stop().await;
    assert_no_personal_data_in_clear(&data_dir, "13812345678");
}

/// Searches every file under `dir` (database, WAL, uploaded materials, anything else) for the
/// test's people in UTF-8, GBK and UTF-16, and for `phone`.
fn assert_no_personal_data_in_clear(dir: &std::path::Path, phone: &str) {
    use ow_pii::scan::{Needle, PersonalKind, files_under, scan_tree};
    let mut needles = vec![Needle::new(PersonalKind::Phone, phone)];
    for (name, id) in [SELLER, BUYER1, BUYER2] {
        needles.push(Needle::new(PersonalKind::Name, name));
        needles.push(Needle::new(PersonalKind::IdNumber, id));
    }
    let files = files_under(dir);
    assert!(
        files
            .iter()
            .any(|f| f.file_name().is_some_and(|n| n == "internet.db")),
        "the scan sees the database: {files:?}"
    );
    let hits = scan_tree(dir, &needles);
    assert!(
        hits.is_empty(),
        "personal data in clear:\n{}",
        hits.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn citizen_b_cannot_reach_citizen_a_by_any_url_or_api_call() {
    let p = start(None).await;
    let a = browser();
    register(&p, &a, BUYER1.0, BUYER1.1, "13812345678").await;
    login(&p, &a, BUYER1.1, PASSWORD).await;
    let no = apply(&p, &a, SELLER, [BUYER1, BUYER2]).await;
    let a_draft = new_draft(&p, &a).await;
    p.import(
        Message::ApplicationStatus(ApplicationStatus {
            application_no: no.clone(),
            status: "supplement_requested".into(),
            reason: Some("请补充".into()),
            requested_materials: vec![],
            changed_at_ms: ow_store::now_ms(),
            received_message_id: None,
        }),
        vec![],
    )
    .await;
    let (signed, _) = p.certificate(300, &no, &[(BUYER1.0, BUYER1.1, "1")]);
    p.import(
        Message::CertificateIssued(CertificateIssued {
            application_no: no.clone(),
            certificate_number: signed.certificate.certificate_number.as_str().into(),
            item: "c.json".into(),
        }),
        vec![InboundFile::from_bytes(
            "c.json",
            "application/json",
            signed.to_json().unwrap().into_bytes(),
        )],
    )
    .await;
    let cert_id: String = sqlx::query_scalar("SELECT id FROM inet_certificates")
        .fetch_one(p.state.store.reader())
        .await
        .unwrap();
    let material_id: String = sqlx::query_scalar("SELECT id FROM inet_materials LIMIT 1")
        .fetch_one(p.state.store.reader())
        .await
        .unwrap();
    // A can reach all of it.
    for path in [
        format!("/applications/{no}"),
        format!("/drafts/{a_draft}/unit"),
        format!("/materials/{material_id}"),
        format!("/certificates/{cert_id}/download"),
        format!("/api/v1/applications/{no}"),
        format!("/api/v1/certificates/{cert_id}"),
    ] {
        assert_eq!(
            a.get(p.url(&path)).send().await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }

    let b = browser();
    register(
        &p,
        &b,
        "赵六",
        &id_number("37078119850505123"),
        "13900001111",
    )
    .await;
    let (_, _, _) = login(&p, &b, "13900001111", PASSWORD).await;
    let pages = [
        format!("/applications/{no}"),
        format!("/drafts/{a_draft}/unit"),
        format!("/drafts/{a_draft}/parties"),
        format!("/drafts/{a_draft}/materials"),
        format!("/drafts/{a_draft}/check"),
        format!("/materials/{material_id}"),
        format!("/certificates/{cert_id}/download"),
        format!("/certificates/{cert_id}/print"),
        format!("/api/v1/applications/{no}"),
        format!("/api/v1/certificates/{cert_id}"),
    ];
    for path in &pages {
        let r = b.get(p.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains(&no) || path.contains(&no) && !body.contains("已提交的材料"),
            "{path}: {body}"
        );
    }
    // Writes to A's objects: 404 too, and nothing changes.
    let (_, _, own) = page(&b, &p.url("/applications")).await;
    assert!(!own.contains(&no));
    let csrf = csrf_of(&own);
    for path in [
        format!("/drafts/{a_draft}/submit"),
        format!("/drafts/{a_draft}/delete"),
        format!("/drafts/{a_draft}/unit"),
    ] {
        let r = b
            .post(p.url(&path))
            .form(&[("csrf", csrf.as_str()), ("unit_code", UNIT)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("checklist_code", "tax_receipt")
        .part(
            "file",
            reqwest::multipart::Part::bytes(pdf("b")).file_name("x.pdf"),
        );
    let r = b
        .post(p.url(&format!("/applications/{no}/supplements")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // API lists show nothing of A's.
    let apps: serde_json::Value = b
        .get(p.url("/api/v1/applications"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps.as_array().unwrap().len(), 0);
    let certs: serde_json::Value = b
        .get(p.url("/api/v1/certificates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(certs.as_array().unwrap().len(), 0);
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_applications").await, 2);
    assert_eq!(p.count("SELECT COUNT(*) FROM exchange_outbox").await, 1);
    p.stop().await;
}

#[tokio::test]
async fn no_file_under_the_data_folder_holds_personal_data_in_clear() {
    let p = start(None).await;
    let c = browser();
    register(&p, &c, BUYER1.0, BUYER1.1, "13812345678").await;
    login(&p, &c, BUYER1.1, PASSWORD).await;
    apply(&p, &c, SELLER, [BUYER1, BUYER2]).await;
    // A draft keeps a material named after the citizen, showing their number, on disk.
    let draft = new_draft(&p, &c).await;
    let (status, body) = upload(
        &p,
        &c,
        &draft,
        "applicant_identity",
        &format!("{}身份证.pdf", BUYER1.0),
        format!("%PDF-1.4\n% {} {} 13812345678\n", BUYER1.0, BUYER1.1).into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(p.state.files.count() > 0, "materials are on disk");
    let data_dir = p.data_dir.clone();
    let _keep = p.stop().await;
    assert_no_personal_data_in_clear(&data_dir, "13812345678");
}

#[tokio::test]
async fn json_api_with_session_cookie_and_csrf_header() {
    let p = start(None).await;
    let c = browser();
    // Unauthenticated: 401 problem+json.
    let r = c.get(p.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = c
        .post(p.url("/api/v1/register"))
        .json(
            &serde_json::json!({"name": BUYER2.0, "id_number": BUYER2.1, "phone": "13700001234",
            "password": PASSWORD, "password_confirm": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = c
        .post(p.url("/api/v1/register"))
        .json(&serde_json::json!({"name": "x", "id_number": "1", "phone": "2", "password": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let login: serde_json::Value = c
        .post(p.url("/api/v1/login"))
        .json(&serde_json::json!({"login": "13700001234", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = login["csrf_token"].as_str().unwrap().to_owned();
    let me: serde_json::Value = c
        .get(p.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name_masked"], "李*四");

    let form_json = serde_json::json!({
        "unit_code": "", "certificate_number": "鲁(2025)青州市不动产权第0000077号", "price_yuan": "980000",
        "sellers": [{"name": SELLER.0, "id_number": SELLER.1, "share": "1"}],
        "buyers": [{"name": BUYER2.0, "id_number": BUYER2.1, "share": "1"}]
    });
    let multipart = || {
        let mut f = reqwest::multipart::Form::new().text("application", form_json.to_string());
        for m in ow_domain::BusinessType::TransferSecondHand.required_materials() {
            if m.required {
                f = f.part(
                    m.code,
                    reqwest::multipart::Part::bytes(pdf(m.code))
                        .file_name(format!("{}.pdf", m.code)),
                );
            }
        }
        f
    };
    // Without the CSRF header: refused, nothing stored.
    let r = c
        .post(p.url("/api/v1/applications"))
        .multipart(multipart())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_applications").await, 0);
    let r = c
        .post(p.url("/api/v1/applications"))
        .header("X-CSRF-Token", &csrf)
        .multipart(multipart())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: serde_json::Value = r.json().await.unwrap();
    let no = body["application_no"].as_str().unwrap().to_owned();
    // District from the certificate number's county (青州市 → 370781).
    let got: serde_json::Value = c
        .get(p.url(&format!("/api/v1/applications/{no}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["district_code"], "370781");
    assert_eq!(got["status"], "submitted");
    assert_eq!(got["timeline"].as_array().unwrap().len(), 1);
    // An executable among the files: 422 problem, nothing more stored.
    let bad = reqwest::multipart::Form::new()
        .text("application", form_json.to_string())
        .part(
            "application_form",
            reqwest::multipart::Part::bytes(b"\x7fELF\x02\x01\x01\x00".to_vec()).file_name("a.pdf"),
        )
        .part(
            "applicant_identity",
            reqwest::multipart::Part::bytes(pdf("x")).file_name("b.pdf"),
        )
        .part(
            "title_certificate",
            reqwest::multipart::Part::bytes(pdf("x")).file_name("c.pdf"),
        )
        .part(
            "sale_contract",
            reqwest::multipart::Part::bytes(pdf("x")).file_name("d.pdf"),
        )
        .part(
            "tax_receipt",
            reqwest::multipart::Part::bytes(pdf("x")).file_name("e.pdf"),
        );
    let before = p.count("SELECT COUNT(*) FROM inet_materials").await;
    let r = c
        .post(p.url("/api/v1/applications"))
        .header("X-CSRF-Token", &csrf)
        .multipart(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert!(
        problem["message"].as_str().unwrap().contains("不是 PDF"),
        "{problem}"
    );
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_materials").await, before);
    // Logout needs the header too.
    assert_eq!(
        c.post(p.url("/api/v1/logout"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = c
        .post(p.url("/api/v1/logout"))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(p.url("/api/v1/me")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    p.stop().await;
}

#[tokio::test]
async fn every_documented_api_path_is_served() {
    let p = start(None).await;
    let c = browser();
    let doc: serde_json::Value = c
        .get(p.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10);
    for (path, item) in paths {
        let concrete = path
            .replace("{no}", "SQ20990101000001")
            .replace("{id}", "no-such-id");
        for method in item.as_object().unwrap().keys() {
            let req = match method.as_str() {
                "get" => c.get(p.url(&concrete)),
                "post" => c.post(p.url(&concrete)),
                other => panic!("unexpected method {other}"),
            };
            let r = req.send().await.unwrap();
            assert_ne!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let body = r.text().await.unwrap();
            assert!(
                !body.contains("route_not_found"),
                "{method} {path} is documented but not routed"
            );
        }
    }
    // And an undocumented path is not routed.
    let r = c.get(p.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("route_not_found"));
    p.stop().await;
}

#[tokio::test]
async fn health_style_headers_and_graceful_shutdown() {
    let p = start(None).await;
    let c = browser();
    let r = c.get(p.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for h in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert!(r.headers().contains_key(h), "{h}");
    }
    let r = c.get(p.url("/static/style.css")).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let r = c.get(p.url("/login")).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    ow_web::health::healthcheck(&p.base, std::time::Duration::from_secs(2))
        .await
        .unwrap();
    let base = p.base.clone();
    p.stop().await;
    assert!(
        ow_web::health::healthcheck(&base, std::time::Duration::from_secs(1))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_application_cannot_hold_more_materials_than_one_message_may_carry() {
    let p = start(None).await;
    let c = browser();
    register(&p, &c, "张小三", "440524188001010014", "13812345678").await;
    login(&p, &c, "13812345678", PASSWORD).await;
    let draft = new_draft(&p, &c).await;
    let batch = |n: usize, tag: &str| -> Vec<(String, Vec<u8>)> {
        (0..n)
            .map(|i| (format!("{tag}{i}.pdf"), pdf(&format!("{tag}{i}"))))
            .collect()
    };
    let post = |files: Vec<(String, Vec<u8>)>| {
        let c = c.clone();
        let url = p.url(&format!("/drafts/{draft}/materials"));
        async move {
            let (_, _, html) = page(&c, &url).await;
            // The token first, as a browser sends the form's fields in their order.
            let mut form = reqwest::multipart::Form::new().text("csrf", csrf_of(&html));
            for (name, bytes) in files {
                form = form.part(
                    "marital_status",
                    reqwest::multipart::Part::bytes(bytes)
                        .file_name(name)
                        .mime_str("application/pdf")
                        .unwrap(),
                );
            }
            let r = c.post(&url).multipart(form).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let cap = ow_internet::applications::MAX_MATERIALS;
    let per_request = 20;
    let mut uploaded = 0;
    while uploaded + per_request <= cap {
        let (status, body) = post(batch(per_request, &format!("b{uploaded}-"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        uploaded += per_request;
    }
    let before = p.count("SELECT COUNT(*) FROM inet_materials").await;
    assert_eq!(before as usize, uploaded);
    // One batch more would pass the cap: refused with the reason, nothing stored.
    let (status, body) = post(batch(per_request, "over-")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains(&format!("最多可上传{cap}份材料")), "{body}");
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_materials").await, before);
    p.stop().await;
}

#[tokio::test]
async fn an_upload_is_judged_before_its_files_are_written() {
    let p = start_with(None, |s| s.uploads.max_files = 3).await;
    let c = browser();
    register(&p, &c, "张小三", "440524188001010014", "13812345678").await;
    login(&p, &c, "13812345678", PASSWORD).await;
    let draft = new_draft(&p, &c).await;
    let url = p.url(&format!("/drafts/{draft}/materials"));
    let staged = || {
        std::fs::read_dir(p.state.files.staging_dir())
            .unwrap()
            .count()
    };
    let part = |tag: &str| {
        reqwest::multipart::Part::bytes(pdf(tag))
            .file_name(format!("{tag}.pdf"))
            .mime_str("application/pdf")
            .unwrap()
    };
    let (_, _, html) = page(&c, &url).await;
    let csrf = csrf_of(&html);

    // A file before the form's token (no browser sends one): refused, nothing written.
    let form = reqwest::multipart::Form::new()
        .part("sale_contract", part("early"))
        .text("csrf", csrf.clone());
    let r = c.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A wrong token before the file: refused the same way.
    let form = reqwest::multipart::Form::new()
        .text("csrf", "0".repeat(csrf.len()))
        .part("sale_contract", part("forged"));
    let r = c.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // From another site, with the right token: refused on its headers, before the body.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .part("sale_contract", part("cross-site"));
    let r = c
        .post(&url)
        .header("Origin", "https://evil.example")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // More files than one request may carry: refused with the limit, none kept.
    let mut form = reqwest::multipart::Form::new().text("csrf", csrf.clone());
    for i in 0..5 {
        form = form.part("sale_contract", part(&format!("many{i}")));
    }
    let r = c.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("一次最多上传 3 个文件"), "{body}");
    // Another citizen's draft: not found, whatever the body holds.
    let other = browser();
    let other_id = id_number("44052418800101002");
    register(&p, &other, "李小四", &other_id, "13912345678").await;
    login(&p, &other, "13912345678", PASSWORD).await;
    let (_, _, html) = page(&other, &p.url("/apply")).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf_of(&html))
        .part("sale_contract", part("intruder"));
    let r = other.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    assert_eq!(p.count("SELECT COUNT(*) FROM inet_materials").await, 0);
    assert_eq!(p.state.files.count(), 0);
    assert_eq!(staged(), 0, "nothing left in staging");
    // The right way still works.
    let (status, body) = upload(&p, &c, &draft, "sale_contract", "ok.pdf", pdf("ok")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_materials").await, 1);
    p.stop().await;
}
