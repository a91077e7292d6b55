//! Seeded, deterministic generator of realistic call records for demos, load tests and benches.
//!
//! It owns the shape of synthetic data: a stable directory of people and devices per seed,
//! the mix of calls and meetings, their timing, media quality and failures, and the JSON of
//! each callRecord in the full-details ingest shape (sessions, segments and participants_v2
//! inline; spec §2 of shared/spec/graph-callrecords.md). Same options give the same bytes.
//!
//! It never does IO, never touches the store and never reads the clock or the environment:
//! callers pass `until` and receive values through a callback, so the CLI decides whether they
//! go to a file, to the ingest path or over HTTP. Start with `call.rs` for the shape of a call
//! and `media.rs` for the quality model.

mod calendar;
mod call;
mod directory;
mod media;
mod sample;
mod vocab;
mod wire;

#[cfg(test)]
mod tests;

use rand::SeedableRng as _;
use serde_json::Value;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Number of distinct calls; re-published versions of some calls come on top.
    pub calls: u64,
    /// Seeds everything: directory, calls and order.
    pub seed: u64,
    /// Length of the window that start times fall in; 0 counts as 1.
    pub days: u32,
    /// Start times fall in `[until - days, until)`. Ends may fall later, as real calls do.
    pub until: time::OffsetDateTime,
}

/// Calls `emit` once per record in a deterministic order. Same options → same values → same bytes.
///
/// Each value is one callRecord with `organizer_v2`, `participants_v2` and `sessions` (with
/// their `segments`) inline. About 3 % of calls are emitted twice: first as version 1 without
/// late data, then a few records later as version 2 with all of it and a later
/// `lastModifiedDateTime`, as Graph re-publishes records. So `emit` runs `calls` times plus
/// the number of re-publications. Output is in generation order, not sorted by time.
pub fn generate(options: &GenerateOptions, mut emit: impl FnMut(Value)) {
    let mut rng = sample::Rng::seed_from_u64(options.seed);
    let n_users = usize::try_from(options.calls / 20).unwrap_or(usize::MAX).max(20);
    let directory = directory::build(&mut rng, n_users);
    let window = calendar::Window::new(options.until, options.days, directory.utc_offset_minutes);

    // Later versions wait here until their turn: (position due, record), sorted by position.
    let mut pending: Vec<(u64, Value)> = Vec::new();
    for position in 0..options.calls {
        let call = call::generate(&mut rng, &directory, &window);
        emit(call.first);
        if let Some(later) = call.later {
            let due = position + sample::between(&mut rng, 2, 12) as u64;
            let slot = pending.partition_point(|(pending_due, _)| *pending_due <= due);
            pending.insert(slot, (due, later));
        }
        let n_due = pending.partition_point(|(due, _)| *due <= position);
        for (_, record) in pending.drain(..n_due) {
            emit(record);
        }
    }
    for (_, record) in pending {
        emit(record);
    }
}

/// The NDJSON text of one record: compact JSON and a trailing newline.
pub fn ndjson_line(record: &Value) -> String {
    // Records run to tens of kilobytes; starting large spares the doubling copies.
    let mut line = Vec::with_capacity(64 * 1024);
    serde_json::to_writer(&mut line, record).expect("a serde_json::Value always serializes");
    line.push(b'\n');
    String::from_utf8(line).expect("serde_json writes UTF-8")
}
