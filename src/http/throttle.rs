//! Brute-force throttling of client authentication: after too many failures in a window, a
//! client id is refused until the window passes, whatever it sends. That per-client limit is
//! what protects a secret. A peer address is throttled too, but far more loosely: many
//! clients may share one address (behind a proxy or NAT), and one of them failing must not
//! lock the others out; the address limit only stops a spray across many client ids.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures one peer address may have in a window, whatever client ids they were for.
pub const PEER_MAX_FAILURES: u32 = 100;

pub struct Throttle {
    clients: Windows,
    peers: Windows,
}

impl Throttle {
    /// `max_failures` per client id in `window`; a peer address may fail
    /// [`PEER_MAX_FAILURES`] times (never fewer than one client id may).
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            clients: Windows::new(max_failures, window),
            peers: Windows::new(PEER_MAX_FAILURES.max(max_failures), window),
        }
    }

    /// How long a request for `client_id` from `peer` must still wait, if it is blocked.
    pub fn blocked(&self, client_id: &str, peer: IpAddr) -> Option<Duration> {
        let client = self.clients.blocked(client_id);
        let peer = self.peers.blocked(&peer.to_string());
        client.max(peer)
    }

    /// Counts a failed authentication against the client id and the peer address.
    pub fn failed(&self, client_id: &str, peer: IpAddr) {
        self.clients.failed(client_id);
        self.peers.failed(&peer.to_string());
    }

    /// Clears the client id's failures. The address keeps its own: a good client must not
    /// wipe the record of a bad one behind the same address.
    pub fn succeeded(&self, client_id: &str) {
        self.clients.succeeded(client_id);
    }
}

/// Failures per key in fixed windows.
struct Windows {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    max_failures: u32,
    window: Duration,
}

impl Windows {
    fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            windows: Mutex::default(),
            max_failures,
            window,
        }
    }

    fn blocked(&self, key: &str) -> Option<Duration> {
        let windows = self.windows.lock().ok()?;
        let (started, failures) = windows.get(key)?;
        let elapsed = started.elapsed();
        (*failures >= self.max_failures && elapsed < self.window).then(|| self.window - elapsed)
    }

    fn failed(&self, key: &str) {
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        if windows.len() > 100_000 {
            // Bounded memory under a spray of distinct keys: forget expired windows.
            let window = self.window;
            windows.retain(|_, (started, _)| started.elapsed() < window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    fn succeeded(&self, key: &str) {
        if let Ok(mut windows) = self.windows.lock() {
            windows.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failing_client_does_not_block_its_address() {
        let throttle = Throttle::new(5, Duration::from_secs(60));
        let peer: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..5 {
            throttle.failed("cli_bad", peer);
        }
        assert!(throttle.blocked("cli_bad", peer).is_some());
        assert!(throttle.blocked("cli_good", peer).is_none());
        for i in 5..PEER_MAX_FAILURES {
            throttle.failed(&format!("cli_{i}"), peer);
        }
        assert!(throttle.blocked("cli_good", peer).is_some());
        assert!(throttle.blocked("cli_good", [10, 0, 0, 1].into()).is_none());
    }
}
