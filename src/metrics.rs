//! Reconstruction metrics: binary cross-entropy, mean squared error, PSNR and SSIM.
//!
//! BCE and MSE are means over every pixel of the evaluated set. PSNR and SSIM are
//! computed per image with a data range of 1 and then averaged over images, so one
//! perfect image cannot dominate the figure. A per-image MSE below 1e-10 counts as
//! 1e-10, which caps PSNR at 100 dB.

use std::ops::AddAssign;

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

use crate::model::bce_with_logits;

/// Floor on a per-image MSE before taking its logarithm.
const MSE_FLOOR: f64 = 1e-10;

/// Test metrics of a model on a set of images.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// Mean binary cross-entropy per pixel.
    pub bce: f64,
    /// Mean squared error per pixel, pixels in [0, 1].
    pub mse: f64,
    /// Mean over images of the peak signal-to-noise ratio, in dB.
    pub psnr: f64,
    /// Mean over images of the structural similarity (see [`ssim`]).
    pub ssim: f64,
}

/// PSNR in dB of an image with mean squared error `mse`, for data range 1.
pub fn psnr_from_mse(mse: f64) -> f64 {
    -10.0 * mse.max(MSE_FLOOR).log10()
}

/// Metrics of one image, pixels in [0, 1].
pub fn image_metrics(original: &[f32], recreation: &[f32]) -> Metrics {
    assert_eq!(original.len(), recreation.len(), "images differ in size");
    let count = original.len() as f64;
    let mut bce = 0.0;
    let mut squared = 0.0;
    for (&target, &predicted) in original.iter().zip(recreation) {
        let (target, predicted) = (
            f64::from(target),
            f64::from(predicted).clamp(1e-7, 1.0 - 1e-7),
        );
        bce -= target * predicted.ln() + (1.0 - target) * (1.0 - predicted).ln();
        squared += (target - predicted).powi(2);
    }
    let mse = squared / count;
    let side = (original.len() as f64).sqrt() as usize;
    Metrics {
        bce: bce / count,
        mse,
        psnr: psnr_from_mse(mse),
        ssim: ssim(original, recreation, side),
    }
}

/// Side of the SSIM window.
const SSIM_WINDOW: usize = 11;
/// Standard deviation of the Gaussian SSIM window, in pixels.
const SSIM_SIGMA: f64 = 1.5;

