//! The autoencoder: one Burn module with two presets that share the training loop.
//!
//! Both presets take images of shape `[batch, 1, 28, 28]` with pixels in [0, 1] and
//! return logits of the same shape, and the recreation is `sigmoid(logits)`. Returning
//! logits lets the loss use the numerically stable form of binary cross-entropy.

use std::fmt;
use std::str::FromStr;

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, LeakyRelu, LeakyReluConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use serde::{Deserialize, Serialize};

use crate::data::IMAGE_SIDE;

/// Slope of LeakyReLU for negative inputs, as in the original notebook.
const NEGATIVE_SLOPE: f64 = 0.01;

/// The architectures the lab offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The original notebook: a dense encoder to 128 values and a dense-then-convolutional
    /// decoder with batch norm, about 5.74 M parameters.
    DenseConv,
    /// A small symmetric convolutional autoencoder with a 32-value code, about 0.24 M
    /// parameters.
    Conv,
    /// The same convolutions with a 128-value code, about 0.84 M parameters, for
    /// sharper recreations of Fashion-MNIST's textures.
    ConvLarge,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Conv, Preset::ConvLarge, Preset::DenseConv];

    /// Identifier used in the query string and the command line.
    pub fn slug(self) -> &'static str {
        match self {
            Preset::DenseConv => "dense-conv",
            Preset::Conv => "conv",
            Preset::ConvLarge => "conv-large",
        }
    }

    /// Short description shown next to the preset picker.
    pub fn summary(self) -> &'static str {
        match self {
            Preset::DenseConv => {
                "notebook original: dense encoder 784→128, dense + conv decoder, 5.74 M parameters"
            }
            Preset::Conv => "small convolutional autoencoder, 32-value code, 0.24 M parameters",
            Preset::ConvLarge => {
                "convolutional autoencoder with a 128-value code, 0.84 M parameters"
            }
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|preset| preset.slug() == value)
            .ok_or_else(|| {
                format!("unknown preset `{value}`; expected `conv`, `conv-large` or `dense-conv`")
            })
    }
}

/// Configuration of an [`Autoencoder`].
#[derive(Config, Debug)]
pub struct AutoencoderConfig {
    /// Architecture to build.
    pub preset: Preset,
}

impl AutoencoderConfig {
    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> Autoencoder {
        match self.preset {
            Preset::DenseConv => Autoencoder::DenseConv(DenseConvAutoencoder::init(device)),
            Preset::Conv => Autoencoder::Conv(ConvAutoencoder::init(CONV_CODE_SIZE, device)),
            Preset::ConvLarge => {
                Autoencoder::ConvLarge(ConvAutoencoder::init(CONV_LARGE_CODE_SIZE, device))
            }
        }
    }
}

/// An autoencoder of one of the [`Preset`] architectures.
#[derive(Module, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a page holds one or two models, so the unused bytes of the smaller variant do not matter"
)]
pub enum Autoencoder {
    DenseConv(DenseConvAutoencoder),
    Conv(ConvAutoencoder),
    ConvLarge(ConvAutoencoder),
}

impl Autoencoder {
    /// Recreates `images` and returns the logits of the recreation.
    ///
    /// # Shapes
    ///
    /// - `images`: `[batch, 1, 28, 28]`, pixels in [0, 1]
    /// - output: `[batch, 1, 28, 28]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        match self {
            Autoencoder::DenseConv(model) => model.forward(images),
            Autoencoder::Conv(model) | Autoencoder::ConvLarge(model) => model.forward(images),
        }
    }

    pub fn preset(&self) -> Preset {
        match self {
            Autoencoder::DenseConv(_) => Preset::DenseConv,
            Autoencoder::Conv(_) => Preset::Conv,
            Autoencoder::ConvLarge(_) => Preset::ConvLarge,
        }
    }
}

/// Binary cross-entropy of `targets` against `sigmoid(logits)`, per element.
///
/// Uses `-t·log σ(x) - (1 - t)·log σ(-x)`, which stays finite for large logits where
/// taking the log of a rounded sigmoid would not.
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, targets: Tensor<D>) -> Tensor<D> {
    let positive = log_sigmoid(logits.clone()) * targets.clone();
    let negative = log_sigmoid(logits.neg()) * (targets.neg() + 1.0);
    (positive + negative).neg()
}

/// Linear layer followed by an optional batch norm and LeakyReLU.
#[derive(Module, Debug)]
pub struct DenseBlock {
    linear: Linear,
    norm: Option<BatchNorm>,
    activation: LeakyRelu,
}

