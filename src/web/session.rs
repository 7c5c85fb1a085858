//! One training run in the page: start the backend, download the data, train epoch by
//! epoch while yielding to the browser, and publish every figure through [`Ui`].

use std::rc::Rc;

use burn::prelude::*;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::backend::{self, Backend};
use super::dataset::{self, Loaded};
use super::ui::{Progress, Status, Ui, WallImages};
use super::{now_ms, yield_to_browser};
use crate::data::{Dataset, ImageSet};
use crate::settings::RunSettings;
use crate::train::{self, Trainer, read_floats};

/// Steps between reads of the training loss; reading waits for the GPU, so reading
/// every step would keep it from running ahead.
const REPORT_EVERY: usize = 5;
/// Weight of the previous value in the exponential smoothing of the training loss.
const SMOOTHING: f64 = 0.9;
/// Batch size of evaluation, independent of the training batch.
const EVAL_BATCH: usize = 500;

/// Runs `settings` to the end, a stop or an error, and reports the outcome in `ui`.
pub async fn run(settings: RunSettings, ui: Ui) {
    ui.running.set(true);
    ui.reset(settings.epochs);
    let outcome = train(&settings, ui).await;
    ui.status.set(match outcome {
        Ok(true) => Status::Stopped,
        Ok(false) => Status::Done,
        Err(message) => {
            log::error!("training failed: {message}");
            Status::Error(message)
        }
    });
    ui.running.set(false);
}

/// Downloads what is missing of `dataset`: the test shards and the first training
/// shard now, further training shards in the background.
async fn load(dataset: Dataset, train_limit: Option<usize>, ui: Ui) -> Result<Rc<Loaded>, String> {
    let loaded = match dataset::cached(dataset) {
        Some(loaded) => loaded,
        None => {
            ui.progress.set(Some(Progress {
                label: format!("{} manifest", dataset.title()),
                loaded: 0,
                total: 0,
            }));
            let manifest = dataset::manifest(dataset).await?;
            let first_train = manifest
                .train
                .shards
                .first()
                .ok_or("the manifest lists no training shard")?
                .clone();
            let entries: Vec<_> = manifest
                .test
                .shards
                .iter()
                .chain([&first_train])
                .cloned()
                .collect();
            let total: usize = entries.iter().map(|entry| entry.bytes).sum();
            let label = format!("{} test images and first training shard", dataset.title());
            let mut done = 0;
            let mut sets = Vec::new();
            for entry in &entries {
                let set = dataset::shard(dataset, entry, |received| {
                    ui.progress.set(Some(Progress {
                        label: label.clone(),
                        loaded: done + received,
                        total,
                    }))
                })
                .await?;
                done += entry.bytes;
                sets.push(set);
            }
            let train = sets.pop().expect("the first training shard was downloaded");
            let mut test = ImageSet::default();
            for set in &sets {
                test.extend(set);
            }
            if test.is_empty() {
                return Err("the manifest lists no test images".into());
            }
            let loaded = Rc::new(Loaded {
                manifest,
                test,
                train: train.into(),
                train_shards: 1.into(),
                downloading: false.into(),
            });
            dataset::remember(loaded.clone());
            loaded
        }
    };

    let needed = dataset::shards_needed(&loaded.manifest, train_limit);
    if *loaded.train_shards.borrow() < needed && !*loaded.downloading.borrow() {
        *loaded.downloading.borrow_mut() = true;
        spawn_local(download_rest(loaded.clone(), needed, ui));
    } else if !*loaded.downloading.borrow() {
        ui.progress.set(None);
    }
    Ok(loaded)
}

/// Appends training shards up to `needed` while training runs on what has arrived.
async fn download_rest(loaded: Rc<Loaded>, needed: usize, ui: Ui) {
    let dataset = loaded.manifest.dataset;
    let entries: Vec<_> = loaded.manifest.train.shards[..needed].to_vec();
    let total: usize = entries.iter().map(|entry| entry.bytes).sum();
    let mut done: usize = entries[..*loaded.train_shards.borrow()]
        .iter()
        .map(|entry| entry.bytes)
        .sum();
    let first = *loaded.train_shards.borrow();
    for (index, entry) in entries.iter().enumerate().skip(first) {
        let label = format!(
            "{} training shard {} of {needed} (training continues meanwhile)",
            dataset.title(),
            index + 1
        );
        let result = dataset::shard(dataset, entry, |received| {
            ui.progress.set(Some(Progress {
                label: label.clone(),
                loaded: done + received,
                total,
            }))
        })
        .await;
        match result {
            Ok(set) => {
                loaded.train.borrow_mut().extend(&set);
                *loaded.train_shards.borrow_mut() += 1;
                done += entry.bytes;
            }
            Err(message) => {
                log::error!("{message}");
                ui.progress.set(Some(Progress {
                    label: format!("{message}; training goes on with the images already here"),
                    loaded: done,
                    total,
                }));
                *loaded.downloading.borrow_mut() = false;
                return;
            }
        }
    }
    *loaded.downloading.borrow_mut() = false;
    ui.progress.set(None);
}

