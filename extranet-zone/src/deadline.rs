//! Time limits of cases (办理时限): the legal limit of each business type in working days,
//! counted from acceptance (受理), and the deadline and time left that the queues show.
//!
//! Working days are Monday to Friday in Beijing time. Public holidays and the make-up working
//! days around them (调休) are not known yet: a district calendar comes with a later version,
//! and the pages say so. The day of acceptance does not count; the deadline is the end of the
//! last working day.

use chrono::{Datelike, NaiveDate, TimeDelta, Weekday};
use ow_domain::BusinessType;

use crate::certificates::beijing;

/// The time limit of `business` in working days from acceptance.
///
/// The ceiling of 不动产登记暂行条例 §20 is 30 working days; 国办发〔2019〕8号 and 自然资发〔2020〕83号
/// bring general and mortgage registration down to 5 working days. 查封 is registered on receipt
/// of the court's notice and 异议 the next working day (1). 首次登记 keeps the 30 days: its public
/// notice of 15 working days (实施细则 §17) is counted apart.
pub fn time_limit_working_days(business: BusinessType) -> u32 {
    match business {
        BusinessType::FirstRegistration => 30,
        BusinessType::TransferSecondHand
        | BusinessType::MortgageFirst
        | BusinessType::PreNotice => 5,
        BusinessType::Seizure | BusinessType::Objection => 1,
    }
}

/// The limit for a business code; unknown codes get the statutory ceiling of 30 days.
pub fn time_limit_for_code(code: &str) -> u32 {
    BusinessType::from_code(code).map_or(30, time_limit_working_days)
}

/// Whether `day` is a working day (Monday to Friday; holidays are not known yet).
pub fn is_working_day(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The `n`th working day after `start` (`start` itself never counts; `n = 0` is `start`).
pub fn add_working_days(start: NaiveDate, n: u32) -> NaiveDate {
    let mut day = start;
    let mut left = n;
    while left > 0 {
        day += TimeDelta::days(1);
        if is_working_day(day) {
            left -= 1;
        }
    }
    day
}

/// Working days after `from` up to and including `to`; negative when `to` is before `from`.
pub fn working_days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    let (a, b, sign) = if to >= from {
        (from, to, 1)
    } else {
        (to, from, -1)
    };
    let days = (b - a).num_days();
    // Whole weeks have five working days each; count the rest one by one.
    let weeks = days / 7;
    let mut count = weeks * 5;
    let mut day = a + TimeDelta::days(weeks * 7);
    while day < b {
        day += TimeDelta::days(1);
        if is_working_day(day) {
            count += 1;
        }
    }
    sign * count
}

/// The deadline of a case accepted at `accepted_at_ms` with a limit of `limit` working days,
/// seen at `now_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The last working day (Beijing time).
    pub due: NaiveDate,
    /// Working days left after today, up to and including `due`; 0 on the day itself,
    /// negative when overdue (how many working days late).
    pub working_days_left: i64,
}

impl Deadline {
    /// Computes the deadline.
    pub fn compute(accepted_at_ms: i64, limit: u32, now_ms: i64) -> Deadline {
        let accepted = beijing(accepted_at_ms).date_naive();
        let today = beijing(now_ms).date_naive();
        let due = add_working_days(accepted, limit);
        Deadline {
            due,
            working_days_left: working_days_between(today, due),
        }
    }

    /// Whether the deadline has passed.
    pub fn overdue(&self) -> bool {
        self.working_days_left < 0
    }

    /// `剩3个工作日`, `今日到期`, `超期2个工作日`.
    pub fn left_zh(&self) -> String {
        match self.working_days_left {
            0 => "今日到期".to_owned(),
            n if n > 0 => format!("剩{n}个工作日"),
            n => format!("超期{}个工作日", -n),
        }
    }
}

