//! Throttling as Graph documents it: token buckets per tenant, per application in a
//! tenant, and per call record, with Graph's documented limits as defaults; the usage-log
//! functions and ingest have buckets of their own. Over a limit is a 429 `TooManyRequests` with
//! `Retry-After` in whole seconds, at least 1, which the SDKs' retry handlers obey.
//!
//! Buckets live in this process's memory (governor's GCRA): with several nodes, each enforces
//! the limits on what it serves, so a deployment of N nodes allows up to N times the rate.

use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::error::ApiError;
use super::path::{Resource, Target};
use crate::auth::Principal;
use crate::store::TenantId;

/// One limit: `count` requests per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limit {
    pub(crate) count: u32,
    pub(crate) period: Duration,
}

impl Limit {
    const fn per(count: u32, seconds: u64) -> Self {
        Self {
            count,
            period: Duration::from_secs(seconds),
        }
    }

    fn quota(self) -> Quota {
        let count = NonZeroU32::new(self.count.max(1)).expect("at least one");
        let replenish = self.period / count.get();
        Quota::with_period(replenish.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(count)
    }
}

impl FromStr for Limit {
    type Err = String;

    /// `COUNT/SECONDS`, e.g. `1500/20`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (count, seconds) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not COUNT/SECONDS"))?;
        let count: u32 = count.trim().parse().map_err(|_| format!("'{count}' is not a count"))?;
        let seconds: u64 = seconds
            .trim()
            .parse()
            .map_err(|_| format!("'{seconds}' is not a number of seconds"))?;
        if count == 0 || seconds == 0 {
            return Err(format!("'{text}': count and seconds must be at least 1"));
        }
        Ok(Self::per(count, seconds))
    }
}

/// The limits, named as `--throttle-limit NAME=COUNT/SECONDS` names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleSettings {
    pub(crate) enabled: bool,
    /// Call records, sessions, participants and subscriptions, per tenant (all apps).
    pub(crate) tenant: Limit,
    /// The same, per application in a tenant.
    pub(crate) app_tenant: Limit,
    /// One call record and its sub-resources, every page alike.
    pub(crate) record: Limit,
    /// The usage-log functions, per tenant.
    pub(crate) functions_tenant: Limit,
    /// The usage-log functions, per application in a tenant.
    pub(crate) functions_app_tenant: Limit,
    /// Ingest requests, per tenant (ours; Graph has no ingest).
    pub(crate) ingest_tenant: Limit,
}

impl Default for ThrottleSettings {
    /// Graph's documented limits. Per record, one budget for first and later pages alike: Graph's
    /// throttling page gives 40 requests per 20 seconds per call record, for all pages.
    fn default() -> Self {
        Self {
            enabled: true,
            tenant: Limit::per(10_000, 20),
            app_tenant: Limit::per(1_500, 20),
            record: Limit::per(40, 20),
            functions_tenant: Limit::per(1_000, 60),
            functions_app_tenant: Limit::per(200, 60),
            ingest_tenant: Limit::per(1_200, 60),
        }
    }
}

impl ThrottleSettings {
    pub(crate) fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    pub(crate) const NAMES: &'static [&'static str] = &[
        "tenant",
        "app-tenant",
        "record",
        "functions-tenant",
        "functions-app-tenant",
        "ingest-tenant",
    ];

    /// Applies `NAME=COUNT/SECONDS`.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (name, limit) = assignment
            .split_once('=')
            .ok_or_else(|| format!("'{assignment}' is not NAME=COUNT/SECONDS"))?;
        let limit: Limit = limit.parse()?;
        let slot = match name.trim() {
            "tenant" => &mut self.tenant,
            "app-tenant" => &mut self.app_tenant,
            // The names of the two budgets Graph had per record before it merged them: one
            // assignment of either still sets the record's limit, so scripts keep working.
            "record" | "record-first-page" | "record-later-pages" => &mut self.record,
            "functions-tenant" => &mut self.functions_tenant,
            "functions-app-tenant" => &mut self.functions_app_tenant,
            "ingest-tenant" => &mut self.ingest_tenant,
            other => {
                return Err(format!(
                    "'{other}' is not a throttle limit; expected one of: {}",
                    Self::NAMES.join(", ")
                ))
            }
        };
        *slot = limit;
        Ok(())
    }
}

/// The App's clock as governor reads it: its monotonic time, so tests move time instead of
/// waiting for a bucket to refill.
#[derive(Clone, Debug)]
struct BucketClock(Arc<dyn crate::clock::Clock>);

impl governor::clock::Clock for BucketClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.monotonic()
    }
}

type Bucket = RateLimiter<String, DefaultKeyedStateStore<String>, BucketClock, NoOpMiddleware<Duration>>;

/// Every bucket of one process.
pub(crate) struct Throttle {
    settings: ThrottleSettings,
    tenant: Bucket,
    app_tenant: Bucket,
    record: Bucket,
    functions_tenant: Bucket,
    functions_app_tenant: Bucket,
    ingest_tenant: Bucket,
    checks: AtomicU64,
    clock: BucketClock,
}

