//! Keeps the current model and its settings in the browser's IndexedDB, so a reload or
//! a closed tab does not lose a trained model.

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

use super::js_error_text;

const DATABASE: &str = "ae-lab";
const STORE: &str = "models";
/// Key of the one saved model.
const CURRENT_KEY: &str = "current";

/// A model saved in the browser with the query string of its run.
#[derive(Clone)]
pub struct Saved {
    pub weights: Vec<u8>,
    pub query: String,
}

/// Resolves when `request` succeeds, with its result.
async fn finished(request: &IdbRequest) -> Result<JsValue, String> {
    let promise = Promise::new(&mut |resolve, reject| {
        let target = request.clone();
        let on_success = Closure::once_into_js(move |_: web_sys::Event| {
            let _ = resolve.call1(
                &JsValue::NULL,
                &target.result().unwrap_or(JsValue::UNDEFINED),
            );
        });
        let failed = request.clone();
        let on_error = Closure::once_into_js(move |_: web_sys::Event| {
            let message = failed
                .error()
                .ok()
                .flatten()
                .map(|error| error.message())
                .unwrap_or_else(|| "unknown IndexedDB error".into());
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(&message));
        });
        request.set_onsuccess(Some(on_success.unchecked_ref()));
        request.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise)
        .await
        .map_err(|error| js_error_text(&error))
}

async fn open() -> Result<IdbDatabase, String> {
    let factory = web_sys::window()
        .ok_or("no browser window")?
        .indexed_db()
        .map_err(|error| js_error_text(&error))?
        .ok_or("this browser has no IndexedDB")?;
    let request: IdbOpenDbRequest = factory
        .open_with_u32(DATABASE, 1)
        .map_err(|error| js_error_text(&error))?;
    let upgrading = request.clone();
    let on_upgrade = Closure::once_into_js(move |_: web_sys::Event| {
        if let Ok(result) = upgrading.result()
            && let Ok(database) = result.dyn_into::<IdbDatabase>()
        {
            let _ = database.create_object_store(STORE);
        }
    });
    request.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    finished(&request)
        .await?
        .dyn_into()
        .map_err(|_| "IndexedDB returned no database".to_string())
}

/// Opens the model store for writing.
async fn writable_store() -> Result<web_sys::IdbObjectStore, String> {
    let database = open().await?;
    let transaction = database
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(|error| js_error_text(&error))?;
    transaction
        .object_store(STORE)
        .map_err(|error| js_error_text(&error))
}

/// Saves `weights` and the `query` of their run, replacing what was saved before.
pub async fn save(weights: &[u8], query: &str) -> Result<(), String> {
    let store = writable_store().await?;
    let record = Object::new();
    Reflect::set(&record, &"weights".into(), &Uint8Array::from(weights))
        .map_err(|error| js_error_text(&error))?;
    Reflect::set(&record, &"query".into(), &query.into()).map_err(|error| js_error_text(&error))?;
    let request = store
        .put_with_key(&record, &CURRENT_KEY.into())
        .map_err(|error| js_error_text(&error))?;
    finished(&request).await.map(|_| ())
}

/// Returns the saved model, if any.
pub async fn load() -> Result<Option<Saved>, String> {
    let database = open().await?;
    let transaction = database
        .transaction_with_str(STORE)
        .map_err(|error| js_error_text(&error))?;
    let store = transaction
        .object_store(STORE)
        .map_err(|error| js_error_text(&error))?;
    let request = store
        .get(&CURRENT_KEY.into())
        .map_err(|error| js_error_text(&error))?;
    let record = finished(&request).await?;
    if record.is_undefined() || record.is_null() {
        return Ok(None);
    }
    let weights =
        Reflect::get(&record, &"weights".into()).map_err(|error| js_error_text(&error))?;
    let query = Reflect::get(&record, &"query".into())
        .ok()
        .and_then(|query| query.as_string())
        .unwrap_or_default();
    Ok(Some(Saved {
        weights: Uint8Array::new(&weights).to_vec(),
        query,
    }))
}

/// Forgets the saved model.
pub async fn clear() -> Result<(), String> {
    let store = writable_store().await?;
    let request = store
        .delete(&CURRENT_KEY.into())
        .map_err(|error| js_error_text(&error))?;
    finished(&request).await.map(|_| ())
}
