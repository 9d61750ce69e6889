//! Per-merchant rate limits: at most N merchant API calls per one-minute window.
//!
//! Windows are fixed and aligned to the clock (a window starts at a whole minute of Unix
//! time), so every process agrees on which window a call falls in without talking to the
//! others. Over the limit a call is answered 429 `rate_limit_error` with `Retry-After`
//! saying how many seconds remain in the window; refused calls still count, so a client
//! that keeps hammering stays refused until the window ends.
//!
//! Where calls are counted depends on the backend:
//! - PostgreSQL: in the `rate_counters` table, shared by every `vkyc` process on the
//!   database (a per-process count would let N processes allow N times the limit). A
//!   process does not write once per call: it leases a block of the window's allowance
//!   with one atomic upsert ([`lease_block`]: 1 call up to a limit of 199 per minute, 1 %
//!   of the limit above, at most 1,000) and hands it out from memory. The count in the
//!   database is therefore never below the calls allowed, so the processes together never
//!   allow more than the limit; what a process leased and did not use before the window
//!   ended is lost, so a merchant may be refused up to `processes × (block − 1)` calls
//!   early in a window (at most 1 % of the limit per process). Limits under 200 are exact.
//! - SQLite: in memory. A SQLite file is served by one process, and counting in the
//!   database would put a durable write (an fsync) on every request.
//!
//! The limits themselves: the hosted service's tiers are presets ([`tier`]), and any
//! number may be configured ([`parse_limit`]); 0 means unlimited.

use crate::error::{Error, ErrorType, Result};
use crate::store::{Backend, Store};
use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// The length of a window, in milliseconds.
pub const WINDOW_MS: i64 = 60_000;

/// Counters of windows that started this long before the current one are deleted.
const KEEP_MS: i64 = 2 * WINDOW_MS;

/// The hosted service's tiers, in calls per minute.
pub const TIERS: &[(&str, u32)] = &[("standard", 100), ("medium", 200), ("restricted", 5)];

/// The calls per minute of a named tier (`standard` 100, `medium` 200, `restricted` 5),
/// case-insensitive.
pub fn tier(name: &str) -> Option<u32> {
    let name = name.trim();
    TIERS
        .iter()
        .find(|(tier, _)| tier.eq_ignore_ascii_case(name))
        .map(|&(_, limit)| limit)
}

/// A limit as an operator writes it: a tier name, `unlimited`, or a number of calls per
/// minute (0 is unlimited).
pub fn parse_limit(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("unlimited") {
        return Some(0);
    }
    tier(text).or_else(|| text.parse().ok())
}

/// The limit that applies to a merchant: its own (`merchants.rate_limit_per_minute`)
/// when set, otherwise the deployment's default. A negative stored value counts as
/// unlimited, as 0 does.
pub fn effective_limit(own: Option<i64>, default: u32) -> u32 {
    match own {
        Some(n) => n.clamp(0, u32::MAX as i64) as u32,
        None => default,
    }
}

/// The start of the window `now_ms` falls in: `now_ms` rounded down to the minute.
pub fn window_start(now_ms: i64) -> i64 {
    now_ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

/// Whole seconds until the window of `now_ms` ends, rounded up: 1 to 60.
pub fn retry_after(now_ms: i64) -> u64 {
    let left_ms = window_start(now_ms) + WINDOW_MS - now_ms;
    ((left_ms + 999) / 1000).max(1) as u64
}

/// 429 `rate_limit_error` / `rate_limit_exceeded`, with `Retry-After: retry_after`.
pub fn too_many(limit: u32, retry_after: u64) -> Error {
    let mut err = Error::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorType::RateLimitError,
        "rate_limit_exceeded",
        format!("Too many requests: the limit is {limit} calls per minute."),
    );
    if let Error::Api {
        retry_after: ref mut slot,
        ..
    } = err
    {
        *slot = Some(retry_after.max(1));
    }
    err
}

/// How many calls a process leases from the shared count at a time, for a limit of
/// `per_minute`.
pub fn lease_block(per_minute: u32) -> u32 {
    (per_minute / 100).clamp(1, 1000)
}

/// Calls leased from the shared count and not yet handed out, per merchant.
#[derive(Debug, Default)]
struct Leases {
    /// merchant -> (window start, calls left).
    left: HashMap<i64, (i64, u32)>,
    /// merchant -> the lock its leasing takes: a burst of calls finding no lease left
    /// waits for one lease instead of each taking a block (which would count the burst
    /// ten to a thousand times over).
    leasing: HashMap<i64, std::sync::Arc<tokio::sync::Mutex<()>>>,
}

