//! Rendezvous (highest-random-weight) hashing: every node ranks the members for a key the same
//! way, from nothing but the member names and the key, so the fleet agrees on an owner without
//! talking about it; when a member leaves, only its keys move (each to its own next in rank).

use ring::digest::{Context, SHA256};

/// A member's weight for `key`: the first 8 bytes of SHA-256 over both (a `0` byte between them,
/// so that no two pairs spell the same input).
pub fn weight(member: &str, key: &str) -> u64 {
    let mut context = Context::new(&SHA256);
    context.update(member.as_bytes());
    context.update(&[0]);
    context.update(key.as_bytes());
    let digest = context.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// `members` ranked for `key`, the owner first (ties, which need a SHA-256 collision of the first
/// 64 bits, broken by name so that every node still agrees).
pub fn ranked<'a, T: AsRef<str>>(members: &'a [T], key: &str) -> Vec<&'a T> {
    let mut ranked: Vec<(u64, &T)> = members.iter().map(|m| (weight(m.as_ref(), key), m)).collect();
    ranked.sort_by(|(a, ma), (b, mb)| b.cmp(a).then_with(|| ma.as_ref().cmp(mb.as_ref())));
    ranked.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner<'a>(members: &'a [&'a str], key: &str) -> &'a str {
        ranked(members, key)[0]
    }

    #[test]
    fn every_order_of_the_members_gives_the_same_owner() {
        let a = ["https://a:1", "https://b:1", "https://c:1"];
        let b = ["https://c:1", "https://a:1", "https://b:1"];
        for key in 0..100 {
            let key = format!("sha256:{key:064x}");
            assert_eq!(owner(&a, &key), owner(&b, &key));
        }
    }

    #[test]
    fn keys_spread_over_the_members_and_only_a_leavers_keys_move() {
        let three = ["https://a:1", "https://b:1", "https://c:1"];
        let two = ["https://a:1", "https://c:1"];
        let mut owned = std::collections::HashMap::new();
        for key in 0..3000 {
            let key = format!("sha256:{key:064x}");
            let before = owner(&three, &key);
            *owned.entry(before).or_insert(0) += 1;
            let after = owner(&two, &key);
            if before != "https://b:1" {
                assert_eq!(before, after, "{key} moved though its owner stayed");
            } else {
                // b's keys go to whoever ranked second for them
                assert_eq!(after, *ranked(&three, &key)[1]);
            }
        }
        for member in three {
            let share = owned[member];
            assert!((800..1200).contains(&share), "{member} owns {share} of 3000 keys");
        }
    }

    #[test]
    fn the_weight_is_fixed_by_its_inputs() {
        // Nodes of different builds must agree: the weight is SHA-256, not a per-process hash.
        assert_eq!(weight("https://a:1", "k"), weight("https://a:1", "k"));
        assert_ne!(weight("https://a:1", "k"), weight("https://a:1k", ""));
    }
}
