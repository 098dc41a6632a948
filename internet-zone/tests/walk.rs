//! The application walk as a citizen meets it, over HTTP against the real server: one person
//! per page, errors beside their fields and linked from the summary, the check page in full
//! with the declaration, the confirmation, the timeline's receipt step, deleting with a
//! question first, and required fields asked for as required.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ow_exchange::{ApplicationStatus, CertificateStatus, Disposition, Message};
use reqwest::StatusCode;

const SELLER: (&str, &str) = ("王大山", "11010519491231002X");
const BUYER1: (&str, &str) = ("张小三", "440524188001010014");
const BUYER2: (&str, &str) = ("李小四", "110101199003074477");
const SELLER_CERT: &str = "鲁(2025)青州市不动产权第0000077号";

/// The `<form …>…</form>` of a page whose action is `action`.
fn form_with_action<'a>(html: &'a str, action: &str) -> &'a str {
    let at = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form for {action} in {html}"));
    let start = html[..at].rfind("<form").expect("form start");
    let end = at + html[at..].find("</form>").expect("form end");
    &html[start..end]
}

async fn signed_in_draft(p: &Portal, c: &reqwest::Client) -> String {
    register(p, c, BUYER1.0, BUYER1.1, "13812345678").await;
    login(p, c, BUYER1.1, PASSWORD).await;
    new_draft(p, c).await
}

