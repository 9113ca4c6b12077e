//! Login brute-force brake.
//!
//! - Per client (an IPv4 address, or an IPv6 /64: one host has a whole /64 to pick from):
//!   at most `PER_CLIENT` password checks per `WINDOW`, and a check counts from the moment
//!   it is admitted, under the same lock, not when argon2 has answered: 60 concurrent
//!   guesses get 5 checks and 55 immediate 429s.
//! - A client with no recent failure and no other check under way checks in a lane of its
//!   own ([`Lane::Clean`]): another client's guesses never queue in front of the owner's
//!   password, but for at most one per address.
//! - Global brake: once all clients together failed `GLOBAL_SLOW` times in the window (many
//!   addresses), the checks of clients that failed before are spaced out ([`Attempt::pace`]).
//!   It slows guessing; it never refuses anyone (a global refusal let anyone keep the owner out).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(300);
const PER_CLIENT: usize = 5;
const GLOBAL_SLOW: usize = 20;
/// Refusals of one client are reported (audited) at most this often.
const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(60);
/// The least time between two checks of clients that failed before, under the global brake.
const SLOW_SPACING: Duration = Duration::from_millis(500);

/// Who a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4(std::net::Ipv4Addr),
    /// The first 64 bits.
    V6Net(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Which queue a password check waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Clients without a failure in the window.
    Clean,
    /// Clients that failed lately.
    Suspect,
}

#[derive(Default)]
pub struct LoginLimiter {
    state: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    clients: HashMap<ClientKey, Client>,
    /// Failures of every client, oldest first.
    all: Vec<Instant>,
    /// When the last suspect check may start under the global brake.
    next_suspect_slot: Option<Instant>,
}

#[derive(Default)]
struct Client {
    failures: Vec<Instant>,
    in_flight: usize,
    /// When a refusal of this client was last reported as the first in a while.
    refusal_reported: Option<Instant>,
}

/// A refused login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Seconds to wait before trying again.
    pub retry_after: u64,
    /// The first refusal of this client in `REFUSAL_REPORT_EVERY`: the one worth recording.
    pub first: bool,
}

/// An admitted password check. Dropped without an outcome (the request went away, the
/// check could not run), it only frees its place.
#[must_use = "record the outcome with failed() or succeeded()"]
pub struct Attempt {
    limiter: Arc<LoginLimiter>,
    client: ClientKey,
    lane: Lane,
    /// Under the global brake: when this check may start.
    not_before: Option<Instant>,
    open: bool,
}

impl LoginLimiter {
    /// Admits one password check for `client`, or refuses it.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Attempt, Refusal> {
        self.admit_at(client.into(), Instant::now())
    }

    fn admit_at(self: &Arc<Self>, client: ClientKey, now: Instant) -> Result<Attempt, Refusal> {
        let mut tally = self.state.lock().unwrap();
        tally.forget_before(now);
        let global_brake = tally.all.len() >= GLOBAL_SLOW;
        let entry = tally.clients.entry(client).or_default();
        if entry.failures.len() + entry.in_flight >= PER_CLIENT {
            // Failures free their place as they age out; checks in flight when they end.
            let retry_after = entry
                .failures
                .first()
                .map(|oldest| (WINDOW - now.duration_since(*oldest)).as_secs().max(1))
                .unwrap_or(1);
            let first = entry
                .refusal_reported
                .is_none_or(|at| now.duration_since(at) >= REFUSAL_REPORT_EVERY);
            if first {
                entry.refusal_reported = Some(now);
            }
            return Err(Refusal { retry_after, first });
        }
        // A client gets one check at a time in the clean lane: its others (and all of them
        // once one failed) queue in the suspect lane, so the owner waits behind at most
        // one check of each other address.
        let lane = if entry.failures.is_empty() && entry.in_flight == 0 {
            Lane::Clean
        } else {
            Lane::Suspect
        };
        entry.in_flight += 1;
        let not_before = (global_brake && lane == Lane::Suspect).then(|| {
            let slot = tally.next_suspect_slot.map_or(now, |s| s.max(now));
            tally.next_suspect_slot = Some(slot + SLOW_SPACING);
            slot
        });
        Ok(Attempt {
            limiter: self.clone(),
            client,
            lane,
            not_before,
            open: true,
        })
    }

    fn finish(&self, client: ClientKey, outcome: Option<bool>) {
        let now = Instant::now();
        let mut tally = self.state.lock().unwrap();
        match outcome {
            Some(true) => {
                tally.clients.remove(&client);
                return;
            }
            Some(false) => tally.all.push(now),
            None => {}
        }
        if let Some(entry) = tally.clients.get_mut(&client) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if outcome == Some(false) {
                entry.failures.push(now);
            }
        }
    }
}

impl Tally {
    fn forget_before(&mut self, now: Instant) {
        let fresh = |t: &Instant| now.duration_since(*t) < WINDOW;
        self.all.retain(fresh);
        self.clients.retain(|_, c| {
            c.failures.retain(fresh);
            !c.failures.is_empty() || c.in_flight > 0
        });
    }
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("client", &self.client)
            .field("lane", &self.lane)
            .finish_non_exhaustive()
    }
}

