//! Rendering an SVG the way a person opens it: a screenshot by headless Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Result};

/// Screenshots `svg` at `width` x `height` into `png` with `chromium` (its profile in
/// `profile`); an error with Chromium's stderr when it wrote no screenshot.
pub fn screenshot(
    chromium: &Path,
    svg: &Path,
    (width, height): (u64, u64),
    png: &Path,
    profile: &Path,
) -> Result<()> {
    let _ = std::fs::remove_file(png);
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
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", svg.display()))
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        png.is_file(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    Ok(())
}

/// Where tests keep their artifacts (screenshots): under the target directory.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&dir).expect("creating the artifacts directory");
    dir
}
