//! The surveyors' pages through HTTP: two-factor login, the queue and the package page with its
//! drawing, districts isolated, CSRF enforced, the GeoJSON export.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ow_exchange::Disposition;

const PKG: &str = "0190f3c2-0000-7000-8000-000000000031";

async fn server_with_package() -> TestServer {
    let server = TestServer::start().await;
    let msg = survey_message(
        "QZ2026000201",
        "370781",
        PKG,
        rectangle_txt("D001", "重叠地块", OVERLAPPING, "0.8000"),
    );
    assert_eq!(server.zone.import(&msg).await, Some(Disposition::Imported));
    server
}

#[tokio::test]
async fn login_needs_the_dynamic_code() {
    let mut server = TestServer::start().await;
    let (password, _) = server.zone.credentials("qz-survey");
    let b = Browser::new(&server.base);
    let (status, body) = b.password_step("qz-survey", &password).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("动态口令"));
    // The password alone opens nothing.
    let (_, page) = b.get("/packages").await;
    assert!(page.contains("调查审查员登录"), "{page}");
    let (status, _) = b.totp_step("000000").await;
    assert_eq!(status, 401);
    // A wrong password is refused with the same words as an unknown account.
    let (status, body) = Browser::new(&server.base)
        .password_step("qz-survey", "not-the-password")
        .await;
    assert_eq!(status, 401);
    assert!(body.contains("用户名或密码错误"));
    server.stop().await;
}

