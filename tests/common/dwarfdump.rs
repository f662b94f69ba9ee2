//! The dwarfdump oracle (tests/oracle/dwarfdump): what Go's own `debug/dwarf` reads from a Go
//! binary (functions, globals, struct layouts, the runtime.g / runtime.m offsets), built once
//! per test process with the oracle toolchain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use super::targets::repo_root;
use super::toolchain::oracle_toolchain;

/// What tests/oracle/dwarfdump prints.
#[derive(Debug, Deserialize)]
pub struct Oracle {
    pub functions: BTreeMap<String, OracleSig>,
    pub globals: Vec<OracleGlobal>,
    pub structs: BTreeMap<String, OracleStruct>,
    pub runtime: Option<OracleLayout>,
    /// `runtime.waitReasonStrings` as Go's debug/elf reads it (None without the symbol).
    pub wait_reasons: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct OracleSig {
    pub params: Vec<OracleParam>,
    pub results: Vec<OracleParam>,
}

#[derive(Debug, Deserialize)]
pub struct OracleParam {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    /// `debug/dwarf`'s size of the type, -1 when it cannot tell.
    pub size: i64,
}

#[derive(Debug, Deserialize)]
pub struct OracleGlobal {
    pub name: String,
    pub addr: u64,
    #[serde(rename = "type")]
    pub type_name: String,
}

#[derive(Debug, Deserialize)]
pub struct OracleStruct {
    pub size: i64,
    pub fields: Vec<OracleField>,
}

#[derive(Debug, Deserialize)]
pub struct OracleField {
    pub name: String,
    pub offset: i64,
    /// `debug/dwarf`'s `Type.String()` of the field's type (`struct string` for Go's string).
    #[serde(rename = "type")]
    pub type_name: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct OracleLayout {
    pub g_goid: u64,
    pub g_stack_lo: u64,
    pub g_stack_hi: u64,
    pub g_m: u64,
    pub m_curg: u64,
    pub g_atomicstatus: u64,
    pub g_waitreason: u64,
}

/// Runs the dwarfdump oracle on a binary.
pub fn run_oracle(binary: &Path) -> Result<Oracle> {
    let output = std::process::Command::new(dwarfdump()?)
        .arg(binary)
        .output()
        .context("running the dwarfdump oracle")?;
    if !output.status.success() {
        bail!(
            "dwarfdump oracle on {}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("parsing the dwarfdump oracle's JSON")
}

/// The dwarfdump oracle, built once per process with the oracle toolchain.
pub fn dwarfdump() -> Result<PathBuf> {
    static ORACLE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ORACLE
        .get_or_init(|| {
            let toolchain = oracle_toolchain().map_err(|e| format!("{e:#}"))?;
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dwarf");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let target = dir.join("dwarfdump-oracle");
            let partial = target.with_extension(format!("tmp{}", std::process::id()));
            let output = toolchain
                .command()
                .current_dir(repo_root().join("tests/oracle/dwarfdump"))
                .args(["build", "-trimpath", "-buildvcs=false", "-o"])
                .arg(&partial)
                .arg(".")
                .output()
                .map_err(|e| format!("running go build for the dwarfdump oracle: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "building tests/oracle/dwarfdump: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
            std::fs::rename(&partial, &target).map_err(|e| e.to_string())?;
            Ok(target)
        })
        .clone()
        .map_err(|e| anyhow!(e))
}
