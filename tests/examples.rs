//! Every file under `examples/` is parsed or checked here, so an example cannot rot unnoticed:
//! pantry configs load with pantry's own loader, JSON/YAML/TOML parse, the Grafana dashboard and
//! Prometheus rules name only metrics `src/metrics.rs` exports, `PANTRY_*` variables and
//! `pantry ...` command lines use real flags, systemd files have their sections, and a file of a
//! kind nothing checks fails the test. Fast, no network.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use clap::{Args, Parser};
use pantry::config::{Config, RunArgs};
use serde::Deserialize;
use serde_json::Value as Json;
use toml::Value as Toml;
use yaml_serde::Value as Yaml;

const METRICS_SOURCE: &str = include_str!("../src/metrics/mod.rs");
const MAIN_SOURCE: &str = include_str!("../src/main.rs");
const PREFETCH_SOURCE: &str = include_str!("../src/prefetch_command.rs");

/// `pantry run` as a parser of its own, to check command lines found in the examples.
#[derive(Parser, Debug)]
#[command(name = "pantry")]
struct Run {
    #[command(flatten)]
    args: RunArgs,
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// How a file under examples/ is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    PantryConfig,
    ContainerdHosts,
    ContainersToml,
    Json,
    Yaml,
    SystemdDropIn,
    SystemdUnit,
    Dockerfile,
    Markdown,
    Shell,
}

fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let parent = path.parent()?.file_name()?.to_str()?;
    match ext {
        "md" => Some(Kind::Markdown),
        "sh" => Some(Kind::Shell),
        "json" => Some(Kind::Json),
        "yaml" | "yml" => Some(Kind::Yaml),
        "toml" if name.starts_with("pantry") => Some(Kind::PantryConfig),
        "toml" if name == "hosts.toml" => Some(Kind::ContainerdHosts),
        "conf" if parent == "podman" => Some(Kind::ContainersToml),
        "conf" => Some(Kind::SystemdDropIn),
        "service" => Some(Kind::SystemdUnit),
        _ if name == "Dockerfile" => Some(Kind::Dockerfile),
        _ => None,
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn all_examples() -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(&examples_dir(), &mut files);
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rel(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).display().to_string()
}

#[test]
fn every_example_is_of_a_checked_kind() {
    let files = all_examples();
    let unchecked: Vec<String> = files.iter().filter(|p| kind_of(p).is_none()).map(|p| rel(p)).collect();
    assert!(
        unchecked.is_empty(),
        "examples no test checks (teach tests/examples.rs their kind): {unchecked:?}"
    );
    let kinds: BTreeSet<Kind> = files.iter().filter_map(|p| kind_of(p)).collect();
    for kind in [
        Kind::PantryConfig,
        Kind::ContainerdHosts,
        Kind::ContainersToml,
        Kind::Json,
        Kind::Yaml,
        Kind::SystemdDropIn,
        Kind::SystemdUnit,
    ] {
        assert!(kinds.contains(&kind), "no example of kind {kind:?} found: is the walk broken?");
    }
}

fn of_kind(kind: Kind) -> Vec<PathBuf> {
    all_examples().into_iter().filter(|p| kind_of(p) == Some(kind)).collect()
}

fn load(path: &Path) -> Config {
    let args = RunArgs { config: Some(path.to_path_buf()), ..RunArgs::default() };
    pantry::configuration(&args).map(|c| c.config).unwrap_or_else(|e| panic!("{}: {e}", rel(path)))
}

