//! Decoding speed on a big real binary: every function of Go 1.27's `compile` (~25 MB,
//! ~20,000 functions) must decode in under 0.5 s in a release build
//! (`cargo test --release --test disasm_perf -- --nocapture`). Debug builds only report the time.
//! Function ranges come from `go tool nm -size`, each extended to the next function's start
//! (INT3 padding included, as pclntab gives them). Time is the thread's CPU time, so other
//! processes on the machine do not count; the report also gives the ratio to a bare iced-x86
//! loop over the same bytes (the floor).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gotrace::gobin::code::disasm::decode_function;
use gotrace::gobin::Arch;
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic};
use object::{Object, ObjectSection};

const COMPILE_GO: &str = "1.27.3";
const BUDGET: Duration = Duration::from_millis(500);

fn compile_binary() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let path = Path::new(&home).join(format!(
        ".cache/gotrace/go/{COMPILE_GO}/go/pkg/tool/linux_amd64/compile"
    ));
    if path.is_file() {
        return Some(path);
    }
    let what = format!("Go {COMPILE_GO}'s compile ({})", path.display());
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing (run scripts/setup.sh)"
    );
    eprintln!("SKIPPED: {what} is missing (run scripts/setup.sh)");
    None
}

/// Start addresses of the text symbols `go tool nm` lists, ascending and distinct.
fn function_starts(binary: &Path) -> Vec<u64> {
    let output = Command::new("/usr/bin/go")
        .args(["tool", "nm", "-size", "-sort", "address"])
        .arg(binary)
        .output()
        .expect("run go tool nm");
    assert!(output.status.success(), "go tool nm failed");
    let mut starts: Vec<u64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (addr, size, kind) = (fields.next()?, fields.next()?, fields.next()?);
            let name = fields.next()?;
            let is_function = matches!(kind, "T" | "t") && size != "0" && !name.starts_with("go:");
            is_function
                .then(|| u64::from_str_radix(addr, 16).ok())
                .flatten()
        })
        .collect();
    starts.dedup();
    starts
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always supported
    // on Linux.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime failed");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// The floor: iced-x86 decoding the same bytes with nothing else done, counting RETs.
fn bare_decode(ranges: &[(u64, &[u8])]) -> usize {
    let mut insn = Instruction::default();
    let mut rets = 0;
    for &(entry, code) in ranges {
        let mut decoder = Decoder::with_ip(64, code, entry, DecoderOptions::NONE);
        while decoder.can_decode() {
            decoder.decode_out(&mut insn);
            rets += usize::from(insn.mnemonic() == Mnemonic::Ret);
        }
    }
    rets
}

#[test]
fn decodes_all_of_go_compile_fast() {
    let Some(binary) = compile_binary() else {
        return;
    };
    let starts = function_starts(&binary);
    let file_bytes = std::fs::read(&binary).expect("read compile");
    let file = object::File::parse(&*file_bytes).expect("parse compile");
    let text = file.section_by_name(".text").expect("a .text section");
    let (text_addr, text_data) = (text.address(), text.data().expect(".text data"));
    let text_end = text_addr + text_data.len() as u64;
    let ranges: Vec<(u64, &[u8])> = starts
        .iter()
        .zip(starts.iter().skip(1).chain([&text_end]))
        .filter(|(&start, _)| start >= text_addr && start < text_end)
        .map(|(&start, &end)| {
            let offset = |addr: u64| (addr - text_addr) as usize;
            (start, &text_data[offset(start)..offset(end.min(text_end))])
        })
        .collect();
    assert!(ranges.len() > 10_000, "only {} functions", ranges.len());

    let clock = thread_cpu_time();
    let floor_rets = bare_decode(&ranges);
    let floor = thread_cpu_time() - clock;

    let clock = thread_cpu_time();
    let mut rets = 0;
    for &(entry, code) in &ranges {
        let decoded = decode_function(Arch::Amd64, code, entry)
            .unwrap_or_else(|e| panic!("function at {entry:#x}: {e:#}"));
        rets += decoded.ret_sites.len();
    }
    let elapsed = thread_cpu_time() - clock;
    let bytes: usize = ranges.iter().map(|(_, code)| code.len()).sum();
    println!(
        "decoded {} functions ({bytes} bytes, {rets} RETs) of compile in {elapsed:?} CPU; \
         bare iced-x86 loop: {floor:?} ({:.2}x)",
        ranges.len(),
        elapsed.as_secs_f64() / floor.as_secs_f64()
    );
    assert_eq!(
        rets, floor_rets,
        "RET count differs from the bare decoder's"
    );
    if !cfg!(debug_assertions) {
        assert!(elapsed < BUDGET, "took {elapsed:?}, budget {BUDGET:?}");
    }
}
