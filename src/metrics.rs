//! Reconstruction metrics: binary cross-entropy, mean squared error and PSNR.
//!
//! BCE and MSE are means over every pixel of the evaluated set. PSNR is computed per
//! image with a data range of 1 and then averaged over images, so one perfect image
//! cannot dominate the figure; a per-image MSE below 1e-10 counts as 1e-10 (100 dB).

use std::ops::AddAssign;

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

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
        let (target, predicted) = (f64::from(target), f64::from(predicted).clamp(1e-7, 1.0 - 1e-7));
        bce -= target * predicted.ln() + (1.0 - target) * (1.0 - predicted).ln();
        squared += (target - predicted).powi(2);
    }
    let mse = squared / count;
    Metrics {
        bce: bce / count,
        mse,
        psnr: psnr_from_mse(mse),
    }
}

/// Running sums of metrics over batches, read back from the device once per evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricSums {
    pub bce: f64,
    pub squared_error: f64,
    pub psnr: f64,
    pub pixels: usize,
    pub images: usize,
}

impl MetricSums {
    /// Sums of BCE, squared error and per-image PSNR of one batch, as a tensor of 3 values
    /// that stays on the device until the caller reads it.
    ///
    /// # Shapes
    ///
    /// - `logits`, `targets`: `[batch, 1, height, width]`
    /// - output: `[3]`
    pub fn batch_tensor(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
        let [batch, channels, height, width] = logits.dims();
        let pixels = channels * height * width;

        let bce = bce_with_logits(logits.clone(), targets.clone()).sum();
        let squared = (sigmoid(logits) - targets).powi_scalar(2).reshape([batch, pixels]);
        let squared_sum = squared.clone().sum();
        let image_mse = squared.mean_dim(1).clamp_min(MSE_FLOOR);
        let psnr = (image_mse.log() * (-10.0 / std::f64::consts::LN_10)).sum();
        Tensor::cat(vec![bce, squared_sum, psnr], 0)
    }

    /// Adds the values read from [`MetricSums::batch_tensor`] for a batch of `images`.
    pub fn add_batch(&mut self, values: &[f32], images: usize, pixels_per_image: usize) {
        self.bce += f64::from(values[0]);
        self.squared_error += f64::from(values[1]);
        self.psnr += f64::from(values[2]);
        self.images += images;
        self.pixels += images * pixels_per_image;
    }

    pub fn metrics(&self) -> Metrics {
        let pixels = self.pixels.max(1) as f64;
        Metrics {
            bce: self.bce / pixels,
            mse: self.squared_error / pixels,
            psnr: self.psnr / self.images.max(1) as f64,
        }
    }
}

impl AddAssign for MetricSums {
    fn add_assign(&mut self, other: Self) {
        self.bce += other.bce;
        self.squared_error += other.squared_error;
        self.psnr += other.psnr;
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
        // Errors 0.5 and 0 give MSE 0.125 and PSNR 10·log10(8) = 9.0309 dB.
        // BCE: pixel 1 is -(ln 0.5), pixel 2 is -(ln(1 - 1e-7)) after clamping.
        let metrics = image_metrics(&[1.0, 0.0], &[0.5, 0.0]);
        assert!((metrics.mse - 0.125).abs() < 1e-12, "{metrics:?}");
        assert!((metrics.psnr - 9.030_9).abs() < 1e-4, "{metrics:?}");
        assert!((metrics.bce - 0.346_574).abs() < 1e-5, "{metrics:?}");
    }

    #[test]
    fn batch_tensor_matches_per_image() {
        let device = Device::flex();
        let logits = [0.3f32, -1.2, 2.0, 0.0, -0.7, 1.5, 0.1, -2.5];
        let targets = [0.0f32, 0.2, 1.0, 0.5, 0.0, 0.9, 0.3, 0.0];
        let to_tensor = |values: &[f32]| {
            Tensor::<4>::from_data(TensorData::new(values.to_vec(), [2, 1, 2, 2]), &device)
        };
        let values: Vec<f32> = MetricSums::batch_tensor(to_tensor(&logits), to_tensor(&targets))
            .into_data()
            .try_to_vec()
            .unwrap();
        let mut sums = MetricSums::default();
        sums.add_batch(&values, 2, 4);
        let from_tensor = sums.metrics();

        let recreation: Vec<f32> = logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
        let first = image_metrics(&targets[..4], &recreation[..4]);
        let second = image_metrics(&targets[4..], &recreation[4..]);
        assert!((from_tensor.bce - (first.bce + second.bce) / 2.0).abs() < 1e-5);
        assert!((from_tensor.mse - (first.mse + second.mse) / 2.0).abs() < 1e-6);
        assert!((from_tensor.psnr - (first.psnr + second.psnr) / 2.0).abs() < 1e-3);
    }
}
