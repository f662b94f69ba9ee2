//! What a goroutine runs, by its Go name: the function at `funcval.fn`, except that the
//! compiler's wrapper closure for `go f(x)` (`main.main.gowrap1` from Go 1.22, an ordinary
//! `main.main.funcN` closure before) is reported as `f`, the function it calls, as Go's
//! tracebacks do. The wrapper's direct call target is found by decoding its code ([`disasm`]);
//! a wrapper that calls a function value (`go func(d time.Duration) {...}(v)`) calls it through
//! its first captured word, which the BPF side follows at `newproc1` (`closure_pc`).

use crate::gobin::{disasm, GoBinary};

/// A goroutine's start function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFunction {
    /// The function the user's `go` statement runs.
    pub function: String,
    /// The compiler-generated wrapper closure that calls it, if any.
    pub wrapper: Option<String>,
}

/// The first Go release that names go-statement wrappers `gowrapN`.
const GOWRAP_NAMES_SINCE: (u32, u32) = (1, 22);

/// Prefixes of the runtime helpers the compiler inserts calls to (stack growth, write
/// barriers, bounds-check panics, race hooks): not what a wrapper in the runtime wraps.
const RUNTIME_HELPERS: &[&str] = &[
    "runtime.morestack",
    "runtime.gcWriteBarrier",
    "runtime.panic",
    "runtime.racefunc",
    "runtime.wbZero",
    "runtime.wbMove",
];

/// What `funcval.fn` tells of a goroutine's start function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Known from the code alone.
    Known(StartFunction),
    /// This wrapper calls a function value it captured: which one is known per goroutine.
    ThroughClosure(String),
}

impl Start {
    /// The start function, given the `fn` of the funcval the closure's first captured word
    /// points at (`closure_pc`, 0 if unknown): for a wrapper that calls a function value, the
    /// function at `closure_pc` when that is a function's entry, else the wrapper itself.
    pub fn resolve(&self, bin: &GoBinary<'_>, closure_pc: u64) -> StartFunction {
        match self {
            Start::Known(start) => start.clone(),
            Start::ThroughClosure(wrapper) => match called_literal(bin, closure_pc) {
                Some(function) => StartFunction {
                    function,
                    wrapper: Some(wrapper.clone()),
                },
                None => StartFunction {
                    function: wrapper.clone(),
                    wrapper: None,
                },
            },
        }
    }
}

/// What the code at `funcval.fn` = `pc` tells of a goroutine's start function; `None` if no
/// function holds `pc`.
pub fn resolve(bin: &GoBinary<'_>, pc: u64) -> Option<Start> {
    let func = bin.func_at(pc)?;
    let name = func.name;
    let gowrap_names = bin
        .build
        .go_release()
        .is_some_and(|r| r >= GOWRAP_NAMES_SINCE);
    let may_wrap = if gowrap_names {
        is_numbered(name, ".gowrap")
    } else {
        is_numbered(name, ".func")
    };
    // A method value `go v.m()` through a variable runs the compiler's `-fm` wrapper.
    let method_value = name.ends_with("-fm");
    if !may_wrap && !method_value {
        return Some(Start::Known(StartFunction {
            function: print_name(name),
            wrapper: None,
        }));
    }
    // Go >= 1.22 may inline the literal itself into its `gowrapN`: the inline tree names it.
    if let Some(literal) = gowrap_names.then(|| inlined_literal(bin, name)).flatten() {
        return Some(Start::Known(StartFunction {
            function: print_name(literal),
            wrapper: Some(name.to_owned()),
        }));
    }
    let in_runtime = name.starts_with("runtime.");
    let callee = bin
        .code(func)
        .and_then(|code| sole_user_call(bin, code, func.entry, in_runtime));
    Some(match callee {
        Some(callee) => Start::Known(StartFunction {
            function: print_name(&callee),
            wrapper: Some(name.to_owned()),
        }),
        None if method_value => Start::Known(StartFunction {
            function: name.to_owned(),
            wrapper: None,
        }),
        None => Start::ThroughClosure(name.to_owned()),
    })
}

