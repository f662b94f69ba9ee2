//! Issue 24: a newcomer's first hour. Every case runs the real `gotrace` binary: errors exit
//! with code 2 in one line (clap's too, with a `--help` hint on the same line), nothing hangs
//! past 2 s, durations parse alike in every flag of every command, the ring buffer has one
//! name, and the fixed behaviours print what they now say.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use clap::CommandFactory;
use common::gotrace::{gotrace, user_error_problems, GOTRACE};
use common::serial::bpf_test;
use common::targets::{matrix_binary, GoBinary, Variant};
use common::toolchain::toolchain;
use common::{require, require_root};

/// The counter demo program (Go 1.24, amd64, with DWARF).
fn counter() -> Option<GoBinary> {
    require(matrix_binary("1.24.11", "amd64", Variant::Plain, "counter"))
}

/// Runs gotrace and kills it if it has not ended within `limit` (a hang fails the test).
fn gotrace_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(GOTRACE)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting gotrace");
    let started = Instant::now();
    while child.try_wait().expect("waiting for gotrace").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gotrace {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("reading gotrace's output")
}

/// Checks a user error: exit code 2, one stderr line, containing each of `words`.
#[track_caller]
fn assert_one_line_error(args: &[&str], words: &[&str]) -> String {
    let output = gotrace_within(args, Duration::from_secs(2));
    let problems = user_error_problems(&output);
    assert!(problems.is_empty(), "{args:?}: {problems:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    for word in words {
        assert!(stderr.contains(word), "{args:?}: {stderr:?} lacks {word:?}");
    }
    stderr
}

/// A running counter (`-rate 200`), killed on drop.
struct Running(Child);

impl Running {
    fn start(binary: &GoBinary) -> Running {
        let child = Command::new(&binary.path)
            .args(["-rate", "200"])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting counter");
        // Let the Go runtime start its goroutines and enter main.run.
        std::thread::sleep(Duration::from_millis(300));
        Running(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory for this test binary.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gotrace-newcomer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

// 1. Hangs and late failures.

/// A FIFO as BINARY fails at once (opening it for reading used to wait for a writer).
#[test]
fn fifo_binary_fails_at_once() {
    let fifo = scratch("fifo");
    let _ = std::fs::remove_file(&fifo);
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let fifo = fifo.to_str().unwrap();
    assert_one_line_error(&["list", fifo], &["not a regular file"]);
    assert_one_line_error(&["funclat", "main.doWork", fifo], &["not a regular file"]);
    assert_one_line_error(&["goroutines", fifo], &["not a regular file"]);
}

/// Every output path is checked before tracing: a directory or an unwritable path is one line.
#[test]
fn output_paths_are_checked_before_tracing() {
    let Some(binary) = counter() else { return };
    let path = binary.path.to_str().unwrap();
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    let missing = "/nonexistent-dir/out.svg";
    for (flag, target) in [
        ("--svg", dir),
        ("--folded", dir),
        ("--svg", missing),
        ("--folded", missing),
    ] {
        assert_one_line_error(
            &["graph", flag, target, "-d", "10", "main.doWork", path],
            &[flag, "cannot write there"],
        );
    }
    if !require_root() {
        return;
    }
    for target in [dir, missing] {
        assert_one_line_error(
            &[
                "funclat",
                "--heatmap",
                target,
                "-d",
                "10",
                "main.doWork",
                path,
            ],
            &["--heatmap", "cannot write there"],
        );
    }
}

// 2. Misleading words.

/// `-p` with a thread id names the process the thread belongs to.
#[test]
fn pid_of_a_thread_names_its_process() {
    let worker = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(3)));
    let me = std::process::id();
    let tid = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&tid| tid != me)
        .expect("the test process has a second thread");
    let tid = tid.to_string();
    assert_one_line_error(
        &["funclat", "main.doWork", "-p", &tid],
        &[
            &format!("{tid} is a thread of process {me}"),
            &format!("-p {me}"),
        ],
    );
    drop(worker);
}

