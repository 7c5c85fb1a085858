//! Datasets: the official IDX files, the compressed shards the page downloads, and the
//! manifest that lists and checksums those shards.

pub mod idx;
pub mod manifest;
pub mod official;
pub mod shard;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Side of every image in both datasets, in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Pixels in one image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// The datasets the lab trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    Mnist,
    FashionMnist,
}

impl Dataset {
    pub const ALL: [Dataset; 2] = [Dataset::Mnist, Dataset::FashionMnist];

    /// Identifier used in URLs, folder names and the query string.
    pub fn slug(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
        }
    }

    /// Name shown to people.
    pub fn title(self) -> &'static str {
        match self {
            Dataset::Mnist => "MNIST",
            Dataset::FashionMnist => "Fashion-MNIST",
        }
    }

    /// Names of the ten classes, index = label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            Dataset::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Dataset::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl FromStr for Dataset {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Dataset::ALL
            .into_iter()
            .find(|dataset| dataset.slug() == value)
            .ok_or_else(|| {
                format!("unknown dataset `{value}`; expected `mnist` or `fashion-mnist`")
            })
    }
}

/// The training or the test split of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Greyscale images with their labels, pixels stored row by row as bytes (0 = background).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageSet {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// Builds a set after checking that there is one label per 28x28 image.
    pub fn new(pixels: Vec<u8>, labels: Vec<u8>) -> Result<Self, String> {
        if pixels.len() != labels.len() * IMAGE_PIXELS {
            return Err(format!(
                "{} pixel bytes do not make {} images of {IMAGE_SIDE}x{IMAGE_SIDE}",
                pixels.len(),
                labels.len()
            ));
        }
        Ok(Self { pixels, labels })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.pixels[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]
    }

    /// Appends the images of `other`.
    pub fn extend(&mut self, other: &ImageSet) {
        self.pixels.extend_from_slice(&other.pixels);
        self.labels.extend_from_slice(&other.labels);
    }

    /// Keeps only the first `count` images.
    pub fn truncate(&mut self, count: usize) {
        self.labels.truncate(count);
        self.pixels.truncate(self.labels.len() * IMAGE_PIXELS);
    }

    /// Mean and standard deviation of all pixels, scaled to [0, 1].
    pub fn pixel_stats(&self) -> (f64, f64) {
        let count = self.pixels.len() as f64;
        if count == 0.0 {
            return (0.0, 0.0);
        }
        let (sum, sum_sq) = self.pixels.iter().fold((0u64, 0u64), |(s, q), &p| {
            let p = u64::from(p);
            (s + p, q + p * p)
        });
        let mean = sum as f64 / count / 255.0;
        let mean_sq = sum_sq as f64 / count / (255.0 * 255.0);
        (mean, (mean_sq - mean * mean).max(0.0).sqrt())
    }
}

/// Lowercase hexadecimal SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
