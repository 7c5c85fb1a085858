//! The model the page shows: the pretrained one of a dataset, one trained in the page,
//! or one imported from a weights file. Exports and imports go through here.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;

use super::backend;
use super::dataset;
use super::fetch;
use super::session::show_model;
use super::ui::{Status, Ui};
use burn::prelude::Device;

use crate::data::Dataset;
use crate::model::Autoencoder;
use crate::settings::RunSettings;
use crate::weights::{self, ModelInfo};

/// A model with what is known about it.
pub struct Current {
    pub model: Autoencoder,
    pub info: ModelInfo,
    /// Device the model's weights live on.
    pub device: Device,
    /// Origin of the model, as the page labels it.
    origin: String,
    /// The model as a weights file, once exported, downloaded or imported: a copy off
    /// the GPU that survives the loss of the device.
    file: RefCell<Option<Rc<Vec<u8>>>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Current>>> = const { RefCell::new(None) };
}

pub fn get() -> Option<Rc<Current>> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Makes `model` the current model and describes it in the page.
pub fn set(model: Autoencoder, info: ModelInfo, device: &Device, origin: &str, ui: Ui) {
    let training = &info.training;
    ui.model_label.set(format!(
        "{origin}: {} on {}, {} epoch{} at batch {} and learning rate {}",
        model.preset(),
        info.dataset.title(),
        training.epochs,
        if training.epochs == 1 { "" } else { "s" },
        training.batch_size,
        training.learning_rate,
    ));
    let current = Current {
        model,
        info,
        device: device.clone(),
        origin: origin.to_string(),
        file: RefCell::new(None),
    };
    CURRENT.with(|slot| *slot.borrow_mut() = Some(Rc::new(current)));
    ui.model_version.update(|version| *version += 1);
}

/// Keeps `file`, the weights file the current model came from, as its copy off the GPU.
fn keep_file(file: Rc<Vec<u8>>) {
    if let Some(current) = get() {
        *current.file.borrow_mut() = Some(file);
    }
}

/// Moves the current model to the CPU after the WebGPU device it lived on was lost,
/// from its copy off the GPU, so that the wall, drawing and Export keep working.
pub fn move_to_cpu(ui: Ui) -> Result<(), String> {
    let Some(current) = get() else {
        return Ok(());
    };
    let cpu = Device::flex();
    if current.device == cpu {
        return Ok(());
    }
    let file = current
        .file
        .borrow()
        .clone()
        .ok_or("the model had no copy outside the GPU")?;
    let (model, info) = weights::import(&file, &cpu)
        .map_err(|error| format!("the copy of the model is unusable: {error}"))?;
    set(model, info, &cpu, &current.origin, ui);
    keep_file(file);
    Ok(())
}

/// URL of the pretrained weights of `dataset`, relative to the page.
fn pretrained_url(dataset: Dataset) -> String {
    format!("models/{}.aelab", dataset.slug())
}

/// Loads the pretrained model of `settings.dataset` and its test images, then paints the
/// wall and the test metrics without training.
pub async fn show_pretrained(settings: RunSettings, ui: Ui) {
    ui.running.set(true);
    ui.reset(0);
    ui.status.set(Status::Loading);
    let result = load_pretrained(&settings, ui).await;
    ui.progress.set(None);
    ui.status.set(match result {
        Ok(()) => Status::Idle,
        Err(message) => {
            log::error!("{message}");
            Status::Error(format!("{message}; training from scratch still works"))
        }
    });
    ui.running.set(false);
}

async fn load_pretrained(settings: &RunSettings, ui: Ui) -> Result<(), String> {
    let started = super::now_ms();
    let dataset = settings.dataset;
    // The device starts while the weights and the test images download; the bar follows
    // the images, the larger download.
    let url = pretrained_url(dataset);
    let (backend, loaded, bytes) = futures::join!(
        async {
            let backend = backend::select(settings.backend).await;
            super::mark("ae-lab:device");
            backend
        },
        async {
            let loaded = dataset::load_test(dataset, ui).await;
            super::mark("ae-lab:test-images");
            loaded
        },
        async {
            let bytes = fetch::bytes(&url, |_| {}).await;
            super::mark("ae-lab:weights");
            bytes
        }
    );
    ui.backend.set(backend.label.clone());
    let (loaded, bytes) = (loaded?, bytes?);
    let (model, info) = weights::import(&bytes, &backend.device).map_err(|error| {
        format!(
            "the pretrained {} model is unusable: {error}",
            dataset.title()
        )
    })?;
    show_model(&model, &loaded, settings.test_limit, &backend, ui).await?;
    set(model, info, &backend.device, "Pretrained", ui);
    keep_file(Rc::new(bytes));
    log::info!(
        "pretrained {} model shown {:.0} ms after the request",
        dataset.title(),
        super::now_ms() - started
    );
    Ok(())
}

/// Replaces the current model with the one in `bytes`, after checking it completely;
/// on any error the current model stays.
pub async fn import(
    bytes: Vec<u8>,
    name: &str,
    settings: RunSettings,
    ui: Ui,
) -> Result<Dataset, String> {
    let backend = backend::select(settings.backend).await;
    let (model, info) =
        weights::import(&bytes, &backend.device).map_err(|error| format!("{name}: {error}"))?;
    ui.status.set(Status::Loading);
    let loaded = dataset::load_test(info.dataset, ui).await?;
    ui.reset(info.training.epochs);
    show_model(&model, &loaded, settings.test_limit, &backend, ui).await?;
    ui.status.set(Status::Idle);
    let dataset = info.dataset;
    set(
        model,
        info,
        &backend.device,
        &format!("Imported from {name}"),
        ui,
    );
    keep_file(Rc::new(bytes));
    Ok(dataset)
}

/// Serialises the current model as a weights file, with a file name for the download.
pub async fn export() -> Result<(Vec<u8>, String), String> {
    let current = get().ok_or("there is no model to export yet")?;
    let file = current.file.borrow().clone();
    let bytes = match file {
        Some(file) => file.to_vec(),
        None => {
            let bytes = weights::export(&current.model, &current.info).await?;
            *current.file.borrow_mut() = Some(Rc::new(bytes.clone()));
            bytes
        }
    };
    let name = format!(
        "ae-lab-{}-{}-{}ep.aelab",
        current.info.dataset,
        current.model.preset(),
        current.info.training.epochs
    );
    Ok((bytes, name))
}
