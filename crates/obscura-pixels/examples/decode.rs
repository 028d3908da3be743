//! Decode one frame of a DICOM file, for the interop tests against pydicom
//! (tests/test_pixels.py).
//!
//! `decode FILE FRAME` writes a JSON line (width, height, samples per pixel,
//! photometric interpretation) and then every sample value as a
//! little-endian i64. `decode FILE FRAME --png OUT [WINDOW]` writes the
//! rendered frame as PNG (WINDOW as in a `window=` query).

use obscura_pixels::{render, DecodeLimits, Decoder, Window};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("decode: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [path, frame, rest @ ..] = args else {
        return Err("usage: decode FILE FRAME [--png OUT [WINDOW]]".into());
    };
    let d = Decoder::open_path(path.as_ref(), DecodeLimits::default())
        .map_err(|e| format!("{} ({})", e, e.code()))?;
    let f = d
        .frame(frame.parse()?)
        .map_err(|e| format!("{} ({})", e, e.code()))?;
    if let [flag, out, window @ ..] = rest {
        if flag != "--png" {
            return Err("expected --png".into());
        }
        let window = match window.first() {
            Some(w) => Some(Window::parse_query(w).ok_or("bad window")?),
            None => None,
        };
        std::fs::write(out, render(&f, d.info(), window).to_png()?)?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{{\"width\":{},\"height\":{},\"samples_per_pixel\":{},\"photometric\":\"{}\",\"frames\":{}}}",
        f.width,
        f.height,
        f.samples_per_pixel,
        f.photometric.as_str(),
        d.frames()
    )?;
    let bytes: Vec<u8> = f.values().flat_map(i64::to_le_bytes).collect();
    out.write_all(&bytes)?;
    Ok(())
}
