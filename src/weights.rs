//! The weights file: one self-describing file per trained model, read and written by
//! the page and by `cargo xtask train`.
//!
//! Layout: the magic `AELABWT\0`, the header length as little-endian `u32`, the header as
//! JSON (format version, preset and config, dataset, training settings, test metrics,
//! and the name and shape of every tensor), then each tensor's values as little-endian
//! `f32` in header order. Everything is checked before any weight is replaced.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::Dataset;
use crate::metrics::Metrics;
use crate::model::{Autoencoder, AutoencoderConfig, Preset};
use crate::train::read_floats;

const MAGIC: &[u8; 8] = b"AELABWT\0";
/// Version of the layout above, to be increased whenever the layout changes.
pub const FORMAT_VERSION: u32 = 1;
/// Largest header accepted, so a corrupt length cannot ask for gigabytes.
const MAX_HEADER_BYTES: usize = 1 << 20;

/// Training settings of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub train_limit: Option<usize>,
}

/// Description of the model in a weights file, besides the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub dataset: Dataset,
    pub training: TrainingRecord,
    /// Test metrics measured when the file was written.
    pub metrics: Option<Metrics>,
}

/// Name and shape of one stored tensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Header {
    format_version: u32,
    config: AutoencoderConfig,
    #[serde(flatten)]
    info: ModelInfo,
    tensors: Vec<TensorEntry>,
}

