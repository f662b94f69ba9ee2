//! Which process(es) a tracing command watches: every process running a binary, one PID, or a
//! command gotrace launches itself and holds before `exec` until the probes are attached.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// How the user named the target, straight from the command line.
pub enum TargetSpec {
    /// Every process running this binary (now or later).
    Binary(PathBuf),
    /// One running process.
    Pid(u32),
    /// A command to launch, traced from its first instruction.
    Launch(Vec<OsString>),
}

/// A target ready for attaching: the binary to read and attach to, and the process filter.
pub struct Target {
    /// The executable to read and to place probes in.
    pub binary: PathBuf,
    /// Process to trace, or None for every process running `binary`.
    pub pid: Option<u32>,
    /// The launched child, held before `exec` until [`Target::release`].
    child: Option<HeldChild>,
}

/// A forked child blocked on a pipe before `exec`.
struct HeldChild {
    pid: libc::pid_t,
    release_fd: libc::c_int,
}

/// How a watched target ended.
pub enum TargetState {
    /// It still runs.
    Running,
    /// The process exited (launched children: with this exit code).
    Exited(Option<i32>),
}

impl Target {
    /// Resolves the spec: checks the binary or process exists and, for a launch, forks the
    /// child (held before exec).
    pub fn resolve(spec: TargetSpec) -> Result<Target> {
        match spec {
            TargetSpec::Binary(binary) => {
                if !binary.exists() {
                    bail!(
                        "{}: no such file (give the path of a Go binary, -p PID, or -- CMD)",
                        binary.display()
                    );
                }
                Ok(Target {
                    binary,
                    pid: None,
                    child: None,
                })
            }
            TargetSpec::Pid(pid) => {
                let exe = process_exe(pid)?;
                Ok(Target {
                    binary: exe,
                    pid: Some(pid),
                    child: None,
                })
            }
            TargetSpec::Launch(argv) => launch_held(&argv),
        }
    }

    /// Lets a launched child run (`exec`s it). No-op for other targets.
    pub fn release(&mut self) -> Result<()> {
        if let Some(child) = &mut self.child {
            if child.release_fd >= 0 {
                // SAFETY: release_fd is the write end of a pipe this process created and owns;
                // writing one byte from a valid buffer and closing it once is sound.
                let written = unsafe { libc::write(child.release_fd, b"g".as_ptr().cast(), 1) };
                // SAFETY: closing the fd we own, exactly once (set to -1 after).
                unsafe { libc::close(child.release_fd) };
                child.release_fd = -1;
                if written != 1 {
                    bail!("could not start the launched command");
                }
            }
        }
        Ok(())
    }

    /// Whether the traced process is still there (always Running for binary targets).
    pub fn state(&mut self) -> TargetState {
        if let Some(child) = &self.child {
            let mut status = 0;
            // SAFETY: waitpid on our own child with a valid status pointer; WNOHANG never blocks.
            let r = unsafe { libc::waitpid(child.pid, &mut status, libc::WNOHANG) };
            if r == child.pid {
                let code = if libc::WIFEXITED(status) {
                    Some(libc::WEXITSTATUS(status))
                } else {
                    libc::WIFSIGNALED(status).then(|| 128 + libc::WTERMSIG(status))
                };
                self.child = None;
                return TargetState::Exited(code);
            }
            return TargetState::Running;
        }
        match self.pid {
            Some(pid) if !process_alive(pid) => TargetState::Exited(None),
            _ => TargetState::Running,
        }
    }
}

impl Drop for Target {
    /// A launched command does not outlive gotrace: one still held before exec (tracing failed
    /// to start) is killed; one still running when tracing stops (-d, Ctrl-C, SIGTERM) gets
    /// SIGTERM, then SIGKILL if it has not exited after two seconds.
    fn drop(&mut self) {
        let Some(&HeldChild { pid, release_fd }) = self.child.as_ref() else {
            return;
        };
        if release_fd >= 0 {
            // SAFETY: signalling and reaping our own child; closing our own fd.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::close(release_fd);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return;
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while matches!(self.state(), TargetState::Running) {
            if std::time::Instant::now() > deadline {
                // SAFETY: signalling and reaping our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// `/proc/PID/exe` of a process `-p` names, or why it cannot be traced: no such process, a
/// thread id rather than a process id, no executable (a kernel thread), or no permission.
fn process_exe(pid: u32) -> Result<PathBuf> {
    let status = match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => status,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("no process {pid} (is it running? `pgrep NAME` finds a program's PID)")
        }
        Err(e) => bail!("cannot read /proc/{pid}/status: {e}"),
    };
    let tgid = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|t| t.trim().parse::<u32>().ok());
    if let Some(tgid) = tgid.filter(|&tgid| tgid != pid) {
        bail!("{pid} is a thread of process {tgid}, not a process: give -p {tgid}");
    }
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    match std::fs::read_link(&exe) {
        Ok(_) => Ok(exe),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "process {pid} has no executable to probe (a kernel thread, or a process exiting)"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // SAFETY: geteuid has no preconditions and cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                bail!("cannot read /proc/{pid}/exe although root: the kernel's ptrace check refuses it (process {pid} belongs to another user namespace, or a security module such as Yama or AppArmor denies it); run gotrace where that process's owner runs")
            }
            bail!("cannot read /proc/{pid}/exe: permission denied (run gotrace as root, or with CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE)")
        }
        Err(e) => bail!("cannot read /proc/{pid}/exe: {e}"),
    }
}

