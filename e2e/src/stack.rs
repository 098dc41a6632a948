//! Starting and stopping a local stack from the real binaries.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The path of a workspace binary built next to the running test (`target/<profile>/<name>`).
pub fn binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the test executable")?;
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the test executable is not in a Cargo target folder")?;
    let path = profile_dir.join(name);
    if !path.is_file() {
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        bail!(
            "{} is not built; run `cargo build{} --workspace --bins`{}",
            path.display(),
            if release { " --release" } else { "" },
            if release {
                " first (benchmarks run the release binaries)"
            } else {
                " (or `cargo test --workspace`, which builds it)"
            }
        );
    }
    Ok(path)
}

/// A free loopback port (the listener is closed before the server binds it).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Options for [`Stack::start`].
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Extra `--set key=value` for the internet zone server.
    pub internet_sets: Vec<String>,
    /// Extra `--set key=value` for the extranet zone server.
    pub extranet_sets: Vec<String>,
    /// Also run the cadastral zone: `ow-intranet`, its ferry agents, the one-way gateway from
    /// the extranet and the offline-media routes both ways (carried by [`Stack::carry_discs`]).
    pub intranet: bool,
}

/// A running stack. Dropping it stops every process.
pub struct Stack {
    /// Everything the stack writes lives here.
    pub root: PathBuf,
    /// `http://127.0.0.1:<port>` of the citizen portal.
    pub internet_url: String,
    /// `http://127.0.0.1:<port>` of the registrar back office.
    pub extranet_url: String,
    /// `http://127.0.0.1:<port>` of the cadastral zone, when it runs.
    pub intranet_url: Option<String>,
    /// What `ow-intranet seed-demo --json` printed, when it runs.
    pub intranet_seed: serde_json::Value,
    /// What `ow-extranet seed-demo --json` printed.
    pub seed: serde_json::Value,
    children: Vec<(String, Child)>,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("root", &self.root)
            .field("internet_url", &self.internet_url)
            .field("extranet_url", &self.extranet_url)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Generates keys, writes configurations, seeds the demo register, starts both zone servers
    /// and both zones' ferry agents, and waits until the servers answer `/healthz`.
    pub fn start(options: StackOptions) -> Result<Stack> {
        let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
        let root = dir.path().to_path_buf();
        let ferry = binary("ow-ferry")?;
        let internet = binary("ow-internet")?;
        let extranet = binary("ow-extranet")?;
        let keys = root.join("keys");
        let zones: &[&str] = if options.intranet {
            &["internet", "extranet", "intranet"]
        } else {
            &["internet", "extranet"]
        };
        for zone in zones {
            run(Command::new(&ferry)
                .args(["keygen", "--zone", zone, "--out"])
                .arg(&keys))?;
        }
        let mut channels = vec!["internet-to-extranet", "extranet-to-internet"];
        if options.intranet {
            channels.extend(["extranet-to-intranet", "intranet-to-extranet"]);
        }
        let mut trust = Command::new(&ferry);
        trust.args(["trust", "--keys"]).arg(&keys);
        for c in &channels {
            trust.args(["--channel", c]);
        }
        run(trust.arg("--out").arg(root.join("trust.toml")))?;
        let ferry_config = |zone: &str, send: &str, receive: &str| {
            format!(
                "zone = \"{zone}\"\ndata_dir = \"{zone}/ferry\"\n\n[keys]\n\
                 signing_key = \"keys/{zone}.sign.secret\"\nencryption_key = \"keys/{zone}.enc.secret\"\n\
                 trust_file = \"trust.toml\"\n\n\
                 [[send]]\nchannel = \"{send}\"\noutbox = \"{zone}/outbox\"\ngateway = \"gateway/{send}\"\n\
                 marker = true\nrescan_ms = 200\n\n\
                 [[receive]]\nchannel = \"{receive}\"\ngateway = \"gateway/{receive}\"\ninbox = \"{zone}/inbox\"\n\
                 settle_ms = 200\nrescan_ms = 200\n"
            )
        };
        fs::write(
            root.join("internet.ferry.toml"),
            ferry_config("internet", "internet-to-extranet", "extranet-to-internet"),
        )?;
        let mut extranet_ferry =
            ferry_config("extranet", "extranet-to-internet", "internet-to-extranet");
        if options.intranet {
            extranet_ferry.push_str(zone_configs::EXTRANET_FERRY_INTRANET);
            fs::write(
                root.join("intranet.ferry.toml"),
                zone_configs::INTRANET_FERRY,
            )?;
        }
        fs::write(root.join("extranet.ferry.toml"), extranet_ferry)?;
        let internet_port = free_port()?;
        let extranet_port = free_port()?;
        let internet_url = format!("http://127.0.0.1:{internet_port}");
        let extranet_url = format!("http://127.0.0.1:{extranet_port}");
        zone_configs::write(&root, internet_port, extranet_port)?;
        let intranet_port = free_port()?;
        let intranet_url = options
            .intranet
            .then(|| format!("http://127.0.0.1:{intranet_port}"));
        if options.intranet {
            zone_configs::write_intranet(&root, intranet_port)?;
            // The back office's link to the cadastral zone ([exchange] is its last section).
            let mut extranet_toml = fs::read_to_string(root.join("extranet.toml"))?;
            extranet_toml.push_str(
                "intranet_outbox = \"extranet/outbox-intranet\"\n\
                 intranet_media_outbox = \"extranet/media-outbox-intranet\"\n\
                 intranet_inbox = \"extranet/inbox-intranet\"\n",
            );
            fs::write(root.join("extranet.toml"), extranet_toml)?;
        }
        run(Command::new(&internet)
            .arg("init-pii-key")
            .arg(root.join("keys/internet.pii.keys")))?;
        run(Command::new(&extranet)
            .args(["init-keys", "--config"])
            .arg(root.join("extranet.toml")))?;

        let seed_out = run(Command::new(&extranet)
            .args(["seed-demo", "--json", "--config"])
            .arg(root.join("extranet.toml")))?;
        let seed: serde_json::Value = serde_json::from_str(&seed_out)
            .with_context(|| format!("seed-demo --json printed something else: {seed_out}"))?;

        let intranet_seed = if options.intranet {
            let intranet = binary("ow-intranet")?;
            run(Command::new(&intranet)
                .args(["init-keys", "--config"])
                .arg(root.join("intranet.toml")))?;
            let out = run(Command::new(&intranet)
                .args(["seed-demo", "--json", "--config"])
                .arg(root.join("intranet.toml")))?;
            serde_json::from_str(&out).with_context(|| {
                format!("ow-intranet seed-demo --json printed something else: {out}")
            })?
        } else {
            serde_json::Value::Null
        };

        let mut stack = Stack {
            root: root.clone(),
            internet_url,
            extranet_url,
            intranet_url: intranet_url.clone(),
            seed,
            intranet_seed,
            children: Vec::new(),
            _dir: Some(dir),
        };
        for zone in zones {
            stack.spawn(
                &format!("{zone}-ferry"),
                Command::new(&ferry)
                    .arg("run")
                    .arg("--config")
                    .arg(root.join(format!("{zone}.ferry.toml"))),
            )?;
        }
        let mut cmd = Command::new(&internet);
        cmd.args(["serve", "--config"])
            .arg(root.join("internet.toml"));
        for set in &options.internet_sets {
            cmd.args(["--set", set]);
        }
        stack.spawn("ow-internet", &mut cmd)?;
        let mut cmd = Command::new(&extranet);
        cmd.args(["serve", "--config"])
            .arg(root.join("extranet.toml"));
        for set in &options.extranet_sets {
            cmd.args(["--set", set]);
        }
        stack.spawn("ow-extranet", &mut cmd)?;
        if let Some(url) = &intranet_url {
            let intranet = binary("ow-intranet")?;
            stack.spawn(
                "ow-intranet",
                Command::new(&intranet)
                    .args(["serve", "--config"])
                    .arg(root.join("intranet.toml")),
            )?;
            stack.wait_healthy(&intranet, url)?;
        }
        stack.wait_healthy(&internet, &stack.internet_url.clone())?;
        stack.wait_healthy(&extranet, &stack.extranet_url.clone())?;
        Ok(stack)
    }

