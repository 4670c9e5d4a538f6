//! The HTTP `Date` header value, formatted once a second per shard.
//!
//! Formatting an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7)
//! takes a calendar conversion; doing it once a second instead of once a response
//! is the point of [`DateCache`]. Each shard owns one (no locks, no atomics) and
//! calls [`DateCache::refresh`] from its timer or before writing a batch of
//! responses.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

/// The last second representable with a four-digit year (9999-12-31 23:59:59).
const MAX_SECS: u64 = 253_402_300_799;

/// A formatted `Date` value, refreshed by the caller at most once a second.
#[derive(Debug, Clone)]
pub struct DateCache {
    secs: u64,
    text: [u8; IMF_FIXDATE_LEN],
}

impl DateCache {
    /// A cache holding the date of `now`. O(1), no allocation.
    pub fn new(now: SystemTime) -> Self {
        let secs = unix_secs(now);
        let mut text = [0; IMF_FIXDATE_LEN];
        format_imf_fixdate(secs, &mut text);
        DateCache { secs, text }
    }

    /// Re-formats the value if `now` is in a different second than the cached
    /// value; returns whether it changed. O(1), no allocation.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::http_date::DateCache;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let mut d = DateCache::new(UNIX_EPOCH);
    /// assert_eq!(d.as_str(), "Thu, 01 Jan 1970 00:00:00 GMT");
    /// assert!(!d.refresh(UNIX_EPOCH + Duration::from_millis(999)));
    /// assert!(d.refresh(UNIX_EPOCH + Duration::from_secs(61)));
    /// assert_eq!(d.as_str(), "Thu, 01 Jan 1970 00:01:01 GMT");
    /// ```
    pub fn refresh(&mut self, now: SystemTime) -> bool {
        let secs = unix_secs(now);
        if secs == self.secs {
            return false;
        }
        self.secs = secs;
        format_imf_fixdate(secs, &mut self.text);
        true
    }

    /// The formatted value (ASCII). O(1).
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
    }

    /// The formatted value as text. O(1).
    pub fn as_str(&self) -> &str {
        // Always ASCII: digits and fixed names written by `format_imf_fixdate`.
        std::str::from_utf8(&self.text).unwrap_or("")
    }
}

/// Seconds since the Unix epoch, clamped to 1970..=9999.
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(MAX_SECS)
}

/// Writes the IMF-fixdate of `secs` seconds after the Unix epoch (clamped to the
/// end of year 9999) into `out`. O(1), no allocation.
///
/// # Examples
///
/// ```
/// use shardnet::protocol::http_date::format_imf_fixdate;
/// let mut out = [0u8; 29];
/// format_imf_fixdate(784_111_777, &mut out);
/// assert_eq!(&out, b"Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn format_imf_fixdate(secs: u64, out: &mut [u8; IMF_FIXDATE_LEN]) {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let secs = secs.min(MAX_SECS);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let two = |n: u64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];

    out[0..3].copy_from_slice(DAYS[(days % 7) as usize]); // 1970-01-01 was a Thursday.
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(day));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    out[12..14].copy_from_slice(&two(year / 100));
    out[14..16].copy_from_slice(&two(year % 100));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(rem / 3600));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(rem / 60 % 60));
    out[22] = b':';
    out[23..25].copy_from_slice(&two(rem % 60));
    out[25..29].copy_from_slice(b" GMT");
}

/// Proleptic Gregorian (year, month 1..=12, day 1..=31) of `days` after
/// 1970-01-01.
///
/// Counts in 400-year eras starting on March 1st, so that the leap day is the
/// last day of its year: an era has 146 097 days, a year of the era starts at
/// day `365·y + y/4 − y/100`, and months from March have the lengths
/// 31,30,31,30,31 repeating, which `(153·m + 2) / 5` captures.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01: 719 468 days before 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fmt(secs: u64) -> String {
        let mut out = [0u8; IMF_FIXDATE_LEN];
        format_imf_fixdate(secs, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn known_timestamps() {
        // Reference values from `date -u -d @SECS`.
        for (secs, want) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_210_096, "Thu, 29 Feb 2024 12:34:56 GMT"),
            (1_796_168_475, "Tue, 01 Dec 2026 23:41:15 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ] {
            assert_eq!(fmt(secs), want, "{secs}");
        }
        assert_eq!(fmt(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // Walk day by day through 1970..2100 and check the calendar by counting.
        let mut expected = (1970u64, 1u64, 1u64);
        let month_len = |y: u64, m: u64| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        for days in 0..47_482u64 {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            let (y, m, d) = expected;
            expected = if d < month_len(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn cache_refreshes_once_per_second_and_clamps() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let mut d = DateCache::new(t);
        assert_eq!(d.as_bytes(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(!d.refresh(t + Duration::from_millis(500)));
        assert!(d.refresh(t + Duration::from_secs(1)));
        assert_eq!(d.as_str(), "Sun, 06 Nov 1994 08:49:38 GMT");
        // Before the epoch: clamped to it.
        let d = DateCache::new(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(d.as_str(), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
