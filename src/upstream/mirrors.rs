//! Mirrors: per registry, other registries or pull-through caches tried before the origin for
//! content and tag lookups. Lower priority first; equal priorities take turns; a mirror that failed
//! (connection error, 5xx, 429) is skipped for a cool-down (a small circuit breaker).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use crate::target::Target;

/// How long a failed mirror is skipped.
pub const COOL_DOWN: Duration = Duration::from_secs(30);

pub use crate::config::Mirror;

/// One mirror's state, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MirrorState {
    /// The registry it stands in for.
    pub registry: String,
    /// The mirror (`host:port`).
    pub mirror: String,
    /// Lower is tried first.
    pub priority: u32,
    /// Seconds it is still skipped for after a failure (`None`: it is tried).
    pub skipped_for_seconds: Option<u64>,
}

/// The configured mirrors and their health.
#[derive(Debug, Default)]
pub struct Mirrors {
    by_registry: HashMap<String, Vec<Mirror>>,
    open_until: Mutex<HashMap<Target, Instant>>,
    turn: AtomicUsize,
}

impl Mirrors {
    /// Mirrors from configuration.
    pub fn new(mirrors: &[Mirror]) -> Self {
        let mut by_registry: HashMap<String, Vec<Mirror>> = HashMap::new();
        for mirror in mirrors {
            by_registry.entry(mirror.registry.clone()).or_default().push(mirror.clone());
        }
        for list in by_registry.values_mut() {
            list.sort_by_key(|m| m.priority);
        }
        Self { by_registry, ..Self::default() }
    }

    /// Whether `origin` has mirrors (whose answers stand in for its own).
    pub fn has_mirrors(&self, origin: &Target) -> bool {
        self.by_registry.contains_key(&origin.to_string())
    }

    /// Where to ask for `origin`'s content, in order: healthy mirrors, then the origin itself.
    pub fn candidates(&self, origin: &Target) -> Vec<Target> {
        let Some(list) = self.by_registry.get(&origin.to_string()) else { return vec![origin.clone()] };
        let now = Instant::now();
        let open = self.open_until.lock().unwrap_or_else(|p| p.into_inner());
        let healthy: Vec<&Mirror> =
            list.iter().filter(|m| open.get(&m.target).is_none_or(|until| *until <= now)).collect();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut ordered = Vec::with_capacity(healthy.len() + 1);
        for group in healthy.chunk_by(|a, b| a.priority == b.priority) {
            let start = turn % group.len();
            ordered.extend(group[start..].iter().chain(&group[..start]).map(|m| m.target.clone()));
        }
        ordered.push(origin.clone());
        ordered
    }

    /// Every mirror, by registry then order, and how long it is still skipped for.
    pub fn states(&self) -> Vec<MirrorState> {
        let now = Instant::now();
        let open = self.open_until.lock().unwrap_or_else(|p| p.into_inner());
        let mut states: Vec<MirrorState> = self
            .by_registry
            .values()
            .flatten()
            .map(|m| MirrorState {
                registry: m.registry.clone(),
                mirror: m.target.to_string(),
                priority: m.priority,
                skipped_for_seconds: open
                    .get(&m.target)
                    .and_then(|until| until.checked_duration_since(now))
                    .map(|left| left.as_secs_f64().ceil() as u64),
            })
            .collect();
        states
            .sort_by(|a, b| (&a.registry, a.priority, &a.mirror).cmp(&(&b.registry, b.priority, &b.mirror)));
        states
    }

    /// Records how a mirror answered: a failure opens its circuit for [`COOL_DOWN`].
    pub fn record(&self, mirror: &Target, healthy: bool) {
        let mut open = self.open_until.lock().unwrap_or_else(|p| p.into_inner());
        if healthy {
            open.remove(mirror);
        } else {
            tracing::warn!(%mirror, cool_down = ?COOL_DOWN, "mirror failed; skipping it for a while");
            open.insert(mirror.clone(), Instant::now() + COOL_DOWN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str) -> Target {
        Target::from_absolute(&format!("https://{host}/").parse().unwrap()).unwrap()
    }

    fn mirror(host: &str, priority: u32) -> Mirror {
        Mirror { registry: "origin.test:443".into(), target: target(host), priority }
    }

    #[test]
    fn order_rotation_and_circuit_breaking() {
        let mirrors = Mirrors::new(&[mirror("b.test", 1), mirror("a.test", 0), mirror("c.test", 1)]);
        let origin = target("origin.test");
        let names = |list: Vec<Target>| list.iter().map(|t| t.host.clone()).collect::<Vec<_>>();
        let first = names(mirrors.candidates(&origin));
        let second = names(mirrors.candidates(&origin));
        assert_eq!(first[0], "a.test");
        assert_eq!(first[3], "origin.test");
        assert_ne!(first[1], second[1], "equal priorities take turns");
        mirrors.record(&target("a.test"), false);
        assert_eq!(names(mirrors.candidates(&origin)).len(), 3, "a failed mirror is skipped");
        let states = mirrors.states();
        assert_eq!(
            states.iter().map(|s| s.mirror.as_str()).collect::<Vec<_>>(),
            ["a.test:443", "b.test:443", "c.test:443"]
        );
        assert_eq!(states[0].skipped_for_seconds, Some(COOL_DOWN.as_secs()));
        assert_eq!(states[1].skipped_for_seconds, None);
        mirrors.record(&target("a.test"), true);
        assert_eq!(names(mirrors.candidates(&origin))[0], "a.test");
        assert_eq!(names(mirrors.candidates(&target("other.test"))), ["other.test"]);
    }
}
