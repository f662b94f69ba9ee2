//! Building call trees from `gotrace graph` records: per (pid, goid) a stack of open calls.
//! An ENTER pushes; an EXIT pops to its own call (same function, same depth), closing the calls
//! above it that never returned (panic unwinding: `unwound`); the EXIT of the outermost ROOT
//! call completes a tree, and so does a GOEXIT (runtime.Goexit ended the goroutine: every open
//! call, the root too, is `unwound` there). Nothing is invented: an EXIT without its open call is
//! counted `unmatched`, and calls already running when tracing began never open.

use std::collections::HashMap;

use crate::output::breakdown::Breakdown;
use crate::output::calltree::{CallNode, CallTree};
use crate::output::values::NamedValue;
use crate::session::guard::DroppedList;

/// What one record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The function's entry: a call starts.
    Enter,
    /// A RET of the function.
    Exit,
    /// A RET of a function it tail-calls: its return only if a call of it is open there.
    TailExit,
    /// The goroutine ended (runtime.goexit1) with its calls still open.
    Goexit,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The process (tgid).
    pub pid: u32,
    /// The goroutine.
    pub goid: u64,
    /// The planned function whose probe made the record.
    pub func_id: u32,
    /// g.stack.hi − SP: the same at a call's entry and its RETs.
    pub depth: u64,
    /// When the probe fired, CLOCK_MONOTONIC ns.
    pub ts_ns: u64,
    /// What happened.
    pub step: Step,
    /// ENTER: the function's link-time entry and the call's link-time return address (0:
    /// unknown).
    pub entry_pc: u64,
    /// ENTER: the call's link-time return address, in its caller (0: unknown).
    pub return_pc: u64,
    /// --args: the arguments (ENTER) or results (EXIT) captured at the site.
    pub values: Option<Vec<NamedValue>>,
    /// --breakdown, EXIT: the parts of the call's time attributed (nothing when not followed).
    pub breakdown: Option<Breakdown>,
}

/// Bounds on one tree.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Calls nested beneath the root kept (the root is at 0).
    pub max_depth: u32,
    /// Calls kept per tree, the root included.
    pub max_nodes: u32,
}

/// One open call; `node` is None when the limits cut it (it is still matched to its EXIT).
struct Frame {
    func_id: u32,
    depth: u64,
    node: Option<CallNode>,
}

/// A root call in progress on one goroutine.
struct OpenTree {
    frames: Vec<Frame>,
    nodes: u32,
    truncated: u64,
    last_ts: u64,
}

/// Counters of what could not be placed in a tree.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// EXITs without their open call, and ENTERs on a goroutine with no open root call (its
    /// root's record was lost).
    pub unmatched: u64,
    /// Calls cut by the limits.
    pub truncated: u64,
    /// Root calls still open at the end, closed and reported as they were.
    pub open_at_end: u64,
}

/// Turns records into trees.
pub struct TreeBuilder {
    names: Vec<String>,
    n_roots: u32,
    limits: Limits,
    open: HashMap<(u32, u64), OpenTree>,
    /// Calls unmatched, cut by the limits, and roots open at the end.
    pub counts: Counts,
    /// The functions the overload guard dropped, and their calls closed without an EXIT.
    pub guard: GuardedCalls,
}

/// A call whose EXIT never came because the overload guard removed its function's probes is
/// not in a tree (its duration is unknown; its children hang under its caller) but counted
/// here, by function id: `dropped_by_guard`.
#[derive(Default)]
pub struct GuardedCalls {
    /// The functions the guard dropped (shared with the guard, which adds to it).
    pub dropped: DroppedList,
    /// By function id: its calls closed without an EXIT after the guard dropped it.
    pub open: Vec<u64>,
}

impl GuardedCalls {
    /// Counts a call of `func_id` that never returned, when the guard dropped its function.
    fn took(&mut self, func_id: u32) -> bool {
        let dropped = self.dropped.lock().unwrap();
        if !dropped.iter().any(|d| d.func_id == func_id) {
            return false;
        }
        let id = func_id as usize;
        if self.open.len() <= id {
            self.open.resize(id + 1, 0);
        }
        self.open[id] += 1;
        true
    }
}

