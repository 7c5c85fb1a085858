//! Browser glue: the Leptos page, downloads, canvases and the WebGPU start-up. Only
//! built for wasm32.

mod app;
mod backend;
mod chart;
mod current;
mod dataset;
mod draw;
mod fetch;
mod session;
mod storage;
mod ui;

use wasm_bindgen::JsCast;

/// Installs the panic hook and the console logger, then mounts the page.
pub fn start() {
    mark("ae-lab:start");
    console_error_panic_hook::set_once();
    let _ = console_log::init_with_level(log::Level::Info);
    leptos::mount::mount_to_body(app::App);
}

/// Adds a named point to the browser's performance timeline, where `cargo xtask bench
/// load` and the browser's profiler see how long each stage of the page took.
pub fn mark(name: &str) {
    if let Some(performance) = web_sys::window().and_then(|window| window.performance()) {
        let _ = performance.mark(name);
    }
}

/// Milliseconds since the page started loading.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map(|performance| performance.now())
        .unwrap_or_default()
}

/// Gives the browser a turn to handle input before long work continues.
pub async fn yield_to_browser() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

/// Waits until the browser has painted a frame, so that what was just drawn is on the
/// screen before long work blocks the page.
pub async fn yield_to_paint() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.request_animation_frame(&resolve);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    yield_to_browser().await;
}

/// Text of a JavaScript error value.
pub fn js_error_text(value: &wasm_bindgen::JsValue) -> String {
    if let Some(error) = wasm_bindgen::JsCast::dyn_ref::<js_sys::Error>(value) {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// Bytes of this module's WebAssembly memory.
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .ok()
        .and_then(|memory| memory.buffer().dyn_into::<js_sys::ArrayBuffer>().ok())
        .map(|buffer| f64::from(buffer.byte_length()))
        .unwrap_or_default()
}

/// Runs a full garbage collection and returns the JavaScript heap still in use. Only
/// Chromium started with `--js-flags=--expose-gc` (as the benchmark does) allows this,
/// so elsewhere the result is `None`.
pub fn js_heap_live_bytes() -> Option<f64> {
    let window = web_sys::window()?;
    let collect = js_sys::Reflect::get(&window, &"gc".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    collect.call0(&window).ok()?;
    js_heap_bytes()
}

/// Bytes of JavaScript heap in use, from Chromium's non-standard `performance.memory`;
/// `None` in browsers without it.
pub fn js_heap_bytes() -> Option<f64> {
    let performance = web_sys::window()?.performance()?;
    let memory = js_sys::Reflect::get(&performance, &"memory".into()).ok()?;
    js_sys::Reflect::get(&memory, &"usedJSHeapSize".into())
        .ok()?
        .as_f64()
}
