//! The reactive state the page shows, shared by the view and the training session.

use std::fmt;

use leptos::prelude::*;

use crate::metrics::Metrics;

/// Activity of the page, as shown in the `status` element.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Idle,
    Loading,
    Training,
    Done,
    Stopped,
    Error(String),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Idle => f.write_str("idle"),
            Status::Loading => f.write_str("loading"),
            Status::Training => f.write_str("training"),
            Status::Done => f.write_str("done"),
            Status::Stopped => f.write_str("stopped"),
            Status::Error(message) => write!(f, "error: {message}"),
        }
    }
}

/// Bytes received out of the bytes expected for the current download.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub label: String,
    pub loaded: usize,
    pub total: usize,
}

/// Test images and their recreations for the wall, pixels in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct WallImages {
    pub originals: Vec<f32>,
    pub recreations: Vec<f32>,
}

/// Speed and memory of one training epoch, for the metrics table and the benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct EpochStats {
    /// Training images per second over this epoch, evaluation excluded.
    pub images_per_second: f64,
    /// Size of the WebAssembly memory at the end of the epoch; it never shrinks, so it
    /// is also its peak.
    pub wasm_bytes: f64,
    /// Largest JavaScript heap seen during the epoch, where the browser reports it.
    pub js_heap_bytes: Option<f64>,
    /// JavaScript heap after a full garbage collection at the end of the epoch, where
    /// the browser lets the page start one.
    pub js_heap_live_bytes: Option<f64>,
    /// Largest GPU memory Burn's allocator held during the epoch, on WebGPU.
    pub gpu_bytes: Option<f64>,
}

/// Signals of the page, cheap to copy into closures and tasks.
#[derive(Clone, Copy)]
pub struct Ui {
    pub status: RwSignal<Status>,
    pub backend: RwSignal<String>,
    pub progress: RwSignal<Option<Progress>>,
    /// Current epoch and the number of epochs of the run.
    pub epoch: RwSignal<(usize, usize)>,
    /// Exponentially smoothed training loss.
    pub train_loss: RwSignal<Option<f64>>,
    /// Smoothed training loss against fractional epochs.
    pub train_curve: RwSignal<Vec<(f64, f64)>>,
    /// Test metrics after each epoch, epoch 0 (before training) first.
    pub test_metrics: RwSignal<Vec<Metrics>>,
    /// Training images per second.
    pub throughput: RwSignal<Option<f64>>,
    /// Speed and memory of each finished epoch, epoch 1 first.
    pub epoch_stats: RwSignal<Vec<EpochStats>>,
    /// Seconds since the run started.
    pub elapsed: RwSignal<f64>,
    pub wall: RwSignal<Option<WallImages>>,
    pub running: RwSignal<bool>,
    pub stop_requested: RwSignal<bool>,
    /// Description of the current model and its training.
    pub model_label: RwSignal<String>,
    /// Reason the last export or import failed.
    pub model_error: RwSignal<Option<String>>,
    /// Description of a model saved in this browser by an earlier visit, offered for
    /// resuming.
    pub saved: RwSignal<Option<String>>,
    /// Increases whenever the current model changes, so views that use it can refresh.
    pub model_version: RwSignal<u64>,
}

impl Ui {
    pub fn new() -> Self {
        Self {
            status: RwSignal::new(Status::Idle),
            backend: RwSignal::new("not started".into()),
            progress: RwSignal::new(None),
            epoch: RwSignal::new((0, 0)),
            train_loss: RwSignal::new(None),
            train_curve: RwSignal::new(Vec::new()),
            test_metrics: RwSignal::new(Vec::new()),
            throughput: RwSignal::new(None),
            epoch_stats: RwSignal::new(Vec::new()),
            elapsed: RwSignal::new(0.0),
            wall: RwSignal::new(None),
            running: RwSignal::new(false),
            stop_requested: RwSignal::new(false),
            model_label: RwSignal::new("no model yet".into()),
            model_error: RwSignal::new(None),
            model_version: RwSignal::new(0),
            saved: RwSignal::new(None),
        }
    }

    /// Clears the figures of a previous run.
    pub fn reset(&self, epochs: usize) {
        self.epoch.set((0, epochs));
        self.train_loss.set(None);
        self.train_curve.set(Vec::new());
        self.test_metrics.set(Vec::new());
        self.throughput.set(None);
        self.epoch_stats.set(Vec::new());
        self.elapsed.set(0.0);
        self.progress.set(None);
        self.stop_requested.set(false);
    }
}