async fn save_unit(p: &Portal, c: &reqwest::Client, draft: &str, cert: &str) {
    let (_, _, html) = page(c, &p.url(&format!("/drafts/{draft}/unit"))).await;
    let (status, url, body) = post_form(
        c,
        &p.url(&format!("/drafts/{draft}/unit")),
        &[
            ("csrf", &csrf_of(&html)),
            ("unit_code", UNIT),
            ("certificate_number", cert),
            ("price_yuan", "1250000"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(url.ends_with("/parties"), "{url}");
}

#[tokio::test]
async fn parties_one_person_per_page_with_change_and_delete() {
    let p = start(None).await;
    let c = browser();
    let draft = signed_in_draft(&p, &c).await;
    save_unit(&p, &c, &draft, "").await;

    // The buyer is the signed-in citizen, already filled in; nobody else yet.
    let (_, _, parties) = page(&c, &p.url(&format!("/drafts/{draft}/parties"))).await;
    assert!(
        parties.contains("已按您的账户信息填写第1位买受人"),
        "{parties}"
    );
    assert!(parties.contains(BUYER1.0) && parties.contains(BUYER1.1));
    assert!(parties.contains("还没有添加出卖人"), "{parties}");
    assert!(parties.contains(&format!("/drafts/{draft}/parties/seller/new")));
    assert!(parties.contains(&format!("/drafts/{draft}/parties/buyer/1/delete")));
    // The continue form holds one button and no person fields: Enter cannot add a row.
    let cont = form_with_action(&parties, &format!("/drafts/{draft}/parties"));
    assert_eq!(cont.matches("<button").count(), 1, "{cont}");
    assert!(!cont.contains("name=\"action\""), "{cont}");

    // One person's page: one form, one button ("保存"); Enter in any field saves.
    let new_seller = format!("/drafts/{draft}/parties/seller/new");
    let (_, _, html) = page(&c, &p.url(&new_seller)).await;
    let form = form_with_action(&html, &new_seller);
    assert_eq!(form.matches("<button").count(), 1, "{form}");
    assert!(form.contains(">保存</button>"), "{form}");

    // Errors: in the summary (linked to the field) and beside the field, and the title says so.
    let (status, _, body) =
        person(&p, &c, &draft, "seller/new", ("", "11010119900307451X"), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("<title>错误："), "{body}");
    for field in ["name", "id_number"] {
        assert!(
            body.contains(&format!("href=\"#{field}\"")),
            "{field}: {body}"
        );
        assert!(
            body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {body}"
        );
        assert!(
            body.contains(&format!("id=\"{field}\"")) && body.contains("aria-invalid=\"true\""),
            "{field}: {body}"
        );
    }
    assert!(body.contains("aria-describedby=\"id_number-hint id_number-error\""));
    // What was typed stays; nothing was saved.
    assert!(body.contains("11010119900307451X"));
    let (_, _, parties) = page(&c, &p.url(&format!("/drafts/{draft}/parties"))).await;
    assert!(parties.contains("还没有添加出卖人"), "{parties}");

    // Add two sellers, change the second, delete the first after a question.
    let (status, url, _) = person(&p, &c, &draft, "seller/new", SELLER, "1/2").await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/parties"), "{url}");
    person(&p, &c, &draft, "seller/new", BUYER2, "1/2").await;
    let (_, _, parties) = page(&c, &p.url(&format!("/drafts/{draft}/parties"))).await;
    assert!(parties.contains("再添加一位出卖人"), "{parties}");
    assert!(parties.contains("第2位出卖人"), "{parties}");
    let (_, _, edit) = page(&c, &p.url(&format!("/drafts/{draft}/parties/seller/2"))).await;
    assert!(
        edit.contains("修改第2位出卖人") && edit.contains(BUYER2.1),
        "{edit}"
    );
    person(&p, &c, &draft, "seller/2", ("李小五", BUYER2.1), "1/2").await;
    let delete = format!("/drafts/{draft}/parties/seller/1/delete");
    let (_, _, ask) = page(&c, &p.url(&delete)).await;
    assert!(
        ask.contains("删除第1位出卖人？") && ask.contains(SELLER.0),
        "{ask}"
    );
    let (status, url, after) = post_form(&c, &p.url(&delete), &[("csrf", &csrf_of(&ask))]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.contains("deleted=seller"), "{url}");
    assert!(after.contains("已删除一位出卖人"), "{after}");
    assert!(
        !after.contains(SELLER.1) && after.contains("李小五"),
        "{after}"
    );
    // Out of range, or another side: 404.
    let (status, _, _) = page(&c, &p.url(&format!("/drafts/{draft}/parties/seller/2"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = page(&c, &p.url(&format!("/drafts/{draft}/parties/owner/new"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The remaining seller holds 1/2 only: continuing says so beside the sellers.
    let (status, _, body) = post_form(
        &c,
        &p.url(&format!("/drafts/{draft}/parties")),
        &[("csrf", &csrf_of(&after))],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("href=\"#sellers\"") && body.contains("id=\"sellers-error\""));
    // Alone on a side, a blank share means all of it.
    person(&p, &c, &draft, "seller/1", ("李小五", BUYER2.1), "").await;
    let (status, url, _) = post_form(
        &c,
        &p.url(&format!("/drafts/{draft}/parties")),
        &[("csrf", &csrf_of(&after))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/materials"), "{url}");
    p.stop().await;
}

#[tokio::test]
async fn upload_errors_sit_beside_the_item_that_was_uploaded() {
    let p = start(None).await;
    let c = browser();
    let draft = signed_in_draft(&p, &c).await;
    let (_, _, html) = page(&c, &p.url(&format!("/drafts/{draft}/materials"))).await;
    assert!(html.contains("id=\"material_sale_contract\""), "{html}");
    assert!(html.contains(&format!(
        "action=\"/drafts/{draft}/materials?item=sale_contract\""
    )));
    let exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00PE\x00\x00".to_vec();
    let (status, body) = upload(&p, &c, &draft, "sale_contract", "合同.pdf", exe).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("href=\"#material_sale_contract\""), "{body}");
    assert!(
        body.contains("id=\"material_sale_contract-error\""),
        "{body}"
    );
    assert!(!body.contains("href=\"#sale_contract\""), "{body}");
    // An empty submission of one item's form: the message is beside that item.
    let form = reqwest::multipart::Form::new().text("csrf", csrf_of(&html));
    let r = c
        .post(p.url(&format!("/drafts/{draft}/materials?item=tax_receipt")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("href=\"#material_tax_receipt\""), "{body}");
    assert!(body.contains("请选择要上传的文件"), "{body}");
    p.stop().await;
}

fn published(unit: &str, number: &str, holders: &[&str]) -> Message {
    Message::CertificateStatus(CertificateStatus {
        certificate_number: number.into(),
        status: "valid".into(),
        code_digest: "00".repeat(32),
        holders_masked: holders.iter().map(|h| (*h).to_owned()).collect(),
        unit_code: unit.into(),
        location: "青州市云门山街道驼山路88号3号楼2单元101室".into(),
        issued_at_ms: 1_700_000_000_000,
        cancelled_at_ms: None,
        cancelled_reason: None,
        application_no: None,
    })
}

#[tokio::test]
async fn check_page_in_full_with_address_declaration_and_a_confirmation() {
    let p = start(None).await;
    let c = browser();
    // The back office published the seller's certificate for the unit.
    assert_eq!(
        p.import(
            published(UNIT, SELLER_CERT, &["王*山（110105********002X）"]),
            vec![]
        )
        .await,
        Disposition::Imported
    );
    let draft = signed_in_draft(&p, &c).await;
    save_unit(&p, &c, &draft, SELLER_CERT).await;
    // With the certificate number typed, the registered holder is shown, masked.
    let (_, _, parties) = page(&c, &p.url(&format!("/drafts/{draft}/parties"))).await;
    assert!(parties.contains("王*山（110105********002X）"), "{parties}");
    let (_, _, new_seller) = page(&c, &p.url(&format!("/drafts/{draft}/parties/seller/new"))).await;
    assert!(new_seller.contains("王*山"), "{new_seller}");
    // A seller typed with a wrong name is flagged on the check page; the right one is not.
    person(&p, &c, &draft, "seller/new", ("汪大山", SELLER.1), "").await;
    person(&p, &c, &draft, "buyer/1", BUYER1, "1/2").await;
    person(&p, &c, &draft, "buyer/new", BUYER2, "1/2").await;
    for m in ow_domain::BusinessType::TransferSecondHand.required_materials() {
        if m.required {
            upload(&p, &c, &draft, m.code, "材料.pdf", pdf(m.code)).await;
        }
    }
    let (_, _, check) = page(&c, &p.url(&format!("/drafts/{draft}/check"))).await;
    assert!(check.contains("与登记机构公布的权利人"), "{check}");
    person(&p, &c, &draft, "seller/1", SELLER, "").await;
    let (status, _, check) = page(&c, &p.url(&format!("/drafts/{draft}/check"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!check.contains("与登记机构公布的权利人"), "{check}");
    // The author sees every ID number in full, the address beside the unit code, the
    // declaration, and a 修改 link per person.
    for id in [SELLER.1, BUYER1.1, BUYER2.1] {
        assert!(check.contains(id), "{id}: {check}");
    }
    assert!(!check.contains("********"), "{check}");
    assert!(
        check.contains("坐落") && check.contains("驼山路88号"),
        "{check}"
    );
    assert!(check.contains("本人已阅读并同意以上承诺"), "{check}");
    assert!(check.contains(&format!("/drafts/{draft}/parties/buyer/2")));
    let csrf = csrf_of(&check);
    // Without the declaration: refused, the error beside the checkbox, nothing sent.
    let (status, _, body) = post_form(
        &c,
        &p.url(&format!("/drafts/{draft}/submit")),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("href=\"#declaration\"") && body.contains("id=\"declaration-error\""));
    assert!(body.contains("<title>错误："));
    assert_eq!(p.count("SELECT COUNT(*) FROM exchange_outbox").await, 0);
    // With it: the confirmation panel.
    let (status, url, done) = post_form(
        &c,
        &p.url(&format!("/drafts/{draft}/submit")),
        &[("csrf", &csrf), ("declaration", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/submitted"), "{url}");
    let no = url
        .split("/applications/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    assert!(
        done.contains("confirmation-panel") && done.contains(no),
        "{done}"
    );
    assert!(
        done.contains("30个工作日") && done.contains("接下来会怎样"),
        "{done}"
    );
    assert!(done.contains("我的申请"), "{done}");
    // Another citizen gets 404 for the confirmation.
    let other = browser();
    register(
        &p,
        &other,
        "赵六",
        &id_number("44052418800101002"),
        "13900001111",
    )
    .await;
    login(&p, &other, "13900001111", PASSWORD).await;
    let (status, _, _) = page(&other, &p.url(&format!("/applications/{no}/submitted"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    p.stop().await;
}

#[tokio::test]
async fn the_back_office_receipt_is_its_own_step_and_no_reason() {
    let p = start(None).await;
    let c = browser();
    register(&p, &c, BUYER1.0, BUYER1.1, "13812345678").await;
    login(&p, &c, BUYER1.1, PASSWORD).await;
    let no = apply(&p, &c, SELLER, [BUYER1, BUYER2]).await;
    let message_id: String =
        sqlx::query_scalar("SELECT message_id FROM exchange_outbox WHERE case_id = $1")
            .bind(&no)
            .fetch_one(p.state.store.reader())
            .await
            .unwrap();
    let t0 = ow_store::now_ms();
    let receipt = Message::ApplicationStatus(ApplicationStatus {
        application_no: no.clone(),
        status: "submitted".into(),
        reason: Some("登记机构已收到申请材料，等待受理".into()),
        requested_materials: vec![],
        changed_at_ms: t0 + 1,
        received_message_id: Some(message_id),
    });
    assert_eq!(p.import(receipt, vec![]).await, Disposition::Imported);
    let refused = Message::ApplicationStatus(ApplicationStatus {
        application_no: no.clone(),
        status: "refused".into(),
        reason: Some("该不动产已被查封".into()),
        requested_materials: vec![],
        changed_at_ms: t0 + 2,
        received_message_id: None,
    });
    p.import(refused, vec![]).await;
    let (_, _, detail) = page(&c, &p.url(&format!("/applications/{no}"))).await;
    assert!(detail.contains("登记机构已收到</span>"), "{detail}");
    assert!(!detail.contains("已提交补正材料"), "{detail}");
    assert!(!detail.contains("原因：登记机构已收到"), "{detail}");
    assert!(
        detail.contains("<p>登记机构已收到申请材料，等待受理</p>"),
        "{detail}"
    );
    assert!(detail.contains("原因：该不动产已被查封"), "{detail}");
    // The API names the step too.
    let api: serde_json::Value = c
        .get(p.url(&format!("/api/v1/applications/{no}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(api.to_string().contains("\"received\""), "{api}");
    p.stop().await;
}

#[tokio::test]
async fn deleting_a_draft_asks_first_and_says_afterwards() {
    let p = start(None).await;
    let c = browser();
    let draft = signed_in_draft(&p, &c).await;
    upload(&p, &c, &draft, "sale_contract", "合同.pdf", pdf("x")).await;
    let (_, _, unit) = page(&c, &p.url(&format!("/drafts/{draft}/unit"))).await;
    // The unit page links to a question, it does not delete on one press.
    assert!(
        unit.contains(&format!("href=\"/drafts/{draft}/delete\"")),
        "{unit}"
    );
    assert!(
        !unit.contains(&format!("action=\"/drafts/{draft}/delete\"")),
        "{unit}"
    );
    let (status, _, ask) = page(&c, &p.url(&format!("/drafts/{draft}/delete"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        ask.contains("删除这份草稿？") && ask.contains("不能恢复"),
        "{ask}"
    );
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_applications").await, 1);
    let (status, url, list) = post_form(
        &c,
        &p.url(&format!("/drafts/{draft}/delete")),
        &[("csrf", &csrf_of(&ask))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/applications?deleted=1"), "{url}");
    assert!(list.contains("草稿已删除"), "{list}");
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_applications").await, 0);
    assert_eq!(p.state.files.count(), 0);
    p.stop().await;
}

#[tokio::test]
async fn empty_password_fields_are_asked_for_not_called_short() {
    let p = start(None).await;
    let c = browser();
    let (_, _, html) = page(&c, &p.url("/register")).await;
    let (status, _, body) = post_form(
        &c,
        &p.url("/register"),
        &[
            ("csrf", &csrf_of(&html)),
            ("name", "张小三"),
            ("id_number", BUYER1.1),
            ("phone", "13812345678"),
            ("password", ""),
            ("password_confirm", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("请输入密码"), "{body}");
    assert!(!body.contains("至少需要"), "{body}");
    assert!(body.contains("id=\"password-error\""), "{body}");
    let (status, _, body) = post_form(
        &c,
        &p.url("/register"),
        &[
            ("csrf", &csrf_of(&html)),
            ("name", "张小三"),
            ("id_number", BUYER1.1),
            ("phone", "13812345678"),
            ("password", PASSWORD),
            ("password_confirm", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("请再次输入密码"), "{body}");
    register(&p, &c, BUYER1.0, BUYER1.1, "13812345678").await;
    // Sign-in with an empty password: asked for, and not counted towards the lockout.
    for _ in 0..5 {
        let (status, _, body) = login(&p, &c, BUYER1.1, "").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body.contains("请输入密码") && body.contains("<title>错误："),
            "{body}"
        );
    }
    let (status, _, body) = login(&p, &c, "", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("请输入身份证号码或手机号码"), "{body}");
    let (_, url, _) = login(&p, &c, BUYER1.1, PASSWORD).await;
    assert!(url.ends_with("/applications"), "{url}");
    p.stop().await;
}

#[tokio::test]
async fn verify_says_number_and_code_do_not_match_the_same_way_for_unknown_numbers() {
    let p = start(None).await;
    let anon = browser();
    let (signed, code) = p.certificate(201, "SQ20260302000001", &[(BUYER1.0, BUYER1.1, "1")]);
    let number = &signed.certificate.certificate_number;
    let mut record = published(UNIT, number.as_str(), &["张*三（440524********0014）"]);
    if let Message::CertificateStatus(c) = &mut record {
        c.code_digest = ow_certificate::code_digest(number, &code);
    }
    assert_eq!(p.import(record, vec![]).await, Disposition::Imported);
    // The right pair is valid (so the wrong code below is wrong for a real number).
    let link = ow_certificate::verify_url(&p.url("/verify"), number, &code);
    let (_, _, v) = page(&anon, &link).await;
    assert!(v.contains("查验结果：有效"), "{v}");
    let wrong = ow_certificate::VerificationCode::generate().unwrap();
    let unknown = ow_domain::CertificateNumber::parse("鲁(2026)青州市不动产权第0009999号").unwrap();
    let mut pages = Vec::new();
    for number in [&signed.certificate.certificate_number, &unknown] {
        let link = ow_certificate::verify_url(&p.url("/verify"), number, &wrong);
        let (status, _, v) = page(&anon, &link).await;
        assert_eq!(status, StatusCode::OK);
        assert!(v.contains("证书编号与验证码不匹配"), "{v}");
        assert!(v.contains("二维码旁印的10位"), "{v}");
        pages.push(v.replace(number.as_str(), "N"));
    }
    assert_eq!(
        pages[0], pages[1],
        "the answer does not tell which numbers exist"
    );
    p.stop().await;
}

/// Imports a certificate for `no` with its public record; returns the signed certificate, its
/// code and the id of the citizen's copy.
async fn issue(
    p: &Portal,
    c: &reqwest::Client,
    no: &str,
) -> (ow_certificate::SignedCertificate, String) {
    let (signed, code) = p.certificate(
        300,
        no,
        &[(BUYER1.0, BUYER1.1, "1/2"), (BUYER2.0, BUYER2.1, "1/2")],
    );
    let number = signed.certificate.certificate_number.clone();
    let issued = Message::CertificateIssued(ow_exchange::CertificateIssued {
        application_no: no.to_owned(),
        certificate_number: number.as_str().to_owned(),
        item: "certificate.json".into(),
    });
    let file = ow_exchange::InboundFile::from_bytes(
        "certificate.json",
        "application/json",
        signed.to_json().unwrap().into_bytes(),
    );
    assert_eq!(p.import(issued, vec![file]).await, Disposition::Imported);
    let mut record = published(UNIT, number.as_str(), &["张*三（440524********0014）"]);
    if let Message::CertificateStatus(s) = &mut record {
        s.code_digest = ow_certificate::code_digest(&number, &code);
    }
    p.import(record, vec![]).await;
    let (_, _, certs) = page(c, &p.url("/certificates")).await;
    let id = certs
        .split("/certificates/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    (signed, id)
}

async fn verify_upload(p: &Portal, bytes: Vec<u8>, name: &str) -> String {
    let anon = browser();
    let (_, _, vp) = page(&anon, &p.url("/verify")).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf_of(&vp))
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    let r = anon
        .post(p.url("/verify/file"))
        .header("Origin", p.base.clone())
        .multipart(form)
        .send()
        .await
        .unwrap();
    r.text().await.unwrap()
}

#[tokio::test]
async fn certificate_fits_a_phone_and_downloads_as_a_pdf_that_verifies() {
    let p = start(None).await;
    let c = browser();
    register(&p, &c, BUYER1.0, BUYER1.1, "13812345678").await;
    login(&p, &c, BUYER1.1, PASSWORD).await;
    let no = apply(&p, &c, SELLER, [BUYER1, BUYER2]).await;
    let (signed, id) = issue(&p, &c, &no).await;

    let (_, _, certs) = page(&c, &p.url("/certificates")).await;
    assert!(
        certs.contains(&format!("/certificates/{id}/pdf")),
        "{certs}"
    );
    // The page has a screen layout of its own (no fixed 210 mm outside print) and links to the
    // PDF.
    let (status, _, html) = page(&c, &p.url(&format!("/certificates/{id}/print"))).await;
    assert_eq!(status, StatusCode::OK);
    let print_at = html.find("@media print").unwrap();
    let screen = &html[..print_at];
    assert_eq!(
        screen.matches("width: 210mm").count(),
        screen.matches("max-width: 210mm").count(),
        "{html}"
    );
    assert!(html.contains("name=\"viewport\""));
    assert!(html.contains(&format!("href=\"/certificates/{id}/pdf\"")));

    let r = c
        .get(p.url(&format!("/certificates/{id}/pdf")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".pdf"),
    );
    let pdf = r.bytes().await.unwrap().to_vec();
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(ow_certificate::signed_from_pdf(&pdf).unwrap(), signed);

    // /verify takes the PDF: valid; with its embedded document altered: not genuine.
    let v = verify_upload(&p, pdf.clone(), "证书.pdf").await;
    assert!(v.contains("查验结果：有效"), "{v}");
    let mut altered = signed.clone();
    altered.certificate.location = "别处".into();
    let font = ow_certificate::CertificateFont::load(&test_font(), 0).unwrap();
    let forged = ow_certificate::render_pdf(&altered, &p.url("/verify"), &font).unwrap();
    let v = verify_upload(&p, forged, "证书.pdf").await;
    assert!(v.contains("查验结果：非真实证书"), "{v}");
    let mut truncated = pdf.clone();
    truncated.truncate(pdf.len() / 2);
    let v = verify_upload(&p, truncated, "证书.pdf").await;
    assert!(v.contains("查验结果：非真实证书"), "{v}");

    // Another citizen cannot fetch it.
    let other = browser();
    register(
        &p,
        &other,
        "赵六",
        &id_number("44052418800101002"),
        "13900001111",
    )
    .await;
    login(&p, &other, "13900001111", PASSWORD).await;
    let (status, _, _) = page(&other, &p.url(&format!("/certificates/{id}/pdf"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    p.stop().await;
}

#[tokio::test]
async fn without_a_font_the_portal_runs_and_says_the_pdf_is_unavailable() {
    let p = start_with(None, |s| {
        s.certificate_font_file = "/nonexistent/font.ttc".into();
    })
    .await;
    let c = browser();
    register(&p, &c, BUYER1.0, BUYER1.1, "13812345678").await;
    login(&p, &c, BUYER1.1, PASSWORD).await;
    let no = apply(&p, &c, SELLER, [BUYER1, BUYER2]).await;
    let (_, id) = issue(&p, &c, &no).await;
    let (_, _, certs) = page(&c, &p.url("/certificates")).await;
    assert!(
        !certs.contains(&format!("/certificates/{id}/pdf")),
        "{certs}"
    );
    let (status, _, body) = page(&c, &p.url(&format!("/certificates/{id}/pdf"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("暂时无法生成 PDF") && body.contains(".json"),
        "{body}"
    );
    let (status, _, _) = page(&c, &p.url(&format!("/certificates/{id}/print"))).await;
    assert_eq!(status, StatusCode::OK);
    p.stop().await;
}
