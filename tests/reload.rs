//! A configuration reload (SIGHUP) applies to new requests without dropping connections: an open
//! intercepted connection sees the new policy on its next request, a host added to the intercept
//! list is intercepted from its next CONNECT, and settings that need a restart are named.

mod common;

use common::{connect, intercepted, registry::FakeRegistry, start_pantry, tls, Sender, TestPantry};
use pantry::{
    config::{Config, HostPattern, ParentProxy, Startup},
    registry::policy::{Action, NamespaceRule},
};

/// Whether a CONNECT to `target` ends in TLS from pantry's CA (intercepted) rather than the upstream's.
async fn intercepts(pantry: &TestPantry, target: &str) -> bool {
    let (stream, head) = connect(pantry.addr, target, "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tls(stream, "cdn.test", pantry.roots(), &[b"http/1.1"]).await.is_ok()
}

#[tokio::test]
async fn reload_keeps_connections_and_changes_rules() {
    let registry = FakeRegistry::start().await;
    let cdn = format!("cdn.test:{}", registry.cdn.port());
    let mut before = Config::default();
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.live.intercept.retain(|p| !p.to_string().starts_with("cdn.test"));
        c.live.allow_ports = vec![registry.cdn.port()];
        before = c.clone();
    })
    .await;
    let host = registry.host();
    let blob = registry.state.add_blob(vec![5u8; 1000], "application/octet-stream");
    let stream = intercepted(&pantry, &host, &[b"http/1.1"]).await;
    let mut open = Sender::h1(stream).await;
    let (first, _) = open.get(&format!("/v2/team/app/blobs/{blob}"), &host).await;
    assert_eq!(first.status(), 200);
    assert!(!intercepts(&pantry, &cdn).await, "the CDN is tunnelled before the reload");

    let mut after = before.clone();
    after.live.repositories = vec![NamespaceRule::new("*", "team/*", Action::Deny, true)];
    after.live.intercept.push(HostPattern::parse(&cdn).unwrap());
    after.startup.max_size = 1024;
    let restart = pantry.pantry.reload(after);
    assert_eq!(restart, ["max_size"], "only the size cap needs a restart");

    let (second, _) = open.get(&format!("/v2/team/app/blobs/{blob}"), &host).await;
    assert_eq!(second.status(), 403, "the open connection follows the new policy");
    assert!(intercepts(&pantry, &cdn).await, "the CDN is intercepted after the reload");
}

/// `startup` with the restart-only setting `name` changed (credentials alone, for the parent proxy).
fn changed(startup: &Startup, name: &str) -> Startup {
    use pantry::config::{Destination, LogFormat, ParentRule, ResolveRule};
    use std::time::Duration;
    let mut s = startup.clone();
    let addr = Some("127.0.0.1:9".parse().unwrap());
    let longer = |d: Duration| d + Duration::from_secs(1);
    match name {
        "listen" => s.listen = "127.0.0.1:9".parse().unwrap(),
        "admin_listen" => s.admin_listen = addr,
        "transparent" => s.transparent = addr,
        "mirror_listen" => s.mirror_listen = addr,
        "cache_dir" => s.cache_dir.push("other"),
        "certs_dir" => s.certs_dir.push("other"),
        "upstream_ca" => s.upstream_ca.push("/etc/ssl/other.pem".into()),
        "resolve" => s.resolve.push(ResolveRule::parse("other.test:443:127.0.0.1").unwrap()),
        // only the password differs: the parent's redacted form is the same
        "upstream_proxy" => {
            s.upstream_proxy = Some(ParentProxy::parse("http://ci:new-secret@parent.test:3128").unwrap())
        }
        "upstream_proxy_for" => s.upstream_proxy_for.push(ParentRule::parse("*.corp.test=direct").unwrap()),
        "deny_destinations" => s.deny_destinations.push("203.0.113.0/24".parse().unwrap()),
        "allow_destinations" => s.allow_destinations.push(Destination::parse("pkg.test:8080").unwrap()),
        "log_format" => s.log_format = LogFormat::Json,
        "finish_abandoned_fetches" => s.finish_abandoned_fetches = !s.finish_abandoned_fetches,
        "max_size" => s.max_size += 1,
        "max_connections" => s.max_connections += 1,
        "upstream_connect_timeout" => s.upstream_connect_timeout = longer(s.upstream_connect_timeout),
        "upstream_response_timeout" => s.upstream_response_timeout = longer(s.upstream_response_timeout),
        "upstream_idle_timeout" => s.upstream_idle_timeout = longer(s.upstream_idle_timeout),
        "upstream_body_timeout" => s.upstream_body_timeout = longer(s.upstream_body_timeout),
        "upstream_min_rate" => s.upstream_min_rate += 1,
        other => panic!("no change written for the restart-only setting {other}"),
    }
    s
}

#[tokio::test]
async fn a_reload_names_every_changed_restart_only_setting_and_keeps_its_running_value() {
    let mut before = Config::default();
    let pantry = start_pantry(|c| {
        c.startup.upstream_proxy = Some(ParentProxy::parse("http://ci:old-secret@parent.test:3128").unwrap());
        before = c.clone();
    })
    .await;
    for &name in Startup::NAMES {
        let after = Config { startup: changed(&before.startup, name), ..before.clone() };
        assert_ne!(after.startup, before.startup, "{name} changed");
        assert_eq!(pantry.pantry.reload(after), [name], "{name} is the one named");
        assert_eq!(pantry.pantry.config().startup, before.startup, "{name} keeps its running value");
    }
}

#[tokio::test]
async fn a_reload_applies_upstream_credentials() {
    use common::login::Scheme;
    use std::os::unix::fs::PermissionsExt;
    let registry = FakeRegistry::start().await;
    let clock = pantry::clock::Clock::manual(1_700_000_000_000);
    registry.state.logins.require(Scheme::Basic, "ci", "reload-pw", 300, clock.clone(), &["private/app"]);
    let blob = registry.state.add_blob(vec![6u8; 1000], "application/octet-stream");
    let mut before = Config::default();
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.clock = clock.clone();
        before = c.clone();
    })
    .await;
    let (host, path) = (registry.host(), format!("/v2/private/app/blobs/{blob}"));
    let (refused, _) = common::request(&pantry, &host, http::Method::GET, &path, &[]).await;
    assert_eq!(refused.status(), 401, "no credentials yet");
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "reload-pw\n").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut after = before.clone();
    let source = pantry::config::SecretSource::Password {
        username: "ci".into(),
        password: pantry::config::PasswordFrom::File(password),
    };
    after.live.upstream_credentials = vec![pantry::config::CredentialEntry::new(&host, &[], source)];
    assert!(pantry.pantry.reload(after.clone()).is_empty(), "applied live");
    let (pulled, _) = common::request(&pantry, &host, http::Method::GET, &path, &[]).await;
    assert_eq!(pulled.status(), 200);
    assert!(pantry.pantry.reload(before).is_empty());
    let other = registry.state.add_blob(vec![7u8; 1000], "application/octet-stream");
    let (removed, _) =
        common::request(&pantry, &host, http::Method::GET, &format!("/v2/private/app/blobs/{other}"), &[])
            .await;
    assert_eq!(removed.status(), 401, "the entry is gone after the next reload");
}