#[test]
fn shell_scripts_parse_and_say_how_to_use_them() {
    let files = of_kind(Kind::Shell);
    assert!(files.len() >= 3, "{files:?}");
    for path in &files {
        // parsed by the shell their first line names
        let text = std::fs::read_to_string(path).unwrap();
        let shell = if text.starts_with("#!/usr/bin/env bash") || text.starts_with("#!/bin/bash") {
            "bash"
        } else {
            "sh"
        };
        let check = std::process::Command::new(shell).arg("-n").arg(path).output().unwrap();
        assert!(check.status.success(), "{}: {}", rel(path), String::from_utf8_lossy(&check.stderr));
        // `--help` changes nothing and prints how to use the script
        let usage = std::process::Command::new(shell).arg(path).arg("--help").output().unwrap();
        let said =
            format!("{}{}", String::from_utf8_lossy(&usage.stdout), String::from_utf8_lossy(&usage.stderr));
        assert!(
            matches!(usage.status.code(), Some(0 | 2)),
            "{}: --help exited {:?}",
            rel(path),
            usage.status
        );
        assert!(said.contains("usage:"), "{}: {said}", rel(path));
        if shell == "sh" {
            let bare = std::process::Command::new(shell).arg(path).output().unwrap();
            assert_eq!(
                bare.status.code(),
                Some(2),
                "{}: without up/down it only prints its usage",
                rel(path)
            );
        }
    }
}

#[test]
fn pantry_configs_load_with_pantrys_own_loader() {
    let files = of_kind(Kind::PantryConfig);
    assert!(files.len() >= 4, "{files:?}");
    for path in &files {
        load(path);
    }
    let offline = load(&examples_dir().join("pantry-offline.toml"));
    assert!(offline.live.offline);
    let egress = load(&examples_dir().join("pantry-egress.toml"));
    assert!(egress.startup.upstream_proxy.is_some());
    assert!(egress.intercepts("registry.corp.example", 5000));
    assert!(!egress.intercepts("login.corp.example", 443), "bypassed");
    assert_eq!(egress.startup.upstream_proxy_for.len(), 3);
    let ci = load(&examples_dir().join("pantry-ci.toml"));
    assert!(ci.live.refresh.is_some() && !ci.live.pin.is_empty() && ci.startup.mirror_listen.is_some());
    assert!(ci.startup.max_size > Config::default().startup.max_size);
}

fn toml_file(path: &Path) -> Toml {
    toml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", rel(path)))
}

/// A containerd hosts.toml: `server`, and mirrors usable for pulls by tag.
fn check_hosts_toml(what: &str, text: &str) {
    let value: Toml = toml::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    let server = value.get("server").and_then(Toml::as_str).unwrap_or_else(|| panic!("{what}: no server"));
    assert!(server.starts_with("https://"), "{what}: server {server}");
    let hosts = value.get("host").and_then(Toml::as_table).unwrap_or_else(|| panic!("{what}: no [host]"));
    assert!(!hosts.is_empty(), "{what}: no [host.\"...\"]");
    for (url, host) in hosts {
        assert!(url.starts_with("http://") || url.starts_with("https://"), "{what}: host {url}");
        let capabilities: Vec<&str> = host
            .get("capabilities")
            .and_then(Toml::as_array)
            .unwrap_or_else(|| panic!("{what}: {url} has no capabilities"))
            .iter()
            .filter_map(Toml::as_str)
            .collect();
        assert!(capabilities.contains(&"pull") && capabilities.contains(&"resolve"), "{what}: {url}");
    }
}

#[test]
fn containerd_hosts_files_parse() {
    let files = of_kind(Kind::ContainerdHosts);
    assert!(files.len() >= 2, "{files:?}");
    for path in &files {
        assert_eq!(
            path.parent().and_then(|p| p.parent()).and_then(|p| p.file_name()),
            Some("certs.d".as_ref()),
            "{}: hosts.toml belongs in certs.d/<registry>/",
            rel(path)
        );
        check_hosts_toml(&rel(path), &read(path));
    }
}

#[test]
fn containers_conf_files_parse() {
    for path in of_kind(Kind::ContainersToml) {
        let value = toml_file(&path);
        match path.file_name().and_then(|n| n.to_str()) {
            Some("registries.conf") => {
                let registries = value.get("registry").and_then(Toml::as_array);
                let registries = registries.unwrap_or_else(|| panic!("{}: no [[registry]]", rel(&path)));
                assert!(
                    registries.iter().any(|r| r.get("mirror").and_then(Toml::as_array).is_some()),
                    "{}: no [[registry.mirror]]",
                    rel(&path)
                );
            }
            Some("containers.conf") => {
                let env = value.get("engine").and_then(|e| e.get("env")).and_then(Toml::as_array);
                let env = env.unwrap_or_else(|| panic!("{}: no [engine] env", rel(&path)));
                assert!(env.iter().filter_map(Toml::as_str).any(|e| e.starts_with("HTTPS_PROXY=http://")));
            }
            other => panic!("{}: unknown containers config {other:?}", rel(&path)),
        }
    }
}

