//! The system clock, read at each use.

use std::time::SystemTime;

use bookstore_domain::card::YearMonth;
use bookstore_domain::clock::Clock;

/// Now, as RFC 3339 UTC to the millisecond (`2026-11-24T01:50:00.123Z`): order histories are read
/// for latencies.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Now, in whole seconds since the Unix epoch (DynamoDB's TTL unit).
pub fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn this_month(&self) -> YearMonth {
        let now = now_rfc3339();
        let year = now.get(0..4).and_then(|y| y.parse().ok()).unwrap_or(1970);
        let month = now.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
        YearMonth { year, month }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_month_is_read_from_the_clock() {
        let month = SystemClock.this_month();
        assert!(month.year >= 2025 && (1..=12).contains(&month.month), "{month:?}");
    }
}
