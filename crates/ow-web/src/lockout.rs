//! Account lockout after repeated login failures, as pure functions of the clock.
//!
//! The zone stores two columns per account — the failure count and `locked_until` — and:
//!
//! * calls [`LockoutPolicy::check`] before verifying the password: a locked account is refused
//!   with [`Locked`] whatever the password (do not even verify it);
//! * after a wrong password or code, increments the count **in the database, atomically**
//!   (`UPDATE … SET failed = failed + 1 WHERE id = $1 RETURNING failed`) and, when
//!   [`LockoutPolicy::locks_at`] says the count it got back locks the account, stores
//!   [`LockoutPolicy::lock_until`] (never shortening a later lock). Parallel failures then each
//!   count: 100 wrong passwords sent at once count 100, where reading the count, verifying and
//!   writing count + 1 would lose most of them;
//! * after a successful login, resets both columns with a compare-and-set that only succeeds
//!   while the account is not locked (`… WHERE id = $1 AND (locked_until IS NULL OR
//!   locked_until <= now)`), and refuses the login when no row changed: a lock set by a
//!   parallel failure wins over a password verified just before it.
//!
//! The count is never reset by a lock: every [`max_failures`](LockoutPolicy::max_failures)-th
//! failure in a row locks the account, so after a lock ends the user has the full number of
//! tries again, and an attacker who keeps trying keeps it locked.
//!
//! To not reveal which accounts exist, answer an unknown login name with the same message as a
//! wrong password, and do not show a lockout message for it.

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};

/// China Standard Time (UTC+8), in which retry times are shown.
const BEIJING: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// How many failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures in a row that lock the account (default 5).
    pub max_failures: u32,
    /// How long the lock lasts (default 15 minutes).
    pub lock_for: TimeDelta,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lock_for: TimeDelta::minutes(15),
        }
    }
}

/// An account is locked until the given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the account is locked after too many failed logins; try again after {} UTC",
    until.format("%Y-%m-%d %H:%M")
)]
pub struct Locked {
    /// When the lock ends.
    pub until: DateTime<Utc>,
}

impl Locked {
    /// A short Chinese message for the user, with the retry time in Beijing time (rounded up to
    /// the minute).
    pub fn message_zh(&self) -> String {
        let until = round_up_to_minute(self.until).with_timezone(&BEIJING);
        format!(
            "登录失败次数过多，账号已暂时锁定，请于{}（北京时间）后再试",
            until.format("%Y-%m-%d %H:%M")
        )
    }

    /// Whole minutes until the lock ends, at least 1 while it lasts (for "请约N分钟后再试").
    pub fn minutes_left(&self, now: DateTime<Utc>) -> i64 {
        let secs = (self.until - now).num_seconds().max(0);
        if secs == 0 { 0 } else { (secs + 59) / 60 }
    }
}

fn round_up_to_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp();
    let has_fraction = secs % 60 != 0 || t.timestamp_subsec_nanos() != 0;
    let minute = secs.div_euclid(60) + i64::from(has_fraction);
    DateTime::from_timestamp(minute * 60, 0).unwrap_or(t)
}

impl LockoutPolicy {
    /// Whether an account with this `locked_until` is locked at `now`.
    pub fn is_locked(locked_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        locked_until.is_some_and(|until| now < until)
    }

    /// `Err(Locked)` while the account is locked.
    pub fn check(
        &self,
        locked_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), Locked> {
        match locked_until {
            Some(until) if now < until => Err(Locked { until }),
            _ => Ok(()),
        }
    }

    /// Whether the failure that brought the count of failures in a row to `failures` locks the
    /// account: every `max_failures`-th one does (a policy of 0 locks at every failure).
    pub fn locks_at(&self, failures: u32) -> bool {
        failures > 0 && failures.is_multiple_of(self.max_failures.max(1))
    }

