//! Heartbeats and the alarms of a one-way channel.
//!
//! A sending agent that has sent nothing for `[oneway] heartbeat_s` packs a `ferry.heartbeat`
//! bundle into its own outbox and sends it like any other: signed, sequenced, chained. The
//! receiving agent lands it (so its sequence is accounted for) and drops it instead of handing it
//! to the zone ([`crate::receipts::take_landed`]). On the receiving side, a channel on which
//! nothing has landed for `silence_alarm_s` shows the `no-traffic` alarm; a gap in the landed
//! sequences shows the `lost` alarm (and is logged as a `gap` when seen). Every function here
//! takes the time as a parameter.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ow_bundle::{Channel, TrustStore, Zone};
use serde::{Deserialize, Serialize};

use crate::AgentError;
use crate::pack::{PackItem, PackRequest, Packed};
use crate::receipts::HEARTBEAT_KIND;
use crate::state::FerryState;

/// The one item of a heartbeat bundle.
pub const HEARTBEAT_ITEM: &str = "heartbeat.json";
/// The `format` member of a heartbeat.
pub const HEARTBEAT_FORMAT: &str = "onewindow-ferry-heartbeat/1";

/// A heartbeat's content (`heartbeat.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatPayload {
    /// Always [`HEARTBEAT_FORMAT`].
    pub format: String,
    /// The sending zone.
    pub zone: Zone,
    /// The channel it was sent on.
    pub channel: Channel,
    /// When it was packed.
    pub sent_at: DateTime<Utc>,
}

/// True when a sender whose last bundle (or start) was at `last_activity` owes a heartbeat at
/// `now`.
pub fn due(last_activity: DateTime<Utc>, now: DateTime<Utc>, interval: Duration) -> bool {
    let interval = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
    now.signed_duration_since(last_activity) >= interval
}

/// An alarm shown by `ow-ferry status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    /// `lost` (sequences missing below the highest landed), `no-traffic` (nothing landed for the
    /// configured time), or `unconfirmed` (sent bundles no receipt confirmed in time).
    pub code: &'static str,
    /// What it means and what to do.
    pub message: String,
    /// The sequences concerned, as inclusive ranges (`lost`, `unconfirmed`).
    pub sequences: Vec<(u64, u64)>,
    /// Seconds since the last landing (`no-traffic`; absent when nothing ever landed).
    pub silent_s: Option<u64>,
}

/// The `no-traffic` alarm for a channel whose last landing was at `last_landed`, if due at `now`.
pub fn silence_alarm(
    channel: &str,
    last_landed: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    threshold: Duration,
) -> Option<Alarm> {
    match last_landed {
        None => Some(Alarm {
            code: "no-traffic",
            message: format!(
                "nothing has landed on {channel} yet, not even a heartbeat; check the sending \
                 agent, its heartbeat_s and the gateway device"
            ),
            sequences: Vec::new(),
            silent_s: None,
        }),
        Some(last) => {
            let silent = now.signed_duration_since(last);
            let silent_s = u64::try_from(silent.num_seconds()).unwrap_or(0);
            (silent_s >= threshold.as_secs()).then(|| Alarm {
                code: "no-traffic",
                message: format!(
                    "nothing has landed on {channel} for {silent_s} s (alarm after {} s), not \
                     even a heartbeat; the gateway device, the link or the sending agent is down",
                    threshold.as_secs()
                ),
                sequences: Vec::new(),
                silent_s: Some(silent_s),
            })
        }
    }
}

/// A receiving agent's watch over a channel's silence: the `no-traffic` alarm is logged once per
/// silence (a landing ends it), measured from the last landing or, before any, from the start.
#[derive(Debug, Clone)]
pub struct SilenceWatch {
    threshold: Duration,
    started: DateTime<Utc>,
    /// The last landing the alarm was logged for (`Some(None)`: logged before any landing).
    alarmed_for: Option<Option<DateTime<Utc>>>,
}

impl SilenceWatch {
    /// Watches from `started` with the given threshold.
    pub fn new(threshold: Duration, started: DateTime<Utc>) -> Self {
        Self {
            threshold,
            started,
            alarmed_for: None,
        }
    }

    /// Whether the alarm is due at `now` and not yet raised for this silence.
    pub fn due(&self, last_landed: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        if self.alarmed_for == Some(last_landed) {
            return false;
        }
        let since = last_landed.map_or(self.started, |t| t.max(self.started));
        due(since, now, self.threshold)
    }

