//! The webhook worker: a dispatcher that turns settled events into deliveries, and a sender
//! that claims due deliveries, signs and POSTs them (bounded concurrency, a timeout, no
//! redirects, public addresses only), and records each attempt. Every instance runs both;
//! the database keeps them from doing the same work twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use crate::domain::Store;
use crate::domain::webhooks::address::{PublicOnly, is_public};
use crate::domain::webhooks::deliveries::{self, Claimed, Outcome, Policy};
use crate::domain::webhooks::signing;

/// How deliveries are sent.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Deliver to loopback and private addresses too (tests, private deployments).
    pub allow_private: bool,
    /// Waits before each retry (the Standard Webhooks schedule by default).
    pub schedule: Vec<Duration>,
    /// Deliveries in flight at once, per instance.
    pub concurrency: usize,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// An endpoint failing every attempt for this long is disabled.
    pub disable_after: Duration,
}

/// How long a claim lasts: longer than any attempt takes, short enough that a delivery a
/// dead worker held is sent again soon.
fn lease(settings: &Settings) -> Duration {
    settings.timeout * 3 + Duration::from_secs(5)
}

/// Starts the dispatcher and the sender; they run until the process ends.
pub fn spawn(store: Store, settings: Settings) -> anyhow::Result<()> {
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would resolve names itself, past the address check.
        .no_proxy()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("crm-webhooks/", env!("CARGO_PKG_VERSION")));
    if !settings.allow_private {
        client = client.dns_resolver(Arc::new(PublicOnly));
    }
    let client = client.build()?;
    let wake = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(dispatcher(store.clone(), wake.clone()));
    tokio::spawn(sender(store, settings, client, wake));
    Ok(())
}

