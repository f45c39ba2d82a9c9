//! One latency distribution: an HdrHistogram of microseconds (docs/measurement.md, "Histograms").
//!
//! Actors record into their own `Latency` on the hot path, `take()` it once per
//! interval and ship it to the collector, which `add`s them up. Thousands of
//! actors each hold several of these, most of them idle (warmup histograms
//! after the warmup, a producer's between bursts), so a `Latency` allocates
//! its histogram only when the first value arrives, and `take` moves it out
//! instead of copying: an idle one costs nothing and ships nothing.
//! Also here: the V2-deflate + base64 encoding used by interval logs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Significant decimal digits kept by every histogram (about 0.1 % error).
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// Largest recordable latency: one hour in microseconds; longer values are clamped.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 1 µs ..= 1 h, 3 significant digits.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    /// None until the first value (empty).
    histogram: Option<Histogram<u64>>,
}

/// The numbers reported for one histogram, in microseconds; all zero when empty.
/// As in every HdrHistogram tool, a percentile (and `max`) is the highest value
/// equivalent to the recorded one at 3 significant digits (3000 reads as 3001).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl Latency {
    pub fn new() -> Self {
        Latency { histogram: None }
    }

    fn filling(&mut self) -> &mut Histogram<u64> {
        self.histogram.get_or_insert_with(empty_histogram)
    }

    /// Records a duration given in nanoseconds, rounded to the nearest microsecond.
    pub fn record_ns(&mut self, ns: u64) {
        self.record_us(ns.saturating_add(500) / 1_000);
    }

    /// Records a duration in microseconds, clamped to 1 µs ..= 1 h.
    pub fn record_us(&mut self, us: u64) {
        let clamped_us = us.clamp(1, MAX_LATENCY_US);
        // Cannot fail: the histogram auto-resizes and the value is within its bounds.
        let _ = self.filling().record(clamped_us);
    }

    /// Adds every value recorded in `other`.
    pub fn add(&mut self, other: &Latency) {
        if let Some(h) = &other.histogram {
            self.add_histogram(h);
        }
    }

    /// Adds a histogram from elsewhere (e.g. decoded from a log); values beyond
    /// the range this type records are dropped rather than panicking.
    pub fn add_histogram(&mut self, other: &Histogram<u64>) {
        if other.is_empty() {
            return;
        }
        // Only fails if `other` holds values above the auto-resize limit (i64::MAX / 2).
        let _ = self.filling().add(other);
    }

    pub fn count(&self) -> u64 {
        self.histogram.as_ref().map_or(0, Histogram::len)
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    pub fn percentiles(&self) -> Percentiles {
        let Some(h) = self.histogram.as_ref().filter(|h| !h.is_empty()) else {
            return Percentiles::default();
        };
        Percentiles {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }

    pub fn histogram(&self) -> &Histogram<u64> {
        static EMPTY: std::sync::LazyLock<Histogram<u64>> =
            std::sync::LazyLock::new(empty_histogram);
        self.histogram.as_ref().unwrap_or(&EMPTY)
    }

    /// Returns what was recorded so far and leaves `self` empty, without
    /// copying: the histogram itself moves.
    pub fn take(&mut self) -> Latency {
        Latency {
            histogram: self.histogram.take(),
        }
    }

    /// Empties it and frees its memory.
    pub fn reset(&mut self) {
        self.histogram = None;
    }

    /// The histogram in HdrHistogram's V2-deflate format, base64-encoded: the
    /// payload of an interval log line.
    pub fn encode(&self) -> String {
        encode_histogram(self.histogram())
    }

    /// Reads back what `encode` (or any HdrHistogram interval log) wrote.
    /// `None` if the text is not a valid encoded histogram.
    pub fn decode(encoded: &str) -> Option<Latency> {
        let bytes = base64_decode(encoded)?;
        let decoded: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).ok()?;
        let mut latency = Latency::new();
        latency.add_histogram(&decoded);
        Some(latency)
    }
}

fn empty_histogram() -> Histogram<u64> {
    // `new` starts with the smallest counts array (16 KiB) and auto-resizes.
    Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits is a valid configuration")
}

/// V2-deflate + base64, as written by HdrHistogram's interval log writers.
pub fn encode_histogram(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec cannot hit an I/O error; a failure would leave an empty payload.
    let _ = V2DeflateSerializer::new().serialize(histogram, &mut bytes);
    base64_encode(&bytes)
}

/// Standard base64 with padding, as HdrHistogram's interval logs use.
pub fn base64_encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Decodes standard base64; `None` on any invalid input.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_to_thousand() -> Latency {
        let mut l = Latency::new();
        for us in 1..=1000 {
            l.record_us(us);
        }
        l
    }

    #[test]
    fn percentiles_of_known_data() {
        let p = one_to_thousand().percentiles();
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50, 500);
        assert_eq!(p.p90, 900);
        assert_eq!(p.p99, 990);
        assert_eq!(p.p999, 999);
        assert_eq!(p.p9999, 1000);
        assert_eq!(p.max, 1000);
        assert!((p.mean - 500.5).abs() < 0.01, "mean {}", p.mean);
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let l = Latency::new();
        assert!(l.is_empty());
        assert_eq!(l.percentiles(), Percentiles::default());
    }

    #[test]
    fn nanoseconds_round_to_nearest_microsecond_and_clamp() {
        let mut l = Latency::new();
        l.record_ns(1_499);
        assert_eq!(l.percentiles().max, 1);
        l.reset();
        l.record_ns(1_500);
        assert_eq!(l.percentiles().max, 2);
        l.reset();
        l.record_ns(0);
        l.record_us(0);
        assert_eq!((l.count(), l.percentiles().max), (2, 1));
        l.record_ns(u64::MAX);
        let max = l.percentiles().max;
        assert!(l.histogram().equivalent(max, MAX_LATENCY_US), "max {max}");
    }

    #[test]
    fn add_merges_and_take_empties() {
        let mut total = Latency::new();
        let mut interval = one_to_thousand();
        interval.record_us(5_000_000);
        total.add(&interval.take());
        assert!(interval.is_empty());
        interval.record_us(7);
        total.add(&interval);
        assert_eq!(total.count(), 1002);
        assert!(
            total
                .histogram()
                .equivalent(total.percentiles().max, 5_000_000)
        );
    }

    #[test]
    fn encode_decode_round_trip() {
        let l = one_to_thousand();
        let back = Latency::decode(&l.encode()).unwrap();
        assert_eq!(back.percentiles(), l.percentiles());
        assert!(Latency::decode("not base64!").is_none());
        assert!(Latency::decode("AAAA").is_none());
    }
}
