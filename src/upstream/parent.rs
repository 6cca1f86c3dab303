//! A parent proxy (`--upstream-proxy http://[user:pass@]host:port`) for networks whose only way out
//! is another proxy: every upstream connection, tunnelled or intercepted, is a CONNECT through it.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

pub use crate::config::ParentProxy;

/// The longest CONNECT response head accepted from the parent.
const MAX_HEAD: usize = 16 * 1024;

impl ParentProxy {
    /// Asks the parent, over `stream`, for a tunnel to `host:port`; Ok once it answered 2xx.
    pub async fn open_tunnel(&self, stream: &mut TcpStream, host: &str, port: u16) -> Result<(), String> {
        let authority =
            if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(authorization) = &self.authorization {
            request.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("parent proxy: {e}"))?;
        let head = read_head(stream).await?;
        let status_line = head.lines().next().unwrap_or_default();
        let status = status_line.split_whitespace().nth(1).unwrap_or_default();
        if status.starts_with('2') {
            Ok(())
        } else {
            Err(format!("parent proxy refused CONNECT {authority}: {status_line}"))
        }
    }
}

/// Reads the response head byte by byte so that no tunnelled byte is consumed.
async fn read_head(stream: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err("parent proxy sent an oversized response head".into());
        }
        let byte = stream.read_u8().await.map_err(|e| format!("parent proxy closed the connection: {e}"))?;
        head.push(byte);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