/// Dispatches after every write it hears of, and every second (writes of other instances,
/// events settling late).
async fn dispatcher(store: Store, sender: Arc<tokio::sync::Notify>) {
    let mut events = store.events.subscribe();
    loop {
        let horizon = store.events.horizon();
        match deliveries::dispatch(&store, horizon, 500).await {
            Ok(0) => {
                tokio::select! {
                    _ = events.recv() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Ok(_) => sender.notify_one(),
            Err(err) => {
                tracing::warn!(error = %err, "dispatching webhooks failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn sender(
    store: Store,
    settings: Settings,
    client: reqwest::Client,
    wake: Arc<tokio::sync::Notify>,
) {
    let lease =
        chrono::Duration::from_std(lease(&settings)).unwrap_or(chrono::Duration::seconds(35));
    // What comes after an attempt, converted once.
    let policy = Arc::new(Policy {
        schedule: settings
            .schedule
            .iter()
            .map(|d| chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::zero()))
            .collect(),
        disable_after: chrono::Duration::from_std(settings.disable_after)
            .unwrap_or(chrono::Duration::days(5)),
    });
    let settings = Arc::new(settings);
    let concurrency = settings.concurrency;
    // Sends in flight are bounded by `sending`; claimed deliveries (in flight or waiting for
    // a send slot) by `claimed`, twice as many, so claims come in batches, not one per
    // finished send (each claim is a write), while a claim waits less than its lease.
    let sending = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let claimed = Arc::new(tokio::sync::Semaphore::new(concurrency * 2));
    let done = Arc::new(tokio::sync::Notify::new());
    loop {
        // Room for a batch: at least `concurrency` free places.
        let Ok(mut room) = claimed.clone().acquire_many_owned(concurrency as u32).await else {
            return;
        };
        if let Ok(more) = claimed
            .clone()
            .try_acquire_many_owned(claimed.available_permits() as u32)
        {
            room.merge(more);
        }
        let batch = match deliveries::claim(
            &store,
            crate::domain::now(),
            lease,
            room.num_permits() as u64,
            // Half the send slots at most for one endpoint: a hanging one leaves the rest.
            (concurrency as u64 / 2).max(1),
        )
        .await
        {
            Ok(batch) => batch,
            Err(err) => {
                drop(room);
                tracing::warn!(error = %err, "claiming webhook deliveries failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            drop(room);
            tokio::select! {
                () = wake.notified() => {}
                () = done.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        for delivery in batch {
            let Some(place) = room.split(1) else { break };
            let (store, client, settings) = (store.clone(), client.clone(), settings.clone());
            let policy = policy.clone();
            let (sending, done) = (sending.clone(), done.clone());
            tokio::spawn(async move {
                if let Ok(slot) = sending.acquire_owned().await {
                    let attempt = std::panic::AssertUnwindSafe(attempt(
                        &store, &client, &settings, &policy, &delivery,
                    ));
                    // A bug met by one delivery must not stop the others: logged, and the
                    // lease lapses so it is tried again later.
                    if futures_util::FutureExt::catch_unwind(attempt)
                        .await
                        .is_err()
                    {
                        tracing::error!(delivery = %delivery.id, "a webhook delivery panicked");
                    }
                    drop(slot);
                }
                drop(place);
                done.notify_one();
            });
        }
        // Places the claim did not fill go back at once.
        drop(room);
    }
}

/// Sends one claimed delivery and records the attempt.
async fn attempt(
    store: &Store,
    client: &reqwest::Client,
    settings: &Settings,
    policy: &Policy,
    delivery: &Claimed,
) {
    let outcome = send(client, settings, delivery).await;
    // ±20%, so endpoints that failed together do not retry together.
    let jitter = rand::rng().random_range(0.8..1.2);
    if let Err(err) = deliveries::record(
        store,
        delivery,
        &outcome,
        policy,
        jitter,
        crate::domain::now(),
    )
    .await
    {
        // The lease lapses and the delivery is tried again.
        tracing::warn!(error = %err, delivery = %delivery.id, "recording a webhook attempt failed");
    }
}

/// One attempt: signed now (a fresh timestamp each time, the same `webhook-id`).
async fn send(client: &reqwest::Client, settings: &Settings, delivery: &Claimed) -> Outcome {
    let started = Instant::now();
    let failed = |error: String| Outcome {
        status_code: None,
        latency_ms: elapsed_ms(started),
        error: Some(error.chars().take(500).collect()),
        retry_after: None,
    };
    let url = match url::Url::parse(&delivery.url) {
        Ok(url) => url,
        Err(_) => return failed("the endpoint URL does not parse".into()),
    };
    // An address written in the URL is not resolved, so the resolver cannot refuse it.
    if !settings.allow_private {
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            _ => None,
        };
        if literal.is_some_and(|ip| !is_public(ip)) {
            return failed("the endpoint's address is not public".into());
        }
    }
    let timestamp = chrono::Utc::now().timestamp();
    let signature = signing::signature_header(
        &delivery.keys,
        &delivery.id,
        timestamp,
        delivery.payload.as_bytes(),
    );
    let request = client
        .post(url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header("webhook-id", &delivery.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone());
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|secs| *secs >= 0)
                // Honoured up to a day (any larger value would overflow a duration).
                .map(|secs| chrono::Duration::seconds(secs.min(86_400)));
            // The body is not read: a receiver's answer is its status.
            drop(response);
            Outcome {
                status_code: Some(status),
                latency_ms: elapsed_ms(started),
                error: (!(200..300).contains(&status))
                    .then(|| format!("the endpoint answered {status}")),
                retry_after,
            }
        }
        Err(err) => {
            let why = if err.is_timeout() {
                "no answer in time".to_owned()
            } else if err.is_connect() {
                "could not connect".to_owned()
            } else {
                "the request failed".to_owned()
            };
            failed(why)
        }
    }
}

fn elapsed_ms(started: Instant) -> i32 {
    i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX)
}

/// The Standard Webhooks retry schedule: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";

/// A schedule from `5s,5m,2h`-style text.
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (number, unit) = part.split_at(
                part.find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(part.len()),
            );
            let n: u64 = number
                .parse()
                .map_err(|_| format!("`{part}` is not a duration like 5s, 5m or 2h"))?;
            let secs = match unit {
                "ms" => return Ok(Duration::from_millis(n)),
                "s" | "" => n,
                "m" => n * 60,
                "h" => n * 3600,
                _ => return Err(format!("`{part}` is not a duration like 5s, 5m or 2h")),
            };
            Ok(Duration::from_secs(secs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_read_like_the_spec_writes_them() {
        let schedule = parse_schedule(DEFAULT_SCHEDULE).unwrap_or_default();
        assert_eq!(schedule.len(), 7);
        assert_eq!(schedule[0], Duration::from_secs(5));
        assert_eq!(schedule[3], Duration::from_secs(7200));
        assert_eq!(
            parse_schedule("200ms, 1s").unwrap_or_default(),
            [Duration::from_millis(200), Duration::from_secs(1)]
        );
        assert!(parse_schedule("5 parsecs").is_err());
    }
}