/// BINARY given together with `-p` is named as such, not as an unknown function.
#[test]
fn binary_with_pid_is_named() {
    let Some(binary) = counter() else { return };
    let path = binary.path.to_str().unwrap();
    let me = std::process::id().to_string();
    let line = assert_one_line_error(
        &["funclat", "main.doWork", path, "-p", &me],
        &["is a file, not a function", "-p PID", "leave the path out"],
    );
    assert!(!line.contains("unknown function"), "{line}");
}

/// `-p` of a process gotrace cannot read says why: no such process, no executable, or (as
/// root) the kernel's ptrace check; never "are you root?" to root.
#[test]
fn unreadable_pid_says_why() {
    let line = assert_one_line_error(
        &["funclat", "main.doWork", "-p", "4194304"],
        &["no process 4194304"],
    );
    assert!(!line.contains("are you root"), "{line}");
    // PID 1 is often unreadable inside a container even for root.
    if let Err(e) = std::fs::read_link("/proc/1/exe") {
        let line = assert_one_line_error(&["funclat", "main.doWork", "-p", "1"], &["/proc/1/exe"]);
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root && e.kind() == std::io::ErrorKind::PermissionDenied {
            assert!(line.contains("although root"), "{line}");
            assert!(!line.contains("are you root"), "{line}");
        }
    }
}

/// `-d -1` (and every negative or zero duration) is one line, never clap's `-- -1` tip.
#[test]
fn negative_duration_is_one_line() {
    for value in ["-1", "-5ms", "0", "0s"] {
        let line = assert_one_line_error(
            &["funclat", "-d", value, "main.doWork", "/bin/true"],
            &["--duration"],
        );
        assert!(!line.contains("-- -1") && !line.contains("tip"), "{line}");
    }
}

/// A bad signature names the reason.
#[test]
fn bad_signature_names_the_reason() {
    let Some(binary) = counter() else { return };
    let path = binary.path.to_str().unwrap();
    for (signature, reason) in [
        ("main.doWork(n int", "unclosed parenthesis"),
        ("main.doWork(n int) (int", "unclosed parenthesis"),
        ("main.doWork(n int))", "unbalanced parentheses"),
        ("main.doWork(n foo.Bar)", "unknown type \"foo.Bar\""),
        ("main.doWork(a, b)", "unknown type \"a\""),
    ] {
        assert_one_line_error(&["args", signature, path], &[reason]);
    }
}

/// `goroutines --filter` matching no function says so.
#[test]
fn goroutines_filter_matching_nothing_says_so() {
    let Some(binary) = counter() else { return };
    let path = binary.path.to_str().unwrap();
    assert_one_line_error(
        &["goroutines", "--filter", "nosuch.*", path],
        &["--filter \"nosuch.*\" matches no function"],
    );
}

/// `unknown function doWork` suggests `main.doWork`.
#[test]
fn unqualified_name_suggests_the_qualified_one() {
    let Some(binary) = counter() else { return };
    let path = binary.path.to_str().unwrap();
    assert_one_line_error(
        &["funclat", "doWork", path],
        &["unknown function doWork; did you mean main.doWork"],
    );
}

/// `list` says "dynamically linked" for a non-PIE binary with an ELF interpreter.
#[test]
fn list_names_dynamic_linking() {
    let Some(go) = require(toolchain("1.24.11")) else {
        return;
    };
    if require(common::installed("gcc")).is_none() {
        return;
    }
    let out = scratch("counter-dynamic");
    let source = common::targets::repo_root().join("examples/go-targets/counter");
    // External linking (an ELF interpreter, no PIE) needs cgo, which the toolchain's
    // command turns off.
    let built = go
        .command()
        .env("CGO_ENABLED", "1")
        .current_dir(&source)
        .args([
            "build",
            "-trimpath",
            "-buildvcs=false",
            "-ldflags=-linkmode=external",
            "-o",
        ])
        .arg(&out)
        .arg(".")
        .status()
        .map_err(anyhow::Error::from)
        .and_then(|status| {
            anyhow::ensure!(status.success(), "go build with external linking failed");
            Ok(())
        });
    let Some(()) = require(built) else { return };
    let output = gotrace(["list", out.to_str().unwrap(), "main.doWork"]);
    assert!(output.status.success(), "{output:?}");
    let header = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(header.contains(" dynamically linked,"), "{header}");
    let static_counter = counter().unwrap();
    let output = gotrace(["list", static_counter.path.to_str().unwrap(), "main.doWork"]);
    let header = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(header.contains(" static,"), "{header}");
}

