//! The drawing pad: strokes by mouse, touch or pen (or an uploaded picture), the 28x28
//! input of the model, its recreation and the residual, updated while drawing.

use std::cell::Cell;
use std::rc::Rc;

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use leptos::ev::PointerEvent;
use leptos::html::Canvas;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlInputElement, ImageBitmap};

use super::current;
use super::js_error_text;
use super::ui::Ui;
use crate::data::{IMAGE_PIXELS, IMAGE_SIDE};
use crate::draw::{GreyImage, to_model_input};
use crate::train::read_floats;
use crate::wall::{Rgba, diverging_rgb};

/// Side of the pad's drawing surface, in canvas pixels.
const PAD_SIDE: u32 = 280;
/// Pen width in canvas pixels: about 2 of the 28 pixels of the model input.
const PEN_WIDTH: f64 = 20.0;

fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

fn clear(canvas: &HtmlCanvasElement) {
    if let Some(context) = context(canvas) {
        context.set_fill_style_str("#000");
        context.fill_rect(0.0, 0.0, f64::from(PAD_SIDE), f64::from(PAD_SIDE));
    }
}

/// Point of `event` in canvas pixels, whatever size the canvas is shown at.
fn point(canvas: &HtmlCanvasElement, event: &PointerEvent) -> (f64, f64) {
    let scale = f64::from(canvas.width()) / f64::from(canvas.client_width().max(1));
    (
        f64::from(event.offset_x()) * scale,
        f64::from(event.offset_y()) * scale,
    )
}

fn pad_image(canvas: &HtmlCanvasElement) -> Option<GreyImage> {
    let context = context(canvas)?;
    let side = f64::from(PAD_SIDE);
    let data = context.get_image_data(0.0, 0.0, side, side).ok()?;
    Some(GreyImage::from_rgba(
        &data.data(),
        PAD_SIDE as usize,
        PAD_SIDE as usize,
    ))
}

fn grey_tiles(values: &[f32]) -> Rgba {
    let mut pixels = Vec::with_capacity(IMAGE_PIXELS * 4);
    for &value in values {
        let level = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
        pixels.extend_from_slice(&[level, level, level, 255]);
    }
    Rgba {
        width: IMAGE_SIDE,
        height: IMAGE_SIDE,
        pixels,
    }
}

fn residual_tiles(input: &[f32], recreation: &[f32]) -> Rgba {
    let mut pixels = Vec::with_capacity(IMAGE_PIXELS * 4);
    for (&original, &recreated) in input.iter().zip(recreation) {
        let [r, g, b] = diverging_rgb(original - recreated);
        pixels.extend_from_slice(&[r, g, b, 255]);
    }
    Rgba {
        width: IMAGE_SIDE,
        height: IMAGE_SIDE,
        pixels,
    }
}

/// Recreation of one 28x28 input by the current model, pixels in [0, 1].
async fn recreate(input: &[f32], ui: Ui) -> Result<Vec<f32>, String> {
    if super::backend::gpu_lost().is_some() {
        current::move_to_cpu(ui)?;
    }
    let current =
        current::get().ok_or("there is no model yet; wait for the pretrained one or train")?;
    let images = Tensor::<4>::from_data(
        TensorData::new(input.to_vec(), [1, 1, IMAGE_SIDE, IMAGE_SIDE]),
        &current.device,
    );
    read_floats(sigmoid(current.model.forward(images))).await
}

