//! The bucket a fleet shares (any S3-compatible store, through `object_store`): the second level
//! of the cache behind each node's own store, so that content survives the loss of any node and a
//! node that starts empty does not go to the origin for what the fleet already fetched.
//!
//! Layout under the configured prefix:
//! - `blobs/sha256/<hex>`: content, written behind by the node that fetched it from the origin,
//!   once it was verified and stored locally (same-digest writes are the same bytes, so no
//!   conditional write is needed);
//! - `meta/sha256/<hex>.json`: what pantry knows of who may read it ([`BlobMeta`]: the scopes it
//!   was fetched in, anonymously or not), so a node serving it from the bucket applies the same
//!   access rules as to its own store;
//! - `records/<sha256 of the key>.json`: tag records and version-check answers.
//!
//! Nothing read from the bucket is trusted more than an upstream: content streams into the same
//! single flight as an origin fetch and is verified against its digest before it is stored or
//! completed to a client. The bucket's size is the operator's: bound it with a lifecycle rule.

pub mod http;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use object_store::{aws::AmazonS3Builder, path::Path, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::AsyncReadExt;

use crate::{
    body::{Body, BoxError},
    cache::{store::BlobMeta, Store},
    config::{SharedStore as Settings, Startup},
    metrics::Metrics,
    registry::digest::Digest,
};

/// Content is uploaded in parts of this size (S3's minimum part is 5 MiB).
const PART: usize = 8 << 20;

/// How long the bucket's copy of content that failed to arrive whole and right is not used.
const DISTRUST: std::time::Duration = std::time::Duration::from_secs(600);

/// Why the shared store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SharedStoreError {
    /// No access key was found.
    #[error("{0}")]
    Credentials(String),
    /// object_store or the HTTP client refused the settings.
    #[error("{0}")]
    Setup(String),
}

/// The fleet's bucket.
#[derive(Debug)]
pub struct SharedStore {
    bucket: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    metrics: Arc<Metrics>,
    /// Content whose copy in the bucket broke off or was not the digest's bytes: fetched from
    /// elsewhere meanwhile, and written again over the bad copy.
    distrusted: moka::sync::Cache<Digest, ()>,
}

/// An access key pair.
struct Keys {
    id: String,
    secret: String,
    token: Option<String>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The keys of an AWS credentials file (`aws_access_key_id = …`, `aws_secret_access_key = …`,
/// optionally `aws_session_token = …`; the first of each, whatever its section).
fn keys_in(text: &str) -> Option<Keys> {
    let value = |name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_string()).filter(|v| !v.is_empty())
        })
    };
    Some(Keys {
        id: value("aws_access_key_id")?,
        secret: value("aws_secret_access_key")?,
        token: value("aws_session_token"),
    })
}

/// The keys the settings name: the credentials file, else `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`). Never a cloud metadata endpoint.
fn keys(settings: &Settings) -> Result<Keys, SharedStoreError> {
    if let Some(file) = &settings.credentials {
        let text = std::fs::read_to_string(file).map_err(|e| {
            SharedStoreError::Credentials(format!("shared_store_credentials {}: {e}", file.display()))
        })?;
        return keys_in(&text).ok_or_else(|| {
            SharedStoreError::Credentials(format!(
                "shared_store_credentials {}: no aws_access_key_id and aws_secret_access_key lines",
                file.display()
            ))
        });
    }
    let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok(Keys { id, secret, token: env("AWS_SESSION_TOKEN") }),
        _ => Err(SharedStoreError::Credentials(format!(
            "shared_store {}: no keys: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or shared_store_credentials FILE",
            settings.url()
        ))),
    }
}

