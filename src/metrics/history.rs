//! The last hour of this process's totals, one point every [`INTERVAL`], in memory: what the
//! status page draws its chart from and computes "now" (the last interval's rates) with.

use std::{
    collections::VecDeque,
    sync::{atomic::Ordering, Mutex},
    time::Duration,
};

use serde::Serialize;

use super::Totals;

/// Time between two points.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Points kept: one hour.
pub const POINTS: usize = 360;

/// The totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Point {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// Registry reads answered from the cache so far.
    pub hits: u64,
    /// Registry reads fetched upstream so far.
    pub misses: u64,
    /// Bytes sent from the store so far.
    pub served_bytes: u64,
    /// Bytes fetched upstream so far.
    pub fetched_bytes: u64,
}

impl Point {
    /// `totals` read at `at_ms`.
    pub fn of(totals: &Totals, at_ms: u64) -> Self {
        Self {
            at_ms,
            hits: totals.hits.load(Ordering::Relaxed),
            misses: totals.misses.load(Ordering::Relaxed),
            served_bytes: totals.served_bytes.load(Ordering::Relaxed),
            fetched_bytes: totals.fetched_bytes.load(Ordering::Relaxed),
        }
    }

    /// What happened between `earlier` and this point, per second.
    pub fn rates_since(&self, earlier: &Point) -> Rates {
        let seconds = (self.at_ms.saturating_sub(earlier.at_ms) as f64 / 1000.0).max(0.001);
        let per_second = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
        let (hits, misses) =
            (self.hits.saturating_sub(earlier.hits), self.misses.saturating_sub(earlier.misses));
        Rates {
            seconds,
            hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            served_bytes_per_second: per_second(self.served_bytes, earlier.served_bytes),
            fetched_bytes_per_second: per_second(self.fetched_bytes, earlier.fetched_bytes),
        }
    }
}

/// Rates over a stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// The stretch's length.
    pub seconds: f64,
    /// Hits among the reads that were hits or misses (`None`: there were none).
    pub hit_ratio: Option<f64>,
    /// Bytes per second sent from the store.
    pub served_bytes_per_second: f64,
    /// Bytes per second fetched upstream.
    pub fetched_bytes_per_second: f64,
}

/// The kept points, oldest first.
#[derive(Debug, Default)]
pub struct History {
    points: Mutex<VecDeque<Point>>,
}

impl History {
    /// Adds `point`, dropping the oldest beyond [`POINTS`].
    pub fn push(&self, point: Point) {
        let mut points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        if points.len() >= POINTS {
            points.pop_front();
        }
        points.push_back(point);
    }

    /// The kept points, oldest first.
    pub fn points(&self) -> Vec<Point> {
        self.points.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }

    /// The rates from the last kept point to `now` (or over the last whole interval when the last
    /// point is only just taken); `None` before the first point.
    pub fn now(&self, now: &Point) -> Option<Rates> {
        let points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        let recent = points.iter().rev().find(|p| now.at_ms.saturating_sub(p.at_ms) >= 1_000)?;
        Some(now.rates_since(recent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at_s: u64, hits: u64, misses: u64, served: u64) -> Point {
        Point { at_ms: at_s * 1000, hits, misses, served_bytes: served, fetched_bytes: 0 }
    }

    #[test]
    fn an_hour_is_kept_and_now_is_the_last_stretch() {
        let history = History::default();
        assert_eq!(history.now(&point(0, 0, 0, 0)), None);
        for i in 0..(POINTS as u64 + 10) {
            history.push(point(i * 10, i * 3, i, i * 1000));
        }
        let points = history.points();
        assert_eq!(points.len(), POINTS);
        assert_eq!(points[0].at_ms, 10 * 10_000, "the oldest went");
        let last = *points.last().unwrap();
        let now = Point { at_ms: last.at_ms + 10_000, hits: last.hits + 9, misses: last.misses + 1, ..last };
        let rates = history.now(&Point { served_bytes: last.served_bytes + 5_000, ..now }).unwrap();
        assert_eq!(rates.hit_ratio, Some(0.9));
        assert_eq!(rates.served_bytes_per_second, 500.0);
        // a point taken a moment ago is skipped for the one before it
        history.push(now);
        let rates = history.now(&Point { at_ms: now.at_ms + 10, ..now }).unwrap();
        assert!((rates.seconds - 10.01).abs() < 1e-9, "{rates:?}");
    }
}
