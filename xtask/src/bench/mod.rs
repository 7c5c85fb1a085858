//! `cargo xtask bench`: measurements that are not tests. `load` reports the sizes of
//! what the page downloads and the time from navigation to the first painted wall;
//! `native` and `browser` compare training speed with PyTorch and TensorFlow.js.

mod browser;
mod native;

#[path = "../../../tests/harness/mod.rs"]
mod harness;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::tools;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Sizes of the release build, the default weights and the shards, and the time
    /// from navigation to the first painted wall (needs `cargo xtask build` first).
    Load {
        /// Page loads to time, each in a fresh browser profile; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Training speed of this app against TensorFlow.js in headless Chromium, on
    /// WebGPU and on the CPU, and the app's memory per epoch (needs `cargo xtask build`).
    Browser(browser::BrowserArgs),
    /// Training speed on Burn's CPU backend against PyTorch on the CPU.
    Native(native::NativeArgs),
}

pub fn run(command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Load { runs } => load(*runs),
        BenchCommand::Native(args) => native::run(args),
        BenchCommand::Browser(args) => browser::run(args),
    }
}

/// Sizes in bytes of `bytes` raw, gzip-compressed (level 9) and brotli-compressed
/// (quality 11), the settings a static host would use for precompressed files.
fn compressed_sizes(bytes: &[u8]) -> (usize, usize, usize) {
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    gzip.write_all(bytes)
        .expect("writing to memory cannot fail");
    let gzip = gzip.finish().expect("writing to memory cannot fail").len();
    let mut brotli = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut brotli, 1 << 16, 11, 22);
        writer
            .write_all(bytes)
            .expect("writing to memory cannot fail");
    }
    (bytes.len(), gzip, brotli.len())
}

/// Finds the file in `dir` whose name ends with `suffix`.
fn find(dir: &Path, suffix: &str) -> Result<PathBuf> {
    std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.to_string_lossy().ends_with(suffix))
        .with_context(|| format!("no *{suffix} in {}", dir.display()))
}

/// Median of `values`, sorting them; 0 for none.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn megabytes(bytes: usize) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// Returns the release site folder after checking that it is built and that the
/// browser the benches drive is installed.
fn built_site() -> Result<PathBuf> {
    let dist = crate::project_root().join("dist");
    if !dist.join("index.html").is_file() {
        bail!(
            "{} has no built site; run `cargo xtask build` first",
            dist.display()
        );
    }
    tools::require_browser()?;
    Ok(dist)
}

fn load(runs: usize) -> Result<()> {
    let dist = built_site()?;

    let wasm = find(&dist, "_bg.wasm")?;
    let glue = std::fs::read_dir(&dist)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "js"))
        .context("no JavaScript glue in dist/")?;
    let weights = dist.join("models/mnist.aelab");
    let test_shard = find(&dist.join("data/mnist"), "test-00.shard")?;

    println!("| file | raw | gzip | brotli |");
    println!("| --- | --- | --- | --- |");
    let mut first_visit_gzip = 0;
    for (label, path) in [
        ("release .wasm", &wasm),
        ("JavaScript glue", &glue),
        ("default weights (MNIST)", &weights),
        ("MNIST test shard", &test_shard),
    ] {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (raw, gzip, brotli) = compressed_sizes(&bytes);
        if label != "MNIST test shard" {
            first_visit_gzip += gzip;
        }
        println!(
            "| {label} | {} | {} | {} |",
            megabytes(raw),
            megabytes(gzip),
            megabytes(brotli)
        );
    }
    println!(
        "wasm + JavaScript + default weights, gzip: {} (goal: at most 3 MB)",
        megabytes(first_visit_gzip)
    );

    let runtime = tokio::runtime::Runtime::new()?;
    let mut seconds: Vec<f64> = runtime.block_on(async {
        let base = harness::serve(dist.clone()).await;
        let mut seconds = Vec::with_capacity(runs);
        for run in 1..=runs.max(1) {
            let browser = harness::Browser::start(false).await;
            let took = harness::open_pretrained(&browser, &base).await;
            browser.close().await;
            println!("run {run}: first wall after {took:.2} s");
            seconds.push(took);
        }
        seconds
    });
    let middle = median(&mut seconds);
    println!(
        "first wall from localhost, headless Chromium without WebGPU (CPU backend), fresh profile: median {middle:.2} s of {} runs (min {:.2}, max {:.2})",
        seconds.len(),
        seconds[0],
        seconds[seconds.len() - 1]
    );
    Ok(())
}