/// The function literal (`...funcN`) inlined directly into wrapper `wrapper`, when there is
/// exactly one: the wrapper then runs that literal's body in place of a call.
fn inlined_literal<'data>(bin: &GoBinary<'data>, wrapper: &str) -> Option<&'data str> {
    let mut literals = bin
        .inline_table()
        .instances
        .iter()
        .filter(|i| i.parent == wrapper && i.callers.is_empty() && is_numbered(i.func, ".func"))
        .map(|i| i.func);
    let first = literals.next()?;
    literals.all(|other| other == first).then_some(first)
}

/// Whether `name` ends in `marker` followed by a decimal number, possibly with the `.N`
/// suffixes of nested closures (`main.main.gowrap2`, `main.main.func1.2`).
fn is_numbered(name: &str, marker: &str) -> bool {
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut rest = name;
    while let Some((head, last)) = rest.rsplit_once('.') {
        if !is_number(last) {
            break;
        }
        rest = head;
    }
    rest.rsplit_once(marker).is_some_and(|(_, n)| is_number(n))
}

/// The function a wrapper that calls no function directly calls through its closure: the
/// one whose entry is `closure_pc`. A method value's `-fm` wrapper there is reported as the method it calls.
fn called_literal(bin: &GoBinary<'_>, closure_pc: u64) -> Option<String> {
    let func = bin.func_at(closure_pc)?;
    if closure_pc == 0 || func.entry != closure_pc {
        return None;
    }
    if func.name.ends_with("-fm") {
        if let Some(Start::Known(method)) = resolve(bin, closure_pc) {
            return Some(method.function);
        }
    }
    Some(print_name(func.name))
}

/// `name` as Go's tracebacks and `runtime.FuncForPC` print it: the type arguments of a generic
/// function's instantiation shown as `[...]` (`main.generic[go.shape.int]` is
/// `main.generic[...]`), like the runtime's `funcNameForPrint`.
fn print_name(name: &str) -> String {
    match (name.find('['), name.rfind(']')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}[...]{}", &name[..open], &name[close + 1..])
        }
        _ => name.to_owned(),
    }
}

/// The one function `code` calls directly, when there is exactly one (a wrapper calls its
/// function once), not counting runtime helpers such as morestack (for a wrapper outside the
/// runtime, not counting any runtime function); otherwise None.
fn sole_user_call(bin: &GoBinary<'_>, code: &[u8], entry: u64, in_runtime: bool) -> Option<String> {
    let mut callee: Option<&str> = None;
    for target in disasm::direct_call_targets(bin.elf.arch, code, entry) {
        let target = bin.func_at(target)?;
        let helper = if in_runtime {
            RUNTIME_HELPERS.iter().any(|h| target.name.starts_with(h))
        } else {
            target.name.starts_with("runtime.")
        };
        if helper {
            continue;
        }
        if callee.is_some_and(|c| c != target.name) {
            return None;
        }
        callee = Some(target.name);
    }
    callee.map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names() {
        assert!(is_numbered("main.main.gowrap1", ".gowrap"));
        assert!(is_numbered("main.(*s).run.func12", ".func"));
        assert!(!is_numbered("main.main.gowrap", ".gowrap"));
        assert!(!is_numbered("main.gowrapper", ".gowrap"));
        assert!(!is_numbered("main.leaf", ".func"));
        assert!(is_numbered("main.main.func1.2", ".func"));
        assert!(is_numbered("main.main.func1.gowrap3", ".gowrap"));
        assert!(!is_numbered("main.main.1", ".func"));
    }

    #[test]
    fn generic_names_print_as_go_does() {
        assert_eq!(
            print_name("main.generic[go.shape.int]"),
            "main.generic[...]"
        );
        assert_eq!(
            print_name("main.(*T[go.shape.string]).m"),
            "main.(*T[...]).m"
        );
        assert_eq!(print_name("main.plain"), "main.plain");
    }
}
