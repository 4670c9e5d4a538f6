//! HdrHistogram's text formats: the percentile distribution (`.hgrm`) and the interval log
//! (`.hlog`).
//!
//! # The `.hgrm` percentile distribution
//!
//! [`write_percentile_distribution`] prints a histogram the way Java HdrHistogram's
//! `outputPercentileDistribution(out, ticks, ratio)` does, so the file loads in the HdrHistogram
//! plotter and in `HistogramLogProcessor`-style tooling:
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!      100.000 0.000000000000          1           1.00
//!      ...
//!      600.000 0.775000000000          4           4.44
//!      600.000 1.000000000000          4
//! #[Mean    =      287.500, StdDeviation   =      188.331]
//! #[Max     =      600.000, Total count    =            4]
//! #[Buckets =           32, SubBuckets     =         2048]
//! ```
//!
//! - a header `%12s %14s %10s %14s` of the four column names, then one empty line;
//! - one row per percentile tick, `%12.Nf %2.12f %10d %14.2f` where `N` is the histogram's
//!   significant digits: the value (divided by the value-unit scaling ratio), the percentile as a
//!   fraction, the count of samples at or below the value, and `1/(1-percentile)`;
//! - the last row (percentile 1.0) has no fourth column;
//! - the footer: mean and standard deviation, max and total count, bucket and sub-bucket counts.
//!
//! Ticks: each halving of the distance to 100% holds `ticks_per_half_distance` equal steps
//! (5 by default: 0%, 10%, ... 50%, then 55%, 60%, ... 75%, then 77.5%, ...), so the tail gets as
//! many rows as the body. Numbers are rounded like Java's `Formatter` does (half-up on the
//! shortest decimal representation), not with Rust's round-half-to-even.
//!
//! [`Distribution::parse`] reads such text back (also wrk2's variant of it, which says `StdDev`
//! and prints `inf` in the last row).
//!
//! # The `.hlog` interval log
//!
//! [`write_interval_log`] writes a sequence of interval histograms as an HdrHistogram interval
//! log with V2 compressed (deflate) histograms, using the hdrhistogram crate's writer, with the
//! same header lines a Java `HistogramLogWriter` writes. Read it back with
//! [`hdrhistogram::serialization::interval_log::IntervalLogIterator`].

use std::borrow::Borrow;
use std::fmt;
use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::{V2DeflateSerializeError, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// The number of percentile ticks per halving of the distance to 100% that Java HdrHistogram
/// uses when none is given.
pub const DEFAULT_TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The header line of a `.hgrm` file, without its line end.
pub const HEADER: &str = "       Value     Percentile TotalCount 1/(1-Percentile)";

/// The version line Java's `HistogramLogWriter` puts at the top of an interval log.
const LOG_FORMAT_VERSION: &str = "[Histogram log format version 1.3]";

/// The column legend line of an interval log.
const LOG_LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// One row of a percentile distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// The value at this percentile, in output units (recorded units divided by the scaling
    /// ratio). It is the highest value equivalent to the bucket where the percentile was reached.
    pub value: f64,
    /// The percentile as a fraction in `0.0..=1.0` (0.99 is p99).
    pub percentile: f64,
    /// How many samples were at or below `value`.
    pub total_count: u64,
}

/// The footer of a percentile distribution: summary statistics in output units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Footer {
    /// Mean of the recorded values.
    pub mean: f64,
    /// Standard deviation of the recorded values.
    pub std_deviation: f64,
    /// Largest recorded value (highest equivalent value of its bucket).
    pub max: f64,
    /// Number of recorded samples.
    pub total_count: u64,
    /// Number of buckets of the histogram (0 when a parsed file did not say).
    pub buckets: u64,
    /// Number of sub-buckets per bucket (0 when a parsed file did not say).
    pub sub_buckets: u64,
}

/// A percentile distribution: the rows of a `.hgrm` file and its footer.
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    /// Rows in increasing percentile order; the last has percentile 1.0 unless empty.
    pub rows: Vec<Row>,
    /// Summary statistics.
    pub footer: Footer,
}

