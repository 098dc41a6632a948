//! Small helpers: Beijing time formatting.

use chrono::{DateTime, FixedOffset, Utc};

/// China Standard Time (UTC+8), in which times are shown.
pub const BEIJING: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// `2026-03-02 15:00` (Beijing time) for Unix milliseconds.
pub fn fmt_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&BEIJING)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// `¥1,250,000.00` for a price in fen.
pub fn fmt_fen(fen: i64) -> String {
    let yuan = fen / 100;
    let cents = (fen % 100).abs();
    let digits = yuan.abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}¥{grouped}.{cents:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_fen(125_000_050), "¥1,250,000.50");
        assert_eq!(fmt_fen(7), "¥0.07");
        assert_eq!(fmt_ms(0), "1970-01-01 08:00");
    }
}
