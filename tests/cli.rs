//! The `pantry` binary: config errors listed at once with exit status 2, `ca export`, start-up and
//! graceful exit on SIGTERM.

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
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "SIGTERM exits with status 0");
}
