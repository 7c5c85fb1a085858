//! Turns a drawing or an uploaded picture into the 28x28 input the model expects,
//! the way the MNIST digits were prepared: the ink's bounding box is scaled to fit
//! 20x20 with its aspect ratio kept and grey anti-aliased edges, then placed in a
//! 28x28 frame so that its centre of mass sits at the centre. Ink is bright on black,
//! values in [0, 1].

use crate::data::{IMAGE_PIXELS, IMAGE_SIDE};

/// Side of the box the ink is scaled into.
const INK_BOX: usize = 20;
/// Grey level below which a pixel counts as background when finding the ink.
const INK_THRESHOLD: f32 = 0.1;

/// A greyscale image with values in [0, 1], row by row.
#[derive(Clone, Debug, PartialEq)]
pub struct GreyImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

impl GreyImage {
    /// Converts RGBA bytes to grey (Rec. 601 luma), compositing transparent pixels over
    /// white as a browser shows them.
    pub fn from_rgba(rgba: &[u8], width: usize, height: usize) -> Self {
        assert_eq!(
            rgba.len(),
            width * height * 4,
            "RGBA buffer does not match its size"
        );
        let pixels = rgba
            .chunks_exact(4)
            .map(|pixel| {
                let luma = 0.299 * f32::from(pixel[0])
                    + 0.587 * f32::from(pixel[1])
                    + 0.114 * f32::from(pixel[2]);
                let alpha = f32::from(pixel[3]) / 255.0;
                (luma * alpha + 255.0 * (1.0 - alpha)) / 255.0
            })
            .collect();
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Inverts the image when its border is mostly light, so that dark ink on white
    /// paper becomes bright ink on black like the datasets.
    pub fn with_dark_background(mut self) -> Self {
        let (width, height) = (self.width, self.height);
        let border: Vec<f32> = (0..width)
            .flat_map(|x| [x, (height - 1) * width + x])
            .chain((0..height).flat_map(|y| [y * width, y * width + width - 1]))
            .map(|index| self.pixels[index])
            .collect();
        let mean = border.iter().sum::<f32>() / border.len().max(1) as f32;
        if mean > 0.5 {
            self.pixels
                .iter_mut()
                .for_each(|pixel| *pixel = 1.0 - *pixel);
        }
        self
    }
}

/// Resamples `source` to `width` x `height` by averaging the source area each target
/// pixel covers, which keeps thin strokes as grey edges instead of dropping them.
fn resample_area(source: &GreyImage, width: usize, height: usize) -> GreyImage {
    let scale_x = source.width as f64 / width as f64;
    let scale_y = source.height as f64 / height as f64;
    let mut pixels = vec![0.0f32; width * height];
    for ty in 0..height {
        let (y0, y1) = (ty as f64 * scale_y, (ty + 1) as f64 * scale_y);
        for tx in 0..width {
            let (x0, x1) = (tx as f64 * scale_x, (tx + 1) as f64 * scale_x);
            let mut sum = 0.0;
            let mut area = 0.0;
            for sy in y0.floor() as usize..(y1.ceil() as usize).min(source.height) {
                let cover_y = (y1.min(sy as f64 + 1.0) - y0.max(sy as f64)).max(0.0);
                for sx in x0.floor() as usize..(x1.ceil() as usize).min(source.width) {
                    let cover_x = (x1.min(sx as f64 + 1.0) - x0.max(sx as f64)).max(0.0);
                    let weight = cover_x * cover_y;
                    sum += weight * f64::from(source.pixels[sy * source.width + sx]);
                    area += weight;
                }
            }
            pixels[ty * width + tx] = if area > 0.0 { (sum / area) as f32 } else { 0.0 };
        }
    }
    GreyImage {
        width,
        height,
        pixels,
    }
}

/// Prepares `image` (bright ink on dark) as a 28x28 model input, or returns `None`
/// when it has no ink.
pub fn to_model_input(image: &GreyImage) -> Option<Vec<f32>> {
    let ink = |x: usize, y: usize| image.pixels[y * image.width + x] > INK_THRESHOLD;
    let xs: Vec<usize> = (0..image.width)
        .filter(|&x| (0..image.height).any(|y| ink(x, y)))
        .collect();
    let ys: Vec<usize> = (0..image.height)
        .filter(|&y| (0..image.width).any(|x| ink(x, y)))
        .collect();
    let (left, right) = (*xs.first()?, *xs.last()?);
    let (top, bottom) = (*ys.first()?, *ys.last()?);

    let (box_width, box_height) = (right - left + 1, bottom - top + 1);
    let mut cropped = Vec::with_capacity(box_width * box_height);
    for y in top..=bottom {
        cropped.extend_from_slice(&image.pixels[y * image.width + left..=y * image.width + right]);
    }
    let cropped = GreyImage {
        width: box_width,
        height: box_height,
        pixels: cropped,
    };

    let longest = box_width.max(box_height) as f64;
    let fit =
        |side: usize| ((side as f64 * INK_BOX as f64 / longest).round() as usize).clamp(1, INK_BOX);
    let scaled = resample_area(&cropped, fit(box_width), fit(box_height));

    let mass: f64 = scaled.pixels.iter().map(|&p| f64::from(p)).sum();
    let (mut centre_x, mut centre_y) = (0.0, 0.0);
    for (index, &value) in scaled.pixels.iter().enumerate() {
        centre_x += f64::from(value) * ((index % scaled.width) as f64 + 0.5);
        centre_y += f64::from(value) * ((index / scaled.width) as f64 + 0.5);
    }
    let half = IMAGE_SIDE as f64 / 2.0;
    let offset = |centre: f64, side: usize| {
        let target = (half - centre / mass).round() as i64;
        target.clamp(0, (IMAGE_SIDE - side) as i64) as usize
    };
    let (offset_x, offset_y) = (
        offset(centre_x, scaled.width),
        offset(centre_y, scaled.height),
    );

    let mut input = vec![0.0f32; IMAGE_PIXELS];
    for y in 0..scaled.height {
        for x in 0..scaled.width {
            let value = scaled.pixels[y * scaled.width + x].clamp(0.0, 1.0);
            input[(y + offset_y) * IMAGE_SIDE + x + offset_x] = value;
        }
    }
    Some(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a 280x280 canvas with a thick diagonal stroke in its upper-left part.
    fn stroke() -> GreyImage {
        let side = 280;
        let mut pixels = vec![0.0; side * side];
        for step in 0..120 {
            let (cx, cy) = (30 + step, 20 + step * 2 / 3);
            for dy in 0..12 {
                for dx in 0..12 {
                    pixels[(cy + dy) * side + cx + dx] = 1.0;
                }
            }
        }
        GreyImage {
            width: side,
            height: side,
            pixels,
        }
    }

    fn ink_box(input: &[f32]) -> (usize, usize) {
        let ink = |x: usize, y: usize| input[y * IMAGE_SIDE + x] > 0.0;
        let xs: Vec<usize> = (0..IMAGE_SIDE)
            .filter(|&x| (0..IMAGE_SIDE).any(|y| ink(x, y)))
            .collect();
        let ys: Vec<usize> = (0..IMAGE_SIDE)
            .filter(|&y| (0..IMAGE_SIDE).any(|x| ink(x, y)))
            .collect();
        (
            xs.last().unwrap() - xs[0] + 1,
            ys.last().unwrap() - ys[0] + 1,
        )
    }

    fn centre_of_mass(input: &[f32]) -> (f64, f64) {
        let mass: f64 = input.iter().map(|&p| f64::from(p)).sum();
        let (mut x, mut y) = (0.0, 0.0);
        for (index, &value) in input.iter().enumerate() {
            x += f64::from(value) * ((index % IMAGE_SIDE) as f64 + 0.5);
            y += f64::from(value) * ((index / IMAGE_SIDE) as f64 + 0.5);
        }
        (x / mass, y / mass)
    }

    #[test]
    fn stroke_fits_twenty_pixels() {
        let input = to_model_input(&stroke()).unwrap();
        let (width, height) = ink_box(&input);
        assert!(width <= 20, "width {width}");
        assert!(height <= 20, "height {height}");
        assert_eq!(width.max(height), 20, "the longer side fills the box");
    }

    #[test]
    fn stroke_centred_by_mass() {
        let input = to_model_input(&stroke()).unwrap();
        let (x, y) = centre_of_mass(&input);
        assert!((x - 14.0).abs() <= 0.5, "centre x {x}");
        assert!((y - 14.0).abs() <= 0.5, "centre y {y}");
    }

    #[test]
    fn edges_are_grey() {
        let input = to_model_input(&stroke()).unwrap();
        assert!(input.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert!(
            input.iter().any(|&p| p > 0.05 && p < 0.95),
            "no anti-aliased edge"
        );
    }

    #[test]
    fn blank_canvas_has_no_input() {
        let blank = GreyImage {
            width: 50,
            height: 50,
            pixels: vec![0.0; 2500],
        };
        assert_eq!(to_model_input(&blank), None);
    }

    #[test]
    fn light_background_inverted() {
        let mut rgba = vec![255u8; 10 * 10 * 4];
        for channel in 0..3 {
            rgba[(5 * 10 + 5) * 4 + channel] = 0;
        }
        let grey = GreyImage::from_rgba(&rgba, 10, 10).with_dark_background();
        assert_eq!(grey.pixels[0], 0.0);
        assert_eq!(grey.pixels[55], 1.0);
    }

    #[test]
    fn transparent_png_treated_as_white_paper() {
        let rgba = [0u8, 0, 0, 0].repeat(16);
        let grey = GreyImage::from_rgba(&rgba, 4, 4);
        assert!(grey.pixels.iter().all(|&p| p == 1.0));
    }
}
