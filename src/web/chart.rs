//! The loss chart: smoothed training loss per step and test loss per epoch, drawn with
//! plotters onto a canvas.

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use web_sys::HtmlCanvasElement;

const TRAIN_COLOUR: RGBColor = RGBColor(33, 102, 172);
const TEST_COLOUR: RGBColor = RGBColor(178, 24, 43);

/// Draws the chart from `train`, pairs of (fractional epoch, loss), and `test`, the loss after
/// each epoch, epoch 0 first.
pub fn draw(
    canvas: HtmlCanvasElement,
    train: &[(f64, f64)],
    test: &[f64],
    epochs: usize,
) -> Result<(), String> {
    let backend =
        CanvasBackend::with_canvas_object(canvas).ok_or("the chart canvas has no 2D context")?;
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|error| error.to_string())?;

    let values = train
        .iter()
        .map(|&(_, loss)| loss)
        .chain(test.iter().copied());
    let (low, high) = values
        .filter(|value| value.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
            (low.min(value), high.max(value))
        });
    let (low, high) = if low.is_finite() && high > low {
        let pad = (high - low) * 0.08;
        ((low - pad).max(0.0), high + pad)
    } else if low.is_finite() {
        ((low - 0.05).max(0.0), low + 0.05)
    } else {
        (0.0, 0.7)
    };

    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..epochs.max(1) as f64, low..high)
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("BCE per pixel")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .x_labels(epochs.clamp(2, 11))
        .y_label_formatter(&|value| format!("{value:.3}"))
        .draw()
        .map_err(|error| error.to_string())?;

    chart
        .draw_series(LineSeries::new(
            train.iter().copied(),
            TRAIN_COLOUR.stroke_width(2),
        ))
        .map_err(|error| error.to_string())?
        .label("train (smoothed)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], TRAIN_COLOUR.stroke_width(2)));

    let test_points: Vec<(f64, f64)> = test
        .iter()
        .enumerate()
        .map(|(epoch, &loss)| (epoch as f64, loss))
        .collect();
    chart
        .draw_series(LineSeries::new(
            test_points.iter().copied(),
            TEST_COLOUR.stroke_width(2),
        ))
        .map_err(|error| error.to_string())?
        .label("test")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], TEST_COLOUR.stroke_width(2)));
    chart
        .draw_series(
            test_points
                .iter()
                .map(|&point| Circle::new(point, 4, TEST_COLOUR.filled())),
        )
        .map_err(|error| error.to_string())?;

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|error| error.to_string())?;
    root.present().map_err(|error| error.to_string())
}
