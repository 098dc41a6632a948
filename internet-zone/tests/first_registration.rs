//! 首次登记 on the portal: the business chosen when the draft starts, its own checklist, the
//! survey package pre-checked on upload (line numbers, counter-only packages refused, nothing
//! kept on refusal), and the `ApplicationSubmitted` it queues; on every store backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ow_domain::BusinessType;
use ow_exchange::Message;
use reqwest::StatusCode;

const OWNER: (&str, &str) = ("张小三", "440524188001010014");

/// A 界址点坐标 TXT with one rectangular parcel `w` m (east) × `h` m (north), its declared
/// area in 公顷, and extra attribute lines.
fn txt(w: f64, h: f64, extra_attrs: &str) -> String {
    let (x0, y0) = (3_380_000.0, 38_500_000.0);
    let ha = w * h / 10_000.0;
    format!(
        "[属性描述]\n坐标系=2000国家大地坐标系\n带号=38\n{extra_attrs}[地块坐标]\n\
         5,{ha:.4},D001,新建厂房地块,面,,070101,0701,@\n\
         J1,1,{x0:.3},{y0:.3}\nJ2,1,{x0:.3},{:.3}\nJ3,1,{:.3},{:.3}\nJ4,1,{:.3},{y0:.3}\n\
         J1,1,{x0:.3},{y0:.3}\n",
        y0 + w,
        x0 - h,
        y0 + w,
        x0 - h,
    )
}

