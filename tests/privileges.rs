//! Least privilege and containers (issue 27 point 5), each checked against the counter's own
//! record of its calls: a non-root user with only CAP_BPF + CAP_PERFMON tracing a program it
//! launches; the same user tracing another user's process by `-p` (which also needs
//! CAP_SYS_PTRACE: /proc/PID/exe of another user's process is refused without it, and
//! CAP_DAC_READ_SEARCH does not help); a target in its own PID and mount namespaces whose binary
//! lies on a tmpfs the host cannot see, traced by host PID; a running binary deleted and
//! replaced on disk, traced by `-p`. Root-only (it drops to `nobody` with setpriv).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::gotrace::GOTRACE;
use common::serial::bpf_test;
use common::targets::{matrix_binary, Variant};
use common::{installed, require};

/// A directory every user can read, holding copies of gotrace and the counter (the build
/// tree may not be readable by `nobody`).
struct Copies {
    dir: PathBuf,
    gotrace: PathBuf,
    counter: PathBuf,
}

impl Copies {
    fn new(tag: &str) -> Option<Copies> {
        let counter = require(matrix_binary("1.27.3", "amd64", Variant::Plain, "counter"))?;
        let dir = std::env::temp_dir().join(format!("gotrace-priv-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copies = Copies {
            gotrace: dir.join("gotrace"),
            counter: dir.join("counter"),
            dir,
        };
        std::fs::copy(GOTRACE, &copies.gotrace).unwrap();
        std::fs::copy(&counter.path, &copies.counter).unwrap();
        Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&copies.dir)
            .status()
            .unwrap();
        Some(copies)
    }
}

impl Drop for Copies {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `setpriv` running as `nobody` with exactly the capabilities `caps` (e.g. "+bpf,+perfmon").
fn as_nobody(setpriv: &Path, caps: &str) -> Command {
    let mut command = Command::new(setpriv);
    command.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        &format!("--inh-caps={caps}"),
        &format!("--ambient-caps={caps}"),
        "--",
    ]);
    command
}

/// The funclat count of main.doWork in gotrace's human output.
fn count(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.split(", count: ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in:\n{stdout}"))
}

/// The counter's own `calls N`.
fn own_calls(child: Child) -> u64 {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("calls "))
        .and_then(|n| n.trim().parse().ok())
        .expect("counter printed no calls line")
}

/// A counter held before its first call (`-wait`); `prefix` runs it (e.g. unshare).
fn waiting_counter(prefix: &[&str], counter: &Path, n: u64) -> Child {
    let (program, args) = match prefix.split_first() {
        Some((program, args)) => (PathBuf::from(program), args.to_vec()),
        None => (counter.to_path_buf(), Vec::new()),
    };
    let mut command = Command::new(program);
    command.args(args);
    if !prefix.is_empty() {
        command.arg(counter);
    }
    command
        .args(["-rate", "2000", "-n", &n.to_string(), "-wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The PID (in this namespace) of the process running `binary` beneath `parent`, waiting for
/// it to appear.
fn pid_running(binary: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
            if argv0 == binary.as_os_str().as_encoded_bytes() {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "{} never ran", binary.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `gotrace funclat main.doWork -p PID` (through `tracer`), waits for its banner,
/// releases the counter, and checks the count against the counter's own.
fn trace_pid_exactly(mut tracer: Command, pid: u32, mut counter: Child) {
    let mut gotrace = tracer
        .args([
            "funclat",
            "--no-guard",
            "main.doWork",
            "-p",
            &pid.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(gotrace.stdout.take().unwrap());
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut banner).unwrap();
    if !banner.starts_with("Tracing ") {
        let out = gotrace.wait_with_output().unwrap();
        panic!(
            "no banner: {banner}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::io::Write::write_all(counter.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let own = own_calls(counter);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = gotrace.wait().unwrap();
    assert!(status.success(), "{rest}");
    assert_eq!(count(&rest), own, "{rest}");
}

#[test]
fn bpf_and_perfmon_trace_a_launched_program() {
    let Some(_serial) = bpf_test() else { return };
    let (Some(setpriv), Some(copies)) = (require(installed("setpriv")), Copies::new("launch"))
    else {
        return;
    };
    let out = as_nobody(&setpriv, "+bpf,+perfmon")
        .arg(&copies.gotrace)
        .args(["funclat", "main.doWork", "--"])
        .arg(&copies.counter)
        .args(["-rate", "2000", "-n", "1500"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("calls 1500"), "{stdout}");
    assert_eq!(count(&stdout), 1500, "{stdout}");
}

#[test]
fn another_users_process_needs_sys_ptrace_too() {
    let Some(_serial) = bpf_test() else { return };
    let (Some(setpriv), Some(copies)) = (require(installed("setpriv")), Copies::new("pid")) else {
        return;
    };
    // The counter runs as root; gotrace as nobody.
    let counter = waiting_counter(&[], &copies.counter, 1000);
    let pid = counter.id();
    let refused = as_nobody(&setpriv, "+bpf,+perfmon,+dac_read_search")
        .arg(&copies.gotrace)
        .args([
            "funclat",
            "main.doWork",
            "-p",
            &pid.to_string(),
            "-d",
            "0.2",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("CAP_SYS_PTRACE") || why.contains("not accessible"),
        "{why}"
    );
    let mut tracer = as_nobody(&setpriv, "+bpf,+perfmon,+sys_ptrace");
    tracer.arg(&copies.gotrace);
    trace_pid_exactly(tracer, pid, counter);
}

#[test]
fn a_process_in_its_own_pid_and_mount_namespaces_on_a_private_tmpfs() {
    let Some(_serial) = bpf_test() else { return };
    let (Some(unshare), Some(copies)) = (require(installed("unshare")), Copies::new("ns")) else {
        return;
    };
    // Inside: a tmpfs mounted over a fresh directory, the counter copied onto it and run from
    // there; the host sees the directory empty.
    let hidden = copies.dir.join("hidden");
    std::fs::create_dir_all(&hidden).unwrap();
    let script = format!(
        "mount -t tmpfs none {h} && cp {c} {h}/counter && exec {h}/counter -rate 2000 -n 1000 -wait",
        h = hidden.display(),
        c = copies.counter.display()
    );
    let counter = Command::new(unshare)
        .args([
            "--pid",
            "--mount",
            "--fork",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = pid_running(&hidden.join("counter"));
    assert!(
        !hidden.join("counter").exists(),
        "the host must not see the tmpfs"
    );
    trace_pid_exactly(Command::new(GOTRACE), pid, counter);
}

#[test]
fn a_deleted_and_replaced_binary_still_running() {
    let Some(_serial) = bpf_test() else { return };
    let Some(copies) = Copies::new("deleted") else {
        return;
    };
    let counter = waiting_counter(&[], &copies.counter, 1000);
    let pid = counter.id();
    // Deleted, and another file put at its path (an upgrade in place).
    std::fs::remove_file(&copies.counter).unwrap();
    std::fs::write(&copies.counter, b"#!/bin/sh\nexit 0\n").unwrap();
    trace_pid_exactly(Command::new(GOTRACE), pid, counter);
}
