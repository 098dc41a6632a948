//! Operators' tools: `inspect` (a header without keys), `verify` (a bundle against a trust file,
//! or exactly as a configured receiving agent judges it) and `status` (per channel: last
//! sequence, backlog, gaps, quarantined count, files held back).

use std::fs::{self, File};
use std::path::Path;

use chrono::Utc;
use ow_bundle::{
    DiscardSink, EncryptionSecret, Limits, TrustStore, VerifiedBundle, VerifyError, VerifyOptions,
    Zone,
};
use serde::Serialize;

use crate::AgentError;
use crate::config::FerryConfig;
use crate::dropfolder::{self, REASON_SUFFIX};
use crate::policy::{ChannelPolicy, Refusal};
use crate::state::{FerryState, Held};

/// The header of a bundle file as JSON, with its digest and size. Needs no keys, and says nothing
/// about whether the bundle is genuine.
pub fn inspect(path: &Path) -> Result<serde_json::Value, InspectError> {
    let mut file = File::open(path).map_err(|e| InspectError::Io(path.display().to_string(), e))?;
    let file_bytes = file
        .metadata()
        .map_err(|e| InspectError::Io(path.display().to_string(), e))?
        .len();
    let bundle = ow_bundle::read_header(&mut file, &Limits::default())?;
    Ok(serde_json::json!({
        "file": path.display().to_string(),
        "file_bytes": file_bytes,
        "digest": bundle.digest().to_string(),
        "verified": false,
        "header": bundle.header(),
    }))
}

/// Why `inspect` could not read a header.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file could not be opened.
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    /// The file is not a readable bundle.
    #[error("{0}")]
    Bundle(#[from] ow_bundle::BundleError),
}

/// Verifies a bundle file fully (signature, hashes, and the payload when a decryption key is
/// given or the payload is not encrypted) as the receiving zone would.
pub fn verify_file(
    path: &Path,
    trust: &TrustStore,
    receiver: Zone,
    decryption: Option<&EncryptionSecret>,
) -> Result<VerifiedBundle, VerifyError> {
    let mut file = File::open(path).map_err(|source| VerifyError::Io {
        context: "opening the bundle file",
        source,
    })?;
    let options = VerifyOptions {
        trust,
        receiver,
        decryption,
        now: Utc::now(),
        limits: Limits::default(),
        max_clock_skew: chrono::Duration::seconds(VerifyOptions::DEFAULT_MAX_CLOCK_SKEW_SECONDS),
    };
    ow_bundle::verify_to_sink(&mut file, &options, &mut DiscardSink)
}

/// Judges a bundle file exactly as the zone's receiving agent for its channel would — the same
/// size cap, format limits, clock skew, channel and kind checks ([`ChannelPolicy`]) — except the
/// checks against bundles already landed. A bundle whose channel has no receiving agent in the
/// configuration is refused, as no agent would take it.
pub fn verify_as_agent(
    path: &Path,
    config: &FerryConfig,
    trust: &TrustStore,
    decryption: &EncryptionSecret,
) -> Result<VerifiedBundle, Refusal> {
    let mut file = File::open(path)
        .map_err(|e| Refusal::new("io", format!("cannot open {}: {e}", path.display())))?;
    // The channel decides which agent's policy applies; the header is only read for routing here,
    // and verified below under that policy.
    let routed = ow_bundle::read_header(&mut file, &Limits::default())
        .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
    let channel = routed.header().channel;
    let Some(receive) = config.receive.iter().find(|r| r.channel == channel) else {
        return Err(Refusal::new(
            "wrong-channel",
            format!(
                "the bundle is for channel {channel}, and this configuration has no receiving                  agent for it; no agent of this zone would take it"
            ),
        ));
    };
    let policy = ChannelPolicy::from_config(config.zone, receive);
    use std::io::Seek;
    file.rewind()
        .map_err(|e| Refusal::new("io", format!("cannot read {}: {e}", path.display())))?;
    policy.judge_file(&mut file, trust, Some(decryption), Utc::now())
}

/// One agent's view in `status`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentStatus {
    /// Agent name.
    pub agent: String,
    /// `send` or `receive`.
    pub role: &'static str,
    /// Channel name.
    pub channel: String,
    /// Highest sequence sent or landed (0 when none).
    pub last_sequence: u64,
    /// Bundles sent or landed.
    pub count: u64,
    /// Files waiting: in the outbox (send) or in the gateway folder (receive).
    pub backlog: usize,
    /// Missing sequence ranges below the highest landed one (receive only).
    pub gaps: Vec<(u64, u64)>,
    /// Files in quarantine (receive) or set aside from the outbox (send).
    pub quarantined: usize,
    /// Files the agent could not handle and holds back with backoff, or gave up on (`gave_up`):
    /// they stay where they are until an operator removes or repairs them.
    pub held: Vec<Held>,
    /// Sent bundles a verified receipt confirmed (send only).
    pub confirmed: Option<u64>,
    /// When the latest bundle (a heartbeat included) landed (receive only).
    pub last_landed_at: Option<chrono::DateTime<Utc>>,
    /// `lost`, `no-traffic` and `unconfirmed` alarms ([`crate::heartbeat::Alarm`]).
    pub alarms: Vec<crate::heartbeat::Alarm>,
}

