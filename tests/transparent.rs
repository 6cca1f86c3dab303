//! Transparent mode across network namespaces the test creates: a client namespace with no proxy
//! settings at all, joined by a veth pair to a namespace where pantry and the upstreams run and the
//! example script (examples/transparent/, nftables or iptables) redirects the client's TCP to
//! pantry's transparent port. The client is curl. TLS to an intercepted host is served (and cached) by pantry, TLS to any other
//! host is tunnelled untouched, plain HTTP is forwarded by its Host header (on the redirected
//! port; a Host naming another port is refused by the port rule), and a connection to
//! pantry's own port (a loop) is refused. Needs root, `ip`, `nft`, `iptables` and curl; says so and passes without.

mod common;

use std::{
    future::Future,
    os::fd::AsFd,
    path::Path,
    process::{Command, Output},
    sync::atomic::{AtomicU8, Ordering},
};

use common::{registry::FakeRegistry, start_pantry, upstream::FakeUpstream};

/// Two namespaces and the veth between them; removed on drop.
struct Net {
    client: String,
    pantry: String,
    /// pantry's side of the veth, where the client believes its servers are.
    server_ip: String,
    /// The same side's IPv6 address.
    server_ip6: String,
}

impl Net {
    /// Creates the namespaces, or says why it cannot.
    fn create() -> Result<Self, String> {
        static NEXT: AtomicU8 = AtomicU8::new(1);
        if !Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n")) {
            return Err("creating network namespaces needs root".into());
        }
        for tool in ["ip", "nft", "iptables", "curl"] {
            if Command::new(tool).arg("-V").output().is_err()
                && Command::new(tool).arg("--version").output().is_err()
            {
                return Err(format!("{tool} is not installed"));
            }
        }
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}-{n}", std::process::id());
        let net = Self {
            client: format!("pantry-c-{tag}"),
            pantry: format!("pantry-p-{tag}"),
            server_ip: format!("10.77.{n}.1"),
            server_ip6: format!("fd77:{n}::1"),
        };
        let client_ip = format!("10.77.{n}.2/24");
        let server_cidr = format!("{}/24", net.server_ip);
        let (client_ip6, server_cidr6) = (format!("fd77:{n}::2/64"), format!("{}/64", net.server_ip6));
        let (c, p) = (net.client.as_str(), net.pantry.as_str());
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", c],
            vec!["netns", "add", p],
            vec!["-n", c, "link", "add", "veth-c", "type", "veth", "peer", "name", "veth-p", "netns", p],
            vec!["-n", c, "addr", "add", &client_ip, "dev", "veth-c"],
            vec!["-n", p, "addr", "add", &server_cidr, "dev", "veth-p"],
            vec!["-n", c, "addr", "add", &client_ip6, "dev", "veth-c", "nodad"],
            vec!["-n", p, "addr", "add", &server_cidr6, "dev", "veth-p", "nodad"],
            vec!["-n", c, "link", "set", "veth-c", "up"],
            vec!["-n", p, "link", "set", "veth-p", "up"],
            vec!["-n", c, "link", "set", "lo", "up"],
            vec!["-n", p, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let status = Command::new("ip").args(&step).status().map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("`ip {}` failed", step.join(" ")));
            }
        }
        Ok(net)
    }

    /// Runs `make` on a thread inside pantry's namespace (its sockets are created there).
    fn in_pantry_ns<F, Fut>(&self, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let ns = std::fs::File::open(format!("/var/run/netns/{}", self.pantry)).unwrap();
        let thread = std::thread::spawn(move || {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the namespace");
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(make());
        });
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.client, &self.pantry] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs examples/transparent/`script` `action` (up or down) in `pantry_ns`: TCP from the client
/// to `ports` goes to `port` (pantry's).
fn redirect(script: &str, action: &str, pantry_ns: &str, ports: &[u16], port: u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/transparent").join(script);
    let separator = if script.ends_with("nftables.sh") { ", " } else { "," };
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let output = Command::new("ip")
        .args(["netns", "exec", pantry_ns, "sh"])
        .arg(&script)
        .arg(action)
        .env("LAN_IF", "veth-p")
        .env("PORT", port.to_string())
        .env("PORTS", ports.join(separator))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} {action}: {stderr}", script.display());
}

