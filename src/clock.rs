//! Where the service reads the time. Every part that decides by time (visibility, subscription
//! expiry, delivery and retries, the purge, the time of storage) asks the `Clock` it was given,
//! so a test can move time instead of sleeping. Only the edges read the system clock directly:
//! the command line (a default `--until`), tokens (jsonwebtoken checks `exp` against the system
//! clock, so minting must too) and certificates (clients check them against theirs).
//!
//! Also here: `Timestamp`, an instant as the stores keep it, distinct from a `Duration`, so that
//! the arithmetic between them is written once and an instant cannot be passed for a length.

use std::fmt::Debug;
use std::ops::{Add, Sub};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::model::DateTimeOffset;

pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> DateTimeOffset;

    /// Time since a fixed point of this clock's, never going back even when the system's time is
    /// set back: what rate limits and cache ages measure with.
    fn monotonic(&self) -> Duration;

    /// Now, as the stores compare and keep it.
    fn timestamp(&self) -> Timestamp {
        Timestamp::from(self.now())
    }
}

const NANOS_PER_TICK: u128 = 100;
const TICKS_PER_SECOND: i64 = 10_000_000;

/// An instant: 100 ns ticks since the Unix epoch, the resolution of every Graph timestamp and
/// the integer the stores index, compare and page on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_ticks(ticks: i64) -> Self {
        Self(ticks)
    }

    pub const fn ticks(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, as JWT claims count time.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(TICKS_PER_SECOND)
    }

    /// The next instant there is: one tick (100 ns, the finest Graph time) later.
    pub fn next_tick(self) -> Timestamp {
        Timestamp(self.0.saturating_add(1))
    }

    /// The calendar time, when the instant lies within the years DateTimeOffset can show.
    pub fn to_date_time(self) -> Option<DateTimeOffset> {
        DateTimeOffset::from_unix_ticks(self.0)
    }

    /// The time from `earlier` to this instant, zero when `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        let ticks = u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0);
        Duration::from_nanos(ticks.saturating_mul(NANOS_PER_TICK as u64))
    }
}

impl From<DateTimeOffset> for Timestamp {
    fn from(value: DateTimeOffset) -> Self {
        Self(value.unix_ticks())
    }
}

fn duration_ticks(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos() / NANOS_PER_TICK).unwrap_or(i64::MAX)
}

/// Saturates at the ends of `i64`, far beyond any calendar date, rather than wrapping.
impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_ticks(duration)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_ticks(duration)))
    }
}

/// The rusqlite side of the SQLite store's hot reads binds and reads instants as integers too.
impl rusqlite::types::FromSql for Timestamp {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(value).map(Timestamp)
    }
}

impl rusqlite::types::ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.0))
    }
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTimeOffset {
        DateTimeOffset::now()
    }

    fn monotonic(&self) -> Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// The system clock, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    ticks: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub(crate) fn at(start: DateTimeOffset) -> Arc<Self> {
        Arc::new(Self {
            ticks: AtomicI64::new(start.unix_ticks()),
        })
    }

    /// A clock standing at the system's time now.
    pub fn starting_now() -> Arc<Self> {
        Self::at(DateTimeOffset::now())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.ticks.fetch_add(duration_ticks(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTimeOffset {
        let ticks = self.ticks.load(Ordering::SeqCst);
        DateTimeOffset::from_unix_ticks(ticks).expect("a manual clock stays within the calendar")
    }

    /// A manual clock only moves forward, so its time since the epoch serves.
    fn monotonic(&self) -> Duration {
        Timestamp(self.ticks.load(Ordering::SeqCst)).duration_since(Timestamp(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTimeOffset::parse("2024-03-01T00:00:00Z").unwrap();
        let clock = ManualClock::at(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now().to_string(), "2024-03-01T00:00:01.5Z");
        assert!(SystemClock.now() > start);
        let before = clock.monotonic();
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.monotonic() - before, Duration::from_secs(2));
        assert!(SystemClock.monotonic() <= SystemClock.monotonic());
    }

    #[test]
    fn instants_and_durations_do_arithmetic_in_ticks() {
        let start = Timestamp::from(DateTimeOffset::parse("2024-03-01T00:00:00Z").unwrap());
        let later = start + Duration::from_millis(1500);
        assert_eq!(later.ticks() - start.ticks(), 15_000_000);
        assert_eq!(later - Duration::from_millis(1500), start);
        assert_eq!(later.duration_since(start), Duration::from_millis(1500));
        assert_eq!(start.duration_since(later), Duration::ZERO);
        assert_eq!(later.to_date_time().unwrap().to_string(), "2024-03-01T00:00:01.5Z");
        assert_eq!(
            Timestamp::from_ticks(i64::MAX) + Duration::from_secs(1),
            Timestamp::from_ticks(i64::MAX)
        );
    }
}
