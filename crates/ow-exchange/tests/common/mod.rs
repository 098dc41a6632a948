//! Two zones' exchanges in a temporary folder, with the ferry's part (moving a bundle from one
//! zone's outbox to the other's inbox and recording it as landed, as the receiving agent does)
//! done by hand.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ow_bundle::{Channel, Zone};
use ow_exchange::{
    ApplicationStatus, Disposition, Exchange, ExchangeConfig, ExchangeError, ImportHandler,
    InboundMessage, Message, OutboundFile, RetryPolicy,
};
use ow_ferry::state::{FerryState, Landed};
use ow_pii::PiiKeyring;
use ow_store::Store;
use sqlx::{Any, Transaction};

pub fn channel(text: &str) -> Channel {
    text.parse().unwrap()
}

pub struct World {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub keys: PathBuf,
}

impl World {
    pub fn new() -> Self {
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

    pub fn config(&self, zone: Zone) -> ExchangeConfig {
        let (out_channel, in_channel) = match zone {
            Zone::Internet => ("internet-to-extranet", "extranet-to-internet"),
            _ => ("extranet-to-internet", "internet-to-extranet"),
        };
        ExchangeConfig {
            zone,
            work_dir: self.root.join(format!("{zone}/exchange")),
            packer_state: self.ferry_state(zone),
            landed_state: self.ferry_state(zone),
            signing_key_file: self.keys.join(format!("{zone}.sign.secret")),
            encryption_key_file: self.keys.join(format!("{zone}.enc.secret")),
            trust_file: self.root.join("trust.toml"),
            outboxes: vec![(channel(out_channel), self.outbox(zone))],
            media_outboxes: Vec::new(),
            inboxes: vec![(channel(in_channel), self.inbox(zone))],
            poll_interval: Duration::from_millis(50),
            retry: RetryPolicy {
                budget: 3,
                first_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(4),
            },
        }
    }

    pub fn ferry_state(&self, zone: Zone) -> PathBuf {
        self.root.join(format!("{zone}/ferry/ferry-state.db"))
    }

    pub fn outbox(&self, zone: Zone) -> PathBuf {
        self.root.join(format!("{zone}/outbox"))
    }

    pub fn inbox(&self, zone: Zone) -> PathBuf {
        self.root.join(format!("{zone}/inbox"))
    }

    pub fn log_dir(&self, zone: Zone) -> PathBuf {
        self.root.join(format!("{zone}/exchange/log"))
    }

    /// Moves every bundle from one zone's outbox to the other's inbox, without landing it.
    pub fn carry_unlanded(&self, from: Zone, to: Zone) -> Vec<PathBuf> {
        let inbox = self.inbox(to);
        std::fs::create_dir_all(&inbox).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(self.outbox(from))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".owb") && !n.starts_with('.'))
            .collect();
        names.sort();
        let mut moved = Vec::new();
        for name in names {
            let dest = inbox.join(&name);
            std::fs::rename(self.outbox(from).join(&name), &dest).unwrap();
            moved.push(dest);
        }
        moved
    }

    /// What the ferry agents do: move every bundle from one zone's outbox to the other's inbox,
    /// recording each in the receiving agent's `rx_landed` first.
    pub async fn carry(&self, from: Zone, to: Zone) -> Vec<PathBuf> {
        let moved = self.carry_unlanded(from, to);
        self.land(to, &moved).await;
        moved
    }

    /// Records `files` (in `to`'s inbox) as landed by `to`'s receiving agent.
    pub async fn land(&self, to: Zone, files: &[PathBuf]) {
        let state = FerryState::open(&self.ferry_state(to)).await.unwrap();
        let mut rows = Vec::new();
        for path in files {
            let file = std::fs::File::open(path).unwrap();
            let header =
                ow_bundle::read_header(std::io::BufReader::new(file), &Default::default()).unwrap();
            rows.push(Landed {
                channel: header.header().channel.to_string(),
                sequence: header.header().sequence,
                bundle_id: header.header().bundle_id.clone(),
                digest: header.digest().to_hex(),
                prev_digest: header.header().prev_digest.map(|d| d.to_hex()),
                file_name: path.file_name().unwrap().to_string_lossy().into_owned(),
                bytes: std::fs::metadata(path).unwrap().len(),
                landed_at: chrono::Utc::now(),
            });
        }
        state.record_landed(&rows).await.unwrap();
        state.close().await;
    }

    /// The exchange log's entries of `zone` as (event, reason).
    pub fn log_entries(&self, zone: Zone) -> Vec<(String, Option<String>, Option<String>)> {
        ow_ferrylog::read_entries(self.log_dir(zone))
            .unwrap()
            .into_iter()
            .map(|e| (e.event.as_str().to_owned(), e.bundle_id, e.reason))
            .collect()
    }

    pub async fn open(&self, zone: Zone, store: &Store, pii: &Arc<PiiKeyring>) -> Exchange {
        Exchange::open(self.config(zone), store.clone(), pii.clone())
            .await
            .unwrap()
    }
}

/// Records what it imported. Application numbers steer it: `refuse-me` is refused,
/// `fail-once` fails once, `poison…` fails every time until `cured` is set, `nul…` writes a
/// U+0000 into the database (which PostgreSQL refuses), `permanent…` declares a permanent
/// failure.
#[derive(Default)]
pub struct Recorder {
    pub seen: Mutex<Vec<(String, usize)>>,
    pub failed_once: Mutex<bool>,
    pub cured: Mutex<bool>,
    pub set_aside: Mutex<Vec<(String, String)>>,
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
        if no.starts_with("poison") && !*self.cured.lock().unwrap() {
            return Err(ExchangeError::Handler("simulated bug in the zone".into()));
        }
        if no.starts_with("permanent") {
            return Err(ExchangeError::Permanent {
                code: "test-permanent",
                reason: "this message can never be imported".into(),
            });
        }
        let stored = if no.starts_with("nul") {
            format!("{no}\u{0}")
        } else {
            no.clone()
        };
        // A side effect inside the transaction, to show it commits with the import record.
        sqlx::query("INSERT INTO seen (application_no) VALUES ($1)")
            .bind(&stored)
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

    async fn set_aside(
        &self,
        _tx: &mut Transaction<'static, Any>,
        letter: &ow_exchange::DeadLetter,
        message: &InboundMessage,
    ) -> Result<(), ExchangeError> {
        self.set_aside.lock().unwrap().push((
            letter.code.clone(),
            message
                .envelope
                .message
                .application_no()
                .unwrap_or_default()
                .to_owned(),
        ));
        Ok(())
    }
}

impl Recorder {
    pub fn seen_numbers(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
}

pub fn status(no: &str) -> Message {
    Message::ApplicationStatus(ApplicationStatus {
        application_no: no.into(),
        status: "accepted".into(),
        reason: None,
        requested_materials: vec![],
        changed_at_ms: 1,
        received_message_id: None,
    })
}

pub async fn queue(store: &Store, pii: &PiiKeyring, message: Message, files: Vec<OutboundFile>) {
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

pub async fn seen_rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM seen")
        .fetch_one(store.reader())
        .await
        .unwrap()
}

pub async fn create_seen(store: &Store) {
    sqlx::query("CREATE TABLE seen (application_no TEXT NOT NULL)")
        .execute(store.writer())
        .await
        .unwrap();
}