/// The metric names `src/metrics.rs` registers: its `"pantry_…"` string literals.
fn exported_metrics() -> BTreeSet<String> {
    let names: BTreeSet<String> = words(METRICS_SOURCE, "pantry_", |c| c.is_ascii_lowercase() || c == '_')
        .into_iter()
        .filter(|(name, at)| {
            let before = METRICS_SOURCE[..*at].ends_with('"');
            let after = METRICS_SOURCE[at + name.len()..].starts_with('"');
            before && after
        })
        .map(|(name, _)| name)
        .collect();
    assert!(names.len() >= 10, "too few metric names found in src/metrics.rs: {names:?}");
    names
}

/// Words starting with `prefix` at a word boundary, continued by `more`, with their offsets.
fn words(text: &str, prefix: &str, more: impl Fn(char) -> bool) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let boundary =
            text[..at].chars().next_back().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if !boundary {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        let len = rest.find(|c: char| !more(c)).unwrap_or(rest.len());
        let word = format!("{prefix}{}", &rest[..len]);
        let word = word.trim_end_matches('_');
        if word.len() > prefix.trim_end_matches('_').len() {
            found.push((word.to_string(), at));
        }
    }
    found
}

/// The `pantry_…` metric names an expression or text mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    words(text, "pantry_", |c| c.is_ascii_lowercase() || c == '_').into_iter().map(|(w, _)| w).collect()
}

/// Whether `name` is exported, allowing Prometheus' histogram/summary series suffixes.
fn is_exported(name: &str, exported: &BTreeSet<String>) -> bool {
    exported.contains(name)
        || ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| name.strip_suffix(s).is_some_and(|base| exported.contains(base)))
}

#[test]
fn examples_name_only_metrics_pantry_exports() {
    let exported = exported_metrics();
    for path in all_examples() {
        for name in metric_names(&read(&path)) {
            assert!(
                is_exported(&name, &exported),
                "{}: {name} is not in src/metrics.rs ({exported:?})",
                rel(&path)
            );
        }
    }
}

fn collect_strings<'a>(value: &'a Json, key: &str, out: &mut Vec<&'a str>) {
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                match v {
                    Json::String(s) if k == key => out.push(s),
                    _ => collect_strings(v, key, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|v| collect_strings(v, key, out)),
        _ => {}
    }
}

fn check_dashboard(path: &Path, dashboard: &Json) {
    let exported = exported_metrics();
    let schema =
        dashboard["schemaVersion"].as_u64().unwrap_or_else(|| panic!("{}: schemaVersion", rel(path)));
    assert!((36..=41).contains(&schema), "{}: schemaVersion {schema}", rel(path));
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string(), "{}", rel(path));
    let panels = dashboard["panels"].as_array().unwrap_or_else(|| panic!("{}: no panels", rel(path)));
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "{}: panel ids must be unique", rel(path));
    let mut exprs = Vec::new();
    collect_strings(dashboard, "expr", &mut exprs);
    assert!(exprs.len() >= panels.len(), "{}: a panel without a query", rel(path));
    let mut used = BTreeSet::new();
    for expr in exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{}: query names no pantry metric: {expr}", rel(path));
        for name in names {
            assert!(is_exported(&name, &exported), "{}: {name} in {expr}", rel(path));
            used.insert(name);
        }
    }
    let missing: Vec<&String> = exported.iter().filter(|m| !used.contains(*m)).collect();
    assert!(missing.is_empty(), "{}: the dashboard shows no panel for {missing:?}", rel(path));
}

