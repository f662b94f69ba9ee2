//! Static reachability for `gotrace graph`: the functions a root reaches by direct CALLs
//! (decoded from the binary, [`crate::gobin::code::disasm::direct_call_targets`]) within a number of
//! calls, optionally leaving out the Go runtime. Plain data, no BPF.

use crate::gobin::code::disasm::direct_call_targets;
use crate::gobin::format::pclntab::Func;
use crate::gobin::GoBinary;

/// Whether `name` belongs to the Go runtime (`runtime.*` and the runtime's internal packages),
/// which `gotrace graph` leaves out unless `--runtime` is given.
pub fn is_runtime(name: &str) -> bool {
    ["runtime.", "runtime/", "internal/runtime/"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// The entries reachable from `roots` within `depth` direct calls, in breadth-first order,
/// without the roots themselves. `callees(entry)` gives the direct call targets of the function
/// at `entry` (only function entries); `keep(entry)` says whether a reached function is taken
/// (and followed further).
pub fn reach_from(
    roots: &[u64],
    depth: u32,
    callees: impl Fn(u64) -> Vec<u64>,
    keep: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let mut seen: std::collections::HashSet<u64> = roots.iter().copied().collect();
    let mut reached = Vec::new();
    let mut level: Vec<u64> = roots.to_vec();
    for _ in 0..depth {
        let mut next = Vec::new();
        for entry in level {
            for callee in callees(entry) {
                if keep(callee) && seen.insert(callee) {
                    next.push(callee);
                }
            }
        }
        reached.extend_from_slice(&next);
        level = next;
    }
    reached
}

/// The functions of `bin` reachable from the functions at `roots` within `depth` direct calls
/// (the roots excluded), without the runtime unless `with_runtime`.
pub fn reachable<'b, 'd>(
    bin: &'b GoBinary<'d>,
    roots: &[u64],
    depth: u32,
    with_runtime: bool,
) -> Vec<&'b Func<'d>> {
    let callees = |entry: u64| -> Vec<u64> {
        let Some(func) = bin.func_entered_at(entry) else {
            return Vec::new();
        };
        let Some(code) = bin.code(func) else {
            return Vec::new();
        };
        direct_call_targets(bin.elf.arch, code, entry)
            .into_iter()
            .filter(|&target| bin.func_entered_at(target).is_some())
            .collect()
    };
    let keep = |entry: u64| {
        bin.func_entered_at(entry)
            .is_some_and(|f| with_runtime || !is_runtime(f.name))
    };
    reach_from(roots, depth, callees, keep)
        .into_iter()
        .filter_map(|entry| bin.func_entered_at(entry))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 calls 2 and 3; 2 calls 4 and 1 (a cycle); 3 calls 4 and 9; 4 calls 5.
    fn callees(entry: u64) -> Vec<u64> {
        match entry {
            1 => vec![2, 3],
            2 => vec![4, 1],
            3 => vec![4, 9],
            4 => vec![5],
            _ => vec![],
        }
    }

    #[test]
    fn depth_bounds_the_calls_followed() {
        let keep = |e: u64| e != 9;
        assert_eq!(reach_from(&[1], 0, callees, keep), Vec::<u64>::new());
        assert_eq!(reach_from(&[1], 1, callees, keep), vec![2, 3]);
        assert_eq!(reach_from(&[1], 2, callees, keep), vec![2, 3, 4]);
        assert_eq!(reach_from(&[1], 3, callees, keep), vec![2, 3, 4, 5]);
        assert_eq!(reach_from(&[1], 9, callees, keep), vec![2, 3, 4, 5]);
    }

    #[test]
    fn a_left_out_function_is_not_followed() {
        assert_eq!(reach_from(&[1], 9, callees, |e| e != 4), vec![2, 3, 9]);
    }

    #[test]
    fn runtime_names() {
        assert!(is_runtime("runtime.mallocgc"));
        assert!(is_runtime("runtime/internal/atomic.Load"));
        assert!(is_runtime("internal/runtime/maps.(*Map).Get"));
        assert!(!is_runtime("main.runtimeStats"));
        assert!(!is_runtime("net/http.(*conn).serve"));
    }
}
