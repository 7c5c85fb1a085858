//! Project tooling behind `cargo xtask`: dataset shards, building, serving and testing
//! the app. Each subcommand lives in its own module.

mod bench;
mod data;
mod tools;
mod train;
mod workflow;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Tooling for the autoencoder lab")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Turn the official IDX files into the shards the page downloads.
    Data(data::DataArgs),
    /// Install missing tools, make the shards and build the release site into `dist/`.
    Build(data::SourceArgs),
    /// Install missing tools, make the shards and serve the app on localhost.
    Serve {
        #[command(flatten)]
        source: data::SourceArgs,
        /// Port to listen on.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Measure sizes and speeds; see BENCHMARKS.md for recorded results.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Train a preset natively and write a weights file the page can load.
    Train(train::TrainArgs),
    /// Rewrite a weights file in another precision, with the test metrics it then gives.
    Convert(train::ConvertArgs),
    /// Install missing tools and run every check: formatting, lints, native tests and
    /// browser tests.
    Test(data::SourceArgs),
}

fn main() -> Result<()> {
    dispatch(Cli::parse().command)
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Data(args) => data::run(&args),
        Command::Build(source) => workflow::build(&source),
        Command::Serve { source, port } => workflow::serve(&source, port),
        Command::Test(source) => workflow::test(&source),
        Command::Train(args) => train::run(&args),
        Command::Convert(args) => train::convert(&args),
        Command::Bench { command } => bench::run(&command),
    }
}

/// Root of the workspace, where `Cargo.toml` of the app lives.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits one folder below the workspace root")
        .to_path_buf()
}
