//! Requests to the upstream Graph: a token on each, Graph's budgets kept on our side (per app in
//! the tenant, per call record), `Retry-After` obeyed on a 429 by the request that got it alone,
//! backoff on 5xx and network errors, and every failure that outlasts the retries reported as an
//! error, never as "no data".

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::StatusCode;

use super::credentials::TokenSource;
use super::metrics::Metrics;
use super::SyncError;

/// How long and how often a request is tried again.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Tries after a 5xx or a network error, the first included.
    pub attempts: u32,
    /// The wait after the first failure; each later one doubles it, up to `longest_wait`.
    pub first_wait: Duration,
    pub longest_wait: Duration,
    /// 429s one request may get before it is reported as an error.
    pub throttled_attempts: u32,
}

impl Default for RetryPolicy {
    /// About three minutes of failures in a row (waits of 1, 2, 4 … 32, 60 and 60 s) before a
    /// request is given up: long enough for an upstream restart or a network blip, short enough
    /// that a broken upstream is reported.
    fn default() -> Self {
        Self {
            attempts: 9,
            first_wait: Duration::from_secs(1),
            longest_wait: Duration::from_secs(60),
            throttled_attempts: 60,
        }
    }
}

impl RetryPolicy {
    fn wait_after(&self, failures: u32) -> Duration {
        let doubled = self
            .first_wait
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(self.longest_wait);
        // A little jitter, so that collectors that failed together do not retry together.
        let jitter = rand::thread_rng().gen_range(0.0..0.2);
        doubled.mul_f64(1.0 + jitter)
    }
}

/// Requests a second, as Graph budgets them: its documented limits, with a margin so that our
/// own pacing, not Graph's 429s, is what usually slows the collector down.
#[derive(Clone, Copy, Debug)]
pub struct Budgets {
    /// Requests per 20 seconds for this app in this tenant (Graph: 1,500).
    pub app_per_20s: u32,
    /// Requests per 20 seconds for one call record (Graph: 40).
    pub record_per_20s: u32,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            app_per_20s: 1_350,
            record_per_20s: 36,
        }
    }
}

fn per_20s(count: u32) -> Quota {
    let count = NonZeroU32::new(count.max(1)).expect("at least one");
    Quota::with_period(Duration::from_secs(20) / count.get())
        .expect("a positive period")
        .allow_burst(count)
}

/// What a GET came back with.
pub(crate) enum Answer {
    Json(serde_json::Value),
    /// 404: gone upstream (a record past Graph's 30 days, say).
    NotFound,
}

/// The upstream Graph of one tenant, as one app.
pub(crate) struct Graph {
    http: reqwest::Client,
    base: String,
    tokens: TokenSource,
    app_budget: DefaultDirectRateLimiter,
    record_budget: DefaultKeyedRateLimiter<String>,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
}

