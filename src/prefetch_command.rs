//! `pantry prefetch IMAGE...`: the images' manifests and blobs pulled into the cache, with a
//! progress bar when stderr is a terminal and one summary line per image.

use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pantry::{
    config::{Config, RunArgs},
    prefetch::{Prefetcher, Progress},
    registry::{manifest::Platform, reference::ImageRef},
};

/// Arguments of `pantry prefetch`.
#[derive(Clone, clap::Args)]
pub struct PrefetchArgs {
    /// Images: `alpine:3.20`, `ghcr.io/org/app:v1`, `registry.example:5000/team/app@sha256:…`.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
    /// Only this platform of a multi-platform image, e.g. linux/amd64 [default: every platform].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Credentials for registries that ask (`name:password`); anonymous otherwise.
    #[arg(long, env = "PANTRY_PREFETCH_USER", value_name = "NAME:PASSWORD", hide_env_values = true)]
    user: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Bytes arriving, shown on a progress bar.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn planned(&self, bytes: u64) {
        self.0.inc_length(bytes);
    }

    fn advanced(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

/// Prefetches every image; fails if any image failed (after trying them all).
pub fn run(config: Config, args: &PrefetchArgs) -> anyhow::Result<()> {
    let images: Vec<ImageRef> =
        args.images.iter().map(|i| i.parse().map_err(anyhow::Error::msg)).collect::<Result<_, _>>()?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose().map_err(anyhow::Error::msg)?;
    if config.live.offline {
        anyhow::bail!("prefetch needs upstreams; offline is set");
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let proxy = pantry::proxy_core(&config).await?;
        let prefetcher = Prefetcher::new(proxy, platform, args.user.clone());
        let mut failed = 0;
        for image in &images {
            let bar = ProgressBar::new(0).with_message(image.to_string());
            bar.set_style(
                ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            let result = prefetcher.image(image, &Bar(bar.clone())).await;
            bar.finish_and_clear();
            match result {
                Ok(s) => println!(
                    "{image}: {} manifests, {} blobs fetched ({}), {} already cached",
                    s.manifests,
                    s.fetched,
                    bytesize::ByteSize::b(s.bytes),
                    s.already
                ),
                Err(error) => {
                    failed += 1;
                    eprintln!("{image}: {error}");
                }
            }
        }
        match failed {
            0 => Ok(()),
            n => Err(anyhow::anyhow!("{n} of {} images could not be prefetched", images.len())),
        }
    })
}
