//! `cargo xtask bench native`: training speed of the `conv` preset on Burn's CPU backend
//! against PyTorch on the CPU, same batch, steps and threads, in alternating rounds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ae_lab::data::{Dataset, IMAGE_SIDE, ImageSet, Split};
use ae_lab::model::Preset;
use ae_lab::train::{TrainOptions, Trainer, read_floats};
use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::{Device, Tensor};
use clap::Args;
use serde_json::Value;

use super::median;
use crate::data::{SourceArgs, load_split};

/// Both sides read the loss back at the first timed step, every this many steps and at
/// the last one, as `bench/torch/bench.py` does.
const LOSS_READ_EVERY: usize = 5;
const LEARNING_RATE: f64 = 2e-3;

#[derive(Args, Debug)]
pub struct NativeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Timed steps per round.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps before the timed ones.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Rounds per framework, alternating; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// CPU threads for both frameworks. Defaults to every core.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Install PyTorch from the package registry into `target/bench-venv` when it is
    /// missing (about 5 GB with the CUDA libraries it depends on).
    #[arg(long)]
    pub install_torch: bool,
    /// Two short rounds of batch 32, to check that the bench works.
    #[arg(long)]
    pub quick: bool,
    /// Instead of comparing with PyTorch, time each convolution of a Burn training step
    /// against a matrix product of the same work (`--rounds` timings each).
    #[arg(long)]
    pub ops: bool,
}

fn venv_dir() -> PathBuf {
    crate::project_root().join("target/bench-venv")
}

fn venv_python() -> PathBuf {
    venv_dir().join("bin/python")
}

