//! Storage: the capability traits every backend implements (together, `Store`), its input and output types, and
//! `StoreError`. Backends keep each record as its serialized JSON document, compressed
//! (`codec`), beside the indexed columns that filtering and paging need, and a record's sessions
//! and participants in compressed parts of a page each, so they can be paged.
//!
//! Never: HTTP, status codes, axum. SQL text is built only from our own typed inputs, with every
//! value bound as a parameter. Next: `sqlite` for the embedded backend.

pub(crate) mod analytics;
pub(crate) mod codec;
#[cfg(test)]
mod contract;
pub(crate) mod postgres;
mod rules;
mod sql;
pub mod sqlite;
#[cfg(test)]
mod test_support;
mod transaction;

pub(crate) use transaction::WriteTransaction;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::DatabaseError as _;

pub use crate::clock::Timestamp;
use crate::model::{LogKind, SubscriptionScope};

/// Whose data a request sees and writes. Every key in every table starts with it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// The one tenant that exists until authentication does.
    pub const DEFAULT: &'static str = "00000000-0000-0000-0000-000000000000";

    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// A tenant id from outside (a token's `tid`, a command line): a GUID, written in lower case
    /// as Entra writes it.
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text)
            .ok()
            .map(|id| Self(id.hyphenated().to_string()))
    }

    /// A tenant id read back from a store, where only valid ids were ever written.
    pub(crate) fn from_stored(id: String) -> Self {
        Self(id)
    }
}

/// One call record made ready for storage by `crate::ingest`: serialized documents plus the
/// columns the store indexes.
#[derive(Clone, Debug)]
pub struct PreparedRecord {
    pub id: String,
    pub version: i64,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The record without `sessions` and `participants_v2` (which are rows of their own), with
    /// `organizer_v2` inline because Graph auto-expands it.
    pub document: String,
    /// The byte offset of the `organizer_v2` member in `document`, 0 when there is none.
    pub organizer_at: i64,
    /// `(session id, session document with its segments inline)`, in the order sent.
    pub sessions: Vec<(String, String)>,
    /// `(participant id, participant document)`, in the order sent.
    pub participants: Vec<(String, String)>,
    /// Its streams, counted by CQD's classification (for `/metrics`; not stored).
    pub streams: crate::quality::StreamTally,
    /// Its classified streams and legs, stored beside it for analytics.
    pub quality: crate::quality::QualityRows,
    /// A rewrite of the stored version (the personal-data scrub): it replaces that version only,
    /// and notifies nobody.
    pub rewrite: bool,
}

/// One usage-log row made ready for storage.
#[derive(Clone, Debug)]
pub struct PreparedLogRow {
    pub(crate) id: String,
    pub(crate) start: Timestamp,
    pub(crate) document: String,
}

/// A page request over one kind of log row: `[from, to)`, after a keyset position or
/// after skipping `skip` rows (the `$skip` a client may send).
#[derive(Clone, Debug)]
pub struct LogRowQuery {
    pub(crate) kind: LogKind,
    pub(crate) from: Timestamp,
    pub(crate) to: Timestamp,
    pub(crate) after: Option<RecordCursor>,
    pub(crate) skip: u64,
    pub(crate) limit: u32,
}

/// A subscription as stored: its served document beside what planning and expiry need.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSubscription {
    pub id: String,
    pub expiration: Timestamp,
    pub scope: SubscriptionScope,
    /// The `microsoft.graph.subscription` JSON as served.
    pub document: String,
}

/// A lifecycle event to queue for a subscription's `lifecycleNotificationUrl`.
#[derive(Clone, Debug, PartialEq)]
pub struct LifecycleEvent {
    pub(crate) subscription_id: String,
    /// `missed`, `subscriptionRemoved` or `reauthorizationRequired`.
    pub(crate) event: String,
    pub(crate) target_url: String,
    pub(crate) client_state: Option<String>,
    pub(crate) expiration: Timestamp,
}