impl Graph {
    pub(crate) fn new(
        http: reqwest::Client,
        base: &str,
        tokens: TokenSource,
        budgets: Budgets,
        retry: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            tokens,
            app_budget: RateLimiter::direct(per_20s(budgets.app_per_20s)),
            record_budget: RateLimiter::keyed(per_20s(budgets.record_per_20s)),
            retry,
            metrics,
        }
    }

    /// `path_and_query` under the Graph base URL (`/communications/...`).
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// A token, for checks before the first request.
    pub(crate) async fn token(&self) -> Result<String, SyncError> {
        self.tokens.token().await
    }

    /// Only links to the upstream itself are followed, so a token is never sent elsewhere.
    pub(crate) fn check_link(&self, link: &str) -> Result<(), SyncError> {
        let origin = |url: &str| reqwest::Url::parse(url).ok().map(|url| url.origin());
        match (origin(link), origin(&self.base)) {
            (Some(link_origin), Some(base_origin)) if link_origin == base_origin => Ok(()),
            _ => Err(SyncError::Invalid(format!(
                "the upstream gave a next link outside {}: {link}",
                self.base
            ))),
        }
    }

    /// GETs `url` (a full URL on the upstream) within the budgets, counted against `record`'s
    /// budget too when it addresses one record.
    pub(crate) async fn get(&self, url: &str, record: Option<&str>) -> Result<Answer, SyncError> {
        self.send(reqwest::Method::GET, url, None, record).await
    }

    /// Sends a request with a JSON body (subscriptions), with the same retries as a GET.
    pub(crate) async fn send_json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<Answer, SyncError> {
        self.send(method, url, Some(body), None).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
        record: Option<&str>,
    ) -> Result<Answer, SyncError> {
        let mut failures = 0u32;
        let mut throttled = 0u32;
        let mut token_renewed = false;
        loop {
            self.app_budget.until_ready().await;
            if let Some(record) = record {
                self.record_budget.until_key_ready(&record.to_owned()).await;
            }
            let token = self.tokens.token().await?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(&token)
                .header("client-request-id", uuid::Uuid::new_v4().to_string());
            if let Some(body) = body {
                request = request.json(body);
            }
            self.metrics.requests.inc();
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    match response.bytes().await {
                        Ok(body) => Ok((status, retry_after, body)),
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error),
            };
            let (status, retry_after, body) = match outcome {
                Ok(answer) => answer,
                Err(error) => {
                    failures += 1;
                    if failures >= self.retry.attempts {
                        self.metrics.errors.inc();
                        return Err(SyncError::Unreachable {
                            what: format!("the upstream at {url}"),
                            cause: format!("{} (after {failures} tries)", describe(&error)),
                        });
                    }
                    tracing::debug!(%url, failures, error = %describe(&error), "upstream request failed; trying again");
                    tokio::time::sleep(self.retry.wait_after(failures)).await;
                    continue;
                }
            };
            match status {
                status if status.is_success() => {
                    if body.is_empty() {
                        return Ok(Answer::Json(serde_json::Value::Null));
                    }
                    return serde_json::from_slice(&body).map(Answer::Json).map_err(|error| {
                        SyncError::Invalid(format!("the upstream's answer to {url} is not JSON: {error}"))
                    });
                }
                StatusCode::NOT_FOUND => return Ok(Answer::NotFound),
                StatusCode::UNAUTHORIZED if !token_renewed => {
                    token_renewed = true;
                    self.tokens.invalidate().await;
                }
                StatusCode::UNAUTHORIZED => {
                    self.metrics.errors.inc();
                    return Err(SyncError::Credentials(format!(
                        "the upstream refused a fresh token for {url}: {}",
                        graph_message(&body)
                    )));
                }
                StatusCode::FORBIDDEN => {
                    self.metrics.errors.inc();
                    return Err(SyncError::Permission(format!(
                        "{url} answered 403: {}",
                        graph_message(&body)
                    )));
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    throttled += 1;
                    self.metrics.throttled.inc();
                    if throttled > self.retry.throttled_attempts {
                        self.metrics.errors.inc();
                        return Err(SyncError::Upstream(format!(
                            "{url} was throttled {throttled} times in a row"
                        )));
                    }
                    let wait = retry_after.unwrap_or_else(|| self.retry.wait_after(throttled));
                    tracing::debug!(%url, wait_secs = wait.as_secs_f64(), "throttled by the upstream");
                    tokio::time::sleep(wait).await;
                }
                status if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT => {
                    failures += 1;
                    if failures >= self.retry.attempts {
                        self.metrics.errors.inc();
                        return Err(SyncError::Upstream(format!(
                            "{url} answered {status} {failures} times in a row: {}",
                            graph_message(&body)
                        )));
                    }
                    let wait = retry_after.unwrap_or_else(|| self.retry.wait_after(failures));
                    tokio::time::sleep(wait).await;
                }
                status => {
                    self.metrics.errors.inc();
                    return Err(SyncError::Upstream(format!(
                        "{url} answered {status}: {}",
                        graph_message(&body)
                    )));
                }
            }
        }
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    // Graph sends whole seconds; an HTTP date is answered with the default backoff instead.
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The message of a Graph error body, or the start of whatever the body is.
fn graph_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|value| value.get("error"));
    match error {
        Some(error) => format!(
            "{}: {}",
            error.get("code").and_then(|c| c.as_str()).unwrap_or("error"),
            error.get("message").and_then(|m| m.as_str()).unwrap_or("")
        ),
        None => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    }
}

/// A network error with its causes, which reqwest keeps in its source chain.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_longest() {
        let policy = RetryPolicy::default();
        let first = policy.wait_after(1);
        assert!(first >= Duration::from_secs(1) && first < Duration::from_millis(1300));
        let fourth = policy.wait_after(4);
        assert!(fourth >= Duration::from_secs(8) && fourth < Duration::from_secs(10));
        assert!(policy.wait_after(30) <= Duration::from_secs(72));
    }

    #[test]
    fn graph_errors_are_summarised() {
        let body = br#"{"error":{"code":"Forbidden","message":"Insufficient privileges"}}"#;
        assert_eq!(graph_message(body), "Forbidden: Insufficient privileges");
        assert_eq!(graph_message(b"oops"), "oops");
    }
}
