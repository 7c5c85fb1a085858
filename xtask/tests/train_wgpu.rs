//! `cargo xtask train --backend wgpu` on real MNIST. Without a GPU, wgpu runs on Mesa's
//! lavapipe Vulkan driver (Debian package `mesa-vulkan-drivers`), which `.ci/run`
//! installs.

use std::process::Command;

use ae_lab::weights;
use burn::prelude::Device;

#[test]
fn wgpu_training_writes_importable_weights() {
    let folder = std::env::temp_dir().join(format!("ae-lab-wgpu-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("mnist-conv.aelab");

    let run = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "train",
            "--backend",
            "wgpu",
            "--dataset",
            "mnist",
            "--preset",
            "conv",
        ])
        .args(["--epochs", "1", "--batch", "64", "--train-limit", "1024"])
        .args(["--test-limit", "500", "--output"])
        .arg(&path)
        .output()
        .expect("the xtask binary starts");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "train failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("on wgpu adapter"),
        "training did not run on wgpu:\n{stdout}"
    );

    let bytes = std::fs::read(&path).unwrap();
    let (_, info) = weights::import(&bytes, &Device::flex()).expect("the page's importer reads it");
    let metrics = info.metrics.expect("the file records its test metrics");
    // An untrained model scores a BCE near 0.69; 16 steps bring it well below.
    assert!(
        metrics.bce < 0.45,
        "test BCE after one epoch: {}",
        metrics.bce
    );
    assert_eq!(info.training.epochs, 1);
    std::fs::remove_dir_all(&folder).unwrap();
}
