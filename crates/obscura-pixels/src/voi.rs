//! VOI windowing (PS3.3 C.11.2.1.2): modality values to 8-bit grey levels.

/// VOI LUT Function (0028,1056).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiFunction {
    /// LINEAR (the default).
    Linear,
    /// LINEAR_EXACT.
    LinearExact,
    /// SIGMOID.
    Sigmoid,
}

impl VoiFunction {
    /// Parse the attribute's value or a `window=` query's third term
    /// (case-insensitive, as PS3.18 writes them in lower case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "LINEAR" => Some(VoiFunction::Linear),
            "LINEAR_EXACT" => Some(VoiFunction::LinearExact),
            "SIGMOID" => Some(VoiFunction::Sigmoid),
            _ => None,
        }
    }
}

/// A window: centre, width and function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Window Center.
    pub center: f64,
    /// Window Width.
    pub width: f64,
    /// VOI LUT Function.
    pub function: VoiFunction,
}

impl Window {
    /// A window, if its width is valid for its function (≥ 1 for LINEAR,
    /// > 0 otherwise) and both numbers are finite.
    pub fn new(center: f64, width: f64, function: VoiFunction) -> Option<Self> {
        let ok = center.is_finite()
            && width.is_finite()
            && match function {
                VoiFunction::Linear => width >= 1.0,
                _ => width > 0.0,
            };
        ok.then_some(Window {
            center,
            width,
            function,
        })
    }

    /// Parse a PS3.18 `window=center,width,function` query value.
    pub fn parse_query(s: &str) -> Option<Self> {
        let mut it = s.split(',');
        let center = it.next()?.trim().parse().ok()?;
        let width = it.next()?.trim().parse().ok()?;
        let function = match it.next() {
            Some(f) => VoiFunction::parse(f)?,
            None => VoiFunction::Linear,
        };
        if it.next().is_some() {
            return None;
        }
        Window::new(center, width, function)
    }

    /// The window spanning `min..=max` (for a frame without one).
    pub fn spanning(min: f64, max: f64) -> Self {
        Window {
            center: (min + max) / 2.0,
            width: (max - min).max(f64::MIN_POSITIVE),
            function: VoiFunction::LinearExact,
        }
    }

    /// The 8-bit grey level of modality value `x`.
    pub fn apply(&self, x: f64) -> u8 {
        let (c, w) = (self.center, self.width);
        let y = match self.function {
            VoiFunction::Linear => {
                if x <= c - 0.5 - (w - 1.0) / 2.0 {
                    0.0
                } else if x > c - 0.5 + (w - 1.0) / 2.0 {
                    255.0
                } else {
                    ((x - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0
                }
            }
            VoiFunction::LinearExact => {
                if x <= c - w / 2.0 {
                    0.0
                } else if x > c + w / 2.0 {
                    255.0
                } else {
                    ((x - c) / w + 0.5) * 255.0
                }
            }
            VoiFunction::Sigmoid => 255.0 / (1.0 + (-4.0 * (x - c) / w).exp()),
        };
        y.round().clamp(0.0, 255.0) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_follows_ps3_3() {
        // PS3.3 C.11.2.1.2.1: c=2048, w=4096 maps 0 to 0 and 4095 to 255
        let w = Window::new(2048.0, 4096.0, VoiFunction::Linear).unwrap();
        assert_eq!(w.apply(-10.0), 0);
        assert_eq!(w.apply(0.0), 0);
        assert_eq!(w.apply(2048.0), 128);
        assert_eq!(w.apply(4095.0), 255);
        // width 1 is a threshold at the centre
        let t = Window::new(100.0, 1.0, VoiFunction::Linear).unwrap();
        assert_eq!(t.apply(99.0), 0);
        assert_eq!(t.apply(100.0), 255);
        assert!(Window::new(100.0, 0.5, VoiFunction::Linear).is_none());
    }

    #[test]
    fn exact_and_sigmoid() {
        let e = Window::new(0.0, 100.0, VoiFunction::LinearExact).unwrap();
        assert_eq!(e.apply(-50.0), 0);
        assert_eq!(e.apply(0.0), 128);
        assert_eq!(e.apply(50.0), 255);
        let s = Window::new(0.0, 100.0, VoiFunction::Sigmoid).unwrap();
        assert_eq!(s.apply(0.0), 128);
        assert!(s.apply(-200.0) < 5 && s.apply(200.0) > 250);
    }

    #[test]
    fn query_values() {
        let w = Window::parse_query("40,400,sigmoid").unwrap();
        assert_eq!(
            (w.center, w.width, w.function),
            (40.0, 400.0, VoiFunction::Sigmoid)
        );
        assert_eq!(
            Window::parse_query("40,400").unwrap().function,
            VoiFunction::Linear
        );
        for bad in [
            "",
            "40",
            "40,x",
            "40,0",
            "40,400,cubic",
            "1,2,linear,4",
            "nan,3",
        ] {
            assert!(Window::parse_query(bad).is_none(), "{bad}");
        }
    }
}
