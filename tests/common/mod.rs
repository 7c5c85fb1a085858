//! Helpers shared by the integration tests: where the official dataset files are and
//! how to read them.

use std::path::PathBuf;

use ae_lab::data::official::gunzip;
use ae_lab::data::{Dataset, ImageSet, Split, idx, sha256_hex};

/// Folder with one sub-folder of official IDX files per dataset. `AE_LAB_DATA_DIR`
/// overrides the default `../shared/data` next to the repository.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("AE_LAB_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

/// Reads a decompressed official file and checks its SHA-256.
pub fn read_official(dataset: Dataset, name: &str, sha256: &str) -> Vec<u8> {
    let path = data_dir().join(dataset.slug()).join(name);
    let compressed = std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; set AE_LAB_DATA_DIR to the folder with the official files",
            path.display()
        )
    });
    let raw = gunzip(&compressed).unwrap();
    assert_eq!(sha256_hex(&raw), sha256, "checksum of {}", path.display());
    raw
}

/// Loads one split of a dataset from the official files.
pub fn load(dataset: Dataset, split: Split) -> ImageSet {
    let files = dataset.official(split);
    let images = read_official(dataset, files.images.name, files.images.sha256);
    let labels = read_official(dataset, files.labels.name, files.labels.sha256);
    idx::parse_pair(&images, &labels).unwrap()
}