impl SharedStore {
    /// The bucket `settings` name, reached with `startup`'s name overrides, trust and timeouts.
    pub fn open(
        settings: &Settings,
        startup: &Startup,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, SharedStoreError> {
        let keys = keys(settings)?;
        let connector = http::Connector::new(
            &startup.resolve,
            &startup.upstream_ca,
            startup.upstream_connect_timeout,
            startup.upstream_response_timeout,
        )
        .map_err(|e| SharedStoreError::Setup(e.to_string()))?;
        // A bucket that does not answer must not hold a pull up for long: the origin is next.
        let retry = RetryConfig {
            max_retries: 1,
            retry_timeout: std::time::Duration::from_secs(5),
            ..RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(keys.id)
            .with_secret_access_key(keys.secret)
            .with_retry(retry)
            .with_http_connector(connector);
        if let Some(token) = keys.token {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let bucket = builder
            .build()
            .map_err(|e| SharedStoreError::Setup(format!("shared_store {}: {e}", settings.url())))?;
        let distrusted = moka::sync::Cache::builder().max_capacity(10_000).time_to_live(DISTRUST).build();
        Ok(Arc::new(Self {
            bucket: Arc::new(bucket),
            prefix: settings.prefix.clone(),
            url: settings.url(),
            metrics,
            distrusted,
        }))
    }

    fn path(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn blob_path(digest: &Digest) -> String {
        format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex())
    }

    fn meta_path(digest: &Digest) -> String {
        format!("meta/{}/{}.json", digest.algorithm().as_str(), digest.hex())
    }

    fn record_path(key: &str) -> String {
        format!(
            "records/{}.json",
            Digest::of(crate::registry::digest::Algorithm::Sha256, key.as_bytes()).hex()
        )
    }

    /// A small object, if the bucket has it (a failure is logged and counts as absent).
    async fn small(&self, rest: &str) -> Option<Bytes> {
        let path = self.path(rest);
        match self.bucket.get(&path).await {
            Ok(got) => match got.bytes().await {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    tracing::warn!(store = %self.url, %path, %error, "shared store: read broke off");
                    None
                }
            },
            Err(object_store::Error::NotFound { .. }) => None,
            Err(error) => {
                tracing::warn!(store = %self.url, %path, %error, "shared store unreachable");
                None
            }
        }
    }

    /// The bucket's copy of `digest` did not arrive whole and right: not used for a while (the
    /// content is fetched from elsewhere), and replaced by the next write behind.
    pub fn distrust(&self, digest: &Digest, why: &str) {
        tracing::warn!(store = %self.url, %digest, why, "shared store: its copy failed; fetching from elsewhere");
        self.distrusted.insert(digest.clone(), ());
    }

    /// What the fleet knows of who may read `digest`, if the bucket holds a copy still trusted.
    pub async fn meta(&self, digest: &Digest) -> Option<BlobMeta> {
        if self.distrusted.contains_key(digest) {
            return None;
        }
        let bytes = self.small(&Self::meta_path(digest)).await?;
        serde_json::from_slice(&bytes)
            .map_err(|error| tracing::warn!(%digest, %error, "shared store: unreadable metadata; ignored"))
            .ok()
    }

    /// The content of `digest` as a body (bytes counted as from the shared store) and its size,
    /// if the bucket holds it. Not verified here: the caller streams it into a single flight.
    pub async fn blob(&self, digest: &Digest) -> Option<(Body, u64)> {
        let path = self.path(&Self::blob_path(digest));
        let got = match self.bucket.get(&path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return None,
            Err(error) => {
                tracing::warn!(store = %self.url, %path, %error, "shared store unreachable");
                return None;
            }
        };
        let size = got.meta.size;
        let metrics = Arc::clone(&self.metrics);
        let frames = Exclusive(std::sync::Mutex::new(got.into_stream())).map(move |chunk| match chunk {
            Ok(bytes) => {
                metrics.from_shared_store(bytes.len() as u64);
                Ok(hyper::body::Frame::data(bytes))
            }
            Err(error) => Err(BoxError::from(error)),
        });
        Some((BodyExt::boxed(http_body_util::StreamBody::new(frames)), size))
    }

    /// The content of `digest` whole, if the bucket holds it and it is at most `max` bytes (a
    /// manifest). Not verified here.
    pub async fn small_blob(&self, digest: &Digest, max: usize) -> Option<Bytes> {
        let path = self.path(&Self::blob_path(digest));
        match self.bucket.head(&path).await {
            Ok(meta) if meta.size <= max as u64 => {}
            _ => return None,
        }
        let bytes = self.small(&Self::blob_path(digest)).await?;
        self.metrics.from_shared_store(bytes.len() as u64);
        (bytes.len() <= max).then_some(bytes)
    }

    /// Writes `digest`'s content and metadata from the local store to the bucket (write-behind:
    /// called once the content is verified and stored). Content the bucket already holds is not
    /// sent again.
    pub async fn write_behind(&self, store: &Store, digest: &Digest) {
        let Some(blob) = store.blob(digest).await else { return };
        let path = self.path(&Self::blob_path(digest));
        let replace = self.distrusted.contains_key(digest);
        let written = match self.bucket.head(&path).await {
            Ok(meta) if meta.size == blob.size && !replace => Ok(false),
            _ => self.upload(&blob.path, &path, blob.small.clone()).await.map(|()| true),
        };
        match written {
            Ok(sent) => {
                self.distrusted.invalidate(digest);
                self.metrics.shared_store_write(if sent { "written" } else { "present" });
                self.put_json(&Self::meta_path(digest), &blob.meta).await;
                tracing::debug!(%digest, sent, "written behind to the shared store");
            }
            Err(error) => {
                self.metrics.shared_store_write("failed");
                tracing::warn!(store = %self.url, %digest, %error, "shared store: cannot write content behind");
            }
        }
    }

    async fn upload(
        &self,
        file: &std::path::Path,
        path: &Path,
        small: Option<Bytes>,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = small {
            self.bucket.put(path, PutPayload::from(bytes)).await?;
            return Ok(());
        }
        let mut file = tokio::fs::File::from_std(crate::cache::content::open(file)?);
        let upload = self.bucket.put_multipart(path).await?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = match file.read(&mut buffer).await {
                Ok(read) => read,
                Err(error) => {
                    writer.abort().await?;
                    return Err(error.into());
                }
            };
            if read == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&buffer[..read]);
        }
        writer.finish().await?;
        Ok(())
    }