#[test]
fn json_examples_parse() {
    let files = of_kind(Kind::Json);
    assert!(files.len() >= 3, "{files:?}");
    for path in &files {
        let value: Json = serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", rel(path)));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(proxies) = value.get("proxies") {
            let proxies = proxies.as_object().unwrap_or_else(|| panic!("{}: proxies", rel(path)));
            for (key, url) in proxies {
                assert!(
                    ["http-proxy", "https-proxy", "no-proxy"].contains(&key.as_str()),
                    "{}: {key}",
                    rel(path)
                );
                assert!(url.is_string(), "{}: {key}", rel(path));
            }
            assert!(
                proxies["https-proxy"].as_str().is_some_and(|u| u.starts_with("http://")),
                "{}",
                rel(path)
            );
        }
        if let Some(mirrors) = value.get("registry-mirrors") {
            let mirrors = mirrors.as_array().unwrap_or_else(|| panic!("{}: registry-mirrors", rel(path)));
            assert!(!mirrors.is_empty());
            for url in mirrors {
                let url = url.as_str().unwrap_or_default();
                assert!(url.starts_with("http://") || url.starts_with("https://"), "{}: {url}", rel(path));
            }
        }
        if path.parent().and_then(|p| p.file_name()) == Some("grafana".as_ref()) {
            check_dashboard(path, &value);
        } else if name.starts_with("daemon") {
            assert!(
                value.get("proxies").is_some() || value.get("registry-mirrors").is_some(),
                "{}",
                rel(path)
            );
        }
    }
}

fn yaml_documents(path: &Path) -> Vec<Yaml> {
    let text = read(path);
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| Yaml::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", rel(path))))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn ystr<'a>(value: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(*key))?.as_str()
}

/// `pantry run ARGS...` parsed with pantry's own flags.
fn parse_run(what: &str, args: &[String]) -> RunArgs {
    let argv = std::iter::once("pantry").chain(args.iter().map(String::as_str));
    Run::try_parse_from(argv).unwrap_or_else(|e| panic!("{what}: `pantry run {}`: {e}", args.join(" "))).args
}

/// A pantry.toml embedded in a manifest, loaded from a temporary file.
fn load_embedded(what: &str, text: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pantry.toml");
    std::fs::write(&path, text).unwrap();
    let args = RunArgs { config: Some(path), ..RunArgs::default() };
    pantry::configuration(&args).map(|c| c.config).unwrap_or_else(|e| panic!("{what}: pantry.toml: {e}"))
}

fn check_kubernetes(path: &Path, docs: &[Yaml]) {
    let what = rel(path);
    let mut container_ports = BTreeSet::new();
    let mut service_ports = Vec::new();
    for doc in docs {
        let kind = ystr(doc, &["kind"]).unwrap_or_else(|| panic!("{what}: a document without kind"));
        assert!(ystr(doc, &["apiVersion"]).is_some(), "{what}: {kind} without apiVersion");
        let name = ystr(doc, &["metadata", "name"]).unwrap_or_else(|| panic!("{what}: {kind} without name"));
        if kind != "Namespace" {
            assert_eq!(ystr(doc, &["metadata", "namespace"]), Some("pantry"), "{what}: {kind} {name}");
        }
        match kind {
            "ConfigMap" => {
                let data =
                    doc.get("data").and_then(Yaml::as_mapping).unwrap_or_else(|| panic!("{what}: {name}"));
                for (key, value) in data {
                    let (key, value) = (key.as_str().unwrap(), value.as_str().unwrap());
                    if key.ends_with(".json") {
                        serde_json::from_str::<Json>(value)
                            .unwrap_or_else(|e| panic!("{what}: {name}/{key}: {e}"));
                    } else if key == "pantry.toml" {
                        let config = load_embedded(&what, value);
                        assert!(
                            !config.startup.listen.ip().is_loopback(),
                            "{what}: pantry must listen beyond the pod"
                        );
                    } else {
                        check_hosts_toml(&format!("{what}: {name}/{key}"), value);
                    }
                }
            }
            "Deployment" | "DaemonSet" | "StatefulSet" => {
                let spec = doc.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("spec"));
                let spec = spec.unwrap_or_else(|| panic!("{what}: {name} has no pod template"));
                let containers = spec.get("containers").and_then(Yaml::as_sequence).unwrap();
                for container in containers {
                    for port in container.get("ports").and_then(Yaml::as_sequence).into_iter().flatten() {
                        container_ports.insert(ystr(port, &["name"]).unwrap().to_string());
                    }
                    if !ystr(container, &["image"]).is_some_and(|i| i.starts_with("pantry")) {
                        continue;
                    }
                    let args: Vec<String> = container
                        .get("args")
                        .and_then(Yaml::as_sequence)
                        .unwrap_or_else(|| panic!("{what}: pantry container without args"))
                        .iter()
                        .map(|a| a.as_str().unwrap().to_string())
                        .collect();
                    assert_eq!(args.first().map(String::as_str), Some("run"), "{what}");
                    let run = parse_run(&what, &args[1..]);
                    assert!(run.config.is_some(), "{what}: pantry runs without --config");
                    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                        if let Some(probe) = container.get(probe) {
                            assert_eq!(ystr(probe, &["httpGet", "path"]), Some("/healthz"), "{what}");
                        }
                    }
                    assert!(container.get("resources").and_then(|r| r.get("limits")).is_some(), "{what}");
                }
            }
            "Service" => {
                let ports = doc.get("spec").and_then(|s| s.get("ports")).and_then(Yaml::as_sequence).unwrap();
                for port in ports {
                    service_ports.push(ystr(port, &["targetPort"]).unwrap_or_default().to_string());
                }
            }
            _ => {}
        }
    }
    for port in service_ports {
        assert!(container_ports.contains(&port), "{what}: Service targets port {port:?} no container has");
    }
}

