//! The training loop, step by step, so that the page can yield to the browser between
//! steps and the command line can run it flat out.
//!
//! Nothing here reads a tensor synchronously: reads go through `into_data_async`, which
//! the page awaits and native callers block on.

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::{IMAGE_PIXELS, IMAGE_SIDE, ImageSet};
use crate::metrics::{MetricSums, Metrics};
use crate::model::{Autoencoder, AutoencoderConfig, Preset, bce_with_logits};

/// Settings of a training run besides the data.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub preset: Preset,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Seed of the weight initialisation and of the shuffling.
    pub seed: u64,
}

/// Copies the images at `indices` to the device as floats in [0, 1].
///
/// # Shapes
///
/// - output: `[indices.len(), 1, 28, 28]`
pub fn images_tensor(set: &ImageSet, indices: &[usize], device: &Device) -> Tensor<4> {
    let mut values = Vec::with_capacity(indices.len() * IMAGE_PIXELS);
    for &index in indices {
        values.extend(set.image(index).iter().map(|&p| f32::from(p) / 255.0));
    }
    let shape = [indices.len(), 1, IMAGE_SIDE, IMAGE_SIDE];
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Reads a float tensor back from the device without blocking the browser.
pub async fn read_floats<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, String> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|error| format!("reading from the device failed: {error:?}"))?;
    data.try_to_vec_as::<f32>()
        .map_err(|error| format!("unexpected tensor data: {error:?}"))
}

/// A model, its optimiser and the position in the shuffled training data.
pub struct Trainer {
    /// `None` only while the optimiser owns the model during a step.
    model: Option<Autoencoder>,
    optimizer: ModuleOptimizer,
    device: Device,
    options: TrainOptions,
    rng: StdRng,
    order: Vec<usize>,
    cursor: usize,
    steps: usize,
}

impl Trainer {
    /// Builds a freshly initialised model on `device`, seeded by `options.seed`.
    pub fn new(options: TrainOptions, device: &Device) -> Self {
        device.seed(options.seed);
        let training_device = device.clone().autodiff();
        let model = AutoencoderConfig::new(options.preset).init(&training_device);
        Self::with_model(model, options, device)
    }

    /// Continues training `model` (for example one loaded from a weights file) with a
    /// fresh optimiser. The model's own preset replaces `options.preset`.
    pub fn from_model(model: Autoencoder, mut options: TrainOptions, device: &Device) -> Self {
        options.preset = model.preset();
        let model = model.to_device(&device.clone().autodiff()).train();
        Self::with_model(model, options, device)
    }

    /// Wraps `model`, already on the autodiff device, with a fresh optimiser and
    /// shuffling generator.
    fn with_model(model: Autoencoder, options: TrainOptions, device: &Device) -> Self {
        Self {
            model: Some(model),
            optimizer: AdamConfig::new().init(),
            device: device.clone(),
            rng: StdRng::seed_from_u64(options.seed),
            options,
            order: Vec::new(),
            cursor: 0,
            steps: 0,
        }
    }

    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    /// Optimiser steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Returns the model with training behaviour turned off, for evaluation and recreation.
    pub fn inference_model(&self) -> Autoencoder {
        self.model().valid()
    }

    fn model(&self) -> &Autoencoder {
        self.model
            .as_ref()
            .expect("the model is only taken out during an optimiser step")
    }

    /// Shuffles the first `available` training images into a new epoch order.
    pub fn begin_epoch(&mut self, available: usize) {
        self.order = (0..available).collect();
        self.order.shuffle(&mut self.rng);
        self.cursor = 0;
    }

    /// Images left in the current epoch.
    pub fn remaining(&self) -> usize {
        self.order.len() - self.cursor
    }

    /// Trains on the next batch of the epoch and returns its mean loss, still on the
    /// device, or `None` when the epoch is over.
    ///
    /// A last batch of a single image is skipped, because batch norm cannot compute a
    /// variance from one sample.
    pub fn step(&mut self, train: &ImageSet) -> Option<Tensor<1>> {
        let end = (self.cursor + self.options.batch_size).min(self.order.len());
        if end - self.cursor < 2 {
            self.cursor = self.order.len();
            return None;
        }
        let indices = &self.order[self.cursor..end];
        self.cursor = end;

        let training_device = self.device.clone().autodiff();
        let images = images_tensor(train, indices, &training_device);
        let model = self.model.take().expect("model present between steps");
        let logits = model.forward(images.clone());
        let loss = bce_with_logits(logits, images).mean();
        let gradients = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(
            self.optimizer
                .step(self.options.learning_rate, model, gradients),
        );
        self.steps += 1;
        Some(loss.detach())
    }

    /// Evaluates BCE, MSE and PSNR on all of `test`, reading the device once at the end.
    pub async fn evaluate(&self, test: &ImageSet) -> Result<Metrics, String> {
        evaluate(
            &self.inference_model(),
            test,
            self.options.batch_size,
            &self.device,
        )
        .await
    }

