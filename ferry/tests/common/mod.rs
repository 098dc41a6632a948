//! Shared set-up for the ferry's integration tests: two zones with real keys made by the real
//! `ow-ferry keygen`, a trust file, configurations, and helpers to start the real binary.

#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ow-ferry");

/// A sending internet zone and a receiving extranet zone joined by one gateway folder.
pub struct Pair {
    pub dir: tempfile::TempDir,
    pub sender_config: PathBuf,
    pub receiver_config: PathBuf,
    pub outbox: PathBuf,
    pub gateway: PathBuf,
    pub inbox: PathBuf,
    pub quarantine: PathBuf,
    pub sent: PathBuf,
    pub keys: PathBuf,
}

/// Options for the receiving side.
#[derive(Clone)]
pub struct RxOptions {
    pub settle_ms: u64,
    pub require_marker: bool,
    pub incomplete_timeout_s: u64,
    pub allowed_kinds: Vec<String>,
}

impl Default for RxOptions {
    fn default() -> Self {
        Self {
            settle_ms: 300,
            require_marker: false,
            incomplete_timeout_s: 30,
            allowed_kinds: Vec::new(),
        }
    }
}

pub fn ferry(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("OW_LOG", "error")
        .output()
        .unwrap()
}

impl Pair {
    pub fn new(rx: RxOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let keys = root.join("keys");
        for zone in ["internet", "extranet"] {
            let out = ferry(&["keygen", "--zone", zone, "--out", keys.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The operators' command writes the trust file from the public keys.
        let trust = root.join("trust.toml");
        let out = ferry(&[
            "trust",
            "--keys",
            keys.to_str().unwrap(),
            "--channel",
            "internet-to-extranet",
            "--out",
            trust.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sender_config = root.join("internet.toml");
        fs::write(
            &sender_config,
            r#"zone = "internet"
data_dir = "internet/ferry"
[keys]
signing_key = "keys/internet.sign.secret"
encryption_key = "keys/internet.enc.secret"
trust_file = "trust.toml"
[log]
checkpoint_every = 50
[[send]]
channel = "internet-to-extranet"
outbox = "internet/outbox"
gateway = "gateway"
sent = "internet/sent"
marker = true
rescan_ms = 200
batch = 64
"#,
        )
        .unwrap();
        let receiver_config = root.join("extranet.toml");
        let kinds = rx
            .allowed_kinds
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ");
        fs::write(
            &receiver_config,
            format!(
                r#"zone = "extranet"
data_dir = "extranet/ferry"
[keys]
signing_key = "keys/extranet.sign.secret"
encryption_key = "keys/extranet.enc.secret"
trust_file = "trust.toml"
[log]
checkpoint_every = 50
[[receive]]
channel = "internet-to-extranet"
gateway = "gateway"
inbox = "extranet/inbox"
quarantine = "extranet/quarantine"
settle_ms = {}
require_marker = {}
incomplete_timeout_s = {}
rescan_ms = 100
batch = 64
allowed_kinds = [{kinds}]
"#,
                rx.settle_ms, rx.require_marker, rx.incomplete_timeout_s
            ),
        )
        .unwrap();
        let pair = Self {
            outbox: root.join("internet/outbox"),
            gateway: root.join("gateway"),
            inbox: root.join("extranet/inbox"),
            quarantine: root.join("extranet/quarantine"),
            sent: root.join("internet/sent"),
            keys,
            sender_config,
            receiver_config,
            dir,
        };
        for d in [&pair.outbox, &pair.gateway, &pair.inbox, &pair.quarantine] {
            fs::create_dir_all(d).unwrap();
        }
        pair
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Packs one bundle with the real CLI into the sender's outbox; returns its JSON summary.
    pub fn pack(&self, kind: &str, files: &[&Path]) -> serde_json::Value {
        let mut args = vec![
            "pack",
            "--config",
            self.sender_config.to_str().unwrap(),
            "--channel",
            "internet-to-extranet",
            "--kind",
            kind,
        ];
        for f in files {
            args.push(f.to_str().unwrap());
        }
        let out = ferry(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Packs a bundle with one small generated item.
    pub fn pack_small(&self, n: usize) -> serde_json::Value {
        let item = self.root().join(format!("item-{n}.txt"));
        fs::write(&item, format!("payload {n}\n").repeat(40)).unwrap();
        self.pack("demo.item", &[&item])
    }

    pub fn start_sender(&self) -> Agent {
        start(&self.sender_config)
    }

    pub fn start_receiver(&self) -> Agent {
        start(&self.receiver_config)
    }

    pub fn rx_log(&self) -> PathBuf {
        self.root()
            .join("extranet/ferry/log/internet-to-extranet-rx")
    }

    pub fn tx_log(&self) -> PathBuf {
        self.root()
            .join("internet/ferry/log/internet-to-extranet-tx")
    }

    /// Bundle files (final names only) in the inbox.
    pub fn inbox_bundles(&self) -> Vec<String> {
        names(&self.inbox)
            .into_iter()
            .filter(|n| n.ends_with(".owb") && !n.starts_with('.'))
            .collect()
    }

    /// Reason files in quarantine, parsed.
    pub fn reasons(&self) -> Vec<serde_json::Value> {
        names(&self.quarantine)
            .into_iter()
            .filter(|n| n.ends_with(".reason"))
            .map(|n| serde_json::from_slice(&fs::read(self.quarantine.join(n)).unwrap()).unwrap())
            .collect()
    }
}

/// A running agent process; killed if the test ends without stopping it (a failing assertion
/// must not leave agents running on a deleted folder).
pub struct Agent(Option<Child>);

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn start(config: &Path) -> Agent {
    let child = Command::new(BIN)
        .args(["run", "--config", config.to_str().unwrap()])
        .env("OW_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Agent(Some(child))
}

/// Sends SIGTERM and waits; returns whether the process exited successfully.
pub fn terminate(mut agent: Agent) -> bool {
    let mut child = agent.0.take().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("agent did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL: no chance to clean up.
pub fn kill9(agent: Agent) {
    drop(agent);
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    cond()
}
