//! Shared by the benchmarks: the preconditions, and the cost floor (the minimal counting BPF
//! program, `src/bpf/floor.bpf.c`) on the probe sites gotrace itself would use.

use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Result};
use gotrace::gobin::BinaryFile;
use gotrace::session::attach;
use gotrace::session::bpf::floor::FloorSkelBuilder;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

/// Checks for root and builds the Go targets; returns the repository root.
pub fn prepare(benchmark: &str) -> Result<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the {benchmark} benchmark loads BPF programs: run it as root");
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(root.join("scripts/build-targets.sh"))
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "scripts/build-targets.sh failed");
    Ok(root)
}

/// Runs `f` while the floor program counts hits at the sites gotrace plans for each
/// `(function, with its RETs)` of `binary`.
pub fn with_floor<T>(
    binary: &Path,
    functions: &[(&str, bool)],
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let file = BinaryFile::open(binary)?;
    let bin = file.parse()?;
    let mut sites = Vec::new();
    for &(function, with_rets) in functions {
        let plan = gotrace::plan::plan(&bin, &[function.to_owned()], with_rets)?;
        sites.extend(plan.sites(|_| with_rets));
    }
    let mut object = MaybeUninit::uninit();
    let skel = FloorSkelBuilder::default().open(&mut object)?.load()?;
    let _links = attach::attach_sites(&skel.progs.floor_hit, true, None, binary, &sites)?;
    f()
}
