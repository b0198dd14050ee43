//! Per-company publish rate limit: a token bucket per company.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Token buckets keyed by company.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    /// Companies with a rate and burst of their own (their tier's).
    overrides: HashMap<String, (f64, f64)>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `rate` tokens per second, up to `burst` saved.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self::with_overrides(rate, burst, HashMap::new())
    }

    /// [`RateLimiter::new`], with companies whose (rate, burst) is their own.
    pub fn with_overrides(rate: f64, burst: f64, overrides: HashMap<String, (f64, f64)>) -> Self {
        Self {
            rate,
            burst,
            overrides,
            buckets: Mutex::default(),
        }
    }

    /// The (rate, burst) of `company` (its tier's, else the default).
    pub fn limits(&self, company: &str) -> (f64, f64) {
        self.overrides.get(company).copied().unwrap_or((self.rate, self.burst))
    }

    /// Takes `n` tokens for `company`, or says how long until they would be available.
    pub fn take(&self, company: &str, n: f64) -> Result<(), Duration> {
        let (rate, burst) = self.limits(company);
        let now = Instant::now();
        let mut map = self.buckets.lock();
        let b = map.entry(company.to_owned()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.updated).as_secs_f64() * rate).min(burst);
        b.updated = now;
        if b.tokens >= n {
            b.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(((n - b.tokens) / rate).max(0.001)))
        }
    }

    /// Gives back `n` tokens taken for work that was not done (a publish answered from
    /// its idempotency record), up to the burst.
    pub fn refund(&self, company: &str, n: f64) {
        let (_, burst) = self.limits(company);
        if let Some(b) = self.buckets.lock().get_mut(company) {
            b.tokens = (b.tokens + n).min(burst);
        }
    }

    /// Forgets buckets that have refilled completely (they behave like new ones).
    pub fn prune(&self) {
        let now = Instant::now();
        self.buckets.lock().retain(|company, b| {
            let (rate, burst) = self.limits(company);
            b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_at_the_configured_rate() {
        let r = RateLimiter::new(10.0, 5.0);
        for _ in 0..5 {
            r.take("a", 1.0).unwrap();
        }
        let wait = r.take("a", 1.0).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(r.take("b", 1.0).is_ok(), "companies are independent");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(r.take("a", 1.0).is_ok());
    }
}