impl Distribution {
    /// Computes the distribution of `h` at the given tick density, with values divided by
    /// `value_unit_scaling_ratio` (1000.0 turns nanoseconds into microseconds).
    ///
    /// A `ticks_per_half_distance` of 0 is taken as 1. O(number of histogram buckets), one
    /// allocation for the rows.
    ///
    /// # Examples
    ///
    /// ```
    /// use hdrhistogram::Histogram;
    /// use shardnet::hgrm::Distribution;
    ///
    /// let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    /// for v in [1_000, 1_200, 1_400, 2_000] {
    ///     h.record(v).unwrap(); // nanoseconds; exact below 2048 at 3 significant digits
    /// }
    /// let d = Distribution::from_histogram(&h, 5, 1000.0);
    /// assert_eq!(d.rows.first().unwrap().value, 1.0);
    /// let last = d.rows.last().unwrap();
    /// assert_eq!((last.value, last.percentile, last.total_count), (2.0, 1.0, 4));
    /// assert_eq!(d.footer.mean, 1.4);
    /// assert_eq!(d.value_at_percentile(0.5), Some(1.2));
    /// ```
    #[must_use]
    pub fn from_histogram(
        h: &Histogram<u64>,
        ticks_per_half_distance: u32,
        value_unit_scaling_ratio: f64,
    ) -> Distribution {
        let ticks = f64::from(ticks_per_half_distance.max(1));
        let total = h.len();
        let mut rows = Vec::new();
        // Java's PercentileIterator, step for step: the level is kept in percent and advanced
        // by `100 / ticks_in_this_halving`; a recorded index is reported at every level its
        // cumulative percentile reaches; once the last recorded index has been reported, one
        // more row at 100% closes the distribution. (The crate's `iter_quantiles` keeps the
        // level as a fraction, which rounds differently: it misses the 75% row of Java's
        // 100/200/250/600 example.)
        let mut level = 0.0_f64;
        let mut cumulative = 0_u64;
        'outer: for v in h.iter_recorded() {
            cumulative = cumulative.saturating_add(v.count_at_value());
            let value = v.value_iterated_to() as f64 / value_unit_scaling_ratio;
            while 100.0 * cumulative as f64 / total as f64 >= level {
                rows.push(Row {
                    value,
                    percentile: level / 100.0,
                    total_count: cumulative,
                });
                let halvings = ((100.0 / (100.0 - level)).ln() / 2.0_f64.ln()) as i32;
                let next = level + 100.0 / (ticks * 2.0_f64.powi(halvings.saturating_add(1)));
                // Only with ~1e15 samples could the step vanish in rounding; Java would then
                // spin forever, this jumps to the closing 100% row instead.
                level = if next > level { next } else { 100.0 };
                if cumulative >= total {
                    rows.push(Row {
                        value,
                        percentile: 1.0,
                        total_count: cumulative,
                    });
                    break 'outer;
                }
            }
        }
        // Mean and standard deviation as Java computes them (sum first, divide last), from the
        // median equivalent value of each recorded bucket.
        let (mut mean, mut std_deviation) = (0.0, 0.0);
        if total > 0 {
            let sum: f64 = h
                .iter_recorded()
                .map(|v| {
                    h.median_equivalent(v.value_iterated_to()) as f64 * v.count_at_value() as f64
                })
                .sum();
            mean = sum / total as f64;
            let deviations: f64 = h
                .iter_recorded()
                .map(|v| {
                    let d = h.median_equivalent(v.value_iterated_to()) as f64 - mean;
                    d * d * v.count_at_value() as f64
                })
                .sum();
            std_deviation = (deviations / total as f64).sqrt();
        }
        Distribution {
            rows,
            footer: Footer {
                mean: mean / value_unit_scaling_ratio,
                std_deviation: std_deviation / value_unit_scaling_ratio,
                max: h.max() as f64 / value_unit_scaling_ratio,
                total_count: h.len(),
                buckets: u64::from(h.buckets()),
                sub_buckets: sub_bucket_count(h.sigfig()),
            },
        }
    }

    /// The value of the first row whose percentile is at least `percentile` (a fraction), or
    /// `None` if no row reaches it (an empty distribution). O(rows), no allocation.
    ///
    /// Because rows sit on ticks, this is the value at the tick at or just above `percentile`;
    /// at a tick (0.5, 0.9, ...) it is the histogram's value at that percentile.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::hgrm::Distribution;
    ///
    /// let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
    ///     1.000 0.000000000000 1 1.00\n\
    ///     2.000 0.500000000000 2 2.00\n\
    ///     4.000 1.000000000000 4\n\
    ///     #[Mean    = 2.500, StdDeviation   = 1.118]\n\
    ///     #[Max     = 4.000, Total count    = 4]\n";
    /// let d = Distribution::parse(text).unwrap();
    /// assert_eq!(d.value_at_percentile(0.5), Some(2.0));
    /// assert_eq!(d.value_at_percentile(0.6), Some(4.0));
    /// ```
    #[must_use]
    pub fn value_at_percentile(&self, percentile: f64) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.percentile >= percentile)
            .map(|r| r.value)
    }

    /// Writes the distribution in `.hgrm` layout with `value_decimals` digits after the point in
    /// the value and the statistics columns (Java uses the histogram's significant digits).
    ///
    /// # Errors
    ///
    /// Any error of `out`.
    pub fn write_to<W: Write>(&self, out: &mut W, value_decimals: usize) -> io::Result<()> {
        let vd = value_decimals;
        writeln!(out, "{HEADER}")?;
        writeln!(out)?;
        for r in &self.rows {
            let value = java_fixed(r.value, vd);
            let percentile = java_fixed(r.percentile, 12);
            if r.percentile < 1.0 {
                let inverse = java_fixed(1.0 / (1.0 - r.percentile), 2);
                writeln!(
                    out,
                    "{value:>12} {percentile:>2} {:>10} {inverse:>14}",
                    r.total_count
                )?;
            } else {
                writeln!(out, "{value:>12} {percentile:>2} {:>10}", r.total_count)?;
            }
        }
        let f = &self.footer;
        writeln!(
            out,
            "#[Mean    = {:>12}, StdDeviation   = {:>12}]",
            java_fixed(f.mean, vd),
            java_fixed(f.std_deviation, vd)
        )?;
        writeln!(
            out,
            "#[Max     = {:>12}, Total count    = {:>12}]",
            java_fixed(f.max, vd),
            f.total_count
        )?;
        writeln!(
            out,
            "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
            f.buckets, f.sub_buckets
        )
    }

    /// Parses `.hgrm` text: the rows and the `#[...]` footer.
    ///
    /// Lenient where it costs nothing: blank lines, the header, other `#` comments and a fourth
    /// column of any content (`inf` in wrk2's output) are skipped, `StdDev` is accepted for
    /// `StdDeviation`, and the `Buckets` line may be missing. O(length of text).
    ///
    /// # Errors
    ///
    /// A [`ParseError`] naming the 1-based line of a row that does not have three or four
    /// columns with a number, percentile in `0..=1` and count, of a footer line that cannot be
    /// read, or saying which footer field is missing.
    ///
    /// # Examples
    ///
    /// ```
    /// use hdrhistogram::Histogram;
    /// use shardnet::hgrm::{self, Distribution};
    ///
    /// let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    /// for v in 1..=1000_u64 {
    ///     h.record(v * 1000).unwrap();
    /// }
    /// let mut text = Vec::new();
    /// hgrm::write_percentile_distribution(&h, &mut text, 5, 1000.0).unwrap();
    /// let d = Distribution::parse(std::str::from_utf8(&text).unwrap()).unwrap();
    /// assert_eq!(d.footer.total_count, 1000);
    /// assert_eq!(d.footer.max, 1000.447); // the highest value of 1000 µs's bucket
    /// assert_eq!(d.rows.last().unwrap().total_count, 1000);
    /// assert!(Distribution::parse("1.0 2.0\n").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Distribution, ParseError> {
        let mut rows = Vec::new();
        let mut mean = None;
        let mut std_deviation = None;
        let mut max = None;
        let mut total_count = None;
        let mut buckets = None;
        let mut sub_buckets = None;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |kind| ParseError {
                line: line_no,
                kind,
            };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(fields) = line.strip_prefix("#[") {
                let fields = fields
                    .strip_suffix(']')
                    .ok_or(err(ParseErrorKind::Footer))?;
                for field in fields.split(',') {
                    let (key, value) = field.split_once('=').ok_or(err(ParseErrorKind::Footer))?;
                    let value = value.trim();
                    let float = || {
                        value
                            .parse::<f64>()
                            .map_err(|_| err(ParseErrorKind::Footer))
                    };
                    let int = || {
                        value
                            .parse::<u64>()
                            .map_err(|_| err(ParseErrorKind::Footer))
                    };
                    match key.trim() {
                        "Mean" => mean = Some(float()?),
                        "StdDeviation" | "StdDev" => std_deviation = Some(float()?),
                        "Max" => max = Some(float()?),
                        "Total count" => total_count = Some(int()?),
                        "Buckets" => buckets = Some(int()?),
                        "SubBuckets" => sub_buckets = Some(int()?),
                        _ => {}
                    }
                }
                continue;
            }
            if line.starts_with('#') || line.starts_with("Value") {
                continue;
            }
            let mut cols = line.split_whitespace();
            let (Some(v), Some(p), Some(c)) = (cols.next(), cols.next(), cols.next()) else {
                return Err(err(ParseErrorKind::Row));
            };
            let _inverse = cols.next();
            if cols.next().is_some() {
                return Err(err(ParseErrorKind::Row));
            }
            let value = v.parse::<f64>().map_err(|_| err(ParseErrorKind::Row))?;
            let percentile = p.parse::<f64>().map_err(|_| err(ParseErrorKind::Row))?;
            let total_count = c.parse::<u64>().map_err(|_| err(ParseErrorKind::Row))?;
            if !(0.0..=1.0).contains(&percentile) {
                return Err(err(ParseErrorKind::Row));
            }
            rows.push(Row {
                value,
                percentile,
                total_count,
            });
        }
        let end = text.lines().count();
        let missing = |name| ParseError {
            line: end,
            kind: ParseErrorKind::MissingFooter(name),
        };
        Ok(Distribution {
            rows,
            footer: Footer {
                mean: mean.ok_or(missing("Mean"))?,
                std_deviation: std_deviation.ok_or(missing("StdDeviation"))?,
                max: max.ok_or(missing("Max"))?,
                total_count: total_count.ok_or(missing("Total count"))?,
                buckets: buckets.unwrap_or(0),
                sub_buckets: sub_buckets.unwrap_or(0),
            },
        })
    }
}

