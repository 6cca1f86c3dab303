//! `pantry prefetch` and the scheduled refresh: manifests walked (one platform of an index, or all),
//! blobs stored through the proxy core, token auth answered, stored blobs skipped on a second run,
//! prefetched content served to clients as hits.

mod common;

use std::{process::Command, time::Duration};

use common::{registry::FakeRegistry, request, start_pantry, TestPantry};
use http::Method;
use pantry::{
    prefetch::{Prefetcher, Quiet, Refresh, Summary},
    registry::{manifest::Platform, reference::ImageRef},
};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A two-platform image `repo:v1`; returns (index, [amd64 config, layer], [arm64 config, layer]).
fn two_platform_image(registry: &FakeRegistry, repo: &str) -> (String, [String; 2], [String; 2]) {
    let state = &registry.state;
    let platform_image = |seed: u8, arch: &str| {
        let config = state
            .add_blob(format!("{{\"architecture\":\"{arch}\"}}").into_bytes(), "application/octet-stream");
        let layer = state.add_blob(vec![seed; 100_000 + seed as usize], "application/octet-stream");
        let config_size = format!("{{\"architecture\":\"{arch}\"}}").len();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{IMAGE}","config":{{"digest":"{config}","size":{config_size}}},
            "layers":[{{"digest":"{layer}","size":{}}}]}}"#,
            100_000 + seed as usize
        );
        (state.add_blob(manifest.into_bytes(), IMAGE), [config, layer])
    };
    let (amd64, amd64_blobs) = platform_image(1, "amd64");
    let (arm64, arm64_blobs) = platform_image(2, "arm64");
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[
        {{"mediaType":"{IMAGE}","digest":"{amd64}","platform":{{"os":"linux","architecture":"amd64"}}}},
        {{"mediaType":"{IMAGE}","digest":"{arm64}","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
    );
    let index = state.add_blob(index.into_bytes(), INDEX);
    state.tag(repo, "v1", &index);
    (index, amd64_blobs, arm64_blobs)
}

async fn stored(pantry: &TestPantry, digest: &str) -> bool {
    pantry.pantry.proxy().store().blob(&digest.parse().unwrap()).await.is_some()
}

#[tokio::test]
async fn one_platform_behind_token_auth_then_nothing_again() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    registry.state.require_token("team/app");
    let (_, amd64, arm64) = two_platform_image(&registry, "team/app");
    let image: ImageRef = format!("{}/team/app:v1", registry.host()).parse().unwrap();
    let platform = Some(Platform::parse("linux/amd64").unwrap());
    let prefetcher = Prefetcher::new(pantry.pantry.proxy().clone(), platform, None);

    let first = prefetcher.image(&image, &Quiet).await.unwrap();
    assert_eq!((first.manifests, first.fetched, first.already), (2, 2, 0));
    assert!(registry.state.count("GET token") >= 1, "the token challenge was answered");
    for digest in &amd64 {
        assert!(stored(&pantry, digest).await, "{digest} of linux/amd64 is stored");
    }
    for digest in &arm64 {
        assert!(!stored(&pantry, digest).await, "{digest} of linux/arm64 is not");
    }
    let blob_gets = registry.state.count("GET blob");
    let again = prefetcher.image(&image, &Quiet).await.unwrap();
    assert_eq!(again, Summary { manifests: 2, fetched: 0, already: 2, bytes: 0 });
    assert_eq!(registry.state.count("GET blob"), blob_gets, "a second run fetches no blob");
}

#[tokio::test]
async fn every_platform_and_clients_then_hit() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    let (_, amd64, arm64) = two_platform_image(&registry, "app");
    let image: ImageRef = format!("{}/app:v1", registry.host()).parse().unwrap();
    let summary =
        Prefetcher::new(pantry.pantry.proxy().clone(), None, None).image(&image, &Quiet).await.unwrap();
    assert_eq!((summary.manifests, summary.fetched), (3, 4));
    let layer = &arm64[1];
    let (response, body) =
        request(&pantry, &registry.host(), Method::GET, &format!("/v2/app/blobs/{layer}"), &[]).await;
    assert_eq!(response.headers()["cache-status"], "pantry; hit");
    assert_eq!(body.unwrap().len(), 100_002);
    assert!(stored(&pantry, &amd64[1]).await);
}

