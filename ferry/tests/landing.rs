//! The receiving agent lands exactly the bytes it verified: library-level tests that drive one
//! `Receiver` pass by pass, with hooks placed in the window between verifying and landing (where
//! the old agent renamed whatever was at the verified path).

#![allow(clippy::unwrap_used, missing_docs)]

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use ow_bundle::{Channel, EncryptionSecret, SigningKey, TrustStore, Zone};
use ow_ferry::audit::AgentLog;
use ow_ferry::config::ReceiveConfig;
use ow_ferry::pack::{self, PackItem, PackRequest};
use ow_ferry::receiver::{Receiver, ReceiverHooks};
use ow_ferry::state::FerryState;

struct Setup {
    dir: tempfile::TempDir,
    trust: Arc<TrustStore>,
    internet_key: SigningKey,
    extranet_key: SigningKey,
    secret: Arc<EncryptionSecret>,
    packer: FerryState,
    outbox: PathBuf,
    config: ReceiveConfig,
}

fn channel() -> Channel {
    Channel::new(Zone::Internet, Zone::Extranet).unwrap()
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        ow_keys::generate_zone_keys(&keys, Zone::Internet).unwrap();
        ow_keys::generate_zone_keys(&keys, Zone::Extranet).unwrap();
        let trust = ow_keys::trust_from_key_dir(&keys, &[channel()]).unwrap();
        let internet_key = ow_keys::load_signing_key(&keys.join("internet.sign.secret")).unwrap();
        let extranet_key = ow_keys::load_signing_key(&keys.join("extranet.sign.secret")).unwrap();
        let secret = ow_keys::load_encryption_secret(&keys.join("extranet.enc.secret")).unwrap();
        let packer = FerryState::open(&dir.path().join("internet/state.db"))
            .await
            .unwrap();
        let root = dir.path();
        let config = ReceiveConfig {
            name: "internet-to-extranet-rx".into(),
            channel: channel(),
            gateway: root.join("gateway"),
            inbox: root.join("inbox"),
            quarantine: root.join("quarantine"),
            settle: Duration::ZERO,
            require_marker: false,
            incomplete_timeout: Duration::from_secs(30),
            rescan: Duration::from_millis(100),
            batch: 64,
            max_bundle_bytes: 1 << 30,
            allowed_kinds: Vec::new(),
            max_clock_skew: chrono::Duration::minutes(5),
        };
        Self {
            outbox: root.join("outbox"),
            trust: Arc::new(trust),
            internet_key,
            extranet_key,
            secret: Arc::new(secret),
            packer,
            config,
            dir,
        }
    }

    async fn receiver(&self) -> Receiver {
        let state = FerryState::open(&self.dir.path().join("extranet/state.db"))
            .await
            .unwrap();
        let log = AgentLog::open(
            &self.dir.path().join("extranet/log"),
            &self.config.name,
            &channel().to_string(),
            Zone::Extranet,
            self.extranet_key.clone(),
            50,
        )
        .unwrap();
        Receiver::start(
            self.config.clone(),
            Zone::Extranet,
            state,
            log,
            Arc::clone(&self.trust),
            Arc::clone(&self.secret),
        )
        .await
        .unwrap()
    }

    /// Packs one bundle and moves it into the gateway folder under its own name; returns the
    /// gateway path and the bundle's bytes.
    async fn bundle_in_gateway(&self, text: &str) -> (PathBuf, Vec<u8>) {
        let item = self.dir.path().join("item.txt");
        fs::write(&item, text.repeat(50)).unwrap();
        let request = PackRequest {
            channel: channel(),
            kind: "demo.item".into(),
            case_id: None,
            valid_for: chrono::Duration::hours(1),
            encrypt: true,
            items: vec![PackItem {
                name: "item.txt".into(),
                media_type: "text/plain".into(),
                path: item,
                open: None,
            }],
        };
        let packed = pack::pack_into_outbox(
            &self.packer,
            &self.internet_key,
            &self.trust,
            &self.outbox,
            &request,
            Utc::now(),
        )
        .await
        .unwrap();
        fs::create_dir_all(&self.config.gateway).unwrap();
        let name = packed.path.file_name().unwrap().to_owned();
        let target = self.config.gateway.join(name);
        let bytes = fs::read(&packed.path).unwrap();
        fs::rename(&packed.path, &target).unwrap();
        (target, bytes)
    }

    fn inbox_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&self.config.inbox)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    fn quarantine_codes(&self) -> Vec<String> {
        let mut codes: Vec<String> = fs::read_dir(&self.config.quarantine)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".reason"))
            .map(|p| {
                let v: serde_json::Value = serde_json::from_slice(&fs::read(p).unwrap()).unwrap();
                v["code"].as_str().unwrap().to_owned()
            })
            .collect();
        codes.sort();
        codes
    }
}

