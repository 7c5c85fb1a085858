//! The page: run controls, status, the loss chart, the wall and the metrics table.

use leptos::html::Canvas;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{Clamped, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, CanvasRenderingContext2d, HtmlAnchorElement, HtmlCanvasElement,
    HtmlInputElement, ImageData, Url,
};

use super::draw::DrawPanel;
use super::ui::{Progress, Ui};
use super::{chart, current, session, storage};
use crate::data::Dataset;
use crate::model::Preset;
use crate::settings::{MAX_BATCH, MAX_EPOCHS, Notice, RunSettings, default_learning_rate};
use crate::wall::{self, Rgba};

/// Copies an RGBA buffer onto `canvas`, resizing the canvas to fit it.
pub fn paint(canvas: &HtmlCanvasElement, image: &Rgba) -> Result<(), String> {
    canvas.set_width(image.width as u32);
    canvas.set_height(image.height as u32);
    let context: CanvasRenderingContext2d = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|context| context.dyn_into().ok())
        .ok_or("the canvas has no 2D context")?;
    let data = ImageData::new_with_u8_clamped_array_and_sh(
        Clamped(&image.pixels),
        image.width as u32,
        image.height as u32,
    )
    .map_err(|error| super::js_error_text(&error))?;
    context
        .put_image_data(&data, 0.0, 0.0)
        .map_err(|error| super::js_error_text(&error))
}

/// Replaces the address bar's query with `settings`, so a reload or a copied link
/// reproduces the run.
fn show_in_address_bar(settings: &RunSettings) {
    let query = format!("?{}", settings.to_query());
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&query));
    }
}

/// Offers `bytes` to the user as a file download named `name`.
fn download(bytes: &[u8], name: &str) -> Result<(), String> {
    let failed = |error: JsValue| format!("the download failed: {}", super::js_error_text(&error));
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = BlobPropertyBag::new();
    options.set_type("application/octet-stream");
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(failed)?;
    let url = Url::create_object_url_with_blob(&blob).map_err(failed)?;
    let anchor: HtmlAnchorElement = document()
        .create_element("a")
        .map_err(failed)?
        .dyn_into()
        .map_err(|_| "the download failed: no anchor element".to_string())?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    Url::revoke_object_url(&url).map_err(failed)
}

/// Reads the file picked in `input`, with its name.
async fn picked_file(input: &HtmlInputElement) -> Result<Option<(Vec<u8>, String)>, String> {
    let Some(file) = input.files().and_then(|files| files.get(0)) else {
        return Ok(None);
    };
    let buffer = JsFuture::from(file.array_buffer()).await.map_err(|error| {
        format!(
            "reading {} failed: {}",
            file.name(),
            super::js_error_text(&error)
        )
    })?;
    Ok(Some((
        js_sys::Uint8Array::new(&buffer).to_vec(),
        file.name(),
    )))
}

/// Megabytes with one decimal, or a dash for a figure the browser does not report.
fn megabytes(bytes: Option<f64>) -> String {
    bytes.map_or_else(|| "–".into(), |bytes| format!("{:.1}", bytes / 1e6))
}

fn format_progress(progress: &Progress) -> String {
    if progress.total == 0 {
        return format!("{}…", progress.label);
    }
    let percent = 100.0 * progress.loaded as f64 / progress.total as f64;
    format!(
        "{}: {:.1} of {:.1} MB ({percent:.0}%)",
        progress.label,
        progress.loaded as f64 / 1e6,
        progress.total as f64 / 1e6
    )
}

/// A whole-number setting edited through a number input.
struct WholeField {
    label: &'static str,
    min: usize,
    max: usize,
    get: fn(&RunSettings) -> usize,
    set: fn(&mut RunSettings, usize),
}

