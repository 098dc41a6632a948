//! A confidential survey package travels only on offline media: the packer writes it into the
//! channel's media outbox, never into the gateway's, and sets it aside when there is no media
//! route rather than use the gateway. Ordinary messages of the same channel keep going by the
//! gateway, and both routes share the channel's sequence numbers.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{World, channel};
use ow_bundle::{Channel, Zone};
use ow_exchange::{
    Exchange, MaterialRef, Message, OutboundFile, RegisterLog, RegisterLogEntry, Route,
    SurveyPackage,
};
use ow_pii::PiiKeyring;
use ow_store::Store;

/// The extranet's exchange towards the intranet: a gateway outbox and, when `media`, a media
/// outbox for the same channel.
async fn open_extranet(
    world: &World,
    store: &Store,
    pii: &Arc<PiiKeyring>,
    media: bool,
) -> Exchange {
    ow_keys::generate_zone_keys(&world.keys, Zone::Intranet).unwrap();
    let down = Channel::new(Zone::Extranet, Zone::Intranet).unwrap();
    let trust = ow_keys::trust_from_key_dir(&world.keys, &[down, down.reverse()]).unwrap();
    std::fs::write(world.root.join("trust.toml"), trust.to_toml_string()).unwrap();
    let mut cfg = world.config(Zone::Extranet);
    cfg.outboxes = vec![(down, gateway_outbox(world))];
    cfg.media_outboxes = if media {
        vec![(down, media_outbox(world))]
    } else {
        Vec::new()
    };
    cfg.inboxes = vec![(down.reverse(), world.root.join("extranet/inbox/intranet"))];
    Exchange::open(cfg, store.clone(), pii.clone())
        .await
        .unwrap()
}

fn gateway_outbox(world: &World) -> PathBuf {
    world.root.join("extranet/outbox/intranet")
}

fn media_outbox(world: &World) -> PathBuf {
    world.root.join("extranet/media-outbox/intranet")
}

/// (kind, case id, sequence) of every bundle in `dir`.
fn bundles(dir: &Path) -> Vec<(String, Option<String>, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "owb"))
        .map(|p| {
            let file = std::fs::File::open(&p).unwrap();
            let h =
                ow_bundle::read_header(std::io::BufReader::new(file), &Default::default()).unwrap();
            let h = h.header();
            (h.kind.clone(), h.case_id.clone(), h.sequence)
        })
        .collect();
    found.sort_by_key(|b| b.2);
    found
}

fn package(world: &World, no: &str, confidential: bool) -> (Message, Vec<OutboundFile>) {
    let survey = world.root.join(format!("{no}.txt"));
    let text = "[属性描述]\n坐标系=2000国家大地坐标系\n[地块坐标]\n";
    std::fs::write(&survey, text).unwrap();
    let message = Message::SurveyPackage(SurveyPackage {
        application_no: no.into(),
        district_code: "370781".into(),
        package_id: uuid::Uuid::now_v7().to_string(),
        format: "boundary-txt".into(),
        survey: MaterialRef {
            item: "survey.txt".into(),
            checklist_code: "survey_package".into(),
            file_name: "survey.txt".into(),
            media_type: "text/plain".into(),
            size: text.len() as u64,
            blake3: blake3::hash(text.as_bytes()).to_hex().to_string(),
        },
        report: None,
        confidential,
        sent_at_ms: 1,
    });
    let files = vec![OutboundFile {
        item: "survey.txt".into(),
        media_type: "text/plain".into(),
        path: survey,
        sealed_context: None,
    }];
    (message, files)
}

fn register_log(seq: u64) -> Message {
    Message::RegisterLog(RegisterLog {
        district_code: "370781".into(),
        entries: vec![RegisterLogEntry {
            seq,
            unit_code: "370781001001GB00001F00010001".into(),
            registration_type: "100".into(),
            right_type: "4".into(),
            certificate_number: None,
            state: "current".into(),
            area_m2: Some("5000.00".into()),
            application_no: None,
            recorded_at_ms: 1,
        }],
    })
}

