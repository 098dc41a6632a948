//! No single message can stop a channel: messages that cannot be packed or imported are set
//! aside as dead letters with a reason code, the next ones go through, operators see them in
//! the status and retry them after a fix; bundles the ferry agent never landed are refused;
//! log entries are durable before the state they record. Every store test runs on each backend.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use common::{Recorder, World, channel, create_seen, queue, seen_rows, status};
use ow_bundle::Zone;
use ow_exchange::{
    ContractViolation, ExchangeError, FaultPoint, InlineFile, MAX_FILES_PER_MESSAGE, MaterialRef,
    Message, OutboundFile, SupplementSubmitted,
};
use ow_ferry::pack::{PackItem, PackRequest};
use ow_pii::PiiKeyring;
use ow_store::Store;

async fn import_rounds(
    exchange: &ow_exchange::Exchange,
    handler: &Recorder,
    rounds: usize,
) -> ow_exchange::ImportReport {
    let mut total = ow_exchange::ImportReport::default();
    for _ in 0..rounds {
        let r = exchange.import_pending(handler).await.unwrap();
        total.imported += r.imported;
        total.refused += r.refused;
        total.duplicates += r.duplicates;
        total.rejected += r.rejected;
        total.dead_lettered += r.dead_lettered;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    total
}

fn set_aside_files(world: &World, zone: Zone) -> Vec<String> {
    let dir = world.inbox(zone).join(".rejected");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_message_whose_import_keeps_failing_is_set_aside_and_the_next_goes_through() {
    for db in ow_store::testing::all_backends().await {
        let label = db.backend.as_str();
        let world = World::new();
        let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
        let sender_db = ow_store::testing::sqlite();
        let sender_store = sender_db.open().await;
        let receiver_store = db.open().await;
        create_seen(&receiver_store).await;
        let sender = world.open(Zone::Extranet, &sender_store, &pii).await;
        let receiver = world.open(Zone::Internet, &receiver_store, &pii).await;
        let handler = Recorder::default();

        for no in [
            "poison-1",
            "SQ-ok-1",
            "permanent-1",
            "SQ-ok-2",
            "nul-1",
            "SQ-ok-3",
        ] {
            queue(&sender_store, &pii, status(no), vec![]).await;
        }
        assert_eq!(sender.pack_pending().await.unwrap(), 6, "{label}");
        world.carry(Zone::Extranet, Zone::Internet).await;

        // The budget is three tries a few milliseconds apart.
        let report = import_rounds(&receiver, &handler, 8).await;
        let postgres = label == "postgres";
        let mut expected = vec!["SQ-ok-1", "SQ-ok-2", "SQ-ok-3"];
        if !postgres {
            // SQLite stores U+0000; PostgreSQL refuses it, deterministically.
            expected.insert(2, "nul-1");
        }
        assert_eq!(handler.seen_numbers(), expected, "{label}: {report:?}");
        assert_eq!(
            report.dead_lettered,
            if postgres { 3 } else { 2 },
            "{label}: {report:?}"
        );
        let dead = ow_exchange::dead_letters(&receiver_store).await.unwrap();
        let by_case = |no: &str| {
            dead.iter()
                .find(|d| d.case_id.as_deref() == Some(no))
                .cloned()
        };
        let poison = by_case("poison-1").unwrap();
        assert_eq!(poison.code, "import-failed", "{label}");
        assert_eq!(poison.attempts, 3, "{label}: tried the whole budget");
        assert_eq!(poison.kind.as_deref(), Some("application-status"));
        let permanent = by_case("permanent-1").unwrap();
        assert_eq!(
            (permanent.code.as_str(), permanent.attempts),
            ("test-permanent", 1),
            "{label}: set aside at once"
        );
        if postgres {
            assert_eq!(by_case("nul-1").unwrap().code, "database-refused");
        }
        // The zone was told, inside the dead letter's transaction.
        let told: Vec<String> = handler
            .set_aside
            .lock()
            .unwrap()
            .iter()
            .map(|(_, no)| no.clone())
            .collect();
        assert!(told.contains(&"poison-1".to_string()), "{label}: {told:?}");
        // Each set-aside bundle is in .rejected with its reason; nothing is left in the inbox.
        let files = set_aside_files(&world, Zone::Internet);
        assert_eq!(
            files.iter().filter(|n| n.ends_with(".reason")).count(),
            dead.len(),
            "{label}: {files:?}"
        );
        assert!(
            std::fs::read_dir(world.inbox(Zone::Internet))
                .unwrap()
                .all(|e| e.unwrap().file_name().to_string_lossy().starts_with('.')),
            "{label}"
        );
        // The operator's view: counts, ids, kinds and codes, no content.
        let st = ow_exchange::status(&receiver_store).await.unwrap();
        assert_eq!(st.dead_lettered as usize, dead.len(), "{label}");
        assert_eq!(st.imported as usize, expected.len(), "{label}");
        let text = st.to_text();
        assert!(
            text.contains(&poison.id) && text.contains("import-failed"),
            "{label}: {text}"
        );

        // After a fix, an operator retries; the exchange puts it back, logs it and imports it.
        *handler.cured.lock().unwrap() = true;
        let asked = ow_exchange::request_retry(&receiver_store, &poison.id)
            .await
            .unwrap();
        assert_eq!(asked.state, "retry-requested");
        assert!(matches!(
            ow_exchange::request_retry(&receiver_store, &poison.id).await,
            Err(ExchangeError::NoDeadLetter { .. })
        ));
        assert_eq!(receiver.process_retry_requests().await.unwrap(), 1);
        let report = import_rounds(&receiver, &handler, 1).await;
        assert_eq!(report.imported, 1, "{label}: {report:?}");
        assert!(handler.seen_numbers().contains(&"poison-1".to_string()));
        let st = ow_exchange::status(&receiver_store).await.unwrap();
        assert_eq!(st.dead_lettered as usize, dead.len() - 1, "{label}");
        receiver.close();
        let entries = world.log_entries(Zone::Internet);
        assert!(
            entries.iter().any(|(event, _, reason)| event == "action"
                && reason.as_deref().is_some_and(|r| r.contains(&poison.id))),
            "{label}: the retry is logged: {entries:?}"
        );
        assert!(
            entries.iter().any(|(event, _, reason)| event == "rejected"
                && reason.as_deref().is_some_and(|r| r.contains(&permanent.id))),
            "{label}: the dead letter is logged"
        );
        sender.close();
        sender_store.close().await;
        receiver_store.close().await;
        db.cleanup().await;
    }
}

/// Packs a bundle on the extranet's channel to the internet with the extranet's own keys and
/// sequence, bypassing `enqueue`'s checks (what a faulty or compromised sender could do).
async fn pack_raw(world: &World, message_json: &[u8], kind: &str, extra: usize) {
    let dir = world.root.join(format!("raw-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("message.json");
    std::fs::write(&path, message_json).unwrap();
    let mut items = vec![PackItem {
        name: "message.json".into(),
        media_type: "application/json".into(),
        path,
        open: None,
    }];
    for i in 0..extra {
        let p = dir.join(format!("m{i:03}.pdf"));
        std::fs::write(&p, format!("%PDF-1.7 {i}")).unwrap();
        items.push(PackItem {
            name: format!("m{i:03}.pdf"),
            media_type: "application/pdf".into(),
            path: p,
            open: None,
        });
    }
    let state = ow_ferry::state::FerryState::open(&world.ferry_state(Zone::Extranet))
        .await
        .unwrap();
    let key = ow_keys::load_signing_key(&world.keys.join("extranet.sign.secret")).unwrap();
    let trust = ow_keys::load_trust(&world.root.join("trust.toml")).unwrap();
    ow_ferry::pack::pack_into_outbox(
        &state,
        &key,
        &trust,
        &world.outbox(Zone::Extranet),
        &PackRequest {
            channel: channel("extranet-to-internet"),
            kind: kind.into(),
            case_id: None,
            valid_for: chrono::Duration::days(1),
            encrypt: true,
            items,
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    state.close().await;
}

fn envelope_json(message: Message) -> Vec<u8> {
    serde_json::to_vec(&ow_exchange::Envelope::new(message, 1)).unwrap()
}

#[tokio::test]
async fn only_landed_bundles_within_the_contract_are_imported_and_the_rest_never_block() {
    for db in ow_store::testing::all_backends().await {
        let label = db.backend.as_str();
        let world = World::new();
        let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
        let sender_db = ow_store::testing::sqlite();
        let sender_store = sender_db.open().await;
        let receiver_store = db.open().await;
        create_seen(&receiver_store).await;
        let sender = world.open(Zone::Extranet, &sender_store, &pii).await;
        let receiver = world.open(Zone::Internet, &receiver_store, &pii).await;
        let handler = Recorder::default();

        // 1. Validly signed, but never landed by the ferry agent (placed in the inbox by hand).
        queue(&sender_store, &pii, status("SQ-unlanded"), vec![]).await;
        sender.pack_pending().await.unwrap();
        world.carry_unlanded(Zone::Extranet, Zone::Internet);
        // 2. Landed, but the agent recorded another digest under its id.
        queue(&sender_store, &pii, status("SQ-swapped"), vec![]).await;
        sender.pack_pending().await.unwrap();
        let swapped = world.carry_unlanded(Zone::Extranet, Zone::Internet);
        {
            let state = ow_ferry::state::FerryState::open(&world.ferry_state(Zone::Internet))
                .await
                .unwrap();
            let file = std::fs::File::open(&swapped[0]).unwrap();
            let h =
                ow_bundle::read_header(std::io::BufReader::new(file), &Default::default()).unwrap();
            state
                .record_landed(&[ow_ferry::state::Landed {
                    channel: h.header().channel.to_string(),
                    sequence: h.header().sequence,
                    bundle_id: h.header().bundle_id.clone(),
                    digest: "0".repeat(64),
                    prev_digest: h.header().prev_digest.map(|d| d.to_hex()),
                    file_name: "x.owb".into(),
                    bytes: 1,
                    landed_at: chrono::Utc::now(),
                }])
                .await
                .unwrap();
            state.close().await;
        }
        // 2b. Landed with its digest, but on another sequence number than its header says.
        queue(&sender_store, &pii, status("SQ-resequenced"), vec![]).await;
        sender.pack_pending().await.unwrap();
        let resequenced = world.carry_unlanded(Zone::Extranet, Zone::Internet);
        {
            let state = ow_ferry::state::FerryState::open(&world.ferry_state(Zone::Internet))
                .await
                .unwrap();
            let file = std::fs::File::open(&resequenced[0]).unwrap();
            let h =
                ow_bundle::read_header(std::io::BufReader::new(file), &Default::default()).unwrap();
            state
                .record_landed(&[ow_ferry::state::Landed {
                    channel: h.header().channel.to_string(),
                    sequence: h.header().sequence + 1000,
                    bundle_id: h.header().bundle_id.clone(),
                    digest: h.digest().to_hex(),
                    prev_digest: h.header().prev_digest.map(|d| d.to_hex()),
                    file_name: "y.owb".into(),
                    bytes: 1,
                    landed_at: chrono::Utc::now(),
                }])
                .await
                .unwrap();
            state.close().await;
        }
        // 3. A kind the channel does not carry (an application going the wrong way).
        let wrong_way = Message::SupplementSubmitted(SupplementSubmitted {
            application_no: "SQ-wrong-way".into(),
            note: String::new(),
            materials: vec![],
            submitted_at_ms: 1,
        });
        pack_raw(&world, &envelope_json(wrong_way), "supplement-submitted", 0).await;
        // 4. More items than one message may carry.
        pack_raw(
            &world,
            &envelope_json(status("SQ-too-many")),
            "application-status",
            MAX_FILES_PER_MESSAGE + 1,
        )
        .await;
        // 5. A control character in a text field.
        let mut nul = status("SQ-nul");
        if let Message::ApplicationStatus(s) = &mut nul {
            s.reason = Some("请补充\u{0}材料".into());
        }
        pack_raw(&world, &envelope_json(nul), "application-status", 0).await;
        // 6. An application number that is not a valid case id.
        pack_raw(
            &world,
            &envelope_json(status("SQ 1/../2")),
            "application-status",
            0,
        )
        .await;
        // 7. And a good one behind them all.
        queue(&sender_store, &pii, status("SQ-good"), vec![]).await;
        sender.pack_pending().await.unwrap();
        world.carry(Zone::Extranet, Zone::Internet).await;

        let report = import_rounds(&receiver, &handler, 1).await;
        assert_eq!(
            handler.seen_numbers(),
            vec!["SQ-good"],
            "{label}: {report:?}"
        );
        assert_eq!(report.rejected, 7, "{label}: {report:?}");
        assert_eq!(seen_rows(&receiver_store).await, 1, "{label}");
        let mut codes: Vec<String> = ow_exchange::dead_letters(&receiver_store)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.code)
            .collect();
        codes.sort();
        assert_eq!(
            codes,
            vec![
                "case-id-invalid",
                "control-character",
                "kind-not-allowed",
                "landed-mismatch",
                "landed-mismatch",
                "not-landed",
                "too-large"
            ],
            "{label}"
        );
        // Only verified content names an application, and the zone is told of those.
        let told: Vec<(String, String)> = handler.set_aside.lock().unwrap().clone();
        assert!(
            told.contains(&("control-character".into(), "SQ-nul".into())),
            "{label}: {told:?}"
        );
        assert!(!told.iter().any(|(_, no)| no == "SQ-unlanded"), "{label}");
        let unlanded = ow_exchange::dead_letters(&receiver_store)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.code == "not-landed")
            .unwrap();
        assert_eq!(
            unlanded.case_id, None,
            "{label}: unverified headers name no case"
        );
        // Nothing is left in the inbox, and every file set aside has its reason.
        let files = set_aside_files(&world, Zone::Internet);
        assert_eq!(
            files.iter().filter(|n| n.ends_with(".reason")).count(),
            7,
            "{label}: {files:?}"
        );
        sender.close();
        receiver.close();
        sender_store.close().await;
        receiver_store.close().await;
        db.cleanup().await;
    }
}

async fn outbox_codes(store: &Store) -> Vec<String> {
    let mut codes: Vec<String> = ow_exchange::dead_letters(store)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.code)
        .collect();
    codes.sort();
    codes
}

#[tokio::test]
async fn a_message_that_cannot_be_packed_is_set_aside_and_the_next_is_packed() {
    for db in ow_store::testing::all_backends().await {
        let label = db.backend.as_str();
        let world = World::new();
        let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
        let store = db.open().await;
        let sender = world.open(Zone::Extranet, &store, &pii).await;
        let to_portal = channel("extranet-to-internet");

        // Refused where they are made, with the reason.
        let refused = |message: Message, files: Vec<OutboundFile>| {
            let store = store.clone();
            let pii = pii.clone();
            async move {
                let mut tx = store.begin().await.unwrap();
                let r = ow_exchange::enqueue(&mut tx, &pii, &to_portal, message, files).await;
                tx.rollback().await.unwrap();
                r.unwrap_err()
            }
        };
        assert!(matches!(
            refused(status("../x"), vec![]).await,
            ExchangeError::Contract(ContractViolation::CaseId)
        ));
        let mut nul = status("SQ-1");
        if let Message::ApplicationStatus(s) = &mut nul {
            s.reason = Some("a\u{0}b".into());
        }
        assert!(matches!(
            refused(nul, vec![]).await,
            ExchangeError::Contract(ContractViolation::ControlCharacter { .. })
        ));
        let many: Vec<OutboundFile> = (0..=MAX_FILES_PER_MESSAGE)
            .map(|i| OutboundFile {
                item: format!("m{i}.pdf"),
                media_type: "application/pdf".into(),
                path: world.root.join("none.pdf"),
                sealed_context: None,
            })
            .collect();
        assert!(matches!(
            refused(status("SQ-1"), many).await,
            ExchangeError::Contract(ContractViolation::TooManyFiles { .. })
        ));
        let supplement = Message::SupplementSubmitted(SupplementSubmitted {
            application_no: "SQ-1".into(),
            note: "补充材料\u{1b}[31m".into(),
            materials: vec![MaterialRef {
                item: "m01.pdf".into(),
                checklist_code: "x".into(),
                file_name: "x.pdf".into(),
                media_type: "application/pdf".into(),
                size: 1,
                blake3: "0".repeat(64),
            }],
            submitted_at_ms: 1,
        });
        assert!(matches!(
            refused(supplement, vec![]).await,
            ExchangeError::BadMessage { .. }
        ));
        assert_eq!(ow_exchange::pending_count(&store).await.unwrap(), 0);

        // Queued, then unpackable: a material deleted before packing, and a row whose case id
        // an older version let through. Good messages around them still go.
        let pdf = world.root.join("m01.pdf");
        std::fs::write(&pdf, b"%PDF-1.7\n").unwrap();
        queue(
            &store,
            &pii,
            status("SQ-file-gone"),
            vec![OutboundFile {
                item: "m01.pdf".into(),
                media_type: "application/pdf".into(),
                path: pdf.clone(),
                sealed_context: None,
            }],
        )
        .await;
        std::fs::rename(&pdf, world.root.join("moved.pdf")).unwrap();
        queue(&store, &pii, status("SQ-2"), vec![]).await;
        queue(&store, &pii, status("SQ-old-row"), vec![]).await;
        sqlx::query("UPDATE exchange_outbox SET case_id = 'bad id' WHERE case_id = 'SQ-old-row'")
            .execute(store.writer())
            .await
            .unwrap();
        queue(&store, &pii, status("SQ-3"), vec![]).await;
        assert_eq!(sender.pack_pending().await.unwrap(), 2, "{label}");
        assert_eq!(
            outbox_codes(&store).await,
            vec!["case-id-invalid", "file-missing"],
            "{label}"
        );
        assert_eq!(ow_exchange::pending_count(&store).await.unwrap(), 0);
        let st = ow_exchange::status(&store).await.unwrap();
        assert_eq!((st.packed, st.dead_lettered), (2, 2), "{label}");

        // The file is back; the operator retries; it packs.
        std::fs::rename(world.root.join("moved.pdf"), &pdf).unwrap();
        let gone = ow_exchange::dead_letters(&store)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.code == "file-missing")
            .unwrap();
        assert_eq!(gone.case_id.as_deref(), Some("SQ-file-gone"));
        ow_exchange::request_retry(&store, &gone.id).await.unwrap();
        assert_eq!(sender.process_retry_requests().await.unwrap(), 1);
        assert_eq!(sender.pack_pending().await.unwrap(), 1, "{label}");
        assert_eq!(outbox_codes(&store).await, vec!["case-id-invalid"]);
        sender.close();
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn log_entries_are_durable_before_the_state_they_record() {
    let world = World::new();
    let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
    let sender_db = ow_store::testing::sqlite();
    let sender_store = sender_db.open().await;
    let receiver_db = ow_store::testing::sqlite();
    let receiver_store = receiver_db.open().await;
    create_seen(&receiver_store).await;
    let sender = world.open(Zone::Extranet, &sender_store, &pii).await;
    let receiver = world.open(Zone::Internet, &receiver_store, &pii).await;
    let handler = Recorder::default();

    // A crash after the bundle is in the outbox but before its row is marked packed: the
    // bundle will be sent, so its `queued` entry must already be in the log.
    queue(&sender_store, &pii, status("SQ-1"), vec![]).await;
    sender.set_fault(Some(FaultPoint::BeforePackedCommit));
    assert!(sender.pack_pending().await.is_err());
    let in_outbox: Vec<String> = std::fs::read_dir(world.outbox(Zone::Extranet))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".owb"))
        .collect();
    assert_eq!(in_outbox.len(), 1);
    let queued: Vec<String> = world
        .log_entries(Zone::Extranet)
        .into_iter()
        .filter(|(e, _, _)| e == "queued")
        .filter_map(|(_, id, _)| id)
        .collect();
    assert_eq!(queued.len(), 1);
    assert!(
        in_outbox[0].contains(&queued[0]),
        "{in_outbox:?} {queued:?}"
    );
    assert_eq!(ow_exchange::pending_count(&sender_store).await.unwrap(), 1);
    // The restart packs it again under a new id; the receiver drops the second as a duplicate.
    assert_eq!(sender.pack_pending().await.unwrap(), 1);
    world.carry(Zone::Extranet, Zone::Internet).await;

    // A crash after the import's effects are ready but before they commit: the `imported`
    // entry is already durable (a repeat later is allowed, a loss never).
    receiver.set_fault(Some(FaultPoint::BeforeImportCommit));
    let report = receiver.import_pending(&handler).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let imported_logged = world
        .log_entries(Zone::Internet)
        .into_iter()
        .filter(|(e, _, _)| e == "imported")
        .count();
    assert_eq!(imported_logged, 1);
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM exchange_imported")
        .fetch_one(receiver_store.reader())
        .await
        .unwrap();
    assert_eq!(recorded, 0, "nothing committed at the crash point");
    assert_eq!(seen_rows(&receiver_store).await, 0);
    let report = import_rounds(&receiver, &handler, 2).await;
    assert_eq!((report.imported, report.duplicates), (1, 1), "{report:?}");
    assert_eq!(seen_rows(&receiver_store).await, 1);
    sender.close();
    receiver.close();
}

#[tokio::test]
async fn staging_is_private_emptied_at_start_and_inline_files_are_never_plain_on_disk() {
    let world = World::new();
    let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
    let db = ow_store::testing::sqlite();
    let store = db.open().await;
    let receiver_db = ow_store::testing::sqlite();
    let receiver_store = receiver_db.open().await;
    create_seen(&receiver_store).await;
    let sender = world.open(Zone::Extranet, &store, &pii).await;
    let staging = world.root.join("extranet/exchange/staging");
    let mode = std::fs::metadata(&staging).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // A crash left an opened message behind.
    let left = staging.join("0190-left.json");
    std::fs::write(&left, b"{\"name\":\"\xe5\xbc\xa0\xe4\xb8\x89\"}").unwrap();
    sender.close();
    let sender = world.open(Zone::Extranet, &store, &pii).await;
    assert!(!left.exists(), "staging is emptied at start");

    // A signed certificate with a full ID number travels from memory, sealed in the row.
    let secret = "370781199001012345";
    let cert = format!("{{\"holder\":\"{secret}\"}}").into_bytes();
    let mut tx = store.begin().await.unwrap();
    ow_exchange::enqueue_with_inline(
        &mut tx,
        &pii,
        &channel("extranet-to-internet"),
        status("SQ-cert"),
        vec![],
        vec![InlineFile {
            item: "certificate.json".into(),
            media_type: "application/json".into(),
            bytes: cert.clone(),
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(sender.pack_pending().await.unwrap(), 1);
    let inline: Option<String> = sqlx::query_scalar("SELECT inline_json FROM exchange_outbox")
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!(inline, None, "forgotten once packed");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    store.close().await;
    let mut raw = std::fs::read(&db.url).unwrap();
    if let Ok(wal) = std::fs::read(format!("{}-wal", db.url)) {
        raw.extend(wal);
    }
    assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()));

    world.carry(Zone::Extranet, Zone::Internet).await;
    let receiver = world.open(Zone::Internet, &receiver_store, &pii).await;
    let handler = FileCheck::default();
    let report = receiver.import_pending(&handler).await.unwrap();
    assert_eq!(report.imported, 1, "{report:?}");
    assert_eq!(handler.0.lock().unwrap().clone(), vec![cert]);
    sender.close();
    receiver.close();
}

/// Reads the files of each message.
#[derive(Default)]
struct FileCheck(std::sync::Mutex<Vec<Vec<u8>>>);

impl ow_exchange::ImportHandler for FileCheck {
    async fn import(
        &self,
        _tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        message: &ow_exchange::InboundMessage,
    ) -> Result<ow_exchange::Disposition, ExchangeError> {
        for f in &message.files {
            let bytes = f.read_async().await?;
            self.0.lock().unwrap().push(bytes);
        }
        Ok(ow_exchange::Disposition::Imported)
    }
}
