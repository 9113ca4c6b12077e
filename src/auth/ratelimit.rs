//! Login brute-force brake: failures counted per client and in total (behind a
//! port-forward every client is 127.0.0.1, so a per-client limit alone is not enough).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(300);
const PER_CLIENT: usize = 5;
const GLOBAL: usize = 20;

#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    by_client: HashMap<IpAddr, Vec<Instant>>,
    all: Vec<Instant>,
}

impl LoginLimiter {
    /// `Err(seconds)` when this client must wait before trying again.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.check_at(client, Instant::now())
    }

    pub fn record_failure(&self, client: IpAddr) {
        let now = Instant::now();
        let mut f = self.failures.lock().unwrap();
        f.by_client.entry(client).or_default().push(now);
        f.all.push(now);
    }

    /// A successful login clears that client's failures.
    pub fn record_success(&self, client: IpAddr) {
        self.failures.lock().unwrap().by_client.remove(&client);
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut f = self.failures.lock().unwrap();
        let fresh = |t: &Instant| now.duration_since(*t) < WINDOW;
        f.all.retain(fresh);
        f.by_client.retain(|_, times| {
            times.retain(fresh);
            !times.is_empty()
        });
        let wait = |times: &[Instant], limit: usize| -> Option<u64> {
            (times.len() >= limit).then(|| {
                let oldest_that_counts = times[times.len() - limit];
                (WINDOW - now.duration_since(oldest_that_counts))
                    .as_secs()
                    .max(1)
            })
        };
        let client_wait = f.by_client.get(&client).and_then(|t| wait(t, PER_CLIENT));
        match client_wait.or_else(|| wait(&f.all, GLOBAL)) {
            Some(seconds) => Err(seconds),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_a_client_after_repeated_failures_and_tells_how_long() {
        let limiter = LoginLimiter::default();
        let me: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..PER_CLIENT {
            assert!(limiter.check(me).is_ok());
            limiter.record_failure(me);
        }
        let wait = limiter.check(me).unwrap_err();
        assert!(wait > 0 && wait <= WINDOW.as_secs());
        let later = Instant::now() + WINDOW + Duration::from_secs(1);
        assert!(limiter.check_at(me, later).is_ok());
    }

    #[test]
    fn counts_all_clients_together_too() {
        let limiter = LoginLimiter::default();
        for i in 0..GLOBAL {
            let ip: IpAddr = format!("10.0.0.{}", i % 250 + 1).parse().unwrap();
            limiter.record_failure(ip);
        }
        assert!(limiter.check("192.0.2.1".parse().unwrap()).is_err());
    }

    #[test]
    fn success_clears_only_that_client() {
        let limiter = LoginLimiter::default();
        let me: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..PER_CLIENT {
            limiter.record_failure(me);
        }
        limiter.record_success(me);
        assert!(limiter.check(me).is_ok());
    }
}
