//! Naming code addresses as Go's tracebacks do: the function holding a return address's call
//! instruction (`pc - 1`, as `runtime.CallersFrames` reports it) and its `file:line`.

use crate::gobin::GoBinary;

/// The call instruction before a return address: its function and source line, each when the
/// pclntab knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSite<'data> {
    pub function: Option<&'data str>,
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

impl CallSite<'_> {
    /// `file:line`, or the address when the pclntab does not know it.
    pub fn file_line_or(&self, return_pc: u64) -> String {
        match self.file_line {
            Some((file, line)) => format!("{file}:{line}"),
            None => format!("{return_pc:#x}"),
        }
    }
}