/// Why a `.hgrm` text could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// A row is not `value percentile count [1/(1-percentile)]` with numbers and a percentile
    /// in `0..=1`.
    Row,
    /// A `#[...]` line is not a list of `Name = number` fields.
    Footer,
    /// The footer field with this name never appeared.
    MissingFooter(&'static str),
}

/// A `.hgrm` text could not be parsed; see [`Distribution::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number where the problem was found (the last line for a missing field).
    pub line: usize,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ParseErrorKind::Row => write!(
                f,
                "line {}: expected `value percentile count [1/(1-percentile)]`",
                self.line
            ),
            ParseErrorKind::Footer => write!(
                f,
                "line {}: expected a `#[Name = number, ...]` footer line",
                self.line
            ),
            ParseErrorKind::MissingFooter(name) => {
                write!(f, "no `{name}` in the `#[...]` footer")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Writes `h` as HdrHistogram's percentile distribution text (see the [module docs](self)),
/// values divided by `value_unit_scaling_ratio`, with the histogram's significant digits as
/// decimals, exactly as Java's `outputPercentileDistribution(out, ticks, ratio)` lays it out.
///
/// A `ticks_per_half_distance` of 0 is taken as 1.
///
/// # Errors
///
/// Any error of `out`.
///
/// # Examples
///
/// ```
/// use hdrhistogram::Histogram;
/// use shardnet::hgrm;
///
/// let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
/// h.record(1500).unwrap();
/// let mut out = Vec::new();
/// hgrm::write_percentile_distribution(&h, &mut out, 5, 1000.0).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// let lines: Vec<&str> = text.lines().collect();
/// assert_eq!(lines[0], hgrm::HEADER);
/// assert_eq!(lines[1], "");
/// assert_eq!(lines[2], "       1.500 0.000000000000          1           1.00");
/// assert_eq!(lines[3], "       1.500 1.000000000000          1");
/// assert_eq!(lines[4], "#[Mean    =        1.500, StdDeviation   =        0.000]");
/// assert_eq!(lines[5], "#[Max     =        1.500, Total count    =            1]");
/// assert_eq!(lines[6], "#[Buckets =           26, SubBuckets     =         2048]");
/// ```
pub fn write_percentile_distribution<W: Write>(
    h: &Histogram<u64>,
    out: &mut W,
    ticks_per_half_distance: u32,
    value_unit_scaling_ratio: f64,
) -> io::Result<()> {
    Distribution::from_histogram(h, ticks_per_half_distance, value_unit_scaling_ratio)
        .write_to(out, usize::from(h.sigfig()))
}

/// The sub-bucket count a histogram with `sigfig` significant digits uses: the power of two at
/// or above `2 * 10^sigfig`, as the hdrhistogram crate and Java compute it.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest = 2 * 10_u64.pow(u32::from(sigfig.min(5)));
    largest.next_power_of_two()
}