/// Whether process `pid` still runs: it exists and is not a zombie (exited, not yet reaped by
/// its parent).
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X"))
}

/// Finds `program` like a shell would: as a path if it has a slash, else on $PATH.
fn find_program(program: &OsString) -> Result<PathBuf> {
    let path = Path::new(program);
    if program.as_bytes().contains(&b'/') {
        return Ok(path.to_owned());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(path))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{}: command not found", path.display()))
}

/// Forks a child that waits on a pipe, then execs `argv`.
fn launch_held(argv: &[OsString]) -> Result<Target> {
    let program = argv.first().context("no command after --")?;
    let binary = find_program(program)?;
    let to_cstring = |s: &[u8]| CString::new(s).context("command argument contains a NUL byte");
    let c_path = to_cstring(binary.as_os_str().as_bytes())?;
    let c_args = argv
        .iter()
        .map(|a| to_cstring(a.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    let mut c_argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    c_argv.push(std::ptr::null());

    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: after fork the child only calls async-signal-safe functions (read, close,
    // execv, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!("fork: {}", std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: child side, see above; every pointer was built before fork.
        unsafe {
            libc::close(fds[1]);
            let mut byte = 0u8;
            if libc::read(fds[0], (&mut byte as *mut u8).cast(), 1) == 1 {
                libc::execv(c_path.as_ptr(), c_argv.as_ptr());
            }
            libc::_exit(127);
        }
    }
    // SAFETY: closing the read end we no longer need, once.
    unsafe { libc::close(fds[0]) };
    let pid_u32 = u32::try_from(pid).expect("fork returned a positive pid");
    Ok(Target {
        binary,
        pid: Some(pid_u32),
        child: Some(HeldChild {
            pid,
            release_fd: fds[1],
        }),
    })
}

impl crate::cli::TraceTarget {
    /// The target `-p PID` or `-- CMD` names, if either (both is an error).
    fn explicit(&self) -> Result<Option<TargetSpec>> {
        Ok(match (self.pid, self.command.is_empty()) {
            (Some(_), false) => bail!("give either -p PID or -- CMD, not both"),
            (Some(pid), true) => Some(TargetSpec::Pid(pid)),
            (None, false) => Some(TargetSpec::Launch(self.command.clone())),
            (None, true) => None,
        })
    }

    /// Splits a tracing command's positionals into patterns and the target: with `-p` or
    /// `-- CMD` every positional is a pattern, otherwise the last one is the binary.
    pub fn split(&self, positional: &[String]) -> Result<(Vec<String>, TargetSpec)> {
        if let Some(spec) = self.explicit()? {
            if let Some(path) = positional.iter().find(|p| looks_like_a_binary(p)) {
                let given = if self.pid.is_some() {
                    "-p PID"
                } else {
                    "-- CMD"
                };
                bail!("{path} is a file, not a function: with {given} gotrace traces that process's own binary, so leave the path out");
            }
            return Ok((positional.to_vec(), spec));
        }
        match positional {
            [patterns @ .., binary] if !patterns.is_empty() => {
                Ok((patterns.to_vec(), TargetSpec::Binary(PathBuf::from(binary))))
            }
            _ => bail!("name a function pattern and a target: PATTERN... BINARY, PATTERN... -p PID, or PATTERN... -- CMD ARGS"),
        }
    }

    /// The target of a command without patterns: `binary`, `-p PID` or `-- CMD`, exactly one.
    pub fn spec(&self, binary: Option<&Path>) -> Result<TargetSpec> {
        match (self.explicit()?, binary) {
            (Some(spec), None) => Ok(spec),
            (None, Some(binary)) => Ok(TargetSpec::Binary(binary.to_owned())),
            _ => bail!("name exactly one target: BINARY, -p PID, or -- CMD ARGS"),
        }
    }
}

/// Whether a positional given with `-p` or `--` names a file rather than a function: it holds
/// a slash (Go names do too: `net/http.Get`) and is an existing file.
fn looks_like_a_binary(positional: &str) -> bool {
    positional.contains('/') && Path::new(positional).is_file()
}
