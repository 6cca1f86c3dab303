//! Namespace policy: repositories denied, passed through uncached, or closed to pushes.

mod common;

use common::{registry::FakeRegistry, request, start_pantry};
use http::Method;

#[tokio::test]
async fn namespace_rules_deny_pass_through_or_refuse_pushes() {
    use pantry::registry::policy::{Action, NamespaceRule};
    let registry = FakeRegistry::start().await;
    let host = registry.host();
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.live.repositories = vec![
            NamespaceRule::new("*", "secret/*", Action::Deny, false),
            NamespaceRule::new(&host, "ci/*", Action::Pass, true),
            NamespaceRule::new("*", "*", Action::Cache, false),
        ];
    })
    .await;
    let blob = registry.state.add_blob(vec![1u8; 1000], "application/octet-stream");
    let (denied, body) =
        request(&pantry, &host, Method::GET, &format!("/v2/secret/x/blobs/{blob}"), &[]).await;
    assert_eq!(denied.status(), 403);
    assert!(String::from_utf8_lossy(&body.unwrap()).contains("denied by policy"));
    for _ in 0..2 {
        let (passed, _) =
            request(&pantry, &host, Method::GET, &format!("/v2/ci/build/blobs/{blob}"), &[]).await;
        assert_eq!(passed.headers()["cache-status"], "pantry; fwd=uri-miss");
    }
    assert_eq!(registry.state.count("GET blob"), 2, "pass-through is never cached");
    let (push, _) = request(&pantry, &host, Method::POST, "/v2/ci/build/blobs/uploads/", &[]).await;
    assert_eq!(push.status(), 202);
    let (refused, _) = request(&pantry, &host, Method::POST, "/v2/app/blobs/uploads/", &[]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(registry.state.count("POST upload"), 1);
}