#[tokio::test]
async fn the_queue_and_the_package_page_show_the_drawing_and_the_findings() {
    let mut server = server_with_package().await;
    let b = server.login("qz-survey").await;
    let (status, queue) = b.get("/packages").await;
    assert_eq!(status, 200);
    assert!(queue.contains("QZ2026000201"), "{queue}");
    assert!(queue.contains(&format!("/packages/{PKG}")));
    let (status, page) = b.get(&format!("/packages/{PKG}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<svg"), "a drawing: {page}");
    for label in ["J1", "J2", "J3", "J4"] {
        assert!(page.contains(&format!(">{label}<")), "label {label}");
    }
    // The neighbours drawn and the overlap listed.
    assert!(page.contains("370781001001GB00001"));
    assert!(page.contains("overlap-existing"));
    assert!(
        page.contains("不能直接通过"),
        "the page says errors block approval"
    );
    // Approving without an override is refused on the page, with the reason.
    let csrf = csrf_of(&page);
    let (status, body) = b
        .post(
            &format!("/packages/{PKG}/approve"),
            &[("csrf", &csrf), ("code_0", "370781001001GB00070W00000000")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("强制通过理由"), "{body}");
    // Rejecting works and the page says so.
    let (status, body) = b
        .post(
            &format!("/packages/{PKG}/reject"),
            &[("csrf", &csrf), ("reason", "与已登记宗地重叠")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("已驳回"), "{body}");
    assert_eq!(server.zone.reviews().await.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn another_districts_surveyor_cannot_see_the_package() {
    let mut server = server_with_package().await;
    let b = server.login("wc-survey").await;
    let (_, queue) = b.get("/packages?status=all").await;
    assert!(!queue.contains("QZ2026000201"));
    let (status, _) = b.get(&format!("/packages/{PKG}")).await;
    assert_eq!(status, 404);
    let (status, _) = b.get(&format!("/packages/{PKG}/parcels/0/geojson")).await;
    assert_eq!(status, 404);
    let csrf = csrf_of(&queue);
    let (status, _) = b
        .post(
            &format!("/packages/{PKG}/reject"),
            &[("csrf", &csrf), ("reason", "不是我的")],
        )
        .await;
    assert_eq!(status, 404);
    assert!(server.zone.reviews().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let mut server = server_with_package().await;
    let b = server.login("qz-survey").await;
    for form in [
        vec![("reason", "理由")],
        vec![("csrf", "forged"), ("reason", "理由")],
    ] {
        let (status, _) = b.post(&format!("/packages/{PKG}/reject"), &form).await;
        assert_eq!(status, 400);
    }
    assert!(server.zone.reviews().await.is_empty(), "nothing decided");
    server.stop().await;
}

#[tokio::test]
async fn a_parcel_exports_as_geojson() {
    let mut server = server_with_package().await;
    let b = server.login("qz-survey").await;
    let r = b
        .client
        .get(format!("{}/packages/{PKG}/parcels/0/geojson", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/geo+json"
    );
    let json: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(json["type"], "FeatureCollection");
    let feature = &json["features"][0];
    assert_eq!(feature["properties"]["地块编号"], "D001");
    let ring = feature["geometry"]["coordinates"][0].as_array().unwrap();
    assert_eq!(ring.len(), 5, "a closed ring of four corners");
    assert!(
        json["crs"]["properties"]["name"]
            .as_str()
            .unwrap()
            .contains("EPSG")
    );
    let (status, _) = b.get(&format!("/packages/{PKG}/parcels/9/geojson")).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_clean_package_is_approved_from_its_page_and_an_unreadable_one_can_only_be_rejected() {
    let mut server = TestServer::start().await;
    let clean = "0190f3c2-0000-7000-8000-000000000032";
    let msg = survey_message(
        "QZ2026000202",
        "370781",
        clean,
        rectangle_txt("D001", "示例地块", CLEAN, "0.5000"),
    );
    assert_eq!(server.zone.import(&msg).await, Some(Disposition::Imported));
    let broken = "0190f3c2-0000-7000-8000-000000000033";
    let msg = survey_message(
        "QZ2026000203",
        "370781",
        broken,
        "[地块坐标]\n这不是坐标\n".as_bytes().to_vec(),
    );
    assert_eq!(server.zone.import(&msg).await, Some(Disposition::Imported));
    let b = server.login("qz-survey").await;

    let (_, page) = b.get(&format!("/packages/{clean}")).await;
    assert!(page.contains("自动检查未发现问题"), "{page}");
    // A GeoJSON package's proposed unit code fills the form.
    let proposed = "0190f3c2-0000-7000-8000-000000000034";
    let mut gj: serde_json::Value =
        serde_json::from_slice(&parcel_geojson([636_000.0, 4_062_000.0, 50.0, 50.0], &[])).unwrap();
    gj["features"][0]["properties"]["unit_code"] = "370781001001GB00095W00000000".into();
    let msg = survey_message(
        "QZ2026000204",
        "370781",
        proposed,
        gj.to_string().into_bytes(),
    );
    assert_eq!(server.zone.import(&msg).await, Some(Disposition::Imported));
    let (_, form) = b.get(&format!("/packages/{proposed}")).await;
    assert!(
        form.contains("value=\"370781001001GB00095W00000000\""),
        "{form}"
    );
    let csrf = csrf_of(&page);
    let code = "370781001001GB00090W00000000";
    let (status, page) = b
        .post(
            &format!("/packages/{clean}/approve"),
            &[("csrf", &csrf), ("code_0", code)],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("已通过") && page.contains(code), "{page}");
    let reviews = server.zone.reviews().await;
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].parcels[0].area_m2, "5000.00");

    let (status, page) = b.get(&format!("/packages/{broken}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("unreadable"), "{page}");
    assert!(page.contains("只能驳回"));
    assert!(!page.contains(&format!("/packages/{broken}/approve")));
    server.stop().await;
}

#[tokio::test]
async fn the_register_mirror_page_shows_the_district_and_its_gap() {
    let mut server = TestServer::start().await;
    assert_eq!(
        server.zone.import(&register_message(1..=2)).await,
        Some(Disposition::Imported)
    );
    assert_eq!(
        server.zone.import(&register_message(5..=5)).await,
        Some(Disposition::Imported)
    );
    let b = server.login("qz-survey").await;
    let (status, page) = b.get("/register").await;
    assert_eq!(status, 200);
    assert!(page.contains("370781001001GB00001F00010002"), "{page}");
    assert!(page.contains("已应用至第 2 条"), "{page}");
    assert!(page.contains("第 3 至 4 条"), "{page}");
    let (_, queue) = b.get("/packages").await;
    assert!(
        queue.contains("第 3 至 4 条"),
        "the queue shows the gap too"
    );
    let other = server.login("wc-survey").await;
    let (_, page) = other.get("/register").await;
    assert!(!page.contains("370781001001GB00001F00010002"));
    server.stop().await;
}