/// How long ago `since_ms` was, for the queue: `45分钟`, `5小时`, `3天`.
pub fn age_zh(since_ms: i64, now_ms: i64) -> String {
    let minutes = (now_ms - since_ms).max(0) / 60_000;
    if minutes < 60 {
        format!("{minutes}分钟")
    } else if minutes < 24 * 60 {
        format!("{}小时", minutes / 60)
    } else {
        format!("{}天", minutes / (24 * 60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    /// Unix ms of a Beijing wall-clock time.
    fn bj(y: i32, m: u32, day: u32, h: u32) -> i64 {
        d(y, m, day)
            .and_hms_opt(h, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis()
            - 8 * 3_600_000
    }

    #[test]
    fn working_days_skip_weekends() {
        // 2026-03-06 is a Friday.
        assert_eq!(d(2026, 3, 6).weekday(), Weekday::Fri);
        assert_eq!(add_working_days(d(2026, 3, 6), 1), d(2026, 3, 9));
        assert_eq!(add_working_days(d(2026, 3, 6), 5), d(2026, 3, 13));
        // Accepted on a Saturday: the first working day is Monday.
        assert_eq!(add_working_days(d(2026, 3, 7), 1), d(2026, 3, 9));
        assert_eq!(add_working_days(d(2026, 3, 2), 30), d(2026, 4, 13));
        assert_eq!(add_working_days(d(2026, 3, 2), 0), d(2026, 3, 2));
    }

    #[test]
    fn counting_between_days_agrees_with_adding() {
        let start = d(2026, 1, 1);
        for offset in 0..40 {
            let from = start + TimeDelta::days(offset);
            for n in 0..25 {
                let to = add_working_days(from, n);
                assert_eq!(working_days_between(from, to), i64::from(n), "{from} + {n}");
                assert_eq!(working_days_between(to, from), -i64::from(n), "{to} - {n}");
            }
        }
        // A weekend after a Friday adds nothing.
        assert_eq!(working_days_between(d(2026, 3, 6), d(2026, 3, 8)), 0);
    }

    #[test]
    fn deadline_from_acceptance_in_beijing_time() {
        // Accepted Friday 2026-03-06 at 23:30 Beijing time (15:30 UTC): still that Friday.
        let accepted = bj(2026, 3, 6, 23) + 30 * 60_000;
        let on_day = Deadline::compute(accepted, 5, bj(2026, 3, 6, 23));
        assert_eq!(on_day.due, d(2026, 3, 13));
        assert_eq!(on_day.working_days_left, 5);
        assert_eq!(on_day.left_zh(), "剩5个工作日");
        let monday = Deadline::compute(accepted, 5, bj(2026, 3, 9, 10));
        assert_eq!(monday.working_days_left, 4);
        let due_day = Deadline::compute(accepted, 5, bj(2026, 3, 13, 17));
        assert_eq!(due_day.left_zh(), "今日到期");
        assert!(!due_day.overdue());
        let late = Deadline::compute(accepted, 5, bj(2026, 3, 17, 9));
        assert_eq!(late.working_days_left, -2);
        assert!(late.overdue());
        assert_eq!(late.left_zh(), "超期2个工作日");
    }

    #[test]
    fn limits_per_business_type() {
        assert_eq!(time_limit_working_days(BusinessType::TransferSecondHand), 5);
        assert_eq!(time_limit_working_days(BusinessType::Seizure), 1);
        assert_eq!(time_limit_for_code("2000402"), 5);
        assert_eq!(time_limit_for_code("9999999"), 30);
    }

    #[test]
    fn ages() {
        let now = bj(2026, 3, 9, 12);
        assert_eq!(age_zh(now - 45 * 60_000, now), "45分钟");
        assert_eq!(age_zh(now - 5 * 3_600_000, now), "5小时");
        assert_eq!(age_zh(now - 3 * 86_400_000, now), "3天");
        assert_eq!(age_zh(now + 1000, now), "0分钟");
    }
}
