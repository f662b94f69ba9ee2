//! Headless Chromium as the oracle for drawings: it renders a page (an SVG file gotrace wrote)
//! into a PNG screenshot kept among the test artifacts (`target/tmp/artifacts`), whose pixels
//! the test then inspects.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::prerequisite::installed;

/// A decoded screenshot.
pub struct Screenshot {
    /// Where the PNG is kept.
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// RGB, row by row.
    pub pixels: Vec<[u8; 3]>,
}

/// The installed Chromium, or why it is missing.
pub fn chromium() -> anyhow::Result<PathBuf> {
    installed("chromium")
}

/// Renders `page` in headless `chromium` with a `width`×`height` window, keeps the screenshot
/// as `artifacts/<name>.png` under the target directory and returns it decoded; `scratch` is a
/// directory for Chromium's profile. Panics, with Chromium's stderr, when no screenshot came.
pub fn screenshot(
    chromium: &Path,
    page: &Path,
    (width, height): (u64, u64),
    name: &str,
    scratch: &Path,
) -> Screenshot {
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let path = artifacts.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&path);
    let shot = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("chromium").display()
        ))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", path.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(
        path.is_file(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let (width, height, pixels) = decode_rgb(&path);
    Screenshot {
        path,
        width,
        height,
        pixels,
    }
}

/// Decodes a PNG into its size and RGB pixels.
fn decode_rgb(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = BufReader::new(std::fs::File::open(path).unwrap());
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("PNG size")];
    let frame = reader.next_frame(&mut buffer).expect("PNG pixels");
    let channels = frame.color_type.samples();
    assert!(
        channels >= 3,
        "a colour screenshot, got {:?}",
        frame.color_type
    );
    let pixels = buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (frame.width, frame.height, pixels)
}