#[test]
fn yaml_examples_parse() {
    let files = of_kind(Kind::Yaml);
    assert!(files.len() >= 3, "{files:?}");
    for path in &files {
        let docs = yaml_documents(path);
        assert!(!docs.is_empty(), "{}: no document", rel(path));
        let dir = path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
        match dir {
            "kubernetes" | "fleet" => check_kubernetes(path, &docs),
            "prometheus" => {
                for doc in &docs {
                    for job in doc.get("scrape_configs").and_then(Yaml::as_sequence).into_iter().flatten() {
                        assert_eq!(ystr(job, &["metrics_path"]), Some("/metrics"), "{}", rel(path));
                    }
                    for group in doc.get("groups").and_then(Yaml::as_sequence).into_iter().flatten() {
                        let rules = group.get("rules").and_then(Yaml::as_sequence).unwrap();
                        assert!(rules.iter().all(|r| ystr(r, &["expr"]).is_some()), "{}", rel(path));
                    }
                }
            }
            other => panic!("{}: YAML in {other:?}, which no check knows", rel(path)),
        }
    }
}

/// `KEY=VALUE` settings of a section of a systemd file, in order.
fn systemd_settings(text: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut settings = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            current = line.to_string();
        } else if current == section {
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not KEY=VALUE: {line}"));
            settings.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    settings
}

#[test]
fn systemd_files_have_their_sections() {
    for path in of_kind(Kind::SystemdDropIn) {
        let text = read(&path);
        let settings = systemd_settings(&text, "[Service]");
        assert!(
            settings.iter().any(|(k, v)| k == "Environment" && v.contains("HTTPS_PROXY=http://")),
            "{}: a [Service] drop-in with Environment=HTTPS_PROXY",
            rel(&path)
        );
    }
    let units = of_kind(Kind::SystemdUnit);
    assert!(!units.is_empty());
    for path in units {
        let text = read(&path);
        for section in ["[Unit]", "[Service]", "[Install]"] {
            assert!(text.lines().any(|l| l.trim() == section), "{}: no {section}", rel(&path));
        }
        let service = systemd_settings(&text, "[Service]");
        let exec = service.iter().find(|(k, _)| k == "ExecStart").map(|(_, v)| v);
        let exec = exec.unwrap_or_else(|| panic!("{}: no ExecStart", rel(&path)));
        let argv: Vec<String> = exec.split_whitespace().map(String::from).collect();
        assert!(argv[0].ends_with("/pantry") && argv[1] == "run", "{}: {exec}", rel(&path));
        let run = parse_run(&rel(&path), &argv[2..]);
        assert!(run.config.is_some(), "{}: no --config", rel(&path));
        let set = |key: &str, value: &str| service.iter().any(|(k, v)| k == key && v == value);
        assert!(set("DynamicUser", "yes") && set("StateDirectory", "pantry"), "{}", rel(&path));
        // What pantry writes (cache, CA) must be inside its StateDirectory.
        for (key, value) in &service {
            if let Some(dir) =
                value.strip_prefix("PANTRY_CACHE_DIR=").or(value.strip_prefix("PANTRY_CERTS_DIR="))
            {
                assert!(
                    key == "Environment" && dir.starts_with("/var/lib/pantry/"),
                    "{}: {value}",
                    rel(&path)
                );
            }
        }
    }
}

