//! The weights files shipped with the page load into their preset and reproduce the
//! test metrics recorded in them.

mod common;

use std::path::PathBuf;

use ae_lab::data::{Dataset, Split};
use ae_lab::train::evaluate;
use ae_lab::weights;
use burn::prelude::Device;

fn check_shipped(dataset: Dataset) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("public/models")
        .join(format!("{}.aelab", dataset.slug()));
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let device = Device::flex();
    let (model, info) = weights::import(&bytes, &device).unwrap();
    assert_eq!(info.dataset, dataset);
    let recorded = info
        .metrics
        .expect("shipped weights record their test metrics");

    let test = common::load(dataset, Split::Test);
    let measured = pollster::block_on(evaluate(&model, &test, 500, &device)).unwrap();
    let close = |name: &str, recorded: f64, measured: f64| {
        let relative = (measured - recorded).abs() / recorded.abs();
        assert!(
            relative < 0.01,
            "{name}: recorded {recorded}, measured {measured}"
        );
    };
    close("BCE", recorded.bce, measured.bce);
    close("MSE", recorded.mse, measured.mse);
    close("PSNR", recorded.psnr, measured.psnr);
    close("SSIM", recorded.ssim, measured.ssim);
}

#[test]
fn shipped_mnist_reproduces_metrics() {
    check_shipped(Dataset::Mnist);
}

#[test]
fn shipped_fashion_reproduces_metrics() {
    check_shipped(Dataset::FashionMnist);
}
