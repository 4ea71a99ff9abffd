//! The per-user send rate limit for user-token requests: a token bucket per (namespace, user),
//! shared by every chat (a user's sends to all chats count together).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::model::{Namespace, UserId};

/// Buckets that are full again are forgotten once the map grows past this.
const SWEEP_AT: usize = 10_000;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<(Namespace, UserId), Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter { per_second: per_second as f64, burst: burst.max(1) as f64, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one send from the user's bucket; false if it is empty.
    pub fn allow(&self, ns: &Namespace, user: &UserId) -> bool {
        if self.per_second <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry((ns.clone(), user.clone())).or_insert(Bucket { tokens: self.burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused() {
        let limiter = RateLimiter::new(1, 3);
        let (ns, user) = (Namespace::default_ns(), UserId::parse("u", 10).expect("valid id")); // ok: test
        assert!((0..3).all(|_| limiter.allow(&ns, &user)));
        assert!(!limiter.allow(&ns, &user));
        let other = UserId::parse("v", 10).expect("valid id"); // ok: test
        assert!(limiter.allow(&ns, &other), "users have separate buckets");
    }
}
