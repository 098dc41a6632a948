//! Files an agent could not handle, held back with backoff so that one hostile or broken file never
//! stops the pass for the others.
//!
//! A failure that concerns one file (it cannot be read, moved or removed) holds that file: it is
//! skipped until its backoff expires (1 s, doubling, at most 5 min), then tried again. After
//! [`Holds::BUDGET`] attempts the agent gives up on it — it stays where it is, listed with its
//! reason in `ow-ferry status` (the `held_files` table), until it changes, an operator removes it,
//! or the agent restarts. A file that changes (size or time) is judged afresh at once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use crate::dropfolder::Seen;
use crate::state::Held;

/// First backoff.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
struct Hold {
    attempts: u32,
    until: Option<Instant>,
    first_at: DateTime<Utc>,
    len: u64,
    modified: SystemTime,
}

/// The files one agent is holding back.
#[derive(Debug, Default)]
pub struct Holds {
    agent: String,
    held: HashMap<String, Hold>,
}

impl Holds {
    /// Attempts before the agent gives up on a file.
    pub const BUDGET: u32 = 6;

    /// No file held yet.
    pub fn new(agent: &str) -> Self {
        Self {
            agent: agent.to_owned(),
            held: HashMap::new(),
        }
    }

    /// True when `file` is held and its backoff has not expired. A held file that changed since
    /// is released (false).
    pub fn is_held(&mut self, file: &Seen, now: Instant) -> bool {
        let Some(hold) = self.held.get(&file.name) else {
            return false;
        };
        if hold.len != file.len || hold.modified != file.modified {
            self.held.remove(&file.name);
            return false;
        }
        hold.until.is_none_or(|until| now < until)
    }

    /// Notes a failure of `file`; returns the row to record for operators.
    pub fn fail(&mut self, file: &Seen, code: &str, message: &str, now: Instant) -> Held {
        let wall = Utc::now();
        let hold = self.held.entry(file.name.clone()).or_insert(Hold {
            attempts: 0,
            until: None,
            first_at: wall,
            len: file.len,
            modified: file.modified,
        });
        hold.attempts = hold.attempts.saturating_add(1);
        hold.len = file.len;
        hold.modified = file.modified;
        let gave_up = hold.attempts >= Self::BUDGET;
        hold.until = if gave_up {
            None
        } else {
            Some(now + backoff(hold.attempts))
        };
        Held {
            agent: self.agent.clone(),
            file: file.name.clone(),
            code: code.to_owned(),
            message: message.to_owned(),
            attempts: hold.attempts,
            gave_up,
            first_at: hold.first_at,
            last_at: wall,
        }
    }

    /// Releases `name` (handled at last); true when it was held.
    pub fn release(&mut self, name: &str) -> bool {
        self.held.remove(name).is_some()
    }

    /// Releases every held name not in `present`; returns them.
    pub fn retain_present<'a>(
        &mut self,
        present: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let present: HashSet<&str> = present.into_iter().collect();
        let gone: Vec<String> = self
            .held
            .keys()
            .filter(|name| !present.contains(name.as_str()))
            .cloned()
            .collect();
        for name in &gone {
            self.held.remove(name);
        }
        gone
    }

    /// Number of files held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// The wait after `attempts` failures: 1 s, 2 s, 4 s, … at most 5 min.
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn seen(name: &str, len: u64) -> Seen {
        Seen {
            name: name.into(),
            path: PathBuf::from(name),
            len,
            modified: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_failing_file_backs_off_then_is_given_up_and_a_change_releases_it() {
        let mut holds = Holds::new("rx");
        let t0 = Instant::now();
        let file = seen("a.owb", 10);
        assert!(!holds.is_held(&file, t0));
        let row = holds.fail(&file, "io-error", "cannot read", t0);
        assert_eq!((row.attempts, row.gave_up), (1, false));
        assert!(holds.is_held(&file, t0 + Duration::from_millis(900)));
        assert!(!holds.is_held(&file, t0 + Duration::from_millis(1100)));
        let mut last = row;
        for _ in 1..Holds::BUDGET {
            last = holds.fail(&file, "io-error", "cannot read", t0);
        }
        assert!(last.gave_up);
        assert!(holds.is_held(&file, t0 + Duration::from_secs(86_400)));
        // The file changed: judged afresh.
        assert!(!holds.is_held(&seen("a.owb", 11), t0));
        assert!(holds.is_empty());
        holds.fail(&file, "x", "y", t0);
        assert_eq!(holds.retain_present(["b.owb"]), vec!["a.owb".to_string()]);
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
