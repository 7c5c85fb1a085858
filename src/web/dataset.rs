//! Downloads a dataset's manifest and shards, verifies each shard, and keeps what
//! arrived for later runs in the same page.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::data::manifest::{MANIFEST_FILE, Manifest, ShardEntry};
use crate::data::{Dataset, ImageSet};

use super::fetch;

/// The images of one dataset that have arrived so far.
pub struct Loaded {
    pub manifest: Manifest,
    pub test: ImageSet,
    /// Training images, growing while the remaining shards download.
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
pub async fn shard(
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

pub async fn manifest(dataset: Dataset) -> Result<Manifest, String> {
    let url = format!("{}{MANIFEST_FILE}", base_url(dataset));
    let json = fetch::text(&url).await?;
    Manifest::parse(&json)
        .map_err(|error| format!("{} manifest rejected: {error}", dataset.title()))
}

pub fn cached(dataset: Dataset) -> Option<Rc<Loaded>> {
    CACHE.with(|cache| cache.borrow().get(&dataset).cloned())
}

pub fn remember(loaded: Rc<Loaded>) {
    CACHE.with(|cache| {
        cache
            .borrow_mut()
            .insert(loaded.manifest.dataset, loaded.clone())
    });
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
