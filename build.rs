//! Compiles the BPF programs in `src/bpf/` into libbpf-rs skeletons (CO-RE, vendored vmlinux.h).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// BPF programs, each becoming `$OUT_DIR/<name>.skel.rs`.
const PROGRAMS: &[&str] = &["shared", "funclat", "floor", "args", "goroutines", "graph"];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bpf_dir = PathBuf::from("src/bpf");
    for name in PROGRAMS {
        let source = bpf_dir.join(format!("{name}.bpf.c"));
        let skeleton = out_dir.join(format!("{name}.skel.rs"));
        SkeletonBuilder::new()
            .source(&source)
            .clang_args(["-I", "src/bpf", "-Wall", "-Werror"])
            .build_and_generate(&skeleton)
            .unwrap_or_else(|e| panic!("building BPF program {}: {e:#}", source.display()));
        println!("cargo:rerun-if-changed={}", source.display());
    }
    println!("cargo:rerun-if-changed=src/bpf");
}
