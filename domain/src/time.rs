//! Time as people read it and as the API writes it. Every timestamp Hookline stores is unix
//! milliseconds; reading the clock stays on the server (`hookline_core::now_ms`), since the
//! browser's WebAssembly has no system clock.

/// "45 seconds", "1 minute", "15 minutes": a wait as a person reads it.
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs().max(1);
    let plural = |n: u64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    if secs < 60 { plural(secs, "second") } else { plural(secs.div_ceil(60), "minute") }
}

/// `2024-01-15T11:57:54Z` for a unix time in milliseconds (UTC, second precision).
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2024-01-15 11:57:54 UTC`: a moment as the dashboard shows it.
pub fn human_time(ms: i64) -> String {
    iso8601(ms).replace('T', " ").replace('Z', " UTC")
}

/// Midnight UTC of a `YYYY-MM-DD` date, in unix milliseconds; `None` for anything else.
pub fn parse_date_ms(s: &str) -> Option<i64> {
    let mut parts = s.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject dates that do not exist (31 February): they come back as another date.
    (civil_from_days(days) == (y, m, d)).then_some(days * 86_400_000)
}

/// Howard Hinnant's civil-to-days algorithm.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso8601(1_705_319_874_000), "2024-01-15T11:57:54Z");
        assert_eq!(super::iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn the_dashboard_reads_moments_in_utc() {
        assert_eq!(super::human_time(1_705_319_874_000), "2024-01-15 11:57:54 UTC");
    }

    #[test]
    fn parses_dates_and_refuses_impossible_ones() {
        assert_eq!(super::parse_date_ms("1970-01-01"), Some(0));
        assert_eq!(super::parse_date_ms("2000-02-29"), Some(951_782_400_000));
        assert_eq!(
            super::parse_date_ms("2024-01-15").map(super::iso8601).as_deref(),
            Some("2024-01-15T00:00:00Z")
        );
        for bad in ["2023-02-29", "2024-13-01", "2024-1", "yesterday", ""] {
            assert_eq!(super::parse_date_ms(bad), None, "{bad}");
        }
    }
}
