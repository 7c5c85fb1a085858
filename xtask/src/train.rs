//! `cargo xtask train`: trains a preset natively with the same model code as the page
//! and writes a weights file the page can load.

use std::path::PathBuf;
use std::time::Instant;

use ae_lab::data::{Dataset, Split};
use ae_lab::metrics::Metrics;
use ae_lab::model::Preset;
use ae_lab::settings::default_learning_rate;
use ae_lab::train::{TrainOptions, Trainer, evaluate, read_floats};
use ae_lab::weights::{self, ModelInfo, Precision, TrainingRecord};
use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::Device;
use burn::tensor::wgpu::wgpu::DeviceType;
use clap::{Args, ValueEnum};

use crate::data::{SourceArgs, load_split};

/// Steps between progress lines.
const REPORT_EVERY: usize = 50;
/// Batch size of evaluation.
const EVAL_BATCH: usize = 500;

/// Device choice of `cargo xtask train`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TrainBackend {
    /// A hardware GPU through wgpu when there is one, otherwise the CPU.
    Auto,
    /// Burn's Flex backend on every CPU core.
    Cpu,
    /// Burn's wgpu backend on the first adapter wgpu offers (Vulkan, Metal or DX12),
    /// software ones included; fails when there is none.
    Wgpu,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Dataset to train on: `mnist` or `fashion-mnist`.
    #[arg(long, default_value = "mnist")]
    pub dataset: Dataset,
    /// Architecture: `conv`, `conv-large` or `dense-conv`.
    #[arg(long, default_value = "conv")]
    pub preset: Preset,
    /// Passes over the training images.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Images per optimiser step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam learning rate. Defaults to the preset's default in the page.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of the initial weights and of the shuffling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Train on only the first this many training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Evaluate on only the first this many test images.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Device to train on.
    #[arg(long, value_enum, default_value_t = TrainBackend::Auto)]
    pub backend: TrainBackend,
    /// Weights file to continue training from instead of random weights; its preset
    /// replaces `--preset` and its epochs count towards the recorded total.
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Weights file to write. Defaults to `target/models/<dataset>-<preset>.aelab`.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Number format of the written weights: `f32` (exact), `f16` or `q8`.
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Weights file to read.
    pub input: PathBuf,
    /// Weights file to write.
    pub output: PathBuf,
    /// Number format of the written weights: `f32`, `f16` or `q8`.
    #[arg(long)]
    pub precision: Precision,
}

fn cpu_device() -> (Device, String) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    (Device::flex(), format!("the CPU with {threads} threads"))
}

/// Returns the device for `choice` and a description of it for the progress output.
fn pick_device(choice: TrainBackend) -> Result<(Device, String)> {
    if choice == TrainBackend::Cpu {
        return Ok(cpu_device());
    }
    match Device::wgpu_options().init_with_setup() {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            let name = format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend);
            if choice == TrainBackend::Auto && info.device_type == DeviceType::Cpu {
                let (device, cpu) = cpu_device();
                println!("wgpu offers only the software adapter {name}; using {cpu} instead");
                return Ok((device, cpu));
            }
            Ok((device, format!("wgpu adapter {name}")))
        }
        Err(error) if choice == TrainBackend::Auto => {
            let (device, cpu) = cpu_device();
            println!("wgpu found no GPU ({error}); using {cpu}");
            Ok((device, cpu))
        }
        Err(error) => bail!(
            "wgpu could not start a device: {error}. Install a Vulkan driver (on Debian, mesa-vulkan-drivers gives a software one) or use --backend cpu"
        ),
    }
}

