//! Rendering `gotrace args` events: one JSON object or one human line per call and return.

use std::io::Write;

use serde::Serialize;

use crate::decode::CallEvent;
use crate::output::breakdown::Breakdown;
use crate::output::values::NamedValue;
use crate::output::{clock, lines};

/// The record of one `call` or `return` line of `--json`.
#[derive(Serialize)]
struct CallLine<'e> {
    #[serde(serialize_with = "crate::output::lines::exact_u64")]
    ts_ns: u64,
    pid: u32,
    tid: u32,
    goid: u64,
    function: &'e str,
    #[serde(skip_serializing_if = "Option::is_none")]
    inlined: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inlined_in: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_site: Option<&'e str>,
    /// Returns: `null` when the entry was not seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ns: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    breakdown: Option<Breakdown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<&'e [NamedValue]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'e [NamedValue]>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    globals: &'e [NamedValue],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'e [NamedValue],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stack: Vec<StackFrame<'e>>,
}

/// One caller of `--stack`.
#[derive(Serialize)]
struct StackFrame<'e> {
    function: &'e str,
    file: &'e str,
    line: i64,
}

/// A matched return's breakdown, with `--breakdown` (`reasons`: Some, the binary's wait-reason
/// names or an empty list).
fn breakdown(e: &CallEvent<'_>, reasons: Option<&[String]>) -> Option<Breakdown> {
    let names = reasons?;
    let h = e.header;
    (e.is_ret && h.matched != 0)
        .then(|| Breakdown::of_call(&h.breakdown, h.duration_ns, Some(names)))
}

/// Appends `e` as one JSON line to `out`.
pub fn json_line(out: &mut Vec<u8>, e: &CallEvent<'_>, reasons: Option<&[String]>) {
    let h = e.header;
    let (values, globals): (&[NamedValue], &[NamedValue]) = (&e.values, &e.globals);
    let line = CallLine {
        ts_ns: h.ts_ns,
        pid: h.pid,
        tid: h.tid,
        goid: h.goid,
        function: &e.func.name,
        inlined: e.inlined.map(|_| true),
        inlined_in: e.inlined.map(|call| call.parent.as_str()),
        call_site: e.inlined.map(|call| call.call_site.as_str()),
        duration_ns: e
            .is_ret
            .then_some((h.matched != 0).then_some(h.duration_ns)),
        breakdown: breakdown(e, reasons),
        results: e.is_ret.then_some(values),
        args: (!e.is_ret).then_some(values),
        globals: if e.is_ret { &[] } else { globals },
        fields: if e.is_ret { &[] } else { &e.fields },
        stack: e
            .callers
            .iter()
            .filter(|_| !e.is_ret)
            .map(|(_, site)| {
                let (file, line) = site.file_line.unwrap_or(("?", 0));
                StackFrame {
                    function: site.function.unwrap_or("?"),
                    file,
                    line,
                }
            })
            .collect(),
    };
    let kind = if e.is_ret { "return" } else { "call" };
    // Into a Vec, serialising cannot fail.
    let _ = lines::write_json_line(out, kind, &line);
}

/// Appends `e` as one human line (plus its callers, or its breakdown) to `out`;
/// `clock_offset` turns BPF timestamps into Unix time.
pub fn human_line(
    out: &mut Vec<u8>,
    e: &CallEvent<'_>,
    clock_offset: i128,
    reasons: Option<&[String]>,
) {
    let h = e.header;
    let when = clock::hms_micros(i128::from(h.ts_ns) + clock_offset);
    let list = |named: bool| {
        e.values
            .iter()
            .map(|v| {
                let text = v.human();
                if named {
                    format!("{}={text}", v.name)
                } else {
                    text
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (pid, goid) = (h.pid, h.goid);
    let name = match e.inlined {
        Some(call) => format!(
            "{} [inlined in {} at {}]",
            e.func.name, call.parent, call.call_site
        ),
        None => e.func.name.clone(),
    };
    if e.is_ret {
        let took = if h.matched != 0 {
            clock::human_duration(h.duration_ns)
        } else {
            "(entry not seen)".to_owned()
        };
        let _ = writeln!(
            out,
            "{when} pid {pid} goid {goid} ← {name} = ({}) {took}",
            list(false)
        );
        if let Some(parts) = breakdown(e, reasons) {
            let _ = writeln!(out, "    {}", parts.human());
        }
        return;
    }
    let globals: String = e
        .globals
        .iter()
        .chain(&e.fields)
        .map(|g| format!(" {}={}", g.label(), g.human()))
        .collect();
    let _ = writeln!(
        out,
        "{when} pid {pid} goid {goid} → {name}({}){globals}",
        list(true)
    );
    for (_, site) in &e.callers {
        let (file, line) = site.file_line.unwrap_or(("?", 0));
        let _ = writeln!(
            out,
            "    at {} ({file}:{line})",
            site.function.unwrap_or("?")
        );
    }
}
