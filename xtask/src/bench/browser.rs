//! `cargo xtask bench browser`: training speed of the `conv` preset in this app's release
//! build against TensorFlow.js 4.22 in one headless Chromium session, on WebGPU and on
//! the CPU, plus the memory the app holds epoch after epoch.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ae_lab::data::{Dataset, Split};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;

use super::harness;
use crate::data::{SourceArgs, load_split};

/// Version of every TensorFlow.js package, as pinned in `bench/tfjs/package.json`.
const TFJS_VERSION: &str = "4.22.0";
/// Maximum wait for one measurement.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Args, Debug)]
pub struct BrowserArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Steps per epoch of the app; TensorFlow.js warms up for as many.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Epochs of the app: the first warms up, the others are timed, so TensorFlow.js
    /// times `steps * (epochs - 1)` steps.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Measure only the WebGPU pair, or only the CPU ones.
    #[arg(long, value_parser = ["all", "webgpu", "cpu"], default_value = "all")]
    pub only: String,
    /// Batch 32, 2 steps and 2 epochs, to check that the bench works.
    #[arg(long)]
    pub quick: bool,
}

/// Copies the bench page into `target/bench-tfjs`, installs TensorFlow.js there with
/// npm when missing, and writes the training images it reads.
fn prepare_tfjs(source: &SourceArgs, images: usize) -> Result<PathBuf> {
    let root = crate::project_root();
    let dir = root.join("target/bench-tfjs");
    std::fs::create_dir_all(&dir)?;
    for name in ["index.html", "bench.js", "package.json"] {
        std::fs::copy(root.join("bench/tfjs").join(name), dir.join(name))
            .with_context(|| format!("cannot copy bench/tfjs/{name}"))?;
    }
    let installed = std::fs::read_to_string(dir.join("node_modules/@tensorflow/tfjs/package.json"))
        .is_ok_and(|manifest| manifest.contains(&format!("\"version\": \"{TFJS_VERSION}\"")));
    if !installed {
        println!(
            "installing TensorFlow.js {TFJS_VERSION} into {}",
            dir.display()
        );
        let status = Command::new("npm")
            .args(["install", "--no-package-lock", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .context("cannot run npm; install Node.js and npm (Debian package npm)")?;
        if !status.success() {
            bail!("npm could not install TensorFlow.js ({status})");
        }
    }
    let mut train = load_split(Dataset::Mnist, Split::Train, &source.resolve())?;
    train.truncate(images);
    std::fs::write(dir.join("images.bin"), &train.pixels)?;
    Ok(dir)
}

/// Trains in the app and returns its timed images per second and epoch statistics.
async fn app_run(
    browser: &harness::Browser,
    base: &str,
    args: &Plan,
    backend: &str,
) -> Result<(f64, Vec<Value>)> {
    let query = format!(
        "?dataset=mnist&preset=conv&epochs={}&batch={}&lr=0.002&train_limit={}&test_limit=200&seed=1&backend={backend}&autostart=1",
        args.epochs,
        args.batch,
        args.batch * args.steps
    );
    browser.client.goto(&format!("{base}{query}")).await?;
    let status = browser.wait_for_run().await;
    let used = browser.hidden_text("backend").await;
    if status != "done" {
        bail!("the app's run on {backend} ended as `{status}` (backend: {used})");
    }
    let expected = if backend == "cpu" { "CPU" } else { "WebGPU" };
    if !used.starts_with(expected) {
        bail!("the app ran on `{used}`, not {expected}");
    }
    let stats: Vec<Value> = serde_json::from_str(&browser.hidden_text("epoch-stats").await)
        .context("the page's epoch-stats are not JSON")?;
    // Every epoch trains the same images, so total images over total time is the
    // harmonic mean of the timed epochs' rates.
    let timed: Vec<f64> = stats
        .iter()
        .skip(1)
        .filter_map(|epoch| epoch["images_per_second"].as_f64())
        .collect();
    if timed.is_empty() {
        bail!("the app reported no timed epoch");
    }
    let rate = timed.len() as f64 / timed.iter().map(|rate| 1.0 / rate).sum::<f64>();
    Ok((rate, stats))
}

/// Trains in the TensorFlow.js page and returns its images per second.
async fn tfjs_run(
    browser: &harness::Browser,
    base: &str,
    args: &Plan,
    backend: &str,
) -> Result<f64> {
    let query = format!(
        "?backend={backend}&batch={}&steps={}&warmup={}&lr=0.002",
        args.batch,
        args.steps * (args.epochs - 1),
        args.steps
    );
    browser.client.goto(&format!("{base}{query}")).await?;
    let started = Instant::now();
    loop {
        // The cpu backend blocks the page for seconds at a time, so a script may time
        // out; that only means "not yet".
        let result = browser
            .client
            .execute(
                "return window.benchResult ? JSON.stringify(window.benchResult) : null",
                vec![],
            )
            .await
            .ok();
        if let Some(text) = result.as_ref().and_then(Value::as_str) {
            let report: Value = serde_json::from_str(text)?;
            if let Some(error) = report["error"].as_str() {
                bail!("TensorFlow.js on {backend} failed: {error}");
            }
            return report["images_per_second"]
                .as_f64()
                .context("the TensorFlow.js report has no images_per_second");
        }
        if started.elapsed() > RUN_TIMEOUT {
            bail!("TensorFlow.js on {backend} gave no result within {RUN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sizes of one bench run.
struct Plan {
    batch: usize,
    steps: usize,
    epochs: usize,
}

fn megabytes(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| "–".into(), |bytes| format!("{:.1}", bytes / 1e6))
}

/// Prints the app's memory per epoch and whether it grew after the first epoch.
fn print_memory(backend: &str, stats: &[Value]) {
    println!(
        "app memory on {backend}, per epoch (MB): epoch | wasm | JS heap peak | JS heap after collection | GPU peak"
    );
    for (index, epoch) in stats.iter().enumerate() {
        println!(
            "  {} | {} | {} | {} | {}",
            index + 1,
            megabytes(&epoch["wasm_bytes"]),
            megabytes(&epoch["js_heap_bytes"]),
            megabytes(&epoch["js_heap_live_bytes"]),
            megabytes(&epoch["gpu_bytes"])
        );
    }
    if stats.len() >= 3 {
        for key in [
            "wasm_bytes",
            "js_heap_bytes",
            "js_heap_live_bytes",
            "gpu_bytes",
        ] {
            let second = stats[1][key].as_f64();
            let last = stats[stats.len() - 1][key].as_f64();
            if let (Some(second), Some(last)) = (second, last) {
                println!(
                    "  {key}: {:+.1} MB from epoch 2 to epoch {}",
                    (last - second) / 1e6,
                    stats.len()
                );
            }
        }
    }
}

/// Prints the ratio of two speeds in images per second, labelled as `ours / theirs`.
fn ratio_line(ours: (&str, f64), theirs: (&str, f64), goal: &str) {
    println!("{} / {}: {:.2}{goal}", ours.0, theirs.0, ours.1 / theirs.1);
}

pub fn run(args: &BrowserArgs) -> Result<()> {
    let plan = if args.quick {
        Plan {
            batch: 32,
            steps: 2,
            epochs: 2,
        }
    } else {
        Plan {
            batch: args.batch,
            steps: args.steps,
            epochs: args.epochs,
        }
    };
    if plan.batch < 2 || plan.steps == 0 || plan.epochs < 2 {
        bail!("--batch must be at least 2, --steps at least 1 and --epochs at least 2");
    }
    let dist = super::built_site()?;
    let tfjs = prepare_tfjs(&args.source, plan.batch * plan.steps * plan.epochs)?;
    println!(
        "conv preset, batch {}, {} warm-up steps then {} timed steps each, headless Chromium",
        plan.batch,
        plan.steps,
        plan.steps * (plan.epochs - 1)
    );

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(measure(&dist, &tfjs, &plan, &args.only))
}

async fn measure(dist: &Path, tfjs: &Path, plan: &Plan, only: &str) -> Result<()> {
    let app_base = harness::serve(dist.to_path_buf()).await;
    let tfjs_base = harness::serve(tfjs.to_path_buf()).await;
    // `gc` lets the page measure the heap that survives a collection.
    let browser = harness::Browser::start_with(true, &["--js-flags=--expose-gc"]).await;
    let result = async {
        if only != "cpu" {
            let (rate, stats) = app_run(&browser, &app_base, plan, "auto").await?;
            println!("this app, WebGPU: {rate:.1} images/s");
            print_memory("WebGPU", &stats);
            let app = ("app WebGPU", rate);
            let rate = tfjs_run(&browser, &tfjs_base, plan, "webgpu").await?;
            println!("TensorFlow.js {TFJS_VERSION}, webgpu: {rate:.1} images/s");
            ratio_line(app, ("tfjs webgpu", rate), " (goal: at least 2)");
        }
        if only != "webgpu" {
            let (rate, stats) = app_run(&browser, &app_base, plan, "cpu").await?;
            println!("this app, CPU fallback: {rate:.1} images/s");
            print_memory("the CPU", &stats);
            let app = ("app CPU", rate);
            for backend in ["cpu", "wasm"] {
                let rate = tfjs_run(&browser, &tfjs_base, plan, backend).await?;
                println!("TensorFlow.js {TFJS_VERSION}, {backend}: {rate:.1} images/s");
                ratio_line(app, (&format!("tfjs {backend}"), rate), "");
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    browser.close().await;
    result
}
