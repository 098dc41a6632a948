//! The store on both backends (SQLite always, PostgreSQL when OW_TEST_POSTGRES_URL is set):
//! seeding, import, the whole workflow through the library, certificate numbering under
//! concurrency and the uniqueness of numbers.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ow_domain::CertificateKind;
use ow_extranet::certificates;
use ow_extranet::exchange::Disposition;
use ow_extranet::import::Importer;
use ow_extranet::workflow::{self, Action, ActionError, ActionInput};
use ow_extranet::{AppState, Mode};

async fn staff(state: &AppState, username: &str) -> ow_extranet::staff::StaffMember {
    ow_extranet::staff::find_by_username(&state.store, username)
        .await
        .unwrap()
        .unwrap()
}

/// The input of a step with the opinion the registrar types for it.
fn opinion(action: Action) -> ActionInput {
    ActionInput {
        opinion: Some(format!("{action:?}：材料齐全，同意。")),
        ..ActionInput::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_and_numbering_on_every_backend() {
    let mut seen = Vec::new();
    for db in ow_store::testing::all_backends().await {
        let backend = db.backend.as_str();
        seen.push(backend);
        let dir = tempfile::tempdir().unwrap();
        let url = if backend == "sqlite" {
            String::new()
        } else {
            db.url.clone()
        };
        let state = AppState::open(settings_in(dir.path(), &url), Mode::Offline)
            .await
            .unwrap();
        let seed = ow_extranet::seed::seed_demo(&state).await.unwrap();
        // Seeding again changes nothing and shows no credentials.
        let again = ow_extranet::seed::seed_demo(&state).await.unwrap();
        assert!(
            again
                .staff
                .iter()
                .all(|s| !s.created && s.password.is_none())
        );
        assert_eq!(
            again.units[0].certificate_number, seed.units[0].certificate_number,
            "{backend}"
        );

        let unit = &seed.units[0];
        let msg = application(
            "B1",
            "370781",
            &unit.unit_code,
            vec![party(
                &unit.holders[0].name,
                &unit.holders[0].id_number,
                "1/1",
            )],
            vec![party(
                &seed.demo_buyers[0].name,
                &seed.demo_buyers[0].id_number,
                "1/1",
            )],
        );
        let handler = Importer::new(state.clone());
        let d = ow_extranet::exchange::import_message(&state.store, &handler, &msg)
            .await
            .unwrap();
        assert_eq!(d, Some(Disposition::Imported), "{backend}");
        assert_eq!(
            ow_extranet::exchange::import_message(&state.store, &handler, &msg)
                .await
                .unwrap(),
            None,
            "{backend}: exactly once"
        );

        let wrong = staff(&state, "qz-accept").await;
        let err = workflow::perform(&state, &wrong, "B1", Action::Review, ActionInput::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ActionError::Transition(_)),
            "{backend}: {err}"
        );
        let other = staff(&state, "wc-accept").await;
        let err = workflow::perform(&state, &other, "B1", Action::Accept, ActionInput::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ActionError::NotFound), "{backend}: {err}");
        // The queue of a stage, with the applicant and the address, on this backend.
        let mut conn = state.store.reader().acquire().await.unwrap();
        let queued = ow_extranet::cases::queue(
            &mut conn,
            "370781",
            &[
                ow_domain::CaseStatus::Submitted,
                ow_domain::CaseStatus::Accepted,
            ],
        )
        .await
        .unwrap();
        assert_eq!(queued.len(), 1, "{backend}");
        assert_eq!(queued[0].accepted_at_ms, None, "{backend}");
        let extras = ow_extranet::cases::queue_extras(&mut conn, &state.pii, &queued)
            .await
            .unwrap();
        assert_eq!(
            extras[0].applicants,
            [seed.demo_buyers[0].name.clone()],
            "{backend}"
        );
        assert_eq!(
            extras[0].location.as_deref(),
            Some(unit.location.as_str()),
            "{backend}"
        );
        drop(conn);
        // 审核 needs 审核意见.
        let s = staff(&state, "qz-accept").await;
        workflow::perform(&state, &s, "B1", Action::Accept, ActionInput::default())
            .await
            .unwrap();
        let s = staff(&state, "qz-review").await;
        let err = workflow::perform(&state, &s, "B1", Action::Review, ActionInput::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ActionError::OpinionRequired {
                    label: "审核意见"
                }
            ),
            "{backend}: {err}"
        );
        for (who, action) in [
            ("qz-review", Action::Review),
            ("qz-record", Action::Record),
            ("qz-cert", Action::PrepareCertificate),
            ("qz-cert", Action::Issue),
        ] {
            let s = staff(&state, who).await;
            workflow::perform(&state, &s, "B1", action, opinion(action))
                .await
                .unwrap_or_else(|e| panic!("{backend} {who} {action:?}: {e}"));
        }
        let mut conn = state.store.reader().acquire().await.unwrap();
        let case = ow_extranet::cases::get(&mut conn, "370781", "B1")
            .await
            .unwrap()
            .unwrap();
        assert!(case.accepted_at_ms.is_some(), "{backend}");
        // Opinions are stored sealed with their events and open again.
        let events = ow_extranet::cases::events(&mut conn, &state.pii, "B1")
            .await
            .unwrap();
        let review = events.iter().find(|e| e.action == "case.review").unwrap();
        let sealed = review.opinion_sealed.clone().unwrap();
        assert!(!sealed.contains("材料齐全"), "{backend}: sealed at rest");
        assert_eq!(
            ow_extranet::cases::open_opinion(&state.pii, review)
                .unwrap()
                .as_deref(),
            Some("Review：材料齐全，同意。"),
            "{backend}"
        );
        let accept = events.iter().find(|e| e.action == "case.accept").unwrap();
        assert_eq!(accept.opinion_sealed, None, "{backend}");
        let number = case.certificate_number.unwrap();
        assert!(
            number.ends_with("青州市不动产权第0000001号"),
            "{backend}: {number}"
        );
        let certs = certificates::by_unit(&mut conn, &unit.unit_code)
            .await
            .unwrap();
        assert_eq!(certs.iter().filter(|c| c.status == "valid").count(), 1);
        assert_eq!(certs.iter().filter(|c| c.status == "cancelled").count(), 1);
        drop(conn);

        // Concurrent allocation: distinct, contiguous numbers.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = state.store.begin().await.unwrap();
                let district = certificates::district(&mut tx, "370702")
                    .await
                    .unwrap()
                    .unwrap();
                let n = certificates::allocate_number(
                    &mut tx,
                    &district,
                    2031,
                    CertificateKind::RightsCertificate,
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
                n.sequence()
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, (1..=8).collect::<Vec<_>>(), "{backend}");

        // A number is never stored twice.
        let dup = sqlx::query(
            "INSERT INTO ext_certificates (certificate_number, district_code, year, kind, \
             sequence, unit_code, right_id, status, holders_masked, location, code_digest, \
             code_sealed, signed_sealed, issued_at_ms) SELECT 'X', district_code, year, kind, \
             sequence, unit_code, right_id, status, holders_masked, location, code_digest, \
             code_sealed, signed_sealed, issued_at_ms FROM ext_certificates \
             WHERE certificate_number = $1",
        )
        .bind(&number)
        .execute(state.store.writer())
        .await;
        assert!(
            dup.is_err(),
            "{backend}: same district/year/sequence refused"
        );

        // The rules on the register: the seized unit.
        let seized = seed.seized_unit_codes[0].clone();
        let holder = &seed
            .units
            .iter()
            .find(|u| u.unit_code == seized)
            .unwrap()
            .holders[0];
        let msg = application(
            "B2",
            "370781",
            &seized,
            vec![party(&holder.name, &holder.id_number, "1/1")],
            vec![party(
                &seed.demo_buyers[1].name,
                &seed.demo_buyers[1].id_number,
                "1/1",
            )],
        );
        ow_extranet::exchange::import_message(&state.store, &handler, &msg)
            .await
            .unwrap();
        for (who, action) in [("qz-accept", Action::Accept), ("qz-review", Action::Review)] {
            let s = staff(&state, who).await;
            workflow::perform(&state, &s, "B2", action, opinion(action))
                .await
                .unwrap();
        }
        let s = staff(&state, "qz-record").await;
        let err = workflow::perform(&state, &s, "B2", Action::Record, opinion(Action::Record))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ActionError::Rules(v) if v[0].rule == "not_seized"),
            "{backend}: {err}"
        );
        assert!(err.to_string().contains("查封"));

        state.audit.close().await.unwrap();
        state.store.close().await;
        db.cleanup().await;
    }
    if std::env::var("OW_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        assert_eq!(seen, ["sqlite", "postgres"]);
    }
}
