//! Parser for the IDX format of the official MNIST and Fashion-MNIST files.
//!
//! Layout (big-endian): a 4-byte magic (`0x00000803` for images, `0x00000801` for
//! labels), the item count, for images the rows and columns, then one byte per pixel or
//! label.

use thiserror::Error;

use super::{IMAGE_SIDE, ImageSet};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdxError {
    #[error("IDX {kind} file is truncated: expected {expected} bytes, found {actual}")]
    Truncated {
        kind: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("IDX {kind} file has magic number {found:#010x}, expected {expected:#010x}")]
    BadMagic {
        kind: &'static str,
        found: u32,
        expected: u32,
    },
    #[error("IDX images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")]
    BadShape { rows: u32, cols: u32 },
    #[error("IDX {kind} file has {extra} bytes after its last item")]
    TrailingBytes { kind: &'static str, extra: usize },
    #[error("{images} images but {labels} labels")]
    CountMismatch { images: usize, labels: usize },
    #[error("label {label} at index {index} is not a class between 0 and 9")]
    BadLabel { index: usize, label: u8 },
}

fn read_u32(bytes: &[u8], offset: usize, kind: &'static str) -> Result<u32, IdxError> {
    let field = bytes.get(offset..offset + 4).ok_or(IdxError::Truncated {
        kind,
        expected: offset + 4,
        actual: bytes.len(),
    })?;
    Ok(u32::from_be_bytes([field[0], field[1], field[2], field[3]]))
}

fn check_body(
    bytes: &[u8],
    header: usize,
    body: usize,
    kind: &'static str,
) -> Result<(), IdxError> {
    let expected = header + body;
    if bytes.len() < expected {
        return Err(IdxError::Truncated {
            kind,
            expected,
            actual: bytes.len(),
        });
    }
    if bytes.len() > expected {
        return Err(IdxError::TrailingBytes {
            kind,
            extra: bytes.len() - expected,
        });
    }
    Ok(())
}

/// Parses a decompressed IDX image file into its pixel bytes.
pub fn parse_images(bytes: &[u8]) -> Result<Vec<u8>, IdxError> {
    let kind = "image";
    let magic = read_u32(bytes, 0, kind)?;
    if magic != IMAGES_MAGIC {
        return Err(IdxError::BadMagic {
            kind,
            found: magic,
            expected: IMAGES_MAGIC,
        });
    }
    let count = read_u32(bytes, 4, kind)? as usize;
    let rows = read_u32(bytes, 8, kind)?;
    let cols = read_u32(bytes, 12, kind)?;
    if rows as usize != IMAGE_SIDE || cols as usize != IMAGE_SIDE {
        return Err(IdxError::BadShape { rows, cols });
    }
    check_body(bytes, 16, count * IMAGE_SIDE * IMAGE_SIDE, kind)?;
    Ok(bytes[16..].to_vec())
}

/// Parses a decompressed IDX label file, rejecting labels outside 0-9.
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<u8>, IdxError> {
    let kind = "label";
    let magic = read_u32(bytes, 0, kind)?;
    if magic != LABELS_MAGIC {
        return Err(IdxError::BadMagic {
            kind,
            found: magic,
            expected: LABELS_MAGIC,
        });
    }
    let count = read_u32(bytes, 4, kind)? as usize;
    check_body(bytes, 8, count, kind)?;
    let labels = bytes[8..].to_vec();
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, label)| **label > 9) {
        return Err(IdxError::BadLabel { index, label });
    }
    Ok(labels)
}

/// Parses a pair of decompressed IDX files into one image set.
pub fn parse_pair(images: &[u8], labels: &[u8]) -> Result<ImageSet, IdxError> {
    let pixels = parse_images(images)?;
    let labels = parse_labels(labels)?;
    let image_count = pixels.len() / (IMAGE_SIDE * IMAGE_SIDE);
    if image_count != labels.len() {
        return Err(IdxError::CountMismatch {
            images: image_count,
            labels: labels.len(),
        });
    }
    Ok(ImageSet { pixels, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_file(count: u32, rows: u32, cols: u32, fill: u8) -> Vec<u8> {
        let mut bytes = Vec::new();
        for field in [IMAGES_MAGIC, count, rows, cols] {
            bytes.extend_from_slice(&field.to_be_bytes());
        }
        bytes.resize(16 + (count * rows * cols) as usize, fill);
        bytes
    }

    fn label_file(labels: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        bytes.extend_from_slice(labels);
        bytes
    }

    #[test]
    fn pair_parses() {
        let set = parse_pair(&image_file(2, 28, 28, 7), &label_file(&[3, 9])).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.labels, vec![3, 9]);
        assert!(set.image(1).iter().all(|&p| p == 7));
    }

    #[test]
    fn truncated_images_rejected() {
        let mut bytes = image_file(2, 28, 28, 0);
        bytes.truncate(bytes.len() - 5);
        let error = parse_images(&bytes).unwrap_err();
        assert_eq!(
            error,
            IdxError::Truncated {
                kind: "image",
                expected: 16 + 2 * 784,
                actual: 16 + 2 * 784 - 5
            }
        );
        assert!(error.to_string().contains("truncated"), "{error}");
    }

    #[test]
    fn header_cut_short_rejected() {
        let error = parse_labels(&[0, 0, 8]).unwrap_err();
        assert!(matches!(error, IdxError::Truncated { .. }), "{error}");
    }

    #[test]
    fn swapped_files_rejected() {
        let error = parse_images(&label_file(&[1, 2])).unwrap_err();
        assert!(
            matches!(error, IdxError::BadMagic { found: 0x801, .. }),
            "{error}"
        );
    }

    #[test]
    fn wrong_shape_rejected() {
        let error = parse_images(&image_file(1, 32, 32, 0)).unwrap_err();
        assert_eq!(error, IdxError::BadShape { rows: 32, cols: 32 });
    }

    #[test]
    fn bad_label_rejected() {
        let error = parse_labels(&label_file(&[1, 12])).unwrap_err();
        assert_eq!(
            error,
            IdxError::BadLabel {
                index: 1,
                label: 12
            }
        );
    }

    #[test]
    fn count_mismatch_rejected() {
        let error = parse_pair(&image_file(2, 28, 28, 0), &label_file(&[1])).unwrap_err();
        assert_eq!(
            error,
            IdxError::CountMismatch {
                images: 2,
                labels: 1
            }
        );
    }
}
