//! `cargo xtask bench native --ops`: where a training step of the `conv` preset spends
//! its time on Burn's Flex backend. Each convolution the step runs, forward and
//! backward, is timed next to one matrix product with the same multiply-adds on the same
//! backend, the speed Flex reaches when the work is a single `gemm`.
//!
//! Flex keeps Burn's default backward passes, so the backward convolutions are written
//! out as those compute them. The input gradient of a convolution is a transposed
//! convolution, and that of a transposed convolution is a convolution. Each weight
//! gradient is a convolution of the input with the output gradient, with batch and
//! channels swapped and the stride turned into a dilation.

use std::time::Instant;

use anyhow::{Result, anyhow};
use burn::prelude::{Device, Tensor};
use burn::tensor::Distribution;
use burn::tensor::module::{conv_transpose2d, conv2d, conv2d_weight_backward};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::median;

/// One convolution of a training step, with the matrix product of equal work.
struct Operation {
    name: &'static str,
    /// Rows, depth and columns of the product with the same multiply-adds.
    product: [usize; 3],
    run: Box<dyn Fn() -> Tensor<4>>,
}

/// Milliseconds per call of `run`, median of `runs` timings of `CALLS` calls each.
fn time_ms(run: &dyn Fn() -> Tensor<4>, device: &Device, runs: usize) -> Result<f64> {
    const CALLS: usize = 5;
    let sync = || device.sync().map_err(|error| anyhow!("{error:?}"));
    run().into_data();
    let mut timings = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        for _ in 0..CALLS {
            drop(run());
        }
        sync()?;
        timings.push(started.elapsed().as_secs_f64() * 1000.0 / CALLS as f64);
    }
    Ok(median(&mut timings))
}

/// Stride 2 and padding 1, as every convolution of the preset.
fn down_options() -> ConvOptions<2> {
    ConvOptions::new([2, 2], [1, 1], [1, 1], 1)
}

fn conv(x: &Tensor<4>, weight: &Tensor<4>) -> Tensor<4> {
    conv2d(x.clone(), weight.clone(), None, down_options())
}

fn transposed(x: &Tensor<4>, weight: &Tensor<4>) -> Tensor<4> {
    let options = ConvTransposeOptions::new([2, 2], [1, 1], [1, 1], [1, 1], 1);
    conv_transpose2d(x.clone(), weight.clone(), None, options)
}

fn weight_grad(x: &Tensor<4>, weight: &Tensor<4>, grad: &Tensor<4>) -> Tensor<4> {
    conv2d_weight_backward(x.clone(), weight.clone(), grad.clone(), down_options())
}

/// Computes the weight gradient of a transposed convolution: output gradient against
/// input, batch as channels, stride as dilation.
fn transposed_weight_grad(x: &Tensor<4>, grad: &Tensor<4>) -> Tensor<4> {
    let dilated = ConvOptions::new([1, 1], [1, 1], [2, 2], 1);
    let swapped = conv2d(
        grad.clone().swap_dims(0, 1),
        x.clone().swap_dims(0, 1),
        None,
        dilated,
    );
    swapped.swap_dims(0, 1)
}

