//! Where the service reads the time. Every part that decides by time (visibility, subscription
//! expiry, delivery and retries, the purge, the time of storage) asks the `Clock` it was given,
//! so a test can move time instead of sleeping. Only the edges read the system clock directly:
//! the command line (a default `--until`), tokens (jsonwebtoken checks `exp` against the system
//! clock, so minting must too) and certificates (clients check them against theirs).

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::model::DateTimeOffset;

pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> DateTimeOffset;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTimeOffset {
        DateTimeOffset::now()
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

const NANOS_PER_TICK: u128 = 100;

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
        let ticks = i64::try_from(by.as_nanos() / NANOS_PER_TICK).unwrap_or(i64::MAX);
        self.ticks.fetch_add(ticks, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTimeOffset {
        let ticks = self.ticks.load(Ordering::SeqCst);
        DateTimeOffset::from_unix_ticks(ticks).expect("a manual clock stays within the calendar")
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
    }
}