/// An outbox row leased to one worker, with everything its delivery needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedNotification {
    pub id: i64,
    pub(crate) tenant_id: String,
    pub(crate) subscription_id: String,
    /// `created`, `updated`, or a lifecycle event name.
    pub event: String,
    pub call_record_id: Option<String>,
    /// Where to POST: the subscription's current notificationUrl, or the lifecycle target.
    pub(crate) url: String,
    pub(crate) client_state: Option<String>,
    pub(crate) subscription_expiration: Timestamp,
    pub(crate) created: Timestamp,
    pub(crate) first_attempt: Option<Timestamp>,
    pub attempts: i64,
}

/// What happened to one record of a batch, by Graph's version rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// The id was new.
    Stored,
    /// A lower version was stored; this one replaced it.
    Replaced,
    /// An equal or higher version was already stored: acknowledged, nothing changed.
    Ignored,
}

/// Which call records a list or count addresses: a conjunction of a start-time range
/// (`[start_from, start_before)`), participants that must all be present and, for exports, a
/// time of storage at or after `stored_since` (a version stored since then, new or replacing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordSelection {
    pub(crate) start_from: Option<Timestamp>,
    pub(crate) start_before: Option<Timestamp>,
    pub(crate) participant_ids: Vec<String>,
    pub(crate) stored_since: Option<Timestamp>,
}

impl RecordSelection {
    /// Narrows the range to records starting at or after `instant`.
    pub(crate) fn start_at_or_after(&mut self, instant: Timestamp) {
        self.start_from = Some(self.start_from.map_or(instant, |current| current.max(instant)));
    }

    /// Narrows the range to records starting before `instant`.
    pub(crate) fn start_before(&mut self, instant: Timestamp) {
        self.start_before = Some(self.start_before.map_or(instant, |current| current.min(instant)));
    }

    /// True when the range is empty, so no query needs to run.
    pub(crate) fn is_empty_range(&self) -> bool {
        matches!((self.start_from, self.start_before), (Some(from), Some(before)) if from >= before)
    }
}

/// The keyset position of the last record of a page: the list's sort key (start time, then id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordCursor {
    pub(crate) start: Timestamp,
    pub(crate) id: String,
}

#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub(crate) id: String,
    pub(crate) start: Timestamp,
    pub(crate) document: String,
    /// Where `organizer_v2` starts in `document` (see `PreparedRecord::organizer_at`); `None` for
    /// records stored before the store kept it.
    pub(crate) organizer_at: Option<i64>,
    pub(crate) n_sessions: i64,
    pub(crate) n_participants: i64,
}

/// A record row as a backend reads it, its document still a zstd frame (`codec`).
pub(crate) struct EncodedRecord {
    pub(crate) id: String,
    pub(crate) start: Timestamp,
    pub(crate) document: Vec<u8>,
    pub(crate) n_sessions: i64,
    pub(crate) n_participants: i64,
    pub(crate) organizer_at: Option<i64>,
}

impl EncodedRecord {
    pub(crate) fn decode(&self, codec: &codec::Codec) -> Result<StoredRecord, codec::CodecError> {
        Ok(StoredRecord {
            id: self.id.clone(),
            start: self.start,
            document: codec.decode(&self.document)?,
            n_sessions: self.n_sessions,
            n_participants: self.n_participants,
            organizer_at: self.organizer_at,
        })
    }
}

#[derive(Clone, Debug)]
pub struct StoredLogRow {
    pub(crate) id: String,
    pub(crate) start: Timestamp,
    pub(crate) document: String,
}

/// A sub-resource row (session or participant) with its position among its siblings.
#[derive(Clone, Debug)]
pub struct StoredChild {
    pub(crate) ordinal: i64,
    pub(crate) document: String,
}

