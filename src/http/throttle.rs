//! Brute-force throttling of client authentication: after too many failures in a window,
//! a client id (or a peer address) is refused until the window passes, whatever it sends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    max_failures: u32,
    window: Duration,
}

impl Throttle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            windows: Mutex::default(),
            max_failures,
            window,
        }
    }

    /// How long `key` must still wait, if it is blocked.
    pub fn blocked(&self, key: &str) -> Option<Duration> {
        let windows = self.windows.lock().ok()?;
        let (started, failures) = windows.get(key)?;
        let elapsed = started.elapsed();
        (*failures >= self.max_failures && elapsed < self.window).then(|| self.window - elapsed)
    }

    pub fn failed(&self, key: &str) {
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
        entry.1 += 1;
    }

    pub fn succeeded(&self, key: &str) {
        if let Ok(mut windows) = self.windows.lock() {
            windows.remove(key);
        }
    }
}