impl Leases {
    /// Takes one call of the merchant's lease for `window`, if any is left.
    fn take(&mut self, merchant: i64, window: i64) -> bool {
        match self.left.get_mut(&merchant) {
            Some((start, left)) if *start == window && *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    fn leasing(&mut self, merchant: i64) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.leasing.entry(merchant).or_default().clone()
    }

    /// Adds calls leased for `window`; a lease of an older window is dropped.
    fn add(&mut self, merchant: i64, window: i64, calls: u32) {
        self.left.retain(|_, (start, _)| *start >= window);
        let entry = self.left.entry(merchant).or_insert((window, 0));
        if entry.0 < window {
            *entry = (window, 0);
        }
        entry.1 = entry.1.saturating_add(calls);
    }
}

/// Counts calls of one process, per key (a merchant, a client address), for the current
/// window.
#[derive(Debug)]
struct Windows<K> {
    /// The latest window seen; entries of older windows are dropped when it moves on.
    current: i64,
    /// key -> (window start, calls in that window).
    counts: HashMap<K, (i64, u32)>,
}

impl<K> Default for Windows<K> {
    fn default() -> Self {
        Windows {
            current: 0,
            counts: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> Windows<K> {
    /// Counts one call and returns the calls of the key's window including it.
    fn count(&mut self, key: K, window: i64) -> u32 {
        if window > self.current {
            self.current = window;
            self.counts.retain(|_, (start, _)| *start >= window);
        }
        let entry = self.counts.entry(key).or_insert((window, 0));
        if window > entry.0 {
            *entry = (window, 0);
        }
        // A call stamped with an older window than the entry's (a clock step back)
        // counts into the newer window: never fewer calls than were made.
        entry.1 = entry.1.saturating_add(1);
        entry.1
    }
}

enum Counter {
    /// This process's own count (SQLite: one process per database file).
    Memory(Mutex<Windows<i64>>),
    /// `rate_counters`, shared by every process on the database.
    Database {
        /// The latest window this process pruned at (`i64::MIN` before the first).
        pruned: AtomicI64,
        leases: Mutex<Leases>,
    },
}

/// Decides whether a merchant's call is within its calls per minute. One per process,
/// shared by every request.
pub struct RateLimiter {
    store: Store,
    counter: Counter,
}

impl RateLimiter {
    /// Counts in the database on PostgreSQL, in memory on SQLite.
    pub fn new(store: Store) -> RateLimiter {
        match store.backend() {
            Backend::Postgres => RateLimiter::shared(store),
            Backend::Sqlite => RateLimiter {
                store,
                counter: Counter::Memory(Mutex::new(Windows::default())),
            },
        }
    }

    /// Counts in the database whatever the backend (on SQLite: for tests of the shared
    /// path; every call is then a durable write).
    pub fn shared(store: Store) -> RateLimiter {
        RateLimiter {
            store,
            counter: Counter::Database {
                pruned: AtomicI64::new(i64::MIN),
                leases: Mutex::new(Leases::default()),
            },
        }
    }

    /// Whether calls are counted in the database, shared by every process on it.
    pub fn is_shared(&self) -> bool {
        matches!(self.counter, Counter::Database { .. })
    }

    /// Counts a call of `merchant_id` made at `now_ms` and refuses it (429, with
    /// `Retry-After`) when it is over `per_minute` calls in its window. `per_minute == 0`
    /// is unlimited: nothing is counted.
    pub async fn check(&self, merchant_id: i64, per_minute: u32, now_ms: i64) -> Result<()> {
        if per_minute == 0 {
            return Ok(());
        }
        let window = window_start(now_ms);
        let refused = || Err(too_many(per_minute, retry_after(now_ms)));
        match &self.counter {
            Counter::Memory(windows) => {
                let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                if windows.count(merchant_id, window) > per_minute {
                    return refused();
                }
                Ok(())
            }
            Counter::Database { pruned, leases } => {
                self.prune(pruned, window);
                let leases_of = || leases.lock().unwrap_or_else(|e| e.into_inner());
                if leases_of().take(merchant_id, window) {
                    return Ok(());
                }
                let block = i64::from(lease_block(per_minute));
                // One lease at a time per merchant; a call that waited takes from it.
                let leasing = (block > 1).then(|| leases_of().leasing(merchant_id));
                let _leasing = match &leasing {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                };
                if block > 1 && leases_of().take(merchant_id, window) {
                    return Ok(());
                }
                // Counted before it is allowed: the block is added to the shared count
                // first, and only the part of it within the limit is handed out.
                let total = self.store.count_calls(merchant_id, window, block).await?;
                let within = (i64::from(per_minute) - (total - block)).clamp(0, block);
                if within == 0 {
                    return refused();
                }
                if within > 1 {
                    leases_of().add(merchant_id, window, (within - 1) as u32);
                }
                Ok(())
            }
        }
    }

    /// On the first call of each new window (per process), deletes counters of windows
    /// more than two minutes old, in the background: a call does not wait for it, and a
    /// failure only leaves rows for the next attempt.
    fn prune(&self, pruned: &AtomicI64, window: i64) {
        if pruned.fetch_max(window, Ordering::Relaxed) >= window {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.prune_rate_counters(window - KEEP_MS).await {
                tracing::warn!(error = ?err, "pruning rate counters failed");
            }
        });
    }
}

/// What bounds staff sign-ins, per server: password checks at most one per core at a
/// time, and attempts per client address per minute.
pub struct SignIns {
    pub hashing: tokio::sync::Semaphore,
    per_address: Mutex<Windows<std::net::IpAddr>>,
}

impl Default for SignIns {
    fn default() -> SignIns {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SignIns {
            hashing: tokio::sync::Semaphore::new(cores),
            per_address: Default::default(),
        }
    }
}

impl SignIns {
    /// Counts an attempt from `ip` at `now_ms`; over `limit` in this minute, the seconds
    /// until the next one.
    pub fn count(&self, ip: std::net::IpAddr, limit: u32, now_ms: i64) -> Result<(), u64> {
        let mut windows = self
            .per_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.count(ip, window_start(now_ms)) > limit {
            return Err(retry_after(now_ms));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_040_000; // a whole minute

    #[test]
    fn tiers_and_limits_parse() {
        assert_eq!(tier("standard"), Some(100));
        assert_eq!(tier("medium"), Some(200));
        assert_eq!(tier("restricted"), Some(5));
        assert_eq!(tier(" Restricted "), Some(5));
        assert_eq!(tier("premium"), None);
        assert_eq!(tier("100"), None);

        assert_eq!(parse_limit("standard"), Some(100));
        assert_eq!(parse_limit("MEDIUM"), Some(200));
        assert_eq!(parse_limit("restricted"), Some(5));
        assert_eq!(parse_limit("250"), Some(250));
        assert_eq!(parse_limit(" 7 "), Some(7));
        assert_eq!(parse_limit("0"), Some(0));
        assert_eq!(parse_limit("unlimited"), Some(0));
        assert_eq!(parse_limit("-1"), None);
        assert_eq!(parse_limit("1.5"), None);
        assert_eq!(parse_limit(""), None);
        assert_eq!(parse_limit("fast"), None);
        assert_eq!(parse_limit("99999999999"), None);
    }

    #[test]
    fn effective_limit_prefers_the_merchants_own() {
        assert_eq!(effective_limit(None, 100), 100);
        assert_eq!(effective_limit(Some(5), 100), 5);
        assert_eq!(effective_limit(Some(0), 100), 0);
        assert_eq!(effective_limit(Some(-3), 100), 0);
        assert_eq!(effective_limit(Some(i64::MAX), 100), u32::MAX);
    }

    #[test]
    fn windows_are_aligned_minutes() {
        assert_eq!(T0 % WINDOW_MS, 0);
        assert_eq!(window_start(T0), T0);
        assert_eq!(window_start(T0 + 59_999), T0);
        assert_eq!(window_start(T0 + 60_000), T0 + 60_000);
        assert_eq!(window_start(-1), -60_000);
        assert_eq!(retry_after(T0), 60);
        assert_eq!(retry_after(T0 + 1), 60);
        assert_eq!(retry_after(T0 + 1_000), 59);
        assert_eq!(retry_after(T0 + 58_500), 2);
        assert_eq!(retry_after(T0 + 59_999), 1);
    }

    #[test]
    fn too_many_is_a_429_with_retry_after() {
        match too_many(5, 0) {
            Error::Api {
                status,
                kind,
                code,
                message,
                retry_after,
            } => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                assert_eq!(kind, ErrorType::RateLimitError);
                assert_eq!(code, "rate_limit_exceeded");
                assert_eq!(
                    message,
                    "Too many requests: the limit is 5 calls per minute."
                );
                assert_eq!(retry_after, Some(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn memory_counts_per_merchant_per_window_and_drops_stale_entries() {
        let mut w = Windows::default();
        for n in 1..=7 {
            assert_eq!(w.count(1, T0), n);
        }
        assert_eq!(w.count(2, T0), 1);
        assert_eq!(w.count(1, T0 + WINDOW_MS), 1);
        // Merchant 2 made no call in the new window: its entry is gone.
        assert_eq!(w.counts.len(), 1);
        assert_eq!(w.count(2, T0 + WINDOW_MS), 1);
        // A call stamped with an older window counts into the newer one.
        assert_eq!(w.count(1, T0), 2);
        assert_eq!(w.count(1, T0 + WINDOW_MS), 3);
    }

    async fn sqlite_limiter() -> (RateLimiter, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("vkyc.db").display());
        let store = Store::open(&url, &crate::secrets::MasterKey::generate())
            .await
            .unwrap();
        (RateLimiter::new(store), dir)
    }

    #[tokio::test]
    async fn sqlite_counts_in_memory_and_refuses_over_the_limit() {
        let (limiter, _dir) = sqlite_limiter().await;
        assert!(!limiter.is_shared());
        for _ in 0..5 {
            limiter.check(1, 5, T0 + 1_000).await.unwrap();
        }
        for _ in 0..3 {
            let err = limiter.check(1, 5, T0 + 1_000).await.unwrap_err();
            assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(err.code(), "rate_limit_exceeded");
            assert!(matches!(
                err,
                Error::Api {
                    retry_after: Some(59),
                    ..
                }
            ));
        }
        // Another merchant has its own count.
        limiter.check(2, 5, T0 + 2_000).await.unwrap();
        // The next window starts afresh.
        for _ in 0..5 {
            limiter.check(1, 5, T0 + WINDOW_MS).await.unwrap();
        }
        assert!(limiter.check(1, 5, T0 + WINDOW_MS).await.is_err());
        // Nothing was written to the database.
        assert_eq!(
            limiter.store.prune_rate_counters(i64::MAX).await.unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn zero_is_unlimited_and_not_counted() {
        let (limiter, _dir) = sqlite_limiter().await;
        for _ in 0..1_000 {
            limiter.check(1, 0, T0).await.unwrap();
        }
        // Nothing was counted: a limit of 1 still allows one call.
        limiter.check(1, 1, T0).await.unwrap();
        assert!(limiter.check(1, 1, T0).await.is_err());
    }

    #[test]
    fn leases_are_one_call_under_200_and_a_hundredth_above() {
        assert_eq!(lease_block(5), 1);
        assert_eq!(lease_block(199), 1);
        assert_eq!(lease_block(1_000), 10);
        assert_eq!(lease_block(1_000_000_000), 1000);
        let mut leases = Leases::default();
        assert!(!leases.take(1, T0));
        leases.add(1, T0, 2);
        assert!(leases.take(1, T0) && leases.take(1, T0) && !leases.take(1, T0));
        leases.add(1, T0, 5);
        // A new window drops what was left of the old one's lease.
        assert!(!leases.take(1, T0 + WINDOW_MS));
        leases.add(2, T0 + WINDOW_MS, 1);
        assert!(!leases.take(1, T0));
    }

    #[tokio::test]
    async fn a_lease_hands_out_only_what_is_within_the_limit() {
        let (limiter, _dir) = sqlite_limiter().await;
        let limiter = RateLimiter::shared(limiter.store.clone());
        // 1,050 per minute: blocks of 10, one database write per 10 calls.
        for n in 0..1_050 {
            limiter
                .check(1, 1_050, T0)
                .await
                .unwrap_or_else(|e| panic!("call {n}: {e}"));
        }
        assert_eq!(limiter.store.count_call(1, T0).await.unwrap(), 1_051);
        assert!(limiter.check(1, 1_050, T0).await.is_err());
        // Another process's count leaves this one only what is within the limit.
        let other = RateLimiter::shared(limiter.store.clone());
        limiter.store.count_calls(2, T0, 1_045).await.unwrap();
        let allowed = {
            let mut n = 0;
            while other.check(2, 1_050, T0).await.is_ok() {
                n += 1;
            }
            n
        };
        assert_eq!(allowed, 5);
    }

    #[tokio::test]
    async fn the_shared_path_counts_in_the_database() {
        let (limiter, _dir) = sqlite_limiter().await;
        let limiter = RateLimiter::shared(limiter.store.clone());
        assert!(limiter.is_shared());
        for _ in 0..2 {
            limiter.check(1, 2, T0).await.unwrap();
        }
        assert!(limiter.check(1, 2, T0).await.is_err());
        assert_eq!(limiter.store.count_call(1, T0).await.unwrap(), 4);
    }
}
