//! Retention: a background task that removes call records and usage-log rows past their
//! windows, in bounded batches so that reads never wait behind a long delete.
//!
//! Never: decide visibility. Reads hide records past the window by themselves (by start time); this
//! task only reclaims the space, so a slow or skipped purge changes no answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{self, RetentionStore, StoreResult, Timestamp};

/// How long data is kept and how the purge paces itself.
#[derive(Clone, Debug)]
pub struct RetentionPolicy {
    /// Days a call record is kept after it started; 0 keeps everything.
    pub call_record_days: u32,
    /// Days a usage-log row is kept (365 by default); 0 keeps everything.
    pub log_row_days: u32,
    /// Time between purges.
    pub interval: Duration,
    /// Records or rows removed per transaction.
    pub batch: u32,
    /// Records that started longer ago lose their personal data (`crate::privacy`); `None`
    /// keeps it for as long as the record is kept.
    pub scrub_personal_data: Option<crate::privacy::ScrubPolicy>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            call_record_days: 30,
            log_row_days: 365,
            interval: Duration::from_secs(600),
            batch: 1000,
            scrub_personal_data: None,
        }
    }
}

/// What one purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub call_records: u64,
    pub log_rows: u64,
}

/// One full purge: batches until each kind has nothing left past its window.
pub async fn purge_once(
    store: &dyn RetentionStore,
    policy: &RetentionPolicy,
    now: Timestamp,
) -> StoreResult<PurgeReport> {
    let mut report = PurgeReport::default();
    if let Some(before) = store::visible_from(policy.call_record_days, now) {
        loop {
            let removed = store.purge_call_records_before(before, policy.batch).await?;
            report.call_records += removed;
            if removed < u64::from(policy.batch) {
                break;
            }
            // Let waiting readers and writers in between batches.
            tokio::task::yield_now().await;
        }
    }
    if let Some(before) = store::visible_from(policy.log_row_days, now) {
        loop {
            let removed = store.purge_log_rows_before(before, policy.batch).await?;
            report.log_rows += removed;
            if removed < u64::from(policy.batch) {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    Ok(report)
}

/// Purges every `policy.interval` until `shutdown` turns true. Errors are logged and retried at
/// the next interval: a failed purge loses nothing.
pub async fn run(
    store: Arc<dyn store::Store>,
    policy: RetentionPolicy,
    clock: Arc<dyn crate::clock::Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    if policy.call_record_days == 0 && policy.log_row_days == 0 && policy.scrub_personal_data.is_none() {
        return;
    }
    loop {
        if let Some(scrub) = &policy.scrub_personal_data {
            match crate::privacy::scrub_pass(store.as_ref(), scrub, clock.timestamp()).await {
                Ok(0) => {}
                Ok(rewritten) => tracing::info!(rewritten, "scrubbed personal data from call records"),
                Err(error) => tracing::warn!(%error, "the personal-data scrub failed; retrying at the next interval"),
            }
        }
        match purge_once(store.as_ref(), &policy, clock.timestamp()).await {
            Ok(report) if report != PurgeReport::default() => {
                tracing::info!(
                    call_records = report.call_records,
                    log_rows = report.log_rows,
                    "retention purge"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "retention purge failed; retrying at the next interval"),
        }
        tokio::select! {
            _ = tokio::time::sleep(policy.interval) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
    }
}