/// Every page of a record's children, through `read(after)` (`list_sessions` or
/// `list_participants` after an ordinal).
pub(crate) async fn all_children<F, Fut>(mut read: F) -> StoreResult<Vec<StoredChild>>
where
    F: FnMut(Option<i64>) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Vec<StoredChild>>>,
{
    let mut children = Vec::new();
    loop {
        let page = read(children.last().map(|child: &StoredChild| child.ordinal)).await?;
        if page.is_empty() {
            return Ok(children);
        }
        children.extend(page);
    }
}

/// A signing key of the local token issuer (`crate::auth::local`).
#[derive(Clone, Debug)]
pub struct StoredSigningKey {
    pub kid: String,
    /// PKCS#8 PEM. The store is the key's only home, so whoever can read the store can mint tokens.
    pub private_key_pem: String,
    pub(crate) created: Timestamp,
    /// When the key stops verifying tokens; `None` while it is current.
    pub(crate) retired: Option<Timestamp>,
}

/// An application registered with the local token issuer.
#[derive(Clone, Debug)]
pub struct StoredApp {
    pub(crate) client_id: String,
    pub(crate) name: String,
    pub(crate) roles: Vec<String>,
    /// SHA-256 of the secret, hex: secrets are 256 random bits, so a fast hash is enough.
    pub(crate) secret_sha256: String,
    pub(crate) created: Timestamp,
}

/// Why a store operation failed, in the classes a caller can act on. The API names the class to
/// the client (507 for `Full`, 503 for `Busy` and `Unavailable`) and never the internals.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No room for the write: the disk, a quota or the store's size limit. Nothing of the failed
    /// transaction was kept; writes succeed again once space is freed.
    #[error("the store is full: {0:#}")]
    Full(anyhow::Error),
    /// Another writer held a lock past the timeout: worth retrying shortly.
    #[error("the store is busy: {0:#}")]
    Busy(anyhow::Error),
    /// The database cannot be reached, or its connection broke: worth retrying.
    #[error("the store is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The failure classes of SQLite's primary result codes and PostgreSQL's SQLSTATEs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureClass {
    Full,
    Busy,
    Unavailable,
    Other,
}

impl FailureClass {
    /// SQLite's (extended) result code: the primary code is its low byte.
    pub(crate) fn of_sqlite_code(code: i32) -> Self {
        match code & 0xff {
            13 => Self::Full,                 // SQLITE_FULL: disk, quota or max_page_count
            5 | 6 => Self::Busy,              // SQLITE_BUSY, SQLITE_LOCKED
            10 | 14 | 8 => Self::Unavailable, // SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_READONLY
            _ => Self::Other,
        }
    }

    /// PostgreSQL's SQLSTATE (Appendix A of its manual).
    pub(crate) fn of_sqlstate(state: &str) -> Self {
        match state {
            "53100" => Self::Full,                               // disk_full
            "40001" | "40P01" | "55P03" | "57014" => Self::Busy, // serialization, deadlock, lock, timeout
            _ if state.starts_with("08") => Self::Unavailable,   // connection exceptions
            _ if state.starts_with("53") => Self::Unavailable,   // out of memory, too many connections
            _ if state.starts_with("57P") => Self::Unavailable,  // shutdown, crash recovery
            "25006" => Self::Unavailable,                        // read-only transaction: a standby
            _ => Self::Other,
        }
    }

    fn of_sqlx(error: &sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut => Self::Busy,
            sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
                Self::Unavailable
            }
            sqlx::Error::WorkerCrashed => Self::Unavailable,
            sqlx::Error::Database(db) => {
                if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                    sqlite
                        .code()
                        .and_then(|code| code.parse().ok())
                        .map_or(Self::Other, Self::of_sqlite_code)
                } else {
                    db.code().map_or(Self::Other, |state| Self::of_sqlstate(&state))
                }
            }
            _ => Self::Other,
        }
    }
}

