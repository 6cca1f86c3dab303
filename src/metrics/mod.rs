//! Prometheus metrics at `/metrics`, recorded with the `metrics` crate into a recorder this pantry
//! owns (no global recorder, so several pantries can run in one process).
//!
//! Counters are registered on demand by name and labels; values that are simply "how much now"
//! (in-flight fetches, stored bytes, leaves minted) are read from their owners when rendering.

pub mod history;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use crate::cache_status::CacheStatus;
use metrics::{Counter, CounterFn, Gauge, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

const META: Metadata<'static> = Metadata::new("pantry", Level::INFO, None);

/// Live values read from their owners at render time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Upstream fetches running now.
    pub in_flight: u64,
    /// Bytes in the store.
    pub stored_bytes: u64,
    /// Size cap of the store.
    pub max_bytes: u64,
    /// Leaf certificates minted since start.
    pub leaves_minted: u64,
    /// Store lookups that failed because the store could not be read, since start.
    pub store_read_errors: u64,
}

impl Metrics {
    /// The requests `registry` (`host:port`) last said remain in its rate limit.
    pub fn ratelimit_remaining(&self, registry: &str, remaining: u64) {
        let key = Key::from_parts(
            "pantry_upstream_ratelimit_remaining",
            vec![Label::new("registry", registry.to_string())],
        );
        self.recorder.register_gauge(&key, &META).set(remaining as f64);
    }
}

/// What this process did for the cache's lifetime totals (`cache::tally`).
#[derive(Debug, Default)]
pub struct Totals {
    /// Registry reads answered without fetching the content upstream (hit, collapsed, revalidated, stale).
    pub hits: AtomicU64,
    /// Registry reads that fetched upstream.
    pub misses: AtomicU64,
    /// Bytes sent to clients from the store.
    pub served_bytes: Arc<AtomicU64>,
    /// Bytes received from upstreams into the store.
    pub fetched_bytes: AtomicU64,
    /// Of the bytes fetched, those that came from fleet members (not the origin).
    pub peer_bytes: AtomicU64,
    /// Of the bytes fetched, those that came from the fleet's shared store.
    pub shared_bytes: AtomicU64,
    /// Bytes eviction removed (not part of the lifetime tally).
    pub evicted_bytes: AtomicU64,
}

/// This pantry's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Totals kept beside the Prometheus counters, for the cache's persistent statistics.
    pub totals: Totals,
    /// The last hour of the totals (for the status page).
    pub history: history::History,
}

/// A counter that feeds a Prometheus counter and a total at once.
struct Tee(Counter, Arc<AtomicU64>);

impl CounterFn for Tee {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        self.1.fetch_max(value, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Self { recorder, handle, totals: Totals::default(), history: history::History::default() }
    }
}