/// Formats `x` with `prec` digits after the point the way Java's `Formatter` does for `%.Nf`:
/// the shortest decimal representation of the double, rounded half-up.
fn java_fixed(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let mut out = String::with_capacity(24);
    if x.is_sign_negative() {
        out.push('-');
    }
    let a = x.abs();
    // digits d0 d1 d2 ... with the value 0.d0d1d2... * 10^int_len
    let mut digits: Vec<u8> = Vec::new();
    let mut int_len: i64 = 0;
    if a != 0.0 {
        let sci = format!("{a:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        digits = mantissa
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect();
        int_len = exp.parse::<i64>().unwrap_or(0) + 1;
    }
    let keep = int_len + prec as i64;
    if keep < 0 {
        digits.clear();
    } else if (keep as usize) < digits.len() {
        let round_up = digits[keep as usize] >= 5;
        digits.truncate(keep as usize);
        if round_up {
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, 1);
                    int_len += 1;
                    break;
                }
                i -= 1;
                if digits[i] == 9 {
                    digits[i] = 0;
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    }
    let digit_at = |pos: i64| -> char {
        if pos < 0 {
            '0'
        } else {
            digits
                .get(pos as usize)
                .map_or('0', |&d| char::from(b'0' + d))
        }
    };
    if int_len <= 0 {
        out.push('0');
    } else {
        for pos in 0..int_len {
            out.push(digit_at(pos));
        }
    }
    if prec > 0 {
        out.push('.');
        for j in 0..prec as i64 {
            out.push(digit_at(int_len + j));
        }
    }
    out
}

/// One interval of an interval log: the histogram of what was recorded from `start` (an offset
/// from the log's start time) for `length`.
#[derive(Clone, Debug)]
pub struct Interval<H> {
    /// Offset of the interval's start from [`IntervalLogHeader::start_time`].
    pub start: Duration,
    /// Length of the interval.
    pub length: Duration,
    /// The values recorded in the interval (a `Histogram<u64>` or a reference to one).
    pub histogram: H,
}

/// What goes at the top of an interval log.
#[derive(Clone, Debug)]
pub struct IntervalLogHeader {
    /// Free-text comment lines (each written as `#line`), e.g. the command that made the log.
    pub comment: Option<String>,
    /// When the logged run started; written as both `StartTime` and `BaseTime`, so interval
    /// timestamps are offsets from it.
    pub start_time: SystemTime,
    /// The interval max column is the histogram's max divided by this: 1e6 turns nanoseconds
    /// into the milliseconds Java's `HistogramLogWriter` writes by default. The column is for
    /// people; the histograms themselves are unscaled.
    pub max_value_divisor: f64,
}

/// Writing an interval log failed.
#[derive(Debug)]
pub enum IntervalLogError {
    /// Writing to the output failed.
    Io(io::Error),
    /// A histogram could not be serialized.
    Serialize(V2DeflateSerializeError),
}

impl fmt::Display for IntervalLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntervalLogError::Io(e) => write!(f, "writing the interval log: {e}"),
            IntervalLogError::Serialize(e) => write!(f, "serializing a histogram: {e}"),
        }
    }
}