impl StoreError {
    pub(crate) fn classified(class: FailureClass, error: anyhow::Error) -> Self {
        match class {
            FailureClass::Full => Self::Full(error),
            FailureClass::Busy => Self::Busy(error),
            FailureClass::Unavailable => Self::Unavailable(error),
            FailureClass::Other => Self::Other(error),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let class = FailureClass::of_sqlx(&error);
        StoreError::classified(class, anyhow::Error::new(error))
    }
}

pub(crate) type StoreResult<T> = Result<T, StoreError>;

/// Call records with their sessions and participants: the version rule on write, pages on read.
#[async_trait]
pub trait CallRecordStore: Send + Sync {
    /// Applies Graph's version rule to each record in order (`rules::plan_upsert`), in one
    /// transaction, and returns only once that transaction is durable. A record whose id is new is
    /// stored; one with a higher version than the stored one replaces it and all its sessions and
    /// participants; one with an equal or lower version changes nothing (idempotent replays). In
    /// the same transaction it queues the change notifications the tenant's subscriptions
    /// unexpired at `now` want (`rules::plan_notifications`), and records `now` as the
    /// time of storage.
    async fn upsert_call_records(
        &self,
        tenant: &TenantId,
        batch: &[PreparedRecord],
        now: Timestamp,
    ) -> StoreResult<Vec<UpsertOutcome>>;

    /// Up to `limit` records matching `selection`, after `cursor` in (start, id) order.
    async fn list_call_records(
        &self,
        tenant: &TenantId,
        selection: &RecordSelection,
        cursor: Option<&RecordCursor>,
        limit: u32,
    ) -> StoreResult<Vec<StoredRecord>>;

    async fn count_call_records(&self, tenant: &TenantId, selection: &RecordSelection) -> StoreResult<i64>;

    /// The record, if it exists and starts at or after `visible_from`.
    async fn get_call_record(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<Timestamp>,
    ) -> StoreResult<Option<StoredRecord>>;

    /// The record and its first `limit` sessions, read from one snapshot where the backend can,
    /// so that the sessions belong to the version of the record returned with them. The default
    /// reads them one after the other.
    async fn get_call_record_with_sessions(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<Timestamp>,
        limit: u32,
    ) -> StoreResult<Option<(StoredRecord, Vec<StoredChild>)>> {
        let Some(record) = self.get_call_record(tenant, id, visible_from).await? else {
            return Ok(None);
        };
        let sessions = self.list_sessions(tenant, id, None, limit).await?;
        Ok(Some((record, sessions)))
    }

