//! The weights file: one self-describing file per trained model, read and written by
//! the page and by `cargo xtask train`.
//!
//! Layout: the magic `AELABWT\0`, the header length as little-endian `u32`, the header as
//! JSON (format version, preset and config, dataset, training settings, test metrics,
//! precision, and the name and shape of every tensor), then the values of all tensors in
//! header order, stored in the header's precision:
//!
//! - `f32`: little-endian `f32` each, exact.
//! - `f16`: IEEE half precision, the low bytes of all values first, then the high bytes,
//!   which compresses better than interleaved bytes.
//! - `q8`: one byte each, `value = min + byte * step` with each tensor's `min` and
//!   `step` in its header entry.
//!
//! Everything is checked before any weight is replaced. Version 1 files have no
//! precision field and are read as `f32`.

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
pub const FORMAT_VERSION: u32 = 2;
/// Oldest version this code still reads.
const OLDEST_VERSION: u32 = 1;
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

/// Number format of the stored weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 4 bytes a value, exact.
    #[default]
    F32,
    /// 2 bytes a value, about 3 significant digits.
    F16,
    /// 1 byte a value, 256 evenly spaced levels between each tensor's extremes.
    Q8,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::F16, Precision::Q8];

    fn bytes_per_value(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
            Precision::Q8 => 1,
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Q8 => "q8",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.slug())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Precision::ALL
            .into_iter()
            .find(|precision| precision.slug() == text)
            .ok_or_else(|| format!("unknown precision `{text}`; expected f32, f16 or q8"))
    }
}

/// Name and shape of one stored tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<usize>,
    /// Smallest value and the step between levels, in `q8` files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q8: Option<[f32; 2]>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Header {
    format_version: u32,
    config: AutoencoderConfig,
    #[serde(flatten)]
    info: ModelInfo,
    #[serde(default)]
    precision: Precision,
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
    #[error(
        "the weights file has format version {found}; this app reads versions {OLDEST_VERSION} to {FORMAT_VERSION}"
    )]
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
    #[error("tensor `{name}` has no q8 range in the header of a q8 file")]
    MissingRange { name: String },
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
            q8: None,
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

/// Serialises `model` with `info` at full precision, reading the weights off the device
/// asynchronously.
pub async fn export(model: &Autoencoder, info: &ModelInfo) -> Result<Vec<u8>, String> {
    export_with(model, info, Precision::F32).await
}

/// Smallest value and step of 256 even levels that span `values`.
fn q8_range(values: &[f32]) -> [f32; 2] {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let step = (max - min) / 255.0;
    [min, if step > 0.0 { step } else { 1.0 }]
}

/// Serialises `model` with `info`, storing its weights in `precision`.
pub async fn export_with(
    model: &Autoencoder,
    info: &ModelInfo,
    precision: Precision,
) -> Result<Vec<u8>, String> {
    let mut collector = Collector::default();
    model.visit(&mut collector);
    let mut entries = collector.entries;
    let mut values = Vec::with_capacity(entries.len());
    for tensor in collector.values {
        values.push(read_floats(tensor).await?);
    }

    let mut data = Vec::new();
    match precision {
        Precision::F32 => {
            for value in values.iter().flatten() {
                data.extend_from_slice(&value.to_le_bytes());
            }
        }
        Precision::F16 => {
            let halves: Vec<[u8; 2]> = values
                .iter()
                .flatten()
                .map(|&value| half::f16::from_f32(value).to_le_bytes())
                .collect();
            data.extend(halves.iter().map(|bytes| bytes[0]));
            data.extend(halves.iter().map(|bytes| bytes[1]));
        }
        Precision::Q8 => {
            for (entry, tensor) in entries.iter_mut().zip(&values) {
                let [min, step] = q8_range(tensor);
                entry.q8 = Some([min, step]);
                data.extend(
                    tensor
                        .iter()
                        .map(|&value| ((value - min) / step).round().clamp(0.0, 255.0) as u8),
                );
            }
        }
    }

    let header = Header {
        format_version: FORMAT_VERSION,
        config: AutoencoderConfig::new(model.preset()),
        info: info.clone(),
        precision,
        tensors: entries,
    };
    let json = serde_json::to_vec(&header).map_err(|error| error.to_string())?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + json.len() + data.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&json);
    bytes.extend_from_slice(&data);
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
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version.format_version) {
        return Err(WeightsError::Version {
            found: version.format_version,
        });
    }
    let header: Header =
        serde_json::from_slice(json).map_err(|error| WeightsError::Header(error.to_string()))?;
    Ok((header, start + length))
}