/// Normalised 11x11 Gaussian weights, row by row.
fn ssim_weights() -> [f64; SSIM_WINDOW * SSIM_WINDOW] {
    let centre = (SSIM_WINDOW / 2) as f64;
    let mut weights = [0.0; SSIM_WINDOW * SSIM_WINDOW];
    for (index, weight) in weights.iter_mut().enumerate() {
        let dy = (index / SSIM_WINDOW) as f64 - centre;
        let dx = (index % SSIM_WINDOW) as f64 - centre;
        *weight = (-(dx * dx + dy * dy) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let total: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|weight| *weight /= total);
    weights
}

/// Structural similarity of two square greyscale images with pixels in [0, 1].
///
/// Follows Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, data range 1,
/// K1 = 0.01 and K2 = 0.03, averaged over every position where the window fits inside
/// the image (18x18 positions for 28x28 images).
pub fn ssim(original: &[f32], recreation: &[f32], side: usize) -> f64 {
    assert_eq!(original.len(), side * side, "original is not {side}x{side}");
    assert_eq!(
        recreation.len(),
        side * side,
        "recreation is not {side}x{side}"
    );
    assert!(
        side >= SSIM_WINDOW,
        "SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}"
    );
    let weights = ssim_weights();
    let c1 = 0.01f64.powi(2);
    let c2 = 0.03f64.powi(2);
    let positions = side - SSIM_WINDOW + 1;

    let mut total = 0.0;
    for top in 0..positions {
        for left in 0..positions {
            let (mut mean_x, mut mean_y, mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (index, weight) in weights.iter().enumerate() {
                let pixel = (top + index / SSIM_WINDOW) * side + left + index % SSIM_WINDOW;
                let x = f64::from(original[pixel]);
                let y = f64::from(recreation[pixel]);
                mean_x += weight * x;
                mean_y += weight * y;
                xx += weight * x * x;
                yy += weight * y * y;
                xy += weight * x * y;
            }
            let var_x = xx - mean_x * mean_x;
            let var_y = yy - mean_y * mean_y;
            let covariance = xy - mean_x * mean_y;
            let luminance = (2.0 * mean_x * mean_y + c1) / (mean_x * mean_x + mean_y * mean_y + c1);
            let structure = (2.0 * covariance + c2) / (var_x + var_y + c2);
            total += luminance * structure;
        }
    }
    total / (positions * positions) as f64
}

/// Sum over a batch of the per-image SSIM, computed on the device with the same window
/// and constants as [`ssim`].
///
/// # Shapes
///
/// - `originals`, `recreations`: `[batch, 1, height, width]`, pixels in [0, 1]
/// - output: `[1]`
pub fn ssim_sum(originals: Tensor<4>, recreations: Tensor<4>) -> Tensor<1> {
    let device = originals.device();
    let weights: Vec<f32> = ssim_weights().iter().map(|&w| w as f32).collect();
    let window = Tensor::<4>::from_data(
        TensorData::new(weights, [1, 1, SSIM_WINDOW, SSIM_WINDOW]),
        &device,
    );
    let filter = |x: Tensor<4>| {
        conv2d(
            x,
            window.clone(),
            None,
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        )
    };
    let c1 = 0.01f64.powi(2);
    let c2 = 0.03f64.powi(2);

    let mean_x = filter(originals.clone());
    let mean_y = filter(recreations.clone());
    let xx = filter(originals.clone() * originals.clone());
    let yy = filter(recreations.clone() * recreations.clone());
    let xy = filter(originals * recreations);
    let mean_xx = mean_x.clone() * mean_x.clone();
    let mean_yy = mean_y.clone() * mean_y.clone();
    let mean_xy = mean_x * mean_y;

    let numerator = (mean_xy.clone() * 2.0 + c1) * ((xy - mean_xy) * 2.0 + c2);
    let denominator = (mean_xx.clone() + mean_yy.clone() + c1) * (xx - mean_xx + yy - mean_yy + c2);
    let map = numerator / denominator;
    let [batch, ..] = map.dims();
    map.reshape([batch as i32, -1]).mean_dim(1).sum()
}

/// Running sums of metrics over batches, read back from the device once per evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricSums {
    pub bce: f64,
    pub squared_error: f64,
    pub psnr: f64,
    pub ssim: f64,
    pub pixels: usize,
    pub images: usize,
}

impl MetricSums {
    /// Sums of BCE, squared error, per-image PSNR and per-image SSIM of one batch, as a
    /// tensor of 4 values that stays on the device until the caller reads it.
    ///
    /// # Shapes
    ///
    /// - `logits`, `targets`: `[batch, 1, height, width]`
    /// - output: `[4]`
    pub fn batch_tensor(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
        let [batch, channels, height, width] = logits.dims();
        let pixels = channels * height * width;

        let bce = bce_with_logits(logits.clone(), targets.clone()).sum();
        let recreations = sigmoid(logits);
        let ssim = ssim_sum(targets.clone(), recreations.clone());
        let squared = (recreations - targets)
            .powi_scalar(2)
            .reshape([batch, pixels]);
        let squared_sum = squared.clone().sum();
        let image_mse = squared.mean_dim(1).clamp_min(MSE_FLOOR);
        let psnr = (image_mse.log() * (-10.0 / std::f64::consts::LN_10)).sum();
        Tensor::cat(vec![bce, squared_sum, psnr, ssim], 0)
    }

    /// Adds the values read from [`MetricSums::batch_tensor`] for a batch of `images`.
    pub fn add_batch(&mut self, values: &[f32], images: usize, pixels_per_image: usize) {
        self.bce += f64::from(values[0]);
        self.squared_error += f64::from(values[1]);
        self.psnr += f64::from(values[2]);
        self.ssim += f64::from(values[3]);
        self.images += images;
        self.pixels += images * pixels_per_image;
    }

    pub fn metrics(&self) -> Metrics {
        let pixels = self.pixels.max(1) as f64;
        Metrics {
            bce: self.bce / pixels,
            mse: self.squared_error / pixels,
            psnr: self.psnr / self.images.max(1) as f64,
            ssim: self.ssim / self.images.max(1) as f64,
        }
    }
}

impl AddAssign for MetricSums {
    fn add_assign(&mut self, other: Self) {
        self.bce += other.bce;
        self.squared_error += other.squared_error;
        self.psnr += other.psnr;
        self.ssim += other.ssim;
        self.pixels += other.pixels;
        self.images += other.images;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_known_mse() {
        assert!((psnr_from_mse(0.01) - 20.0).abs() < 1e-12);
        assert!((psnr_from_mse(1.0)).abs() < 1e-12);
        assert_eq!(psnr_from_mse(0.0), 100.0);
    }

    #[test]
    fn image_metrics_hand_computed() {
        // One pixel of 784 is off by 0.5: MSE 0.25 / 784, PSNR 10·log10(784 / 0.25).
        // BCE: that pixel costs ln 2, each other pixel -ln(1 - 1e-7) after clamping.
        let mut original = vec![0.0f32; 784];
        let mut recreation = vec![0.0f32; 784];
        original[0] = 1.0;
        recreation[0] = 0.5;
        let metrics = image_metrics(&original, &recreation);
        assert!((metrics.mse - 0.25 / 784.0).abs() < 1e-12, "{metrics:?}");
        assert!((metrics.psnr - 34.963_761).abs() < 1e-5, "{metrics:?}");
        let bce = (std::f64::consts::LN_2 + 783.0 * 1e-7) / 784.0;
        assert!((metrics.bce - bce).abs() < 1e-8, "{metrics:?}");
        assert!(metrics.ssim < 1.0, "{metrics:?}");
        assert!(metrics.ssim > 0.9, "{metrics:?}");
    }

    #[test]
    fn ssim_of_identical_images_is_one() {
        let image: Vec<f32> = (0..784).map(|i| (i % 29) as f32 / 28.0).collect();
        assert!((ssim(&image, &image, 28) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn ssim_of_constant_images_hand_computed() {
        // Constant images have zero variance, so SSIM is the luminance term alone:
        // (2·0.2·0.6 + c1) / (0.04 + 0.36 + c1) with c1 = 1e-4.
        let dark = vec![0.2f32; 784];
        let light = vec![0.6f32; 784];
        let expected = (2.0 * 0.2 * 0.6 + 1e-4) / (0.04 + 0.36 + 1e-4);
        assert!((ssim(&dark, &light, 28) - expected).abs() < 1e-6);
    }

    #[test]
    fn ssim_falls_with_noise() {
        let image: Vec<f32> = (0..784).map(|i| ((i / 28 + i % 28) % 2) as f32).collect();
        let blurred: Vec<f32> = image.iter().map(|p| 0.25 + 0.5 * p).collect();
        let inverted: Vec<f32> = image.iter().map(|p| 1.0 - p).collect();
        let mild = ssim(&image, &blurred, 28);
        let severe = ssim(&image, &inverted, 28);
        assert!(mild < 1.0, "contrast halved: {mild}");
        assert!(mild > 0.5, "contrast halved: {mild}");
        assert!(severe < 0.0, "inverted: {severe}");
    }

    #[test]
    fn ssim_sum_matches_cpu() {
        let device = Device::flex();
        let first: Vec<f32> = (0..784).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        let second: Vec<f32> = (0..784)
            .map(|i| ((i / 28 + i % 28) % 7) as f32 / 6.0)
            .collect();
        let recreated: Vec<f32> = first
            .iter()
            .zip(&second)
            .map(|(a, b)| 0.7 * a + 0.3 * b)
            .collect();
        let originals = [first.clone(), second.clone()].concat();
        let recreations = [recreated.clone(), first.clone()].concat();
        let to_tensor = |values: Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(values, [2, 1, 28, 28]), &device)
        };
        let sum: Vec<f32> = ssim_sum(to_tensor(originals), to_tensor(recreations))
            .into_data()
            .try_to_vec()
            .unwrap();
        let expected = ssim(&first, &recreated, 28) + ssim(&second, &first, 28);
        assert!(
            (f64::from(sum[0]) - expected).abs() < 1e-4,
            "{sum:?} vs {expected}"
        );
    }

    #[test]
    fn batch_tensor_matches_per_image() {
        let device = Device::flex();
        let logits: Vec<f32> = (0..2 * 784)
            .map(|i| ((i * 13) % 29) as f32 / 4.0 - 3.5)
            .collect();
        let targets: Vec<f32> = (0..2 * 784).map(|i| ((i * 7) % 11) as f32 / 10.0).collect();
        let to_tensor = |values: &[f32]| {
            Tensor::<4>::from_data(TensorData::new(values.to_vec(), [2, 1, 28, 28]), &device)
        };
        let values: Vec<f32> = MetricSums::batch_tensor(to_tensor(&logits), to_tensor(&targets))
            .into_data()
            .try_to_vec()
            .unwrap();
        let mut sums = MetricSums::default();
        sums.add_batch(&values, 2, 784);
        let from_tensor = sums.metrics();

        let recreation: Vec<f32> = logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
        let first = image_metrics(&targets[..784], &recreation[..784]);
        let second = image_metrics(&targets[784..], &recreation[784..]);
        assert!((from_tensor.bce - (first.bce + second.bce) / 2.0).abs() < 1e-4);
        assert!((from_tensor.mse - (first.mse + second.mse) / 2.0).abs() < 1e-6);
        assert!((from_tensor.psnr - (first.psnr + second.psnr) / 2.0).abs() < 1e-3);
        assert!((from_tensor.ssim - (first.ssim + second.ssim) / 2.0).abs() < 1e-4);
    }
}