impl DenseBlock {
    fn init(inputs: usize, outputs: usize, bias: bool, norm: bool, device: &Device) -> Self {
        Self {
            linear: LinearConfig::new(inputs, outputs)
                .with_bias(bias)
                .init(device),
            norm: norm.then(|| BatchNormConfig::new(outputs).init(device)),
            activation: leaky_relu(),
        }
    }

    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let x = self.linear.forward(input);
        let x = match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        };
        self.activation.forward(x)
    }
}

fn leaky_relu() -> LeakyRelu {
    LeakyReluConfig::new()
        .with_negative_slope(NEGATIVE_SLOPE)
        .init()
}

/// Channels and side of the feature map the dense decoder of [`DenseConvAutoencoder`]
/// reshapes into.
const DENSE_CONV_MAP: [usize; 2] = [16, 12];
/// Side of the map [`DenseConvAutoencoder`] produces before its final resize:
/// 12 → 27 (transposed conv) → 24 → 21 (convs) → 45 (transposed conv) → 39 (conv).
const DENSE_CONV_OUTPUT_SIDE: usize = 39;

/// The original notebook's architecture.
#[derive(Module, Debug)]
pub struct DenseConvAutoencoder {
    encoder: DenseBlock,
    decoder_dense: Vec<DenseBlock>,
    up1: ConvTranspose2d,
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    up2: ConvTranspose2d,
    output: Conv2d,
    activation: LeakyRelu,
}

impl DenseConvAutoencoder {
    fn init(device: &Device) -> Self {
        let pixels = IMAGE_SIDE * IMAGE_SIDE;
        let [channels, side] = DENSE_CONV_MAP;
        let widths = [128, 256, 1024, 1600, channels * side * side];
        let last = widths.len() - 2;
        let decoder_dense = widths
            .windows(2)
            .enumerate()
            .map(|(i, pair)| DenseBlock::init(pair[0], pair[1], true, i < last, device))
            .collect();
        let transposed = |channels: [usize; 2]| {
            ConvTranspose2dConfig::new(channels, [4, 4])
                .with_stride([2, 2])
                .with_padding_out([1, 1])
                .init(device)
        };
        let conv = |channels: [usize; 2], kernel: usize| {
            Conv2dConfig::new(channels, [kernel, kernel])
                .with_padding(PaddingConfig2d::Valid)
                .init(device)
        };

        Self {
            encoder: DenseBlock::init(pixels, widths[0], false, true, device),
            decoder_dense,
            up1: transposed([16, 16]),
            conv1: conv([16, 16], 4),
            norm1: BatchNormConfig::new(16).init(device),
            conv2: conv([16, 8], 4),
            norm2: BatchNormConfig::new(8).init(device),
            up2: transposed([8, 8]),
            output: conv([8, 1], 7),
            activation: leaky_relu(),
        }
    }

    fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let [batch, _, height, width] = images.dims();
        let [channels, side] = DENSE_CONV_MAP;

        let mut x = self
            .encoder
            .forward(images.reshape([batch, height * width]));
        for block in &self.decoder_dense {
            x = block.forward(x);
        }
        let x = x.reshape([batch, channels, side, side]);
        let x = self.up1.forward(x);
        let x = self
            .activation
            .forward(self.norm1.forward(self.conv1.forward(x)));
        let x = self
            .activation
            .forward(self.norm2.forward(self.conv2.forward(x)));
        let x = self.output.forward(self.up2.forward(x));
        resize_nearest(x, DENSE_CONV_OUTPUT_SIDE, IMAGE_SIDE)
    }
}

/// Nearest-neighbour resize of the last two axes from `from` to `to` pixels, picking
/// source index `floor(i * from / to)` as PyTorch's `interpolate(mode="nearest")` does.
fn resize_nearest(x: Tensor<4>, from: usize, to: usize) -> Tensor<4> {
    let device = x.device();
    let picks: Vec<i64> = (0..to).map(|i| (i * from / to) as i64).collect();
    let indices = Tensor::<1, Int>::from_data(TensorData::new(picks, [to]), &device);
    x.select(2, indices.clone()).select(3, indices)
}

/// Channels after the first and second convolution of [`ConvAutoencoder`].
const CONV_CHANNELS: [usize; 2] = [32, 64];
/// Side of the smallest feature map of [`ConvAutoencoder`]: 28 → 14 → 7.
const CONV_BOTTOM_SIDE: usize = IMAGE_SIDE / 4;
/// Values in the code of the `conv` preset.
pub const CONV_CODE_SIZE: usize = 32;
/// Values in the code of the `conv-large` preset.
pub const CONV_LARGE_CODE_SIZE: usize = 128;

/// A small symmetric convolutional autoencoder.
#[derive(Module, Debug)]
pub struct ConvAutoencoder {
    down1: Conv2d,
    down2: Conv2d,
    encode: Linear,
    decode: Linear,
    up1: ConvTranspose2d,
    up2: ConvTranspose2d,
    activation: LeakyRelu,
}

