//! Run settings and the query string that carries them, so that a shared link
//! reproduces a run.
//!
//! Parsing never fails: an unknown parameter or an invalid value is reported as a
//! [`Notice`] naming the parameter, and the setting keeps its default.

use std::fmt;

use crate::data::Dataset;
use crate::model::Preset;
use crate::train::TrainOptions;

/// Largest number of epochs a link may ask for.
pub const MAX_EPOCHS: usize = 500;
/// Largest batch size a link may ask for.
pub const MAX_BATCH: usize = 1024;
/// Size of the largest training split (both datasets have 60 000 training images).
pub const MAX_TRAIN_IMAGES: usize = 60_000;
/// Size of the largest test split (both datasets have 10 000 test images).
pub const MAX_TEST_IMAGES: usize = 10_000;

/// Compute backend the page uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// WebGPU when the browser offers it, otherwise the CPU.
    Auto,
    /// The CPU backend even when WebGPU is available.
    Cpu,
}

/// Everything that defines a run in the page.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSettings {
    pub dataset: Dataset,
    pub preset: Preset,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Train on only the first this many training images.
    pub train_limit: Option<usize>,
    /// Evaluate on only the first this many test images.
    pub test_limit: Option<usize>,
    pub autostart: bool,
    pub backend: BackendChoice,
    /// Continue training the current model instead of starting from random weights.
    pub fine_tune: bool,
}

/// Learning rate used when a link names none: the notebook's 1e-4 for its own
/// architecture, and a rate that converges faster for the small convolutional one.
pub fn default_learning_rate(preset: Preset) -> f64 {
    match preset {
        Preset::DenseConv => 1e-4,
        Preset::Conv | Preset::ConvLarge => 2e-3,
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            dataset: Dataset::Mnist,
            preset: Preset::Conv,
            epochs: 5,
            batch_size: 128,
            learning_rate: default_learning_rate(Preset::Conv),
            seed: 42,
            train_limit: None,
            test_limit: None,
            autostart: false,
            backend: BackendChoice::Auto,
            fine_tune: false,
        }
    }
}

/// A query parameter that was ignored, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub parameter: String,
    pub message: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.parameter, self.message)
    }
}

fn parse_whole(value: &str, min: usize, max: usize) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(number) if (min..=max).contains(&number) => Ok(number),
        _ => Err(format!(
            "`{value}` is not a whole number from {min} to {max}"
        )),
    }
}

/// Maximum length of a value quoted back in a notice. Longer values are cut.
const MAX_SHOWN_VALUE: usize = 40;

fn shorten(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN_VALUE {
        return value.to_string();
    }
    let head: String = value.chars().take(MAX_SHOWN_VALUE).collect();
    format!("{head}…")
}

impl RunSettings {
    /// Reads settings from a query string such as `?dataset=mnist&epochs=3`.
    pub fn from_query(query: &str) -> (Self, Vec<Notice>) {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut settings = RunSettings::default();
        let mut notices = Vec::new();
        let mut learning_rate = None;

        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let name = name.trim();
            let value = shorten(value.trim());
            let value = value.as_str();
            let result = match name {
                "dataset" => value.parse().map(|dataset| settings.dataset = dataset),
                "preset" => value.parse().map(|preset| settings.preset = preset),
                "epochs" => parse_whole(value, 1, MAX_EPOCHS).map(|n| settings.epochs = n),
                "batch" => parse_whole(value, 2, MAX_BATCH).map(|n| settings.batch_size = n),
                "lr" => match value.parse::<f64>() {
                    Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1.0 => {
                        learning_rate = Some(rate);
                        Ok(())
                    }
                    _ => Err(format!(
                        "`{value}` is not a learning rate above 0 and at most 1"
                    )),
                },
                "seed" => value
                    .parse::<u64>()
                    .map(|seed| settings.seed = seed)
                    .map_err(|_| format!("`{value}` is not a whole number from 0 to {}", u64::MAX)),
                "train_limit" => {
                    parse_whole(value, 2, MAX_TRAIN_IMAGES).map(|n| settings.train_limit = Some(n))
                }
                "test_limit" => {
                    parse_whole(value, 1, MAX_TEST_IMAGES).map(|n| settings.test_limit = Some(n))
                }
                "autostart" => match value {
                    "1" | "true" => Ok(true),
                    "0" | "false" => Ok(false),
                    _ => Err(format!("`{value}` is not 1 or 0")),
                }
                .map(|autostart| settings.autostart = autostart),
                "finetune" => match value {
                    "1" | "true" => Ok(true),
                    "0" | "false" => Ok(false),
                    _ => Err(format!("`{value}` is not 1 or 0")),
                }
                .map(|fine_tune| settings.fine_tune = fine_tune),
                "backend" => match value {
                    "auto" => Ok(BackendChoice::Auto),
                    "cpu" => Ok(BackendChoice::Cpu),
                    _ => Err(format!("`{value}` is not `auto` or `cpu`")),
                }
                .map(|backend| settings.backend = backend),
                "" => continue,
                _ => Err("unknown parameter, ignored".to_string()),
            };
            if let Err(message) = result {
                let message = if name.len() > 40 || !is_known(name) {
                    message
                } else {
                    format!("{message}; using the default")
                };
                notices.push(Notice {
                    parameter: name.chars().take(40).collect(),
                    message,
                });
            }
        }

