//! The official distribution of each dataset: file names, where to download them, and
//! the SHA-256 of each decompressed file, which `cargo xtask data` checks before it
//! writes any shard.

use std::io::Read;

use flate2::read::GzDecoder;

use super::{Dataset, Split};

/// One official IDX file.
#[derive(Clone, Copy, Debug)]
pub struct OfficialFile {
    pub name: &'static str,
    /// SHA-256 of the decompressed file, lowercase hexadecimal.
    pub sha256: &'static str,
}

/// The image and label files of one split.
#[derive(Clone, Copy, Debug)]
pub struct OfficialSplit {
    pub images: OfficialFile,
    pub labels: OfficialFile,
}

impl Dataset {
    /// Base URLs the official files can be downloaded from, tried in order.
    pub fn download_bases(self) -> &'static [&'static str] {
        match self {
            Dataset::Mnist => &[
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
            ],
            Dataset::FashionMnist => {
                &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
            }
        }
    }

    /// Official files of `split`.
    pub fn official(self, split: Split) -> OfficialSplit {
        let file = |name, sha256| OfficialFile { name, sha256 };
        match (self, split) {
            (Dataset::Mnist, Split::Train) => OfficialSplit {
                images: file(
                    "train-images-idx3-ubyte.gz",
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                ),
                labels: file(
                    "train-labels-idx1-ubyte.gz",
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                ),
            },
            (Dataset::Mnist, Split::Test) => OfficialSplit {
                images: file(
                    "t10k-images-idx3-ubyte.gz",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                ),
                labels: file(
                    "t10k-labels-idx1-ubyte.gz",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            },
            (Dataset::FashionMnist, Split::Train) => OfficialSplit {
                images: file(
                    "train-images-idx3-ubyte.gz",
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                ),
                labels: file(
                    "train-labels-idx1-ubyte.gz",
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                ),
            },
            (Dataset::FashionMnist, Split::Test) => OfficialSplit {
                images: file(
                    "t10k-images-idx3-ubyte.gz",
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                ),
                labels: file(
                    "t10k-labels-idx1-ubyte.gz",
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                ),
            },
        }
    }
}

/// Decompresses a gzip file read into memory.
pub fn gunzip(compressed: &[u8]) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    GzDecoder::new(compressed)
        .read_to_end(&mut raw)
        .map_err(|error| format!("not valid gzip data: {error}"))?;
    Ok(raw)
}