/// Plurals: "Tracing 1 function", "skipped 1 function that never returns", "Exiting trace of
/// 1 function".
#[test]
fn one_function_is_singular() {
    let Some(binary) = counter() else { return };
    let Some(_lock) = bpf_test() else { return };
    let path = binary.path.to_str().unwrap();
    let output = gotrace_within(
        &[
            "funclat",
            "-d",
            "300ms",
            "runtime.goPanicInde[x]",
            "main.doWork",
            path,
        ],
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("Tracing 1 function for "), "{stdout}");
    assert!(stdout.contains("Exiting trace of 1 function\n"), "{stdout}");
    assert!(
        stderr.contains("gotrace: skipped 1 function that never returns;"),
        "{stderr}"
    );
}

/// `goroutines -p` on a live process says its live count covers only goroutines created
/// since tracing began; `-T` prints a timestamp before each summary.
#[test]
fn goroutines_on_a_running_process_qualifies_its_live_count() {
    let Some(binary) = counter() else { return };
    let Some(_lock) = bpf_test() else { return };
    let running = Running::start(&binary);
    let pid = running.pid();
    let output = gotrace_within(
        &[
            "goroutines",
            "--summary",
            "-T",
            "-i",
            "200ms",
            "-d",
            "500ms",
            "-p",
            &pid,
        ],
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let live = stdout
        .lines()
        .find(|l| l.starts_with("live goroutines: "))
        .unwrap_or_else(|| panic!("no live goroutines line in {stdout}"));
    assert!(
        live.contains("(counting only goroutines created since tracing began)"),
        "{live}"
    );
    let stamps = stdout
        .lines()
        .filter(|l| l.len() == 8 && l.as_bytes()[2] == b':' && l.as_bytes()[5] == b':')
        .count();
    assert!(stamps >= 2, "-T printed {stamps} timestamps: {stdout}");
}

/// `graph` on a ROOT that was already running prints 0 trees and a hint why.
#[test]
fn graph_on_a_running_root_hints_why_no_tree() {
    let Some(binary) = counter() else { return };
    let Some(_lock) = bpf_test() else { return };
    let running = Running::start(&binary);
    let pid = running.pid();
    let output = gotrace_within(
        &["graph", "-d", "500ms", "main.run", "-p", &pid],
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("0 trees,"), "{stdout}");
    assert!(
        stderr.contains("gotrace: hint: no call of main.run started while tracing"),
        "{stderr}"
    );
}

// 3. Flags that agree.

/// Every duration flag of every command is named DURATION in --help, and parses alike.
#[test]
fn every_duration_flag_parses_alike() {
    let cli = gotrace::cli::Cli::command();
    let mut flags = Vec::new();
    for command in cli.get_subcommands() {
        for arg in command.get_arguments() {
            let names: Vec<String> = arg
                .get_value_names()
                .unwrap_or_default()
                .iter()
                .map(|n| n.to_string())
                .collect();
            assert!(
                !names.iter().any(|n| n == "SECS"),
                "{} {:?} still takes SECS",
                command.get_name(),
                arg.get_long()
            );
            if names.iter().any(|n| n == "DURATION") {
                flags.push((
                    command.get_name().to_owned(),
                    arg.get_long().unwrap().to_owned(),
                ));
            }
        }
    }
    let expected = [
        ("funclat", "duration"),
        ("funclat", "interval"),
        ("funclat", "heatmap-step"),
        ("args", "duration"),
        ("goroutines", "duration"),
        ("goroutines", "interval"),
        ("graph", "duration"),
        ("graph", "min"),
    ];
    for (command, flag) in expected {
        assert!(
            flags.iter().any(|(c, f)| c == command && f == flag),
            "{command} --{flag} takes no DURATION: {flags:?}"
        );
    }
    for (command, flag) in &flags {
        let flag = format!("--{flag}");
        let mut base = vec![command.as_str()];
        if flag == "--heatmap-step" {
            base.extend(["--heatmap", "/dev/null"]);
        }
        for bad in ["-1", "5x", "ms", "0"] {
            let mut args = base.clone();
            args.extend([flag.as_str(), bad, "main.f", "/bin/true"]);
            assert_one_line_error(&args, &[&format!("invalid value '{bad}'"), &flag]);
        }
        for good in ["10s", "1.5", "500ms", "1m30s", "250us"] {
            // Parsed: the error (if any) is about the target, not the flag.
            let mut args = base.clone();
            args.extend([flag.as_str(), good, "main.f", "/nonexistent/binary"]);
            let output = gotrace_within(&args, Duration::from_secs(2));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!stderr.contains("invalid value"), "{args:?}: {stderr}");
        }
    }
}

