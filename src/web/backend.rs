//! Picks the compute device: Burn's wgpu backend on WebGPU when the browser offers an
//! adapter, otherwise the Flex CPU backend, with the reason for the fallback.

use std::cell::RefCell;

use burn::prelude::Device;
use js_sys::{Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::js_error_text;
use crate::settings::BackendChoice;

/// A device and the text the page shows for it.
#[derive(Clone)]
pub struct Backend {
    pub device: Device,
    /// Text starting with `WebGPU` or `CPU`, followed by the reason for a fallback.
    pub label: String,
}

thread_local! {
    /// The WebGPU device, started once per page: Burn's wgpu runtime cannot be started
    /// twice.
    static GPU: RefCell<Option<Result<Backend, String>>> = const { RefCell::new(None) };
}

fn cpu(reason: &str) -> Backend {
    Backend {
        device: Device::flex(),
        label: format!("CPU ({reason})"),
    }
}

/// Checks that `navigator.gpu` exists and returns an adapter, so that a missing WebGPU is
/// reported as such instead of as a failure deep inside wgpu.
async fn probe_adapter() -> Result<(), String> {
    let window = web_sys::window().ok_or("no browser window")?;
    let gpu = Reflect::get(&window.navigator(), &"gpu".into()).unwrap_or_default();
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser does not offer WebGPU".into());
    }
    let request = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|function| function.dyn_into::<js_sys::Function>().ok())
        .ok_or("navigator.gpu has no requestAdapter")?;
    let promise: Promise = request
        .call0(&gpu)
        .map_err(|error| js_error_text(&error))?
        .dyn_into()
        .map_err(|_| "requestAdapter did not return a promise".to_string())?;
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|error| format!("WebGPU adapter request failed: {}", js_error_text(&error)))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("WebGPU found no adapter".into());
    }
    Ok(())
}

async fn start_gpu() -> Result<Backend, String> {
    probe_adapter().await?;
    let device = Device::wgpu_options()
        .init_async()
        .await
        .map_err(|error| format!("WebGPU failed to start: {error}"))?;
    Ok(Backend {
        device,
        label: "WebGPU".into(),
    })
}

/// Returns the browser's message once the WebGPU device has been lost, as the script in
/// `index.html` records it.
pub fn gpu_lost() -> Option<String> {
    let window = web_sys::window()?;
    let reason = Reflect::get(&window, &"aeLabGpuLost".into())
        .ok()?
        .as_string()?;
    Some(reason.trim_end_matches('.').to_string())
}

/// Returns the device for `choice`, starting WebGPU on first use, and the CPU once the
/// WebGPU device has been lost.
pub async fn select(choice: BackendChoice) -> Backend {
    if choice == BackendChoice::Cpu {
        return cpu("chosen in the settings");
    }
    if let Some(reason) = gpu_lost() {
        return cpu(&format!(
            "fallback: the WebGPU device was lost ({reason}); reload the page to use WebGPU again"
        ));
    }
    let known = GPU.with(|gpu| gpu.borrow().clone());
    let result = match known {
        Some(result) => result,
        None => {
            let result = start_gpu().await;
            GPU.with(|gpu| *gpu.borrow_mut() = Some(result.clone()));
            result
        }
    };
    match result {
        Ok(backend) => backend,
        Err(reason) => {
            log::warn!("falling back to the CPU: {reason}");
            cpu(&format!("fallback: {reason}"))
        }
    }
}