    async fn put_json<T: Serialize>(&self, rest: &str, value: &T) {
        let path = self.path(rest);
        let Ok(bytes) = serde_json::to_vec(value) else { return };
        if let Err(error) = self.bucket.put(&path, PutPayload::from(bytes)).await {
            tracing::warn!(store = %self.url, %path, %error, "shared store: cannot write");
        }
    }

    /// Shares a record (a tag's answer, a version check's) under `key`.
    pub async fn put_record<T: Serialize>(&self, key: &str, value: &T) {
        self.put_json(&Self::record_path(key), &(key, value)).await;
    }

    /// The record the fleet shared under `key`, if any.
    pub async fn record<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = self.small(&Self::record_path(key)).await?;
        let (stored, value): (String, T) = serde_json::from_slice(&bytes).ok()?;
        (stored == key).then_some(value)
    }
}

/// A stream behind a mutex that is only ever reached through `&mut` (so never locked): what makes
/// object_store's `Send`-only stream fit pantry's body type, which is `Sync` too.
struct Exclusive(std::sync::Mutex<futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>>);

impl futures_util::Stream for Exclusive {
    type Item = object_store::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.get_mut().unwrap_or_else(|e| e.into_inner()).poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_an_aws_credentials_file() {
        let text = "[default]\naws_access_key_id = AKIA123\naws_secret_access_key=s3cr3t\n";
        let keys = keys_in(text).unwrap();
        assert_eq!(
            (keys.id.as_str(), keys.secret.as_str(), keys.token.as_deref()),
            ("AKIA123", "s3cr3t", None)
        );
        assert!(keys_in("[default]\naws_access_key_id = AKIA123\n").is_none());
        assert!(!format!("{keys:?}").contains("s3cr3t"), "the secret never shows in logs");
    }
}
