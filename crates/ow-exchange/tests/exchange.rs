//! The exchange end to end between two zones, with the ferry's part (moving the bundle file from
//! one zone's outbox to the other's inbox) done by hand: queue → pack → carry → import, exactly
//! once, on every store backend.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Recorder, World, create_seen, queue, seen_rows, status};
use ow_bundle::Zone;
use ow_exchange::{Exchange, ImportReport, Message, OutboundFile};
use ow_pii::PiiKeyring;

#[tokio::test]
async fn messages_cross_exactly_once_on_every_backend() {
    for db in ow_store::testing::all_backends().await {
        let label = db.backend.as_str();
        let world = World::new();
        let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
        let sender_db = ow_store::testing::sqlite();
        let sender_store = sender_db.open().await;
        let receiver_store = db.open().await;
        create_seen(&receiver_store).await;
        let sender = Exchange::open(
            world.config(Zone::Extranet),
            sender_store.clone(),
            pii.clone(),
        )
        .await
        .unwrap();
        let receiver = Exchange::open(
            world.config(Zone::Internet),
            receiver_store.clone(),
            pii.clone(),
        )
        .await
        .unwrap();
        let handler = Recorder::default();

        // A message with a file, and one queued in a transaction that rolls back.
        let pdf = world.root.join("m01.pdf");
        std::fs::write(&pdf, b"%PDF-1.7\n%test\n").unwrap();
        queue(
            &sender_store,
            &pii,
            status("SQ-1"),
            vec![OutboundFile {
                item: "m01.pdf".into(),
                media_type: "application/pdf".into(),
                path: pdf,
                sealed_context: None,
            }],
        )
        .await;
        {
            let mut tx = sender_store.begin().await.unwrap();
            ow_exchange::enqueue(
                &mut tx,
                &pii,
                &common::channel("extranet-to-internet"),
                status("SQ-rolled-back"),
                vec![],
            )
            .await
            .unwrap();
            tx.rollback().await.unwrap();
        }
        assert_eq!(
            ow_exchange::pending_count(&sender_store).await.unwrap(),
            1,
            "{label}"
        );
        let sealed_before_pack: Option<String> =
            sqlx::query_scalar("SELECT envelope_sealed FROM exchange_outbox")
                .fetch_one(sender_store.reader())
                .await
                .unwrap();
        assert!(
            sealed_before_pack
                .as_deref()
                .is_some_and(|s| s.starts_with("v1.")),
            "{label}"
        );
        assert_eq!(sender.pack_pending().await.unwrap(), 1, "{label}");
        assert_eq!(
            ow_exchange::pending_count(&sender_store).await.unwrap(),
            0,
            "{label}"
        );
        let carried = world.carry(Zone::Extranet, Zone::Internet).await;
        assert_eq!(carried.len(), 1, "{label}");
        let copy = world.root.join("copy.owb");
        std::fs::copy(&carried[0], &copy).unwrap();

        let report = receiver.import_pending(&handler).await.unwrap();
        assert_eq!(report.imported, 1, "{label}: {report:?}");
        assert_eq!(
            handler.seen.lock().unwrap().clone(),
            vec![("SQ-1".to_string(), 1)]
        );
        assert!(
            !carried[0].exists(),
            "{label}: imported bundle left in the inbox"
        );

        // The same bundle again (a replayed file): nothing happens twice.
        std::fs::copy(&copy, &carried[0]).unwrap();
        let report = receiver.import_pending(&handler).await.unwrap();
        assert_eq!(report.duplicates, 1, "{label}: {report:?}");
        assert_eq!(seen_rows(&receiver_store).await, 1, "{label}");

        // The packer crashed after writing but before marking: the message is packed again
        // under a new bundle id, and the receiver drops it by message id.
        sqlx::query(
            "UPDATE exchange_outbox SET packed_at_ms = NULL, bundle_id = NULL, envelope_sealed = $1",
        )
        .bind(&sealed_before_pack)
        .execute(sender_store.writer())
        .await
        .unwrap();
        assert_eq!(sender.pack_pending().await.unwrap(), 1, "{label}");
        world.carry(Zone::Extranet, Zone::Internet).await;
        let report = receiver.import_pending(&handler).await.unwrap();
        assert_eq!(report.duplicates, 1, "{label}: {report:?}");
        assert_eq!(seen_rows(&receiver_store).await, 1, "{label}");

        // A refused message is recorded with its reason and not retried; its side effects
        // commit with it.
        queue(&sender_store, &pii, status("refuse-me"), vec![]).await;
        // A transient failure leaves the bundle for the next round.
        queue(&sender_store, &pii, status("fail-once"), vec![]).await;
        assert_eq!(sender.pack_pending().await.unwrap(), 2, "{label}");
        world.carry(Zone::Extranet, Zone::Internet).await;
        let report = receiver.import_pending(&handler).await.unwrap();
        assert_eq!(
            report,
            ImportReport {
                refused: 1,
                failed: 1,
                ..Default::default()
            },
            "{label}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let report = receiver.import_pending(&handler).await.unwrap();
        assert_eq!(report.imported, 1, "{label}: {report:?}");
        let reason: Option<String> =
            sqlx::query_scalar("SELECT reason FROM exchange_imported WHERE outcome = 'refused'")
                .fetch_one(receiver_store.reader())
                .await
                .unwrap();
        assert_eq!(reason.as_deref(), Some("不动产单元不属于本辖区"), "{label}");
        assert_eq!(seen_rows(&receiver_store).await, 3, "{label}");

        // A bundle altered after landing is set aside with a reason, and imports nothing.
        queue(&sender_store, &pii, status("SQ-2"), vec![]).await;
        sender.pack_pending().await.unwrap();
        let carried = world.carry(Zone::Extranet, Zone::Internet).await;
        let mut bytes = std::fs::read(&carried[0]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&carried[0], bytes).unwrap();
        let report = receiver.import_pending(&handler).await.unwrap();
        assert_eq!(report.rejected, 1, "{label}: {report:?}");
        let rejected = world.inbox(Zone::Internet).join(".rejected");
        let names: Vec<String> = std::fs::read_dir(&rejected)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with(".reason")),
            "{label}: {names:?}"
        );
        assert_eq!(seen_rows(&receiver_store).await, 3, "{label}");

        sender.close();
        receiver.close();
        // Both exchange logs verify.
        for zone in [Zone::Extranet, Zone::Internet] {
            let vk =
                ow_keys::load_verifying_key(&world.keys.join(format!("{zone}.sign.pub"))).unwrap();
            ow_ferrylog::verify_log(
                world.root.join(format!("{zone}/exchange/log")),
                &vk,
                &format!("onewindow-{zone}"),
            )
            .unwrap();
        }
        sender_store.close().await;
        receiver_store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn queued_messages_are_sealed_at_rest() {
    let world = World::new();
    let db = ow_store::testing::sqlite();
    let store = db.open().await;
    let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
    let _exchange = Exchange::open(world.config(Zone::Extranet), store.clone(), pii.clone())
        .await
        .unwrap();
    let mut message = status("SQ-9");
    if let Message::ApplicationStatus(s) = &mut message {
        s.reason = Some("身份证号码 11010519491231002X 与登记簿不一致".into());
    }
    queue(&store, &pii, message, vec![]).await;
    store.close().await;
    let mut raw = std::fs::read(&db.url).unwrap();
    if let Ok(wal) = std::fs::read(format!("{}-wal", db.url)) {
        raw.extend(wal);
    }
    let needle = b"11010519491231002X";
    assert!(!raw.windows(needle.len()).any(|w| w == needle));
}