    /// Recreations of the images at `indices`, as pixels in [0, 1].
    pub async fn recreate(&self, set: &ImageSet, indices: &[usize]) -> Result<Vec<f32>, String> {
        recreate(&self.inference_model(), set, indices, &self.device).await
    }
}

/// Evaluates `model` on every image of `test` in batches of `batch_size`.
pub async fn evaluate(
    model: &Autoencoder,
    test: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Result<Metrics, String> {
    evaluate_with_pauses(model, test, batch_size, device, || async {}).await
}

/// Like [`evaluate`], but awaits `pause` after each batch, so a page can let the
/// browser handle input and paint between batches.
pub async fn evaluate_with_pauses<F, Fut>(
    model: &Autoencoder,
    test: &ImageSet,
    batch_size: usize,
    device: &Device,
    mut pause: F,
) -> Result<Metrics, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let indices: Vec<usize> = (0..test.len()).collect();
    let mut sums = MetricSums::default();
    for chunk in indices.chunks(batch_size.max(1)) {
        let images = images_tensor(test, chunk, device);
        let batch = MetricSums::batch_tensor(model.forward(images.clone()), images);
        sums.add_batch(&read_floats(batch).await?, chunk.len(), IMAGE_PIXELS);
        pause().await;
    }
    Ok(sums.metrics())
}

/// Recreations by `model` of the images at `indices`, as pixels in [0, 1].
pub async fn recreate(
    model: &Autoencoder,
    set: &ImageSet,
    indices: &[usize],
    device: &Device,
) -> Result<Vec<f32>, String> {
    let images = images_tensor(set, indices, device);
    read_floats(sigmoid(model.forward(images))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IMAGE_PIXELS;

    fn blobs(count: usize) -> ImageSet {
        let mut pixels = vec![0u8; count * IMAGE_PIXELS];
        for (i, image) in pixels.chunks_mut(IMAGE_PIXELS).enumerate() {
            let centre = 8 + (i % 12);
            for row in centre - 3..centre + 3 {
                for col in centre - 3..centre + 3 {
                    image[row * IMAGE_SIDE + col] = 255;
                }
            }
        }
        ImageSet::new(pixels, vec![0; count]).unwrap()
    }

    fn options() -> TrainOptions {
        TrainOptions {
            preset: Preset::Conv,
            batch_size: 8,
            learning_rate: 1e-3,
            seed: 7,
        }
    }

    #[test]
    fn epoch_covers_every_image_once() {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let set = blobs(20);
        let mut trainer = Trainer::new(options(), &Device::flex());
        trainer.begin_epoch(set.len());
        let mut steps = 0;
        while trainer.step(&set).is_some() {
            steps += 1;
        }
        // 20 images in batches of 8: 8 + 8 + 4.
        assert_eq!(steps, 3);
        assert_eq!(trainer.remaining(), 0);
    }

    #[test]
    fn single_leftover_image_skipped() {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let set = blobs(9);
        let mut trainer = Trainer::new(options(), &Device::flex());
        trainer.begin_epoch(set.len());
        assert!(trainer.step(&set).is_some());
        assert!(trainer.step(&set).is_none());
    }

    #[test]
    fn same_seed_same_first_loss() {
        let set = blobs(16);
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let first_loss = || {
            let mut trainer = Trainer::new(options(), &Device::flex());
            trainer.begin_epoch(set.len());
            let loss = trainer.step(&set).unwrap();
            pollster::block_on(read_floats(loss)).unwrap()[0]
        };
        assert_eq!(first_loss(), first_loss());
    }

    #[test]
    fn fine_tuning_continues_from_model() {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let set = blobs(32);
        let device = Device::flex();
        let mut trainer = Trainer::new(options(), &device);
        trainer.begin_epoch(set.len());
        while trainer.step(&set).is_some() {}
        let trained = trainer.inference_model();
        let before = pollster::block_on(trainer.evaluate(&set)).unwrap();

        let mut tuned = Trainer::from_model(trained, options(), &device);
        let start = pollster::block_on(tuned.evaluate(&set)).unwrap();
        assert_eq!(start, before, "fine-tuning starts from the given weights");
        tuned.begin_epoch(set.len());
        let loss = tuned.step(&set).expect("a batch to train on");
        let loss = pollster::block_on(read_floats(loss)).unwrap()[0];
        assert!(loss.is_finite());
        let after = pollster::block_on(tuned.evaluate(&set)).unwrap();
        assert_ne!(after, before, "a step changes the weights");
    }

    #[test]
    fn recreation_in_unit_range() {
        let _guard = crate::SEEDED_RNG
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let set = blobs(3);
        let trainer = Trainer::new(options(), &Device::flex());
        let pixels = pollster::block_on(trainer.recreate(&set, &[0, 2])).unwrap();
        assert_eq!(pixels.len(), 2 * IMAGE_PIXELS);
        assert!(pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    }
}
