//! A configuration reload (SIGHUP) applies to new requests without dropping connections: an open
//! intercepted connection sees the new policy on its next request, a host added to the intercept
//! list is intercepted from its next CONNECT, and settings that need a restart are named.

mod common;

use common::{connect, intercepted, registry::FakeRegistry, start_pantry, tls, Sender, TestPantry};
use pantry::{
    config::{Config, HostPattern, Live, ParentProxy, Startup},
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
    let restart = pantry.pantry.reload(after).unwrap().restart;
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
        "fleet_listen" => s.fleet_listen = addr,
        "peers" => s.peers.push(pantry::config::member_url("https://node.test:3129").unwrap()),
        "peers_dns" => s.peers_dns = Some(pantry::config::PeersDns { name: "pantry.svc".into(), port: 3129 }),
        "shared_store" => {
            s.shared_store = Some(pantry::config::SharedStore {
                bucket: "pantry-fleet".into(),
                prefix: String::new(),
                endpoint: Some("http://127.0.0.1:9".into()),
                region: "us-east-1".into(),
                credentials: None,
            })
        }
        "advertise" => s.advertise = Some(pantry::config::member_url("https://node.test:3129").unwrap()),
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
        assert_eq!(pantry.pantry.reload(after).unwrap().restart, [name], "{name} is the one named");
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
    assert!(pantry.pantry.reload(after.clone()).unwrap().restart.is_empty(), "applied live");
    let (pulled, _) = common::request(&pantry, &host, http::Method::GET, &path, &[]).await;
    assert_eq!(pulled.status(), 200);
    assert!(pantry.pantry.reload(before).unwrap().restart.is_empty());
    let other = registry.state.add_blob(vec![7u8; 1000], "application/octet-stream");
    let (removed, _) =
        common::request(&pantry, &host, http::Method::GET, &format!("/v2/private/app/blobs/{other}"), &[])
            .await;
    assert_eq!(removed.status(), 401, "the entry is gone after the next reload");
}

