//! UTC calendar arithmetic for the dashboard's labels and day picker: Unix seconds to and from
//! proleptic Gregorian dates, with Howard Hinnant's `days_from_civil` / `civil_from_days`
//! algorithms ("chrono-Compatible Low-Level Date Algorithms"). All times shown are UTC.

use crate::view::UnixSeconds;

/// Seconds in a day.
pub const DAY: u64 = 86_400;

/// (year, month 1..=12, day 1..=31) of the day containing `t`.
pub fn date_of(t: UnixSeconds) -> (i64, u32, u32) {
    let z = (t / DAY) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds of midnight UTC starting `year-month-day`, if the date exists and is not
/// before 1970.
pub fn midnight_of(year: i64, month: u32, day: u32) -> Option<UnixSeconds> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok()?.checked_mul(DAY)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `YYYY-MM-DD` (exactly that form) to midnight UTC.
pub fn parse_day(text: &str) -> Option<UnixSeconds> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    midnight_of(
        text[0..4].parse().ok()?,
        text[5..7].parse().ok()?,
        text[8..10].parse().ok()?,
    )
}

/// `YYYY-MM-DD` of the day containing `t`.
pub fn format_day(t: UnixSeconds) -> String {
    let (y, m, d) = date_of(t);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM` (UTC) of `t`.
pub fn format_minute(t: UnixSeconds) -> String {
    format!(
        "{} {:02}:{:02}",
        format_day(t),
        (t % DAY) / 3600,
        (t % 3600) / 60
    )
}

/// `HH:MM` (UTC) of `t`.
pub fn format_clock(t: UnixSeconds) -> String {
    format!("{:02}:{:02}", (t % DAY) / 3600, (t % 3600) / 60)
}

/// The bounds of a window as `HH:MM` (UTC), or `HH:MM:SS` when the window does not start and
/// end on whole minutes (windows shorter than an hour, in tests and short-window tasks).
pub fn format_window(start: UnixSeconds, secs: u32) -> (String, String) {
    let end = start + u64::from(secs);
    if start.is_multiple_of(60) && end.is_multiple_of(60) {
        return (format_clock(start), format_clock(end));
    }
    let with_seconds = |t: UnixSeconds| format!("{}:{:02}", format_clock(t), t % 60);
    (with_seconds(start), with_seconds(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_round_trip() {
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(parse_day("2000-02-29"), Some(951_782_400));
        assert_eq!(format_day(951_782_400 + DAY - 1), "2000-02-29");
        assert_eq!(format_minute(1_796_301_000), "2026-12-03 12:30");
        for day in (0..30_000u64).step_by(37) {
            assert_eq!(parse_day(&format_day(day * DAY)), Some(day * DAY));
        }
    }

    #[test]
    fn windows_show_seconds_only_when_not_on_whole_minutes() {
        let t = 1_796_301_000; // 2026-12-03 12:30
        assert_eq!(
            format_window(t - 1800, 3600),
            ("12:00".into(), "13:00".into())
        );
        assert_eq!(
            format_window(t + 4, 3),
            ("12:30:04".into(), "12:30:07".into())
        );
    }

    #[test]
    fn malformed_or_impossible_days_are_refused() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-00-10",
            "1969-12-31",
            "2026-1-01",
            "26-01-01x",
            "",
            "2026/01/01",
            "+026-01-01",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}
