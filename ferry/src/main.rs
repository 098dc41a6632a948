//! `ow-ferry`: the ferry's command line. Argument parsing and wiring only; the work is in the
//! `ow_ferry`, `ow_bundle`, `ow_ferrylog` and `ow_keys` libraries.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use ow_bundle::{Channel, Zone};
use ow_ferry::config::FerryConfig;
use ow_ferry::pack::{PackItem, PackRequest};
use ow_ferry::{agent, ops, pack};
use tracing_subscriber::EnvFilter;

/// OneWindow ferry: carries signed bundles between zones through gateway folders, and lets
/// operators inspect bundles and audit the tamper-evident ferry log.
#[derive(Parser)]
#[command(name = "ow-ferry", version, about, long_about = None)]
struct Cli {
    /// Log format on standard error: `text` or `json`. Verbosity comes from OW_LOG (e.g. `debug`).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a zone's signing (Ed25519) and encryption (age X25519) key pairs. Secret files are
    /// written with mode 0600; existing keys are never overwritten.
    Keygen {
        /// The zone the keys belong to: internet, extranet or intranet.
        #[arg(long)]
        zone: Zone,
        /// Folder to write `<zone>.sign.secret`, `.sign.pub`, `.enc.secret`, `.enc.pub` into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a trust file from the public key files that `keygen` wrote into one folder: for
    /// each channel, the sending zone's signing key and the receiving zone's encryption key.
    /// Public keys only; every zone may hold the same file.
    Trust {
        /// Folder holding `<zone>.sign.pub` and `<zone>.enc.pub` of every zone named.
        #[arg(long)]
        keys: PathBuf,
        /// A channel to pin, e.g. `internet-to-extranet`; repeat for each channel.
        #[arg(long = "channel", required = true)]
        channels: Vec<Channel>,
        /// The trust file to write (replaced atomically); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the zone's sending and receiving agents until SIGTERM or Ctrl-C.
    Run {
        /// The zone's ferry configuration (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Sign files into a bundle with the channel's next sequence number and place it in the
    /// channel's outbox (or `--out`).
    Pack(PackArgs),
    /// Print a bundle's header as JSON. Needs no keys and proves nothing about authenticity.
    Inspect {
        /// The bundle file.
        bundle: PathBuf,
    },
    /// Verify a bundle as the receiving zone would; exits 1 and names the problem if refused.
    Verify(VerifyArgs),
    /// Per agent: last sequence, count, backlog, gaps and quarantined files.
    Status {
        /// The zone's ferry configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Judge the alarms as of this time (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// Receipts: what landed, signed, carried back on the return channel.
    #[command(subcommand)]
    Receipts(ReceiptsCommand),
    /// Audit a ferry log: verify, search, prove inclusion.
    #[command(subcommand)]
    Log(LogCommand),
    /// Offline media: write pending bundles onto a disc, or import one (docs/offline-media.md).
    #[command(subcommand)]
    Media(MediaCommand),
    /// From the two sides' ferry logs, per channel: sent, received, confirmed, lost (with
    /// sequences), duplicated, refused (with reasons), and whether each log verifies against its
    /// signed checkpoints. Exit 1 when a log does not verify.
    Reconcile(ReconcileArgs),
    /// Send lost bundles again as themselves (same id, sequence and signature) from `sent/`: the
    /// receiver lands one it never landed and refuses one it had as a duplicate. Prints JSON;
    /// exit 1 when a sequence could not be resent.
    Resend {
        /// The sending zone's ferry configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// The channel the bundles were sent on.
        #[arg(long)]
        channel: Channel,
        /// The sequences to resend (repeat, or separate with commas).
        #[arg(long = "sequence", required = true, value_delimiter = ',')]
        sequences: Vec<u64>,
    },
}

#[derive(Subcommand)]
enum ReceiptsCommand {
    /// Pack a signed receipt per receiving channel (every bundle landed from --from-sequence on,
    /// and the receiving agent's latest log checkpoint) into the return channel's outbox, for
    /// the next disc. The sending zone's receiving agent imports it and marks its bundles
    /// confirmed. Prints JSON.
    Write {
        /// The receiving zone's ferry configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Only the receipt for this channel (one that ends in this zone).
        #[arg(long)]
        channel: Option<Channel>,
        /// List the bundles landed from this sequence on (default 1: all of them).
        #[arg(long)]
        from_sequence: Option<u64>,
        /// Write into this folder instead of the return channel's outbox.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only for a channel on which something landed that the last receipt written for it
        /// did not list (receipts this zone imported do not count); prints `[]` and exits 0
        /// when there is nothing new. The courier (deploy/local/courier.sh) runs this.
        #[arg(long)]
        if_new: bool,
    },
}

#[derive(Args)]
struct ReconcileArgs {
    /// A sending side's log folder (a sending agent's, or its `-resend` log); repeat as needed.
    #[arg(long = "sender-log")]
    sender_logs: Vec<PathBuf>,
    /// A receiving side's log folder; repeat as needed.
    #[arg(long = "receiver-log")]
    receiver_logs: Vec<PathBuf>,
    /// Folder with the zones' `<zone>.sign.pub` files, to verify each log against its
    /// checkpoints (without it the logs are read but not verified).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// A sending zone's ferry configuration: also report what the receipts it imported confirm
    /// (each was checked when imported: signature, pinned key, channel, checkpoint).
    #[arg(long)]
    receipts: Option<PathBuf>,
    /// Print JSON instead of a report.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum MediaCommand {
    /// Write the pending bundles of a media route's outbox onto a disc (a folder: the staging
    /// area of the burner, or a mounted blank medium) as a signed BagIt bag. Bundles that do not
    /// fit stay pending for the next disc. Prints a JSON summary.
    Export {
        /// The zone's ferry configuration (TOML) with a [[media]] route that exports.
        #[arg(long)]
        config: PathBuf,
        /// The channel to export (needed when several media routes export).
        #[arg(long)]
        channel: Option<Channel>,
        /// The disc's folder: absent or empty. One disc; bundles that do not fit stay pending.
        #[arg(long, required_unless_present = "set", conflicts_with = "set")]
        disc: Option<PathBuf>,
        /// Write every pending bundle as a set of discs, one sub-folder `disc-<k>-of-<n>` each
        /// (absent or empty folder); a bundle larger than a disc is split into parts.
        #[arg(long)]
        set: Option<PathBuf>,
        /// Capacity of one disc: bytes, or e.g. 4.7G, 25G, 100G (powers of 1000).
        #[arg(long, value_parser = ow_ferry::media::parse_capacity)]
        capacity: Option<u64>,
        /// Also write an ISO 9660/Joliet image of each disc with xorriso: FILE for one disc,
        /// FILE with `-<k>-of-<n>` before its extension for each disc of a set.
        #[arg(long, value_name = "FILE")]
        iso: Option<PathBuf>,
    },
    /// Check a disc completely and land its bundles exactly once, through the receiving agent's
    /// verification and landing. A refused disc imports nothing; exit status 1 and the reason.
    Import {
        /// The zone's ferry configuration (TOML) with a [[media]] route that imports.
        #[arg(long)]
        config: PathBuf,
        /// The channel to import (needed when several media routes import).
        #[arg(long)]
        channel: Option<Channel>,
        /// The disc's folder (its mount point), or an ISO image of the disc (read with xorriso).
        #[arg(long)]
        disc: PathBuf,
    },
}

#[derive(Args)]
struct PackArgs {
    /// The zone's ferry configuration (keys, trust file, state, outboxes).
    #[arg(long)]
    config: PathBuf,
    /// The channel to send on, e.g. `internet-to-extranet`.
    #[arg(long)]
    channel: Channel,
    /// Bundle kind, e.g. `application.submitted` (lowercase letters, digits, `.`, `_`, `-`).
    #[arg(long)]
    kind: String,
    /// Case id that traces one application across zones.
    #[arg(long)]
    case_id: Option<String>,
    /// Hours the bundle stays valid; a receiver refuses it after that.
    #[arg(long, default_value_t = 72)]
    valid_hours: i64,
    /// Do not encrypt the payload (only for content that is public anyway).
    #[arg(long)]
    no_encrypt: bool,
    /// Write the bundle into this folder instead of the channel's configured outbox.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Files to include, as `PATH` or `PATH=MEDIA/TYPE`; the item name is the file name.
    #[arg(required = true)]
    items: Vec<String>,
}

#[derive(Args)]
struct VerifyArgs {
    /// Judge the bundle exactly as this configuration's receiving agent for its channel would:
    /// its trust file, zone, decryption key, size cap, clock skew and allowed kinds (not the
    /// checks against bundles already landed).
    #[arg(long, conflicts_with_all = ["trust", "receiver", "decryption_key"])]
    config: Option<PathBuf>,
    /// Trust file listing each channel's sender keys.
    #[arg(long, requires = "receiver")]
    trust: Option<PathBuf>,
    /// The zone verifying the bundle (it must be the bundle's receiver).
    #[arg(long)]
    receiver: Option<Zone>,
    /// The receiving zone's encryption secret, to check the encrypted payload's item hashes too.
    #[arg(long)]
    decryption_key: Option<PathBuf>,
    /// The bundle file.
    bundle: PathBuf,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Check every entry and checkpoint; names the first broken entry and exits 1.
    Verify {
        /// The log folder (holding entries.jsonl and checkpoints.jsonl).
        #[arg(long)]
        log: PathBuf,
        /// The signing public key of the zone whose agent wrote the log (`<zone>.sign.pub`).
        #[arg(long)]
        public_key: PathBuf,
        /// Key name in the checkpoint signatures (default: as written in the log's checkpoints;
        /// the signature binds name and key, so the default cannot be abused).
        #[arg(long)]
        key_name: Option<String>,
        /// Fail (exit 1) unless a signed checkpoint covers every entry. Entries after the last
        /// checkpoint are only hash-chained: anyone who can write the file can append or rewrite
        /// them. Use it on the log of a stopped agent (an agent signs a final checkpoint on stop).
        #[arg(long)]
        require_checkpoint: bool,
    },
    /// List entries, filtered; a table, or JSON lines with --json.
    Show(ShowArgs),
    /// Print an inclusion proof (JSON) for one entry against a signed checkpoint.
    Prove {
        /// The log folder.
        #[arg(long)]
        log: PathBuf,
        /// The entry's index.
        #[arg(long)]
        index: u64,
        /// Prove against the checkpoint of this size (default: the first covering the entry).
        #[arg(long)]
        size: Option<u64>,
    },
    /// Check an inclusion proof from `log prove` with the public key alone.
    VerifyProof {
        /// The proof file (JSON from `log prove`).
        #[arg(long)]
        proof: PathBuf,
        /// The signing public key of the zone that signed the checkpoint.
        #[arg(long)]
        public_key: PathBuf,
    },
}

#[derive(Args)]
struct ShowArgs {
    /// The log folder.
    #[arg(long)]
    log: PathBuf,
    /// Only entries at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Only entries before this time (RFC 3339).
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// Only this channel.
    #[arg(long)]
    channel: Option<String>,
    /// Only this bundle kind.
    #[arg(long)]
    kind: Option<String>,
    /// Only this case id.
    #[arg(long)]
    case_id: Option<String>,
    /// Only this event (queued, sent, received, landed, rejected, imported, media-exported,
    /// media-imported, media-refused, gap, started, stopped, action, alarm).
    #[arg(long)]
    event: Option<String>,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(format: &str) {
    let filter = EnvFilter::try_from_env("OW_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Keygen { zone, out } => {
            let keys = ow_keys::generate_zone_keys(&out, zone)?;
            println!("signing key id:        {}", keys.signing_key_id);
            println!("signing public key:    {}", keys.signing_public);
            println!("encryption public key: {}", keys.encryption_public);
            println!(
                "secret files (0600):   {}",
                keys.files.signing_secret.display()
            );
            println!(
                "                       {}",
                keys.files.encryption_secret.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Trust {
            keys,
            channels,
            out,
        } => {
            let trust = ow_keys::trust_from_key_dir(&keys, &channels)?;
            let text = format!(
                "# Generated by `ow-ferry trust` from the public keys in {}.\n{}",
                keys.display(),
                trust.to_toml_string()
            );
            match out {
                None => print!("{text}"),
                Some(path) => {
                    let tmp = path.with_extension("toml.tmp");
                    std::fs::write(&tmp, &text)
                        .with_context(|| format!("cannot write {}", tmp.display()))?;
                    std::fs::rename(&tmp, &path)
                        .with_context(|| format!("cannot replace {}", path.display()))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config } => run_agents(&config),
        Command::Pack(args) => pack_command(args),
        Command::Inspect { bundle } => {
            let value = ops::inspect(&bundle)?;
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => verify_command(args),
        Command::Status { config, json, at } => {
            let config = FerryConfig::load(&config)?;
            let report =
                tokio_runtime()?.block_on(ops::status_at(&config, at.unwrap_or_else(Utc::now)))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", ops::status_table(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Log(command) => log_command(command),
        Command::Media(command) => media_command(command),
        Command::Reconcile(args) => reconcile_command(args),
        Command::Receipts(ReceiptsCommand::Write {
            config,
            channel,
            from_sequence,
            out,
            if_new,
        }) => {
            let config = FerryConfig::load(&config)?;
            let (out, now) = (out.as_deref(), Utc::now());
            let written = tokio_runtime()?.block_on(async {
                if if_new {
                    ow_ferry::receipts::write_new_receipts(
                        &config,
                        channel,
                        from_sequence,
                        out,
                        now,
                    )
                    .await
                } else {
                    ow_ferry::receipts::write_receipts(&config, channel, from_sequence, out, now)
                        .await
                }
            })?;
            println!("{}", serde_json::to_string_pretty(&written)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Resend {
            config,
            channel,
            sequences,
        } => {
            let config = FerryConfig::load(&config)?;
            let outcomes = tokio_runtime()?
                .block_on(ow_ferry::resend::resend(&config, channel, &sequences))?;
            println!("{}", serde_json::to_string_pretty(&outcomes)?);
            let all = outcomes.iter().all(|o| o.outcome == "resent");
            Ok(if all {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn reconcile_command(args: ReconcileArgs) -> Result<ExitCode> {
    use ow_ferry::reconcile::{self, LogSource, Side};
    if args.sender_logs.is_empty() && args.receiver_logs.is_empty() {
        bail!("give at least one --sender-log or --receiver-log");
    }
    let sources: Vec<LogSource> = args
        .sender_logs
        .iter()
        .map(|dir| (dir, Side::Sender))
        .chain(args.receiver_logs.iter().map(|dir| (dir, Side::Receiver)))
        .map(|(dir, side)| LogSource {
            dir: dir.clone(),
            side,
        })
        .collect();
    // Key names are `onewindow-<zone>`; the key hash in each signature binds name and key.
    let keys = args.keys.clone();
    let key_for = move |name: &str| {
        let zone = name.strip_prefix("onewindow-")?;
        if zone.is_empty() || !zone.bytes().all(|b| b.is_ascii_lowercase()) {
            return None;
        }
        let path = keys.as_ref()?.join(format!("{zone}.sign.pub"));
        ow_keys::load_verifying_key(&path).ok()
    };
    let mut report = reconcile::reconcile(&sources, &key_for)?;
    if let Some(config) = &args.receipts {
        let config = FerryConfig::load(config)?;
        let receipts = tokio_runtime()?.block_on(async {
            let state = ow_ferry::state::FerryState::open(&config.state_db()).await?;
            let receipts = ow_ferry::receipts::imported_receipts(&state).await;
            state.close().await;
            receipts
        })?;
        reconcile::add_receipts(&mut report, &receipts);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", reconcile::table(&report));
    }
    Ok(if report.logs_verify() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn media_command(command: MediaCommand) -> Result<ExitCode> {
    use ow_ferry::media::{self, MediaError};
    let runtime = tokio_runtime()?;
    let outcome = match command {
        MediaCommand::Export {
            config,
            channel,
            disc,
            set,
            capacity,
            iso,
        } => {
            let config = FerryConfig::load(&config)?;
            let (folder, is_set) = match (disc, set) {
                (_, Some(set)) => (set, true),
                (Some(disc), None) => (disc, false),
                (None, None) => {
                    anyhow::bail!("name the disc folder (--disc) or set folder (--set)")
                }
            };
            runtime
                .block_on(media::run_export(
                    &config,
                    channel,
                    &folder,
                    capacity,
                    is_set,
                    iso.as_deref(),
                ))
                .and_then(|report| {
                    // The export's journal goes only once the operator has the summary.
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).unwrap_or_default()
                    );
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    media::export::printed(&report).map(|()| Ok(String::new()))
                })
        }
        MediaCommand::Import {
            config,
            channel,
            disc,
        } => {
            let config = FerryConfig::load(&config)?;
            runtime
                .block_on(media::run_import(&config, channel, &disc))
                .map(|report| serde_json::to_string_pretty(&report))
        }
    };
    match outcome {
        Ok(json) => {
            let json = json?;
            if !json.is_empty() {
                println!("{json}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(refused @ MediaError::Refused { .. }) => {
            eprintln!("{refused}");
            Ok(ExitCode::from(1))
        }
        Err(err) => Err(err.into()),
    }
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run_agents(config_path: &Path) -> Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    let config = FerryConfig::load(config_path)?;
    let runtime = tokio_runtime()?;
    // Handlers first: a SIGTERM that arrives while the agents start is then a clean stop, not
    // the default abrupt exit.
    let (mut term, mut interrupt) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    let running = agent::start_zone(&config)
        .with_context(|| format!("cannot start the {} zone's agents", config.zone))?;
    tracing::info!(
        zone = %config.zone,
        senders = config.send.len(),
        receivers = config.receive.len(),
        "ferry agents running; SIGTERM or Ctrl-C stops them"
    );
    let stopped_by_signal = runtime.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = interrupt.recv() => return true,
                _ = term.recv() => return true,
                _ = tick.tick() => if !running.all_running() { return false },
            }
        }
    });
    if stopped_by_signal {
        tracing::info!("stopping: finishing current batches and writing final checkpoints");
    } else {
        tracing::error!("an agent stopped unexpectedly; stopping the others");
    }
    running.stop()?;
    Ok(if stopped_by_signal {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn pack_command(args: PackArgs) -> Result<ExitCode> {
    let config = FerryConfig::load(&args.config)?;
    if args.channel.from != config.zone {
        bail!(
            "channel {} does not start from the {} zone this configuration is for",
            args.channel,
            config.zone
        );
    }
    let outbox = match (&args.out, config.sender_for(args.channel)) {
        (Some(out), _) => out.clone(),
        (None, Some(sender)) => sender.outbox.clone(),
        (None, None) => bail!(
            "no [[send]] agent for channel {} in {}; add one or pass --out",
            args.channel,
            args.config.display()
        ),
    };
    let mut items = Vec::new();
    for spec in &args.items {
        let (path, media_type) = match spec.split_once('=') {
            Some((path, media)) => (PathBuf::from(path), media.to_owned()),
            None => (
                PathBuf::from(spec),
                guess_media_type(Path::new(spec)).to_owned(),
            ),
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", path.display()))?
            .to_owned();
        items.push(PackItem {
            name,
            media_type,
            path,
            open: None,
        });
    }
    let request = PackRequest {
        channel: args.channel,
        kind: args.kind,
        case_id: args.case_id,
        valid_for: chrono::Duration::hours(args.valid_hours),
        encrypt: !args.no_encrypt,
        items,
    };
    let signing_key = ow_keys::load_signing_key(&config.keys.signing_key)?;
    let trust = ow_keys::load_trust(&config.keys.trust_file)?;
    let packed = tokio_runtime()?.block_on(async {
        let state = ow_ferry::state::FerryState::open(&config.state_db()).await?;
        let packed =
            pack::pack_into_outbox(&state, &signing_key, &trust, &outbox, &request, Utc::now())
                .await;
        state.close().await;
        packed
    })?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "file": packed.path.display().to_string(),
            "bundle_id": packed.header.bundle_id,
            "sequence": packed.header.sequence,
            "digest": packed.digest,
            "bytes": packed.bytes,
        }))?
    );
    Ok(ExitCode::SUCCESS)
}

fn guess_media_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pdf") => "application/pdf",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

fn verify_command(args: VerifyArgs) -> Result<ExitCode> {
    if let Some(path) = &args.config {
        let config = FerryConfig::load(path)?;
        let trust = ow_keys::load_trust(&config.keys.trust_file)?;
        let decryption = ow_keys::load_encryption_secret(&config.keys.encryption_key)?;
        return Ok(
            match ops::verify_as_agent(&args.bundle, &config, &trust, &decryption) {
                Ok(verified) => {
                    print_verified(&args.bundle, &verified);
                    ExitCode::SUCCESS
                }
                Err(refusal) => {
                    println!(
                        "REFUSED {} [{}]: {}",
                        args.bundle.display(),
                        refusal.code,
                        refusal.message
                    );
                    ExitCode::from(1)
                }
            },
        );
    }
    let (Some(trust), Some(receiver)) = (&args.trust, args.receiver) else {
        bail!("give --config, or --trust and --receiver");
    };
    let decryption = args
        .decryption_key
        .as_deref()
        .map(ow_keys::load_encryption_secret)
        .transpose()?;
    let trust = ow_keys::load_trust(trust)?;
    match ops::verify_file(&args.bundle, &trust, receiver, decryption.as_ref()) {
        Ok(verified) => {
            let header = verified.header();
            print_verified(&args.bundle, &verified);
            if decryption.is_none() && !matches!(header.encryption, ow_bundle::Encryption::None) {
                println!(
                    "note: signature and payload hash checked; item hashes inside the encrypted \
                     payload need --decryption-key"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            println!("REFUSED {} [{}]: {err}", args.bundle.display(), err.code());
            Ok(ExitCode::from(1))
        }
    }
}

fn print_verified(path: &Path, verified: &ow_bundle::VerifiedBundle) {
    let header = verified.header();
    println!(
        "OK {}: bundle {} sequence {} on {}, {} item(s), digest {}",
        path.display(),
        header.bundle_id,
        header.sequence,
        header.channel,
        header.items.len(),
        verified.digest()
    );
}

fn log_command(command: LogCommand) -> Result<ExitCode> {
    match command {
        LogCommand::Verify {
            log,
            public_key,
            key_name,
            require_checkpoint,
        } => {
            let key = ow_keys::load_verifying_key(&public_key)?;
            let key_name = key_name
                .or_else(|| ow_ferry::audit::key_name_in_log(&log))
                .unwrap_or_default();
            match ow_ferrylog::verify_log(&log, &key, &key_name) {
                Ok(report) => {
                    let uncovered = ow_ferry::audit::uncovered_entries(&report);
                    let status = if uncovered.is_some() && require_checkpoint {
                        "NOT COVERED"
                    } else {
                        "OK"
                    };
                    println!(
                        "{status} {}: {} entries, {} checkpoints, last checkpoint covers {} \
                         entries, {} entries after it not yet covered",
                        log.display(),
                        report.entries,
                        report.checkpoints,
                        report.last_checkpoint_size,
                        report.unsigned_tail
                    );
                    if let Some(warning) = uncovered {
                        println!("warning: {warning}");
                        if require_checkpoint {
                            return Ok(ExitCode::from(1));
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => {
                    println!("TAMPERED OR DAMAGED {}: {err}", log.display());
                    Ok(ExitCode::from(1))
                }
            }
        }
        LogCommand::Show(args) => {
            let event = args
                .event
                .as_deref()
                .map(|e| {
                    serde_json::from_value::<ow_ferrylog::Event>(serde_json::Value::String(
                        e.to_owned(),
                    ))
                    .with_context(|| format!("unknown event `{e}`"))
                })
                .transpose()?;
            let filter = ow_ferrylog::Filter {
                since: args.since,
                until: args.until,
                channel: args.channel,
                kind: args.kind,
                case_id: args.case_id,
                event,
                bundle_id: None,
            };
            let entries = ow_ferrylog::read_entries(&args.log)?;
            let mut shown = 0usize;
            if !args.json {
                println!(
                    "{:>7}  {:<24}  {:<15}  {:<22}  {:>8}  {:<28}  {:>10}  REASON",
                    "INDEX", "TIME", "EVENT", "CHANNEL", "SEQ", "KIND", "BYTES"
                );
            }
            for entry in entries.iter().filter(|e| filter.matches(e)) {
                shown += 1;
                if args.json {
                    println!("{}", serde_json::to_string(entry)?);
                } else {
                    println!(
                        "{:>7}  {:<24}  {:<15}  {:<22}  {:>8}  {:<28}  {:>10}  {}",
                        entry.index,
                        entry.time.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                        serde_json::to_value(entry.event)?
                            .as_str()
                            .unwrap_or_default(),
                        entry.channel.as_deref().unwrap_or("-"),
                        entry
                            .sequence
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "-".into()),
                        entry.kind.as_deref().unwrap_or("-"),
                        entry.bytes,
                        entry.reason.as_deref().unwrap_or("")
                    );
                }
            }
            if !args.json {
                eprintln!("{shown} of {} entries shown", entries.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Prove { log, index, size } => {
            let proof = ow_ferrylog::prove_inclusion(&log, index, size)?;
            println!("{}", serde_json::to_string_pretty(&proof)?);
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::VerifyProof { proof, public_key } => {
            let key = ow_keys::load_verifying_key(&public_key)?;
            let text = std::fs::read_to_string(&proof)
                .with_context(|| format!("cannot read {}", proof.display()))?;
            let doc: ow_ferrylog::InclusionProofDoc = serde_json::from_str(&text)
                .with_context(|| format!("{} is not an inclusion proof", proof.display()))?;
            let key_name = ow_ferry::audit::note_key_name(&doc.checkpoint).unwrap_or_default();
            match ow_ferrylog::verify_inclusion_proof(&doc, &key, &key_name) {
                Ok(_) => {
                    println!(
                        "OK entry {} is in the log of size {} signed by that key",
                        doc.index, doc.size
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => {
                    println!("INVALID PROOF: {err}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
