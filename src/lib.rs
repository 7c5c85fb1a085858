//! A browser lab for image autoencoders.
//!
//! The model, the dataset shard format, the training loop and the metrics live here and
//! build both natively (for tests and the `cargo xtask` tools) and for wasm32 (for the
//! page). Everything that touches the browser sits under [`web`], which only exists on
//! wasm32.

pub mod data;
pub mod draw;
pub mod metrics;
pub mod model;
pub mod settings;
pub mod train;
pub mod wall;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;

/// Held by unit tests that initialise weights: Burn seeds one process-wide generator, so
/// tests running in parallel threads would otherwise draw from each other's sequence.
#[cfg(test)]
pub(crate) static SEEDED_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
