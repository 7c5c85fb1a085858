//! Pixels of the wall: originals, recreations and their residuals side by side, and the
//! diverging colour scale the residuals are painted with.
//!
//! The wall is built here as an RGBA buffer so that its layout and colours are tested
//! natively, and the page only copies the buffer onto a canvas.

use crate::data::{IMAGE_PIXELS, IMAGE_SIDE};

/// Colour of residual -1 (the recreation has ink the original lacks).
const BLUE: [f32; 3] = [33.0, 102.0, 172.0];
/// Colour of residual 0.
const WHITE: [f32; 3] = [247.0, 247.0, 247.0];
/// Colour of residual +1 (the recreation misses ink of the original).
const RED: [f32; 3] = [178.0, 24.0, 43.0];

/// Gap between tiles, in image pixels.
pub const GAP: usize = 2;
/// Rows of the wall: original, recreation, residual.
pub const ROWS: usize = 3;

/// Maps a residual in [-1, 1] onto the blue-white-red scale, clamping values outside.
pub fn diverging_rgb(value: f32) -> [u8; 3] {
    let value = if value.is_nan() {
        0.0
    } else {
        value.clamp(-1.0, 1.0)
    };
    let (end, weight) = if value < 0.0 {
        (BLUE, -value)
    } else {
        (RED, value)
    };
    let mut rgb = [0u8; 3];
    for channel in 0..3 {
        let mixed = WHITE[channel] + (end[channel] - WHITE[channel]) * weight;
        rgb[channel] = mixed.round() as u8;
    }
    rgb
}

fn grey(value: f32) -> [u8; 3] {
    let level = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
    [level; 3]
}

/// An RGBA image with its size in pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgba {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Rgba {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 4],
        }
    }

    fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let at = (y * self.width + x) * 4;
        self.pixels[at..at + 3].copy_from_slice(&rgb);
        self.pixels[at + 3] = 255;
    }

    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        let at = (y * self.width + x) * 4;
        [self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]]
    }
}

/// Lays out `originals` and `recreations` (each `count` images of 28x28 pixels in
/// [0, 1]) as three rows: original, recreation, and residual = original - recreation.
pub fn render(originals: &[f32], recreations: &[f32]) -> Rgba {
    assert_eq!(
        originals.len(),
        recreations.len(),
        "one recreation per original"
    );
    assert_eq!(originals.len() % IMAGE_PIXELS, 0, "whole 28x28 images");
    let count = originals.len() / IMAGE_PIXELS;
    let step = IMAGE_SIDE + GAP;
    let mut wall = Rgba::new((count * step).saturating_sub(GAP), ROWS * step - GAP);

    for image in 0..count {
        let start = image * IMAGE_PIXELS;
        for pixel in 0..IMAGE_PIXELS {
            let original = originals[start + pixel];
            let recreation = recreations[start + pixel];
            let x = image * step + pixel % IMAGE_SIDE;
            let y = pixel / IMAGE_SIDE;
            wall.put(x, y, grey(original));
            wall.put(x, y + step, grey(recreation));
            wall.put(x, y + 2 * step, diverging_rgb(original - recreation));
        }
    }
    wall
}

/// Draws a horizontal colour bar of the residual scale, -1 at the left and +1 at the right.
pub fn colour_bar(width: usize, height: usize) -> Rgba {
    let mut bar = Rgba::new(width, height);
    for x in 0..width {
        let value = 2.0 * x as f32 / (width.max(2) - 1) as f32 - 1.0;
        let rgb = diverging_rgb(value);
        for y in 0..height {
            bar.put(x, y, rgb);
        }
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_ends_and_centre() {
        assert_eq!(diverging_rgb(-1.0), [33, 102, 172]);
        assert_eq!(diverging_rgb(0.0), [247, 247, 247]);
        assert_eq!(diverging_rgb(1.0), [178, 24, 43]);
    }

    #[test]
    fn scale_clamps_and_handles_nan() {
        assert_eq!(diverging_rgb(5.0), diverging_rgb(1.0));
        assert_eq!(diverging_rgb(-5.0), diverging_rgb(-1.0));
        assert_eq!(diverging_rgb(f32::NAN), diverging_rgb(0.0));
    }

    #[test]
    fn wall_layout_and_colours() {
        let mut originals = vec![0.0; 2 * IMAGE_PIXELS];
        let mut recreations = vec![0.0; 2 * IMAGE_PIXELS];
        // Second image, first pixel: ink the recreation missed.
        originals[IMAGE_PIXELS] = 1.0;
        // First image, last pixel: ink the recreation invented.
        recreations[IMAGE_PIXELS - 1] = 1.0;
        let wall = render(&originals, &recreations);

        let step = IMAGE_SIDE + GAP;
        assert_eq!(wall.width, 2 * step - GAP);
        assert_eq!(wall.height, 3 * step - GAP);
        assert_eq!(wall.get(step, 0), [255, 255, 255]);
        assert_eq!(wall.get(step, step), [0, 0, 0]);
        assert_eq!(wall.get(step, 2 * step), diverging_rgb(1.0));
        let last = IMAGE_SIDE - 1;
        assert_eq!(wall.get(last, step + last), [255, 255, 255]);
        assert_eq!(wall.get(last, 2 * step + last), diverging_rgb(-1.0));
        assert_eq!(wall.get(0, 2 * step), diverging_rgb(0.0));
    }

    #[test]
    fn colour_bar_runs_blue_to_red() {
        let bar = colour_bar(101, 4);
        assert_eq!(bar.get(0, 0), diverging_rgb(-1.0));
        assert_eq!(bar.get(50, 3), diverging_rgb(0.0));
        assert_eq!(bar.get(100, 2), diverging_rgb(1.0));
    }
}