/// curl in the client namespace, with no proxy in its environment.
async fn curl(client_ns: &str, args: &[&str]) -> Output {
    tokio::process::Command::new("ip")
        .args(["netns", "exec", client_ns, "curl", "--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .output()
        .await
        .unwrap()
}

fn write_pem(dir: &Path, name: &str, pem: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

#[test]
fn a_client_without_proxy_settings_is_served_through_an_nftables_redirect() {
    through("nftables.sh");
}

#[test]
fn a_client_without_proxy_settings_is_served_through_an_iptables_redirect() {
    through("iptables.sh");
}

/// Serves a client in its own namespace through the redirect `script` sets up.
fn through(script: &'static str) {
    let net = match Net::create() {
        Ok(net) => net,
        Err(reason) => return common::cannot_run(&reason),
    };
    let (client_ns, pantry_ns) = (net.client.clone(), net.pantry.clone());
    let (server_ip, server_ip6) = (net.server_ip.clone(), net.server_ip6.clone());
    net.in_pantry_ns(move || async move {
        let registry = FakeRegistry::start().await;
        let pantry = start_pantry(|c| {
            registry.configure(c);
            c.startup.transparent = Some("[::]:0".parse().unwrap()); // dual stack: IPv4 clients arrive mapped
            c.live.allow_clients =
                ["10.77.0.0/16", "fd77::/16", "127.0.0.0/8"].map(|n| n.parse().unwrap()).to_vec();
        })
        .await;
        let transparent = pantry.transparent.unwrap();
        let other = FakeUpstream::start(&format!("{server_ip}:0"), true).await;
        let plain = FakeUpstream::start(&format!("{server_ip}:0"), false).await;
        let plain6 = FakeUpstream::start(&format!("[{server_ip6}]:0"), false).await;
        let ports = [registry.addr.port(), other.port(), plain.port(), plain6.port(), transparent.port()];
        redirect(script, "up", &pantry_ns, &ports, transparent.port());
        let dir = pantry.dir.path();
        let pantry_ca = write_pem(dir, "pantry-ca.pem", pantry.pantry.authority().ca_pem());

        // TLS to an intercepted host: served by pantry, and cached.
        let blob = vec![42u8; 300_000];
        let digest = registry.state.add_blob(blob.clone(), "application/octet-stream");
        let port = registry.addr.port();
        let url = format!("https://registry.test:{port}/v2/app/blobs/{digest}");
        let resolve = format!("registry.test:{port}:{server_ip}");
        let out = dir.join("blob");
        for _ in 0..2 {
            let output = curl(
                &client_ns,
                &["--fail", "--cacert", &pantry_ca, "--resolve", &resolve, "-o", out.to_str().unwrap(), &url],
            )
            .await;
            assert!(output.status.success(), "intercepted pull: {}", String::from_utf8_lossy(&output.stderr));
            assert_eq!(std::fs::read(&out).unwrap(), blob);
        }
        assert_eq!(registry.state.count("GET blob"), 1, "the second pull cost no upstream blob bytes");

        // TLS to a host pantry does not intercept: tunnelled, the upstream's own certificate.
        let other_ca = write_pem(dir, "other-ca.pem", &other.ca.ca_pem);
        let url = format!("https://cdn.test:{}/echo", other.port());
        let resolve = format!("cdn.test:{}:{server_ip}", other.port());
        let output = curl(&client_ns, &["--fail", "--cacert", &other_ca, "--resolve", &resolve, &url]).await;
        assert!(output.status.success(), "tunnelled: {}", String::from_utf8_lossy(&output.stderr));
        let echoed = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            echoed.starts_with("GET ") && echoed.contains("/echo"),
            "reached the upstream itself: {echoed}"
        );

        // Plain HTTP: forwarded by its Host header.
        let url = format!("http://{server_ip}:{}/echo", plain.port());
        let output = curl(&client_ns, &["--fail", "--include", &url]).await;
        let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
        assert!(output.status.success(), "plain HTTP: {}", String::from_utf8_lossy(&output.stderr));
        assert!(text.contains("cache-status: pantry"), "answered through pantry: {text}");
        assert!(text.contains("get /echo"), "{text}");

        // A Host header naming another port than the one the kernel redirected: the port rule
        // holds here too (no relay to any port of any host through a redirected port 80).
        let url = format!("http://{server_ip}:{}/echo", plain.port());
        let elsewhere = format!("Host: {server_ip}:{}", other.port());
        let output = curl(&client_ns, &["--include", "-H", &elsewhere, &url]).await;
        let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
        assert!(text.starts_with("http/1.1 403") && text.contains("is not allowed"), "{text}");
        assert_eq!(plain.observed.requests.load(Ordering::SeqCst), 1, "nothing reached the redirected port");

        // The same over IPv6 (the original destination from IP6T_SO_ORIGINAL_DST).
        let url = format!("http://[{server_ip6}]:{}/echo", plain6.port());
        let output = curl(&client_ns, &["--fail", "--include", &url]).await;
        let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
        assert!(output.status.success(), "plain HTTP over IPv6: {}", String::from_utf8_lossy(&output.stderr));
        assert!(text.contains("cache-status: pantry") && text.contains("get /echo"), "{text}");
        assert_eq!(plain6.observed.requests.load(Ordering::SeqCst), 1);

        // pantry's own port: a loop, refused.
        let url = format!("http://{server_ip}:{}/healthz", transparent.port());
        let output = curl(&client_ns, &[&url]).await;
        assert!(!output.status.success(), "a redirect back to pantry is refused");
        assert_eq!(plain.observed.requests.load(Ordering::SeqCst), 1);

        // Torn down, the redirect is gone: the client reaches the upstream itself, not pantry.
        redirect(script, "down", &pantry_ns, &ports, transparent.port());
        let url = format!("http://{server_ip}:{}/echo", plain.port());
        let output = curl(&client_ns, &["--fail", "--include", &url]).await;
        let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
        assert!(output.status.success() && !text.contains("cache-status"), "straight to the origin: {text}");
        assert_eq!(plain.observed.requests.load(Ordering::SeqCst), 2);
    });
}