/// A file only its owner may read, holding `text`.
fn private(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A self-signed certificate and its key, as files.
fn certificate(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap().self_signed(&key).unwrap();
    (
        private(dir, &format!("{name}.pem"), &cert.pem()),
        private(dir, &format!("{name}.key"), &key.serialize_pem()),
    )
}

/// `live` with the live setting `name` changed; files it names are written to `dir`.
fn changed_live(live: &Live, name: &str, dir: &std::path::Path) -> Live {
    use pantry::{
        config::{CredentialEntry, Destination, Mirror, PasswordFrom, Refresh, SecretSource},
        registry::{
            policy::{Action, PinRule},
            tags::{TagRule, Ttl},
        },
    };
    use std::time::Duration;
    let mut l = live.clone();
    let longer = |d: Duration| d + Duration::from_secs(1);
    match name {
        "allow_clients" => l.allow_clients.push("192.0.2.0/24".parse().unwrap()),
        "proxy_auth_file" => {
            let users = format!("ci:{}\n", bcrypt::hash("pw", 4).unwrap());
            l.proxy_auth_file = Some(private(dir, "htpasswd", &users));
        }
        "admin_token_file" => l.admin_token_file = Some(private(dir, "token", "s3cret\n")),
        "mirror_tls" => l.mirror_tls = !l.mirror_tls,
        "mirror_names" => l.mirror_names.push("mirror.test".into()),
        "mirror_default" => l.mirror_default = "registry.test:5000".into(),
        "mirror_cert" => l.mirror_cert = Some(certificate(dir, "mirror.test")),
        "intercept" => l.intercept.push(HostPattern::parse("other.test").unwrap()),
        "intercept_all" => l.intercept_all = !l.intercept_all,
        "http_cache" => l.http_cache = !l.http_cache,
        "insecure_registries" => l.insecure_registries.push(HostPattern::parse("plain.test:80").unwrap()),
        "verify_reads" => l.verify_reads = !l.verify_reads,
        "bypass" => l.bypass.push(Destination::parse(".corp.test").unwrap()),
        "pin" => l.pin.push(PinRule::parse("registry.test/base/*").unwrap()),
        "offline" => l.offline = !l.offline,
        "allow_ports" => l.allow_ports.push(8443),
        "mirror_allow_clients" => l.mirror_allow_clients.push("10.0.0.0/8".parse().unwrap()),
        "tunnel_idle_timeout" => l.tunnel_idle_timeout = longer(l.tunnel_idle_timeout),
        "client_header_timeout" => l.client_header_timeout = longer(l.client_header_timeout),
        "shutdown_grace" => l.shutdown_grace = longer(l.shutdown_grace),
        "tag_ttl" => l.tag_ttl = Ttl::Immutable,
        "tag_rules" => l.tag_rules.push(TagRule::new("*", "*", "stable", Ttl::For(Duration::from_secs(5)))),
        "repositories" => l.repositories.push(NamespaceRule::new("*", "secret/*", Action::Deny, false)),
        "mirrors" => l.mirrors.push(Mirror {
            registry: "registry.test:443".into(),
            target: pantry::target::Target::new(true, "mirror.test", 443).unwrap(),
            priority: 1,
        }),
        "refresh" => {
            let images = vec!["registry.test/team/app:v1".parse().unwrap()];
            l.refresh = Some(Refresh { images, every: Duration::from_secs(3600), platform: None })
        }
        "upstream_credentials" => {
            let password = PasswordFrom::File(private(dir, "registry-password", "pw\n"));
            let source = SecretSource::Password { username: "ci".into(), password };
            l.upstream_credentials.push(CredentialEntry::new("registry.test", &[], source));
        }
        "docker_config" => l.docker_config = Some(private(dir, "config.json", "{\"auths\":{}}")),
        other => panic!("no change written for the live setting {other}"),
    }
    l
}

#[tokio::test]
async fn a_reload_applies_every_live_setting_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut before = Config::default();
    let pantry = start_pantry(|c| before = c.clone()).await;
    for &name in Live::NAMES {
        let after = Config { live: changed_live(&before.live, name, dir.path()), ..before.clone() };
        let reloaded = pantry.pantry.reload(after.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((reloaded.applied, reloaded.restart), (vec![name], vec![]), "{name} is applied and named");
        assert_eq!(pantry.pantry.config().live, after.live, "{name} is in force");
        pantry.pantry.reload(before.clone()).unwrap();
    }
}

/// Sends one request head to `addr` and reads the answer's status line.
async fn status_of(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = common::raw_request(&mut stream, request.as_bytes()).await;
    head.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_reload_reads_the_files_its_settings_name_again_and_refuses_broken_ones() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("htpasswd");
    std::fs::write(&users, format!("old:{}\n", bcrypt::hash("old-pw", 4).unwrap())).unwrap();
    let token = private(dir.path(), "token", "first-token\n");
    let mut config = Config::default();
    let pantry = start_pantry(|c| {
        c.live.proxy_auth_file = Some(users.clone());
        c.live.admin_token_file = Some(token.clone());
        config = c.clone();
    })
    .await;
    let proxy_as = |user: &str| {
        let basic = base64::engine::general_purpose::STANDARD.encode(user);
        format!("GET http://closed.invalid/ HTTP/1.1\r\nHost: closed.invalid\r\nProxy-Authorization: Basic {basic}\r\n\r\n")
    };
    let status_with =
        |token: &str| format!("GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    assert!(status_of(pantry.addr, &proxy_as("old:old-pw")).await.contains(" 502"), "old user admitted");
    let first = status_of(pantry.addr, &status_with("first-token")).await;
    assert!(first.contains(" 200"), "{first}");

    // The same names, new contents: the files are read again.
    std::fs::write(&users, format!("new:{}\n", bcrypt::hash("new-pw", 4).unwrap())).unwrap();
    private(dir.path(), "token", "second-token\n");
    let reloaded = pantry.pantry.reload(config.clone()).unwrap();
    assert!(reloaded.applied.is_empty() && reloaded.restart.is_empty(), "{reloaded:?}");
    assert!(status_of(pantry.addr, &proxy_as("old:old-pw")).await.contains(" 407"), "old user gone");
    assert!(status_of(pantry.addr, &proxy_as("new:new-pw")).await.contains(" 502"), "new user admitted");
    assert!(status_of(pantry.addr, &status_with("first-token")).await.contains(" 401"), "old token gone");
    assert!(status_of(pantry.addr, &status_with("second-token")).await.contains(" 200"));

    // A broken file refuses the whole reload, other settings included.
    std::fs::write(&users, "new:not-a-bcrypt-hash\n").unwrap();
    let mut offline = config.clone();
    offline.live.offline = true;
    let refused = pantry.pantry.reload(offline).unwrap_err().to_string();
    assert!(refused.contains("proxy_auth_file") && refused.contains("bcrypt"), "{refused}");
    assert!(!pantry.pantry.config().live.offline, "nothing of the refused reload applies");
    assert!(status_of(pantry.addr, &proxy_as("new:new-pw")).await.contains(" 502"), "users kept");
    // A token file others may read is refused too (as at start).
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&users, format!("new:{}\n", bcrypt::hash("new-pw", 4).unwrap())).unwrap();
    let refused = pantry.pantry.reload(config).unwrap_err().to_string();
    assert!(refused.contains("admin_token_file") && refused.contains("chmod 600"), "{refused}");
}
