//! `cargo xtask build`, `serve` and `test`: the whole workflow from a fresh clone, each
//! step skipped when its output is already in place.

use std::process::Command;

use anyhow::Result;
use clap::Parser;

use crate::data::{self, SourceArgs};
use crate::tools::{self, cargo, run};

fn trunk_build() -> Result<()> {
    run(Command::new("trunk")
        .args(["build", "--release"])
        .current_dir(crate::project_root()))
}

pub fn build(source: &SourceArgs) -> Result<()> {
    tools::ensure_build_tools()?;
    data::ensure_all(source)?;
    trunk_build()
}

pub fn serve(source: &SourceArgs, port: u16) -> Result<()> {
    tools::ensure_build_tools()?;
    data::ensure_all(source)?;
    println!("serving on http://127.0.0.1:{port}/ once the build is done (Ctrl+C stops)");
    run(Command::new("trunk")
        .args(["serve", "--release", "--address", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .current_dir(crate::project_root()))
}

pub fn test(source: &SourceArgs) -> Result<()> {
    tools::ensure_build_tools()?;
    tools::require_browser()?;
    tools::require_vulkan()?;
    data::ensure_all(source)?;
    let root = crate::project_root();
    let official = source.official_dir();

    run(cargo().args(["fmt", "--all", "--check"]).current_dir(&root))?;
    run(cargo()
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(&root))?;
    run(cargo()
        .args([
            "clippy",
            "--package",
            "ae-lab",
            "--all-targets",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(&root))?;
    run(cargo()
        .args(["test", "--workspace"])
        .env(data::DATA_DIR_VAR, &official)
        .current_dir(&root))?;

    trunk_build()?;
    run(cargo()
        .args([
            "test",
            "--test",
            "browser",
            "--",
            "--ignored",
            "--test-threads=1",
        ])
        .env("AE_LAB_DIST", root.join("dist"))
        .current_dir(&root))?;

    // Benchmarks are not tests: each runs once in its quick mode to show it still works.
    // They run in this process because `cargo test` may have replaced this binary.
    let official = official.display().to_string();
    for bench in [
        &["bench", "load", "--runs", "1"][..],
        &["bench", "browser", "--quick", "--source", &official],
        &["bench", "native", "--quick", "--source", &official],
        &["bench", "native", "--quick", "--ops", "--source", &official],
    ] {
        println!("$ cargo xtask {}", bench.join(" "));
        let cli = crate::Cli::try_parse_from(
            std::iter::once("cargo xtask").chain(bench.iter().copied()),
        )?;
        crate::dispatch(cli.command)?;
    }
    Ok(())
}
