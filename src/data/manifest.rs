//! The manifest of a dataset's shards: counts, image shape, pixel statistics and the
//! SHA-256 of each compressed shard, so the page can verify what it downloads.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::shard::{self, ShardError};
use super::{Dataset, IMAGE_SIDE, ImageSet, sha256_hex};

/// Version of the manifest and shard layout, to be increased whenever either changes.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the manifest inside a dataset's shard folder.
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub dataset: Dataset,
    /// Rows and columns of each image.
    pub image_shape: [usize; 2],
    /// Mean of the training pixels, scaled to [0, 1].
    pub pixel_mean: f64,
    /// Standard deviation of the training pixels, scaled to [0, 1].
    pub pixel_std: f64,
    pub train: SplitEntry,
    pub test: SplitEntry,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitEntry {
    pub count: usize,
    pub shards: Vec<ShardEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name relative to the manifest.
    pub file: String,
    pub count: usize,
    /// Size of the compressed file in bytes.
    pub bytes: usize,
    /// SHA-256 of the compressed file, lowercase hexadecimal.
    pub sha256: String,
}

#[derive(Debug, Error, PartialEq)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest has format version {found}, this app reads version {FORMAT_VERSION}")]
    Version { found: u32 },
    #[error("manifest lists images of {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")]
    Shape { rows: usize, cols: usize },
    #[error("manifest {split} count {count} differs from the sum of its shards, {sum}")]
    Count {
        split: &'static str,
        count: usize,
        sum: usize,
    },
    #[error("manifest names shard `{0}`, which is not a plain file name")]
    FileName(String),
    #[error("shard {file} is {actual} bytes, the manifest says {expected}")]
    Size {
        file: String,
        expected: usize,
        actual: usize,
    },
    #[error("shard {file} has SHA-256 {actual}, the manifest says {expected}")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("shard {file} is damaged: {source}")]
    Shard { file: String, source: ShardError },
    #[error("shard {file} holds {actual} images, the manifest says {expected}")]
    ShardCount {
        file: String,
        expected: usize,
        actual: usize,
    },
}

impl Manifest {
    /// Parses and checks a manifest, rejecting anything the page could not use safely.
    pub fn parse(json: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            serde_json::from_str(json).map_err(|error| ManifestError::Json(error.to_string()))?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(ManifestError::Version {
                found: manifest.format_version,
            });
        }
        let [rows, cols] = manifest.image_shape;
        if rows != IMAGE_SIDE || cols != IMAGE_SIDE {
            return Err(ManifestError::Shape { rows, cols });
        }
        for (split, entry) in [("train", &manifest.train), ("test", &manifest.test)] {
            let sum: usize = entry.shards.iter().map(|shard| shard.count).sum();
            if sum != entry.count {
                return Err(ManifestError::Count {
                    split,
                    count: entry.count,
                    sum,
                });
            }
            for shard in &entry.shards {
                let plain = !shard.file.is_empty()
                    && shard
                        .file
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    && !shard.file.starts_with('.');
                if !plain {
                    return Err(ManifestError::FileName(shard.file.clone()));
                }
            }
        }
        Ok(manifest)
    }
}

impl ShardEntry {
    /// Describes `compressed`, the encoded shard of `set`, under the name `file`.
    pub fn describe(file: String, set: &ImageSet, compressed: &[u8]) -> Self {
        Self {
            file,
            count: set.len(),
            bytes: compressed.len(),
            sha256: sha256_hex(compressed),
        }
    }

    /// Checks a downloaded shard against this entry and decodes it.
    pub fn verify(&self, compressed: &[u8]) -> Result<ImageSet, ManifestError> {
        if compressed.len() != self.bytes {
            return Err(ManifestError::Size {
                file: self.file.clone(),
                expected: self.bytes,
                actual: compressed.len(),
            });
        }
        let actual = sha256_hex(compressed);
        if actual != self.sha256 {
            return Err(ManifestError::Checksum {
                file: self.file.clone(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        let set = shard::decode(compressed).map_err(|source| ManifestError::Shard {
            file: self.file.clone(),
            source,
        })?;
        if set.len() != self.count {
            return Err(ManifestError::ShardCount {
                file: self.file.clone(),
                expected: self.count,
                actual: set.len(),
            });
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IMAGE_PIXELS;

    fn sample_manifest() -> (Manifest, Vec<u8>) {
        let set = ImageSet::new(vec![9; 2 * IMAGE_PIXELS], vec![1, 2]).unwrap();
        let compressed = shard::encode(&set);
        let entry = ShardEntry::describe("test-00.shard".into(), &set, &compressed);
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            dataset: Dataset::Mnist,
            image_shape: [28, 28],
            pixel_mean: 0.1,
            pixel_std: 0.3,
            train: SplitEntry {
                count: 2,
                shards: vec![entry.clone()],
            },
            test: SplitEntry {
                count: 2,
                shards: vec![entry],
            },
        };
        (manifest, compressed)
    }

    #[test]
    fn json_round_trip() {
        let (manifest, _) = sample_manifest();
        let json = serde_json::to_string(&manifest).unwrap();
        assert_eq!(Manifest::parse(&json).unwrap(), manifest);
    }

    #[test]
    fn verify_accepts_matching_shard() {
        let (manifest, compressed) = sample_manifest();
        let set = manifest.test.shards[0].verify(&compressed).unwrap();
        assert_eq!(set.labels, vec![1, 2]);
    }

    #[test]
    fn verify_rejects_changed_byte() {
        let (manifest, mut compressed) = sample_manifest();
        let last = compressed.len() - 1;
        compressed[last] ^= 1;
        let error = manifest.test.shards[0].verify(&compressed).unwrap_err();
        assert!(matches!(error, ManifestError::Checksum { .. }), "{error}");
        assert!(error.to_string().contains("test-00.shard"), "{error}");
    }

    #[test]
    fn verify_rejects_short_download() {
        let (manifest, compressed) = sample_manifest();
        let error = manifest.test.shards[0]
            .verify(&compressed[..10])
            .unwrap_err();
        assert!(
            matches!(error, ManifestError::Size { actual: 10, .. }),
            "{error}"
        );
    }

    #[test]
    fn parse_rejects_path_in_file_name() {
        let (mut manifest, _) = sample_manifest();
        manifest.test.shards[0].file = "../secret".into();
        let json = serde_json::to_string(&manifest).unwrap();
        let error = Manifest::parse(&json).unwrap_err();
        assert_eq!(error, ManifestError::FileName("../secret".into()));
    }

    #[test]
    fn parse_rejects_other_version() {
        let (mut manifest, _) = sample_manifest();
        manifest.format_version = 99;
        let json = serde_json::to_string(&manifest).unwrap();
        let error = Manifest::parse(&json).unwrap_err();
        assert_eq!(error, ManifestError::Version { found: 99 });
    }

    #[test]
    fn parse_rejects_html() {
        let error = Manifest::parse("<html>").unwrap_err();
        assert!(matches!(error, ManifestError::Json(_)), "{error}");
    }
}
