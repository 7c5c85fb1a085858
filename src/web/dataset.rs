//! Downloads a dataset's manifest and shards, verifies each shard, and keeps what
//! arrived for later runs in the same page.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::fetch;
use super::ui::{Progress, Ui};
use crate::data::manifest::{MANIFEST_FILE, Manifest, ShardEntry};
use crate::data::{Dataset, ImageSet};

/// The images of one dataset that have arrived so far.
pub struct Loaded {
    pub manifest: Manifest,
    pub test: ImageSet,
    /// Training images, growing while the training shards download.
    pub train: RefCell<ImageSet>,
    /// Training shards already appended to `train`.
    pub train_shards: RefCell<usize>,
    /// Set while a background download of training shards runs.
    pub downloading: RefCell<bool>,
}

thread_local! {
    static CACHE: RefCell<HashMap<Dataset, Rc<Loaded>>> = RefCell::new(HashMap::new());
}

/// Folder the shards of `dataset` are served from, relative to the page.
fn base_url(dataset: Dataset) -> String {
    format!("data/{}/", dataset.slug())
}

/// Downloads and verifies one shard, reporting bytes received through `on_progress`.
async fn shard(
    dataset: Dataset,
    entry: &ShardEntry,
    on_progress: impl FnMut(usize),
) -> Result<ImageSet, String> {
    let url = format!("{}{}", base_url(dataset), entry.file);
    let bytes = fetch::bytes(&url, on_progress).await?;
    entry
        .verify(&bytes)
        .map_err(|error| format!("{} shard rejected: {error}", dataset.title()))
}

async fn manifest(dataset: Dataset) -> Result<Manifest, String> {
    let url = format!("{}{MANIFEST_FILE}", base_url(dataset));
    let json = fetch::text(&url).await?;
    Manifest::parse(&json)
        .map_err(|error| format!("{} manifest rejected: {error}", dataset.title()))
}

/// Downloads `entries` one after the other with one progress bar, labelled `label`.
async fn shards(
    dataset: Dataset,
    entries: &[ShardEntry],
    label: &str,
    ui: Ui,
) -> Result<Vec<ImageSet>, String> {
    let total: usize = entries.iter().map(|entry| entry.bytes).sum();
    let mut done = 0;
    let mut sets = Vec::with_capacity(entries.len());
    for entry in entries {
        let set = shard(dataset, entry, |received| {
            ui.progress.set(Some(Progress {
                label: label.to_string(),
                loaded: done + received,
                total,
            }))
        })
        .await?;
        done += entry.bytes;
        sets.push(set);
    }
    Ok(sets)
}

/// Returns `dataset` with its test images, downloading the manifest and the test shards
/// on first use.
pub async fn load_test(dataset: Dataset, ui: Ui) -> Result<Rc<Loaded>, String> {
    if let Some(loaded) = CACHE.with(|cache| cache.borrow().get(&dataset).cloned()) {
        return Ok(loaded);
    }
    ui.progress.set(Some(Progress {
        label: format!("{} manifest", dataset.title()),
        loaded: 0,
        total: 0,
    }));
    let manifest = manifest(dataset).await?;
    let label = format!("{} test images", dataset.title());
    let mut test = ImageSet::default();
    for set in shards(dataset, &manifest.test.shards, &label, ui).await? {
        test.extend(&set);
    }
    ui.progress.set(None);
    if test.is_empty() {
        return Err(format!(
            "the {} manifest lists no test images",
            dataset.title()
        ));
    }

    let loaded = Rc::new(Loaded {
        manifest,
        test,
        train: RefCell::default(),
        train_shards: 0.into(),
        downloading: false.into(),
    });
    CACHE.with(|cache| cache.borrow_mut().insert(dataset, loaded.clone()));
    Ok(loaded)
}

/// Number of training shards needed to cover `limit` images (all when `None`).
pub fn shards_needed(manifest: &Manifest, limit: Option<usize>) -> usize {
    let Some(limit) = limit else {
        return manifest.train.shards.len();
    };
    let mut covered = 0;
    for (index, entry) in manifest.train.shards.iter().enumerate() {
        covered += entry.count;
        if covered >= limit {
            return index + 1;
        }
    }
    manifest.train.shards.len()
}

/// Downloads the first training shard if missing, then starts a background download of
/// the further shards needed for `limit` training images.
pub async fn load_train(loaded: &Rc<Loaded>, limit: Option<usize>, ui: Ui) -> Result<(), String> {
    let dataset = loaded.manifest.dataset;
    if *loaded.train_shards.borrow() == 0 {
        let first =
            loaded.manifest.train.shards.first().ok_or_else(|| {
                format!("the {} manifest lists no training shard", dataset.title())
            })?;
        let label = format!("{} first training shard", dataset.title());
        let set = shards(dataset, std::slice::from_ref(first), &label, ui).await?;
        loaded.train.borrow_mut().extend(&set[0]);
        *loaded.train_shards.borrow_mut() = 1;
        ui.progress.set(None);
    }

    let needed = shards_needed(&loaded.manifest, limit);
    if *loaded.train_shards.borrow() < needed && !*loaded.downloading.borrow() {
        *loaded.downloading.borrow_mut() = true;
        spawn_local(download_rest(loaded.clone(), needed, ui));
    }
    Ok(())
}

/// Appends training shards up to `needed` while training runs on what has arrived.
async fn download_rest(loaded: Rc<Loaded>, needed: usize, ui: Ui) {
    let dataset = loaded.manifest.dataset;
    let entries: Vec<_> = loaded.manifest.train.shards[..needed].to_vec();
    let total: usize = entries.iter().map(|entry| entry.bytes).sum();
    let first = *loaded.train_shards.borrow();
    let mut done: usize = entries[..first].iter().map(|entry| entry.bytes).sum();
    for (index, entry) in entries.iter().enumerate().skip(first) {
        let label = format!(
            "{} training shard {} of {needed} (training goes on meanwhile)",
            dataset.title(),
            index + 1
        );
        let result = shard(dataset, entry, |received| {
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