/// Decodes an image file with the browser and returns its pixels, at most 560 pixels
/// on the longer side.
async fn decode_picture(file: &web_sys::File) -> Result<GreyImage, String> {
    let not_image = |_| {
        format!(
            "{} is not an image the browser can read (PNG or JPEG)",
            file.name()
        )
    };
    let promise = window()
        .create_image_bitmap_with_blob(file)
        .map_err(not_image)?;
    let bitmap: ImageBitmap = JsFuture::from(promise)
        .await
        .map_err(not_image)?
        .dyn_into()
        .map_err(|_| format!("{} did not decode to a bitmap", file.name()))?;
    let longest = bitmap.width().max(bitmap.height()).max(1);
    let scale = (560.0 / f64::from(longest)).min(1.0);
    let width = ((f64::from(bitmap.width()) * scale).round() as u32).max(1);
    let height = ((f64::from(bitmap.height()) * scale).round() as u32).max(1);

    let failed =
        |error: JsValue| format!("reading {} failed: {}", file.name(), js_error_text(&error));
    let canvas: HtmlCanvasElement = document()
        .create_element("canvas")
        .map_err(failed)?
        .dyn_into()
        .map_err(|_| "no canvas element".to_string())?;
    canvas.set_width(width);
    canvas.set_height(height);
    let context = context(&canvas).ok_or("the canvas has no 2D context")?;
    context
        .draw_image_with_image_bitmap_and_dw_and_dh(
            &bitmap,
            0.0,
            0.0,
            f64::from(width),
            f64::from(height),
        )
        .map_err(failed)?;
    let data = context
        .get_image_data(0.0, 0.0, f64::from(width), f64::from(height))
        .map_err(failed)?;
    Ok(GreyImage::from_rgba(&data.data(), width as usize, height as usize).with_dark_background())
}

