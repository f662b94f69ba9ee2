//! The Go binaries the tests read: the build matrix of `examples/go-targets` (built on demand
//! by `scripts/build-targets.sh`, once per test process; the script itself takes a lock file so
//! concurrent test processes do not collide) and the prebuilt esbuild binaries from npm.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Result};

use super::toolchain::{cache_dir, toolchain};

/// GOARCH values of the matrix.
pub const GOARCHES: &[&str] = &["amd64", "386", "arm64"];

/// How a matrix binary was linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Default `go build`: symbol table and DWARF.
    Plain,
    /// `-ldflags='-s -w'`: no symbol table, no DWARF (pclntab only).
    Stripped,
    /// `-buildmode=pie` (amd64 only): symbol table and DWARF.
    Pie,
}

impl Variant {
    /// The variants built for a GOARCH.
    pub fn for_goarch(goarch: &str) -> &'static [Variant] {
        if goarch == "amd64" {
            &[Variant::Plain, Variant::Stripped, Variant::Pie]
        } else {
            &[Variant::Plain, Variant::Stripped]
        }
    }

    /// Name as used in the output directory (`<goarch>-<variant>`).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Stripped => "stripped",
            Variant::Pie => "pie",
        }
    }
}

/// A Go binary under test, with what is known about it independently of gotrace.
#[derive(Debug, Clone)]
pub struct GoBinary {
    /// Short name for messages, e.g. "go1.19/amd64-pie/counter" or "esbuild-linux-64@0.7.22".
    pub label: String,
    /// Path of the binary.
    pub path: PathBuf,
    /// Go version that built it, e.g. "1.21.13" or "1.15".
    pub go_version: String,
    /// GOARCH it was built for.
    pub goarch: &'static str,
    /// Whether it has an ELF symbol table (and DWARF): false for stripped builds.
    pub has_symbols: bool,
}

impl fmt::Display for GoBinary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The programs under `examples/go-targets` (directories with a go.mod), sorted.
pub fn programs() -> Result<Vec<String>> {
    let dir = repo_root().join("examples/go-targets");
    let mut programs = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| anyhow!("reading {}: {e}", dir.display()))? {
        let path = entry?.path();
        if path.join("go.mod").is_file() {
            if let Some(name) = path.file_name().and_then(|name| name.to_str()) {
                programs.push(name.to_owned());
            }
        }
    }
    programs.sort();
    Ok(programs)
}

/// One matrix binary, built on demand; an error if its toolchain is missing or the build did
/// not produce it.
pub fn matrix_binary(
    version: &'static str,
    goarch: &'static str,
    variant: Variant,
    program: &str,
) -> Result<GoBinary> {
    toolchain(version)?;
    build_matrix()?;
    built_binary(version, goarch, variant, program)
}

/// Every matrix binary of one toolchain (all GOARCHes, variants and programs).
pub fn matrix_binaries(version: &'static str) -> Result<Vec<GoBinary>> {
    toolchain(version)?;
    build_matrix()?;
    let programs = programs()?;
    let mut binaries = Vec::new();
    for &goarch in GOARCHES {
        for &variant in Variant::for_goarch(goarch) {
            for program in &programs {
                binaries.push(built_binary(version, goarch, variant, program)?);
            }
        }
    }
    Ok(binaries)
}

/// A matrix binary that build_matrix should have produced.
fn built_binary(
    version: &'static str,
    goarch: &'static str,
    variant: Variant,
    program: &str,
) -> Result<GoBinary> {
    let label = format!("go{version}/{goarch}-{}/{program}", variant.name());
    let path = repo_root().join("target/go-targets").join(&label);
    if !path.is_file() {
        bail!(
            "{} was not built by scripts/build-targets.sh",
            path.display()
        );
    }
    Ok(GoBinary {
        label,
        path,
        go_version: version.to_owned(),
        goarch,
        has_symbols: variant != Variant::Stripped,
    })
}

/// Runs scripts/build-targets.sh once per process (it skips up-to-date outputs).
fn build_matrix() -> Result<()> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = repo_root().join("scripts/build-targets.sh");
            let output = Command::new(&script)
                .output()
                .map_err(|e| format!("running {}: {e}", script.display()))?;
            eprint!("{}", String::from_utf8_lossy(&output.stdout));
            if !output.status.success() {
                return Err(format!(
                    "{} failed ({}): {}",
                    script.display(),
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// The esbuild releases from npm that `scripts/setup.sh` unpacks: (package, version, GOARCH,
/// Go version that built it, has a symbol table and DWARF).
pub const ESBUILD_RELEASES: &[(&str, &str, &str, &str, bool)] = &[
    ("esbuild-linux-64", "0.3.9", "amd64", "1.14", true),
    ("esbuild-linux-64", "0.7.22", "amd64", "1.15", false),
    ("esbuild-linux-64", "0.8.57", "amd64", "1.16", false),
    ("esbuild-linux-64", "0.13.15", "amd64", "1.17", false),
    ("esbuild-linux-32", "0.8.45", "386", "1.15", false),
];

/// One esbuild binary, or why it is missing.
pub fn esbuild_binary(package: &str, version: &str) -> Result<GoBinary> {
    let &(_, _, goarch, go_version, has_symbols) = ESBUILD_RELEASES
        .iter()
        .find(|release| release.0 == package && release.1 == version)
        .ok_or_else(|| anyhow!("{package}@{version} is not in ESBUILD_RELEASES"))?;
    let path = cache_dir()
        .join("npm")
        .join(format!("{package}-{version}"))
        .join("package/bin/esbuild");
    if !path.is_file() {
        bail!(
            "{package}@{version} is not unpacked at {} (run scripts/setup.sh)",
            path.display()
        );
    }
    Ok(GoBinary {
        label: format!("{package}@{version}"),
        path,
        go_version: go_version.to_owned(),
        goarch,
        has_symbols,
    })
}
