//! One training run in the page: start the backend, download the data, train epoch by
//! epoch while yielding to the browser, and publish every figure through [`Ui`].

use burn::prelude::*;
use leptos::prelude::*;

use super::backend::{self, Backend};
use super::current;
use super::dataset::{self, Loaded};
use super::ui::{EpochStats, Status, Ui, WallImages};
use super::{
    js_heap_bytes, js_heap_live_bytes, now_ms, wasm_memory_bytes, yield_to_browser, yield_to_paint,
};
use crate::data::ImageSet;
use crate::metrics::Metrics;
use crate::model::Autoencoder;
use crate::settings::RunSettings;
use crate::train::{self, Trainer, read_floats};
use crate::weights::{ModelInfo, TrainingRecord};

/// Steps between reads of the training loss. Reading waits for the GPU, so reading
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
    ui.progress.update(|progress| {
        if progress
            .as_ref()
            .is_some_and(|p| p.total > 0 && p.loaded >= p.total)
        {
            *progress = None;
        }
    });
    // A lost device shows up as whichever GPU operation failed first, so the page reports
    // the loss itself instead.
    let on_gpu = ui.backend.get_untracked() == "WebGPU";
    let lost = match &outcome {
        Err(_) if on_gpu => wait_for_gpu_lost().await,
        _ => None,
    };
    let outcome = match lost {
        Some(reason) => Err(after_gpu_loss(&reason, ui)),
        None => outcome,
    };
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

/// Returns the reason the WebGPU device was lost, waiting up to a second for the
/// browser to report it, because a failed GPU operation can come first.
async fn wait_for_gpu_lost() -> Option<String> {
    for _ in 0..20 {
        if let Some(reason) = backend::gpu_lost() {
            return Some(reason);
        }
        gloo_timers::future::TimeoutFuture::new(50).await;
    }
    backend::gpu_lost()
}

/// Moves the current model to the CPU after the WebGPU device was lost and returns the
/// message for the page.
fn after_gpu_loss(reason: &str, ui: Ui) -> String {
    let model_state = match current::move_to_cpu(ui) {
        Ok(()) => "the model in the Model panel is kept and now runs on the CPU".to_string(),
        Err(error) => format!(
            "the model in the Model panel could not be moved to the CPU ({error}); reload the page to get back the last model saved in this browser"
        ),
    };
    format!(
        "the WebGPU device was lost ({reason}), so training stopped; {model_state}. Train again to continue on the CPU, or reload the page to use WebGPU"
    )
}

/// Index of the first test image of each class, in class order.
fn wall_indices(test: &ImageSet) -> Vec<usize> {
    (0u8..10)
        .filter_map(|class| test.labels.iter().position(|&label| label == class))
        .collect()
}

fn test_images(loaded: &Loaded, limit: Option<usize>) -> ImageSet {
    let mut test = loaded.test.clone();
    if let Some(limit) = limit {
        test.truncate(limit);
    }
    test
}

/// Repaints the wall with `model`'s recreations, then evaluates it on the test images
/// and records its metrics. The wall comes first because it takes ten images, not
/// thousands.
async fn evaluate_and_show(
    model: &Autoencoder,
    test: &ImageSet,
    backend: &Backend,
    ui: Ui,
) -> Result<Metrics, String> {
    let shown = wall_indices(test);
    let recreations = train::recreate(model, test, &shown, &backend.device).await?;
    let originals = shown
        .iter()
        .flat_map(|&index| test.image(index).iter().map(|&p| f32::from(p) / 255.0))
        .collect();
    ui.wall.set(Some(WallImages {
        originals,
        recreations,
    }));
    yield_to_paint().await;
    super::mark("ae-lab:wall");

    let metrics =
        train::evaluate_with_pauses(model, test, EVAL_BATCH, &backend.device, yield_to_browser)
            .await?;
    if !metrics.bce.is_finite() {
        return Err(format!(
            "the test loss became {} at epoch {}",
            metrics.bce,
            ui.epoch.get_untracked().0
        ));
    }
    ui.test_metrics.update(|history| history.push(metrics));
    Ok(metrics)
}

/// Evaluates and shows a model that is not being trained (pretrained or imported).
pub async fn show_model(
    model: &Autoencoder,
    loaded: &Loaded,
    test_limit: Option<usize>,
    backend: &Backend,
    ui: Ui,
) -> Result<Metrics, String> {
    let test = test_images(loaded, test_limit);
    evaluate_and_show(model, &test, backend, ui).await
}

fn training_record(settings: &RunSettings, epochs: usize) -> TrainingRecord {
    TrainingRecord {
        epochs,
        batch_size: settings.batch_size,
        learning_rate: settings.learning_rate,
        seed: settings.seed,
        train_limit: settings.train_limit,
    }
}