impl ConvAutoencoder {
    fn init(code_size: usize, device: &Device) -> Self {
        let [narrow, wide] = CONV_CHANNELS;
        let flat = wide * CONV_BOTTOM_SIDE * CONV_BOTTOM_SIDE;
        let down = |channels: [usize; 2]| {
            Conv2dConfig::new(channels, [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let up = |channels: [usize; 2]| {
            ConvTranspose2dConfig::new(channels, [3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .with_padding_out([1, 1])
                .init(device)
        };

        Self {
            down1: down([1, narrow]),
            down2: down([narrow, wide]),
            encode: LinearConfig::new(flat, code_size).init(device),
            decode: LinearConfig::new(code_size, flat).init(device),
            up1: up([wide, narrow]),
            up2: up([narrow, 1]),
            activation: leaky_relu(),
        }
    }

    fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let [batch, ..] = images.dims();
        let [_, wide] = CONV_CHANNELS;

        let x = self.activation.forward(self.down1.forward(images));
        let x = self.activation.forward(self.down2.forward(x));
        let code = self.encode.forward(x.flatten::<2>(1, 3));
        let x = self.activation.forward(self.decode.forward(code));
        let x = x.reshape([batch, wide, CONV_BOTTOM_SIDE, CONV_BOTTOM_SIDE]);
        let x = self.activation.forward(self.up1.forward(x));
        self.up2.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output_shape(preset: Preset) -> [usize; 4] {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let device = Device::flex();
        let model = AutoencoderConfig::new(preset).init(&device);
        let images = Tensor::<4>::zeros([3, 1, IMAGE_SIDE, IMAGE_SIDE], &device);
        model.forward(images).dims()
    }

    #[test]
    fn conv_output_shape() {
        assert_eq!(output_shape(Preset::Conv), [3, 1, 28, 28]);
    }

    #[test]
    fn conv_large_output_shape() {
        assert_eq!(output_shape(Preset::ConvLarge), [3, 1, 28, 28]);
    }

    #[test]
    fn conv_large_parameter_count() {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let model = AutoencoderConfig::new(Preset::ConvLarge).init(&Device::flex());
        // As `conv`, with linear layers of 3136 * 128 + 128 and 128 * 3136 + 3136.
        assert_eq!(model.num_params(), 843_649);
    }

    #[test]
    fn dense_conv_output_shape() {
        assert_eq!(output_shape(Preset::DenseConv), [3, 1, 28, 28]);
    }

    #[test]
    fn conv_parameter_count() {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let model = AutoencoderConfig::new(Preset::Conv).init(&Device::flex());
        // 320 + 18_496 conv, 100_384 + 103_488 linear, 18_464 + 289 transposed conv.
        assert_eq!(model.num_params(), 241_441);
    }

    #[test]
    fn dense_conv_parameter_count() {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let model = AutoencoderConfig::new(Preset::DenseConv).init(&Device::flex());
        // Linear and conv weights and biases (5_736_953), batch norm gamma and beta
        // (2 * (128 + 256 + 1024 + 1600 + 16 + 8) = 6_064): 5_743_017 trainable values,
        // as PyTorch counts them. Burn's count adds the running mean and variance (6_064).
        assert_eq!(model.num_params(), 5_743_017 + 6_064);
    }

    #[test]
    fn resize_picks_like_pytorch() {
        let device = Device::flex();
        let values: Vec<f32> = (0..5).map(|v| v as f32).collect();
        let row = Tensor::<1>::from_data(TensorData::new(values, [5]), &device);
        let grid = row.reshape([1, 1, 1, 5]).repeat_dim(2, 5);
        let resized = resize_nearest(grid, 5, 3);
        let picked: Vec<f32> = resized.into_data().try_to_vec().unwrap();
        // floor(i * 5 / 3) for i = 0, 1, 2 picks columns 0, 1 and 3.
        assert_eq!(picked, vec![0., 1., 3., 0., 1., 3., 0., 1., 3.]);
    }

    #[test]
    fn bce_matches_hand_computed() {
        let device = Device::flex();
        let logits = Tensor::<1>::from_floats([0.0, 2.0, -3.0, 40.0], &device);
        let targets = Tensor::<1>::from_floats([0.5, 1.0, 0.0, 0.0], &device);
        let loss: Vec<f32> = bce_with_logits(logits, targets)
            .into_data()
            .try_to_vec()
            .unwrap();
        // ln 2; -ln σ(2) = ln(1 + e^-2); -ln(1 - σ(-3)) = ln(1 + e^-3); ln(1 + e^40) ≈ 40.
        let expected = [std::f32::consts::LN_2, 0.126_928, 0.048_587, 40.0];
        for (got, want) in loss.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{loss:?} vs {expected:?}");
        }
    }
}
