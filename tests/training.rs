//! A few training steps on real MNIST images lower both the training and the test loss.

mod common;

use ae_lab::data::{Dataset, ImageSet, Split};
use ae_lab::model::Preset;
use ae_lab::train::{TrainOptions, Trainer, read_floats};
use burn::prelude::Device;

fn first(set: &ImageSet, count: usize) -> ImageSet {
    let mut part = set.clone();
    part.truncate(count);
    part
}

fn train_briefly(preset: Preset, learning_rate: f64, steps: usize) {
    let train = first(&common::load(Dataset::Mnist, Split::Train), 64 * steps);
    let test = first(&common::load(Dataset::Mnist, Split::Test), 256);
    let device = Device::flex();
    let mut trainer = Trainer::new(
        TrainOptions {
            preset,
            batch_size: 64,
            learning_rate,
            seed: 1,
        },
        &device,
    );

    let before = pollster::block_on(trainer.evaluate(&test)).unwrap();
    trainer.begin_epoch(train.len());
    let mut losses = Vec::new();
    while let Some(loss) = trainer.step(&train) {
        losses.push(pollster::block_on(read_floats(loss)).unwrap()[0]);
    }
    let after = pollster::block_on(trainer.evaluate(&test)).unwrap();

    assert_eq!(losses.len(), steps);
    assert!(losses.iter().all(|loss| loss.is_finite()), "{losses:?}");
    let head: f32 = losses[..3].iter().sum::<f32>() / 3.0;
    let tail: f32 = losses[steps - 3..].iter().sum::<f32>() / 3.0;
    assert!(tail < head * 0.9, "training loss {head} -> {tail}");
    assert!(
        after.bce < before.bce,
        "test BCE {} -> {}",
        before.bce,
        after.bce
    );
    assert!(
        after.psnr > before.psnr,
        "test PSNR {} -> {}",
        before.psnr,
        after.psnr
    );
}

#[test]
fn conv_learns_mnist() {
    train_briefly(Preset::Conv, 2e-3, 30);
}

#[test]
fn dense_conv_learns_mnist() {
    train_briefly(Preset::DenseConv, 1e-3, 12);
}
