//! `cargo xtask bench`: measurements that are not tests. `load` reports the sizes of
//! what the page downloads and the time from navigation to the first painted wall;
//! `native` and `browser` compare training speed with PyTorch and TensorFlow.js.

mod browser;
mod native;
mod ops;

#[path = "../../../tests/harness/mod.rs"]
mod harness;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;

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

/// Milliseconds from navigation to each stage the page marks and to the end of each
/// download, in time order.
const STAGES: &str = r#"
const entries = performance.getEntriesByType('mark')
    .filter(entry => entry.name.startsWith('ae-lab:'))
    .map(entry => [entry.name.slice(7), entry.startTime]);
for (const entry of performance.getEntriesByType('resource')) {
    entries.push([entry.name.split('/').pop() + ' loaded', entry.responseEnd]);
}
entries.sort((a, b) => a[1] - b[1]);
return entries.map(([name, ms]) => `${name} ${Math.round(ms)} ms`).join(', ');
"#;

/// Milliseconds from navigation to the page's mark for the painted wall, or null.
const WALL_MARK: &str = "const mark = performance.getEntriesByName('ae-lab:wall')[0]; return mark ? mark.startTime : null";

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
    let (mut in_page, mut driver): (Vec<f64>, Vec<f64>) = runtime.block_on(async {
        let base = harness::serve(dist.clone()).await;
        let mut in_page = Vec::with_capacity(runs);
        let mut driver = Vec::with_capacity(runs);
        for run in 1..=runs.max(1) {
            let browser = harness::Browser::start(false).await;
            let took = harness::open_pretrained(&browser, &base).await;
            // The wall mark comes once the frame with the wall is painted.
            let mut wall = Value::Null;
            for _ in 0..100 {
                wall = browser.json(WALL_MARK).await;
                if !wall.is_null() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let stages = browser.json(STAGES).await;
            browser.close().await;
            let wall = wall.as_f64().unwrap_or_default() / 1000.0;
            println!(
                "run {run}: wall painted {wall:.2} s after navigation ({took:.2} s through WebDriver); {}",
                stages.as_str().unwrap_or_default()
            );
            in_page.push(wall);
            driver.push(took);
        }
        (in_page, driver)
    });
    let count = in_page.len();
    let page_median = median(&mut in_page);
    let driver_median = median(&mut driver);
    println!(
        "first wall from localhost, headless Chromium without WebGPU (CPU backend), fresh profile, median of {count} runs: {page_median:.2} s from navigation to the painted wall by the page's own clock (min {:.2}, max {:.2}; goal: under 1.5 s); {driver_median:.2} s as WebDriver sees it, which adds the start of navigation and polling",
        in_page[0],
        in_page[count - 1]
    );
    Ok(())
}