/// The ring buffer has one name, `--buffer-kib`, on every command that has one;
/// `--ringbuf-kib` and `--buffer-mib` still work (hidden), with their old units.
#[test]
fn ring_buffer_has_one_name() {
    for command in ["args", "graph", "goroutines"] {
        let help = String::from_utf8_lossy(&gotrace([command, "--help"]).stdout).into_owned();
        assert!(
            help.contains("--buffer-kib <KIB>"),
            "{command} --help: {help}"
        );
        assert!(
            !help.contains("--ringbuf-kib") && !help.contains("--buffer-mib"),
            "{help}"
        );
        let target: &[&str] = if command == "goroutines" {
            &["/bin/true"]
        } else {
            &["main.f", "/bin/true"]
        };
        for (flag, bad) in [
            ("--buffer-kib", "3"),
            ("--ringbuf-kib", "3"),
            ("--buffer-mib", "3"),
        ] {
            let mut args = vec![command, flag, bad];
            args.extend(target);
            assert_one_line_error(&args, &["power of two"]);
        }
        // The old names parse (the error that follows is about the missing binary).
        for (flag, good) in [
            ("--ringbuf-kib", "64"),
            ("--buffer-mib", "1"),
            ("--buffer-kib", "64"),
        ] {
            let mut args = vec![command, flag, good];
            args.extend(if command == "goroutines" {
                &["/nonexistent/binary"][..]
            } else {
                &["main.f", "/nonexistent/binary"][..]
            });
            assert_one_line_error(&args, &["/nonexistent/binary"]);
        }
        let mut both = vec![command, "--buffer-kib", "64", "--buffer-mib", "1"];
        both.extend(target);
        assert_one_line_error(&both, &["cannot be used with"]);
    }
}

/// `-T` exists on every command that prints periodically (funclat and goroutines `-i`).
#[test]
fn timestamp_on_every_periodic_command() {
    let cli = gotrace::cli::Cli::command();
    for command in cli.get_subcommands() {
        let has = |long: &str| command.get_arguments().any(|a| a.get_long() == Some(long));
        if has("interval") {
            assert!(has("timestamp"), "{} has -i but no -T", command.get_name());
        }
    }
}

/// `--strsize`: 1 to 4096, stated in --help and checked at parse time.
#[test]
fn strsize_range_is_stated_and_checked() {
    let help = String::from_utf8_lossy(&gotrace(["args", "--help"]).stdout).into_owned();
    assert!(help.contains("1 to 4096"), "{help}");
    for bad in ["0", "4097", "-1"] {
        assert_one_line_error(
            &["args", "--strsize", bad, "main.f", "/bin/true"],
            &["--strsize"],
        );
    }
}

/// `--listen :PORT` means every interface, as Prometheus writes it.
#[test]
fn listen_accepts_a_bare_port() {
    assert_one_line_error(
        &["funclat", "--listen", "nope", "main.f", "/bin/true"],
        &["--listen", ":9464"],
    );
    let Some(binary) = counter() else { return };
    let Some(_lock) = bpf_test() else { return };
    let path = binary.path.to_str().unwrap();
    let output = gotrace_within(
        &[
            "funclat",
            "--listen",
            ":0",
            "-d",
            "300ms",
            "main.doWork",
            path,
        ],
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("serving metrics at http://0.0.0.0:"),
        "{stderr}"
    );
}