fn hooks_after_verify(f: impl FnMut(&Path) + Send + 'static) -> ReceiverHooks {
    ReceiverHooks {
        after_verify: Some(Box::new(f)),
        ..ReceiverHooks::default()
    }
}

#[tokio::test]
async fn a_file_renamed_over_after_verification_does_not_land_in_its_place() {
    let setup = Setup::new().await;
    let (path, verified_bytes) = setup.bundle_in_gateway("genuine ").await;
    let mut receiver = setup.receiver().await;
    let swap_dir = setup.dir.path().to_path_buf();
    receiver.set_hooks(hooks_after_verify(move |verified: &Path| {
        // After verification, before landing: rename other bytes over the verified name.
        let forged = swap_dir.join("forged");
        fs::write(&forged, b"OWBNDL\r\n unverified content").unwrap();
        fs::rename(&forged, verified).unwrap();
    }));
    let pass = receiver.poll().await.unwrap();
    assert_eq!(pass.landed, 1, "{pass:?}");
    let inbox = setup.inbox_files();
    assert_eq!(
        inbox.len(),
        1,
        "{:?}",
        inbox.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert_eq!(
        inbox[0].1, verified_bytes,
        "the inbox holds exactly the verified bytes"
    );
    // The replacement is a new arrival, judged on its own: it is refused.
    receiver.set_hooks(ReceiverHooks::default());
    assert!(
        path.exists(),
        "the replacement was not taken for the landed original"
    );
    let pass = receiver.poll().await.unwrap();
    assert_eq!(pass.rejected, 1, "{pass:?}");
    assert_eq!(
        setup.quarantine_codes(),
        vec!["unsupported-version".to_string()]
    );
    assert_eq!(setup.inbox_files().len(), 1);
}

#[tokio::test]
async fn a_rewrite_through_an_earlier_descriptor_does_not_reach_the_inbox() {
    let setup = Setup::new().await;
    let (path, verified_bytes) = setup.bundle_in_gateway("genuine ").await;
    // Someone opened the file for writing before the agent looked at it.
    let writer = Arc::new(Mutex::new(
        fs::OpenOptions::new().write(true).open(&path).unwrap(),
    ));
    let mut receiver = setup.receiver().await;
    let w = Arc::clone(&writer);
    receiver.set_hooks(hooks_after_verify(move |_| {
        w.lock().unwrap().write_all_at(b"FORGED", 200).unwrap();
    }));
    assert_eq!(receiver.poll().await.unwrap().landed, 1);
    // And again after landing, through the same descriptor.
    writer.lock().unwrap().write_all_at(b"LATER!", 300).unwrap();
    let inbox = setup.inbox_files();
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        inbox[0].1, verified_bytes,
        "the inbox holds exactly the verified bytes"
    );
}

#[tokio::test]
async fn a_file_with_a_hard_link_elsewhere_is_refused() {
    let setup = Setup::new().await;
    let (path, _) = setup.bundle_in_gateway("linked ").await;
    fs::hard_link(&path, setup.dir.path().join("kept-elsewhere")).unwrap();
    let mut receiver = setup.receiver().await;
    let pass = receiver.poll().await.unwrap();
    assert_eq!((pass.landed, pass.rejected), (0, 1), "{pass:?}");
    assert_eq!(setup.quarantine_codes(), vec!["multi-link".to_string()]);
    assert!(setup.inbox_files().is_empty());
}

#[tokio::test]
async fn staged_files_left_by_a_failed_pass_are_recovered_without_a_restart() {
    let setup = Setup::new().await;
    let (_, first) = setup.bundle_in_gateway("first ").await;
    let (_, second) = setup.bundle_in_gateway("second ").await;
    let mut receiver = setup.receiver().await;
    let mut failures = 1;
    receiver.set_hooks(ReceiverHooks {
        before_commit: Some(Box::new(move || {
            if failures > 0 {
                failures -= 1;
                return Err(std::io::Error::other("disk went away"));
            }
            Ok(())
        })),
        ..ReceiverHooks::default()
    });
    assert!(receiver.poll().await.is_err());
    // Staged, uncommitted, originals already gone from the gateway folder.
    let staged: Vec<String> = setup.inbox_files().into_iter().map(|f| f.0).collect();
    assert_eq!(staged.len(), 2, "{staged:?}");
    assert!(
        staged.iter().all(|n| n.starts_with(".landing-")),
        "{staged:?}"
    );
    // The next pass finishes the job; the same process, no restart.
    let pass = receiver.poll().await.unwrap();
    assert_eq!(pass.landed, 2, "{pass:?}");
    let inbox = setup.inbox_files();
    assert_eq!(
        inbox.iter().map(|f| f.1.clone()).collect::<Vec<_>>(),
        vec![first, second]
    );
    assert!(inbox.iter().all(|f| !f.0.starts_with('.')));
    assert!(
        fs::read_dir(&setup.config.gateway)
            .unwrap()
            .next()
            .is_none()
    );
}
