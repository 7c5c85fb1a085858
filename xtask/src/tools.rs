//! Installs the tools the build needs when they are missing: the wasm32 target, Trunk
//! and a wasm-bindgen CLI of exactly the version in `Cargo.lock`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Trunk 0.22 needs a newer rustc than the 1.95 this project builds with.
const TRUNK_VERSION: &str = "0.21.14";

/// Runs `command`, echoing it first, and fails when it exits with an error.
pub fn run(command: &mut Command) -> Result<()> {
    println!("$ {}", describe(command));
    let status = command
        .status()
        .with_context(|| format!("cannot start `{}`", describe(command)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", describe(command));
    }
    Ok(())
}

fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// First line of `program --version`, or `None` when it cannot run.
fn version_of(program: &str) -> Option<String> {
    let output = Command::new(program).arg("--version").output().ok()?;
    output.status.success().then(|| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    })
}

/// Returns a command for the cargo that runs this xtask, so nested builds use the same toolchain.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Version of the `wasm-bindgen` crate recorded in `Cargo.lock`, which the CLI must match.
fn locked_wasm_bindgen_version(root: &Path) -> Result<String> {
    let lock =
        std::fs::read_to_string(root.join("Cargo.lock")).context("cannot read Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            let version = lines.next().unwrap_or_default();
            if let Some(version) = version.trim().strip_prefix("version = \"") {
                return Ok(version.trim_end_matches('"').to_string());
            }
        }
    }
    bail!("Cargo.lock has no wasm-bindgen entry")
}

/// Installs the wasm32 target, Trunk and wasm-bindgen-cli when missing or mismatched.
pub fn ensure_build_tools() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("cannot run rustup; install Rust with rustup first")?;
    if !String::from_utf8_lossy(&installed.stdout).contains("wasm32-unknown-unknown") {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }

    let trunk_expected = format!("trunk {TRUNK_VERSION}");
    if version_of("trunk").as_deref() != Some(trunk_expected.as_str()) {
        run(cargo().args(["install", "--locked", &format!("trunk@{TRUNK_VERSION}")]))?;
    }

    let bindgen = locked_wasm_bindgen_version(&crate::project_root())?;
    let bindgen_expected = format!("wasm-bindgen {bindgen}");
    if version_of("wasm-bindgen").as_deref() != Some(bindgen_expected.as_str()) {
        // NOTE: `--locked` fails here on a pinned dependency the registry mirror lacks.
        run(cargo().args(["install", &format!("wasm-bindgen-cli@{bindgen}")]))?;
    }
    Ok(())
}

/// Checks that Chromium and ChromeDriver are installed for the browser tests.
pub fn require_browser() -> Result<()> {
    for program in ["chromium", "chromedriver"] {
        if version_of(program).is_none() {
            bail!(
                "`{program}` not found; the browser tests need Chromium and ChromeDriver (on Debian: apt-get install chromium chromium-driver)"
            );
        }
    }
    Ok(())
}

/// Checks that a Vulkan driver is installed, so that wgpu finds an adapter for the
/// native GPU training test; Mesa's lavapipe runs it on the CPU.
pub fn require_vulkan() -> Result<()> {
    let has_driver = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(Result::ok)
        .any(|entry| entry.path().extension().is_some_and(|ext| ext == "json"));
    if !has_driver {
        bail!(
            "no Vulkan driver found; the wgpu training test needs one (on Debian: apt-get install mesa-vulkan-drivers)"
        );
    }
    Ok(())
}
