//! The serving budget (`network.max_upload_bytes_per_sec`): one rate shared by Bitswap answers
//! and gateway responses, so a home node's uplink stays usable for the household. A GCRA rate
//! limiter (`governor`) with a burst of one second's bytes; a send larger than the burst takes
//! its budget in burst-sized steps.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota};

/// A shared bytes-per-second budget. Cheap to clone.
#[derive(Clone)]
pub struct Throttle {
    limiter: Arc<DefaultDirectRateLimiter>,
    burst: u32,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").field("bytes_per_sec", &self.burst).finish()
    }
}

impl Throttle {
    /// A budget of `bytes_per_sec` (at most 4 GiB/s); `None` for 0 (unlimited).
    pub fn new(bytes_per_sec: u64) -> Option<Throttle> {
        let rate = NonZeroU32::new(u32::try_from(bytes_per_sec).unwrap_or(u32::MAX))?;
        Some(Throttle {
            limiter: Arc::new(DefaultDirectRateLimiter::direct(Quota::per_second(rate))),
            burst: rate.get(),
        })
    }

    /// Wait until `n` bytes fit in the budget, and spend them.
    pub async fn take(&self, n: usize) {
        let mut left = n as u64;
        while left > 0 {
            let step = left.min(u64::from(self.burst)) as u32;
            let Some(step_nz) = NonZeroU32::new(step) else { return };
            // Cannot fail: `step` never exceeds the burst.
            let _ = self.limiter.until_n_ready(step_nz).await;
            left -= u64::from(step);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn sends_past_the_first_second_wait_for_the_rate() {
        assert!(Throttle::new(0).is_none());
        let t = Throttle::new(100_000).unwrap();
        let start = Instant::now();
        // One burst is free; one more second's worth waits about a second.
        for _ in 0..4 {
            t.take(50_000).await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");
    }
}
