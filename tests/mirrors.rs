//! Mirrors: tried before the origin for content and tags, without the client's credentials; a
//! failing mirror hands over to the next and is skipped for a while; equal mirrors take turns.

mod common;

use std::sync::atomic::Ordering;

use common::{
    registry::{FakeRegistry, TOKEN},
    request, start_pantry, TestPantry,
};
use http::Method;
use pantry::{target::Target, upstream::mirrors::Mirror};

async fn with_mirrors(origin: &FakeRegistry, mirrors: &[&FakeRegistry]) -> TestPantry {
    let list: Vec<Mirror> = mirrors
        .iter()
        .map(|m| Mirror {
            registry: origin.host(),
            target: Target::from_absolute(&format!("https://127.0.0.1:{}/", m.addr.port()).parse().unwrap())
                .unwrap(),
            priority: 0,
        })
        .collect();
    let ports: Vec<u16> = mirrors.iter().map(|m| m.addr.port()).collect();
    let cas: Vec<_> = mirrors.iter().map(|m| m.ca.ca_file.clone()).collect();
    start_pantry(|c| {
        origin.configure(c);
        c.startup.upstream_ca.extend(cas);
        c.live.mirrors = list;
        common::reach_loopback(c, &ports);
    })
    .await
}

fn blob(registries: &[&FakeRegistry], seed: u8) -> String {
    let bytes = vec![seed; 4096];
    let digests: Vec<String> =
        registries.iter().map(|r| r.state.add_blob(bytes.clone(), "application/octet-stream")).collect();
    digests[0].clone()
}

#[tokio::test]
async fn content_comes_from_the_mirror_when_it_has_it() {
    let (origin, mirror) = (FakeRegistry::start().await, FakeRegistry::start().await);
    let pantry = with_mirrors(&origin, &[&mirror]).await;
    let digest = blob(&[&origin, &mirror], 1);
    let (response, body) =
        request(&pantry, &origin.host(), Method::GET, &format!("/v2/app/blobs/{digest}"), &[]).await;
    assert_eq!((response.status().as_u16(), body.unwrap().len()), (200, 4096));
    assert_eq!((mirror.state.count("GET blob"), origin.state.count("GET blob")), (1, 0));
}

#[tokio::test]
async fn a_failing_mirror_fails_over_to_the_origin_and_is_skipped_afterwards() {
    let (origin, mirror) = (FakeRegistry::start().await, FakeRegistry::start().await);
    let pantry = with_mirrors(&origin, &[&mirror]).await;
    mirror.state.down.store(true, Ordering::SeqCst);
    for seed in [2, 3] {
        let digest = blob(&[&origin, &mirror], seed);
        let (response, _) =
            request(&pantry, &origin.host(), Method::GET, &format!("/v2/app/blobs/{digest}"), &[]).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(origin.state.count("GET blob"), 2);
    assert_eq!(mirror.state.count("GET down"), 1, "after its 503 the mirror is skipped");
}

#[tokio::test]
async fn a_mirror_without_the_content_hands_over_to_the_origin() {
    let (origin, mirror) = (FakeRegistry::start().await, FakeRegistry::start().await);
    let pantry = with_mirrors(&origin, &[&mirror]).await;
    let digest = blob(&[&origin], 4);
    let (response, _) =
        request(&pantry, &origin.host(), Method::GET, &format!("/v2/app/blobs/{digest}"), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!((mirror.state.count("GET blob"), origin.state.count("GET blob")), (1, 1));
    let other = blob(&[&origin, &mirror], 5);
    request(&pantry, &origin.host(), Method::GET, &format!("/v2/app/blobs/{other}"), &[]).await.1.unwrap();
    assert_eq!(mirror.state.count("GET blob"), 2, "a 404 does not take the mirror out of service");
}

#[tokio::test]
async fn the_clients_credentials_never_reach_a_mirror() {
    let (origin, mirror) = (FakeRegistry::start().await, FakeRegistry::start().await);
    let pantry = with_mirrors(&origin, &[&mirror]).await;
    origin.state.make_private("private/app");
    mirror.state.make_private("private/app");
    let digest = blob(&[&origin, &mirror], 6);
    let path = format!("/v2/private/app/blobs/{digest}");
    let (response, _) =
        request(&pantry, &origin.host(), Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(mirror.state.count("GET blob"), 1, "the mirror was asked…");
    assert_eq!(origin.state.count("GET blob"), 1, "…refused without the token, so the origin served it");
}

#[tokio::test]
async fn equal_mirrors_take_turns() {
    let origin = FakeRegistry::start().await;
    let (a, b) = (FakeRegistry::start().await, FakeRegistry::start().await);
    let pantry = with_mirrors(&origin, &[&a, &b]).await;
    for seed in 10..14 {
        let digest = blob(&[&origin, &a, &b], seed);
        request(&pantry, &origin.host(), Method::GET, &format!("/v2/app/blobs/{digest}"), &[])
            .await
            .1
            .unwrap();
    }
    assert_eq!((a.state.count("GET blob"), b.state.count("GET blob")), (2, 2));
    assert_eq!(origin.state.count("GET blob"), 0);
}
