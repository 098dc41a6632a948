//! The exchange end to end between two zones, with the ferry's part (moving the bundle file from
//! one zone's outbox to the other's inbox) done by hand: queue → pack → carry → import, exactly
//! once, on every store backend.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ow_bundle::{Channel, Zone};
use ow_exchange::{
    ApplicationStatus, Disposition, Exchange, ExchangeConfig, ExchangeError, ImportHandler,
    ImportReport, InboundMessage, Message, OutboundFile,
};
use ow_pii::PiiKeyring;
use ow_store::Store;
use sqlx::{Any, Transaction};

fn channel(text: &str) -> Channel {
    text.parse().unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
    keys: PathBuf,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let keys = root.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        ow_keys::generate_zone_keys(&keys, Zone::Internet).unwrap();
        ow_keys::generate_zone_keys(&keys, Zone::Extranet).unwrap();
        let up = Channel::new(Zone::Internet, Zone::Extranet).unwrap();
        let trust = ow_keys::trust_from_key_dir(&keys, &[up, up.reverse()]).unwrap();
        std::fs::write(root.join("trust.toml"), trust.to_toml_string()).unwrap();
        World {
            _dir: dir,
            root,
            keys,
        }
    }

    fn config(&self, zone: Zone) -> ExchangeConfig {
        let (out_channel, in_channel) = match zone {
            Zone::Internet => ("internet-to-extranet", "extranet-to-internet"),
            _ => ("extranet-to-internet", "internet-to-extranet"),
        };
        ExchangeConfig {
            zone,
            work_dir: self.root.join(format!("{zone}/exchange")),
            packer_state: self.root.join(format!("{zone}/ferry/ferry-state.db")),
            signing_key_file: self.keys.join(format!("{zone}.sign.secret")),
            encryption_key_file: self.keys.join(format!("{zone}.enc.secret")),
            trust_file: self.root.join("trust.toml"),
            outboxes: vec![(channel(out_channel), self.outbox(zone))],
            inboxes: vec![(channel(in_channel), self.inbox(zone))],
            poll_interval: Duration::from_millis(50),
        }
    }

    fn outbox(&self, zone: Zone) -> PathBuf {
        self.root.join(format!("{zone}/outbox"))
    }

    fn inbox(&self, zone: Zone) -> PathBuf {
        self.root.join(format!("{zone}/inbox"))
    }

    /// What the ferry agents do: move every bundle from one zone's outbox to the other's inbox.
    fn carry(&self, from: Zone, to: Zone) -> Vec<PathBuf> {
        let inbox = self.inbox(to);
        std::fs::create_dir_all(&inbox).unwrap();
        let mut moved = Vec::new();
        for entry in std::fs::read_dir(self.outbox(from)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".owb") && !name.starts_with('.') {
                let dest = inbox.join(&name);
                std::fs::rename(entry.path(), &dest).unwrap();
                moved.push(dest);
            }
        }
        moved
    }
}

/// Records what it imported; refuses a status without reason for `refuse-me`; fails once for
/// `fail-once`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, usize)>>,
    failed_once: Mutex<bool>,
}

impl ImportHandler for Recorder {
    async fn import(
        &self,
        tx: &mut Transaction<'static, Any>,
        message: &InboundMessage,
    ) -> Result<Disposition, ExchangeError> {
        let no = message
            .envelope
            .message
            .application_no()
            .unwrap_or_default()
            .to_string();
        if no == "fail-once" {
            let mut failed = self.failed_once.lock().unwrap();
            if !*failed {
                *failed = true;
                return Err(ExchangeError::Handler("simulated outage".into()));
            }
        }
        // A side effect inside the transaction, to show it commits with the import record.
        sqlx::query("INSERT INTO seen (application_no) VALUES ($1)")
            .bind(&no)
            .execute(&mut **tx)
            .await?;
        if no == "refuse-me" {
            return Ok(Disposition::Refused {
                reason: "不动产单元不属于本辖区".into(),
            });
        }
        self.seen.lock().unwrap().push((no, message.files.len()));
        Ok(Disposition::Imported)
    }
}

fn status(no: &str) -> Message {
    Message::ApplicationStatus(ApplicationStatus {
        application_no: no.into(),
        status: "accepted".into(),
        reason: None,
        requested_materials: vec![],
        changed_at_ms: 1,
        received_message_id: None,
    })
}

async fn queue(store: &Store, pii: &PiiKeyring, message: Message, files: Vec<OutboundFile>) {
    let mut tx = store.begin().await.unwrap();
    ow_exchange::enqueue(
        &mut tx,
        pii,
        &channel("extranet-to-internet"),
        message,
        files,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn seen_rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM seen")
        .fetch_one(store.reader())
        .await
        .unwrap()
}

#[tokio::test]
async fn messages_cross_exactly_once_on_every_backend() {
    for db in ow_store::testing::all_backends().await {
        let label = db.backend.as_str();
        let world = World::new();
        let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
        let sender_db = ow_store::testing::sqlite();
        let sender_store = sender_db.open().await;
        let receiver_store = db.open().await;
        sqlx::query("CREATE TABLE seen (application_no TEXT NOT NULL)")
            .execute(receiver_store.writer())
            .await
            .unwrap();
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
                &channel("extranet-to-internet"),
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
        let carried = world.carry(Zone::Extranet, Zone::Internet);
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
        world.carry(Zone::Extranet, Zone::Internet);
        let report = receiver.import_pending(&handler).await.unwrap();
        assert_eq!(report.duplicates, 1, "{label}: {report:?}");
        assert_eq!(seen_rows(&receiver_store).await, 1, "{label}");

        // A refused message is recorded with its reason and not retried; its side effects
        // commit with it.
        queue(&sender_store, &pii, status("refuse-me"), vec![]).await;
        // A transient failure leaves the bundle for the next round.
        queue(&sender_store, &pii, status("fail-once"), vec![]).await;
        assert_eq!(sender.pack_pending().await.unwrap(), 2, "{label}");
        world.carry(Zone::Extranet, Zone::Internet);
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
        let carried = world.carry(Zone::Extranet, Zone::Internet);
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
