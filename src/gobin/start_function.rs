//! What a goroutine runs, by its Go name: the function at `funcval.fn`, except that the
//! compiler's wrapper closure for `go f(x)` (`main.main.gowrap1` from Go 1.22, an ordinary
//! `main.main.funcN` closure before) is reported as `f`, the function it calls, as Go's
//! tracebacks do. The wrapper's call target is found by decoding its code ([`disasm`]).

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

/// The start function of a goroutine whose `funcval.fn` is `pc`; `None` if no function holds it.
pub fn resolve(bin: &GoBinary<'_>, pc: u64) -> Option<StartFunction> {
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
    let callee = may_wrap
        .then(|| {
            let code = bin.code(func)?;
            sole_user_call(bin, code, func.entry)
        })
        .flatten();
    Some(match callee {
        Some(callee) => StartFunction {
            function: callee,
            wrapper: Some(name.to_owned()),
        },
        None => StartFunction {
            function: name.to_owned(),
            wrapper: None,
        },
    })
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

/// The one non-runtime function `code` calls directly, when there is exactly one (a wrapper
/// calls its function once, plus runtime helpers such as morestack); otherwise None.
fn sole_user_call(bin: &GoBinary<'_>, code: &[u8], entry: u64) -> Option<String> {
    let mut callee: Option<&str> = None;
    for target in disasm::direct_call_targets(bin.elf.arch, code, entry) {
        let target = bin.func_at(target)?;
        if target.name.starts_with("runtime.") {
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
}