        settings.learning_rate =
            learning_rate.unwrap_or_else(|| default_learning_rate(settings.preset));
        (settings, notices)
    }

    /// Returns the query string that reproduces these settings, without the leading `?`.
    pub fn to_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("dataset", self.dataset.slug())
            .append_pair("preset", self.preset.slug())
            .append_pair("epochs", &self.epochs.to_string())
            .append_pair("batch", &self.batch_size.to_string())
            .append_pair("lr", &self.learning_rate.to_string())
            .append_pair("seed", &self.seed.to_string());
        if let Some(limit) = self.train_limit {
            query.append_pair("train_limit", &limit.to_string());
        }
        if let Some(limit) = self.test_limit {
            query.append_pair("test_limit", &limit.to_string());
        }
        if self.backend == BackendChoice::Cpu {
            query.append_pair("backend", "cpu");
        }
        if self.fine_tune {
            query.append_pair("finetune", "1");
        }
        if self.autostart {
            query.append_pair("autostart", "1");
        }
        query.finish()
    }

    pub fn train_options(&self) -> TrainOptions {
        TrainOptions {
            preset: self.preset,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            seed: self.seed,
        }
    }
}

fn is_known(name: &str) -> bool {
    matches!(
        name,
        "dataset"
            | "preset"
            | "epochs"
            | "batch"
            | "lr"
            | "seed"
            | "train_limit"
            | "test_limit"
            | "autostart"
            | "backend"
            | "finetune"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_query_gives_defaults() {
        let (settings, notices) = RunSettings::from_query("");
        assert_eq!(settings, RunSettings::default());
        assert!(notices.is_empty());
    }

    #[test]
    fn full_query_parses() {
        let (settings, notices) = RunSettings::from_query(
            "?dataset=fashion-mnist&preset=dense-conv&epochs=3&batch=64&lr=0.0005&seed=9&train_limit=512&autostart=1&backend=cpu&finetune=1",
        );
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(settings.dataset, Dataset::FashionMnist);
        assert_eq!(settings.preset, Preset::DenseConv);
        assert_eq!(settings.epochs, 3);
        assert_eq!(settings.batch_size, 64);
        assert_eq!(settings.learning_rate, 0.0005);
        assert_eq!(settings.seed, 9);
        assert_eq!(settings.train_limit, Some(512));
        assert!(settings.autostart);
        assert_eq!(settings.backend, BackendChoice::Cpu);
        assert!(settings.fine_tune);
    }

    #[test]
    fn query_round_trips() {
        let (settings, _) = RunSettings::from_query(
            "dataset=fashion-mnist&epochs=7&lr=3e-4&train_limit=100&test_limit=50&autostart=1",
        );
        let (again, notices) = RunSettings::from_query(&settings.to_query());
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(again, settings);
    }

    #[test]
    fn invalid_values_fall_back_with_notice() {
        let (settings, notices) = RunSettings::from_query(
            "epochs=-1&batch=1e9&lr=NaN&dataset=cifar&seed=x&train_limit=0",
        );
        assert_eq!(settings, RunSettings::default());
        let named: Vec<&str> = notices.iter().map(|n| n.parameter.as_str()).collect();
        assert_eq!(
            named,
            ["epochs", "batch", "lr", "dataset", "seed", "train_limit"]
        );
        assert!(
            notices[0].message.contains("using the default"),
            "{}",
            notices[0]
        );
    }

    #[test]
    fn unknown_parameter_reported() {
        let (_, notices) = RunSettings::from_query("epochs=2&colour=red");
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].parameter, "colour");
    }

    #[test]
    fn hostile_values_stay_text() {
        let (settings, notices) =
            RunSettings::from_query("dataset=%3Cscript%3Ealert(1)%3C%2Fscript%3E&lr=1e309");
        assert_eq!(settings.dataset, Dataset::Mnist);
        assert_eq!(notices.len(), 2);
        assert!(notices[0].message.contains("<script>"), "{}", notices[0]);
    }

    #[test]
    fn long_value_cut_in_notice() {
        let long = "9".repeat(5000);
        let (_, notices) = RunSettings::from_query(&format!("epochs={long}"));
        assert_eq!(notices.len(), 1);
        assert!(notices[0].message.len() < 200, "{}", notices[0]);
    }

    #[test]
    fn learning_rate_defaults_per_preset() {
        let (settings, _) = RunSettings::from_query("preset=dense-conv");
        assert_eq!(settings.learning_rate, 1e-4);
    }
}
