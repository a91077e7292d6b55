//! Throttling as Graph does it (spec §6.7): token buckets per tenant, per application in a
//! tenant, and per call record, with Graph's documented limits as defaults; the usage-log
//! functions and ingest have buckets of their own. Over a limit is a 429 `TooManyRequests` with
//! `Retry-After` in whole seconds, at least 1, which the SDKs' retry handlers obey.
//!
//! Buckets live in this process's memory (governor's GCRA): with several nodes, each enforces
//! the limits on what it serves, so a deployment of N nodes allows up to N times the rate.

use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;
use super::path::{Resource, Target};
use crate::auth::Principal;

/// One limit: `count` requests per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub period: Duration,
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
    pub enabled: bool,
    /// Call records, sessions, participants and subscriptions, per tenant (all apps).
    pub tenant: Limit,
    /// The same, per application in a tenant.
    pub app_tenant: Limit,
    /// One call record and its sub-resources, first pages (no `$skiptoken`).
    pub record_first_page: Limit,
    /// One call record's later pages (with `$skiptoken`).
    pub record_later_pages: Limit,
    /// The usage-log functions, per tenant.
    pub functions_tenant: Limit,
    /// The usage-log functions, per application in a tenant.
    pub functions_app_tenant: Limit,
    /// Ingest requests, per tenant (ours; Graph has no ingest).
    pub ingest_tenant: Limit,
}

impl Default for ThrottleSettings {
    /// Graph's documented limits (spec §6.7; per record, the figures issue 8 names).
    fn default() -> Self {
        Self {
            enabled: true,
            tenant: Limit::per(10_000, 20),
            app_tenant: Limit::per(1_500, 20),
            record_first_page: Limit::per(10, 20),
            record_later_pages: Limit::per(50, 300),
            functions_tenant: Limit::per(1_000, 60),
            functions_app_tenant: Limit::per(200, 60),
            ingest_tenant: Limit::per(1_200, 60),
        }
    }
}

impl ThrottleSettings {
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    pub const NAMES: &'static [&'static str] = &[
        "tenant",
        "app-tenant",
        "record-first-page",
        "record-later-pages",
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
            "record-first-page" => &mut self.record_first_page,
            "record-later-pages" => &mut self.record_later_pages,
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

type Bucket = DefaultKeyedRateLimiter<String>;

/// Every bucket of one process.
pub struct Throttle {
    settings: ThrottleSettings,
    tenant: Bucket,
    app_tenant: Bucket,
    record_first_page: Bucket,
    record_later_pages: Bucket,
    functions_tenant: Bucket,
    functions_app_tenant: Bucket,
    ingest_tenant: Bucket,
    checks: AtomicU64,
}

/// Buckets untouched for a while are dropped every this many checks, so memory follows the
/// keys in recent use rather than every record ever read.
const HOUSEKEEPING_EVERY: u64 = 10_000;

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        let bucket = |limit: Limit| RateLimiter::keyed(limit.quota());
        Self {
            tenant: bucket(settings.tenant),
            app_tenant: bucket(settings.app_tenant),
            record_first_page: bucket(settings.record_first_page),
            record_later_pages: bucket(settings.record_later_pages),
            functions_tenant: bucket(settings.functions_tenant),
            functions_app_tenant: bucket(settings.functions_app_tenant),
            ingest_tenant: bucket(settings.ingest_tenant),
            settings,
            checks: AtomicU64::new(0),
        }
    }

    /// Takes a token from every bucket the request falls in, or answers the 429. `target` is
    /// the request's path as the authenticate middleware parsed it; `query` its query string.
    pub fn check(&self, principal: &Principal, target: &Target, query: Option<&str>) -> Result<(), ApiError> {
        if !self.settings.enabled {
            return Ok(());
        }
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY == HOUSEKEEPING_EVERY - 1 {
            self.housekeeping();
        }
        let tenant = principal.tenant.as_str().to_owned();
        let app = format!("{tenant}|{}", principal.app_id);
        let parsed = match target {
            Target::Ingest => return take(&self.ingest_tenant, &tenant),
            Target::Other => return Ok(()),
            Target::Graph(parsed) => parsed,
        };
        match parsed {
            Ok(Resource::Function(..)) => {
                take(&self.functions_tenant, &tenant)?;
                take(&self.functions_app_tenant, &app)
            }
            Ok(Resource::Metadata) => Ok(()),
            parsed => {
                take(&self.tenant, &tenant)?;
                take(&self.app_tenant, &app)?;
                match parsed.as_ref().ok().and_then(record_of) {
                    Some(record) => {
                        let key = format!("{tenant}|{record}");
                        let later_page = query.is_some_and(|q| q.to_ascii_lowercase().contains("skiptoken="));
                        if later_page {
                            take(&self.record_later_pages, &key)
                        } else {
                            take(&self.record_first_page, &key)
                        }
                    }
                    None => Ok(()),
                }
            }
        }
    }

    fn housekeeping(&self) {
        for bucket in [
            &self.tenant,
            &self.app_tenant,
            &self.record_first_page,
            &self.record_later_pages,
            &self.functions_tenant,
            &self.functions_app_tenant,
            &self.ingest_tenant,
        ] {
            bucket.retain_recent();
            bucket.shrink_to_fit();
        }
    }
}

/// The call record a resource belongs to, if any.
fn record_of(resource: &Resource) -> Option<&str> {
    match resource {
        Resource::CallRecord(id)
        | Resource::Sessions(id)
        | Resource::SessionsCount(id)
        | Resource::Session(id, _)
        | Resource::Segments(id, _)
        | Resource::SegmentsCount(id, _)
        | Resource::Segment(id, _, _)
        | Resource::Participants(id)
        | Resource::ParticipantsCount(id)
        | Resource::Participant(id, _)
        | Resource::Organizer(id) => Some(id.as_str()),
        _ => None,
    }
}

fn take(bucket: &Bucket, key: &String) -> Result<(), ApiError> {
    bucket.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        too_many_requests(wait)
    })
}

/// Graph's 429 (spec §6.1).
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
        settings.set("record-first-page=3/1").unwrap();
        assert_eq!(settings.record_first_page, Limit::per(3, 1));
        assert!(settings.set("per-moon=1/1").unwrap_err().contains("expected one of"));
    }

    #[test]
    fn a_record_allows_its_burst_then_asks_to_wait() {
        let mut settings = ThrottleSettings::default();
        settings.set("record-first-page=3/60").unwrap();
        let throttle = Throttle::new(settings);
        let principal = Principal::anonymous();
        let check = |path: &str, query: Option<&str>| throttle.check(&principal, &Target::of(path), query);
        let record = "/v1.0/communications/callRecords/r1";
        for _ in 0..3 {
            check(record, None).unwrap();
        }
        let refused = check(record, None).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        let wait = refused.retry_after_seconds.unwrap();
        assert!((1..=20).contains(&wait), "{wait}");
        // The same record in the other key form shares its bucket.
        assert!(check("/v1.0/communications/callRecords('r1')", None).is_err());
        // Another record, and a later page of the same one, have buckets of their own.
        check("/v1.0/communications/callRecords/r2", None).unwrap();
        check("/v1.0/communications/callRecords/r1/sessions", Some("$skiptoken=abc")).unwrap();
    }
}
