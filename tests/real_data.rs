//! IDX parsing and the shard round trip, checked against the published facts of the
//! real MNIST and Fashion-MNIST files.

mod common;

use ae_lab::data::manifest::ShardEntry;
use ae_lab::data::{Dataset, ImageSet, Split, shard};

struct Facts {
    count: usize,
    mean: f64,
    std: f64,
    first_label: u8,
    first_image_sum: u64,
    class_counts: [usize; 10],
}

fn check(set: &ImageSet, facts: &Facts) {
    assert_eq!(set.len(), facts.count);
    assert_eq!(set.labels[0], facts.first_label);
    let first_sum: u64 = set.image(0).iter().map(|&p| u64::from(p)).sum();
    assert_eq!(first_sum, facts.first_image_sum);
    let (mean, std) = set.pixel_stats();
    assert!((mean - facts.mean).abs() < 5e-6, "mean {mean}");
    assert!((std - facts.std).abs() < 5e-6, "std {std}");
    let mut counts = [0usize; 10];
    for &label in &set.labels {
        counts[label as usize] += 1;
    }
    assert_eq!(counts, facts.class_counts);
}

#[test]
fn mnist_train_facts() {
    let set = common::load(Dataset::Mnist, Split::Train);
    check(
        &set,
        &Facts {
            count: 60_000,
            mean: 0.13066,
            std: 0.30811,
            first_label: 5,
            first_image_sum: 27_525,
            class_counts: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        },
    );
}

#[test]
fn mnist_test_facts() {
    let set = common::load(Dataset::Mnist, Split::Test);
    check(
        &set,
        &Facts {
            count: 10_000,
            mean: 0.13251,
            std: 0.31048,
            first_label: 7,
            first_image_sum: 18_454,
            class_counts: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
        },
    );
}

#[test]
fn fashion_train_facts() {
    let set = common::load(Dataset::FashionMnist, Split::Train);
    check(
        &set,
        &Facts {
            count: 60_000,
            mean: 0.28604,
            std: 0.35302,
            first_label: 9,
            first_image_sum: 76_247,
            class_counts: [6000; 10],
        },
    );
}

#[test]
fn fashion_test_facts() {
    let set = common::load(Dataset::FashionMnist, Split::Test);
    check(
        &set,
        &Facts {
            count: 10_000,
            mean: 0.28685,
            std: 0.35244,
            first_label: 9,
            first_image_sum: 33_456,
            class_counts: [1000; 10],
        },
    );
}

#[test]
fn shard_round_trip_real_images() {
    let set = common::load(Dataset::FashionMnist, Split::Test);
    let mut rebuilt = ImageSet::default();
    for start in (0..set.len()).step_by(4000) {
        let end = (start + 4000).min(set.len());
        let part = ImageSet::new(
            set.pixels[start * 784..end * 784].to_vec(),
            set.labels[start..end].to_vec(),
        )
        .unwrap();
        let compressed = shard::encode(&part);
        assert!(compressed.len() < part.pixels.len(), "shards compress");
        let entry = ShardEntry::describe(format!("test-{start}.shard"), &part, &compressed);
        rebuilt.extend(&entry.verify(&compressed).unwrap());
    }
    assert_eq!(rebuilt, set);
}

#[test]
fn truncated_official_file_rejected() {
    let files = Dataset::Mnist.official(Split::Test);
    let raw = common::read_official(Dataset::Mnist, files.images.name, files.images.sha256);
    let error = ae_lab::data::idx::parse_images(&raw[..raw.len() - 100]).unwrap_err();
    assert!(error.to_string().contains("truncated"), "{error}");
}