/// clap's errors are one line with a hint naming the command's --help; exit code 2.
#[test]
fn command_line_errors_are_one_line_with_a_hint() {
    for (args, hint) in [
        (vec![], "`gotrace --help`"),
        (vec!["nosuch"], "`gotrace --help`"),
        (vec!["funclat"], "`gotrace funclat --help`"),
        (
            vec!["funclat", "--bogus", "main.f", "/bin/true"],
            "`gotrace funclat --help`",
        ),
        (vec!["list"], "`gotrace list --help`"),
        (
            vec!["args", "--max-events", "x", "main.f", "/bin/true"],
            "`gotrace args --help`",
        ),
        (
            vec!["graph", "--depth", "-1", "main.f", "/bin/true"],
            "`gotrace graph --help`",
        ),
        (
            vec!["goroutines", "--listen-sites", "/bin/true"],
            "`gotrace goroutines --help`",
        ),
        (
            vec!["funclat", "-u", "-m", "main.f", "/bin/true"],
            "`gotrace funclat --help`",
        ),
    ] {
        let line = assert_one_line_error(&args, &[&format!("; see {hint}")]);
        assert!(
            !line.contains("Usage:") && !line.contains("error:"),
            "{line}"
        );
    }
    let help = gotrace(["funclat", "--help"]);
    assert!(help.status.success() && help.stdout.len() > 200, "{help:?}");
}

// 4. `list` output.

/// FUNCTION is as wide as the longest name listed, so the columns after it line up; a legend
/// line and `list --help` explain ENTRY-SITE, RET-E/S, TAIL and STEPS.
#[test]
fn list_columns_line_up_and_are_explained() {
    let Some(binary) = counter() else { return };
    let output = gotrace(["list", binary.path.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let titles = stdout
        .lines()
        .find(|l| l.starts_with("FUNCTION "))
        .expect("titles");
    let entry_at = titles.find(" ENTRY ").unwrap() + 1;
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("FUNCTION "))
        .collect();
    let longest = rows
        .iter()
        .map(|r| r.split_whitespace().next().unwrap().chars().count())
        .max()
        .unwrap();
    assert!(
        longest > 60,
        "no name longer than the old 60-character column ({longest})"
    );
    for row in &rows {
        let column: String = row.chars().skip(entry_at).take(2).collect();
        assert!(
            column == "0x" || column == "- ",
            "ENTRY does not start at column {entry_at}: {row}"
        );
    }
    assert!(
        stdout.lines().any(|l| l.starts_with("# ENTRY-SITE: ")),
        "no legend line"
    );
    let help = String::from_utf8_lossy(&gotrace(["list", "--help"]).stdout).into_owned();
    for column in ["ENTRY-SITE", "RET-E/S", "TAIL", "STEPS"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(column)),
            "list --help explains no {column}"
        );
    }
}

// 5. README.

/// The README opens with the two commands for a fresh Debian machine, links only inside the
/// repository, and has the sections a newcomer needs.
#[test]
fn readme_serves_a_newcomer() {
    let mut readme = String::new();
    std::fs::File::open(common::targets::repo_root().join("README.md"))
        .unwrap()
        .read_to_string(&mut readme)
        .unwrap();
    let first_block = readme
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let commands: Vec<&str> = first_block
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(commands, ["scripts/demo.sh", "scripts/test.sh"]);
    assert!(
        !readme.contains("../shared"),
        "README links outside the repository"
    );
    for heading in [
        "## Requirements",
        "## Install",
        "## Tracing a running server by PID",
        "## Reading the output",
        "## Troubleshooting",
    ] {
        assert!(readme.contains(heading), "README has no {heading:?}");
    }
    for failure in ["not root", "BTF", "stripped", "too many", "refuses"] {
        let section = readme
            .split("## Troubleshooting")
            .nth(1)
            .unwrap()
            .to_lowercase();
        assert!(
            section.contains(&failure.to_lowercase()),
            "Troubleshooting says nothing of {failure:?}"
        );
    }
    for link in readme
        .split("](")
        .skip(1)
        .map(|l| l.split(')').next().unwrap())
    {
        // Markdown links only (code such as `f](x=3, ...)` holds spaces).
        if !link.starts_with("http") && !link.starts_with('#') && !link.contains(' ') {
            assert!(
                common::targets::repo_root()
                    .join(link.split('#').next().unwrap())
                    .exists(),
                "README links to missing {link}"
            );
        }
    }
}