#[test]
fn dockerfile_runs_pantry_with_real_flags() {
    for path in all_examples().into_iter().filter(|p| kind_of(p) == Some(Kind::Dockerfile)) {
        let text = read(&path);
        let instruction = |name: &str| -> Vec<String> {
            let line = text
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{}: {name}", rel(&path)));
            serde_json::from_str(line[name.len()..].trim())
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", rel(&path)))
        };
        assert_eq!(instruction("ENTRYPOINT"), ["/usr/local/bin/pantry"]);
        let cmd = instruction("CMD");
        assert_eq!(cmd[0], "run");
        parse_run(&rel(&path), &cmd[1..]);
        // The build stage copies everything `cargo build` needs: the manifest, the lock file, the
        // build script (`pantry --version` is compiled from its output) and the sources.
        let copied: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("COPY "))
            .filter(|l| !l.starts_with("--from"))
            .flat_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words[..words.len().saturating_sub(1)].to_vec()
            })
            .collect();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for needed in ["Cargo.toml", "Cargo.lock", "build.rs", "src"] {
            assert!(root.join(needed).exists(), "{needed} is no longer in the repository");
            assert!(copied.contains(needed), "{}: the build stage does not copy {needed}", rel(&path));
        }
    }
}

/// The `PANTRY_*` variables pantry reads: each flag's, plus the log filter and prefetch's user.
fn pantry_env_vars() -> BTreeSet<String> {
    let command = RunArgs::augment_args(clap::Command::new("pantry"));
    let mut vars: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    for (var, source) in [("PANTRY_LOG", MAIN_SOURCE), ("PANTRY_PREFETCH_USER", PREFETCH_SOURCE)] {
        assert!(source.contains(&format!("\"{var}\"")), "{var} is no longer read by pantry");
        vars.insert(var.to_string());
    }
    vars
}

#[test]
fn examples_use_only_real_variables_and_flags() {
    let vars = pantry_env_vars();
    let command = RunArgs::augment_args(clap::Command::new("pantry"));
    let mut flags: BTreeSet<String> =
        command.get_arguments().filter_map(|a| a.get_long()).map(String::from).collect();
    // `pantry prefetch`'s own flags (src/prefetch_command.rs).
    for flag in ["platform", "user"] {
        assert!(PREFETCH_SOURCE.contains(&format!("    {flag}: Option<")), "prefetch has no --{flag}");
        flags.insert(flag.to_string());
    }
    for path in all_examples() {
        let text = read(&path);
        for (var, _) in words(&text, "PANTRY_", |c| c.is_ascii_uppercase() || c == '_') {
            assert!(vars.contains(&var), "{}: pantry reads no {var}", rel(&path));
        }
        for line in text.lines() {
            let Some(at) = ["pantry run", "pantry prefetch", "pantry cache", "pantry ca "]
                .iter()
                .filter_map(|c| line.find(c))
                .min()
            else {
                continue;
            };
            for (flag, _) in words(&line[at..], "--", |c| c.is_ascii_lowercase() || c == '-') {
                let flag = flag.trim_start_matches('-').trim_end_matches('-');
                if !flag.is_empty() {
                    assert!(flags.contains(flag), "{}: pantry has no --{flag}: {line}", rel(&path));
                }
            }
        }
    }
}
