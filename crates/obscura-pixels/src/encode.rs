//! Rendered images out: scaling to a viewport, PNG and JPEG.

use crate::error::PixelError;
use crate::render::Image8;

/// The largest viewport side accepted.
pub const MAX_VIEWPORT: u32 = 4096;

impl Image8 {
    /// Scale to fit within `width × height`, keeping the aspect ratio
    /// (area average when shrinking, nearest pixel when growing).
    pub fn fit(&self, width: u32, height: u32) -> Image8 {
        let s = (f64::from(width) / f64::from(self.width))
            .min(f64::from(height) / f64::from(self.height));
        let w = ((f64::from(self.width) * s).round() as u32).clamp(1, width.max(1));
        let h = ((f64::from(self.height) * s).round() as u32).clamp(1, height.max(1));
        if (w, h) == (self.width, self.height) {
            return self.clone();
        }
        let c = self.channels as usize;
        let mut data = Vec::with_capacity(w as usize * h as usize * c);
        let span = |i: u32, out: u32, src: u32| {
            let a = (u64::from(i) * u64::from(src) / u64::from(out)) as usize;
            let b = (u64::from(i + 1) * u64::from(src)).div_ceil(u64::from(out)) as usize;
            (a, b.max(a + 1).min(src as usize))
        };
        for y in 0..h {
            let (y0, y1) = span(y, h, self.height);
            for x in 0..w {
                let (x0, x1) = span(x, w, self.width);
                let mut sum = [0u64; 3];
                for sy in y0..y1 {
                    let row = sy * self.width as usize;
                    for sx in x0..x1 {
                        let p = (row + sx) * c;
                        for (k, s) in sum.iter_mut().enumerate().take(c) {
                            *s += u64::from(self.data[p + k]);
                        }
                    }
                }
                let n = ((y1 - y0) * (x1 - x0)) as u64;
                data.extend(sum[..c].iter().map(|s| ((s + n / 2) / n) as u8));
            }
        }
        Image8 {
            width: w,
            height: h,
            channels: self.channels,
            data,
        }
    }

    /// Encode as PNG (8-bit grey or RGB).
    pub fn to_png(&self) -> Result<Vec<u8>, PixelError> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width, self.height);
        enc.set_color(if self.channels == 1 {
            png::ColorType::Grayscale
        } else {
            png::ColorType::Rgb
        });
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc
            .write_header()
            .map_err(|e| PixelError::Encode(e.to_string()))?;
        w.write_image_data(&self.data)
            .map_err(|e| PixelError::Encode(e.to_string()))?;
        w.finish().map_err(|e| PixelError::Encode(e.to_string()))?;
        Ok(out)
    }

    /// Encode as baseline JPEG at `quality` (1–100).
    pub fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, PixelError> {
        let (w, h) = (
            u16::try_from(self.width)
                .map_err(|_| PixelError::Encode("too wide for JPEG".into()))?,
            u16::try_from(self.height)
                .map_err(|_| PixelError::Encode("too tall for JPEG".into()))?,
        );
        let mut out = Vec::new();
        let enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
        let color = if self.channels == 1 {
            jpeg_encoder::ColorType::Luma
        } else {
            jpeg_encoder::ColorType::Rgb
        };
        enc.encode(&self.data, w, h, color)
            .map_err(|e| PixelError::Encode(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> Image8 {
        Image8 {
            width: w,
            height: h,
            channels: 1,
            data: (0..w * h).map(|i| (i % w) as u8).collect(),
        }
    }

    #[test]
    fn fit_keeps_the_aspect_ratio_and_averages() {
        let img = ramp(200, 100);
        let t = img.fit(64, 64);
        assert_eq!((t.width, t.height), (64, 32));
        assert_eq!(t.data.len(), 64 * 32);
        // a horizontal ramp stays a ramp
        assert!(t.data[..64].windows(2).all(|p| p[0] <= p[1]));
        let tall = ramp(10, 40).fit(100, 100);
        assert_eq!((tall.width, tall.height), (25, 100));
        let same = img.fit(200, 100);
        assert_eq!(same, img);
        // a 2x2 average
        let four = Image8 {
            width: 2,
            height: 2,
            channels: 1,
            data: vec![0, 100, 200, 100],
        };
        assert_eq!(four.fit(1, 1).data, vec![100]);
    }

    #[test]
    fn png_and_jpeg_have_their_signatures() {
        let img = ramp(33, 17);
        assert!(img.to_png().unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
        let j = img.to_jpeg(80).unwrap();
        assert!(j.starts_with(&[0xFF, 0xD8]) && j.ends_with(&[0xFF, 0xD9]));
    }
}