/// Makes sure the virtual environment has PyTorch, installing it when allowed; returns
/// why not otherwise.
fn ensure_torch(install: bool) -> Result<(), String> {
    let python = venv_python();
    let has_torch = |python: &Path| {
        Command::new(python)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if python.is_file() && has_torch(&python) {
        return Ok(());
    }
    if !install {
        return Err(format!(
            "PyTorch is not installed in {}; run `cargo xtask bench native --install-torch` to install it there (about 5 GB)",
            venv_dir().display()
        ));
    }
    println!("installing PyTorch into {}", venv_dir().display());
    let requirements = crate::project_root().join("bench/torch/requirements.txt");
    let steps: [(&str, Vec<String>); 2] = [
        (
            "python3",
            vec!["-m".into(), "venv".into(), venv_dir().display().to_string()],
        ),
        (
            python.to_str().unwrap_or("python"),
            vec![
                "-m".into(),
                "pip".into(),
                "install".into(),
                "--quiet".into(),
                "-r".into(),
                requirements.display().to_string(),
            ],
        ),
    ];
    for (program, args) in steps {
        let status = Command::new(program)
            .args(&args)
            .status()
            .map_err(|error| format!("cannot run {program}: {error}"))?;
        if !status.success() {
            return Err(format!(
                "`{program} {}` failed ({status}); PyTorch could not be installed",
                args.join(" ")
            ));
        }
    }
    if has_torch(&python) {
        Ok(())
    } else {
        Err("PyTorch was installed but `import torch` fails".into())
    }
}

/// Writes `train` as an uncompressed IDX image file for the PyTorch script.
fn write_idx(train: &ImageSet, path: &Path) -> Result<()> {
    let side = IMAGE_SIDE as u32;
    let mut bytes = Vec::with_capacity(16 + train.pixels.len());
    for value in [0x0803, train.len() as u32, side, side] {
        bytes.extend_from_slice(&u32::to_be_bytes(value));
    }
    bytes.extend_from_slice(&train.pixels);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn read_loss(loss: Tensor<1>) -> Result<f32> {
    Ok(pollster::block_on(read_floats(loss)).map_err(|error| anyhow!(error))?[0])
}

/// Images per second of Burn's Flex backend over `steps` timed steps.
fn burn_round(train: &ImageSet, batch: usize, steps: usize, warmup: usize) -> Result<f64> {
    let device = Device::flex();
    let options = TrainOptions {
        preset: Preset::Conv,
        batch_size: batch,
        learning_rate: LEARNING_RATE,
        seed: 42,
    };
    let mut trainer = Trainer::new(options, &device);
    trainer.begin_epoch(train.len());
    let step = |trainer: &mut Trainer| match trainer.step(train) {
        Some(loss) => loss,
        None => {
            trainer.begin_epoch(train.len());
            trainer.step(train).expect("a fresh epoch has a batch")
        }
    };
    let mut last = None;
    for _ in 0..warmup {
        last = Some(step(&mut trainer));
    }
    if let Some(loss) = last {
        read_loss(loss)?;
    }
    let started = Instant::now();
    let mut loss = 0.0;
    for index in 1..=steps {
        let value = step(&mut trainer);
        if index == 1 || index % LOSS_READ_EVERY == 0 || index == steps {
            loss = read_loss(value)?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if !loss.is_finite() {
        bail!("Burn's training loss became {loss}");
    }
    Ok((batch * steps) as f64 / seconds)
}

/// Runs `bench/torch/bench.py` once and returns its JSON report.
fn torch_round(
    images: &Path,
    batch: usize,
    steps: usize,
    warmup: usize,
    threads: usize,
) -> Result<Value> {
    let script = crate::project_root().join("bench/torch/bench.py");
    let output = Command::new(venv_python())
        .arg(&script)
        .arg("--images")
        .arg(images)
        .args(["--batch", &batch.to_string(), "--steps", &steps.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .args(["--threads", &threads.to_string(), "--lr", "2e-3"])
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "the PyTorch bench failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim())
        .with_context(|| format!("the PyTorch bench printed no JSON: {stdout}"))
}

pub fn run(args: &NativeArgs) -> Result<()> {
    let (batch, steps, warmup, rounds) = if args.quick {
        (32, 5, 1, 1)
    } else {
        (args.batch, args.steps, args.warmup, args.rounds.max(1))
    };
    if batch < 2 || steps == 0 {
        bail!("--batch must be at least 2 and --steps at least 1");
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // A process can size the pool only once. A second bench in the same process, as in
    // `cargo xtask test`, finds it built and checks its size.
    let sized = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    if sized.is_err() && rayon::current_num_threads() != threads {
        bail!(
            "Burn's thread pool already has {} threads, not {threads}; run this bench in its own process",
            rayon::current_num_threads()
        );
    }
    if args.ops {
        println!("{threads} threads");
        return super::ops::run(batch, rounds);
    }

    let train = load_split(Dataset::Mnist, Split::Train, &args.source.resolve())?;
    let torch = ensure_torch(args.install_torch);
    let images = crate::project_root().join("target/bench/mnist-train-images-idx3-ubyte");
    if torch.is_ok() {
        write_idx(&train, &images)?;
    }
    println!(
        "conv preset, batch {batch}, {warmup} warm-up + {steps} timed steps, {threads} threads, {rounds} rounds each"
    );

    let mut burn = Vec::new();
    let mut pytorch = Vec::new();
    let mut torch_version = String::new();
    for round in 1..=rounds {
        let rate = burn_round(&train, batch, steps, warmup)?;
        println!("round {round}: Burn Flex {rate:.0} images/s");
        burn.push(rate);
        if torch.is_ok() {
            let report = torch_round(&images, batch, steps, warmup, threads)?;
            let rate = report["images_per_second"]
                .as_f64()
                .context("the PyTorch report has no images_per_second")?;
            torch_version = report["torch_version"].as_str().unwrap_or("?").to_string();
            println!("round {round}: PyTorch {torch_version} {rate:.0} images/s");
            pytorch.push(rate);
        }
    }

    let burn = median(&mut burn);
    println!("Burn 0.22.1 Flex (CPU): median {burn:.0} images/s");
    match torch {
        Ok(()) => {
            let pytorch = median(&mut pytorch);
            println!("PyTorch {torch_version} (CPU): median {pytorch:.0} images/s");
            println!(
                "ratio Burn / PyTorch: {:.2} (goal: at least 1)",
                burn / pytorch
            );
        }
        Err(reason) => println!("no PyTorch figure: {reason}"),
    }
    Ok(())
}
