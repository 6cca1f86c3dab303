//! `pantry healthcheck`: asks a running pantry's `/healthz` (on the admin port when there is one,
//! else the proxy port) and exits 0 when it answers 200 — the container image's health check.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use pantry::config::Config;

/// How long the check waits for pantry.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Checks the pantry `config` describes (a wildcard listen address is asked on loopback).
pub fn run(config: &Config) -> anyhow::Result<()> {
    let mut addr = config.startup.admin_listen.unwrap_or(config.startup.listen);
    if addr.ip().is_unspecified() {
        let loopback: std::net::IpAddr =
            if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
        addr = SocketAddr::new(loopback, addr.port());
    }
    let status = ask(addr).map_err(|e| anyhow::anyhow!("pantry at {addr} did not answer /healthz: {e}"))?;
    if status != 200 {
        anyhow::bail!("pantry at {addr} answered /healthz with {status}");
    }
    println!("pantry at {addr} is healthy");
    Ok(())
}

fn ask(addr: SocketAddr) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: pantry\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not HTTP: {text:?}")))
}
