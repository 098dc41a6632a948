//! The zone's exchange end to end, with the ferry's part done by hand: the extranet queues a
//! survey package (its file a bundle item) and a register log; the bundles land in the
//! intranet's inbox; the intranet imports them; the surveyor's approval is packed into a
//! `survey-review` bundle in the outbox that the ferry exports on offline media.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use ow_bundle::{Channel, Zone};
use ow_exchange::{
    Exchange, ExchangeConfig, MaterialRef, Message, OutboundFile, RegisterLog, RegisterLogEntry,
    RetryPolicy, SurveyPackage,
};
use ow_ferry::state::{FerryState, Landed};
use ow_intranet::packages::{self, ApproveInput};
use ow_intranet::{AppState, Mode};

fn bundles_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.ends_with(".owb") && !n.starts_with('.')
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Moves the bundles of `from` into `inbox` and records them as landed in `state`.
async fn carry(from: &Path, inbox: &Path, state: &Path) -> usize {
    std::fs::create_dir_all(inbox).unwrap();
    let ferry = FerryState::open(state).await.unwrap();
    let mut rows = Vec::new();
    for path in bundles_in(from) {
        let dest = inbox.join(path.file_name().unwrap());
        std::fs::rename(&path, &dest).unwrap();
        let header = ow_bundle::read_header(
            std::io::BufReader::new(std::fs::File::open(&dest).unwrap()),
            &Default::default(),
        )
        .unwrap();
        rows.push(Landed {
            channel: header.header().channel.to_string(),
            sequence: header.header().sequence,
            bundle_id: header.header().bundle_id.clone(),
            digest: header.digest().to_hex(),
            prev_digest: header.header().prev_digest.map(|d| d.to_hex()),
            file_name: dest.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::metadata(&dest).unwrap().len(),
            landed_at: chrono::Utc::now(),
        });
    }
    let n = rows.len();
    ferry.record_landed(&rows).await.unwrap();
    ferry.close().await;
    n
}

#[tokio::test]
async fn packages_and_logs_arrive_and_the_review_leaves_for_offline_media() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The intranet's settings make its keys; the extranet's keys beside them; one trust file.
    let mut settings = settings_in(root, "");
    let keys = root.join("keys");
    ow_keys::generate_zone_keys(&keys, Zone::Extranet).unwrap();
    let down = Channel::new(Zone::Extranet, Zone::Intranet).unwrap();
    let trust = ow_keys::trust_from_key_dir(&keys, &[down, down.reverse()]).unwrap();
    std::fs::write(root.join("trust.toml"), trust.to_toml_string()).unwrap();
    settings.exchange.trust_file = root.join("trust.toml");
    settings.exchange.packer_state = root.join("intranet-ferry/ferry-state.db");
    settings.exchange.landed_state = settings.exchange.packer_state.clone();
    let intranet_state_db = settings.exchange.packer_state.clone();
    let intranet_outbox = settings.exchange.outbox.clone();
    let intranet_inbox = settings.exchange.inbox.clone();
    let state = AppState::open(settings, Mode::Serve).await.unwrap();
    ow_intranet::seed::seed_demo(&state).await.unwrap();

    // The extranet's side.
    let ext_db = ow_store::testing::sqlite();
    let ext_store = ext_db.open().await;
    let ext_pii = Arc::new(ow_pii::PiiKeyring::ephemeral().unwrap());
    let ext = Exchange::open(
        ExchangeConfig {
            zone: Zone::Extranet,
            work_dir: root.join("extranet/exchange"),
            packer_state: root.join("extranet/ferry-state.db"),
            landed_state: root.join("extranet/ferry-state.db"),
            signing_key_file: keys.join("extranet.sign.secret"),
            encryption_key_file: keys.join("extranet.enc.secret"),
            trust_file: root.join("trust.toml"),
            outboxes: vec![(down, root.join("extranet/outbox"))],
            media_outboxes: Vec::new(),
            inboxes: vec![(down.reverse(), root.join("extranet/inbox"))],
            poll_interval: std::time::Duration::from_millis(50),
            retry: RetryPolicy::default(),
        },
        ext_store.clone(),
        ext_pii.clone(),
    )
    .await
    .unwrap();
    let survey = rectangle_txt("D001", "示例地块", CLEAN, "0.5000");
    let survey_path = root.join("survey.txt");
    std::fs::write(&survey_path, &survey).unwrap();
    let package_id = "0190f3c2-0000-7000-8000-000000000041";
    let mut tx = ext_store.begin().await.unwrap();
    ow_exchange::enqueue(
        &mut tx,
        &ext_pii,
        &down,
        Message::SurveyPackage(SurveyPackage {
            application_no: "QZ2026000301".into(),
            district_code: "370781".into(),
            package_id: package_id.into(),
            format: "boundary-txt".into(),
            survey: MaterialRef {
                item: "survey.txt".into(),
                checklist_code: "survey_package".into(),
                file_name: "成果.txt".into(),
                media_type: "text/plain".into(),
                size: survey.len() as u64,
                blake3: blake3::hash(&survey).to_hex().to_string(),
            },
            report: None,
            confidential: false,
            sent_at_ms: 1,
        }),
        vec![OutboundFile {
            item: "survey.txt".into(),
            media_type: "text/plain".into(),
            path: survey_path,
            sealed_context: None,
        }],
    )
    .await
    .unwrap();
    ow_exchange::enqueue(
        &mut tx,
        &ext_pii,
        &down,
        Message::RegisterLog(RegisterLog {
            district_code: "370781".into(),
            entries: vec![RegisterLogEntry {
                seq: 1,
                unit_code: "370781001001GB00001F00010101".into(),
                registration_type: "200".into(),
                right_type: "4".into(),
                certificate_number: None,
                state: "current".into(),
                area_m2: Some("89.50".into()),
                application_no: None,
                recorded_at_ms: 1,
            }],
        }),
        Vec::new(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ext.pack_pending().await.unwrap(), 2);
    assert_eq!(
        carry(
            &root.join("extranet/outbox"),
            &intranet_inbox,
            &intranet_state_db
        )
        .await,
        2
    );

    // The intranet imports both.
    let exchange = state.exchange.clone().unwrap();
    let importer = ow_intranet::import::Importer::new(state.clone());
    let report = exchange.import_pending(&importer).await.unwrap();
    assert_eq!(report.imported, 2, "{report:?}");
    assert_eq!(
        ow_intranet::register::applied_up_to(&state.store, "370781")
            .await
            .unwrap(),
        1
    );
    let surveyor = ow_intranet::surveyors::find_by_username(&state.store, "qz-survey")
        .await
        .unwrap()
        .unwrap();
    let decided = packages::approve(
        &state,
        &surveyor,
        package_id,
        &ApproveInput {
            unit_codes: vec![("D001".into(), "370781001001GB00080W00000000".into())],
            override_reason: None,
        },
    )
    .await
    .unwrap();
    state.after_decision(&decided);
    assert_eq!(exchange.pack_pending().await.unwrap(), 1);
    let out = bundles_in(&intranet_outbox);
    assert_eq!(out.len(), 1);
    let header = ow_bundle::read_header(
        std::io::BufReader::new(std::fs::File::open(&out[0]).unwrap()),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(header.header().kind, "survey-review");
    assert_eq!(header.header().channel, down.reverse());
    // The survey file is kept sealed only: its text is nowhere in the data folder in clear.
    for path in ow_pii::scan::files_under(&root.join("data")) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(12).any(|w| w == "示例地块".as_bytes()),
            "{} holds the parcel name in clear",
            path.display()
        );
    }
    exchange.close();
    state.store.close().await;
}
