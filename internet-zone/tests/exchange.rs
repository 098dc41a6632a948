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
            landed_state: root.join("extranet/ferry/ferry-state.db"),
            signing_key_file: keys.join("extranet.sign.secret"),
            encryption_key_file: keys.join("extranet.enc.secret"),
            trust_file: root.join("trust.toml"),
            outboxes: vec![(out, root.join("extranet/outbox"))],
            media_outboxes: Vec::new(),
            inboxes: vec![(inb, root.join("extranet/inbox"))],
            poll_interval: Duration::from_millis(100),
            retry: ow_exchange::RetryPolicy::default(),
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
    // The ferry's job: record the bundle as landed, and move it into the portal's inbox.
    let inbox = root.join("internet/inbox");
    carry(&root, &inbox).await;
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

    // A validly signed status the contract forbids (a control character in its reason, as a
    // faulty sender could write): the portal sets it aside, takes the next one, and the citizen
    // sees on the timeline that a message was held up, and what to do.
    let mut bad = ApplicationStatus {
        application_no: no.clone(),
        status: "reviewed".into(),
        reason: Some("审核\u{7}通过".into()),
        requested_materials: vec![],
        changed_at_ms: ow_store::now_ms(),
        received_message_id: None,
    };
    pack_raw(&root, &keys, Message::ApplicationStatus(bad.clone())).await;
    bad.reason = None;
    bad.status = "recorded".into();
    bad.changed_at_ms = ow_store::now_ms() + 1;
    pack_raw(&root, &keys, Message::ApplicationStatus(bad)).await;
    carry(&root, &inbox).await;
    let mut waited = 0;
    loop {
        let (_, _, html) = page(&c, &p.url(&format!("/applications/{no}"))).await;
        let recorded = p
            .count("SELECT COUNT(*) FROM inet_timeline WHERE status = 'recorded'")
            .await;
        if html.contains("传递暂停") && recorded == 1 {
            assert!(html.contains("无法识别的字符"), "{html}");
            break;
        }
        waited += 1;
        assert!(waited < 100, "set-aside status not shown: {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        p.count("SELECT COUNT(*) FROM exchange_dead_letters WHERE code = 'control-character'")
            .await,
        1
    );
    p.stop().await;
}

/// Packs `message` on the extranet's channel with the extranet's keys, without `enqueue`'s
/// checks (what a faulty sender could do).
async fn pack_raw(root: &Path, keys: &Path, message: Message) {
    let dir = root.join(format!("raw-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let kind = message.kind().to_owned();
    let path = dir.join("message.json");
    std::fs::write(
        &path,
        serde_json::to_vec(&ow_exchange::Envelope::new(message, ow_store::now_ms())).unwrap(),
    )
    .unwrap();
    let state = ow_ferry::state::FerryState::open(&root.join("extranet/ferry/ferry-state.db"))
        .await
        .unwrap();
    ow_ferry::pack::pack_into_outbox(
        &state,
        &ow_keys::load_signing_key(&keys.join("extranet.sign.secret")).unwrap(),
        &ow_keys::load_trust(&root.join("trust.toml")).unwrap(),
        &root.join("extranet/outbox"),
        &ow_ferry::pack::PackRequest {
            channel: "extranet-to-internet".parse().unwrap(),
            kind,
            case_id: None,
            valid_for: chrono::Duration::days(1),
            encrypt: true,
            items: vec![ow_ferry::pack::PackItem {
                name: "message.json".into(),
                media_type: "application/json".into(),
                path,
                open: None,
            }],
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    state.close().await;
}

/// What the portal's receiving ferry agent does: records each bundle of the extranet's outbox as
/// landed in its state database, then moves it into the inbox.
async fn carry(root: &Path, inbox: &Path) {
    std::fs::create_dir_all(inbox).unwrap();
    let state = ow_ferry::state::FerryState::open(&root.join("internet/ferry/ferry-state.db"))
        .await
        .unwrap();
    let mut found = bundles(&root.join("extranet/outbox"));
    found.sort();
    for b in found {
        let header = ow_bundle::read_header(
            std::io::BufReader::new(std::fs::File::open(&b).unwrap()),
            &Default::default(),
        )
        .unwrap();
        let name = b.file_name().unwrap().to_string_lossy().into_owned();
        state
            .record_landed(&[ow_ferry::state::Landed {
                channel: header.header().channel.to_string(),
                sequence: header.header().sequence,
                bundle_id: header.header().bundle_id.clone(),
                digest: header.digest().to_hex(),
                prev_digest: header.header().prev_digest.map(|d| d.to_hex()),
                file_name: name.clone(),
                bytes: std::fs::metadata(&b).unwrap().len(),
                landed_at: chrono::Utc::now(),
            }])
            .await
            .unwrap();
        std::fs::rename(&b, inbox.join(name)).unwrap();
    }
    state.close().await;
}
