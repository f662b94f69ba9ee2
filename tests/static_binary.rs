//! The gotrace binary copies to a host without its libraries: libbpf, libelf and zlib are
//! linked in (libbpf-rs "static"), so the dynamic loader needs only the C runtime. Oracle:
//! `ldd` (glibc's own loader lists what the file needs).

use std::process::Command;

/// The shared objects a Rust binary on glibc may need: the C runtime itself.
const C_RUNTIME: &[&str] = &[
    "linux-vdso.so.1",
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
];

#[test]
fn gotrace_needs_only_the_c_runtime() {
    let binary = env!("CARGO_BIN_EXE_gotrace");
    let ldd = Command::new("ldd")
        .arg(binary)
        .output()
        .expect("running ldd (Debian's libc-bin)");
    assert!(ldd.status.success(), "ldd {binary} failed: {ldd:?}");
    let listing = String::from_utf8_lossy(&ldd.stdout);
    let needed: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        needed.contains(&"libc.so.6"),
        "unexpected ldd output:\n{listing}"
    );
    let others: Vec<&&str> = needed
        .iter()
        .filter(|lib| {
            let name = lib.rsplit('/').next().unwrap_or(lib);
            !C_RUNTIME.contains(&name)
        })
        .collect();
    assert!(
        others.is_empty(),
        "gotrace links libraries beyond the C runtime: {others:?}\n{listing}"
    );
}