async fn queue(store: &Store, pii: &PiiKeyring, message: Message, files: Vec<OutboundFile>) {
    let mut tx = store.begin().await.unwrap();
    ow_exchange::enqueue(
        &mut tx,
        pii,
        &channel("extranet-to-intranet"),
        message,
        files,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_confidential_package_leaves_only_by_the_media_outbox() {
    for db in ow_store::testing::all_backends().await {
        let label = db.backend.as_str();
        let world = World::new();
        let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
        let store = db.open().await;
        let sender = open_extranet(&world, &store, &pii, true).await;

        let (open, open_files) = package(&world, "SQ-open", false);
        let (secret, secret_files) = package(&world, "SQ-secret", true);
        assert_eq!(open.route(), Route::Gateway);
        assert_eq!(secret.route(), Route::Media);
        queue(&store, &pii, open, open_files).await;
        queue(&store, &pii, secret, secret_files).await;
        queue(&store, &pii, register_log(1), vec![]).await;
        assert_eq!(sender.pack_pending().await.unwrap(), 3, "{label}");

        let by_gateway = bundles(&gateway_outbox(&world));
        let by_media = bundles(&media_outbox(&world));
        let kinds = |b: &[(String, Option<String>, u64)]| -> Vec<(String, Option<String>)> {
            b.iter().map(|(k, c, _)| (k.clone(), c.clone())).collect()
        };
        assert_eq!(
            kinds(&by_media),
            vec![("survey-package".to_string(), Some("SQ-secret".to_string()))],
            "{label}"
        );
        let mut gateway_kinds = kinds(&by_gateway);
        gateway_kinds.sort();
        assert_eq!(
            gateway_kinds,
            vec![
                ("register-log".to_string(), None),
                ("survey-package".to_string(), Some("SQ-open".to_string())),
            ],
            "{label}"
        );
        // One channel, one sequence: the two routes never reuse a number.
        let mut sequences: Vec<u64> = by_gateway.iter().chain(&by_media).map(|b| b.2).collect();
        sequences.sort();
        assert_eq!(sequences, vec![1, 2, 3], "{label}");
        sender.close();
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn without_a_media_route_a_confidential_package_is_set_aside_never_sent_by_the_gateway() {
    for db in ow_store::testing::all_backends().await {
        let label = db.backend.as_str();
        let world = World::new();
        let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
        let store = db.open().await;
        let sender = open_extranet(&world, &store, &pii, false).await;

        let (secret, files) = package(&world, "SQ-secret", true);
        queue(&store, &pii, secret, files).await;
        queue(&store, &pii, register_log(1), vec![]).await;
        // A row edited to take the gateway is refused by the packer all the same.
        let (edited, files) = package(&world, "SQ-edited", true);
        queue(&store, &pii, edited, files).await;
        sqlx::query("UPDATE exchange_outbox SET route = 'gateway' WHERE case_id = 'SQ-edited'")
            .execute(store.writer())
            .await
            .unwrap();
        assert_eq!(sender.pack_pending().await.unwrap(), 1, "{label}");

        let sent = bundles(&gateway_outbox(&world));
        assert_eq!(sent.len(), 1, "{label}: {sent:?}");
        assert_eq!(sent[0].0, "register-log", "{label}");
        let mut dead: Vec<(Option<String>, String, String)> = ow_exchange::dead_letters(&store)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.case_id, d.code, d.reason))
            .collect();
        dead.sort();
        assert_eq!(dead.len(), 2, "{label}: {dead:?}");
        assert_eq!(dead[0].0.as_deref(), Some("SQ-edited"));
        assert_eq!(dead[0].1, "route-mismatch", "{label}");
        assert_eq!(dead[1].0.as_deref(), Some("SQ-secret"));
        assert_eq!(dead[1].1, "no-outbox", "{label}");
        assert!(
            dead[1].2.contains("offline media"),
            "{label}: {}",
            dead[1].2
        );
        sender.close();
        store.close().await;
        db.cleanup().await;
    }
}