impl std::error::Error for IntervalLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IntervalLogError::Io(e) => Some(e),
            IntervalLogError::Serialize(e) => Some(e),
        }
    }
}

impl From<io::Error> for IntervalLogError {
    fn from(e: io::Error) -> Self {
        IntervalLogError::Io(e)
    }
}

/// Writes an HdrHistogram interval log (V2 deflate-compressed histograms, base64, one line per
/// interval) of `intervals` to `out`, returning how many intervals were written.
///
/// The header is the comment, `#[Histogram log format version 1.3]`, `#[StartTime: ...]`,
/// `#[BaseTime: ...]`, the column legend and `#[MaxValueDivisor: ...]` (when not 1).
/// `intervals` is consumed lazily, so a channel receiver's iterator streams a live run to disk.
///
/// # Errors
///
/// [`IntervalLogError::Io`] when writing fails, [`IntervalLogError::Serialize`] when a
/// histogram cannot be encoded.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hdrhistogram::Histogram;
/// use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
/// use shardnet::hgrm::{self, Interval, IntervalLogHeader};
///
/// let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
/// h.record(42_000).unwrap();
/// let header = IntervalLogHeader {
///     comment: Some("example".into()),
///     start_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
///     max_value_divisor: 1e6,
/// };
/// let intervals = (0..3).map(|i| Interval {
///     start: Duration::from_secs(i),
///     length: Duration::from_secs(1),
///     histogram: &h,
/// });
/// let mut log = Vec::new();
/// assert_eq!(hgrm::write_interval_log(&mut log, &header, intervals).unwrap(), 3);
///
/// let entries: Vec<_> = IntervalLogIterator::new(&log).collect::<Result<_, _>>().unwrap();
/// let starts: Vec<_> = entries
///     .iter()
///     .filter_map(|e| match e {
///         LogEntry::Interval(i) => Some(i.start_timestamp()),
///         _ => None,
///     })
///     .collect();
/// assert_eq!(starts, [0, 1, 2].map(Duration::from_secs));
/// assert!(matches!(entries[0], LogEntry::StartTime(t) if t.as_secs() == 1_700_000_000));
/// ```
pub fn write_interval_log<W, I, H>(
    out: &mut W,
    header: &IntervalLogHeader,
    intervals: I,
) -> Result<u64, IntervalLogError>
where
    W: Write,
    I: IntoIterator<Item = Interval<H>>,
    H: Borrow<Histogram<u64>>,
{
    use hdrhistogram::serialization::interval_log::IntervalLogWriterError as E;
    let mut serializer = V2DeflateSerializer::new();
    // First the header lines the crate's builder knows about...
    let mut builder = IntervalLogWriterBuilder::new();
    if let Some(comment) = &header.comment {
        builder.add_comment(comment);
    }
    builder
        .add_comment(LOG_FORMAT_VERSION)
        .with_start_time(header.start_time)
        .with_base_time(header.start_time);
    drop(builder.begin_log_with(out, &mut serializer)?);
    // ...then the column legend, which it has no call for (both its reader and Java's skip it),
    // then a writer that only adds its `#[MaxValueDivisor]` comment before the intervals.
    writeln!(out, "{LOG_LEGEND}")?;
    let mut writer = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(header.max_value_divisor)
        .begin_log_with(out, &mut serializer)?;
    let mut written = 0_u64;
    for interval in intervals {
        writer
            .write_histogram(
                interval.histogram.borrow(),
                interval.start,
                interval.length,
                None,
            )
            .map_err(|e| match e {
                E::IoError(e) => IntervalLogError::Io(e),
                E::SerializeError(e) => IntervalLogError::Serialize(e),
            })?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()
    }

    #[test]
    fn matches_java_output_for_a_known_histogram() {
        // Java: new Histogram(1, 3600000000000L, 3), values 100, 200, 250, 600,
        // outputPercentileDistribution(out, 5, 1.0).
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for v in [100, 200, 250, 600] {
            h.record(v).unwrap();
        }
        let mut out = Vec::new();
        write_percentile_distribution(&h, &mut out, 5, 1.0).unwrap();
        let expected = "       Value     Percentile TotalCount 1/(1-Percentile)

     100.000 0.000000000000          1           1.00
     100.000 0.100000000000          1           1.11
     100.000 0.200000000000          1           1.25
     200.000 0.300000000000          2           1.43
     200.000 0.400000000000          2           1.67
     200.000 0.500000000000          2           2.00
     250.000 0.550000000000          3           2.22
     250.000 0.600000000000          3           2.50
     250.000 0.650000000000          3           2.86
     250.000 0.700000000000          3           3.33
     250.000 0.750000000000          3           4.00
     600.000 0.775000000000          4           4.44
     600.000 1.000000000000          4
#[Mean    =      287.500, StdDeviation   =      188.331]
#[Max     =      600.000, Total count    =            4]
#[Buckets =           32, SubBuckets     =         2048]
";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn one_tick_per_half_distance_matches_other_ports() {
        // The same ten samples as hdrhistogram-go's PercentilesPrint example (1 tick per half
        // distance): rows at 0, 50, 75, 87.5, 93.75 and 100%.
        let mut h = Histogram::<u64>::new_with_bounds(1, 30_000_000, 3).unwrap();
        for v in [
            459_876, 669_187, 711_612, 816_326, 931_423, 1_033_197, 1_131_895, 2_477_317,
            3_964_974, 12_718_782,
        ] {
            h.record(v).unwrap();
        }
        let d = Distribution::from_histogram(&h, 1, 1.0);
        let rows: Vec<(f64, f64, u64)> = d
            .rows
            .iter()
            .map(|r| (r.value, r.percentile, r.total_count))
            .collect();
        assert_eq!(
            rows,
            [
                (460_031.0, 0.0, 1),
                (931_839.0, 0.5, 5),
                (2_478_079.0, 0.75, 8),
                (3_966_975.0, 0.875, 9),
                (12_722_175.0, 0.9375, 10),
                (12_722_175.0, 1.0, 10),
            ]
        );
        assert_eq!(java_fixed(d.footer.mean, 3), "2491481.600");
        assert_eq!(java_fixed(d.footer.std_deviation, 3), "3557920.109");
        assert_eq!(d.footer.buckets, 15);
    }

    #[test]
    fn empty_histogram_has_header_and_footer_only() {
        let mut out = Vec::new();
        write_percentile_distribution(&hist(), &mut out, 5, 1000.0).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
        let d = Distribution::parse(&text).unwrap();
        assert!(d.rows.is_empty());
        assert_eq!(d.footer.total_count, 0);
        assert_eq!(d.footer.max, 0.0);
        assert_eq!(d.value_at_percentile(0.5), None);
    }

    #[test]
    fn java_rounding_is_half_up_on_shortest_digits() {
        assert_eq!(java_fixed(0.0625, 3), "0.063"); // Rust's {:.3} gives 0.062
        assert_eq!(java_fixed(2.5, 0), "3");
        assert_eq!(java_fixed(1.0005, 3), "1.001"); // shortest digits are 1.0005
        assert_eq!(java_fixed(999.9996, 3), "1000.000");
        assert_eq!(java_fixed(0.0004, 3), "0.000");
        assert_eq!(java_fixed(0.0005, 3), "0.001");
        assert_eq!(java_fixed(0.00004, 3), "0.000");
        assert_eq!(java_fixed(0.0, 2), "0.00");
        assert_eq!(java_fixed(1e20, 1), "100000000000000000000.0");
        assert_eq!(java_fixed(123_456.789, 3), "123456.789");
        assert_eq!(java_fixed(1.0 / 3.0, 12), "0.333333333333");
        assert_eq!(java_fixed(-1.25, 1), "-1.3");
        assert_eq!(java_fixed(f64::INFINITY, 2), "Infinity");
        assert_eq!(java_fixed(f64::NAN, 2), "NaN");
    }

    #[test]
    fn sub_buckets_match_the_crate() {
        for sigfig in 0..=5 {
            let h = Histogram::<u64>::new_with_bounds(1, 1_000_000, sigfig).unwrap();
            // distinct_values = (buckets + 1) * sub_buckets / 2
            let expected = 2 * h.distinct_values() as u64 / (u64::from(h.buckets()) + 1);
            assert_eq!(sub_bucket_count(sigfig), expected, "sigfig {sigfig}");
        }
    }

    #[test]
    fn round_trip_keeps_rows_and_footer() {
        let mut h = hist();
        let mut x = 12_345_u64;
        for _ in 0..10_000 {
            // a deterministic spread over 1 µs .. 10 ms
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            h.record(1_000 + (x >> 33) % 10_000_000).unwrap();
        }
        let d = Distribution::from_histogram(&h, 5, 1000.0);
        let mut out = Vec::new();
        d.write_to(&mut out, 3).unwrap();
        let p = Distribution::parse(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(p.rows.len(), d.rows.len());
        for (a, b) in p.rows.iter().zip(&d.rows) {
            assert!((a.value - b.value).abs() < 0.0005, "{a:?} {b:?}");
            assert!((a.percentile - b.percentile).abs() < 1e-12, "{a:?} {b:?}");
            assert_eq!(a.total_count, b.total_count);
        }
        assert_eq!(p.footer.total_count, 10_000);
        assert_eq!(p.footer.buckets, u64::from(h.buckets()));
        assert_eq!(p.footer.sub_buckets, 2048);
        assert!((p.footer.mean - h.mean() / 1000.0).abs() < 0.0005);
        assert!((p.footer.max - h.max() as f64 / 1000.0).abs() < 0.0005);
        // rows at exact ticks agree with the histogram's own percentiles
        for q in [0.5, 0.75] {
            let v = p.value_at_percentile(q).unwrap();
            let expected = h.value_at_quantile(q) as f64 / 1000.0;
            assert!((v - expected).abs() < 0.0005, "q {q}: {v} vs {expected}");
        }
        // counts never decrease, and the last row holds everything
        assert!(p
            .rows
            .windows(2)
            .all(|w| w[0].total_count <= w[1].total_count));
        assert_eq!(p.rows.last().unwrap().percentile, 1.0);
        assert_eq!(p.rows.last().unwrap().total_count, 10_000);
    }

    #[test]
    fn parses_wrk2_spelling() {
        let text = "       Value   Percentile   TotalCount 1/(1-Percentile)\n\n\
            9.704     0.000000            1         1.00\n\
            11.383     1.000000         3992          inf\n\
            #[Mean    =       10.312, StdDev   =        0.301]\n\
            #[Max     =       11.376, Total count    =         3992]\n\
            #[Buckets =           27, SubBuckets     =         2048]\n";
        let d = Distribution::parse(text).unwrap();
        assert_eq!(d.rows.len(), 2);
        assert_eq!(d.footer.std_deviation, 0.301);
        assert_eq!(d.footer.buckets, 27);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let bad_row = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n1.0 x 3 1.0\n";
        assert_eq!(
            Distribution::parse(bad_row).unwrap_err(),
            ParseError {
                line: 3,
                kind: ParseErrorKind::Row
            }
        );
        let bad_percentile = "1.0 1.5 3\n";
        assert_eq!(
            Distribution::parse(bad_percentile).unwrap_err().kind,
            ParseErrorKind::Row
        );
        let too_many = "1.0 0.5 3 2.0 9\n";
        assert_eq!(
            Distribution::parse(too_many).unwrap_err().kind,
            ParseErrorKind::Row
        );
        let bad_footer = "1.0 0.5 3\n#[Mean    = abc, StdDeviation = 1]\n";
        assert_eq!(
            Distribution::parse(bad_footer).unwrap_err(),
            ParseError {
                line: 2,
                kind: ParseErrorKind::Footer
            }
        );
        let no_max = "1.0 1.0 3\n#[Mean = 1, StdDeviation = 0]\n#[Total count = 3]\n";
        let e = Distribution::parse(no_max).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::MissingFooter("Max"));
        assert!(e.to_string().contains("Max"));
        // peer or user bytes never panic the parser
        for junk in [
            "",
            "#[",
            "#[]",
            "#[=]",
            "\u{0}\u{1}",
            "1 2 3 4 5 6",
            "-1 -1 -1",
        ] {
            let _ = Distribution::parse(junk);
        }
    }

    #[test]
    fn interval_log_reads_back_with_the_crate() {
        use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
        let mut a = hist();
        a.record(1_000).unwrap();
        a.record(2_000_000).unwrap();
        let mut b = hist();
        b.record(5_000).unwrap();
        let header = IntervalLogHeader {
            comment: Some("two\nlines".into()),
            start_time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
            max_value_divisor: 1e6,
        };
        let intervals = vec![
            Interval {
                start: Duration::ZERO,
                length: Duration::from_secs(1),
                histogram: a,
            },
            Interval {
                start: Duration::from_secs(1),
                length: Duration::from_millis(500),
                histogram: b,
            },
        ];
        let mut log = Vec::new();
        assert_eq!(write_interval_log(&mut log, &header, intervals).unwrap(), 2);
        let text = std::str::from_utf8(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#two");
        assert_eq!(lines[1], "#lines");
        assert_eq!(lines[2], "#[Histogram log format version 1.3]");
        assert_eq!(
            lines[3],
            "#[StartTime: 1700000000.250 (seconds since epoch)]"
        );
        assert!(lines[4].starts_with("#[BaseTime: 1700000000.250"));
        assert_eq!(lines[5], LOG_LEGEND);
        assert!(lines[6].starts_with("#[MaxValueDivisor: 1000000.000"));
        assert!(lines[7].starts_with("0.000,1.000,2.001,"), "{}", lines[7]);
        assert!(lines[8].starts_with("1.000,0.500,0.005,"), "{}", lines[8]);
        let intervals: Vec<_> = IntervalLogIterator::new(&log)
            .filter_map(|e| match e.unwrap() {
                LogEntry::Interval(i) => Some((i.start_timestamp(), i.duration())),
                _ => None,
            })
            .collect();
        assert_eq!(
            intervals,
            [
                (Duration::ZERO, Duration::from_secs(1)),
                (Duration::from_secs(1), Duration::from_millis(500))
            ]
        );
    }
}