pub fn run(args: &TrainArgs) -> Result<()> {
    if args.batch < 2 || args.epochs == 0 {
        bail!("--batch must be at least 2 and --epochs at least 1");
    }
    let learning_rate = args
        .lr
        .unwrap_or_else(|| default_learning_rate(args.preset));
    let output = args.output.clone().unwrap_or_else(|| {
        crate::project_root()
            .join("target/models")
            .join(format!("{}-{}.aelab", args.dataset, args.preset))
    });

    let mut train = load_split(args.dataset, Split::Train, &args.source.resolve())?;
    if let Some(limit) = args.train_limit {
        train.truncate(limit);
    }
    let mut test = load_split(args.dataset, Split::Test, &args.source.resolve())?;
    if let Some(limit) = args.test_limit {
        test.truncate(limit);
    }

    let (device, device_name) = pick_device(args.backend)?;
    let options = TrainOptions {
        preset: args.preset,
        batch_size: args.batch,
        learning_rate,
        seed: args.seed,
    };
    println!(
        "training {} on {} ({} training, {} test images) on {device_name}",
        args.init
            .as_ref()
            .map_or(args.preset.to_string(), |path| path.display().to_string()),
        args.dataset.title(),
        train.len(),
        test.len(),
    );
    let started = Instant::now();
    let (mut trainer, earlier_epochs) = match &args.init {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let (model, info) = weights::import(&bytes, &device)
                .map_err(|error| anyhow!("{}: {error}", path.display()))?;
            println!(
                "continuing from {} ({} epochs on {})",
                path.display(),
                info.training.epochs,
                info.dataset.title()
            );
            (
                Trainer::from_model(model, options, &device),
                info.training.epochs,
            )
        }
        None => (Trainer::new(options, &device), 0),
    };
    let steps_per_epoch = train.len().div_ceil(args.batch);

    let mut metrics = None;
    for epoch in 1..=args.epochs {
        trainer.begin_epoch(train.len());
        let epoch_started = Instant::now();
        let mut step = 0;
        let mut images = 0;
        while let Some(loss) = trainer.step(&train) {
            step += 1;
            images += args.batch.min(train.len() - (step - 1) * args.batch);
            if step % REPORT_EVERY == 0 || step == steps_per_epoch {
                let loss =
                    pollster::block_on(read_floats(loss)).map_err(|error| anyhow!(error))?[0];
                if !loss.is_finite() {
                    bail!(
                        "the training loss became {loss} at epoch {epoch}, step {step}; lower --lr (now {learning_rate})"
                    );
                }
                println!(
                    "epoch {epoch}/{} step {step}/{steps_per_epoch} loss {loss:.5} {:.0} images/s",
                    args.epochs,
                    images as f64 / epoch_started.elapsed().as_secs_f64()
                );
            }
        }
        let model = trainer.inference_model();
        let result = pollster::block_on(evaluate(&model, &test, EVAL_BATCH, &device))
            .map_err(|error| anyhow!(error))?;
        println!(
            "epoch {epoch}: test BCE {:.5} MSE {:.5} PSNR {:.2} dB SSIM {:.4} ({:.0} s so far)",
            result.bce,
            result.mse,
            result.psnr,
            result.ssim,
            started.elapsed().as_secs_f64()
        );
        metrics = Some(result);
    }

    let info = ModelInfo {
        dataset: args.dataset,
        training: TrainingRecord {
            epochs: earlier_epochs + args.epochs,
            batch_size: args.batch,
            learning_rate,
            seed: args.seed,
            train_limit: args.train_limit,
        },
        metrics,
    };
    let bytes = pollster::block_on(weights::export_with(
        &trainer.inference_model(),
        &info,
        args.precision,
    ))
    .map_err(|error| anyhow!(error))?;
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&output, &bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "wrote {} ({:.2} MB) after {:.0} s",
        output.display(),
        bytes.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn metrics_line(metrics: &Metrics) -> String {
    format!(
        "BCE {:.5} MSE {:.5} PSNR {:.2} dB SSIM {:.4}",
        metrics.bce, metrics.mse, metrics.psnr, metrics.ssim
    )
}

/// `cargo xtask convert`: rewrites a weights file in another precision and records the
/// test metrics of the converted weights, so the file states what it delivers.
pub fn convert(args: &ConvertArgs) -> Result<()> {
    let device = Device::flex();
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let (model, mut info) = weights::import(&bytes, &device)
        .map_err(|error| anyhow!("{}: {error}", args.input.display()))?;
    let test = load_split(info.dataset, Split::Test, &args.source.resolve())?;
    let before = pollster::block_on(evaluate(&model, &test, EVAL_BATCH, &device))
        .map_err(|error| anyhow!(error))?;

    let converted = pollster::block_on(weights::export_with(&model, &info, args.precision))
        .map_err(|error| anyhow!(error))?;
    let (model, _) = weights::import(&converted, &device)
        .map_err(|error| anyhow!("the converted weights do not read back: {error}"))?;
    let after = pollster::block_on(evaluate(&model, &test, EVAL_BATCH, &device))
        .map_err(|error| anyhow!(error))?;
    println!("{}: {}", args.input.display(), metrics_line(&before));
    println!("in {}: {}", args.precision, metrics_line(&after));

    info.metrics = Some(after);
    let bytes = pollster::block_on(weights::export_with(&model, &info, args.precision))
        .map_err(|error| anyhow!(error))?;
    std::fs::write(&args.output, &bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "wrote {} ({:.2} MB)",
        args.output.display(),
        bytes.len() as f64 / 1e6
    );
    Ok(())
}
