//! Pages that fit the link: how many bytes the next push or pull page (or photo
//! chunk) should carry, and how long its request may take, from what the link has
//! done so far.
//!
//! A phone on a weak link must never be stuck with a page it cannot finish: a page
//! cut off is sent again whole, so a page should take a few seconds on the link at
//! hand, not minutes. [`Pace`] starts small, sizes each page to about
//! [`Pace::TARGET`] of the throughput measured so far (a sample that includes the
//! round trip underestimates the link, so pages grow quickly on a good one and
//! never overshoot it), halves the page for the retry after a cut or a timeout,
//! and gives each request a timeout that follows its page instead of a fixed two
//! minutes.

use std::time::Duration;

/// The page sizing and timeouts of one link (see the module documentation).
#[derive(Debug, Clone)]
pub struct Pace {
    /// Bytes per second measured so far (a moving average), once measured.
    rate: Option<f64>,
    /// The next page, in bytes.
    page: u64,
    /// Extra patience after requests that timed out, doubled each time (1–8).
    patience: u32,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            rate: None,
            page: Pace::FIRST_PAGE,
            patience: 1,
        }
    }
}

impl Pace {
    /// What a page should take on the link.
    pub const TARGET: Duration = Duration::from_secs(5);
    /// The first page, before anything is measured: 8 s at 4 KB/s.
    pub const FIRST_PAGE: u64 = 32 * 1024;
    /// The smallest page (a change larger than a page still goes, alone).
    pub const MIN_PAGE: u64 = 8 * 1024;
    /// Timeout of a request before anything is measured.
    const FIRST_TIMEOUT: Duration = Duration::from_secs(60);
    /// The shortest timeout: a round trip on a poor mobile link, and the server's
    /// own work on the page.
    const MIN_TIMEOUT: Duration = Duration::from_secs(20);
    /// The longest.
    const MAX_TIMEOUT: Duration = Duration::from_secs(600);

    /// The next page, at most `cap` bytes.
    pub fn page(&self, cap: u64) -> u64 {
        self.page.min(cap).max(1)
    }

    /// How long a request carrying about `bytes` (both ways) may take: four times
    /// what the measured rate predicts plus the minimum, longer after timeouts.
    pub fn timeout(&self, bytes: u64) -> Duration {
        let base = match self.rate {
            None => Self::FIRST_TIMEOUT,
            Some(rate) => Self::MIN_TIMEOUT + Duration::from_secs_f64(4.0 * bytes as f64 / rate),
        };
        (base * self.patience).min(Self::MAX_TIMEOUT)
    }

    /// A request moved `bytes` (both ways) in `took`: measure, and size the next page.
    pub fn done(&mut self, bytes: u64, took: Duration) {
        let secs = took.as_secs_f64().max(1e-3);
        let sample = bytes as f64 / secs;
        let rate = match self.rate {
            // A small request says more about the round trip than the bandwidth;
            // it may raise the estimate, never lower it much.
            Some(old) if bytes < Self::MIN_PAGE => old.max(sample),
            Some(old) => 0.5 * old + 0.5 * sample,
            None => sample,
        };
        self.rate = Some(rate);
        self.page = ((rate * Self::TARGET.as_secs_f64()) as u64).max(Self::MIN_PAGE);
        self.patience = 1;
    }

    /// A request was cut off or timed out: the retry goes with half the page and
    /// more patience. The measured rate stays (a cut says nothing about the link's
    /// speed; a slow link shows in the next measurement), so the page after a
    /// successful retry is sized by it again.
    pub fn failed(&mut self) {
        self.page = (self.page / 2).max(Self::MIN_PAGE);
        self.patience = (self.patience * 2).min(8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link of `rate` bytes/s with a round trip of `rtt`: how long `bytes` take.
    fn link(rate: f64, rtt: f64) -> impl Fn(u64) -> Duration {
        move |bytes| Duration::from_secs_f64(rtt + bytes as f64 / rate)
    }

    /// Pages sized by the pace on a steady link, after `n` requests.
    fn settle(rate: f64, rtt: f64, n: usize) -> Pace {
        let took = link(rate, rtt);
        let mut pace = Pace::default();
        for _ in 0..n {
            let page = pace.page(u64::MAX);
            pace.done(page, took(page));
        }
        pace
    }

    #[test]
    fn pages_take_a_few_seconds_on_any_link() {
        for rate in [4_000.0, 32_000.0, 250_000.0, 1_000_000.0] {
            let pace = settle(rate, 0.3, 12);
            let secs = link(rate, 0.3)(pace.page(u64::MAX)).as_secs_f64();
            assert!(
                (3.0..=8.0).contains(&secs),
                "{rate} B/s: a page of {} takes {secs:.1} s",
                pace.page(u64::MAX)
            );
        }
    }

    #[test]
    fn a_fast_link_reaches_the_cap_in_a_few_requests() {
        let pace = settle(50_000_000.0, 0.001, 3);
        assert_eq!(pace.page(4 << 20), 4 << 20);
    }

    #[test]
    fn a_cut_shrinks_the_pages_and_lengthens_the_wait() {
        let mut pace = settle(100_000.0, 0.3, 8);
        let page = pace.page(u64::MAX);
        pace.failed();
        assert!(pace.page(u64::MAX) <= page / 2);
        assert!(pace.timeout(pace.page(u64::MAX)) > Pace::MIN_TIMEOUT);
        pace.failed();
        pace.failed();
        pace.failed();
        assert!(pace.page(u64::MAX) >= Pace::MIN_PAGE);
        let patient = pace.timeout(Pace::MIN_PAGE);
        assert!(patient <= Pace::MAX_TIMEOUT);
        // A success ends the extra patience and measures again.
        pace.done(Pace::MIN_PAGE, Duration::from_millis(100));
        assert!(pace.timeout(Pace::MIN_PAGE) < patient);
    }

    #[test]
    fn the_timeout_follows_the_page() {
        let pace = settle(4_000.0, 0.3, 12);
        let page = pace.page(u64::MAX);
        let t = pace.timeout(page);
        // Four times the expected time, plus the minimum.
        assert!(
            t >= Duration::from_secs(20) + Duration::from_secs_f64(3.0 * page as f64 / 4_000.0)
        );
        assert!(t < Duration::from_secs(120), "{t:?}");
    }
}
