//! `cargo xtask train`: trains a preset natively with the same model code as the page
//! and writes a weights file the page can load.

use std::path::PathBuf;
use std::time::Instant;

use ae_lab::data::{Dataset, Split};
use ae_lab::model::Preset;
use ae_lab::settings::default_learning_rate;
use ae_lab::train::{TrainOptions, Trainer, evaluate, read_floats};
use ae_lab::weights::{self, ModelInfo, TrainingRecord};
use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::Device;
use clap::Args;

use crate::data::{SourceArgs, load_split};

/// Steps between progress lines.
const REPORT_EVERY: usize = 50;
/// Batch size of evaluation.
const EVAL_BATCH: usize = 500;

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Dataset to train on: `mnist` or `fashion-mnist`.
    #[arg(long, default_value = "mnist")]
    pub dataset: Dataset,
    /// Architecture: `conv` or `dense-conv`.
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
    /// Weights file to continue training from instead of random weights; its preset
    /// replaces `--preset` and its epochs count towards the recorded total.
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Weights file to write. Defaults to `target/models/<dataset>-<preset>.aelab`.
    #[arg(long)]
    pub output: Option<PathBuf>,
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
    let test = load_split(args.dataset, Split::Test, &args.source.resolve())?;

    let device = Device::flex();
    let options = TrainOptions {
        preset: args.preset,
        batch_size: args.batch,
        learning_rate,
        seed: args.seed,
    };
    println!(
        "training {} on {} ({} training, {} test images) on the CPU with {} threads",
        args.init
            .as_ref()
            .map_or(args.preset.to_string(), |path| path.display().to_string()),
        args.dataset.title(),
        train.len(),
        test.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
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
    let bytes = pollster::block_on(weights::export(&trainer.inference_model(), &info))
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
