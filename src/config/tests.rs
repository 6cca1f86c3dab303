//! The configuration's loading, layering and rules, end to end.

use std::path::{Path, PathBuf};

use super::*;

#[test]
fn defaults_without_any_input() {
    let config = Config::load(&RunArgs::default()).unwrap();
    assert_eq!(config.startup.listen.to_string(), "127.0.0.1:3128");
    assert!(config.intercepts("ghcr.io", 443));
    assert!(!config.intercepts("example.com", 443));
    let target = |https, host: &str, port| crate::target::Target::new(https, host, port).unwrap();
    assert!(config.refuses_port(&target(true, "ghcr.io", 443)).is_none());
    assert!(config.refuses_port(&target(true, "example.com", 22)).is_some());
    assert!(config.refuses_port(&target(false, "example.com", 80)).is_none(), "80 in cleartext");
    assert!(config.refuses_port(&target(true, "example.com", 80)).is_some(), "80 is not a TLS port");
    assert!(config
        .startup
        .denied_destinations()
        .iter()
        .any(|n| n.contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap())));
}

#[test]
fn denied_destinations_add_to_the_built_in_ones_and_named_ports_open() {
    let args = RunArgs {
        deny_destinations: Some(vec!["203.0.113.0/24".into()]),
        allow_destinations: Some(vec!["pkg.test:8080".into()]),
        resolve: Some(vec!["registry.test:5000:127.0.0.1".into()]),
        ..RunArgs::default()
    };
    let config = Config::load(&args).unwrap();
    let denied = config.startup.denied_destinations();
    for ip in ["203.0.113.9", "169.254.169.254", "127.0.0.1", "::1", "0.0.0.0"] {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        assert!(denied.iter().any(|n| n.contains(&ip)), "{ip} stays denied");
    }
    let target = |host: &str, port| crate::target::Target::new(false, host, port).unwrap();
    assert!(config.refuses_port(&target("pkg.test", 8080)).is_none(), "allow_destinations with a port");
    assert!(config.refuses_port(&target("other.test", 8080)).is_some(), "only for that host");
    assert!(config.refuses_port(&target("registry.test", 5000)).is_none(), "a --resolve rule's port");
}

#[test]
fn flags_win_over_file_and_every_problem_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pantry.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:1\"\ncache_dir = \"/file/cache\"\nmax_size = \"lots\"\n\
         log_format = \"xml\"\nintercept = [\"registry.test:5000\"]\n",
    )
    .unwrap();
    let args = RunArgs {
        config: Some(path.clone()),
        listen: Some("127.0.0.1:2".into()),
        resolve: Some(vec!["bad".into()]),
        ..RunArgs::default()
    };
    let errors = Config::load(&args).unwrap_err().0;
    assert_eq!(errors.len(), 3, "{errors:?}");
    std::fs::write(&path, "listen = \"127.0.0.1:1\"\ncache_dir = \"/file/cache\"\n").unwrap();
    let config = Config::load(&args_without_resolve(&args)).unwrap();
    assert_eq!(config.startup.listen.port(), 2);
    assert_eq!(config.startup.cache_dir, PathBuf::from("/file/cache"));
}

#[test]
fn flags_and_environment_turn_a_file_s_boolean_off_too() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pantry.toml");
    std::fs::write(&path, "offline = true\nintercept_all = true\n").unwrap();
    let parse = |flags: &[&str]| {
        let mut argv = vec!["pantry", "--config", path.to_str().unwrap()];
        argv.extend_from_slice(flags);
        Config::load(&<Cli as clap::Parser>::try_parse_from(argv).unwrap().run).unwrap()
    };
    let from_file = parse(&[]);
    assert!(from_file.live.offline && from_file.live.intercept_all);
    let overridden = parse(&["--offline=false", "--intercept-all=no"]);
    assert!(!overridden.live.offline && !overridden.live.intercept_all, "false on the command line wins");
    assert!(parse(&["--offline"]).live.offline, "a bare flag still means true");
    let file = "upstream_body_timeout = \"5m\"\nhttp_cache = true\nallow_ports = [8443]\noffline = true\n";
    std::fs::write(&path, file).unwrap();
    let flagged = parse(&["--upstream-body-timeout=5s", "--http-cache=false", "--allow-ports=9443,9444"]);
    assert_eq!(
        flagged.startup.upstream_body_timeout,
        std::time::Duration::from_secs(5),
        "once declared, a flag too"
    );
    assert!(!flagged.live.http_cache && flagged.live.allow_ports == [9443, 9444]);
    let args = RunArgs { config: Some(path.clone()), offline: Some(false), ..RunArgs::default() };
    assert!(!Config::load(&args).unwrap().live.offline, "PANTRY_OFFLINE=false arrives as Some(false)");
}

fn args_without_resolve(args: &RunArgs) -> RunArgs {
    RunArgs { resolve: None, ..args.clone() }
}

#[test]
fn the_example_configuration_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pantry.toml");
    let config = Config::load(&RunArgs { config: Some(path), ..RunArgs::default() }).unwrap();
    assert_eq!(config.live.tag_rules.len(), 3);
    assert_eq!(config.live.repositories.len(), 3);
    assert_eq!(config.live.mirrors[0].registry, "registry-1.docker.io:443");
    assert!(config.intercepts("registry.internal", 5000));
}

#[test]
fn unknown_file_keys_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pantry.toml");
    std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let args = RunArgs { config: Some(path), ..RunArgs::default() };
    let errors = Config::load(&args).unwrap_err().0;
    assert!(errors[0].contains("lisen"), "{errors:?}");
}
