//! Building call trees from `gotrace graph` records: per (pid, goid) a stack of open calls.
//! An ENTER pushes; an EXIT pops to its own call (same function, same depth), closing the calls
//! above it that never returned (panic unwinding: `unwound`); the EXIT of the outermost ROOT
//! call completes a tree, and so does a GOEXIT (runtime.Goexit ended the goroutine: every open
//! call, the root too, is `unwound` there). Nothing is invented: an EXIT without its open call is
//! counted `unmatched`, and calls already running when tracing began never open.

use std::collections::HashMap;

use crate::output::calltree::{CallNode, CallTree};
use crate::output::values::NamedValue;

/// What one record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
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
    pub pid: u32,
    pub goid: u64,
    pub func_id: u32,
    /// g.stack.hi − SP: the same at a call's entry and its RETs.
    pub depth: u64,
    pub ts_ns: u64,
    pub step: Step,
    /// --args: the arguments (ENTER) or results (EXIT) captured at the site.
    pub values: Option<Vec<NamedValue>>,
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
    pub counts: Counts,
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
        }
    }

    /// Applies one record; `done` gets each tree it completes (with monotonic `ts_ns`).
    pub fn apply(&mut self, mut r: Record, done: &mut impl FnMut(CallTree)) {
        let key = (r.pid, r.goid);
        match r.step {
            Step::Goexit => {
                // The kernel sends it only inside ROOT: a missing tree lost its ENTER (counted).
                if let Some(tree) = self.open.remove(&key) {
                    done(close_all(tree, key, r.ts_ns, false));
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
                        done(close_all(tree, key, r.ts_ns, false));
                    }
                }
                let limits = self.limits;
                let node = CallNode {
                    function: name.clone(),
                    start_ns: r.ts_ns,
                    duration_ns: 0,
                    children: Vec::new(),
                    unwound: false,
                    args: r.values.take(),
                    results: None,
                };
                match self.open.get_mut(&key) {
                    Some(tree) => {
                        tree.last_ts = r.ts_ns;
                        // Frames deeper than this entry can no longer be live: unwound.
                        while tree.frames.len() > 1
                            && tree.frames.last().is_some_and(|f| f.depth > r.depth)
                        {
                            close_top(tree, r.ts_ns, true);
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
                }
                while tree.frames.len() > at + 1 {
                    // A frame at the same depth shares this frame (a tail call): it returned
                    // by this RET too. Any other never returned.
                    let unwound = tree.frames.last().is_some_and(|f| f.depth != r.depth);
                    close_top(tree, r.ts_ns, unwound);
                }
                if at == 0 {
                    let tree = self.open.remove(&key).expect("present");
                    done(close_all(tree, key, r.ts_ns, true));
                } else {
                    close_top(tree, r.ts_ns, false);
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
            done(close_all(tree, key, ts, false));
        }
    }
}

/// Closes the innermost open call at `ts` and hangs it under its parent.
fn close_top(tree: &mut OpenTree, ts: u64, unwound: bool) {
    let Some(frame) = tree.frames.pop() else {
        return;
    };
    let Some(mut node) = frame.node else {
        return;
    };
    node.duration_ns = ts.saturating_sub(node.start_ns);
    node.unwound = unwound;
    if let Some(parent) = tree.frames.last_mut().and_then(|f| f.node.as_mut()) {
        parent.children.push(node);
    }
}

/// Closes the whole tree at `ts`: its open calls as unwound, the root as returned when
/// `by_ret` (its own EXIT) else as unwound.
fn close_all(mut tree: OpenTree, (pid, goid): (u32, u64), ts: u64, by_ret: bool) -> CallTree {
    while tree.frames.len() > 1 {
        close_top(&mut tree, ts, true);
    }
    let frame = tree.frames.pop().expect("a tree has its root frame");
    let mut root = frame.node.expect("the root is never cut");
    root.duration_ns = ts.saturating_sub(root.start_ns);
    root.unwound = !by_ret;
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

    /// Applies (step, func, depth, ts) records on goroutine 7 of pid 1.
    fn run(b: &mut TreeBuilder, records: &[(Step, u32, u64, u64)]) -> Vec<CallTree> {
        let mut trees = Vec::new();
        for &(step, func_id, depth, ts_ns) in records {
            let r = Record {
                pid: 1,
                goid: 7,
                func_id,
                depth,
                ts_ns,
                step,
                values: None,
            };
            b.apply(r, &mut |t| trees.push(t));
        }
        trees
    }

    /// `name(child child)` with `!` after an unwound call's name.
    fn shape(n: &CallNode) -> String {
        let kids: Vec<String> = n.children.iter().map(shape).collect();
        let mark = if n.unwound { "!" } else { "" };
        format!("{}{mark}({})", n.function, kids.join(" "))
    }

    use Step::{Enter as E, Exit as X, Goexit as G, TailExit as T};

    #[test]
    fn nesting_and_durations() {
        let mut b = builder(64, 100);
        let trees = run(
            &mut b,
            &[
                (E, ROOT, 100, 0),
                (E, A, 200, 10),
                (E, B, 300, 11),
                (X, B, 300, 15),
                (X, A, 200, 20),
                (E, A, 200, 30),
                (X, A, 200, 31),
                (X, ROOT, 100, 50),
            ],
        );
        assert_eq!(trees.len(), 1);
        assert_eq!(shape(&trees[0].root), "root(a(b()) a())");
        assert_eq!(trees[0].root.duration_ns, 50);
        assert_eq!(trees[0].root.children[0].duration_ns, 10);
        assert_eq!(b.counts, Counts::default());
    }

    #[test]
    fn a_skipped_ret_closes_the_frames_above_as_unwound() {
        let mut b = builder(64, 100);
        let trees = run(
            &mut b,
            &[
                (E, ROOT, 100, 0),
                (E, A, 200, 1),
                (E, B, 300, 2),
                (X, A, 200, 9),
                (X, ROOT, 100, 10),
            ],
        );
        assert_eq!(shape(&trees[0].root), "root(a(b!()))");
        assert_eq!(trees[0].root.children[0].children[0].duration_ns, 7);
    }

    #[test]
    fn an_entry_above_open_frames_unwinds_them() {
        let mut b = builder(64, 100);
        let trees = run(
            &mut b,
            &[
                (E, ROOT, 100, 0),
                (E, A, 200, 1),
                (E, B, 300, 2),
                (E, B, 250, 5),
                (X, B, 250, 6),
                (X, A, 200, 7),
                (X, ROOT, 100, 10),
            ],
        );
        assert_eq!(shape(&trees[0].root), "root(a(b!() b()))");
        assert_eq!(trees[0].root.children[0].children[0].duration_ns, 3);
    }

    /// A call entered at the depth of an open one shares its frame (a tail call): nested.
    #[test]
    fn an_entry_at_an_open_frames_depth_is_its_tail_call() {
        let mut b = builder(64, 100);
        let trees = run(
            &mut b,
            &[
                (E, ROOT, 100, 0),
                (E, A, 200, 1),
                (E, B, 200, 2),
                (X, B, 200, 3),
                (T, A, 200, 3),
                (X, ROOT, 100, 4),
            ],
        );
        assert_eq!(shape(&trees[0].root), "root(a(b()))");
        assert_eq!(b.counts, Counts::default());
    }

    #[test]
    fn a_goexit_closes_the_whole_tree_as_unwound() {
        let mut b = builder(64, 100);
        let trees = run(
            &mut b,
            &[
                (E, ROOT, 100, 0),
                (E, A, 200, 1),
                (X, A, 200, 2),
                (E, B, 200, 3),
                (G, 9, 50, 8),
            ],
        );
        assert_eq!(shape(&trees[0].root), "root!(a() b!())");
        assert_eq!(trees[0].root.duration_ns, 8);
        assert_eq!(trees[0].root.children[1].duration_ns, 5);
        assert_eq!(b.counts, Counts::default());
    }

    #[test]
    fn calls_already_running_are_not_invented() {
        let mut b = builder(64, 100);
        let trees = run(&mut b, &[(X, A, 200, 1), (E, A, 200, 2), (X, ROOT, 100, 3)]);
        assert!(trees.is_empty());
        assert_eq!(b.counts.unmatched, 3);
    }

    #[test]
    fn tail_exits_close_only_their_own_open_call() {
        let mut b = builder(64, 100);
        let trees = run(
            &mut b,
            &[
                (E, ROOT, 100, 0),
                (T, A, 200, 1),
                (E, A, 200, 2),
                (E, B, 200, 3),
                (T, A, 200, 4),
                (X, ROOT, 100, 5),
            ],
        );
        assert_eq!(shape(&trees[0].root), "root(a(b()))");
        assert_eq!(b.counts.unmatched, 0);
    }

    #[test]
    fn limits_cut_and_count() {
        let mut b = builder(1, 3);
        let trees = run(
            &mut b,
            &[
                (E, ROOT, 100, 0),
                (E, A, 200, 1),
                (E, B, 300, 2),
                (X, B, 300, 3),
                (X, A, 200, 4),
                (E, A, 200, 5),
                (X, A, 200, 6),
                (E, A, 200, 7),
                (X, A, 200, 8),
                (X, ROOT, 100, 9),
            ],
        );
        assert_eq!(shape(&trees[0].root), "root(a() a())");
        assert_eq!(trees[0].truncated, 2);
        assert_eq!(b.counts.truncated, 2);
    }

    #[test]
    fn open_trees_are_reported_at_the_end() {
        let mut b = builder(64, 100);
        assert!(run(&mut b, &[(E, ROOT, 100, 0), (E, A, 200, 4)]).is_empty());
        let mut trees = Vec::new();
        b.finish(&mut |t| trees.push(t));
        assert_eq!(shape(&trees[0].root), "root!(a!())");
        assert_eq!(trees[0].root.duration_ns, 4);
        assert_eq!(b.counts.open_at_end, 1);
    }
}