/// Decodes the stored values of every tensor into `f32` according to `header.precision`.
fn decode(data: &[u8], header: &Header) -> Result<Vec<f32>, WeightsError> {
    match header.precision {
        Precision::F32 => Ok(data
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect()),
        Precision::F16 => {
            let (low, high) = data.split_at(data.len() / 2);
            Ok(low
                .iter()
                .zip(high)
                .map(|(&low, &high)| half::f16::from_le_bytes([low, high]).to_f32())
                .collect())
        }
        Precision::Q8 => {
            let mut values = Vec::with_capacity(data.len());
            let mut offset = 0;
            for entry in &header.tensors {
                let Some([min, step]) = entry.q8 else {
                    return Err(WeightsError::MissingRange {
                        name: entry.name.clone(),
                    });
                };
                let count: usize = entry.shape.iter().product();
                values.extend(
                    data[offset..offset + count]
                        .iter()
                        .map(|&byte| min + f32::from(byte) * step),
                );
                offset += count;
            }
            Ok(values)
        }
    }
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
    let data_end = data_start + count * header.precision.bytes_per_value();
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
    let values = decode(&bytes[data_start..data_end], &header)?;
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

    fn exported_with(preset: Preset, precision: Precision) -> (Autoencoder, Vec<u8>) {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let model = AutoencoderConfig::new(preset).init(&Device::flex());
        let bytes = pollster::block_on(export_with(&model, &info(), precision)).unwrap();
        (model, bytes)
    }

    fn exported(preset: Preset) -> (Autoencoder, Vec<u8>) {
        exported_with(preset, Precision::F32)
    }

    fn weights_of(model: &Autoencoder) -> Vec<f32> {
        let mut collector = Collector::default();
        model.visit(&mut collector);
        collector
            .values
            .into_iter()
            .flat_map(|tensor| pollster::block_on(read_floats(tensor)).unwrap())
            .collect()
    }

    #[test]
    fn round_trip_bit_for_bit() {
        for preset in Preset::ALL {
            for precision in [Precision::F32, Precision::F16] {
                let (_, bytes) = exported_with(preset, precision);
                let (model, read) = import(&bytes, &Device::flex()).unwrap();
                assert_eq!(read, info());
                assert_eq!(model.preset(), preset);
                let again = pollster::block_on(export_with(&model, &read, precision)).unwrap();
                assert!(
                    again == bytes,
                    "{preset} weights in {precision} changed in a round trip"
                );
            }
        }
    }

    #[test]
    fn smaller_precisions_stay_close() {
        let (model, full) = exported(Preset::Conv);
        let original = weights_of(&model);
        for (precision, shrink) in [(Precision::F16, 2), (Precision::Q8, 4)] {
            let bytes = pollster::block_on(export_with(&model, &info(), precision)).unwrap();
            // The JSON header (a few kilobytes) does not shrink with the values.
            assert!(
                bytes.len() < full.len() / shrink + 8192,
                "{precision} file size"
            );
            let (read, _) = import(&bytes, &Device::flex()).unwrap();
            let read = weights_of(&read);
            let largest = original
                .iter()
                .fold(0f32, |max, value| max.max(value.abs()));
            let worst = original
                .iter()
                .zip(&read)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            // f16 keeps 11 significant bits; q8 splits each tensor's range into 255 steps.
            let bound = match precision {
                Precision::F16 => largest / 1024.0,
                _ => 2.0 * largest / 255.0,
            };
            assert!(worst <= bound, "{precision}: error {worst} above {bound}");
        }
    }

    #[test]
    fn version_one_file_reads_as_f32() {
        let (model, bytes) = exported(Preset::Conv);
        let (header, start) = parse_header(&bytes).unwrap();
        let mut json = serde_json::to_value(&header).unwrap();
        json["format_version"] = 1.into();
        json.as_object_mut().unwrap().remove("precision");
        let json = serde_json::to_vec(&json).unwrap();
        let mut old = MAGIC.to_vec();
        old.extend_from_slice(&(json.len() as u32).to_le_bytes());
        old.extend_from_slice(&json);
        old.extend_from_slice(&bytes[start..]);

        let (read, _) = import(&old, &Device::flex()).unwrap();
        assert_eq!(weights_of(&read), weights_of(&model));
    }

    #[test]
    fn q8_file_without_range_rejected() {
        let (_, bytes) = exported_with(Preset::Conv, Precision::Q8);
        let changed = with_header(&bytes, |header| header.tensors[3].q8 = None);
        let error = import(&changed, &Device::flex()).unwrap_err();
        assert!(
            matches!(error, WeightsError::MissingRange { .. }),
            "{error}"
        );
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