    /// Up to `limit` sessions of a record after `after_ordinal`, in the order they were sent.
    async fn list_sessions(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>>;

    async fn get_session(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        session_id: &str,
    ) -> StoreResult<Option<StoredChild>>;

    /// Up to `limit` participants of a record after `after_ordinal`, in the order they were sent.
    async fn list_participants(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>>;

    async fn get_participant(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<StoredChild>>;
}

/// PSTN and Direct Routing usage-log rows.
#[async_trait]
pub trait UsageLogStore: Send + Sync {
    /// Stores usage-log rows of one kind in one durable transaction. A row whose id is already
    /// stored is acknowledged and ignored: rows have no version, so a replay changes nothing.
    async fn upsert_log_rows(
        &self,
        tenant: &TenantId,
        kind: LogKind,
        batch: &[PreparedLogRow],
    ) -> StoreResult<Vec<UpsertOutcome>>;

    /// Up to `query.limit` rows of one kind in `[from, to)`, in (time, id) order.
    async fn list_log_rows(&self, tenant: &TenantId, query: &LogRowQuery) -> StoreResult<Vec<StoredLogRow>>;
}

/// The purge of data past its retention window.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Removes up to `limit` call records (with their sessions and participants) of every
    /// tenant that started before `before`, in one short transaction, and returns how many
    /// it removed. Callers repeat until fewer than `limit` come back, so reads never wait long.
    async fn purge_call_records_before(&self, before: Timestamp, limit: u32) -> StoreResult<u64>;

    /// Removes up to `limit` usage-log rows of every tenant and kind whose time is before
    /// `before`; returns how many it removed. A backend that partitions by time may drop
    /// whole partitions at once and report their rows.
    async fn purge_log_rows_before(&self, before: Timestamp, limit: u32) -> StoreResult<u64>;
}

/// Change-notification subscriptions and their expiry.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Stores a new subscription unless the tenant already has `quota` subscriptions unexpired at
    /// `now` (`rules::quota_allows`), atomically even when several nodes create at once;
    /// returns whether it was stored.
    async fn create_subscription(
        &self,
        tenant: &TenantId,
        subscription: &StoredSubscription,
        quota: u32,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// The subscription, if it exists and has not expired at `now`.
    async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<StoredSubscription>>;

    /// The tenant's unexpired subscriptions, by id.
    async fn list_subscriptions(&self, tenant: &TenantId, now: Timestamp) -> StoreResult<Vec<StoredSubscription>>;

    /// Replaces a subscription's stored form; returns false when it does not exist.
    async fn replace_subscription(&self, tenant: &TenantId, subscription: &StoredSubscription) -> StoreResult<bool>;

    /// Deletes a subscription and its pending change notifications; returns whether it existed.
    async fn delete_subscription(&self, tenant: &TenantId, id: &str) -> StoreResult<bool>;

    /// Deletes every subscription expired at `now` (of every tenant) with its pending
    /// change notifications; returns how many subscriptions it deleted.
    async fn remove_expired_subscriptions(&self, now: Timestamp) -> StoreResult<u64>;

    /// Marks and returns the unexpired subscriptions (of every tenant, with their tenant ids)
    /// that expire before `now + within` and were not reminded since `now - every`, so that a
    /// `reauthorizationRequired` event goes out at most once per `every` for each.
    async fn take_reauthorization_due(
        &self,
        now: Timestamp,
        within: Duration,
        every: Duration,
    ) -> StoreResult<Vec<(TenantId, StoredSubscription)>>;
}

/// The notification outbox: queued change and lifecycle notifications, leased to one worker at a time.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues lifecycle events, due at once.
    async fn enqueue_lifecycle_events(
        &self,
        tenant: &TenantId,
        events: &[LifecycleEvent],
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Leases up to `limit` due outbox rows to `worker` until `now + lease`, oldest first, so
    /// that several nodes never deliver the same row at once. Change rows whose subscription is
    /// gone are never returned.
    async fn claim_notifications(
        &self,
        worker: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedNotification>>;

    /// Deletes delivered (or abandoned) outbox rows.
    async fn complete_notifications(&self, ids: &[i64]) -> StoreResult<()>;

    /// Gives back rows leased to `worker` that it did not send: lease released, attempts and due
    /// time unchanged, so the next claim (of any worker) takes them at once.
    async fn release_notifications(&self, worker: &str, ids: &[i64]) -> StoreResult<()>;

    /// Reschedules failed rows: one more attempt counted, due again at the given time, lease
    /// released, and the first attempt's time kept (or set to `now`).
    async fn retry_notifications(&self, retries: &[(i64, Timestamp)], now: Timestamp) -> StoreResult<()>;

    /// Rows waiting in the outbox.
    async fn outbox_depth(&self) -> StoreResult<i64>;
}

/// Whether the store answers, and what it holds.
#[async_trait]
pub trait StoreHealth: Send + Sync {
    /// Whether the store answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;

    /// The store's size and what it holds, for `/metrics` and the start page. Counts every
    /// stored row, including rows past retention that the purge has not removed yet.
    async fn stats(&self) -> StoreResult<StoreStats>;
}

/// The local token issuer's signing keys and registered apps.
#[async_trait]
pub trait IssuerStore: Send + Sync {
    /// Every signing key of the local issuer, newest first, retired ones included.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>>;

    /// Adds a signing key and, in the same transaction, retires every current key at
    /// `retire_others_at` (a rotation), or leaves them current (`None`).
    async fn add_signing_key(&self, key: &StoredSigningKey, retire_others_at: Option<Timestamp>) -> StoreResult<()>;

    async fn add_app(&self, tenant: &TenantId, app: &StoredApp) -> StoreResult<()>;

    async fn get_app(&self, tenant: &TenantId, client_id: &str) -> StoreResult<Option<StoredApp>>;

    /// Adds a certificate an app may sign client assertions with, under its SHA-256 thumbprint.
    async fn add_app_certificate(
        &self,
        tenant: &TenantId,
        client_id: &str,
        thumbprint: &str,
        certificate_pem: &str,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// The certificate (PEM) of the app with that thumbprint, if the app has one.
    async fn app_certificate(
        &self,
        tenant: &TenantId,
        client_id: &str,
        thumbprint: &str,
    ) -> StoreResult<Option<String>>;
}

/// What `callrecords sync` keeps to resume where it was: per collected tenant, named values (the
/// windows completed, a sweep's resume point, the subscription held upstream), the records a
/// notification named and that are not fetched yet, and the lease that lets one collector at a
/// time collect a tenant.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// The stored version of each of `ids` the tenant has; ids it does not have are absent.
    async fn stored_versions(&self, tenant: &TenantId, ids: &[String]) -> StoreResult<HashMap<String, i64>>;

    async fn sync_value(&self, tenant: &TenantId, name: &str) -> StoreResult<Option<String>>;

    async fn set_sync_value(&self, tenant: &TenantId, name: &str, value: &str) -> StoreResult<()>;

    /// Notes records to fetch, at `now`; a record noted again is noted at the later time.
    async fn note_pending_records(&self, tenant: &TenantId, ids: &[String], now: Timestamp) -> StoreResult<()>;

    /// Up to `limit` noted records, oldest note first, with the time each was noted.
    async fn pending_records(&self, tenant: &TenantId, limit: u32) -> StoreResult<Vec<(String, Timestamp)>>;

    /// Forgets the notes of `ids` made at or before `noted_by`: a record noted again while it was
    /// being fetched stays noted.
    async fn clear_pending_records(&self, tenant: &TenantId, ids: &[String], noted_by: Timestamp) -> StoreResult<()>;

    /// Takes or renews the tenant's lease for `holder` until `until`; false while another holder's
    /// lease runs past `now`.
    async fn take_sync_lease(
        &self,
        tenant: &TenantId,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool>;

    /// Gives the lease back, if `holder` has it.
    async fn release_sync_lease(&self, tenant: &TenantId, holder: &str) -> StoreResult<()>;

    /// The tenants a collector has ever collected into this store.
    async fn collected_tenants(&self) -> StoreResult<Vec<TenantId>>;
}

/// A tenant's CQD building file, as uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBuildingFile {
    pub(crate) uploaded: Timestamp,
    pub(crate) subnets: i64,
    pub(crate) body: String,
}

/// Building files: each tenant's uploads, the newest active.
#[async_trait]
pub trait BuildingStore: Send + Sync {
    /// Keeps a checked file as the tenant's active one.
    async fn add_building_file(&self, tenant: &TenantId, file: &StoredBuildingFile) -> StoreResult<()>;

    /// The tenant's newest file, if it uploaded one.
    async fn active_building_file(&self, tenant: &TenantId) -> StoreResult<Option<StoredBuildingFile>>;
}

/// The storage every backend provides: the capability traits above, together. One method is one
/// transaction where atomicity matters. A part of the service that needs one capability takes
/// that trait (`&dyn OutboxStore`); the app holds the whole store.
///
/// A new backend implements each capability and passes `store::contract`, run against it through
/// this trait; the rules it must apply are in `store::rules`, the SQL they share in
/// `sql::selection_statement` and `sql::log_rows_statement`.
pub trait Store:
    CallRecordStore
    + UsageLogStore
    + RetentionStore
    + SubscriptionStore
    + OutboxStore
    + StoreHealth
    + IssuerStore
    + SyncStore
    + BuildingStore
    + analytics::AnalyticsStore
{
}

impl<T> Store for T where
    T: CallRecordStore
        + UsageLogStore
        + RetentionStore
        + SubscriptionStore
        + OutboxStore
        + StoreHealth
        + IssuerStore
        + SyncStore
        + BuildingStore
        + analytics::AnalyticsStore
{
}

/// What `Store::stats` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Bytes the store takes: SQLite's database file (its free pages included, the write-ahead
    /// log not); PostgreSQL's tables of the store's schema with their indexes and TOAST.
    pub(crate) bytes: i64,
    /// Stored call records by tenant, most first.
    pub(crate) call_records_by_tenant: Vec<(TenantId, i64)>,
    /// Stored usage-log rows by kind (`LogKind::as_str`), all tenants together.
    pub(crate) log_rows_by_kind: Vec<(String, i64)>,
}

impl StoreStats {
    pub(crate) fn call_records(&self) -> i64 {
        self.call_records_by_tenant.iter().map(|(_, count)| count).sum()
    }
}

pub(crate) fn stored_signing_key<R: sqlx::Row>(row: &R) -> Result<StoredSigningKey, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredSigningKey {
        kid: row.try_get("kid")?,
        private_key_pem: row.try_get("private_key_pem")?,
        created: Timestamp::from_ticks(row.try_get("created_ticks")?),
        retired: rules::instant_or_none(row.try_get("retired_ticks")?),
    })
}

pub(crate) fn stored_app<R: sqlx::Row>(row: &R) -> Result<StoredApp, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let roles: String = row.try_get("roles")?;
    Ok(StoredApp {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        roles: serde_json::from_str(&roles).map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
        secret_sha256: row.try_get("secret_sha256")?,
        created: Timestamp::from_ticks(row.try_get("created_ticks")?),
    })
}

