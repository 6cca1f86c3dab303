//! A parent proxy (`--upstream-proxy http://[user:pass@]host:port`) for networks whose only way out
//! is another proxy: every upstream connection, tunnelled or intercepted, is a CONNECT through it.
//!
//! The reply's head is parsed by httparse and read without consuming a byte past it: the socket is
//! peeked, and only the head is read off it, so that whatever the parent relays next (a server that
//! speaks first) stays in the socket for the tunnel. (hyper's client upgrade would hand such bytes
//! back beside the stream, which a `TcpStream` cannot take back.)

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
        let (code, reason) = read_status(stream).await?;
        if (200..300).contains(&code) {
            Ok(())
        } else {
            Err(format!("parent proxy refused CONNECT {authority}: {code} {reason}"))
        }
    }
}

/// Reads the response head off `stream` (and nothing after it); its status code and reason.
async fn read_status(stream: &mut TcpStream) -> Result<(u16, String), String> {
    let closed = |e: std::io::Error| format!("parent proxy closed the connection: {e}");
    let mut head = Vec::with_capacity(512);
    let mut window = vec![0u8; MAX_HEAD];
    loop {
        let seen = stream.peek(&mut window[..MAX_HEAD - head.len()]).await.map_err(closed)?;
        if seen == 0 {
            return Err("parent proxy closed the connection before its answer ended".into());
        }
        // The head ends in what was peeked (possibly with its first bytes read already): read
        // exactly up to its end; otherwise everything peeked is head, read it all.
        let before = head.len();
        head.extend_from_slice(&window[..seen]);
        let parsed = parse(&head)?;
        let take = parsed.as_ref().map_or(seen, |(end, ..)| end - before);
        head.truncate(before + take);
        stream.read_exact(&mut window[..take]).await.map_err(closed)?;
        if let Some((_, code, reason)) = parsed {
            return Ok((code, reason));
        }
        if head.len() >= MAX_HEAD {
            return Err("parent proxy sent an oversized response head".into());
        }
    }
}

/// The head's length, status code and reason once `bytes` hold a whole head.
fn parse(bytes: &[u8]) -> Result<Option<(usize, u16, String)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(end)) => {
            let code = response.code.unwrap_or_default();
            Ok(Some((end, code, response.reason.unwrap_or_default().to_string())))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("parent proxy sent a malformed answer: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parent that answers `reply` (in `pieces` writes) and then relays `after` at once.
    async fn parent_replying(
        pieces: Vec<Vec<u8>>,
        after: &'static [u8],
    ) -> (TcpStream, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await.unwrap();
            for piece in pieces {
                socket.write_all(&piece).await.unwrap();
                socket.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            socket.write_all(after).await.unwrap();
            let mut rest = Vec::new();
            let _ = socket.read_to_end(&mut rest).await;
        });
        (TcpStream::connect(addr).await.unwrap(), server)
    }

    #[tokio::test]
    async fn the_tunnel_keeps_what_the_parent_relays_right_after_its_answer() {
        let head = b"HTTP/1.1 200 Connection established\r\nVia: 1.1 parent\r\n\r\n";
        let split = vec![head[..10].to_vec(), head[10..].to_vec()];
        let (mut stream, _server) = parent_replying(split, b"SSH-2.0-server\r\n").await;
        let parent = ParentProxy::parse("http://parent.test:3128").unwrap();
        parent.open_tunnel(&mut stream, "registry.test", 22).await.unwrap();
        let mut banner = [0u8; 16];
        stream.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"SSH-2.0-server\r\n", "the server's first bytes are the tunnel's");
    }

    #[tokio::test]
    async fn refusals_and_malformed_answers_are_reported() {
        let parent = ParentProxy::parse("http://parent.test:3128").unwrap();
        let refusal = b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n".to_vec();
        let (mut stream, _server) = parent_replying(vec![refusal], b"").await;
        let error = parent.open_tunnel(&mut stream, "registry.test", 443).await.unwrap_err();
        assert!(error.contains("407 Proxy Authentication Required"), "{error}");
        let (mut stream, _server) = parent_replying(vec![b"SSH-2.0 not http\r\n\r\n".to_vec()], b"").await;
        let error = parent.open_tunnel(&mut stream, "registry.test", 443).await.unwrap_err();
        assert!(error.contains("malformed"), "{error}");
        let endless = vec![b"HTTP/1.1 200 OK\r\n".to_vec(), vec![b'X'; MAX_HEAD]];
        let (mut stream, _server) = parent_replying(endless, b"").await;
        let error = parent.open_tunnel(&mut stream, "registry.test", 443).await.unwrap_err();
        assert!(error.contains("oversized") || error.contains("malformed"), "{error}");
    }
}