impl TreeBuilder {
    /// A builder for planned functions `names` (by func id), of which the first `n_roots` are
    /// ROOT.
    pub fn new(names: Vec<String>, n_roots: u32, limits: Limits) -> Self {
        TreeBuilder {
            names,
            n_roots,
            limits,
            open: HashMap::new(),
            counts: Counts::default(),
            guard: GuardedCalls::default(),
        }
    }

    /// Applies one record; `done` gets each tree it completes (with monotonic `ts_ns`).
    pub fn apply(&mut self, mut r: Record, done: &mut impl FnMut(CallTree)) {
        let key = (r.pid, r.goid);
        match r.step {
            Step::Goexit => {
                // The kernel sends it only inside ROOT: a missing tree lost its ENTER (counted).
                if let Some(tree) = self.open.remove(&key) {
                    done(close_all(tree, key, r.ts_ns, false, &mut self.guard));
                }
            }
            Step::Enter => {
                let Some(name) = self.names.get(r.func_id as usize) else {
                    self.counts.unmatched += 1;
                    return;
                };
                let is_root = r.func_id < self.n_roots;
                if let Some(tree) = self.open.get_mut(&key) {
                    // A call at or above the root's depth means the root frame is gone.
                    if tree
                        .frames
                        .first()
                        .is_some_and(|root| r.depth <= root.depth)
                    {
                        let tree = self.open.remove(&key).expect("present");
                        done(close_all(tree, key, r.ts_ns, false, &mut self.guard));
                    }
                }
                let limits = self.limits;
                let node = CallNode {
                    function: name.clone(),
                    entry_pc: r.entry_pc,
                    return_pc: r.return_pc,
                    start_ns: r.ts_ns,
                    args: r.values.take(),
                    ..CallNode::default()
                };
                match self.open.get_mut(&key) {
                    Some(tree) => {
                        tree.last_ts = r.ts_ns;
                        // Frames deeper than this entry can no longer be live: unwound.
                        while tree.frames.len() > 1
                            && tree.frames.last().is_some_and(|f| f.depth > r.depth)
                        {
                            close_top(tree, r.ts_ns, true, &mut self.guard);
                        }
                        let parent_cut = tree.frames.last().is_some_and(|f| f.node.is_none());
                        let cut = parent_cut
                            || tree.frames.len() > limits.max_depth as usize
                            || tree.nodes >= limits.max_nodes;
                        if cut {
                            tree.truncated += 1;
                            self.counts.truncated += 1;
                        } else {
                            tree.nodes += 1;
                        }
                        tree.frames.push(Frame {
                            func_id: r.func_id,
                            depth: r.depth,
                            node: (!cut).then_some(node),
                        });
                    }
                    None if is_root => {
                        let frame = Frame {
                            func_id: r.func_id,
                            depth: r.depth,
                            node: Some(node),
                        };
                        let tree = OpenTree {
                            frames: vec![frame],
                            nodes: 1,
                            truncated: 0,
                            last_ts: r.ts_ns,
                        };
                        self.open.insert(key, tree);
                    }
                    None => self.counts.unmatched += 1,
                }
            }
            Step::Exit | Step::TailExit => {
                let tail = r.step == Step::TailExit;
                let Some(tree) = self.open.get_mut(&key) else {
                    self.counts.unmatched += u64::from(!tail);
                    return;
                };
                let Some(at) = tree
                    .frames
                    .iter()
                    .rposition(|f| f.func_id == r.func_id && f.depth == r.depth)
                else {
                    self.counts.unmatched += u64::from(!tail);
                    return;
                };
                tree.last_ts = r.ts_ns;
                if let Some(node) = &mut tree.frames[at].node {
                    node.results = r.values.take().or(node.results.take());
                    node.breakdown = r.breakdown.take().or(node.breakdown.take());
                }
                while tree.frames.len() > at + 1 {
                    // A frame at the same depth shares this frame (a tail call): it returned
                    // by this RET too. Any other never returned.
                    let unwound = tree.frames.last().is_some_and(|f| f.depth != r.depth);
                    close_top(tree, r.ts_ns, unwound, &mut self.guard);
                }
                if at == 0 {
                    let tree = self.open.remove(&key).expect("present");
                    done(close_all(tree, key, r.ts_ns, true, &mut self.guard));
                } else {
                    close_top(tree, r.ts_ns, false, &mut self.guard);
                }
            }
        }
    }

