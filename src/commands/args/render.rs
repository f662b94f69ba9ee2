//! Rendering `gotrace args` events: one JSON object or one human line per call and return.

use std::io::Write;

use serde_json::json;

use super::decode::CallEvent;
use crate::output::clock;
use crate::output::values;

/// Appends `e` as one JSON line to `out`.
pub fn json_line(out: &mut Vec<u8>, e: &CallEvent<'_>) {
    let h = e.header;
    let kind = if e.is_ret { "return" } else { "call" };
    let _ = write!(
        out,
        "{{\"type\":\"{kind}\",\"ts_ns\":{},\"pid\":{},\"tid\":{},\"goid\":{},\"function\":",
        h.ts_ns, h.pid, h.tid, h.goid
    );
    values::put_json(out, e.func.name.as_str());
    if let Some(call) = e.inlined {
        out.extend_from_slice(b",\"inlined\":true,\"inlined_in\":");
        values::put_json(out, call.parent.as_str());
        out.extend_from_slice(b",\"call_site\":");
        values::put_json(out, call.call_site.as_str());
    }
    if e.is_ret {
        if h.matched != 0 {
            let _ = write!(out, ",\"duration_ns\":{}", h.duration_ns);
        } else {
            out.extend_from_slice(b",\"duration_ns\":null");
        }
        out.extend_from_slice(b",\"results\":");
        values::write_json_list(out, &e.values);
    } else {
        out.extend_from_slice(b",\"args\":");
        values::write_json_list(out, &e.values);
        if !e.globals.is_empty() {
            out.extend_from_slice(b",\"globals\":");
            values::write_json_list(out, &e.globals);
        }
        if !e.callers.is_empty() {
            let stack: Vec<_> = e
                .callers
                .iter()
                .map(|(_, site)| {
                    let (file, line) = site.file_line.unwrap_or(("?", 0));
                    json!({"function": site.function.unwrap_or("?"), "file": file, "line": line})
                })
                .collect();
            out.extend_from_slice(b",\"stack\":");
            values::put_json(out, &stack);
        }
    }
    out.extend_from_slice(b"}\n");
}

/// Appends `e` as one human line (plus its callers) to `out`; `clock_offset` turns BPF
/// timestamps into Unix time.
pub fn human_line(out: &mut Vec<u8>, e: &CallEvent<'_>, clock_offset: i128) {
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
        return;
    }
    let globals: String = e
        .globals
        .iter()
        .map(|g| format!(" {}={}", g.name, g.human()))
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
