//! Who is in the fleet: the static list, the addresses a DNS name has now, and this node; which of
//! them are cooling down after failing to answer (skipped, so their keys go to the next in rank
//! until the cool-down ends and they take them back).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use arc_swap::ArcSwap;
use tokio::time::Instant;

use super::rendezvous;
use crate::{metrics::Metrics, target::Target};

/// How long a member that failed to answer is skipped.
pub const COOL_DOWN: Duration = Duration::from_secs(10);

/// A member as every node names it: `https://host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// `https://host:port` (the name rendezvous hashing ranks).
    pub url: String,
    /// Where it is.
    pub target: Target,
}

impl Member {
    /// The member at `target`.
    pub fn new(target: Target) -> Self {
        Self { url: format!("https://{}", target.host_port()), target }
    }
}

impl AsRef<str> for Member {
    fn as_ref(&self) -> &str {
        &self.url
    }
}

/// One member's state, for the status page and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    /// `https://host:port`.
    pub url: String,
    /// This node.
    pub own: bool,
    /// Skipped until its cool-down ends.
    pub cooling: bool,
}

/// The fleet's members as this node sees them.
#[derive(Debug)]
pub struct Members {
    own: Member,
    listed: Vec<Member>,
    from_dns: ArcSwap<Vec<Member>>,
    cooling: Mutex<HashMap<String, Instant>>,
    metrics: Arc<Metrics>,
}

impl Members {
    /// This node (`own`) and the members `listed` statically.
    pub fn new(own: Target, listed: &[Target], metrics: Arc<Metrics>) -> Self {
        let listed = listed.iter().cloned().map(Member::new).collect();
        Self {
            own: Member::new(own),
            listed,
            from_dns: ArcSwap::from_pointee(Vec::new()),
            cooling: Mutex::default(),
            metrics,
        }
    }

    /// This node.
    pub fn own(&self) -> &Member {
        &self.own
    }

    /// Every member (this node included), each once, sorted.
    fn all(&self) -> Vec<Member> {
        let mut all: Vec<Member> = std::iter::once(self.own.clone())
            .chain(self.listed.iter().cloned())
            .chain(self.from_dns.load().iter().cloned())
            .collect();
        all.sort_by(|a, b| a.url.cmp(&b.url));
        all.dedup();
        all
    }

    /// The members that answer, ranked for `key`: the owner first. This node is always among
    /// them; a member whose cool-down ended is back (and takes its keys back).
    pub fn ranked(&self, key: &str) -> Vec<Member> {
        let now = Instant::now();
        let cooling: Vec<String> = {
            let mut cooling = self.cooling.lock().unwrap_or_else(|e| e.into_inner());
            let before = cooling.len();
            cooling.retain(|_, until| *until > now);
            for _ in cooling.len()..before {
                self.metrics.fleet_owner_change();
            }
            cooling.keys().cloned().collect()
        };
        let live: Vec<Member> = self.all().into_iter().filter(|m| !cooling.contains(&m.url)).collect();
        rendezvous::ranked(&live, key).into_iter().cloned().collect()
    }

    /// `member` failed to answer (or broke off an answer): skipped for [`COOL_DOWN`].
    pub fn failed(&self, member: &Member) {
        if member == &self.own {
            return;
        }
        let mut cooling = self.cooling.lock().unwrap_or_else(|e| e.into_inner());
        if cooling.insert(member.url.clone(), Instant::now() + COOL_DOWN).is_none() {
            tracing::warn!(member = %member.url, cool_down = ?COOL_DOWN, "fleet member not answering: its keys go to the next members");
            self.metrics.fleet_owner_change();
        }
    }

    /// The members a DNS name stands for now; a change moves keys.
    pub fn set_from_dns(&self, mut members: Vec<Member>) {
        members.sort_by(|a, b| a.url.cmp(&b.url));
        members.dedup();
        if **self.from_dns.load() != members {
            tracing::info!(members = ?members.iter().map(|m| &m.url).collect::<Vec<_>>(), "fleet members from DNS");
            self.from_dns.store(Arc::new(members));
            self.metrics.fleet_owner_change();
        }
    }

    /// Every member and whether it is skipped now.
    pub fn states(&self) -> Vec<MemberState> {
        let now = Instant::now();
        let cooling = self.cooling.lock().unwrap_or_else(|e| e.into_inner());
        self.all()
            .into_iter()
            .map(|m| MemberState {
                own: m == self.own,
                cooling: cooling.get(&m.url).is_some_and(|until| *until > now),
                url: m.url,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        crate::config::member_url(url).unwrap()
    }

    fn members() -> Members {
        let listed = ["https://a.test:1", "https://b.test:1", "https://c.test:1"].map(target);
        Members::new(target("https://a.test:1"), &listed, Arc::default())
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_that_fails_is_skipped_until_its_cool_down_ends() {
        let members = members();
        let key = (0..)
            .map(|i| format!("sha256:{i:064x}"))
            .find(|k| members.ranked(k)[0].url == "https://b.test:1")
            .unwrap();
        let second = members.ranked(&key)[1].clone();
        let b = members.ranked(&key)[0].clone();
        members.failed(&b);
        assert_eq!(members.ranked(&key)[0], second, "its keys go to the next in rank");
        assert_eq!(members.ranked(&key).len(), 2);
        assert!(members.states().iter().any(|s| s.url == b.url && s.cooling));
        tokio::time::advance(COOL_DOWN + Duration::from_millis(1)).await;
        assert_eq!(members.ranked(&key)[0], b, "back after the cool-down, with its keys");
    }

    #[test]
    fn this_node_is_always_a_member_and_never_cools() {
        let members = Members::new(target("https://a.test:1"), &[], Arc::default());
        let own = members.own().clone();
        members.failed(&own);
        assert_eq!(members.ranked("sha256:00"), vec![own]);
    }

    #[test]
    fn members_from_dns_join_the_listed_ones_once() {
        let members = members();
        members.set_from_dns(vec![
            Member::new(target("https://c.test:1")),
            Member::new(target("https://d.test:1")),
        ]);
        let urls: Vec<String> = members.states().into_iter().map(|s| s.url).collect();
        assert_eq!(urls, ["https://a.test:1", "https://b.test:1", "https://c.test:1", "https://d.test:1"]);
    }
}
