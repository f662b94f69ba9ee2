//! Function-list oracles that nobody here wrote: `go tool nm` (the ELF symbol table, as Go's
//! own tool reads it) and `tests/oracle/gosym` (the pclntab, as Go's `debug/gosym` reads it).
//! Both run with the oracle toolchain (Go 1.27), which reads every binary of the matrix and
//! every pclntab format from Go 1.2 on.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use super::targets::repo_root;
use super::toolchain::oracle_toolchain;

/// One line of `go tool nm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmSymbol {
    /// Symbol value (the link-time virtual address).
    pub address: u64,
    /// nm's type letter: T/t text, D/d data, B/b bss, R/r read-only data, U undefined.
    pub kind: char,
    /// Symbol name as in the ELF symbol table.
    pub name: String,
}

/// The text symbols (types T and t) of a binary, as `go tool nm` lists them. An error for a
/// binary without a symbol table.
pub fn go_nm_text_symbols(binary: &Path) -> Result<Vec<NmSymbol>> {
    let output = oracle_toolchain()?
        .command()
        .args(["tool", "nm"])
        .arg(binary)
        .output()
        .context("running go tool nm")?;
    if !output.status.success() {
        bail!(
            "go tool nm {}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut symbols = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // "  4669d0 T name": the name is the rest of the line and may contain spaces
        // ("type..eq.struct { runtime.gList; runtime.n int32 }").
        let mut fields = line.trim_start().splitn(3, ' ');
        let (Some(address), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            bail!("go tool nm: unexpected line {line:?}");
        };
        let kind = kind.chars().next().unwrap_or(' ');
        if kind == 'T' || kind == 't' {
            let address = u64::from_str_radix(address, 16)
                .with_context(|| format!("go tool nm line {line:?}"))?;
            symbols.push(NmSymbol {
                address,
                kind,
                name: name.to_owned(),
            });
        }
    }
    Ok(symbols)
}

/// One function of a pclntab, as `debug/gosym` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GosymFunction {
    /// Function name as stored in the pclntab.
    pub name: String,
    /// Entry address.
    pub entry: u64,
    /// End address (exclusive).
    pub end: u64,
    /// Source file of the entry PC ("" when the table has none, e.g. linker markers).
    pub file: String,
    /// Source line of the entry PC (0 or -1 when the table has none).
    pub line: i64,
}

/// Every function of the binary's pclntab, from the gosym oracle.
pub fn gosym_functions(binary: &Path) -> Result<Vec<GosymFunction>> {
    let oracle = gosym_oracle()?;
    let output = std::process::Command::new(&oracle)
        .arg(binary)
        .output()
        .context("running the gosym oracle")?;
    if !output.status.success() {
        bail!(
            "gosym oracle on {}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).with_context(|| format!("gosym oracle line {line:?}"))
        })
        .collect()
}

/// The gosym oracle binary, built once per process with the oracle toolchain into cargo's
/// scratch directory (atomically replaced, so concurrent test processes do not collide).
fn gosym_oracle() -> Result<PathBuf> {
    static ORACLE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ORACLE
        .get_or_init(|| build_gosym_oracle().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Builds tests/oracle/gosym.
fn build_gosym_oracle() -> Result<PathBuf> {
    let toolchain = oracle_toolchain()?;
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gosym-oracle");
    let partial = target.with_extension(format!("tmp{}", std::process::id()));
    let output = toolchain
        .command()
        .current_dir(repo_root().join("tests/oracle/gosym"))
        .args(["build", "-trimpath", "-buildvcs=false", "-o"])
        .arg(&partial)
        .arg(".")
        .output()
        .context("running go build for the gosym oracle")?;
    if !output.status.success() {
        bail!(
            "building tests/oracle/gosym: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    std::fs::rename(&partial, &target)
        .with_context(|| format!("renaming to {}", target.display()))?;
    Ok(target)
}
