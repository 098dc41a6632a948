//! Sellers and buyers of a transfer, over the real portal's API: buyers who are exactly the
//! sellers are refused with the reason; a co-owner buying the other out is accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::StatusCode;

const JIA: (&str, &str) = ("王大山", "11010519491231002X");
const YI: (&str, &str) = ("王小山", "440524188001010014");

async fn submit(
    p: &Portal,
    c: &reqwest::Client,
    csrf: &str,
    sellers: serde_json::Value,
    buyers: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let form = serde_json::json!({
        "unit_code": UNIT, "certificate_number": "", "price_yuan": "490000",
        "sellers": sellers, "buyers": buyers,
    });
    let mut f = reqwest::multipart::Form::new().text("application", form.to_string());
    for m in ow_domain::BusinessType::TransferSecondHand.required_materials() {
        if m.required {
            f = f.part(
                m.code,
                reqwest::multipart::Part::bytes(pdf(m.code)).file_name(format!("{}.pdf", m.code)),
            );
        }
    }
    let r = c
        .post(p.url("/api/v1/applications"))
        .header("X-CSRF-Token", csrf)
        .multipart(f)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn buyers_exactly_the_sellers_are_refused_and_a_co_owner_buyout_is_accepted() {
    let p = start(None).await;
    let c = browser();
    register(&p, &c, JIA.0, JIA.1, "13812345678").await;
    let login: serde_json::Value = c
        .post(p.url("/api/v1/login"))
        .json(&serde_json::json!({"login": JIA.1, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = login["csrf_token"].as_str().unwrap().to_owned();

    // The sole owner "sells" to himself: nothing is transferred.
    let me = serde_json::json!([{"name": JIA.0, "id_number": JIA.1, "share": "1"}]);
    let (status, body) = submit(&p, &c, &csrf, me.clone(), me.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("完全相同"), "{body}");
    assert!(body.to_string().contains("buyer_0_id_number"), "{body}");
    // Two co-owners listed on both sides with the same shares, in another order and notation.
    let (status, body) = submit(
        &p,
        &c,
        &csrf,
        serde_json::json!([
            {"name": JIA.0, "id_number": JIA.1, "share": "1/2"},
            {"name": YI.0, "id_number": YI.1, "share": "1/2"}
        ]),
        serde_json::json!([
            {"name": YI.0, "id_number": YI.1, "share": "50%"},
            {"name": JIA.0, "id_number": JIA.1, "share": "0.5"}
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("完全相同"), "{body}");
    assert_eq!(p.count("SELECT COUNT(*) FROM inet_applications").await, 0);

    // 甲 buys 乙's half: a co-owner buyout is a transfer, and is submitted.
    let (status, body) = submit(
        &p,
        &c,
        &csrf,
        serde_json::json!([
            {"name": JIA.0, "id_number": JIA.1, "share": "1/2"},
            {"name": YI.0, "id_number": YI.1, "share": "1/2"}
        ]),
        me.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["application_no"].as_str().is_some(), "{body}");
    p.stop().await;
}