#[derive(Debug, Error, PartialEq)]
pub enum WeightsError {
    #[error("not a weights file of this app: it does not start with the AELABWT marker")]
    NotWeights,
    #[error("the weights file is truncated: expected {expected} bytes, found {actual}")]
    Truncated { expected: usize, actual: usize },
    #[error("the weights file has {extra} unexpected bytes after its last tensor")]
    TrailingBytes { extra: usize },
    #[error("the weights header is {0} bytes, more than this app accepts")]
    HeaderTooLarge(usize),
    #[error("the weights header is invalid: {0}")]
    Header(String),
    #[error("the weights file has format version {found}; this app reads version {FORMAT_VERSION}")]
    Version { found: u32 },
    #[error("the weights file has {found} tensors; the {preset} preset has {expected}")]
    TensorCount {
        preset: Preset,
        expected: usize,
        found: usize,
    },
    #[error("tensor {index} is `{found}` in the file; the {preset} preset expects `{expected}`")]
    TensorName {
        preset: Preset,
        index: usize,
        expected: String,
        found: String,
    },
    #[error(
        "tensor `{name}` has shape {found:?} in the file; the {preset} preset expects {expected:?}"
    )]
    TensorShape {
        preset: Preset,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{name}` contains a value that is not a finite number")]
    NotFinite { name: String },
}

/// Collects the name, shape and value of every float tensor of a module, in visit order.
#[derive(Default)]
struct Collector {
    path: Vec<String>,
    entries: Vec<TensorEntry>,
    values: Vec<Tensor<1>>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let shape = value.dims().to_vec();
        let count: usize = shape.iter().product();
        self.entries.push(TensorEntry {
            name: self.path.join("."),
            shape,
        });
        self.values.push(value.reshape([count]));
    }
}

/// Replaces every float tensor of a module, in visit order, with values from a file.
struct Loader<'a> {
    values: &'a [f32],
    entries: &'a [TensorEntry],
    next: usize,
    offset: usize,
}

impl ModuleMapper for Loader<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let entry = &self.entries[self.next];
        let count: usize = entry.shape.iter().product();
        let values = self.values[self.offset..self.offset + count].to_vec();
        self.next += 1;
        self.offset += count;
        let shape: [usize; D] = entry
            .shape
            .clone()
            .try_into()
            .expect("shapes were checked against the model before loading");
        param.map(|old| Tensor::from_data(TensorData::new(values, shape), &old.device()))
    }
}

/// Names and shapes of the tensors of `model`, in the order a file stores them.
pub fn layout(model: &Autoencoder) -> Vec<TensorEntry> {
    let mut collector = Collector::default();
    model.visit(&mut collector);
    collector.entries
}

/// Serialises `model` with `info`, reading the weights off the device asynchronously.
pub async fn export(model: &Autoencoder, info: &ModelInfo) -> Result<Vec<u8>, String> {
    let mut collector = Collector::default();
    model.visit(&mut collector);
    let header = Header {
        format_version: FORMAT_VERSION,
        config: AutoencoderConfig::new(model.preset()),
        info: info.clone(),
        tensors: collector.entries,
    };
    let json = serde_json::to_vec(&header).map_err(|error| error.to_string())?;

    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + json.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&json);
    for tensor in collector.values {
        for value in read_floats(tensor).await? {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    Ok(bytes)
}

/// Reads the header of a weights file without touching its tensors.
pub fn read_info(bytes: &[u8]) -> Result<(Preset, ModelInfo), WeightsError> {
    let (header, _) = parse_header(bytes)?;
    Ok((header.config.preset, header.info))
}

fn parse_header(bytes: &[u8]) -> Result<(Header, usize), WeightsError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(WeightsError::NotWeights);
    }
    let start = MAGIC.len() + 4;
    if bytes.len() < start {
        return Err(WeightsError::Truncated {
            expected: start,
            actual: bytes.len(),
        });
    }
    let length = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    if length > MAX_HEADER_BYTES {
        return Err(WeightsError::HeaderTooLarge(length));
    }
    if bytes.len() < start + length {
        return Err(WeightsError::Truncated {
            expected: start + length,
            actual: bytes.len(),
        });
    }
    let json = &bytes[start..start + length];

    // Read the version alone first, so a file of another version gets that message
    // rather than a complaint about a field this version does not know.
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let version: Version =
        serde_json::from_slice(json).map_err(|error| WeightsError::Header(error.to_string()))?;
    if version.format_version != FORMAT_VERSION {
        return Err(WeightsError::Version {
            found: version.format_version,
        });
    }
    let header: Header =
        serde_json::from_slice(json).map_err(|error| WeightsError::Header(error.to_string()))?;
    Ok((header, start + length))
}

/// Builds the model a weights file describes on `device` and loads its weights.
///
/// Nothing is built until the header, every tensor name and shape, the file size and
/// every value have been checked, so a bad file leaves the caller's model untouched.
pub fn import(bytes: &[u8], device: &Device) -> Result<(Autoencoder, ModelInfo), WeightsError> {
    let (header, data_start) = parse_header(bytes)?;
    let preset = header.config.preset;
    let model = header.config.init(device);
    let expected = layout(&model);

    if header.tensors.len() != expected.len() {
        return Err(WeightsError::TensorCount {
            preset,
            expected: expected.len(),
            found: header.tensors.len(),
        });
    }
    for (index, (want, found)) in expected.iter().zip(&header.tensors).enumerate() {
        if want.name != found.name {
            return Err(WeightsError::TensorName {
                preset,
                index,
                expected: want.name.clone(),
                found: found.name.clone(),
            });
        }
        if want.shape != found.shape {
            return Err(WeightsError::TensorShape {
                preset,
                name: found.name.clone(),
                expected: want.shape.clone(),
                found: found.shape.clone(),
            });
        }
    }

    let count: usize = expected
        .iter()
        .map(|entry| entry.shape.iter().product::<usize>())
        .sum();
    let data_end = data_start + count * 4;
    if bytes.len() < data_end {
        return Err(WeightsError::Truncated {
            expected: data_end,
            actual: bytes.len(),
        });
    }
    if bytes.len() > data_end {
        return Err(WeightsError::TrailingBytes {
            extra: bytes.len() - data_end,
        });
    }
    let values: Vec<f32> = bytes[data_start..data_end]
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect();
    let mut offset = 0;
    for entry in &header.tensors {
        let count: usize = entry.shape.iter().product();
        if values[offset..offset + count]
            .iter()
            .any(|value| !value.is_finite())
        {
            return Err(WeightsError::NotFinite {
                name: entry.name.clone(),
            });
        }
        offset += count;
    }

    let mut loader = Loader {
        values: &values,
        entries: &header.tensors,
        next: 0,
        offset: 0,
    };
    Ok((model.map(&mut loader), header.info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ModelInfo {
        ModelInfo {
            dataset: Dataset::FashionMnist,
            training: TrainingRecord {
                epochs: 2,
                batch_size: 64,
                learning_rate: 1e-3,
                seed: 5,
                train_limit: None,
            },
            metrics: Some(Metrics {
                bce: 0.3,
                mse: 0.01,
                psnr: 20.0,
                ssim: 0.8,
            }),
        }
    }

    fn exported(preset: Preset) -> (Autoencoder, Vec<u8>) {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let model = AutoencoderConfig::new(preset).init(&Device::flex());
        let bytes = pollster::block_on(export(&model, &info())).unwrap();
        (model, bytes)
    }

    #[test]
    fn round_trip_bit_for_bit() {
        for preset in Preset::ALL {
            let (_, bytes) = exported(preset);
            let (model, read) = import(&bytes, &Device::flex()).unwrap();
            assert_eq!(read, info());
            assert_eq!(model.preset(), preset);
            let again = pollster::block_on(export(&model, &read)).unwrap();
            assert!(again == bytes, "{preset} weights changed in a round trip");
        }
    }

    #[test]
    fn layout_names_tensors() {
        let (model, _) = exported(Preset::Conv);
        let names: Vec<String> = layout(&model).into_iter().map(|entry| entry.name).collect();
        assert_eq!(names.len(), 12, "{names:?}");
        assert!(
            names.iter().any(|name| name.ends_with("down1.weight")),
            "{names:?}"
        );
    }

    #[test]
    fn truncated_file_rejected() {
        let (_, bytes) = exported(Preset::Conv);
        let error = import(&bytes[..bytes.len() - 10], &Device::flex()).unwrap_err();
        assert!(matches!(error, WeightsError::Truncated { .. }), "{error}");
        assert!(error.to_string().contains("truncated"), "{error}");
    }

    /// Rewrites the header of `bytes` with `edit`, keeping the tensor values.
    fn with_header(bytes: &[u8], edit: impl FnOnce(&mut Header)) -> Vec<u8> {
        let (mut header, start) = parse_header(bytes).unwrap();
        edit(&mut header);
        let json = serde_json::to_vec(&header).unwrap();
        let mut changed = MAGIC.to_vec();
        changed.extend_from_slice(&(json.len() as u32).to_le_bytes());
        changed.extend_from_slice(&json);
        changed.extend_from_slice(&bytes[start..]);
        changed
    }

    #[test]
    fn other_version_rejected() {
        let (_, bytes) = exported(Preset::Conv);
        let changed = with_header(&bytes, |header| header.format_version = 7);
        let error = import(&changed, &Device::flex()).unwrap_err();
        assert_eq!(error, WeightsError::Version { found: 7 });
    }

    #[test]
    fn wrong_shape_rejected() {
        let (_, bytes) = exported(Preset::Conv);
        let (mut header, start) = parse_header(&bytes).unwrap();
        header.tensors[0].shape = vec![1, 2, 3];
        let json = serde_json::to_vec(&header).unwrap();
        let mut changed = MAGIC.to_vec();
        changed.extend_from_slice(&(json.len() as u32).to_le_bytes());
        changed.extend_from_slice(&json);
        changed.extend_from_slice(&bytes[start..]);
        let error = import(&changed, &Device::flex()).unwrap_err();
        assert!(matches!(error, WeightsError::TensorShape { .. }), "{error}");
        assert!(
            error.to_string().contains(&header.tensors[0].name),
            "{error}"
        );
    }

    #[test]
    fn other_file_rejected() {
        let error = import(b"\x89PNG\r\n\x1a\n....", &Device::flex()).unwrap_err();
        assert_eq!(error, WeightsError::NotWeights);
    }

    #[test]
    fn nan_weight_rejected() {
        let (_, mut bytes) = exported(Preset::Conv);
        let last = bytes.len() - 4;
        bytes[last..].copy_from_slice(&f32::NAN.to_le_bytes());
        let error = import(&bytes, &Device::flex()).unwrap_err();
        assert!(matches!(error, WeightsError::NotFinite { .. }), "{error}");
    }
}