#[tokio::test]
async fn a_missing_image_or_platform_is_a_clear_error() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    two_platform_image(&registry, "app");
    let proxy = pantry.pantry.proxy().clone();
    let missing: ImageRef = format!("{}/app:nope", registry.host()).parse().unwrap();
    let error = Prefetcher::new(proxy.clone(), None, None).image(&missing, &Quiet).await.unwrap_err();
    assert!(error.contains("404"), "{error}");
    let image: ImageRef = format!("{}/app:v1", registry.host()).parse().unwrap();
    let s390x = Some(Platform::parse("linux/s390x").unwrap());
    let error = Prefetcher::new(proxy, s390x, None).image(&image, &Quiet).await.unwrap_err();
    assert!(error.contains("no manifest for the requested platform"), "{error}");
}

#[tokio::test]
async fn configured_images_are_refreshed_at_start() {
    let registry = FakeRegistry::start().await;
    let (_, amd64, _) = two_platform_image(&registry, "app");
    let image: ImageRef = format!("{}/app:v1", registry.host()).parse().unwrap();
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.live.refresh = Some(Refresh {
            images: vec![image],
            every: Duration::from_secs(3600),
            platform: Some(Platform::parse("linux/amd64").unwrap()),
        });
    })
    .await;
    let warm = async {
        while !stored(&pantry, &amd64[1]).await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), warm).await.expect("the refresh warms the cache");
}

#[tokio::test]
async fn a_reload_that_shortens_the_refresh_interval_applies_at_once() {
    let registry = FakeRegistry::start().await;
    two_platform_image(&registry, "app");
    let image: ImageRef = format!("{}/app:v1", registry.host()).parse().unwrap();
    let refresh = |every| {
        Some(Refresh {
            images: vec![image.clone()],
            every,
            platform: Some(Platform::parse("linux/amd64").unwrap()),
        })
    };
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.live.tag_ttl = pantry::registry::tags::Ttl::For(Duration::ZERO); // each round asks for the tag
        c.live.refresh = refresh(Duration::from_secs(3600));
    })
    .await;
    // each round asks for the tag: a GET at first, a HEAD to revalidate it afterwards
    let rounds = || registry.state.count("GET manifest-tag") + registry.state.count("HEAD manifest-tag");
    let after = |n: usize| async move {
        while rounds() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), after(1)).await.expect("a round at start");
    let mut config = (*pantry.pantry.config()).clone();
    config.live.refresh = refresh(Duration::from_millis(100));
    pantry.pantry.reload(config.clone()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), after(3))
        .await
        .expect("rounds on the new interval, not an hour after the last one");
    config.live.refresh = None;
    pantry.pantry.reload(config).unwrap();
    let stopped = rounds();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rounds() <= stopped + 1, "a removed [refresh] stops (a round under way may finish)");
}

#[tokio::test]
async fn the_command_prints_a_summary_per_image() {
    let registry = FakeRegistry::start().await;
    two_platform_image(&registry, "app");
    let dir = tempfile::tempdir().unwrap();
    let (port, cdn) = (registry.addr.port(), registry.cdn.port());
    let cache_dir = dir.path().to_path_buf();
    let ca_file = registry.ca.ca_file.clone();
    let run = move |image: &str| {
        Command::new(env!("CARGO_BIN_EXE_pantry"))
            .args(["prefetch", "--platform", "linux/arm64", image])
            .arg("--cache-dir")
            .arg(&cache_dir)
            .args(["--resolve", &format!("registry.test:{port}:127.0.0.1,cdn.test:{cdn}:127.0.0.1")])
            .arg("--upstream-ca")
            .arg(&ca_file)
            .env_remove("PANTRY_CACHE_DIR")
            .output()
            .unwrap()
    };
    let image = format!("registry.test:{port}/app:v1");
    let output = tokio::task::spawn_blocking({
        let image = image.clone();
        move || (run(&image), run(&image), run("Not/A/Valid:Image"))
    })
    .await
    .unwrap();
    let text = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    let (first, second, bad) = output;
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains(&format!("{image}: 2 manifests, 2 blobs fetched")), "{}", text(&first));
    assert!(text(&second).contains("0 blobs fetched (0 B), 2 already cached"), "{}", text(&second));
    assert!(!bad.status.success() && text(&bad).contains("is not an image reference"), "{}", text(&bad));
}
