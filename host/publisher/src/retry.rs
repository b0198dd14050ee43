//! When to try a publish again and how long to wait: capped exponential backoff with
//! full jitter, so that many publishers failing together do not retry together.

use std::time::Duration;

/// How a [`crate::Publisher`] retries. Every attempt of one publish carries the same
/// idempotency key, so however many attempts reach the host, the events are stored once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The backoff before the second attempt; it doubles after each failure.
    pub base_delay: Duration,
    /// The longest wait between attempts (a server's `Retry-After` included).
    pub max_delay: Duration,
    /// How long one attempt may take, connection included.
    pub request_timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl Retry {
    /// No retries: one attempt.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before attempt `next` (2 for the first retry): a random duration up to
    /// `base_delay * 2^(next - 2)`, capped at `max_delay`; or the server's `Retry-After`
    /// when it gave one, capped the same way.
    pub(crate) fn delay(&self, next: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay);
        }
        let exp = next.saturating_sub(2).min(20);
        let ceiling = self.base_delay.saturating_mul(1 << exp).min(self.max_delay);
        let mut b = [0u8; 8];
        let fraction = match getrandom::getrandom(&mut b) {
            Ok(()) => u64::from_le_bytes(b) as f64 / u64::MAX as f64,
            Err(_) => 1.0,
        };
        ceiling.mul_f64(fraction)
    }
}

/// Whether a reply with `status` is worth another attempt: the request may succeed later
/// (408, 429, 5xx). Other refusals are final.
pub(crate) fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..=599).contains(&status) && status != 501
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let r = Retry {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
        };
        for _ in 0..100 {
            assert!(r.delay(2, None) <= Duration::from_millis(100));
            assert!(r.delay(4, None) <= Duration::from_millis(400));
            assert!(r.delay(40, None) <= Duration::from_secs(1));
        }
        assert_eq!(r.delay(2, Some(Duration::from_millis(300))), Duration::from_millis(300));
        assert_eq!(r.delay(2, Some(Duration::from_secs(60))), Duration::from_secs(1));
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 415, 422, 501] {
            assert!(!retryable(s), "{s}");
        }
    }
}
