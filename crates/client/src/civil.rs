//! Calendar dates from days since the Unix epoch (proleptic Gregorian, UTC).
//!
//! Posters print their validity date and payloads carry it as a day number; this is the small
//! conversion between the two, after the well-known "days from civil" algorithm (H. Hinnant,
//! *chrono-Compatible Low-Level Date Algorithms*), written out here so the crate needs no
//! calendar dependency for one line of text.

use std::fmt;

/// A calendar date (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilDate {
    /// Year, e.g. 2026.
    pub year: i64,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, 1 to 31.
    pub day: u32,
}

impl CivilDate {
    /// The date of Unix day `days` (day 0 is 1970-01-01).
    pub fn from_unix_days(days: u32) -> Self {
        // Shift the epoch to 0000-03-01 so that leap days fall at the end of a year.
        let z = i64::from(days) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self { year, month, day }
    }

    /// The Unix day number of this date, or `None` before 1970 or past `u32` days.
    pub fn to_unix_days(self) -> Option<u32> {
        if !(1..=12).contains(&self.month) || !(1..=31).contains(&self.day) {
            return None;
        }
        let y = self.year - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let back = u32::try_from(days).ok()?;
        // Reject dates such as 2026-02-31 that do not exist: they would not round-trip.
        (Self::from_unix_days(back) == self).then_some(back)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        let date = Self { year, month, day };
        date.to_unix_days().map(|_| date)
    }
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should panic")]
mod tests {
    use super::*;

    #[test]
    fn known_dates_convert_both_ways() {
        for (days, text) in [
            (0, "1970-01-01"),
            (11_016, "2000-02-29"),
            (20_790, "2026-12-03"),
        ] {
            let date = CivilDate::from_unix_days(days);
            assert_eq!(date.to_string(), text);
            assert_eq!(CivilDate::parse(text), Some(date));
            assert_eq!(date.to_unix_days(), Some(days));
        }
    }

    #[test]
    fn every_day_for_two_centuries_round_trips() {
        for days in (0..73_000).step_by(7) {
            assert_eq!(CivilDate::from_unix_days(days).to_unix_days(), Some(days));
        }
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for text in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "1969-12-31",
            "2026-1-1-1",
            "x",
        ] {
            assert_eq!(CivilDate::parse(text), None, "{text}");
        }
    }
}