/// The small integer that stands for a tenant in the keys of records and their parts (table
/// `tenant`), so that no index repeats a 36-character tenant id. Keys are never changed or
/// reused, so a node caches them for as long as it runs.
#[derive(Debug, Default)]
pub(crate) struct TenantKeys {
    known: RwLock<HashMap<String, i64>>,
}

impl TenantKeys {
    pub(crate) fn cached(&self, tenant: &TenantId) -> Option<i64> {
        self.known
            .read()
            .expect("tenant keys lock")
            .get(tenant.as_str())
            .copied()
    }

    pub(crate) fn remember(&self, tenant: &TenantId, key: i64) {
        self.known
            .write()
            .expect("tenant keys lock")
            .insert(tenant.as_str().to_owned(), key);
    }
}

/// Where a backend keeps the dictionaries that `codec` trains.
#[async_trait]
pub(crate) trait DictionaryStore: Send + Sync {
    /// Stores a newly trained dictionary under the next free id (ids count from 1, without
    /// gaps, even when several nodes train at once), in a transaction of its own that commits
    /// before any document is written with it, and returns it as stored.
    async fn add_dictionary(
        &self,
        kind: codec::DocumentKind,
        trained: Vec<u8>,
        now: Timestamp,
    ) -> StoreResult<codec::StoredDictionary>;
}