/// Index of the first test image of each class, in class order.
fn wall_indices(test: &ImageSet) -> Vec<usize> {
    (0u8..10)
        .filter_map(|class| test.labels.iter().position(|&label| label == class))
        .collect()
}

/// Evaluates the current model, records its metrics and repaints the wall.
async fn evaluate_and_show(
    trainer: &Trainer,
    test: &ImageSet,
    backend: &Backend,
    shown: &[usize],
    ui: Ui,
) -> Result<(), String> {
    let model = trainer.inference_model();
    let metrics = train::evaluate(&model, test, EVAL_BATCH, &backend.device).await?;
    if !metrics.bce.is_finite() {
        return Err(format!(
            "the test loss became {} at epoch {}; lower the learning rate (now {}) and train again",
            metrics.bce,
            ui.epoch.get_untracked().0,
            trainer.options().learning_rate
        ));
    }
    let recreations = train::recreate(&model, test, shown, &backend.device).await?;
    let originals = shown
        .iter()
        .flat_map(|&index| test.image(index).iter().map(|&p| f32::from(p) / 255.0))
        .collect();
    ui.wall.set(Some(WallImages {
        originals,
        recreations,
    }));
    ui.test_metrics.update(|history| history.push(metrics));
    Ok(())
}

/// Trains as `settings` asks; returns whether the user stopped the run.
async fn train(settings: &RunSettings, ui: Ui) -> Result<bool, String> {
    ui.status.set(Status::Loading);
    let backend = backend::select(settings.backend).await;
    ui.backend.set(backend.label.clone());
    let loaded = load(settings.dataset, settings.train_limit, ui).await?;

    let mut test = loaded.test.clone();
    if let Some(limit) = settings.test_limit {
        test.truncate(limit);
    }
    let shown = wall_indices(&test);
    let limit = settings.train_limit.unwrap_or(usize::MAX);

    ui.status.set(Status::Training);
    let started = now_ms();
    let mut trainer = Trainer::new(settings.train_options(), &backend.device);
    evaluate_and_show(&trainer, &test, &backend, &shown, ui).await?;

    let mut smoothed: Option<f64> = None;
    let mut trained_images = 0usize;
    let mut training_ms = 0.0;
    for epoch in 1..=settings.epochs {
        ui.epoch.set((epoch, settings.epochs));
        let available = loaded.train.borrow().len().min(limit);
        trainer.begin_epoch(available);
        let steps_per_epoch = available.div_ceil(settings.batch_size).max(1) as f64;
        let mut step_in_epoch = 0usize;
        let mut pending: Vec<Tensor<1>> = Vec::new();
        let mut chunk_started = now_ms();

        loop {
            if ui.stop_requested.get_untracked() {
                return Ok(true);
            }
            let before = trainer.remaining();
            let loss = {
                let train = loaded.train.borrow();
                trainer.step(&train)
            };
            let Some(loss) = loss else { break };
            trained_images += before - trainer.remaining();
            pending.push(loss);

            if pending.len() >= REPORT_EVERY || trainer.remaining() < 2 {
                let losses = read_floats(Tensor::cat(std::mem::take(&mut pending), 0)).await?;
                let mut points = Vec::with_capacity(losses.len());
                for loss in losses {
                    step_in_epoch += 1;
                    let loss = f64::from(loss);
                    if !loss.is_finite() {
                        return Err(format!(
                            "the training loss became {loss} at epoch {epoch}, step {step_in_epoch}; the wall and metrics show the model from before this epoch; lower the learning rate (now {}) and train again",
                            settings.learning_rate
                        ));
                    }
                    let value = match smoothed {
                        Some(previous) => SMOOTHING * previous + (1.0 - SMOOTHING) * loss,
                        None => loss,
                    };
                    smoothed = Some(value);
                    points.push((
                        epoch as f64 - 1.0 + step_in_epoch as f64 / steps_per_epoch,
                        value,
                    ));
                }
                let now = now_ms();
                training_ms += now - chunk_started;
                chunk_started = now;
                ui.train_loss.set(smoothed);
                ui.train_curve.update(|curve| curve.extend(points));
                ui.throughput.set(Some(
                    trained_images as f64 / (training_ms / 1000.0).max(1e-3),
                ));
                ui.elapsed.set((now - started) / 1000.0);
            }
            yield_to_browser().await;
        }

        evaluate_and_show(&trainer, &test, &backend, &shown, ui).await?;
        ui.elapsed.set((now_ms() - started) / 1000.0);
    }
    Ok(false)
}
