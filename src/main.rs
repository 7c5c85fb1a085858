//! Entry point of the page, which Trunk builds for wasm32.

#[cfg(target_arch = "wasm32")]
fn main() {
    ae_lab::web::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("The app runs in the browser: start it with `cargo xtask serve`.");
    std::process::exit(2);
}
