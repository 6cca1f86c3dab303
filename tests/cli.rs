//! The `pantry` binary: config errors listed at once with exit status 2, `ca export`, start-up,
//! configuration reload on SIGHUP and graceful exit on SIGTERM.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::Command,
};

fn pantry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pantry"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PANTRY_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn invalid_configuration_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pantry.toml");
    std::fs::write(&file, "max_size = \"huge\"\n").unwrap();
    let output = pantry()
        .args(["--listen", "nowhere", "--resolve", "bad", "--config"])
        .arg(&file)
        .env("PANTRY_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for problem in ["listen", "resolve rule", "max_size", "log_format"] {
        assert!(stderr.contains(problem), "{problem} missing from: {stderr}");
    }
}

#[test]
fn ca_export_prints_the_certificate_only() {
    let dir = tempfile::tempdir().unwrap();
    let output = pantry().args(["ca", "export", "--certs-dir"]).arg(dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("-----BEGIN CERTIFICATE-----"), "{stdout}");
    assert!(!stdout.contains("PRIVATE"));
    assert_eq!(stdout, std::fs::read_to_string(dir.path().join("ca.pem")).unwrap());
}

#[test]
fn runs_serves_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = pantry();
    command.args(["run", "--listen", "127.0.0.1:0", "--cache-dir"]).arg(dir.path().join("cache"));
    command.arg("--certs-dir").arg(dir.path().join("certs"));
    let (mut child, addr) = common::spawn_listening(command);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let healthy = pantry().args(["healthcheck", "--listen", &addr]).output().unwrap();
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "SIGTERM exits with status 0");
    let gone = pantry().args(["healthcheck", "--listen", &addr]).output().unwrap();
    assert_eq!(gone.status.code(), Some(1), "a stopped pantry is unhealthy");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("did not answer"));
    // Whatever the umask (022 here), what pantry wrote is its own user's only.
    let mut found = Vec::new();
    common::files_containing(dir.path(), &[""], &mut found);
    assert!(!found.is_empty());
    for line in found {
        let path = line.split(" holds ").next().unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "{path} is open to others: {:o}", mode & 0o777);
    }
}

/// The status line of a plain-HTTP proxy request for `url`.
fn status_of(addr: &str, url: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let request = format!("GET {url} HTTP/1.1\r\nHost: closed.invalid\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.lines().next().unwrap_or("").to_string()
}

fn wait_for_line(log: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = log.recv_timeout(left).unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn sighup_reloads_the_configuration_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pantry.toml");
    // closed.invalid is a plain-HTTP registry here, so its registry requests are made at all.
    std::fs::write(&file, "max_size = \"1GiB\"\ninsecure_registries = [\"closed.invalid\"]\n").unwrap();
    let mut command = pantry();
    command.args(["run", "--listen", "127.0.0.1:0", "--cache-dir"]).arg(dir.path().join("cache"));
    command.arg("--certs-dir").arg(dir.path().join("certs")).arg("--config").arg(&file);
    let (child, addr, log) = common::spawn_listening_logged(command);
    let mut child = KillOnDrop(child);
    let pid = child.0.id().to_string();
    let hangup = || Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let url = "http://closed.invalid/v2/blocked/app/manifests/v1";
    assert!(status_of(&addr, url).contains(" 502 "), "`.invalid` never resolves: a gateway error");

    std::fs::write(
        &file,
        "max_size = \"2GiB\"\ninsecure_registries = [\"closed.invalid\"]\n[[repositories]]\nrepository = \"blocked/*\"\naction = \"deny\"\n",
    )
    .unwrap();
    assert!(hangup().success());
    wait_for_line(&log, "configuration reloaded");
    let restart = wait_for_line(&log, "only after a restart");
    assert!(restart.contains("max_size"), "{restart}");
    assert!(status_of(&addr, url).contains(" 403 "), "the reloaded policy denies");

    std::fs::write(&file, "max_size = \"lots\"\n").unwrap();
    assert!(hangup().success());
    let refused = wait_for_line(&log, "reload refused");
    assert!(refused.contains("max_size"), "{refused}");
    assert!(status_of(&addr, url).contains(" 403 "), "a broken file changes nothing");
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(child.0.wait().unwrap().success());
}

/// Kills the child if the test panics before it ends it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn check_config_prints_a_file_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        pantry().args(["check-config", "--max-size", "3GiB", "--pin", "ghcr.io/org/*"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("max_size = \"3221225472\"") && printed.contains("ghcr.io/org/*"), "{printed}");
    let file = dir.path().join("effective.toml");
    std::fs::write(&file, &printed).unwrap();
    let again = pantry().args(["check-config", "--config"]).arg(&file).output().unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), printed);
    let bad = pantry().args(["check-config", "--max-size", "lots"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn version_completions_and_manual() {
    let version = pantry().arg("--version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    assert!(
        version.starts_with("pantry ") && version.contains("commit ") && version.contains("rustc"),
        "{version}"
    );
    let bash = pantry().args(["completions", "bash"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bash.stdout).contains("_pantry()"));
    let man = pantry().arg("man").output().unwrap();
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH pantry") && man.contains("prefetch"), "{man}");
}

#[test]
fn check_config_masks_upstream_secrets_and_refuses_files_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let private = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let file = dir.path().join("pantry.toml");
    let docker = dir.path().join("config.json");
    std::fs::write(&docker, r#"{"auths":{"ghcr.io":{"auth":"Y2k6Z2hjci1zZWNyZXQ="}}}"#).unwrap();
    private(&docker, 0o600);
    let text = "[[upstream_credentials]]\nregistry = \"docker.io\"\nrepositories = [\"myorg/*\"]\nusername = \"ci\"\npassword = \"inline-secret-4b2d\"\n";
    std::fs::write(&file, text).unwrap();
    private(&file, 0o644);
    let refused = pantry().args(["check-config", "--config"]).arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr.contains("chmod 600") && !stderr.contains("inline-secret"), "{stderr}");

    private(&file, 0o600);
    let shown = pantry()
        .args(["check-config", "--docker-config"])
        .arg(&docker)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    assert!(printed.contains("password = \"***\"") && !printed.contains("inline-secret"), "{printed}");
    assert!(printed.contains("docker_config = "), "{printed}");
    let explained = pantry()
        .args(["check-config", "--explain", "docker.io/myorg/app:v1", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let explained = String::from_utf8_lossy(&explained.stdout);
    assert!(explained.contains("entry registry-1.docker.io:443/{myorg/*}"), "{explained}");
    assert!(!explained.contains("inline-secret"));

    private(&docker, 0o644);
    let open = pantry().args(["check-config", "--docker-config"]).arg(&docker).output().unwrap();
    assert_eq!(open.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&open.stderr).contains("group or others"));
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "admin-secret-77\n").unwrap();
    private(&token, 0o644);
    let open = pantry().args(["check-config", "--admin-token-file"]).arg(&token).output().unwrap();
    let stderr = String::from_utf8_lossy(&open.stderr);
    assert!(open.status.code() == Some(2) && stderr.contains("admin_token_file"), "{stderr}");
    private(&token, 0o600);
    let shown = pantry().args(["check-config", "--admin-token-file"]).arg(&token).output().unwrap();
    assert!(shown.status.success() && !String::from_utf8_lossy(&shown.stdout).contains("admin-secret"));
}
