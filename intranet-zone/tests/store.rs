//! Import, the register mirror and decisions, on every configured database backend (SQLite
//! always; PostgreSQL when `OW_TEST_POSTGRES_URL` is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ow_exchange::Disposition;
use ow_intranet::packages::{self, ApproveInput, ReviewError};
use ow_intranet::register;

const APP: &str = "QZ2026000101";

fn pkg_id(n: u32) -> String {
    format!("0190f3c2-0000-7000-8000-{n:012}")
}

async fn package_rows(z: &Cadastre) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM int_packages")
        .fetch_one(z.state.store.reader())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_survey_package_is_imported_once_with_its_findings() {
    for db in ow_store::testing::all_backends().await {
        let z = open_seeded(&db.url).await;
        let clean = survey_message(
            APP,
            "370781",
            &pkg_id(1),
            rectangle_txt("D001", "示例地块", CLEAN, "0.5000"),
        );
        assert_eq!(z.import(&clean).await, Some(Disposition::Imported));
        // The same message again (a bundle re-sent): nothing new.
        assert_eq!(z.import(&clean).await, None);
        // The same package under a new message id: refused, still one row.
        let again = survey_message(
            APP,
            "370781",
            &pkg_id(1),
            rectangle_txt("D001", "示例地块", CLEAN, "0.5000"),
        );
        assert!(matches!(
            z.import(&again).await,
            Some(Disposition::Refused { .. })
        ));
        assert_eq!(package_rows(&z).await, 1);
        let queue = packages::queue(&z.state.store, "370781", Some(packages::PENDING))
            .await
            .unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!((queue[0].error_count, queue[0].parcel_count), (0, 1));
        // Another district's queue does not show it.
        assert!(
            packages::queue(&z.state.store, "370702", None)
                .await
                .unwrap()
                .is_empty()
        );

        // A package over the demo parcels is found overlapping both.
        let over = survey_message(
            "QZ2026000102",
            "370781",
            &pkg_id(2),
            rectangle_txt("D001", "重叠地块", OVERLAPPING, "0.8000"),
        );
        assert_eq!(z.import(&over).await, Some(Disposition::Imported));
        let mut conn = z.state.store.reader().acquire().await.unwrap();
        let p = packages::get(&mut conn, &z.state, "370781", &pkg_id(2))
            .await
            .unwrap()
            .unwrap();
        drop(conn);
        let overlaps: Vec<_> = p
            .findings
            .iter()
            .filter(|f| f.code == "overlap-existing")
            .collect();
        assert_eq!(overlaps.len(), 2, "{:?}", p.findings);
        assert!(
            overlaps
                .iter()
                .any(|f| f.message.contains("370781001001GB00001") && f.message.contains("2000.00")),
            "{overlaps:?}"
        );
        // Unknown district: refused with the reason.
        let lost = survey_message(
            "QZ2026000103",
            "110101",
            &pkg_id(3),
            rectangle_txt("D001", "示例地块", CLEAN, "0.5000"),
        );
        assert!(matches!(
            z.import(&lost).await,
            Some(Disposition::Refused { reason }) if reason.contains("110101")
        ));
        z.state.store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_register_log_applies_in_order_skips_duplicates_and_reports_gaps() {
    for db in ow_store::testing::all_backends().await {
        let z = open_seeded(&db.url).await;
        let store = &z.state.store;
        assert_eq!(
            z.import(&register_message(1..=3)).await,
            Some(Disposition::Imported)
        );
        assert_eq!(register::applied_up_to(store, "370781").await.unwrap(), 3);
        // Entries received before are skipped, the new one applied.
        assert_eq!(
            z.import(&register_message(2..=4)).await,
            Some(Disposition::Imported)
        );
        assert_eq!(register::applied_up_to(store, "370781").await.unwrap(), 4);
        let applied: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM int_register_log WHERE applied_at_ms IS NOT NULL",
        )
        .fetch_one(store.reader())
        .await
        .unwrap();
        assert_eq!(applied, 4);
        // 7–8 after a gap: held, the gap reported.
        assert_eq!(
            z.import(&register_message(7..=8)).await,
            Some(Disposition::Imported)
        );
        assert_eq!(register::applied_up_to(store, "370781").await.unwrap(), 4);
        let gaps = register::gaps(store).await.unwrap();
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            (gaps[0].missing_from, gaps[0].missing_to, gaps[0].held),
            (5, 6, 2)
        );
        assert!(gaps[0].message_zh().contains("第 5 至 6 条"));
        assert!(
            register::unit(store, "370781001001GB00001F00010007")
                .await
                .unwrap()
                .is_none(),
            "a held entry is not applied"
        );
        // The missing entries arrive: everything applies in order.
        assert_eq!(
            z.import(&register_message(5..=6)).await,
            Some(Disposition::Imported)
        );
        assert_eq!(register::applied_up_to(store, "370781").await.unwrap(), 8);
        assert!(register::gaps(store).await.unwrap().is_empty());
        let unit = register::unit(store, "370781001001GB00001F00010007")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((unit.state.as_str(), unit.last_seq), ("current", 7));
        assert_eq!(unit.area_m2.as_deref(), Some("87.00"));
        // A log naming another district's unit is refused.
        let mut wrong = register_message(9..=9);
        if let ow_exchange::Message::RegisterLog(log) = &mut wrong.envelope.message {
            log.entries[0].unit_code = "370702003002GB00012F00020301".into();
        }
        assert!(matches!(
            z.import(&wrong).await,
            Some(Disposition::Refused { .. })
        ));
        z.state.store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn approving_checks_unit_codes_and_queues_the_review() {
    for db in ow_store::testing::all_backends().await {
        let z = open_seeded(&db.url).await;
        let id = pkg_id(11);
        let msg = survey_message(
            APP,
            "370781",
            &id,
            rectangle_txt("D001", "示例地块", CLEAN, "0.5000"),
        );
        assert_eq!(z.import(&msg).await, Some(Disposition::Imported));
        let surveyor = z.surveyor("qz-survey").await;
        let with = |code: &str| ApproveInput {
            unit_codes: vec![("D001".into(), code.into())],
            override_reason: None,
        };
        for (code, expect) in [
            ("37078100100", "28"),
            ("370702003002GB00099W00000000", "370781"),
            // The parcel code of a demo parcel.
            ("370781001001GB00001W00000000", "已被"),
        ] {
            match packages::approve(&z.state, &surveyor, &id, &with(code)).await {
                Err(ReviewError::Refused(lines)) => {
                    assert!(lines.join("").contains(expect), "{code}: {lines:?}")
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        // A parcel code the register mirror knows (a unit registered on it) is taken too.
        assert_eq!(
            z.import(&register_message(1..=1)).await,
            Some(Disposition::Imported)
        );
        let mut mirror = register_message(2..=2);
        if let ow_exchange::Message::RegisterLog(log) = &mut mirror.envelope.message {
            log.entries[0].unit_code = "370781001001GB00040F00010101".into();
        }
        assert_eq!(z.import(&mirror).await, Some(Disposition::Imported));
        match packages::approve(
            &z.state,
            &surveyor,
            &id,
            &with("370781001001GB00040W00000000"),
        )
        .await
        {
            Err(ReviewError::Refused(lines)) => {
                assert!(lines.join("").contains("已被"), "{lines:?}")
            }
            other => panic!("{other:?}"),
        }
        assert!(z.reviews().await.is_empty(), "nothing queued by a refusal");
        // Another district's surveyor does not find it.
        let other = z.surveyor("wc-survey").await;
        assert!(matches!(
            packages::approve(&z.state, &other, &id, &with("370781001001GB00050W00000000")).await,
            Err(ReviewError::NotFound)
        ));
        let code = "370781001001GB00050W00000000";
        let decided = packages::approve(&z.state, &surveyor, &id, &with(code))
            .await
            .unwrap();
        z.state.after_decision(&decided);
        let reviews = z.reviews().await;
        assert_eq!(reviews.len(), 1);
        let r = &reviews[0];
        assert_eq!(
            (r.outcome.as_str(), r.package_id.as_str()),
            ("approved", id.as_str())
        );
        assert_eq!(r.application_no, APP);
        assert_eq!(r.parcels.len(), 1);
        assert_eq!(
            (
                r.parcels[0].unit_code.as_str(),
                r.parcels[0].area_m2.as_str()
            ),
            (code, "5000.00")
        );
        // The parcel exists now, with its history; deciding again is refused.
        let history: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM int_parcel_history h JOIN int_parcels p ON p.id = h.parcel_id \
             WHERE p.parcel_code = '370781001001GB00050' AND h.package_id = $1 \
             AND h.surveyor_id = $2 AND h.action = 'approved'",
        )
        .bind(&id)
        .bind(&surveyor.id)
        .fetch_one(z.state.store.reader())
        .await
        .unwrap();
        assert_eq!(history, 1);
        assert!(matches!(
            packages::approve(&z.state, &surveyor, &id, &with(code)).await,
            Err(ReviewError::AlreadyDecided(_))
        ));
        // The index knows the new parcel: the same ground surveyed again overlaps it.
        let again = survey_message(
            "QZ2026000104",
            "370781",
            &pkg_id(12),
            rectangle_txt("D001", "示例地块", CLEAN, "0.5000"),
        );
        assert_eq!(z.import(&again).await, Some(Disposition::Imported));
        let mut conn = z.state.store.reader().acquire().await.unwrap();
        let p = packages::get(&mut conn, &z.state, "370781", &pkg_id(12))
            .await
            .unwrap()
            .unwrap();
        drop(conn);
        assert!(
            p.findings
                .iter()
                .any(|f| f.code == "overlap-existing" && f.message.contains("370781001001GB00050")),
            "{:?}",
            p.findings
        );
        // The same unit code cannot be given twice.
        assert!(matches!(
            packages::approve(&z.state, &surveyor, &pkg_id(12), &with(code)).await,
            Err(ReviewError::Refused(_))
        ));
        z.state.store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn errors_block_approval_and_a_rejection_carries_the_findings() {
    for db in ow_store::testing::all_backends().await {
        let z = open_seeded(&db.url).await;
        let id = pkg_id(21);
        let msg = survey_message(
            APP,
            "370781",
            &id,
            rectangle_txt("D001", "重叠地块", OVERLAPPING, "0.8000"),
        );
        assert_eq!(z.import(&msg).await, Some(Disposition::Imported));
        let surveyor = z.surveyor("qz-survey").await;
        let input = ApproveInput {
            unit_codes: vec![("D001".into(), "370781001001GB00060W00000000".into())],
            override_reason: None,
        };
        match packages::approve(&z.state, &surveyor, &id, &input).await {
            Err(ReviewError::Refused(lines)) => {
                assert!(lines.join("").contains("强制通过理由"), "{lines:?}")
            }
            other => panic!("{other:?}"),
        }
        // An override reason from a surveyor who is not a chief is not enough.
        let with_reason = ApproveInput {
            override_reason: Some("权属争议已解决".into()),
            ..input.clone()
        };
        assert!(matches!(
            packages::approve(&z.state, &surveyor, &id, &with_reason).await,
            Err(ReviewError::Refused(_))
        ));
        // A rejection needs a reason.
        assert!(matches!(
            packages::reject(&z.state, &surveyor, &id, "  ").await,
            Err(ReviewError::Refused(_))
        ));
        packages::reject(&z.state, &surveyor, &id, "与已登记宗地重叠，请核对界址点")
            .await
            .unwrap();
        let reviews = z.reviews().await;
        assert_eq!(reviews.len(), 1);
        let r = &reviews[0];
        assert_eq!(r.outcome, "rejected");
        assert!(r.parcels.is_empty());
        assert!(r.findings.iter().any(|f| f.code == "overlap-existing"));
        assert_eq!(r.reason.as_deref(), Some("与已登记宗地重叠，请核对界址点"));
        // A chief may override errors with a reason (on another package).
        let id2 = pkg_id(22);
        let msg = survey_message(
            "QZ2026000105",
            "370781",
            &id2,
            rectangle_txt("D001", "重叠地块", OVERLAPPING, "0.8000"),
        );
        assert_eq!(z.import(&msg).await, Some(Disposition::Imported));
        let chief = z.surveyor("qz-chief").await;
        packages::approve(&z.state, &chief, &id2, &with_reason)
            .await
            .unwrap();
        let reviews = z.reviews().await;
        let approved = reviews.iter().find(|r| r.package_id == id2).unwrap();
        assert_eq!(approved.outcome, "approved");
        assert_eq!(approved.reason.as_deref(), Some("权属争议已解决"));
        assert!(
            approved
                .findings
                .iter()
                .any(|f| f.code == "overlap-existing")
        );
        z.state.store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn claimed_neighbours_are_checked_for_gaps_and_buildings_are_kept() {
    for db in ow_store::testing::all_backends().await {
        let z = open_seeded(&db.url).await;
        // East of the demo parcel 370781001001GB00002 (x 632100–632180), sharing its edge.
        let id = pkg_id(31);
        let msg = survey_message(
            APP,
            "370781",
            &id,
            parcel_geojson(
                [632_180.0, 4_062_000.0, 80.0, 80.0],
                &["370781001001GB00002", "370781001001GB00099"],
            ),
        );
        assert_eq!(z.import(&msg).await, Some(Disposition::Imported));
        let mut conn = z.state.store.reader().acquire().await.unwrap();
        let p = packages::get(&mut conn, &z.state, "370781", &id)
            .await
            .unwrap()
            .unwrap();
        drop(conn);
        let codes: Vec<&str> = p.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, vec!["neighbour-unknown"], "{:?}", p.findings);
        assert_eq!(p.row.error_count, 0);
        // 0.3 m off the same edge: a gap.
        let msg = survey_message(
            "QZ2026000106",
            "370781",
            &pkg_id(32),
            parcel_geojson(
                [632_180.3, 4_062_000.0, 80.0, 80.0],
                &["370781001001GB00002"],
            ),
        );
        assert_eq!(z.import(&msg).await, Some(Disposition::Imported));
        let mut conn = z.state.store.reader().acquire().await.unwrap();
        let gap = packages::get(&mut conn, &z.state, "370781", &pkg_id(32))
            .await
            .unwrap()
            .unwrap();
        drop(conn);
        let f = gap
            .findings
            .iter()
            .find(|f| f.code == "gap-to-neighbour")
            .unwrap_or_else(|| panic!("{:?}", gap.findings));
        assert!(f.message.contains("0.30"), "{}", f.message);
        // Approving the first keeps its building on the new parcel.
        let surveyor = z.surveyor("qz-survey").await;
        packages::approve(
            &z.state,
            &surveyor,
            &id,
            &ApproveInput {
                unit_codes: vec![("D1".into(), "370781001001GB00003F00010001".into())],
                override_reason: None,
            },
        )
        .await
        .unwrap();
        let row: (String, String) = {
            use sqlx::Row;
            let r = sqlx::query(
                "SELECT b.number, b.area_m2 FROM int_buildings b JOIN int_parcels p \
                 ON p.id = b.parcel_id WHERE p.parcel_code = '370781001001GB00003'",
            )
            .fetch_one(z.state.store.reader())
            .await
            .unwrap();
            (r.get("number"), r.get("area_m2"))
        };
        assert_eq!(row, ("F1".to_owned(), "100.00".to_owned()));
        z.state.store.close().await;
        db.cleanup().await;
    }
}