impl Attempt {
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// Waits for this check's turn under the global brake (at once without it).
    pub async fn pace(&self) {
        if let Some(at) = self.not_before {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    pub fn failed(mut self) {
        self.open = false;
        self.limiter.finish(self.client, Some(false));
    }

    /// A correct password clears the client's failures.
    pub fn succeeded(mut self) {
        self.open = false;
        self.limiter.finish(self.client, Some(true));
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.open {
            self.limiter.finish(self.client, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> ClientKey {
        ip.parse::<IpAddr>().unwrap().into()
    }

    #[test]
    fn checks_in_flight_count_against_the_limit() {
        let limiter = Arc::new(LoginLimiter::default());
        let me = key("127.0.0.1");
        let now = Instant::now();
        let held: Vec<Attempt> = (0..PER_CLIENT)
            .map(|_| limiter.admit_at(me, now).unwrap())
            .collect();
        // None has answered yet: the sixth is refused all the same.
        assert!(limiter.admit_at(me, now).unwrap_err().first);
        // Another client is not affected.
        assert!(limiter.admit_at(key("127.0.0.2"), now).is_ok());
        for attempt in held {
            attempt.failed();
        }
        let refusal = limiter.admit_at(me, Instant::now()).unwrap_err();
        assert!(refusal.retry_after > 0 && refusal.retry_after <= WINDOW.as_secs());
        assert!(!refusal.first, "the refusal before was reported already");
        let later = Instant::now() + WINDOW + Duration::from_secs(1);
        assert!(limiter.admit_at(me, later).is_ok());
    }

    #[test]
    fn an_abandoned_check_frees_its_place() {
        let limiter = Arc::new(LoginLimiter::default());
        let me = key("192.0.2.7");
        for _ in 0..10 {
            drop(
                limiter
                    .admit(IpAddr::V4("192.0.2.7".parse().unwrap()))
                    .unwrap(),
            );
        }
        assert!(limiter.admit_at(me, Instant::now()).is_ok());
    }

    #[test]
    fn success_clears_only_that_client() {
        let limiter = Arc::new(LoginLimiter::default());
        let (me, other) = (key("127.0.0.1"), key("127.0.0.3"));
        for _ in 0..PER_CLIENT - 1 {
            limiter.admit_at(me, Instant::now()).unwrap().failed();
            limiter.admit_at(other, Instant::now()).unwrap().failed();
        }
        limiter.admit_at(me, Instant::now()).unwrap().succeeded();
        for _ in 0..PER_CLIENT {
            limiter.admit_at(me, Instant::now()).unwrap().failed();
        }
        // The other client still has its fifth check, then none while it runs.
        let fifth = limiter.admit_at(other, Instant::now()).unwrap();
        assert!(limiter.admit_at(other, Instant::now()).is_err());
        drop(fifth);
    }

    #[test]
    fn clients_that_failed_wait_in_their_own_lane() {
        let limiter = Arc::new(LoginLimiter::default());
        let me = key("127.0.0.1");
        let first = limiter.admit_at(me, Instant::now()).unwrap();
        assert_eq!(first.lane(), Lane::Clean);
        // A second check while the first runs waits in the other lane.
        let second = limiter.admit_at(me, Instant::now()).unwrap();
        assert_eq!(second.lane(), Lane::Suspect);
        drop(second);
        first.failed();
        assert_eq!(
            limiter.admit_at(me, Instant::now()).unwrap().lane(),
            Lane::Suspect
        );
        assert_eq!(
            limiter
                .admit_at(key("10.1.1.1"), Instant::now())
                .unwrap()
                .lane(),
            Lane::Clean
        );
    }

    #[test]
    fn the_global_brake_spaces_suspects_and_never_refuses() {
        let limiter = Arc::new(LoginLimiter::default());
        let now = Instant::now();
        for i in 0..GLOBAL_SLOW {
            limiter
                .admit_at(key(&format!("10.0.0.{}", i + 1)), now)
                .unwrap()
                .failed();
        }
        let a = limiter.admit_at(key("10.0.0.1"), now).unwrap();
        let b = limiter.admit_at(key("10.0.0.2"), now).unwrap();
        let (ta, tb) = (a.not_before.unwrap(), b.not_before.unwrap());
        assert!(tb >= ta + SLOW_SPACING);
        // A client that never failed is neither refused nor slowed.
        let owner = limiter.admit_at(key("192.168.1.20"), now).unwrap();
        assert_eq!(owner.lane(), Lane::Clean);
        assert!(owner.not_before.is_none());
    }

    #[test]
    fn an_ipv6_host_is_limited_by_its_64() {
        assert_eq!(key("2001:db8::1"), key("2001:db8::ffff:1234"));
        assert_ne!(key("2001:db8::1"), key("2001:db8:0:1::1"));
        assert_eq!(key("::ffff:127.0.0.1"), key("127.0.0.1"));
    }
}
