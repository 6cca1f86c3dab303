//! Layering and validation: flag/env first, then the TOML file, then the embedded defaults; every
//! value is checked and every problem collected, so an invalid configuration is reported at once.

use std::path::Path;

use ipnet::IpNet;

use super::{
    file, Config, ConfigErrors, Destination, HostPattern, LogFormat, Mirror, ParentProxy, ParentRule,
    Refresh, ResolveRule, RunArgs,
};
use crate::{
    registry::{
        manifest::Platform,
        policy::{Action, NamespaceRule, PinRule},
        reference::{registry_glob, ImageRef},
        tags::{TagRule, Ttl},
    },
    target::Target,
};

/// A configuration file: how messages name it, its text and whether only its owner may read it
/// (inline secrets are accepted only then), or why it could not be read.
pub(super) type FileText = Result<(String, String, bool), String>;

/// The configuration `args` and the file (if any) give, or every problem found at once.
pub(super) fn layered(
    args: &RunArgs,
    file: Option<FileText>,
    check: impl FnOnce(&Config) -> Vec<String>,
) -> Result<Config, ConfigErrors> {
    let mut problems = Vec::new();
    let mut private = false;
    let file = match file {
        Some(Ok((source, text, owner_only))) => {
            private = owner_only;
            toml::from_str(&text).unwrap_or_else(|e| {
                problems.push(format!("{source}: {e}"));
                RunArgs::default()
            })
        }
        Some(Err(e)) => {
            problems.push(e);
            RunArgs::default()
        }
        None => RunArgs::default(),
    };
    let config = merge(args, file, private, &mut problems);
    problems.extend(check(&config));
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(problems))
    }
}

