//! The portal with its exchange loop running: a submission leaves as a signed bundle in the
//! outbox folder, and a status bundle from the extranet, dropped in the inbox, reaches the
//! citizen's timeline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ow_bundle::{Channel, Zone};
use ow_exchange::{ApplicationStatus, Exchange, ExchangeConfig, Message};
use reqwest::StatusCode;

fn bundles(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy().into_owned();
                    n.ends_with(".owb") && !n.starts_with('.')
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn submissions_leave_as_bundles_and_status_bundles_come_back() {
    let world = tempfile::tempdir().unwrap();
    let root = world.path().to_path_buf();
    let keys = root.join("zone-keys");
    std::fs::create_dir_all(&keys).unwrap();
    ow_keys::generate_zone_keys(&keys, Zone::Internet).unwrap();
    ow_keys::generate_zone_keys(&keys, Zone::Extranet).unwrap();
    let up = Channel::new(Zone::Internet, Zone::Extranet).unwrap();
    let trust = ow_keys::trust_from_key_dir(&keys, &[up, up.reverse()]).unwrap();
    std::fs::write(root.join("trust.toml"), trust.to_toml_string()).unwrap();
    let (r, k) = (root.clone(), keys.clone());
    let p = start_with(None, move |s| {
        s.exchange.enabled = true;
        s.exchange.signing_key_file = k.join("internet.sign.secret");
        s.exchange.encryption_key_file = k.join("internet.enc.secret");
        s.exchange.trust_file = r.join("trust.toml");
        s.exchange.outbox_dir = r.join("internet/outbox");
        s.exchange.inbox_dir = r.join("internet/inbox");
        s.exchange.packer_state = r.join("internet/ferry/ferry-state.db");
        s.exchange.work_dir = r.join("internet/exchange");
        s.exchange.poll_ms = 100;
    })
    .await;
    let c = browser();
    register(&p, &c, "张小三", "440524188001010014", "13812345678").await;
    login(&p, &c, "13812345678", PASSWORD).await;
    let no = apply(
        &p,
        &c,
        ("王大山", "11010519491231002X"),
        [
            ("张小三", "440524188001010014"),
            ("李小四", "110101199003074477"),
        ],
    )
    .await;

    // The loop packs the queued submission into a signed bundle in the outbox.
    let outbox = root.join("internet/outbox");
    let mut waited = 0;
    while bundles(&outbox).is_empty() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(bundles(&outbox).len(), 1, "one bundle for the submission");
    let mut waited = 0;
    while p
        .count("SELECT COUNT(*) FROM exchange_outbox WHERE packed_at_ms IS NULL")
        .await
        != 0
    {
        waited += 1;
        assert!(waited < 100, "the outbox row is never marked packed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The extranet answers with a status, through its own exchange.
    let ext_store = ow_store::Store::open(
        &root.join("extranet.db").to_string_lossy(),
        &ow_store::OpenOptions::default(),
    )
    .await
    .unwrap();
    ow_exchange::migrate(&ext_store).await.unwrap();
    let ext_pii = Arc::new(ow_pii::PiiKeyring::ephemeral().unwrap());
    let out: Channel = "extranet-to-internet".parse().unwrap();
    let inb: Channel = "internet-to-extranet".parse().unwrap();
    let ext = Exchange::open(
        ExchangeConfig {
            zone: Zone::Extranet,
            work_dir: root.join("extranet/exchange"),
            packer_state: root.join("extranet/ferry/ferry-state.db"),
            signing_key_file: keys.join("extranet.sign.secret"),
            encryption_key_file: keys.join("extranet.enc.secret"),
            trust_file: root.join("trust.toml"),
            outboxes: vec![(out, root.join("extranet/outbox"))],
            inboxes: vec![(inb, root.join("extranet/inbox"))],
            poll_interval: Duration::from_millis(100),
        },
        ext_store.clone(),
        ext_pii.clone(),
    )
    .await
    .unwrap();
    let mut tx = ext_store.begin().await.unwrap();
    ow_exchange::enqueue(
        &mut tx,
        &ext_pii,
        &out,
        Message::ApplicationStatus(ApplicationStatus {
            application_no: no.clone(),
            status: "accepted".into(),
            reason: None,
            requested_materials: vec![],
            changed_at_ms: ow_store::now_ms(),
            received_message_id: None,
        }),
        vec![],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ext.pack_pending().await.unwrap(), 1);
    // The ferry's job: move the bundle into the portal's inbox.
    let inbox = root.join("internet/inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    for b in bundles(&root.join("extranet/outbox")) {
        std::fs::rename(&b, inbox.join(b.file_name().unwrap())).unwrap();
    }
    let mut waited = 0;
    loop {
        let (status, _, html) = page(&c, &p.url(&format!("/applications/{no}"))).await;
        assert_eq!(status, StatusCode::OK);
        if p.count("SELECT COUNT(*) FROM inet_timeline WHERE status = 'accepted'")
            .await
            == 1
        {
            assert!(html.contains("受理"));
            break;
        }
        waited += 1;
        assert!(waited < 100, "status bundle not imported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(p.count("SELECT COUNT(*) FROM exchange_imported").await, 1);
    p.stop().await;
}