/// A number input bound to `field`. An invalid entry is reverted with a notice.
fn whole_input(
    field: WholeField,
    settings: RwSignal<RunSettings>,
    notices: RwSignal<Vec<Notice>>,
    disabled: Signal<bool>,
) -> impl IntoView {
    let WholeField {
        label,
        min,
        max,
        get,
        set,
    } = field;
    view! {
        <label>
            {label}
            <input
                type="number"
                min=min
                max=max
                step="1"
                disabled=disabled
                prop:value=move || get(&settings.get()).to_string()
                on:change=move |event| {
                    let text = event_target_value(&event);
                    match text.trim().parse::<usize>() {
                        Ok(value) if (min..=max).contains(&value) => {
                            settings.update(|settings| set(settings, value))
                        }
                        _ => {
                            notices.update(|list| list.push(Notice {
                                parameter: label.to_lowercase(),
                                message: format!("`{text}` is not a whole number from {min} to {max}; kept the previous value"),
                            }));
                            settings.update(|_| {});
                        }
                    }
                }
            />
        </label>
    }
}

#[component]
pub fn App() -> impl IntoView {
    let query = window().location().search().unwrap_or_default();
    let (initial, parsed_notices) = RunSettings::from_query(&query);
    let settings = RwSignal::new(initial.clone());
    let notices = RwSignal::new(parsed_notices);
    let ui = Ui::new();
    let running = Signal::derive(move || ui.running.get());

    let start = move || {
        if ui.running.get_untracked() {
            return;
        }
        let run = settings.get_untracked();
        show_in_address_bar(&run);
        spawn_local(session::run(run, ui));
    };
    let show_pretrained = move || {
        if !ui.running.get_untracked() {
            spawn_local(current::show_pretrained(settings.get_untracked(), ui));
        }
    };
    if initial.autostart {
        request_animation_frame(start);
    } else {
        // Downloads start at once; the page paints while they run.
        show_pretrained();
    }
    let saved_bytes = StoredValue::new_local(None::<storage::Saved>);
    spawn_local(async move {
        match storage::load().await {
            Ok(Some(saved)) => match crate::weights::read_info(&saved.weights) {
                Ok((preset, info)) => {
                    let epochs = info.training.epochs;
                    ui.saved.set(Some(format!(
                        "{preset} on {}, {epochs} epoch{}, test PSNR {}",
                        info.dataset.title(),
                        if epochs == 1 { "" } else { "s" },
                        info.metrics
                            .map(|m| format!("{:.2} dB", m.psnr))
                            .unwrap_or_else(|| "not measured".into())
                    )));
                    saved_bytes.set_value(Some(saved));
                }
                Err(error) => log::warn!("the model saved in this browser is unreadable: {error}"),
            },
            Ok(None) => {}
            Err(message) => log::warn!("reading the model saved in this browser failed: {message}"),
        }
    });
    let resume = move |_| {
        let Some(saved) = saved_bytes.get_value() else {
            return;
        };
        ui.saved.set(None);
        let (resumed, _) = RunSettings::from_query(&saved.query);
        settings.set(RunSettings {
            fine_tune: true,
            ..resumed.clone()
        });
        spawn_local(async move {
            ui.running.set(true);
            let result = current::import(
                saved.weights,
                "the model saved in this browser",
                resumed,
                ui,
            )
            .await;
            if let Err(message) = result {
                ui.model_error.set(Some(message));
            }
            ui.running.set(false);
        });
    };
    let discard = move |_| {
        ui.saved.set(None);
        saved_bytes.set_value(None);
        spawn_local(async move {
            if let Err(message) = storage::clear().await {
                log::warn!("forgetting the saved model failed: {message}");
            }
        });
    };
    let export = move |_| {
        ui.model_error.set(None);
        spawn_local(async move {
            let result = match current::export().await {
                Ok((bytes, name)) => download(&bytes, &name),
                Err(message) => Err(message),
            };
            if let Err(message) = result {
                ui.model_error.set(Some(message));
            }
        });
    };
    let import = move |event: leptos::ev::Event| {
        ui.model_error.set(None);
        let Some(input) = event
            .target()
            .and_then(|target| target.dyn_into::<HtmlInputElement>().ok())
        else {
            return;
        };
        spawn_local(async move {
            ui.running.set(true);
            let result = match picked_file(&input).await {
                Ok(Some((bytes, name))) => {
                    current::import(bytes, &name, settings.get_untracked(), ui).await
                }
                Ok(None) => Err("no file was picked".into()),
                Err(message) => Err(message),
            };
            match result {
                Ok(dataset) => settings.update(|settings| settings.dataset = dataset),
                Err(message) => {
                    log::warn!("import failed: {message}");
                    ui.model_error.set(Some(message));
                }
            }
            input.set_value("");
            ui.running.set(false);
        });
    };

    let chart_ref = NodeRef::<Canvas>::new();
    let wall_ref = NodeRef::<Canvas>::new();
    let bar_ref = NodeRef::<Canvas>::new();

    Effect::new(move |_| {
        let curve = ui.train_curve.get();
        let test: Vec<f64> = ui.test_metrics.get().iter().map(|m| m.bce).collect();
        let epochs = ui.epoch.get().1.max(settings.get_untracked().epochs);
        if let Some(canvas) = chart_ref.get()
            && let Err(error) = chart::draw(canvas, &curve, &test, epochs)
        {
            log::warn!("drawing the loss chart failed: {error}");
        }
    });
    Effect::new(move |_| {
        let images = ui.wall.get();
        if let (Some(images), Some(canvas)) = (images, wall_ref.get())
            && let Err(error) = paint(
                &canvas,
                &wall::render(&images.originals, &images.recreations),
            )
        {
            log::warn!("painting the wall failed: {error}");
        }
    });
    Effect::new(move |_| {
        if let Some(canvas) = bar_ref.get()
            && let Err(error) = paint(&canvas, &wall::colour_bar(200, 1))
        {
            log::warn!("painting the colour bar failed: {error}");
        }
    });

    let test_history = move || {
        ui.test_metrics
            .get()
            .iter()
            .map(|metrics| format!("{:.6}", metrics.bce))
            .collect::<Vec<_>>()
            .join(",")
    };
    let epoch_stats_json = move || serde_json::to_string(&ui.epoch_stats.get()).unwrap_or_default();
    let share_link = move || {
        let location = window().location();
        let base = format!(
            "{}{}",
            location.origin().unwrap_or_default(),
            location.pathname().unwrap_or_default()
        );
        format!("{base}?{}", settings.get().to_query())
    };

    view! {
        <header>
            <h1>"Autoencoder Lab"</h1>
            <p class="lede">
                "Train a convolutional autoencoder on MNIST or Fashion-MNIST in this tab, on your GPU through WebGPU, and watch it learn to recreate the test images."
            </p>
        </header>
        <main>
            <section class="panel controls" aria-label="Run settings">
                <label>
                    "Dataset"
                    <select
                        disabled=running
                        prop:value=move || settings.get().dataset.slug()
                        on:change=move |event| {
                            if let Ok(dataset) = event_target_value(&event).parse::<Dataset>() {
                                settings.update(|settings| settings.dataset = dataset);
                                show_pretrained();
                            }
                        }
                    >
                        {Dataset::ALL
                            .into_iter()
                            .map(|dataset| view! { <option value=dataset.slug()>{dataset.title()}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    "Preset"
                    <select
                        disabled=running
                        prop:value=move || settings.get().preset.slug()
                        on:change=move |event| {
                            if let Ok(preset) = event_target_value(&event).parse::<Preset>() {
                                settings.update(|settings| {
                                    settings.preset = preset;
                                    settings.learning_rate = default_learning_rate(preset);
                                });
                            }
                        }
                    >
                        {Preset::ALL
                            .into_iter()
                            .map(|preset| view! { <option value=preset.slug()>{preset.slug()}</option> })
                            .collect_view()}
                    </select>
                </label>
                {whole_input(
                    WholeField {
                        label: "Epochs",
                        min: 1,
                        max: MAX_EPOCHS,
                        get: |s| s.epochs,
                        set: |s, value| s.epochs = value,
                    },
                    settings,
                    notices,
                    running,
                )}
                {whole_input(
                    WholeField {
                        label: "Batch",
                        min: 2,
                        max: MAX_BATCH,
                        get: |s| s.batch_size,
                        set: |s, value| s.batch_size = value,
                    },
                    settings,
                    notices,
                    running,
                )}
                <label>
                    "Learning rate"
                    <input
                        type="text"
                        inputmode="decimal"
                        disabled=running
                        prop:value=move || settings.get().learning_rate.to_string()
                        on:change=move |event| {
                            let text = event_target_value(&event);
                            match text.trim().parse::<f64>() {
                                Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1.0 => {
                                    settings.update(|settings| settings.learning_rate = rate)
                                }
                                _ => {
                                    notices.update(|list| list.push(Notice {
                                        parameter: "learning rate".into(),
                                        message: format!("`{text}` is not a number above 0 and at most 1; kept the previous value"),
                                    }));
                                    settings.update(|_| {});
                                }
                            }
                        }
                    />
                </label>
                <div class="buttons">
                    <button class="primary" disabled=running on:click=move |_| start()>"Train"</button>
                    <button disabled=move || !ui.running.get() on:click=move |_| ui.stop_requested.set(true)>
                        "Stop"
                    </button>
                </div>
                <label class="check">
                    <input
                        type="checkbox"
                        disabled=running
                        prop:checked=move || settings.get().fine_tune
                        on:change=move |event| {
                            let checked = event_target_checked(&event);
                            settings.update(|settings| settings.fine_tune = checked);
                        }
                    />
                    "Fine-tune the current model instead of starting from random weights"
                </label>
                <p class="hint">{move || settings.get().preset.summary()}</p>
                <label class="share">
                    "Link to this run"
                    <input type="text" readonly prop:value=share_link />
                </label>
            </section>

            <Show when=move || ui.saved.get().is_some()>
                <section class="panel notices" data-testid="resume" role="status">
                    <p>
                        "A model trained earlier is saved in this browser: "
                        {move || ui.saved.get().unwrap_or_default()}
                    </p>
                    <div class="buttons">
                        <button class="primary" disabled=running on:click=resume>"Resume it"</button>
                        <button on:click=discard>"Discard it"</button>
                    </div>
                </section>
            </Show>

            <Show when=move || !notices.get().is_empty()>
                <section class="panel notices" role="status">
                    <ul>
                        {move || notices
                            .get()
                            .iter()
                            .map(|notice| view! { <li>{notice.to_string()}</li> })
                            .collect_view()}
                    </ul>
                </section>
            </Show>

            <div class="side">
                <section class="panel model" aria-label="Current model">
                    <h2>"Model"</h2>
                    <p data-testid="model">{move || ui.model_label.get()}</p>
                    <div class="buttons">
                        <button data-testid="export" disabled=running on:click=export>"Export weights"</button>
                        <label class="file-button">
                            "Import weights"
                            <input
                                type="file"
                                accept=".aelab"
                                data-testid="import"
                                disabled=running
                                on:change=import
                            />
                        </label>
                    </div>
                    <Show when=move || ui.model_error.get().is_some()>
                        <p class="error" role="alert" data-testid="model-error">
                            {move || ui.model_error.get().unwrap_or_default()}
                        </p>
                    </Show>
                </section>

                <section class="panel status" aria-live="polite">
                    <dl>
                        <dt>"Status"</dt>
                        <dd data-testid="status">{move || ui.status.get().to_string()}</dd>
                        <dt>"Backend"</dt>
                        <dd data-testid="backend">{move || ui.backend.get()}</dd>
                        <dt>"Epoch"</dt>
                        <dd data-testid="epoch">
                            {move || { let (epoch, total) = ui.epoch.get(); format!("{epoch} / {total}") }}
                        </dd>
                        <dt>"Train loss"</dt>
                        <dd data-testid="train-loss">
                            {move || ui.train_loss.get().map(|loss| format!("{loss:.5}")).unwrap_or_else(|| "–".into())}
                        </dd>
                        <dt>"Test loss"</dt>
                        <dd data-testid="test-loss">
                            {move || ui.test_metrics.get().last().map(|m| format!("{:.5}", m.bce)).unwrap_or_else(|| "–".into())}
                        </dd>
                        <dt>"Throughput"</dt>
                        <dd data-testid="throughput">
                            {move || ui.throughput.get().map(|rate| format!("{rate:.0} images/s")).unwrap_or_else(|| "–".into())}
                        </dd>
                        <dt>"Elapsed"</dt>
                        <dd data-testid="elapsed">{move || format!("{:.1} s", ui.elapsed.get())}</dd>
                    </dl>
                    <span class="hidden" data-testid="test-loss-history">{test_history}</span>
                    <span class="hidden" data-testid="epoch-stats">{epoch_stats_json}</span>
                    <Show when=move || ui.progress.get().is_some()>
                        <div class="progress">
                            <progress
                                max=move || ui.progress.get().map(|p| p.total.max(1)).unwrap_or(1)
                                value=move || ui.progress.get().map(|p| p.loaded).unwrap_or(0)
                            ></progress>
                            <span>{move || ui.progress.get().map(|p| format_progress(&p)).unwrap_or_default()}</span>
                        </div>
                    </Show>
                </section>

            </div>

            <section class="panel figure chart-panel">
                <h2>"Loss"</h2>
                <canvas data-testid="loss-chart" node_ref=chart_ref width="720" height="360"></canvas>
            </section>

            <section class="panel figure wall-panel">
                <h2>"Test images, recreations and residuals"</h2>
                <div class="wall-grid">
                    <div class="wall-labels" aria-hidden="true">
                        <span>"original"</span>
                        <span>"recreation"</span>
                        <span>"residual"</span>
                    </div>
                    <canvas
                        class="wall"
                        data-testid="wall"
                        node_ref=wall_ref
                        width="298"
                        height="88"
                        role="img"
                        aria-label="Ten test images in the top row, their recreations below, and the residuals at the bottom"
                    ></canvas>
                </div>
                <div class="colour-bar">
                    <canvas node_ref=bar_ref width="200" height="1"></canvas>
                    <div class="colour-bar-labels">
                        <span>"−1"</span>
                        <span>"0"</span>
                        <span>"+1"</span>
                    </div>
                </div>
                <p class="hint">
                    "Residual = original − recreation: red where the recreation lacks ink, blue where it adds ink."
                </p>
            </section>

            <DrawPanel ui=ui />

            <section class="panel metrics">
                <h2>"Test metrics, speed and memory per epoch"</h2>
                <table data-testid="metrics">
                    <thead>
                        <tr><th>"epoch"</th><th>"BCE"</th><th>"MSE"</th><th>"PSNR (dB)"</th><th>"SSIM"</th><th>"images/s"</th><th>"wasm MB"</th><th>"JS heap MB"</th><th>"GPU MB"</th></tr>
                    </thead>
                    <tbody>
                        {move || {
                            let stats = ui.epoch_stats.get();
                            ui.test_metrics
                                .get()
                                .iter()
                                .enumerate()
                                .map(|(epoch, m)| {
                                    let epoch_stats = epoch.checked_sub(1).and_then(|i| stats.get(i).copied());
                                    let speed = epoch_stats.map(|s| format!("{:.0}", s.images_per_second));
                                    let wasm = epoch_stats.map(|s| megabytes(Some(s.wasm_bytes)));
                                    let heap = epoch_stats.map(|s| megabytes(s.js_heap_bytes));
                                    let gpu = epoch_stats.map(|s| megabytes(s.gpu_bytes));
                                    let dash = || "–".to_string();
                                    view! {
                                        <tr>
                                            <td>{epoch}</td>
                                            <td>{format!("{:.5}", m.bce)}</td>
                                            <td>{format!("{:.5}", m.mse)}</td>
                                            <td>{format!("{:.2}", m.psnr)}</td>
                                            <td>{format!("{:.4}", m.ssim)}</td>
                                            <td>{speed.unwrap_or_else(dash)}</td>
                                            <td>{wasm.unwrap_or_else(dash)}</td>
                                            <td>{heap.unwrap_or_else(dash)}</td>
                                            <td>{gpu.unwrap_or_else(dash)}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()
                        }}
                    </tbody>
                </table>
            </section>
        </main>
    }
}