    /// What the disc courier does (`deploy/local/courier.sh`): exports `channel`'s pending
    /// bundles from `from` as a set of discs (folders) and imports every disc on `to`. Returns
    /// how many discs were carried.
    pub fn carry_discs(&self, channel: &str, from: &str, to: &str) -> Result<usize> {
        let ferry = binary("ow-ferry")?;
        let drive = self.root.join("media").join(channel);
        fs::create_dir_all(&drive)?;
        let set = drive.join(format!("set-{}", uuid_like()));
        let export = Command::new(&ferry)
            .args(["media", "export", "--config"])
            .arg(self.root.join(format!("{from}.ferry.toml")))
            .args(["--channel", channel, "--set"])
            .arg(&set)
            .env("OW_LOG", "warn")
            .output()
            .context("cannot run ow-ferry media export")?;
        if !export.status.success() {
            let stderr = String::from_utf8_lossy(&export.stderr);
            // Nothing pending yet: the courier would simply carry nothing this round.
            if stderr.contains("nothing to export") {
                return Ok(0);
            }
            bail!("ow-ferry media export failed ({}): {stderr}", export.status);
        }
        if !set.is_dir() {
            return Ok(0);
        }
        let mut discs: Vec<PathBuf> = fs::read_dir(&set)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        discs.sort();
        for disc in &discs {
            run(Command::new(&ferry)
                .args(["media", "import", "--config"])
                .arg(self.root.join(format!("{to}.ferry.toml")))
                .args(["--channel", channel, "--disc"])
                .arg(disc))?;
        }
        Ok(discs.len())
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) -> Result<()> {
        let log = fs::File::create(self.root.join(format!("{name}.log")))?;
        let child = cmd
            .env("OW_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    fn wait_healthy(&mut self, bin: &Path, url: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new(bin)
                .args(["healthcheck", "--url", url])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            let exited =
                self.children
                    .iter_mut()
                    .find_map(|(name, child)| match child.try_wait() {
                        Ok(Some(status)) => Some((name.clone(), status)),
                        _ => None,
                    });
            if let Some((name, status)) = exited {
                bail!("{name} exited ({status}); its log:\n{}", self.log(&name));
            }
            if Instant::now() > deadline {
                bail!("{url} did not become healthy within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A seeded unit of district `district`, seized or not, with its holders and certificate
    /// (as `seed-demo --json` printed it).
    pub fn demo_unit(&self, district: &str, seized: bool) -> Result<serde_json::Value> {
        self.seed["units"]
            .as_array()
            .and_then(|units| {
                units.iter().find(|u| {
                    u["district_code"] == district && u["seized"].as_bool() == Some(seized)
                })
            })
            .cloned()
            .with_context(|| format!("no seeded unit in {district} with seized = {seized}"))
    }

    /// The log of one process (`ow-internet`, `ow-extranet`, `ow-intranet`, `<zone>-ferry`).
    pub fn log(&self, name: &str) -> String {
        fs::read_to_string(self.root.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Keeps the folder after the test (for looking at a failure).
    pub fn keep(&mut self) -> PathBuf {
        if let Some(dir) = self._dir.take() {
            let _ = dir.keep();
        }
        self.root.clone()
    }
}

impl Stack {
    /// Stops every process (TERM, then KILL after 10 s) and keeps the folder until the stack is
    /// dropped, so a test can look at everything the stack left on disk.
    pub fn stop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, child) in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep the folder, with every process's log, for looking at the failure.
            let kept = self.keep();
            eprintln!("stack folder kept for inspection: {}", kept.display());
        }
        self.stop();
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .env("OW_LOG", "warn")
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A name unique enough for a set folder within one test run.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}")
}

mod zone_configs {
    //! The zone servers' configurations, as in `deploy/local/` but on free ports and in the
    //! stack's own folder.
    use std::path::Path;

    /// The extranet's ferry routes towards the cadastral zone: the one-way gateway out, the
    /// media routes both ways.
    pub const EXTRANET_FERRY_INTRANET: &str = "\n[[send]]\nchannel = \"extranet-to-intranet\"\n\
        outbox = \"extranet/outbox-intranet\"\ngateway = \"gateway/extranet-to-intranet\"\n\
        marker = true\nrescan_ms = 200\n\n\
        [[media]]\nchannel = \"intranet-to-extranet\"\ninbox = \"extranet/inbox-intranet\"\n\
        refused = \"extranet/refused-media\"\n\n\
        [[media]]\nchannel = \"extranet-to-intranet\"\noutbox = \"extranet/media-outbox-intranet\"\n\
        sent = \"extranet/sent-media\"\n";

    /// The intranet's ferry: the far side of the one-way gateway, and media both ways.
    pub const INTRANET_FERRY: &str = "zone = \"intranet\"\ndata_dir = \"intranet/ferry\"\n\n\
        [keys]\nsigning_key = \"keys/intranet.sign.secret\"\n\
        encryption_key = \"keys/intranet.enc.secret\"\ntrust_file = \"trust.toml\"\n\n\
        [[receive]]\nchannel = \"extranet-to-intranet\"\ngateway = \"gateway/extranet-to-intranet\"\n\
        inbox = \"intranet/inbox\"\nrequire_marker = true\nrescan_ms = 200\n\n\
        [[media]]\nchannel = \"intranet-to-extranet\"\noutbox = \"intranet/outbox\"\n\
        sent = \"intranet/sent-media\"\n\n\
        [[media]]\nchannel = \"extranet-to-intranet\"\ninbox = \"intranet/inbox\"\n\
        refused = \"intranet/refused-media\"\n";

    /// The cadastral zone's server configuration.
    pub fn write_intranet(root: &Path, port: u16) -> anyhow::Result<()> {
        std::fs::write(
            root.join("intranet.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
                 data_dir = \"intranet/app\"\npii_key_file = \"keys/intranet.pii.keys\"\n\
                 cookie_secure = false\n\n\
                 [login]\nthrottle_per_minute = 100000\nthrottle_burst = 100000\n\n\
                 [exchange]\nsigning_key_file = \"keys/intranet.sign.secret\"\n\
                 encryption_key_file = \"keys/intranet.enc.secret\"\ntrust_file = \"trust.toml\"\n\
                 outbox = \"intranet/outbox\"\ninbox = \"intranet/inbox\"\n\
                 packer_state = \"intranet/ferry/ferry-state.db\"\npoll_interval_ms = 200\n"
            ),
        )?;
        Ok(())
    }

    pub fn write(root: &Path, internet_port: u16, extranet_port: u16) -> anyhow::Result<()> {
        std::fs::write(
            root.join("internet.toml"),
            format!(
                "listen = \"127.0.0.1:{internet_port}\"\npublic_url = \"http://127.0.0.1:{internet_port}\"\n\
                 data_dir = \"internet/app\"\npii_key_file = \"keys/internet.pii.keys\"\n\
                 certificate_key_file = \"keys/extranet-cert.pub\"\ncookie_secure = false\n\n\
                 [password]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n\n\
                 # The tests and the load benchmark sign many citizens in from 127.0.0.1.\n\
                 [throttle]\nlogin_per_minute = 100000\nlogin_burst = 100000\n\n\
                 [exchange]\nsigning_key_file = \"keys/internet.sign.secret\"\n\
                 encryption_key_file = \"keys/internet.enc.secret\"\ntrust_file = \"trust.toml\"\n\
                 outbox_dir = \"internet/outbox\"\ninbox_dir = \"internet/inbox\"\n\
                 packer_state = \"internet/ferry/ferry-state.db\"\npoll_ms = 200\n"
            ),
        )?;
        std::fs::write(
            root.join("extranet.toml"),
            format!(
                "listen = \"127.0.0.1:{extranet_port}\"\npublic_url = \"http://127.0.0.1:{extranet_port}\"\n\
                 data_dir = \"extranet/app\"\npii_key_file = \"keys/extranet.pii.keys\"\n\
                 certificate_key_file = \"keys/extranet-cert.secret\"\n\
                 portal_verify_url = \"http://127.0.0.1:{internet_port}/verify\"\ncookie_secure = false\n\n\
                 [login]\nthrottle_per_minute = 100000\nthrottle_burst = 100000\n\n\
                 [exchange]\nsigning_key_file = \"keys/extranet.sign.secret\"\n\
                 encryption_key_file = \"keys/extranet.enc.secret\"\ntrust_file = \"trust.toml\"\n\
                 outbox = \"extranet/outbox\"\ninbox = \"extranet/inbox\"\n\
                 packer_state = \"extranet/ferry/ferry-state.db\"\npoll_interval_ms = 200\n"
            ),
        )?;
        Ok(())
    }
}
