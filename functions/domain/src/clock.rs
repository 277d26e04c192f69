//! Where "now" comes from. A warm function instance lives for hours or months, so what depends
//! on the date asks a [`Clock`] each time instead of reading the date once at start.

use crate::card::YearMonth;

pub trait Clock: Send + Sync {
    /// The current calendar month (UTC).
    fn this_month(&self) -> YearMonth;
}

/// A stopped clock: always that month (tests, replays of an old order).
impl Clock for YearMonth {
    fn this_month(&self) -> YearMonth {
        *self
    }
}
