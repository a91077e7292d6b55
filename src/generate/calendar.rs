//! When calls start: a working-week shape over the requested window.
//!
//! Most calls fall in the tenant's local business hours (peaks mid-morning and mid-afternoon,
//! a dip at lunch), weekends are quiet, and scheduled meetings cluster at the full and half
//! hour. Start instants always fall in `[until - days, until)`.

use super::sample::{self, chance, Rng};
use super::wire::{self, DAY, HOUR, MINUTE, SECOND};

pub(super) struct Window {
    pub(super) start: i64,
    pub(super) end: i64,
    utc_offset: i64,
}

impl Window {
    /// `days == 0` would leave no room for any call, so it counts as one day.
    pub(super) fn new(until: time::OffsetDateTime, days: u32, utc_offset_minutes: i64) -> Window {
        let end = wire::ticks_of(until);
        let start = end - i64::from(days.max(1)) * DAY;
        Window {
            start,
            end,
            utc_offset: utc_offset_minutes * MINUTE,
        }
    }

    /// A start instant for a call; `scheduled` snaps it near a half hour, as meeting invites do.
    pub(super) fn sample_start(&self, rng: &mut Rng, scheduled: bool) -> i64 {
        let first_day = (self.start + self.utc_offset).div_euclid(DAY);
        let last_day = (self.end - 1 + self.utc_offset).div_euclid(DAY);
        // Rejection sampling keeps the weekly shape without a table per window; the retry
        // bound only matters for a one-day window that is all weekend.
        for _ in 0..64 {
            let day = sample::between(rng, first_day, last_day);
            let day_weight = match wire::weekday(day) {
                0 => 0.08,
                6 => 0.12,
                _ => 1.0,
            };
            if !chance(rng, day_weight) {
                continue;
            }
            let mut time_of_day = if chance(rng, 0.9) {
                let (peak, spread) = if chance(rng, 0.5) { (10.25, 1.3) } else { (14.5, 1.6) };
                (sample::normal(rng, peak, spread) * HOUR as f64) as i64
            } else {
                (sample::uniform(rng, 0.0, 24.0) * HOUR as f64) as i64
            };
            if scheduled {
                let half_hour = 30 * MINUTE;
                let snapped = (time_of_day + half_hour / 2).div_euclid(half_hour) * half_hour;
                // People join a few minutes early or late.
                time_of_day = snapped + sample::between(rng, -3 * MINUTE, 4 * MINUTE);
            }
            let time_of_day = time_of_day.clamp(0, DAY - 1) + sample::between(rng, 0, SECOND - 1);
            let instant = day * DAY + time_of_day - self.utc_offset;
            if (self.start..self.end).contains(&instant) {
                return instant;
            }
        }
        sample::between(rng, self.start, self.end - 1)
    }
}
