//! Operators' tools: `inspect` (a header without keys), `verify` (a bundle against a trust file)
//! and `status` (per channel: last sequence, backlog, gaps, quarantined count).

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
use crate::state::FerryState;

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
        max_clock_skew: chrono::Duration::minutes(10),
    };
    ow_bundle::verify_to_sink(&mut file, &options, &mut DiscardSink)
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
}

/// The status of every agent in a zone's configuration. Safe to run while the agents run.
pub async fn status(config: &FerryConfig) -> Result<Vec<AgentStatus>, AgentError> {
    let state = FerryState::open(&config.state_db()).await?;
    let mut report = Vec::new();
    for send in &config.send {
        let channel = send.channel.to_string();
        let (count, last_sequence) = state.sent_summary(&channel).await?;
        report.push(AgentStatus {
            agent: send.name.clone(),
            role: "send",
            channel,
            last_sequence,
            count,
            backlog: count_candidates(&send.outbox)?,
            gaps: Vec::new(),
            quarantined: count_reasons(&send.rejected)?,
        });
    }
    for receive in &config.receive {
        let channel = receive.channel.to_string();
        report.push(AgentStatus {
            agent: receive.name.clone(),
            role: "receive",
            last_sequence: state.highest_landed(&channel).await?,
            count: state.landed_count(&channel).await?,
            backlog: count_candidates(&receive.gateway)?,
            gaps: state.missing_ranges(&channel).await?,
            quarantined: count_reasons(&receive.quarantine)?,
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
        "{:<32} {:<8} {:<24} {:>10} {:>8} {:>8} {:>11}  {}\n",
        "AGENT", "ROLE", "CHANNEL", "LAST SEQ", "COUNT", "BACKLOG", "QUARANTINE", "GAPS"
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
            "{:<32} {:<8} {:<24} {:>10} {:>8} {:>8} {:>11}  {}\n",
            a.agent, a.role, a.channel, a.last_sequence, a.count, a.backlog, a.quarantined, gaps
        ));
    }
    out
}