/// Saves the current model in IndexedDB with the settings of its run; a failure is
/// shown but does not stop training.
async fn save_in_browser(settings: &RunSettings, ui: Ui) {
    let mut resume = settings.clone();
    resume.autostart = false;
    let result = match current::export().await {
        Ok((bytes, _)) => super::storage::save(&bytes, &resume.to_query()).await,
        Err(message) => Err(message),
    };
    if let Err(message) = result {
        log::warn!("saving the model in the browser failed: {message}");
        ui.model_error.set(Some(format!(
            "saving the model in this browser failed ({message}); use Export to keep it"
        )));
    }
}

/// Returns the larger of two optional readings, or the one that exists.
fn peak(earlier: Option<f64>, now: Option<f64>) -> Option<f64> {
    match (earlier, now) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Trains as `settings` requests and returns whether the user stopped the run.
async fn train(settings: &RunSettings, ui: Ui) -> Result<bool, String> {
    ui.status.set(Status::Loading);
    let backend = backend::select(settings.backend).await;
    ui.backend.set(backend.label.clone());
    if backend::gpu_lost().is_some() {
        current::move_to_cpu(ui)?;
    }
    let on_gpu = backend.device != Device::flex();
    let loaded = dataset::load_test(settings.dataset, ui).await?;
    dataset::load_train(&loaded, settings.train_limit, ui).await?;

    let test = test_images(&loaded, settings.test_limit);
    let limit = settings.train_limit.unwrap_or(usize::MAX);

    ui.status.set(Status::Training);
    let started = now_ms();
    let start_from = settings.fine_tune.then(current::get).flatten();
    let (mut trainer, first_epoch, origin) = match start_from {
        Some(start) => (
            Trainer::from_model(
                start.model.clone(),
                settings.train_options(),
                &backend.device,
            ),
            start.info.training.epochs,
            "Fine-tuned in this page",
        ),
        None => (
            Trainer::new(settings.train_options(), &backend.device),
            0,
            "Trained in this page",
        ),
    };
    evaluate_and_show(&trainer.inference_model(), &test, &backend, ui).await?;

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
        let mut epoch_images = 0usize;
        let mut epoch_ms = 0.0;
        let mut js_heap_peak = None;
        let mut gpu_peak = None;

        loop {
            if ui.stop_requested.get_untracked() {
                return Ok(true);
            }
            if on_gpu && let Some(reason) = backend::gpu_lost() {
                return Err(format!("the WebGPU device was lost ({reason})"));
            }
            let before = trainer.remaining();
            let loss = {
                let train = loaded.train.borrow();
                trainer.step(&train)
            };
            let Some(loss) = loss else { break };
            trained_images += before - trainer.remaining();
            epoch_images += before - trainer.remaining();
            pending.push(loss);

            if pending.len() >= REPORT_EVERY || trainer.remaining() < 2 {
                let losses = read_floats(Tensor::cat(std::mem::take(&mut pending), 0)).await?;
                let mut points = Vec::with_capacity(losses.len());
                for loss in losses {
                    step_in_epoch += 1;
                    let loss = f64::from(loss);
                    if !loss.is_finite() {
                        return Err(format!(
                            "the training loss became {loss} at epoch {epoch}, step {step_in_epoch}; the wall, the metrics and Export keep the model from before this epoch; lower the learning rate (now {}) and train again",
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
                epoch_ms += now - chunk_started;
                chunk_started = now;
                js_heap_peak = peak(js_heap_peak, js_heap_bytes());
                gpu_peak = peak(
                    gpu_peak,
                    backend
                        .device
                        .memory_pool_usage()
                        .map(|usage| usage.bytes_reserved as f64),
                );
                ui.train_loss.set(smoothed);
                ui.train_curve.update(|curve| curve.extend(points));
                ui.throughput.set(Some(
                    trained_images as f64 / (training_ms / 1000.0).max(1e-3),
                ));
                ui.elapsed.set((now - started) / 1000.0);
            }
            yield_to_browser().await;
        }

        ui.epoch_stats.update(|stats| {
            stats.push(EpochStats {
                images_per_second: epoch_images as f64 / (epoch_ms / 1000.0).max(1e-3),
                wasm_bytes: wasm_memory_bytes(),
                js_heap_bytes: js_heap_peak,
                js_heap_live_bytes: js_heap_live_bytes(),
                gpu_bytes: gpu_peak,
            });
        });
        let model = trainer.inference_model();
        let metrics = evaluate_and_show(&model, &test, &backend, ui).await?;
        let info = ModelInfo {
            dataset: settings.dataset,
            training: training_record(settings, first_epoch + epoch),
            metrics: Some(metrics),
        };
        current::set(model, info, &backend.device, origin, ui);
        save_in_browser(settings, ui).await;
        ui.elapsed.set((now_ms() - started) / 1000.0);
    }
    Ok(false)
}