impl Metrics {
    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder.register_counter(&Key::from_parts(name, labels), &META)
    }

    fn gauge(&self, name: &'static str) -> Gauge {
        self.recorder.register_gauge(&Key::from_name(name), &META)
    }

    /// A request answered: its route and how (`hit`, `miss`, `collapsed`, …, from `Cache-Status`).
    pub fn request(&self, route: &'static str, status: CacheStatus) {
        if status.is_hit() {
            self.totals.hits.fetch_add(1, Ordering::Relaxed);
        } else if status.is_miss() {
            self.totals.misses.fetch_add(1, Ordering::Relaxed);
        }
        let labels = vec![Label::new("route", route), Label::new("cache", status.outcome())];
        self.counter("pantry_requests_total", labels).increment(1);
    }

    /// Bytes sent to clients from the store.
    pub fn served_from_cache(&self, bytes: u64) {
        self.served_counter().increment(bytes);
    }

    /// The counter of bytes sent from the store, to count while streaming.
    pub fn served_counter(&self) -> Counter {
        let prometheus = self.counter("pantry_cache_served_bytes_total", Vec::new());
        Counter::from_arc(Arc::new(Tee(prometheus, Arc::clone(&self.totals.served_bytes))))
    }

    /// Bytes received from upstreams into the store.
    pub fn fetched_upstream(&self, bytes: u64) {
        self.counter("pantry_upstream_fetched_bytes_total", Vec::new()).increment(bytes);
        self.totals.fetched_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A request to the fleet member that owns the content, by how it went (`ok`, `refused`, `error`,
    /// `unreachable`, `broken`).
    pub fn peer_request(&self, result: &'static str) {
        self.counter("pantry_peer_requests_total", vec![Label::new("result", result)]).increment(1);
    }

    /// Bytes received from fleet members (part of the bytes fetched into the store).
    pub fn from_peers(&self, bytes: u64) {
        self.counter("pantry_peer_fetched_bytes_total", Vec::new()).increment(bytes);
        self.totals.peer_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes read from the fleet's shared store (part of the bytes fetched into the store).
    pub fn from_shared_store(&self, bytes: u64) {
        self.counter("pantry_shared_store_fetched_bytes_total", Vec::new()).increment(bytes);
        self.totals.shared_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Content written behind to the shared store, by result (`written`, `present`, `failed`).
    pub fn shared_store_write(&self, result: &'static str) {
        self.counter("pantry_shared_store_writes_total", vec![Label::new("result", result)]).increment(1);
    }

    /// The fleet's live members changed (one cooled down, came back, joined or left): some keys
    /// have another owner now.
    pub fn fleet_owner_change(&self) {
        self.counter("pantry_fleet_owner_changes_total", Vec::new()).increment(1);
    }

    /// A request joined a fetch another one started.
    pub fn coalesced(&self) {
        self.counter("pantry_coalesced_joins_total", Vec::new()).increment(1);
    }

    /// An upstream failure, by its RFC 9209 error type.
    pub fn upstream_error(&self, kind: &'static str) {
        self.counter("pantry_upstream_errors_total", vec![Label::new("kind", kind)]).increment(1);
    }

    /// A fetch that failed verification or broke off (nothing stored).
    pub fn fetch_aborted(&self) {
        self.counter("pantry_fetches_aborted_total", Vec::new()).increment(1);
    }

    /// Content evicted to stay under the cap.
    pub fn evicted(&self, bytes: u64) {
        self.counter("pantry_evicted_bytes_total", Vec::new()).increment(bytes);
        self.totals.evicted_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A client connection opened; the gauge goes down when the guard is dropped.
    pub fn connection(&self) -> ConnectionGauge {
        let gauge = self.gauge("pantry_active_connections");
        gauge.increment(1.0);
        ConnectionGauge(gauge)
    }

    /// The Prometheus text exposition, with live values from `now`.
    pub fn render(&self, now: Snapshot) -> String {
        self.gauge("pantry_fetches_in_flight").set(now.in_flight as f64);
        self.gauge("pantry_store_bytes").set(now.stored_bytes as f64);
        self.gauge("pantry_store_max_bytes").set(now.max_bytes as f64);
        self.gauge("pantry_leaf_certificates_minted").set(now.leaves_minted as f64);
        self.counter("pantry_store_read_errors_total", Vec::new()).absolute(now.store_read_errors);
        self.handle.render()
    }
}

/// Counts one open client connection while it lives.
#[derive(Debug)]
pub struct ConnectionGauge(Gauge);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_live_values() {
        let metrics = Metrics::default();
        metrics.request("blob", CacheStatus::Hit);
        metrics.request("blob", CacheStatus::Hit);
        metrics.request("manifest-tag", CacheStatus::Stale);
        metrics.request("blob", CacheStatus::Error);
        metrics.served_from_cache(1000);
        let connection = metrics.connection();
        let text = metrics.render(Snapshot {
            in_flight: 2,
            stored_bytes: 5,
            max_bytes: 10,
            leaves_minted: 1,
            store_read_errors: 3,
        });
        assert!(text.contains("pantry_requests_total{route=\"blob\",cache=\"hit\"} 2"), "{text}");
        assert!(text.contains("pantry_requests_total{route=\"manifest-tag\",cache=\"stale\"} 1"), "{text}");
        assert!(text.contains("pantry_requests_total{route=\"blob\",cache=\"error\"} 1"), "{text}");
        assert!(text.contains("pantry_cache_served_bytes_total 1000"), "{text}");
        assert!(text.contains("pantry_fetches_in_flight 2"), "{text}");
        assert!(text.contains("pantry_store_read_errors_total 3"), "{text}");
        assert!(text.contains("pantry_active_connections 1"), "{text}");
        drop(connection);
        assert!(metrics.render(Snapshot::default()).contains("pantry_active_connections 0"));
        let totals = &metrics.totals;
        assert_eq!((totals.hits.load(Ordering::Relaxed), totals.misses.load(Ordering::Relaxed)), (3, 0));
        assert_eq!(totals.served_bytes.load(Ordering::Relaxed), 1000);
    }
}