    /// Closes every tree still open (as unwound at its last record's time) and hands it to
    /// `done`; each is counted in `open_at_end`.
    pub fn finish(&mut self, done: &mut impl FnMut(CallTree)) {
        let mut keys: Vec<_> = self.open.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let tree = self.open.remove(&key).expect("present");
            let ts = tree.last_ts;
            self.counts.open_at_end += 1;
            done(close_all(tree, key, ts, false, &mut self.guard));
        }
    }
}

/// Closes the innermost open call at `ts` and hangs it under its parent; one that never
/// returned (`unwound`) of a function the guard dropped is counted there instead, its
/// children hung under its parent.
fn close_top(tree: &mut OpenTree, ts: u64, unwound: bool, guard: &mut GuardedCalls) {
    let Some(frame) = tree.frames.pop() else {
        return;
    };
    let Some(mut node) = frame.node else {
        return;
    };
    if unwound && guard.took(frame.func_id) {
        if let Some(parent) = tree.frames.last_mut().and_then(|f| f.node.as_mut()) {
            parent.children.append(&mut node.children);
        }
        return;
    }
    node.close(ts, unwound);
    if let Some(parent) = tree.frames.last_mut().and_then(|f| f.node.as_mut()) {
        parent.children.push(node);
    }
}

/// Closes the whole tree at `ts`: its open calls as unwound, the root as returned when
/// `by_ret` (its own EXIT) else as unwound.
fn close_all(
    mut tree: OpenTree,
    (pid, goid): (u32, u64),
    ts: u64,
    by_ret: bool,
    guard: &mut GuardedCalls,
) -> CallTree {
    while tree.frames.len() > 1 {
        close_top(&mut tree, ts, true, guard);
    }
    let frame = tree.frames.pop().expect("a tree has its root frame");
    let mut root = frame.node.expect("the root is never cut");
    root.close(ts, !by_ret);
    CallTree {
        pid,
        goid,
        ts_ns: root.start_ns,
        root_site: None,
        root,
        truncated: tree.truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: u32 = 0;
    const A: u32 = 1;
    const B: u32 = 2;

    fn builder(max_depth: u32, max_nodes: u32) -> TreeBuilder {
        let names = ["root", "a", "b"].map(str::to_owned).to_vec();
        TreeBuilder::new(
            names,
            1,
            Limits {
                max_depth,
                max_nodes,
            },
        )
    }

    /// Applies records on goroutine 7 of pid 1, written `STEP FUNC DEPTH TS; ...`: STEP is E
    /// (enter), X (exit), T (tail exit) or G (goexit); FUNC is root, a, b or a number.
    fn run(b: &mut TreeBuilder, script: &str) -> Vec<CallTree> {
        let mut trees = Vec::new();
        for record in script.split(';') {
            let fields: Vec<&str> = record.split_whitespace().collect();
            let [step, func, depth, ts] = fields[..] else {
                panic!("bad record {record:?}");
            };
            let step = match step {
                "E" => Step::Enter,
                "X" => Step::Exit,
                "T" => Step::TailExit,
                "G" => Step::Goexit,
                other => panic!("bad step {other}"),
            };
            let func_id = match func {
                "root" => ROOT,
                "a" => A,
                "b" => B,
                id => id.parse().expect("a function id"),
            };
            let r = Record {
                pid: 1,
                goid: 7,
                func_id,
                depth: depth.parse().expect("a depth"),
                ts_ns: ts.parse().expect("a timestamp"),
                step,
                entry_pc: 0,
                return_pc: 0,
                values: None,
                breakdown: None,
            };
            b.apply(r, &mut |t| trees.push(t));
        }
        trees
    }

    /// `name DURATION(child child)` with `!` after an unwound call's name; trees joined by ` | `.
    fn shapes(trees: &[CallTree]) -> String {
        fn shape(n: &CallNode) -> String {
            let kids: Vec<String> = n.children.iter().map(shape).collect();
            let mark = if n.unwound { "!" } else { "" };
            format!("{}{mark} {}({})", n.function, n.duration_ns, kids.join(" "))
        }
        let shapes: Vec<String> = trees.iter().map(|t| shape(&t.root)).collect();
        shapes.join(" | ")
    }

    /// One case a line: `what | max depth, max nodes | records | the trees (those still open at
    /// the end last) | unmatched, truncated, open at the end`.
    const CASES: &str = "
        nesting and durations | 64 100 | E root 100 0; E a 200 10; E b 300 11; X b 300 15; X a 200 20; E a 200 30; X a 200 31; X root 100 50 | root 50(a 10(b 4()) a 1()) | 0 0 0
        a skipped RET closes the frames above as unwound | 64 100 | E root 100 0; E a 200 1; E b 300 2; X a 200 9; X root 100 10 | root 10(a 8(b! 7())) | 0 0 0
        an entry above open frames unwinds them | 64 100 | E root 100 0; E a 200 1; E b 300 2; E b 250 5; X b 250 6; X a 200 7; X root 100 10 | root 10(a 6(b! 3() b 1())) | 0 0 0
        an entry at an open frame's depth is its tail call: nested | 64 100 | E root 100 0; E a 200 1; E b 200 2; X b 200 3; T a 200 3; X root 100 4 | root 4(a 2(b 1())) | 0 0 0
        a goexit closes the whole tree as unwound | 64 100 | E root 100 0; E a 200 1; X a 200 2; E b 200 3; G 9 50 8 | root! 8(a 1() b! 5()) | 0 0 0
        calls already running are not invented | 64 100 | X a 200 1; E a 200 2; X root 100 3 |  | 3 0 0
        tail exits close only their own open call | 64 100 | E root 100 0; T a 200 1; E a 200 2; E b 200 3; T a 200 4; X root 100 5 | root 5(a 2(b 1())) | 0 0 0
        limits cut and count | 1 3 | E root 100 0; E a 200 1; E b 300 2; X b 300 3; X a 200 4; E a 200 5; X a 200 6; E a 200 7; X a 200 8; X root 100 9 | root 9(a 3() a 1()) | 0 2 0
        open trees are reported at the end | 64 100 | E root 100 0; E a 200 4 | root! 4(a! 0()) | 0 0 1
";

    #[test]
    fn records_make_the_expected_trees() {
        for case in CASES.lines().filter(|l| !l.trim().is_empty()) {
            let [what, limits, script, expected, counts] =
                case.split(" | ").collect::<Vec<_>>()[..]
            else {
                panic!("bad case {case:?}");
            };
            let numbers = |s: &str| -> Vec<u64> {
                s.split_whitespace()
                    .map(|n| n.parse().expect("a number"))
                    .collect()
            };
            let (limits, counts) = (numbers(limits), numbers(counts));
            let mut b = builder(limits[0] as u32, limits[1] as u32);
            let mut trees = run(&mut b, script);
            b.finish(&mut |t| trees.push(t));
            assert_eq!(shapes(&trees), expected, "{what}");
            let counts = Counts {
                unmatched: counts[0],
                truncated: counts[1],
                open_at_end: counts[2],
            };
            assert_eq!(b.counts, counts, "{what}");
        }
    }

    /// A call of a function the guard dropped while it was open is left out of its tree (its
    /// children hang under its caller) and counted by function; its other calls stay.
    #[test]
    fn calls_open_when_the_guard_dropped_their_function_are_counted_not_unwound() {
        let mut b = builder(64, 100);
        let script = "E root 100 0; E a 200 1; X a 200 2; E a 200 3; E b 300 4; X b 300 5";
        let mut trees = run(&mut b, script);
        b.guard
            .dropped
            .lock()
            .unwrap()
            .push(crate::session::guard::Dropped {
                function: "a".to_owned(),
                func_id: A,
                after: std::time::Duration::ZERO,
                ts_ns: 6,
                hits_per_s: 0.0,
                overhead_pct: 0.0,
                ns_per_hit: 0.0,
            });
        trees.extend(run(&mut b, "X root 100 9"));
        assert_eq!(shapes(&trees), "root 9(a 1() b 1())");
        assert_eq!(b.counts, Counts::default());
        assert_eq!(b.guard.open, [0, 1]);
    }
}