/// Compresses a batch of records for storage without holding up other tasks (`cpu_bound`):
/// first trains, stores and installs the dictionaries that are due (`Codec::training_due`), then
/// compresses every record with the current ones. Runs before the write transaction, so concurrent ingests
/// compress in parallel while another commits.
pub(crate) async fn compress_for_storage(
    codec: &Arc<codec::Codec>,
    dictionaries: &dyn DictionaryStore,
    batch: &[PreparedRecord],
    now: Timestamp,
) -> StoreResult<Vec<codec::CompressedRecord>> {
    let due = cpu_bound(|| {
        codec
            .training_due(batch)
            .into_iter()
            .map(|(kind, samples)| codec::train(&samples).map(|body| (kind, body)))
            .collect::<Result<Vec<_>, _>>()
    });
    for (kind, body) in due.map_err(codec_failure)? {
        let dictionary = dictionaries.add_dictionary(kind, body, now).await?;
        tracing::info!(
            dictionary = dictionary.id,
            kind = kind.as_str(),
            bytes = dictionary.body.len(),
            "trained a compression dictionary"
        );
        codec.install(&dictionary);
    }
    Ok(cpu_bound(|| codec.compress_batch(batch)))
}

/// Runs CPU-bound work without holding up the tasks queued behind it: on a multi-threaded
/// runtime this worker first hands them to another (`block_in_place`), so the batch need not be
/// copied to move it to the blocking pool; on a current-thread runtime (tests) it runs inline.
fn cpu_bound<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// A row of `sql::DICTIONARIES`.
pub(crate) type DictionaryRow = (i64, String, i64, String, Vec<u8>);

