//! A server the bench starts as a child process: on a free port, awaited until healthy,
//! killed when dropped (also on a panic). Shared by the benches.

use std::process::Child;
use std::time::Duration;

pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until `child`, listening on `addr`, answers `/healthz`.
    pub async fn healthy(child: Child, addr: String) -> Self {
        let mut server = Self { child, addr };
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server at {} exited at start: {status}", server.addr);
            }
            if client
                .get(server.url("/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server at {} did not come up", server.addr);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An address on this host that nothing listens on right now.
pub fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    format!("127.0.0.1:{port}")
}
