//! Naming code addresses as Go's tracebacks do: the function holding a return address's call
//! instruction (`pc - 1`, as `runtime.CallersFrames` reports it) and its `file:line`, and, for
//! a call made from inlined code, every inlined call it sits in (from the pclntab's inline
//! trees, as `runtime.CallersFrames` expands them).

use std::collections::HashMap;

use crate::gobin::format::inline_tree::{self, InlinedInstance};
use crate::gobin::GoBinary;

/// The call instruction before a return address: its function and source line, each when the
/// pclntab knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSite<'data> {
    /// The function holding the call (None: no pclntab function covers it).
    pub function: Option<&'data str>,
    /// Its source file and line (None: the pclntab does not know them).
    pub file_line: Option<(&'data str, i64)>,
}

impl<'data> GoBinary<'data> {
    /// The call site whose return address is `return_pc` (a link-time address).
    pub fn call_site(&self, return_pc: u64) -> CallSite<'data> {
        let call = return_pc.saturating_sub(1);
        let func = self.func_at(call);
        CallSite {
            function: func.map(|f| f.name),
            file_line: func.and_then(|f| self.pclntab.line(f, call).ok().flatten()),
        }
    }
}

/// One source frame of a code address: a function (inlined or not) and the `file:line` it is
/// at there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceFrame<'data> {
    /// The function, inlined or out-of-line.
    pub function: &'data str,
    /// The source file it is at.
    pub file: &'data str,
    /// The line in `file`.
    pub line: i64,
}

impl<'data> GoBinary<'data> {
    /// The source frames of the call instruction before each of `return_pcs` (link-time), the
    /// innermost inlined call first and the out-of-line function holding the code last; a
    /// return address the pclntab does not know (or whose line it does not know) is absent.
    /// Each holding function's inline tree is read once.
    pub fn call_site_frames(&self, return_pcs: &[u64]) -> HashMap<u64, Vec<SourceFrame<'data>>> {
        let mut holders: Vec<_> = return_pcs
            .iter()
            .filter_map(|&pc| self.func_at(pc.saturating_sub(1)).cloned())
            .collect();
        holders.sort_unstable_by_key(|f| f.entry);
        holders.dedup_by_key(|f| f.entry);
        let table = inline_tree::read_parents(
            &self.elf,
            &self.pclntab,
            &self.funcs,
            &holders,
            self.build.go_version.as_deref(),
            &|_| true,
        );
        let mut by_parent: HashMap<u64, Vec<InlinedInstance<'_, 'data>>> = HashMap::new();
        for instance in table.instances() {
            by_parent
                .entry(instance.parent_entry)
                .or_default()
                .push(instance);
        }
        let mut frames = HashMap::new();
        for &return_pc in return_pcs {
            let call = return_pc.saturating_sub(1);
            let Some(func) = self.func_at(call) else {
                continue;
            };
            let Ok(Some((file, line))) = self.pclntab.line(func, call) else {
                continue;
            };
            // The inlined calls holding the call instruction, innermost (most callers) first.
            let mut inside: Vec<_> = by_parent
                .get(&func.entry)
                .into_iter()
                .flatten()
                .filter(|i| i.ranges.iter().any(|&(lo, hi)| lo <= call && call < hi))
                .collect();
            inside.sort_by_key(|i| std::cmp::Reverse(i.callers.len()));
            let mut stack = Vec::with_capacity(inside.len() + 1);
            let mut at = (file, line);
            for instance in inside {
                stack.push(SourceFrame {
                    function: instance.func,
                    file: at.0,
                    line: at.1,
                });
                at = (instance.call_file, instance.call_line);
            }
            stack.push(SourceFrame {
                function: func.name,
                file: at.0,
                line: at.1,
            });
            frames.insert(return_pc, stack);
        }
        frames
    }
}

impl CallSite<'_> {
    /// `file:line`, or the address when the pclntab does not know it.
    pub fn file_line_or(&self, return_pc: u64) -> String {
        match self.file_line {
            Some((file, line)) => format!("{file}:{line}"),
            None => format!("{return_pc:#x}"),
        }
    }
}
