//! Downloads with byte-level progress, read from the response body stream.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

use super::js_error_text;

async fn response(url: &str) -> Result<Response, String> {
    let window = web_sys::window().ok_or("no browser window")?;
    let response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|error| format!("download of {url} failed: {}", js_error_text(&error)))?;
    let response: Response = response
        .dyn_into()
        .map_err(|_| format!("download of {url} returned no response"))?;
    if !response.ok() {
        return Err(format!(
            "download of {url} failed: HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    Ok(response)
}

/// Downloads `url` as text.
pub async fn text(url: &str) -> Result<String, String> {
    let response = response(url).await?;
    let promise = response
        .text()
        .map_err(|error| format!("reading {url} failed: {}", js_error_text(&error)))?;
    JsFuture::from(promise)
        .await
        .map_err(|error| format!("reading {url} failed: {}", js_error_text(&error)))?
        .as_string()
        .ok_or_else(|| format!("{url} is not text"))
}

/// Downloads `url`, calling `on_progress` with the bytes received after each chunk.
pub async fn bytes(url: &str, mut on_progress: impl FnMut(usize)) -> Result<Vec<u8>, String> {
    let failed = |error: JsValue| format!("download of {url} failed: {}", js_error_text(&error));
    let response = response(url).await?;
    let body = response
        .body()
        .ok_or_else(|| format!("download of {url} has no body"))?;
    let reader: ReadableStreamDefaultReader = body
        .get_reader()
        .dyn_into()
        .map_err(|_| format!("download of {url} cannot be read as a stream"))?;

    let mut bytes = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(failed)?;
        let done = Reflect::get(&chunk, &"done".into())
            .map_err(failed)?
            .as_bool()
            .unwrap_or(true);
        if done {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(failed)?;
        let array = Uint8Array::new(&value);
        let start = bytes.len();
        bytes.resize(start + array.length() as usize, 0);
        array.copy_to(&mut bytes[start..]);
        on_progress(bytes.len());
    }
    Ok(bytes)
}