fn random(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Lists the convolutions of one `conv` step at `batch` images: 28 → 14 → 7 and back.
fn operations(batch: usize, device: &Device) -> Vec<Operation> {
    let images = random([batch, 1, 28, 28], device);
    let wide_map = random([batch, 32, 14, 14], device);
    let narrow_map = random([batch, 64, 7, 7], device);
    let output = random([batch, 1, 28, 28], device);
    let down1 = random([32, 1, 3, 3], device);
    let down2 = random([64, 32, 3, 3], device);
    let up1 = random([64, 32, 3, 3], device);
    let up2 = random([32, 1, 3, 3], device);

    let mut list: Vec<Operation> = Vec::new();
    let mut add = |name, product, run: Box<dyn Fn() -> Tensor<4>>| {
        list.push(Operation { name, product, run });
    };
    {
        let (x, w) = (images.clone(), down1.clone());
        add(
            "down1 forward",
            [batch * 196, 9, 32],
            Box::new(move || conv(&x, &w)),
        );
    }
    {
        let (x, w) = (wide_map.clone(), down2.clone());
        add(
            "down2 forward",
            [batch * 49, 288, 64],
            Box::new(move || conv(&x, &w)),
        );
    }
    {
        let (x, w) = (narrow_map.clone(), up1.clone());
        add(
            "up1 forward",
            [batch * 49, 64, 288],
            Box::new(move || transposed(&x, &w)),
        );
    }
    {
        let (x, w) = (wide_map.clone(), up2.clone());
        add(
            "up2 forward",
            [batch * 196, 32, 9],
            Box::new(move || transposed(&x, &w)),
        );
    }
    {
        let (g, w) = (narrow_map.clone(), down2.clone());
        add(
            "down2 input gradient",
            [batch * 49, 64, 288],
            Box::new(move || transposed(&g, &w)),
        );
    }
    {
        let (g, w) = (wide_map.clone(), up1.clone());
        add(
            "up1 input gradient",
            [batch * 49, 288, 64],
            Box::new(move || conv(&g, &w)),
        );
    }
    {
        let (g, w) = (output.clone(), up2.clone());
        add(
            "up2 input gradient",
            [batch * 196, 9, 32],
            Box::new(move || conv(&g, &w)),
        );
    }
    {
        let (x, w, g) = (images, down1, wide_map.clone());
        add(
            "down1 weight gradient",
            [9, batch * 196, 32],
            Box::new(move || weight_grad(&x, &w, &g)),
        );
    }
    {
        let (x, w, g) = (wide_map.clone(), down2, narrow_map.clone());
        add(
            "down2 weight gradient",
            [288, batch * 49, 64],
            Box::new(move || weight_grad(&x, &w, &g)),
        );
    }
    {
        let (x, g) = (narrow_map, wide_map.clone());
        add(
            "up1 weight gradient",
            [288, batch * 49, 64],
            Box::new(move || transposed_weight_grad(&x, &g)),
        );
    }
    {
        let (x, g) = (wide_map, output);
        add(
            "up2 weight gradient",
            [288, batch * 196, 1],
            Box::new(move || transposed_weight_grad(&x, &g)),
        );
    }
    list
}

/// Builds a product of `rows × depth` by `depth × columns` on `device`.
fn product(shape: [usize; 3], device: &Device) -> Box<dyn Fn() -> Tensor<4>> {
    let [rows, depth, columns] = shape;
    let left = random([1, 1, rows, depth], device).reshape([rows, depth]);
    let right = random([1, 1, depth, columns], device).reshape([depth, columns]);
    Box::new(move || left.clone().matmul(right.clone()).unsqueeze())
}

/// Prints each convolution's time, the time of the product of equal work, and their
/// ratio, then the totals.
pub fn run(batch: usize, runs: usize) -> Result<()> {
    let device = Device::flex();
    println!(
        "conv preset, batch {batch}: each convolution of a training step on Flex, against one matrix product of the same multiply-adds (median of {runs})"
    );
    println!(
        "{:<24} {:>10} {:>16} {:>12}",
        "operation", "Flex ms", "same-size gemm", "gemm / Flex"
    );
    let (mut total, mut total_product) = (0.0, 0.0);
    for operation in operations(batch, &device) {
        let convolution = time_ms(&operation.run, &device, runs)?;
        let product = time_ms(&product(operation.product, &device), &device, runs)?;
        total += convolution;
        total_product += product;
        println!(
            "{:<24} {:>10.2} {:>13.2} ms {:>12.2}",
            operation.name,
            convolution,
            product,
            product / convolution
        );
    }
    println!(
        "{:<24} {:>10.2} {:>13.2} ms {:>12.2}",
        "all convolutions",
        total,
        total_product,
        total_product / total
    );
    Ok(())
}