/// The drawing pad with its tiles. `ui.model_version` changes when the current model
/// does, so the tiles show the new model's recreation.
#[component]
pub fn DrawPanel(ui: Ui) -> impl IntoView {
    let model_version = ui.model_version;
    let pad = NodeRef::<Canvas>::new();
    let input_canvas = NodeRef::<Canvas>::new();
    let recreation_canvas = NodeRef::<Canvas>::new();
    let residual_canvas = NodeRef::<Canvas>::new();
    let message = RwSignal::new(None::<String>);
    let last_point = StoredValue::new_local(None::<(f64, f64)>);
    let picture = StoredValue::new_local(None::<GreyImage>);
    let busy = Rc::new(Cell::new(false));
    let pending = Rc::new(Cell::new(false));

    let paint_tiles = move |canvas: NodeRef<Canvas>, tiles: &Rgba| {
        if let Some(canvas) = canvas.get()
            && let Err(error) = super::app::paint(&canvas, tiles)
        {
            log::warn!("painting a drawing tile failed: {error}");
        }
    };

    // Marks the drawing as changed and, unless a recreation is running, starts one that
    // keeps going until it has shown the latest drawing.
    let refresh: Rc<dyn Fn()> = {
        let busy = busy.clone();
        let pending = pending.clone();
        Rc::new(move || {
            pending.set(true);
            if busy.replace(true) {
                return;
            }
            let busy = busy.clone();
            let pending = pending.clone();
            spawn_local(async move {
                while pending.replace(false) {
                    let image = match picture.get_value() {
                        Some(image) => Some(image),
                        None => pad.get().and_then(|canvas| pad_image(&canvas)),
                    };
                    let Some(input) = image.as_ref().and_then(to_model_input) else {
                        for canvas in [input_canvas, recreation_canvas, residual_canvas] {
                            paint_tiles(canvas, &grey_tiles(&[0.0; IMAGE_PIXELS]));
                        }
                        continue;
                    };
                    paint_tiles(input_canvas, &grey_tiles(&input));
                    match recreate(&input, ui).await {
                        Ok(recreation) => {
                            message.set(None);
                            paint_tiles(recreation_canvas, &grey_tiles(&recreation));
                            paint_tiles(residual_canvas, &residual_tiles(&input, &recreation));
                        }
                        Err(error) => message.set(Some(error)),
                    }
                }
                busy.set(false);
            });
        })
    };

    Effect::new(move |_| {
        if let Some(canvas) = pad.get() {
            clear(&canvas);
        }
    });
    {
        let refresh = refresh.clone();
        Effect::new(move |_| {
            model_version.track();
            refresh();
        });
    }

    let on_down = {
        let refresh = refresh.clone();
        move |event: PointerEvent| {
            let Some(canvas) = pad.get() else { return };
            event.prevent_default();
            let _ = canvas.set_pointer_capture(event.pointer_id());
            picture.set_value(None);
            let (x, y) = point(&canvas, &event);
            if let Some(context) = context(&canvas) {
                context.set_fill_style_str("#fff");
                context.begin_path();
                let _ = context.arc(x, y, PEN_WIDTH / 2.0, 0.0, std::f64::consts::TAU);
                context.fill();
            }
            last_point.set_value(Some((x, y)));
            refresh();
        }
    };
    let on_move = {
        let refresh = refresh.clone();
        move |event: PointerEvent| {
            let (Some(canvas), Some((from_x, from_y))) = (pad.get(), last_point.get_value()) else {
                return;
            };
            let (x, y) = point(&canvas, &event);
            if let Some(context) = context(&canvas) {
                context.set_stroke_style_str("#fff");
                context.set_line_width(PEN_WIDTH);
                context.set_line_cap("round");
                context.begin_path();
                context.move_to(from_x, from_y);
                context.line_to(x, y);
                context.stroke();
            }
            last_point.set_value(Some((x, y)));
            refresh();
        }
    };
    let on_up = {
        let refresh = refresh.clone();
        move |_: PointerEvent| {
            if last_point.get_value().is_some() {
                last_point.set_value(None);
                refresh();
            }
        }
    };
    let on_clear = {
        let refresh = refresh.clone();
        move |_| {
            picture.set_value(None);
            if let Some(canvas) = pad.get() {
                clear(&canvas);
            }
            refresh();
        }
    };
    let on_upload = {
        let refresh = refresh.clone();
        move |event: leptos::ev::Event| {
            let Some(input) = event
                .target()
                .and_then(|target| target.dyn_into::<HtmlInputElement>().ok())
            else {
                return;
            };
            let Some(file) = input.files().and_then(|files| files.get(0)) else {
                return;
            };
            let refresh = refresh.clone();
            spawn_local(async move {
                match decode_picture(&file).await {
                    Ok(image) if to_model_input(&image).is_some() => {
                        message.set(None);
                        picture.set_value(Some(image));
                        if let Some(canvas) = pad.get() {
                            clear(&canvas);
                        }
                        refresh();
                    }
                    Ok(_) => message.set(Some(format!("{} has no visible ink", file.name()))),
                    Err(error) => message.set(Some(error)),
                }
                input.set_value("");
            });
        }
    };

    view! {
        <section class="panel draw-panel">
            <h2>"Draw to recreate"</h2>
            <div class="draw-layout">
                <canvas
                    class="draw-pad"
                    data-testid="draw-pad"
                    node_ref=pad
                    width=PAD_SIDE
                    height=PAD_SIDE
                    aria-label="Drawing pad: draw a digit or a piece of clothing"
                    on:pointerdown=on_down
                    on:pointermove=on_move
                    on:pointerup=on_up.clone()
                    on:pointercancel=on_up
                ></canvas>
                <div class="draw-results">
                    <figure>
                        <canvas class="tile" data-testid="draw-input" node_ref=input_canvas width="28" height="28"></canvas>
                        <figcaption>"model input"</figcaption>
                    </figure>
                    <figure>
                        <canvas class="tile" data-testid="draw-recreation" node_ref=recreation_canvas width="28" height="28"></canvas>
                        <figcaption>"recreation"</figcaption>
                    </figure>
                    <figure>
                        <canvas class="tile" data-testid="draw-residual" node_ref=residual_canvas width="28" height="28"></canvas>
                        <figcaption>"residual"</figcaption>
                    </figure>
                </div>
            </div>
            <div class="buttons">
                <button on:click=on_clear>"Clear"</button>
                <label class="file-button">
                    "Upload a picture"
                    <input type="file" accept="image/png,image/jpeg" data-testid="draw-upload" on:change=on_upload />
                </label>
            </div>
            <Show when=move || message.get().is_some()>
                <p class="error" role="alert" data-testid="draw-error">{move || message.get().unwrap_or_default()}</p>
            </Show>
        </section>
    }
}
