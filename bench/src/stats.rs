//! The arithmetic of a measurement: latency percentiles by the nearest-rank method and the
//! throughput over the measured window. Pure functions, no clock and no IO, so they are unit
//! tested here; `load` collects the samples and `report` prints what these return.

use std::time::Duration;

use serde::Serialize;

/// Latencies of one case, summarised. Durations are in microseconds in the JSON output.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct LatencySummary {
    pub(crate) count: u64,
    pub(crate) mean_us: u64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) p999_us: u64,
    pub(crate) max_us: u64,
}

/// The value at `percentile` (0 < percentile ≤ 100) of `sorted`, by the nearest-rank method:
/// the smallest sample such that at least `percentile` % of the samples are less or equal.
/// None when there are no samples.
pub(crate) fn percentile(sorted: &[Duration], percentile: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank: ceil(p/100 × n), 1-based, clamped into the slice. The small epsilon keeps
    // exact products such as 99.9 % of 1,000 (999.000…01 in floating point) at their rank.
    let rank = (percentile / 100.0 * sorted.len() as f64 - 1e-9).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// Sorts `samples` in place and summarises them.
pub(crate) fn summarize(samples: &mut [Duration]) -> LatencySummary {
    samples.sort_unstable();
    let micros = |value: Option<Duration>| value.map_or(0, |value| value.as_micros() as u64);
    let total: Duration = samples.iter().sum();
    LatencySummary {
        count: samples.len() as u64,
        mean_us: if samples.is_empty() {
            0
        } else {
            (total.as_micros() / samples.len() as u128) as u64
        },
        p50_us: micros(percentile(samples, 50.0)),
        p99_us: micros(percentile(samples, 99.0)),
        p999_us: micros(percentile(samples, 99.9)),
        max_us: micros(samples.last().copied()),
    }
}

/// Units per second over a window; 0 for an empty window.
pub(crate) fn rate(units: u64, window: Duration) -> f64 {
    if window.is_zero() {
        0.0
    } else {
        units as f64 / window.as_secs_f64()
    }
}

/// `value / reference`, or None when the reference is zero (nothing to compare with).
pub(crate) fn ratio(value: f64, reference: f64) -> Option<f64> {
    (reference > 0.0).then(|| value / reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut samples = millis((1..=1000).rev());
        let summary = summarize(&mut samples);
        assert_eq!(
            summary,
            LatencySummary {
                count: 1000,
                mean_us: 500_500,
                p50_us: 500_000,
                p99_us: 990_000,
                p999_us: 999_000,
                max_us: 1_000_000,
            }
        );
    }

    #[test]
    fn a_single_slow_sample_in_a_hundred_is_the_p99_only_when_it_is_above_the_rank() {
        // 99 fast samples and one slow one: 99 % of samples are ≤ 1 ms, so p99 is 1 ms and only
        // p99.9 and the maximum see the slow one.
        let mut samples = millis(std::iter::repeat_n(1, 99).chain([500]));
        let summary = summarize(&mut samples);
        assert_eq!((summary.p50_us, summary.p99_us), (1_000, 1_000));
        assert_eq!((summary.p999_us, summary.max_us), (500_000, 500_000));
    }

    #[test]
    fn small_and_empty_sample_sets_have_defined_summaries() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(summarize(&mut []), LatencySummary::default());
        let mut one = millis([7]);
        let summary = summarize(&mut one);
        assert_eq!(
            (summary.p50_us, summary.p999_us, summary.mean_us),
            (7_000, 7_000, 7_000)
        );
        let two = millis([1, 2]);
        assert_eq!(percentile(&two, 50.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&two, 50.1), Some(Duration::from_millis(2)));
    }

    #[test]
    fn rates_and_ratios_guard_against_zero() {
        assert_eq!(rate(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
    }
}