/// Buckets untouched for a while are dropped every this many checks, so memory follows the
/// keys in recent use rather than every record ever read.
const HOUSEKEEPING_EVERY: u64 = 10_000;

impl Throttle {
    pub fn new(settings: ThrottleSettings, clock: Arc<dyn crate::clock::Clock>) -> Self {
        let clock = BucketClock(clock);
        let bucket = |limit: Limit| RateLimiter::dashmap_with_clock(limit.quota(), clock.clone());
        Self {
            tenant: bucket(settings.tenant),
            app_tenant: bucket(settings.app_tenant),
            record: bucket(settings.record),
            functions_tenant: bucket(settings.functions_tenant),
            functions_app_tenant: bucket(settings.functions_app_tenant),
            ingest_tenant: bucket(settings.ingest_tenant),
            settings,
            checks: AtomicU64::new(0),
            clock,
        }
    }

    /// Takes a token from the tenant's, the application's and the functions' buckets the request
    /// falls in, or answers the 429. `target` is the request's path as the authenticate
    /// middleware parsed it. A call record's own budget is taken later, by `check_record`, once
    /// the request is known to be one the record will answer.
    pub(crate) fn check(&self, principal: &Principal, target: &Target) -> Result<(), ApiError> {
        if !self.settings.enabled {
            return Ok(());
        }
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY == HOUSEKEEPING_EVERY - 1 {
            self.housekeeping();
        }
        let tenant = principal.tenant.as_str().to_owned();
        let app = format!("{tenant}|{}", principal.app_id);
        let parsed = match target {
            Target::Ingest => return self.take(&self.ingest_tenant, &tenant),
            Target::Analytics | Target::Export { .. } => {
                self.take(&self.tenant, &tenant)?;
                return self.take(&self.app_tenant, &app);
            }
            Target::Other => return Ok(()),
            Target::Graph(parsed) => parsed,
        };
        match parsed {
            Ok(Resource::Function(..)) => {
                self.take(&self.functions_tenant, &tenant)?;
                self.take(&self.functions_app_tenant, &app)
            }
            Ok(Resource::Metadata | Resource::ServiceDocument) => Ok(()),
            _ => {
                self.take(&self.tenant, &tenant)?;
                self.take(&self.app_tenant, &app)
            }
        }
    }

    /// Takes a token from the budget of one call record (and its sub-resources), first and later
    /// pages alike. The handlers call it after the request's options passed and before the
    /// store is read, so a request refused for its path or options costs the record nothing.
    pub(crate) fn check_record(&self, tenant: &TenantId, record_id: &str) -> Result<(), ApiError> {
        if !self.settings.enabled {
            return Ok(());
        }
        self.take(&self.record, &format!("{}|{record_id}", tenant.as_str()))
    }

    fn housekeeping(&self) {
        for bucket in [
            &self.tenant,
            &self.app_tenant,
            &self.record,
            &self.functions_tenant,
            &self.functions_app_tenant,
            &self.ingest_tenant,
        ] {
            bucket.retain_recent();
            bucket.shrink_to_fit();
        }
    }

    fn take(&self, bucket: &Bucket, key: &String) -> Result<(), ApiError> {
        bucket.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.clock));
            too_many_requests(wait)
        })
    }
}

/// Graph's 429, with the body of its throttling docs' sample.
fn too_many_requests(wait: Duration) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Please retry again later.",
    );
    error.retry_after_seconds = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
    error.inner = vec![
        ("code", "429".to_owned()),
        ("status", "429".to_owned()),
        ("message", "Please retry after".to_owned()),
    ];
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_name_their_errors() {
        assert_eq!("1500/20".parse::<Limit>(), Ok(Limit::per(1500, 20)));
        assert!("0/20".parse::<Limit>().is_err());
        assert!("1500".parse::<Limit>().is_err());
        let mut settings = ThrottleSettings::default();
        settings.set("record=3/1").unwrap();
        assert_eq!(settings.record, Limit::per(3, 1));
        assert!(settings.set("per-moon=1/1").unwrap_err().contains("expected one of"));
    }

    #[test]
    fn a_record_allows_its_burst_then_asks_to_wait() {
        let mut settings = ThrottleSettings::default();
        settings.set("record=3/60").unwrap();
        let throttle = Throttle::new(settings, crate::clock::system());
        let tenant = Principal::anonymous().tenant;
        for _ in 0..3 {
            throttle.check_record(&tenant, "r1").unwrap();
        }
        let refused = throttle.check_record(&tenant, "r1").unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        let wait = refused.retry_after_seconds.unwrap();
        assert!((1..=20).contains(&wait), "{wait}");
        // Another record has a budget of its own.
        throttle.check_record(&tenant, "r2").unwrap();
    }

    #[test]
    fn the_older_names_set_the_one_record_budget() {
        assert_eq!(ThrottleSettings::default().record, Limit::per(40, 20));
        for name in ["record", "record-first-page", "record-later-pages"] {
            let mut settings = ThrottleSettings::default();
            settings.set(&format!("{name}=7/3")).unwrap();
            assert_eq!(settings.record, Limit::per(7, 3), "{name}");
        }
    }
}