async fn start_first_registration(p: &Portal, c: &reqwest::Client) -> String {
    let (_, _, html) = page(c, &p.url("/apply")).await;
    assert!(
        html.contains("首次登记") && html.contains("二手房转移登记"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let (status, url, body) = post_form(
        c,
        &p.url("/drafts"),
        &[("csrf", &csrf), ("business", "1000301")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(url.ends_with("/unit"), "{url}");
    assert!(
        !body.contains("name=\"unit_code\""),
        "no unit code asked: {body}"
    );
    assert!(!body.contains("成交价格"), "{body}");
    url.split("/drafts/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn upload_as(
    p: &Portal,
    c: &reqwest::Client,
    draft: &str,
    name: &str,
    bytes: Vec<u8>,
    mime: &str,
) -> (StatusCode, String) {
    let (_, _, html) = page(c, &p.url(&format!("/drafts/{draft}/materials"))).await;
    let csrf = csrf_of(&html);
    let form = reqwest::multipart::Form::new().text("csrf", csrf).part(
        "cadastral_survey",
        reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(mime)
            .unwrap(),
    );
    let r = c
        .post(p.url(&format!("/drafts/{draft}/materials?item=cadastral_survey")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn materials_of(p: &Portal) -> i64 {
    p.count("SELECT COUNT(*) FROM inet_materials").await
}

#[tokio::test]
async fn first_registration_with_a_survey_package_on_every_backend() {
    for db in ow_store::testing::all_backends().await {
        let url = match db.backend {
            ow_store::Backend::Sqlite => None,
            ow_store::Backend::Postgres => Some(db.url.clone()),
        };
        let p = start(url).await;
        let c = browser();
        register(&p, &c, OWNER.0, OWNER.1, "13812345678").await;
        login(&p, &c, "13812345678", PASSWORD).await;
        let draft = start_first_registration(&p, &c).await;
        assert_eq!(
            p.count(&format!(
                "SELECT COUNT(*) FROM inet_applications WHERE id = '{draft}' AND business_type = '1000301'"
            ))
            .await,
            1
        );

        // Unit step: nothing but the district (two districts are served).
        let (_, _, html) = page(&c, &p.url(&format!("/drafts/{draft}/unit"))).await;
        let csrf = csrf_of(&html);
        let (status, _, body) = post_form(
            &c,
            &p.url(&format!("/drafts/{draft}/unit")),
            &[
                ("csrf", &csrf),
                ("certificate_number", ""),
                ("district_code", ""),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("请选择不动产所在区县"), "{body}");
        let (status, url, body) = post_form(
            &c,
            &p.url(&format!("/drafts/{draft}/unit")),
            &[
                ("csrf", &csrf),
                ("certificate_number", ""),
                ("district_code", "370781"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(url.ends_with("/parties"), "{url}");
        // Parties: the applicant only (prefilled from the account), no sellers.
        assert!(!body.contains("出卖人"), "{body}");
        assert!(body.contains("<h1>权利人（申请人）</h1>"), "{body}");
        let (status, url, body) = post_form(
            &c,
            &p.url(&format!("/drafts/{draft}/parties")),
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(url.ends_with("/materials"), "{url}");

        // The checklist is FIRST_REGISTRATION's.
        for m in BusinessType::FirstRegistration.required_materials() {
            assert!(body.contains(m.name_zh), "{} missing: {body}", m.name_zh);
        }
        for m in BusinessType::TransferSecondHand.required_materials() {
            if !BusinessType::FirstRegistration
                .required_materials()
                .contains(m)
            {
                assert!(!body.contains(m.name_zh), "{} shown: {body}", m.name_zh);
            }
        }

        // A garbage line: its line number, nothing kept.
        let bad = txt(100.0, 50.0, "").replace("J3,1,", "J3,1,这一行不是坐标\nJ3,1,");
        let (status, body) =
            upload_as(&p, &c, &draft, "界址点.txt", bad.into_bytes(), "text/plain").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("第8行"), "{body}");
        assert_eq!(materials_of(&p).await, 0);
        assert!(
            std::fs::read_dir(p.data_dir.join("files/.staging"))
                .unwrap()
                .next()
                .is_none(),
            "nothing left in staging"
        );

        // 3 km × 2.5 km = 7.5 km²: to the counter.
        let (status, body) = upload_as(
            &p,
            &c,
            &draft,
            "界址点.txt",
            txt(3000.0, 2500.0, "").into_bytes(),
            "text/plain",
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("登记窗口"), "{body}");
        assert!(body.contains("超过网上提交上限6平方公里"), "{body}");
        assert_eq!(materials_of(&p).await, 0);

        // 涉密: to the counter.
        let (status, body) = upload_as(
            &p,
            &c,
            &draft,
            "界址点.txt",
            txt(100.0, 50.0, "涉密=是\n").into_bytes(),
            "text/plain",
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body.contains("标注为涉密") && body.contains("登记窗口"),
            "{body}"
        );
        assert_eq!(materials_of(&p).await, 0);

        // A good TXT in UTF-8, and the same in GBK.
        let (status, body) = upload_as(
            &p,
            &c,
            &draft,
            "界址点.txt",
            txt(100.0, 50.0, "").into_bytes(),
            "text/plain",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(materials_of(&p).await, 1);
        let gbk = encoding_rs::GBK
            .encode(&txt(100.0, 50.0, ""))
            .0
            .into_owned();
        assert!(std::str::from_utf8(&gbk).is_err(), "really GBK");
        let (status, body) =
            upload_as(&p, &c, &draft, "界址点GBK", gbk, "application/octet-stream").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("界址点GBK.txt"), "{body}");
        assert_eq!(materials_of(&p).await, 2);
        // The survey report PDF under the same item.
        let (status, body) = upload_as(
            &p,
            &c,
            &draft,
            "权籍调查报告.pdf",
            pdf("report"),
            "application/pdf",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // A TXT is not accepted for another item.
        let (status, body) = upload(
            &p,
            &c,
            &draft,
            "land_source",
            "出让合同.txt",
            txt(100.0, 50.0, "").into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        for m in BusinessType::FirstRegistration.required_materials() {
            if m.required && m.code != "cadastral_survey" {
                let (status, body) = upload(
                    &p,
                    &c,
                    &draft,
                    m.code,
                    &format!("{}.pdf", m.code),
                    pdf(m.code),
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }

        let (status, _, html) = page(&c, &p.url(&format!("/drafts/{draft}/check"))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("确认提交") && html.contains("首次登记"),
            "{html}"
        );
        assert!(
            !html.contains("成交价格") && !html.contains("出卖人"),
            "{html}"
        );
        let csrf = csrf_of(&html);
        let (status, url, body) = post_form(
            &c,
            &p.url(&format!("/drafts/{draft}/submit")),
            &[("csrf", &csrf), ("declaration", "yes")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(url.ends_with("/submitted"), "{url}");

        let queued =
            ow_exchange::queued_messages(&p.state.store, &p.state.pii, &ow_internet::OUTBOUND)
                .await
                .unwrap();
        assert_eq!(queued.len(), 1);
        let Message::ApplicationSubmitted(m) = &queued[0].0.message else {
            panic!("not an ApplicationSubmitted");
        };
        assert_eq!(m.business_type, "1000301");
        assert_eq!(m.district_code, "370781");
        assert!(m.sellers.is_empty());
        assert_eq!(m.unit_code, None);
        assert_eq!(m.certificate_number, None);
        assert_eq!(m.buyers.len(), 1);
        let surveys: Vec<_> = m
            .materials
            .iter()
            .filter(|r| r.checklist_code == "cadastral_survey")
            .collect();
        assert_eq!(surveys.len(), 3);
        assert_eq!(
            surveys
                .iter()
                .filter(|r| r.media_type == "text/plain" && r.item.ends_with(".txt"))
                .count(),
            2
        );

        // 待权籍审核 shows as a step; a rejection's findings keep their line breaks.
        let no = url
            .split("/applications/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let (_, _, detail) = page(&c, &p.url(&format!("/applications/{no}"))).await;
        assert!(detail.contains("待权籍审核"), "an upcoming step: {detail}");
        let t0 = ow_store::now_ms();
        for (i, (status, reason)) in [
            ("accepted", None),
            ("survey_review", None),
            (
                "supplement_requested",
                Some("权籍审核未通过：\n[错误] 地块D001与已登记宗地重叠\n请重新测量"),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let m = Message::ApplicationStatus(ow_exchange::ApplicationStatus {
                application_no: no.clone(),
                status: status.into(),
                reason: reason.map(str::to_owned),
                requested_materials: if reason.is_some() {
                    vec!["cadastral_survey".into()]
                } else {
                    vec![]
                },
                changed_at_ms: t0 + i as i64,
                received_message_id: None,
            });
            assert_eq!(
                p.import(m, vec![]).await,
                ow_exchange::Disposition::Imported
            );
        }
        let (_, _, detail) = page(&c, &p.url(&format!("/applications/{no}"))).await;
        assert!(
            detail.contains("待权籍审核（权籍调查成果审核中）"),
            "{detail}"
        );
        assert!(
            detail.contains("<p style=\"white-space: pre-line\">原因：权籍审核未通过：\n[错误] 地块D001与已登记宗地重叠\n请重新测量</p>"),
            "{detail}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn first_registration_over_the_api_and_a_land_certificate() {
    let p = start(None).await;
    let c = browser();
    register(&p, &c, OWNER.0, OWNER.1, "13812345678").await;
    let r = c
        .post(p.url("/api/v1/login"))
        .json(&serde_json::json!({"login": "13812345678", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<serde_json::Value>().await.unwrap()["csrf_token"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    let form = serde_json::json!({
        "certificate_number": "鲁(2025)青州市不动产权第0000077号",
        "buyers": [{"name": OWNER.0, "id_number": OWNER.1, "share": ""}],
    });
    let mut mp = reqwest::multipart::Form::new()
        .text("application", form.to_string())
        .text("business_type", "1000301");
    for m in BusinessType::FirstRegistration.required_materials() {
        if m.required {
            let (bytes, name) = if m.code == "cadastral_survey" {
                (
                    serde_json::json!({
                        "type": "FeatureCollection",
                        "features": [{
                            "type": "Feature",
                            "properties": {"kind": "parcel", "number": "D001"},
                            "geometry": {"type": "Polygon", "coordinates": [[
                                [38500000.0, 3380000.0], [38500100.0, 3380000.0],
                                [38500100.0, 3379950.0], [38500000.0, 3379950.0],
                                [38500000.0, 3380000.0]]]}
                        }]
                    })
                    .to_string()
                    .into_bytes(),
                    "宗地.geojson",
                )
            } else {
                (pdf(m.code), "a.pdf")
            };
            mp = mp.part(
                m.code,
                reqwest::multipart::Part::bytes(bytes).file_name(name),
            );
        }
    }
    let r = c
        .post(p.url("/api/v1/applications"))
        .header("X-CSRF-Token", &token)
        .multipart(mp)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let queued = ow_exchange::queued_messages(&p.state.store, &p.state.pii, &ow_internet::OUTBOUND)
        .await
        .unwrap();
    let Message::ApplicationSubmitted(m) = &queued[0].0.message else {
        panic!("not an ApplicationSubmitted");
    };
    assert_eq!(m.business_type, "1000301");
    assert_eq!(
        m.certificate_number.as_deref(),
        Some("鲁(2025)青州市不动产权第0000077号")
    );
    assert_eq!(m.district_code, "370781");
    assert!(
        m.materials
            .iter()
            .any(|r| r.media_type == "application/geo+json" && r.item.ends_with(".geojson"))
    );
    let no: String = body
        .split("\"application_no\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let view: serde_json::Value = c
        .get(p.url(&format!("/api/v1/applications/{no}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["business_type"], "1000301");
    p.stop().await;
}
