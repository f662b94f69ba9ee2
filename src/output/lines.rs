//! Output shared with a launched target: gotrace's lines must never be split by the target's
//! own writes to the same pipe or file. And the one way a `--json` line is written: a serde
//! record under its `type`; and a streaming command's last line, its summary.

use std::fmt::Display;
use std::io::{self, Write};

use serde::Serialize;

/// One `--json` line: `{"type": kind}` followed by the fields of `record`.
#[derive(Serialize)]
struct JsonLine<'r, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    record: &'r T,
}

/// Writes `record` as one `--json` line of type `kind`.
pub fn write_json_line(
    out: &mut impl Write,
    kind: &'static str,
    record: &impl Serialize,
) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &JsonLine { kind, record })?;
    out.write_all(b"\n")
}

/// Writes a command's summary, its last line: the `--json` record of type `summary` (the
/// fields of `summary`, docs/json.md), or else its text line (its `Display`).
pub fn write_summary(
    out: &mut impl Write,
    json: bool,
    summary: &(impl Serialize + Display),
) -> io::Result<()> {
    if json {
        write_json_line(out, "summary", summary)
    } else {
        writeln!(out, "{summary}")
    }
}

/// The largest integer every JSON reader holds exactly (an IEEE double's 53-bit mantissa).
pub const JSON_SAFE_INT: i128 = (1 << 53) - 1;

/// A `u64` as docs/json.md writes an exact integer: a JSON number up to 2^53 − 1, beyond it the
/// string of its decimal digits (jq and JavaScript would round a larger number). `ts_ns` is
/// one: CLOCK_MONOTONIC passes 2^53 ns after 104 days of uptime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactU64(pub u64);

impl Serialize for ExactU64 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if i128::from(self.0) <= JSON_SAFE_INT {
            serializer.serialize_u64(self.0)
        } else {
            serializer.collect_str(&self.0)
        }
    }
}

/// An integer as docs/json.md writes it: a JSON number within ±[`JSON_SAFE_INT`], else the
/// string of its decimal digits (the rule [`ExactU64`] applies to counters and times, here for
/// Go's values and keys).
pub fn exact_int(v: i128) -> serde_json::Value {
    if v.abs() <= JSON_SAFE_INT {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Value::String(v.to_string())
    }
}

/// [`ExactU64`] for a `u64` field of a serde record (`#[serde(serialize_with = "exact_u64")]`).
pub fn exact_u64<S: serde::Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    ExactU64(*value).serialize(serializer)
}

/// The largest write a pipe performs atomically (POSIX PIPE_BUF on Linux).
const ATOMIC_WRITE: usize = 4096;

/// Buffers output and hands it to `inner` only as whole lines, at most [`ATOMIC_WRITE`] bytes
/// per write (one longer line is written alone), so another process writing to the same pipe
/// or file lands between gotrace's lines, never inside one.
pub struct WholeLines<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> WholeLines<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        WholeLines {
            inner,
            pending: Vec::with_capacity(2 * ATOMIC_WRITE),
        }
    }

    /// Writes out complete lines while at least `keep` bytes are pending.
    fn drain(&mut self, keep: usize) -> io::Result<()> {
        while self.pending.len() > keep {
            let window = &self.pending[..self.pending.len().min(ATOMIC_WRITE)];
            let end = match window.iter().rposition(|&b| b == b'\n') {
                Some(newline) => newline + 1,
                // One line longer than an atomic write: write that line alone.
                None => match self.pending.iter().position(|&b| b == b'\n') {
                    Some(newline) => newline + 1,
                    None if keep == 0 => self.pending.len(),
                    None => return Ok(()),
                },
            };
            self.inner.write_all(&self.pending[..end])?;
            self.pending.drain(..end);
        }
        Ok(())
    }
}

impl<W: Write> Write for WholeLines<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(data);
        self.drain(ATOMIC_WRITE)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain(0)?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for WholeLines<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Up to 2^53 − 1 a number, from 2^53 on the decimal string (read back exactly by
    /// serde_json, as jq or JavaScript would read it).
    #[test]
    fn exact_u64_is_a_string_beyond_doubles() {
        let text = |v: u64| serde_json::to_string(&ExactU64(v)).unwrap();
        assert_eq!(text(9_007_199_254_740_991), "9007199254740991");
        assert_eq!(text(9_007_199_254_740_992), "\"9007199254740992\"");
        assert_eq!(text(u64::MAX), "\"18446744073709551615\"");
        let parsed: f64 = text(9_007_199_254_740_991).parse().unwrap();
        assert_eq!(parsed as u64, 9_007_199_254_740_991);
    }

    /// Records the size and content of each write.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Write for &mut Writes {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.push(data.to_vec());
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_are_whole_lines_within_the_atomic_size() {
        let mut writes = Writes::default();
        let line = format!("{}\n", "x".repeat(99));
        {
            let mut out = WholeLines::new(&mut writes);
            for _ in 0..1000 {
                out.write_all(line.as_bytes()).unwrap();
            }
            out.write_all(format!("{}\n", "y".repeat(9000)).as_bytes())
                .unwrap();
            out.write_all(b"tail").unwrap();
        }
        let all: Vec<u8> = writes.0.concat();
        assert_eq!(all.len(), 1000 * 100 + 9001 + 4);
        for (i, w) in writes.0.iter().enumerate() {
            let last = i == writes.0.len() - 1;
            assert!(last || w.ends_with(b"\n"), "write {i} splits a line");
            assert!(w.len() <= ATOMIC_WRITE || w.iter().filter(|&&b| b == b'\n').count() == 1);
        }
    }
}