/// The configuration file at `path`, named as messages name it.
pub(super) fn read(path: &Path) -> FileText {
    let source = format!("config file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("{source}: {e}"))?;
    Ok((source, text, super::private_file(path).is_ok()))
}

/// Picks flag/env first, then file, then default, and validates each value.
fn merge(args: &RunArgs, file: RunArgs, private: bool, problems: &mut Vec<String>) -> Config {
    let given = args.clone().over(file);
    let mut config = Config::default();
    if let Some(listen) = given.listen {
        match listen.parse() {
            Ok(addr) => config.startup.listen = addr,
            Err(_) => problems.push(format!("listen: {listen:?} is not an address like 127.0.0.1:3128")),
        }
    }
    let nets = |key: &str, values: Vec<String>, problems: &mut Vec<String>| -> Vec<IpNet> {
        values
            .iter()
            .filter_map(|v| {
                let parsed = v.parse::<IpNet>().or_else(|_| v.parse::<std::net::IpAddr>().map(IpNet::from));
                parsed.map_err(|_| problems.push(format!("{key}: {v:?} is not a CIDR like 10.0.0.0/8"))).ok()
            })
            .collect()
    };
    if let Some(values) = given.allow_clients {
        config.live.allow_clients = nets("allow_clients", values, problems);
    }
    if let Some(values) = given.deny_destinations {
        config.startup.deny_destinations = nets("deny_destinations", values, problems);
    }
    if let Some(values) = given.mirror_allow_clients {
        config.live.mirror_allow_clients = nets("mirror_allow_clients", values, problems);
    }
    let allow = given.allow_destinations.unwrap_or_default();
    config.startup.allow_destinations = allow
        .iter()
        .filter_map(|p| {
            Destination::parse(p).map_err(|e| problems.push(format!("allow_destinations: {e}"))).ok()
        })
        .collect();
    config.live.proxy_auth_file = given.proxy_auth_file;
    config.live.admin_token_file = given.admin_token_file;
    if let Some(listen) = given.admin_listen {
        match listen.parse() {
            Ok(addr) => config.startup.admin_listen = Some(addr),
            Err(_) => {
                problems.push(format!("admin_listen: {listen:?} is not an address like 127.0.0.1:9090"))
            }
        }
    }
    if let Some(listen) = given.transparent {
        match listen.parse() {
            Ok(addr) => config.startup.transparent = Some(addr),
            Err(_) => problems.push(format!("transparent: {listen:?} is not an address like 0.0.0.0:3129")),
        }
    }
    if let Some(listen) = given.mirror_listen {
        match listen.parse() {
            Ok(addr) => config.startup.mirror_listen = Some(addr),
            Err(_) => {
                problems.push(format!("mirror_listen: {listen:?} is not an address like 127.0.0.1:5000"))
            }
        }
    }
    (config.startup.fleet_listen, config.startup.peers, config.startup.peers_dns, config.startup.advertise) =
        super::fleet::merge(given.fleet_listen, given.peers, given.peers_dns, given.advertise, problems);
    config.startup.shared_store = super::fleet::shared_store(
        given.shared_store,
        given.shared_store_endpoint,
        given.shared_store_region,
        given.shared_store_credentials,
        problems,
    );
    // Flags and environment win over the file in both directions (`PANTRY_OFFLINE=false` too).
    config.live.mirror_tls = given.mirror_tls.unwrap_or(false);
    config.live.mirror_names = match given.mirror_names {
        Some(names) => names.iter().map(|n| crate::target::bare(n.trim()).to_ascii_lowercase()).collect(),
        None => {
            let listen = config.startup.mirror_listen.map(|a| a.ip()).filter(|ip| !ip.is_unspecified());
            std::iter::once("localhost".to_string()).chain(listen.map(|ip| ip.to_string())).collect()
        }
    };
    for name in &config.live.mirror_names {
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/' || c == '*') {
            problems.push(format!("mirror_names: {name:?} is not a host name or address"));
        }
    }
    let cert = given.mirror_cert;
    let key = given.mirror_key;
    match (cert, key) {
        (Some(cert), Some(key)) => {
            config.live.mirror_tls = true;
            config.live.mirror_cert = Some((cert, key));
        }
        (None, None) => {}
        _ => problems.push("mirror_cert and mirror_key go together".into()),
    }
    if let Some(default) = given.mirror_default {
        let valid = format!("https://{default}/").parse::<http::Uri>().map_err(|e| e.to_string());
        match valid.and_then(|u| Target::from_absolute(&u)) {
            Ok(_) if !default.contains('/') => config.live.mirror_default = default.to_ascii_lowercase(),
            _ => problems.push(format!("mirror_default: {default:?} is not a registry host[:port]")),
        }
    }
    if let Some(dir) = given.cache_dir {
        config.startup.cache_dir = dir;
    }
    if let Some(dir) = given.certs_dir {
        config.startup.certs_dir = dir;
    }
    let intercept = given.intercept;
    if let Some(patterns) = intercept {
        config.live.intercept = patterns
            .iter()
            .filter_map(|p| HostPattern::parse(p).map_err(|e| problems.push(e)).ok())
            .collect();
    }
    config.live.intercept_all = given.intercept_all.unwrap_or(false);
    let insecure = given.insecure_registries.unwrap_or_default();
    // A plain-HTTP registry named without a port is on port 80 (not 443, as for intercept).
    let plain = |p: &String| match HostPattern::parse(p) {
        Ok(parsed) if parsed.port() == Some(443) && !p.trim().ends_with(":443") => {
            HostPattern::parse(&format!("{}:80", p.trim()))
        }
        parsed => parsed,
    };
    config.live.insecure_registries = insecure
        .iter()
        .filter_map(|p| plain(p).map_err(|e| problems.push(format!("insecure_registries: {e}"))).ok())
        .collect();
    let bypass = given.bypass.unwrap_or_default();
    config.live.bypass = bypass
        .iter()
        .filter_map(|p| Destination::parse(p).map_err(|e| problems.push(format!("bypass: {e}"))).ok())
        .collect();
    let rules = given.upstream_proxy_for.unwrap_or_default();
    config.startup.upstream_proxy_for =
        rules.iter().filter_map(|r| ParentRule::parse(r).map_err(|e| problems.push(e)).ok()).collect();
    config.startup.upstream_ca = given.upstream_ca.unwrap_or_default();
    for path in &config.startup.upstream_ca {
        if !path.is_file() {
            problems.push(format!("upstream_ca: {} is not a readable file", path.display()));
        }
    }
    let resolve = given.resolve.unwrap_or_default();
    config.startup.resolve =
        resolve.iter().filter_map(|r| ResolveRule::parse(r).map_err(|e| problems.push(e)).ok()).collect();
    if let Some(url) = given.upstream_proxy {
        match ParentProxy::parse(&url) {
            Ok(parent) => config.startup.upstream_proxy = Some(parent),
            Err(e) => problems.push(e),
        }
    }
    if let Some(size) = given.max_size {
        match size.parse::<bytesize::ByteSize>() {
            Ok(size) if size.as_u64() > 0 => config.startup.max_size = size.as_u64(),
            _ => problems.push(format!("max_size: {size:?} is not a size like 20GiB")),
        }
    }
    let pin = given.pin.unwrap_or_default();
    config.live.pin =
        pin.iter().filter_map(|p| PinRule::parse(p).map_err(|e| problems.push(e)).ok()).collect();
    if let Some(rate) = given.upstream_min_rate {
        match rate.trim_end_matches("/s").parse::<bytesize::ByteSize>() {
            Ok(rate) => config.startup.upstream_min_rate = rate.as_u64(),
            Err(_) => problems.push(format!("upstream_min_rate: {rate:?} is not a rate like 1KiB/s or 0")),
        }
    }
    config.live.offline = given.offline.unwrap_or(false);
    config.live.http_cache = given.http_cache.unwrap_or(true);
    config.live.verify_reads = given.verify_reads.unwrap_or(config.live.verify_reads);
    if let Some(format) = given.log_format {
        match format.as_str() {
            "text" => config.startup.log_format = LogFormat::Text,
            "json" => config.startup.log_format = LogFormat::Json,
            _ => problems.push(format!("log_format: {format:?} is neither text nor json")),
        }
    }
    config.live.allow_ports = given.allow_ports.unwrap_or_default();
    let durations = [
        ("tunnel_idle_timeout", given.tunnel_idle_timeout, &mut config.live.tunnel_idle_timeout),
        ("client_header_timeout", given.client_header_timeout, &mut config.live.client_header_timeout),
        (
            "upstream_connect_timeout",
            given.upstream_connect_timeout,
            &mut config.startup.upstream_connect_timeout,
        ),
        (
            "upstream_response_timeout",
            given.upstream_response_timeout,
            &mut config.startup.upstream_response_timeout,
        ),
        ("upstream_body_timeout", given.upstream_body_timeout, &mut config.startup.upstream_body_timeout),
        ("upstream_idle_timeout", given.upstream_idle_timeout, &mut config.startup.upstream_idle_timeout),
        ("shutdown_grace", given.shutdown_grace, &mut config.live.shutdown_grace),
    ];
    for (key, text, slot) in durations {
        if let Some(text) = text {
            match humantime::parse_duration(&text) {
                Ok(d) => *slot = d,
                Err(_) => problems.push(format!("{key}: {text:?} is not a duration like 30s or 10m")),
            }
        }
    }
    if let Some(ttl) = given.tag_ttl {
        match Ttl::parse(&ttl) {
            Ok(ttl) => config.live.tag_ttl = ttl,
            Err(e) => problems.push(format!("tag_ttl: {e}")),
        }
    }
    if let Some(rules) = given.tag_rules {
        config.live.tag_rules = rules
            .into_iter()
            .filter_map(|rule| {
                let ttl = Ttl::parse(&rule.ttl).map_err(|e| problems.push(format!("tag_rules: {e}"))).ok()?;
                let glob = |g: Option<String>| g.unwrap_or_else(|| "*".into());
                let registry = registry_glob(&glob(rule.registry));
                Some(TagRule::new(&registry, &glob(rule.repository), &glob(rule.tag), ttl))
            })
            .collect();
    }
    for rule in given.repositories.unwrap_or_default() {
        let action = Action::parse(rule.action.as_deref().unwrap_or("cache"));
        let action = action.map_err(|e| problems.push(format!("repositories: {e}"))).ok();
        let glob = |g: Option<String>| g.unwrap_or_else(|| "*".into());
        if let Some(action) = action {
            let push = rule.push.unwrap_or(true);
            config.live.repositories.push(NamespaceRule::new(
                &registry_glob(&glob(rule.registry)),
                &glob(rule.repository),
                action,
                push,
            ));
        }
    }
    for mirror in given.mirrors.unwrap_or_default() {
        let target = mirror
            .url
            .parse::<http::Uri>()
            .map_err(|e| e.to_string())
            .and_then(|u| Target::from_absolute(&u));
        let registry = HostPattern::parse(&mirror.registry).map(|p| p.to_string());
        match (target, registry) {
            (Ok(target), Ok(_)) => {
                let registry = registry_glob(&mirror.registry);
                config.live.mirrors.push(Mirror { registry, target, priority: mirror.priority.unwrap_or(0) });
            }
            (Err(e), _) => problems.push(format!("mirrors: url {:?}: {e}", mirror.url)),
            (_, Err(e)) => problems.push(format!("mirrors: {e}")),
        }
    }
    config.startup.finish_abandoned_fetches = given.finish_abandoned_fetches.unwrap_or(false);
    for entry in given.upstream_credentials.unwrap_or_default() {
        match entry.entry(private) {
            Ok(entry) => config.live.upstream_credentials.push(entry),
            Err(e) => problems.push(e),
        }
    }
    if let Some(path) = given.docker_config {
        if let Err(e) = super::private_file(&path) {
            problems.push(format!("docker_config: {e}"));
        }
        config.live.docker_config = Some(path);
    }
    if let Some(refresh) = given.refresh {
        config.live.refresh = refresh_from(refresh, problems);
    }
    if let Some(max) = given.max_connections {
        if max == 0 {
            problems.push("max_connections: must be at least 1".into());
        }
        config.startup.max_connections = max.max(1);
    }
    config
}

fn refresh_from(refresh: file::FileRefresh, problems: &mut Vec<String>) -> Option<Refresh> {
    let images: Vec<ImageRef> = refresh
        .images
        .iter()
        .filter_map(|i| i.parse().map_err(|e| problems.push(format!("refresh: {e}"))).ok())
        .collect();
    let every = humantime::parse_duration(refresh.every.as_deref().unwrap_or("1h"))
        .map_err(|_| problems.push(format!("refresh: every {:?} is not a duration like 1h", refresh.every)))
        .ok()
        .filter(|every| !every.is_zero());
    let platform = match refresh.platform.as_deref().map(Platform::parse).transpose() {
        Ok(platform) => platform,
        Err(e) => {
            problems.push(format!("refresh: {e}"));
            None
        }
    };
    Some(Refresh { images, every: every?, platform })
}