    /// When a lock taken at `now` ends.
    pub fn lock_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.lock_for
    }

    /// After one more failure, the count having been `failures_so_far`: the new count and, when
    /// this failure locks the account, the end of the lock. For a zone that counts in memory;
    /// a database counts with an atomic increment and [`locks_at`](Self::locks_at).
    pub fn after_failure(
        &self,
        failures_so_far: u32,
        now: DateTime<Utc>,
    ) -> (u32, Option<DateTime<Utc>>) {
        let failures = failures_so_far.saturating_add(1);
        let lock = self.locks_at(failures).then(|| self.lock_until(now));
        (failures, lock)
    }

    /// After a successful login: the failure count and `locked_until` to store.
    pub fn after_success(&self) -> (u32, Option<DateTime<Utc>>) {
        (0, None)
    }

    /// Failures left before the account locks (for "还可尝试N次").
    pub fn attempts_left(&self, failures_so_far: u32) -> u32 {
        let max = self.max_failures.max(1);
        max - failures_so_far % max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn defaults() {
        let p = LockoutPolicy::default();
        assert_eq!(p.max_failures, 5);
        assert_eq!(p.lock_for, TimeDelta::minutes(15));
    }

    #[test]
    fn fifth_failure_locks_for_fifteen_minutes() {
        let p = LockoutPolicy::default();
        let now = t("2025-03-01T02:00:00Z");
        let mut failures = 0;
        for i in 1..5 {
            let (f, until) = p.after_failure(failures, now);
            assert_eq!((f, until), (i, None));
            failures = f;
        }
        assert_eq!(p.attempts_left(failures), 1);
        let (f, until) = p.after_failure(failures, now);
        assert_eq!(f, 5, "the count is kept: every failure counts");
        assert_eq!(until, Some(t("2025-03-01T02:15:00Z")));
        assert_eq!(
            p.attempts_left(f),
            5,
            "the full number of tries after the lock"
        );
    }

    #[test]
    fn every_fifth_failure_in_a_row_locks() {
        let p = LockoutPolicy::default();
        let locking: Vec<u32> = (0..=21).filter(|&n| p.locks_at(n)).collect();
        assert_eq!(locking, vec![5, 10, 15, 20]);
        assert_eq!(
            p.lock_until(t("2025-03-01T02:00:00Z")),
            t("2025-03-01T02:15:00Z")
        );
        assert!(!p.locks_at(0));
        assert!(p.locks_at(4_000_000_000), "large counts still lock");
    }

    #[test]
    fn lock_timing_edges() {
        let until = Some(t("2025-03-01T02:15:00Z"));
        assert!(LockoutPolicy::is_locked(until, t("2025-03-01T02:00:00Z")));
        assert!(LockoutPolicy::is_locked(until, t("2025-03-01T02:14:59Z")));
        assert!(!LockoutPolicy::is_locked(until, t("2025-03-01T02:15:00Z")));
        assert!(!LockoutPolicy::is_locked(until, t("2025-03-02T00:00:00Z")));
        assert!(!LockoutPolicy::is_locked(None, t("2025-03-01T02:00:00Z")));

        let p = LockoutPolicy::default();
        let err = p.check(until, t("2025-03-01T02:10:30Z")).unwrap_err();
        assert_eq!(err.until, t("2025-03-01T02:15:00Z"));
        assert_eq!(err.minutes_left(t("2025-03-01T02:10:30Z")), 5);
        assert_eq!(err.minutes_left(t("2025-03-01T02:14:59Z")), 1);
        assert_eq!(err.minutes_left(t("2025-03-01T02:15:00Z")), 0);
        assert_eq!(p.check(until, t("2025-03-01T02:15:00Z")), Ok(()));
        assert_eq!(p.after_success(), (0, None));
    }

    #[test]
    fn message_tells_when_to_retry_in_beijing_time() {
        let err = Locked {
            until: t("2025-03-01T02:14:30Z"),
        };
        assert_eq!(
            err.message_zh(),
            "登录失败次数过多，账号已暂时锁定，请于2025-03-01 10:15（北京时间）后再试"
        );
        assert!(err.to_string().contains("2025-03-01 02:14 UTC"), "{err}");
        let exact = Locked {
            until: t("2025-12-31T16:15:00Z"),
        };
        assert!(
            exact.message_zh().contains("2026-01-01 00:15"),
            "{}",
            exact.message_zh()
        );
    }

    #[test]
    fn custom_policy_and_saturation() {
        let p = LockoutPolicy {
            max_failures: 1,
            lock_for: TimeDelta::hours(1),
        };
        let now = t("2025-03-01T00:00:00Z");
        assert_eq!(
            p.after_failure(0, now),
            (1, Some(t("2025-03-01T01:00:00Z")))
        );
        let zero = LockoutPolicy {
            max_failures: 0,
            ..p
        };
        assert_eq!(
            zero.after_failure(0, now).1,
            Some(t("2025-03-01T01:00:00Z"))
        );
        let big = LockoutPolicy::default();
        assert_eq!(big.after_failure(u32::MAX, now).0, u32::MAX);
    }
}
