//! The shard format the page downloads: a slice of a dataset split, gzip-compressed.
//!
//! Decompressed layout (little-endian): the magic `AESHARD1`, the image count as `u32`,
//! rows and columns as `u16`, then `count * rows * cols` pixel bytes and `count` label
//! bytes.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use thiserror::Error;

use super::{IMAGE_PIXELS, IMAGE_SIDE, ImageSet};

const MAGIC: &[u8; 8] = b"AESHARD1";
const HEADER_LEN: usize = MAGIC.len() + 4 + 2 + 2;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShardError {
    #[error("shard is not valid gzip data: {0}")]
    Compression(String),
    #[error("shard does not start with the AESHARD1 marker; it is not a shard of this app")]
    BadMagic,
    #[error("shard is truncated: expected {expected} bytes after decompression, found {actual}")]
    Truncated { expected: usize, actual: usize },
    #[error("shard images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")]
    BadShape { rows: usize, cols: usize },
    #[error("shard has {extra} unexpected bytes after its labels")]
    TrailingBytes { extra: usize },
}

/// Encodes `set` as a gzip-compressed shard.
pub fn encode(set: &ImageSet) -> Vec<u8> {
    let mut raw = Vec::with_capacity(HEADER_LEN + set.pixels.len() + set.labels.len());
    raw.extend_from_slice(MAGIC);
    raw.extend_from_slice(&(set.len() as u32).to_le_bytes());
    raw.extend_from_slice(&(IMAGE_SIDE as u16).to_le_bytes());
    raw.extend_from_slice(&(IMAGE_SIDE as u16).to_le_bytes());
    raw.extend_from_slice(&set.pixels);
    raw.extend_from_slice(&set.labels);

    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(&raw)
        .expect("writing to an in-memory buffer cannot fail");
    encoder
        .finish()
        .expect("writing to an in-memory buffer cannot fail")
}

/// Decodes a gzip-compressed shard.
pub fn decode(compressed: &[u8]) -> Result<ImageSet, ShardError> {
    let mut raw = Vec::new();
    GzDecoder::new(compressed)
        .read_to_end(&mut raw)
        .map_err(|error| ShardError::Compression(error.to_string()))?;

    if raw.len() < HEADER_LEN {
        return Err(ShardError::Truncated {
            expected: HEADER_LEN,
            actual: raw.len(),
        });
    }
    if &raw[..MAGIC.len()] != MAGIC {
        return Err(ShardError::BadMagic);
    }
    let field = |at: usize, len: usize| {
        let mut value = [0u8; 4];
        value[..len].copy_from_slice(&raw[at..at + len]);
        u32::from_le_bytes(value) as usize
    };
    let count = field(8, 4);
    let rows = field(12, 2);
    let cols = field(14, 2);
    if rows != IMAGE_SIDE || cols != IMAGE_SIDE {
        return Err(ShardError::BadShape { rows, cols });
    }

    let expected = HEADER_LEN + count * (IMAGE_PIXELS + 1);
    if raw.len() < expected {
        return Err(ShardError::Truncated {
            expected,
            actual: raw.len(),
        });
    }
    if raw.len() > expected {
        return Err(ShardError::TrailingBytes {
            extra: raw.len() - expected,
        });
    }
    let labels_start = HEADER_LEN + count * IMAGE_PIXELS;
    Ok(ImageSet {
        pixels: raw[HEADER_LEN..labels_start].to_vec(),
        labels: raw[labels_start..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(count: usize) -> ImageSet {
        let pixels = (0..count * IMAGE_PIXELS)
            .map(|i| (i * 7 % 256) as u8)
            .collect();
        let labels = (0..count).map(|i| (i % 10) as u8).collect();
        ImageSet::new(pixels, labels).unwrap()
    }

    #[test]
    fn round_trip() {
        let set = sample(5);
        assert_eq!(decode(&encode(&set)).unwrap(), set);
    }

    #[test]
    fn empty_round_trip() {
        let set = ImageSet::default();
        assert_eq!(decode(&encode(&set)).unwrap(), set);
    }

    #[test]
    fn not_gzip_rejected() {
        let error = decode(b"<!doctype html><p>Not found</p>").unwrap_err();
        assert!(matches!(error, ShardError::Compression(_)), "{error}");
    }

    #[test]
    fn cut_compressed_stream_rejected() {
        let bytes = encode(&sample(3));
        let error = decode(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(matches!(error, ShardError::Compression(_)), "{error}");
    }

    #[test]
    fn wrong_magic_rejected() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(b"NOTASHARD-AT-ALL").unwrap();
        let error = decode(&encoder.finish().unwrap()).unwrap_err();
        assert_eq!(error, ShardError::BadMagic);
    }
}