/// The dictionaries of `sql::DICTIONARIES`, checked against each other and against the newest
/// id ever issued (`sql::DICTIONARIES_ISSUED`): a damaged or lost dictionary is an error here,
/// when the store is opened, rather than a failure of every read that needs it.
pub(crate) fn checked_dictionaries(
    rows: Vec<DictionaryRow>,
    issued: Option<i64>,
) -> anyhow::Result<Vec<codec::StoredDictionary>> {
    use anyhow::Context;
    let dictionaries = rows
        .into_iter()
        .map(|(id, kind, created, sha256, body)| {
            Ok(codec::StoredDictionary {
                id: u32::try_from(id).with_context(|| format!("dictionary id {id} is out of range"))?,
                kind: codec::DocumentKind::parse(&kind)
                    .with_context(|| format!("dictionary {id} is of an unknown kind '{kind}'"))?,
                body,
                sha256,
                created: Timestamp::from_ticks(created),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let issued = u32::try_from(issued.unwrap_or(0)).context("the count of dictionaries issued is out of range")?;
    codec::Codec::check(&dictionaries, issued).context(
        "the compression dictionaries (table dictionary) are damaged or incomplete, so stored call records \
         cannot be read; restore the table from a backup",
    )?;
    Ok(dictionaries)
}

/// A document that cannot be decoded, or a dictionary that cannot be trained: never a wrong
/// answer, always this error.
pub(crate) fn codec_failure(error: codec::CodecError) -> StoreError {
    StoreError::Other(anyhow::Error::new(error))
}

/// Opens the store a `--db` URL names. Supported schemes: `sqlite://PATH`, and
/// `postgres://…` or `postgresql://…` (passed to the driver as given).
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_with(url, &StoreOptions::default()).await
}

/// How a store is opened, beyond its URL.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// SQLite only: the most the database file may grow to, in bytes. Past it, writes are
    /// refused as full (ingest answers 507) and reads go on.
    pub(crate) sqlite_max_size: Option<u64>,
    /// Records moved per transaction when a store of the previous layout is converted on open.
    pub(crate) conversion_batch: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sqlite_max_size: None,
            conversion_batch: CONVERSION_BATCH,
        }
    }
}

/// Records moved to the compact layout per transaction when an older store is opened: a few
/// megabytes of documents, so each commit is short and an interruption repeats little.
pub(crate) const CONVERSION_BATCH: u32 = 200;

pub(crate) async fn open_with(url: &str, options: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(sqlite::SqliteStore::open_with(path, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        if options.sqlite_max_size.is_some() {
            anyhow::bail!("a size limit applies to SQLite stores only; PostgreSQL's comes from its disk or quota")
        }
        Ok(Arc::new(postgres::PgStore::open_with(url, options).await?))
    } else {
        anyhow::bail!("unsupported database URL '{url}': expected sqlite://PATH, postgres://… or postgresql://…")
    }
}

/// The oldest start time visible under a retention of `days` (0 keeps everything).
pub(crate) fn visible_from(retention_days: u32, now: Timestamp) -> Option<Timestamp> {
    (retention_days > 0).then(|| now - Duration::from_secs(u64::from(retention_days) * 86_400))
}