    /// The alarm to log at `now`, once per silence.
    pub fn check(
        &mut self,
        channel: &str,
        last_landed: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<Alarm> {
        if !self.due(last_landed, now) {
            return None;
        }
        self.alarmed_for = Some(last_landed);
        let since = last_landed.map_or(self.started, |t| t.max(self.started));
        silence_alarm(channel, Some(since), now, self.threshold)
    }
}

/// The `lost` alarm for the missing ranges of a channel, if any.
pub fn lost_alarm(channel: &str, missing: &[(u64, u64)]) -> Option<Alarm> {
    (!missing.is_empty()).then(|| Alarm {
        code: "lost",
        message: format!(
            "sequences {} on {channel} never landed although later ones did; ask the sending \
             zone to resend them (ow-ferry resend --channel {channel} --sequence …)",
            ranges_text(missing)
        ),
        sequences: missing.to_vec(),
        silent_s: None,
    })
}

/// The `unconfirmed` alarm for sent sequences no receipt confirmed in time, if any.
pub fn unconfirmed_alarm(channel: &str, sequences: &[u64], within: Duration) -> Option<Alarm> {
    let ranges = to_ranges(sequences);
    (!ranges.is_empty()).then(|| Alarm {
        code: "unconfirmed",
        message: format!(
            "sequences {} sent on {channel} were not confirmed by a receipt within {} s; bring \
             back the receiving zone's receipts, or resend them (ow-ferry resend)",
            ranges_text(&ranges),
            within.as_secs()
        ),
        sequences: ranges,
        silent_s: None,
    })
}

fn to_ranges(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &s in sorted {
        match ranges.last_mut() {
            Some((_, to)) if to.checked_add(1) == Some(s) => *to = s,
            _ => ranges.push((s, s)),
        }
    }
    ranges
}

fn ranges_text(ranges: &[(u64, u64)]) -> String {
    ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Packs a heartbeat into `outbox` with the channel's next sequence number.
pub async fn pack_heartbeat(
    state: &FerryState,
    signing_key: &SigningKey,
    trust: &TrustStore,
    outbox: &Path,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<Packed, AgentError> {
    let payload = HeartbeatPayload {
        format: HEARTBEAT_FORMAT.into(),
        zone: channel.from,
        channel,
        sent_at: now,
    };
    // A hidden name: the sending agent and the packer's recovery both skip dot-files.
    let item = outbox.join(format!(".heartbeat-{}.json", uuid::Uuid::now_v7()));
    let json = serde_json::to_vec(&payload)
        .map_err(|e| AgentError::Bundle(format!("cannot encode the heartbeat: {e}")))?;
    std::fs::write(&item, json).map_err(|e| AgentError::io(&item, e))?;
    let request = PackRequest {
        channel,
        kind: HEARTBEAT_KIND.into(),
        case_id: None,
        valid_for: chrono::Duration::days(30),
        encrypt: true,
        items: vec![PackItem {
            name: HEARTBEAT_ITEM.into(),
            media_type: "application/json".into(),
            path: item.clone(),
            open: None,
        }],
    };
    let packed =
        crate::pack::pack_into_outbox(state, signing_key, trust, outbox, &request, now).await;
    let _ = std::fs::remove_file(&item);
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    #[test]
    fn a_heartbeat_is_due_once_the_interval_has_passed() {
        let every = Duration::from_secs(60);
        assert!(!due(at(0), at(59), every));
        assert!(due(at(0), at(60), every));
        assert!(due(at(0), at(6000), every));
    }

    #[test]
    fn silence_raises_the_alarm_only_past_the_threshold() {
        let t = Duration::from_secs(900);
        assert_eq!(silence_alarm("c", Some(at(0)), at(899), t), None);
        let alarm =
            silence_alarm("c", Some(at(0)), at(900), t).unwrap_or_else(|| panic!("no alarm"));
        assert_eq!((alarm.code, alarm.silent_s), ("no-traffic", Some(900)));
        let never = silence_alarm("c", None, at(0), t).unwrap_or_else(|| panic!("no alarm"));
        assert_eq!(never.silent_s, None);
    }

    #[test]
    fn the_silence_alarm_is_logged_once_per_silence() {
        let mut watch = SilenceWatch::new(Duration::from_secs(60), at(0));
        // Before any landing, silence counts from the start.
        assert_eq!(watch.check("c", None, at(59)), None);
        let first = watch
            .check("c", None, at(60))
            .unwrap_or_else(|| panic!("no alarm"));
        assert_eq!(first.silent_s, Some(60));
        assert_eq!(watch.check("c", None, at(600)), None, "once per silence");
        // A landing ends the silence; the next one raises it again.
        assert_eq!(watch.check("c", Some(at(700)), at(720)), None);
        assert!(watch.check("c", Some(at(700)), at(760)).is_some());
        assert_eq!(watch.check("c", Some(at(700)), at(9000)), None);
    }

    #[test]
    fn lost_and_unconfirmed_alarms_name_their_sequences() {
        assert_eq!(lost_alarm("c", &[]), None);
        let lost = lost_alarm("c", &[(2, 2), (5, 7)]).unwrap_or_else(|| panic!("no alarm"));
        assert!(lost.message.contains("2,5-7"), "{}", lost.message);
        let u = unconfirmed_alarm("c", &[1, 2, 3, 9], Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no alarm"));
        assert_eq!(u.sequences, vec![(1, 3), (9, 9)]);
        assert_eq!(unconfirmed_alarm("c", &[], Duration::from_secs(5)), None);
    }
}