/// The status of every agent in a zone's configuration. Safe to run while the agents run.
pub async fn status(config: &FerryConfig) -> Result<Vec<AgentStatus>, AgentError> {
    status_at(config, Utc::now()).await
}

/// [`status`] with the alarms judged as of `now`.
pub async fn status_at(
    config: &FerryConfig,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<AgentStatus>, AgentError> {
    use crate::heartbeat::{lost_alarm, silence_alarm, unconfirmed_alarm};
    let state = FerryState::open(&config.state_db()).await?;
    let mut report = Vec::new();
    for send in &config.send {
        let channel = send.channel.to_string();
        let (count, last_sequence) = state.sent_summary(&channel).await?;
        let mut alarms = Vec::new();
        if let Some(within) = config.oneway.confirm_within {
            let cutoff = now - chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
            let late = crate::receipts::unconfirmed(&state, &channel, cutoff).await?;
            alarms.extend(unconfirmed_alarm(&channel, &late, within));
        }
        report.push(AgentStatus {
            confirmed: Some(crate::receipts::confirmed_count(&state, &channel).await?),
            last_landed_at: None,
            alarms,
            agent: send.name.clone(),
            role: "send",
            channel,
            last_sequence,
            count,
            backlog: count_candidates(&send.outbox)?,
            gaps: Vec::new(),
            quarantined: count_reasons(&send.rejected)?,
            held: state.held(&send.name).await?,
        });
    }
    for receive in &config.receive {
        let channel = receive.channel.to_string();
        let gaps = state.missing_ranges(&channel).await?;
        let last_landed_at = state.last_landed_at(&channel).await?;
        let mut alarms: Vec<_> = lost_alarm(&channel, &gaps).into_iter().collect();
        if let Some(threshold) = config.oneway.silence_alarm {
            alarms.extend(silence_alarm(&channel, last_landed_at, now, threshold));
        }
        report.push(AgentStatus {
            agent: receive.name.clone(),
            role: "receive",
            last_sequence: state.highest_landed(&channel).await?,
            count: state.landed_count(&channel).await?,
            backlog: count_candidates(&receive.gateway)?,
            gaps,
            confirmed: None,
            last_landed_at,
            alarms,
            quarantined: count_reasons(&receive.quarantine)?,
            held: state.held(&receive.name).await?,
            channel,
        });
    }
    state.close().await;
    Ok(report)
}

fn count_candidates(dir: &Path) -> Result<usize, AgentError> {
    match dropfolder::list_candidates(dir) {
        Ok(files) => Ok(files.len()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(AgentError::io(dir, err)),
    }
}

fn count_reasons(dir: &Path) -> Result<usize, AgentError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(AgentError::io(dir, err)),
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry.map_err(|e| AgentError::io(dir, e))?;
        if entry.file_name().to_string_lossy().ends_with(REASON_SUFFIX) {
            n += 1;
        }
    }
    Ok(n)
}

/// Renders `status` as a table for a terminal.
pub fn status_table(report: &[AgentStatus]) -> String {
    let mut out = format!(
        "{:<32} {:<8} {:<24} {:>20} {:>8} {:>8} {:>11} {:>5}  {}\n",
        "AGENT", "ROLE", "CHANNEL", "LAST SEQ", "COUNT", "BACKLOG", "QUARANTINE", "HELD", "GAPS"
    );
    for a in report {
        let gaps = if a.gaps.is_empty() {
            "-".to_owned()
        } else {
            a.gaps
                .iter()
                .map(|(from, to)| {
                    if from == to {
                        from.to_string()
                    } else {
                        format!("{from}-{to}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        out.push_str(&format!(
            "{:<32} {:<8} {:<24} {:>20} {:>8} {:>8} {:>11} {:>5}  {}\n",
            a.agent,
            a.role,
            a.channel,
            a.last_sequence,
            a.count,
            a.backlog,
            a.quarantined,
            a.held.len(),
            gaps
        ));
    }
    for a in report {
        for alarm in &a.alarms {
            out.push_str(&format!(
                "ALARM {} on {}: [{}] {}\n",
                a.agent, a.channel, alarm.code, alarm.message
            ));
        }
        for h in &a.held {
            out.push_str(&format!(
                "held by {}: {} [{}{}] after {} attempt(s): {}\n",
                a.agent,
                h.file,
                h.code,
                if h.gave_up { ", gave up" } else { "" },
                h.attempts,
                h.message
            ));
        }
    }
    out
}
