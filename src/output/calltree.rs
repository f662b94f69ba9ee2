//! Call trees of `gotrace graph` (STUB in branch h11 with the agreed signatures, so that the
//! core compiles and its tests run; h12's renderers replace this file when merged).

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// One traced call beneath (or at) a root call, on one goroutine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallNode {
    pub function: String,
    /// Monotonic ns (bpf_ktime_get_ns) at entry.
    pub start_ns: u64,
    pub duration_ns: u64,
    pub children: Vec<CallNode>,
    /// Closed by panic/Goexit unwinding (its RET never ran), not by its RET.
    pub unwound: bool,
    /// Already-rendered argument and result values (the args machinery), when --args.
    pub args: Option<Vec<(String, serde_json::Value, String)>>,
    pub results: Option<Vec<(String, serde_json::Value, String)>>,
}

/// One call of ROOT with everything recorded beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTree {
    pub pid: u32,
    pub goid: u64,
    /// Wall-clock ns since the Unix epoch at the root's entry (converted by the caller).
    pub ts_ns: u64,
    /// The root's file:line (its definition), when known.
    pub root_site: Option<String>,
    pub root: CallNode,
    /// Nodes cut by --max-depth / --max-nodes beneath this root.
    pub truncated: u64,
}

/// One block per root call, indented like ftrace's function_graph.
pub fn render_human(tree: &CallTree, out: &mut impl std::fmt::Write) {
    let _ = writeln!(
        out,
        "goroutine {} (pid {}) {} {} {}",
        tree.goid,
        tree.pid,
        tree.ts_ns,
        tree.root_site.as_deref().unwrap_or("?"),
        crate::output::clock::human_duration(tree.root.duration_ns)
    );
    fn node(n: &CallNode, level: usize, out: &mut impl std::fmt::Write) {
        let dur = crate::output::clock::human_duration(n.duration_ns);
        let mark = if n.unwound { " (unwound)" } else { "" };
        let pad = "  ".repeat(level);
        if n.children.is_empty() {
            let _ = writeln!(out, "{dur:>10} | {pad}{}();{mark}", n.function);
        } else {
            let _ = writeln!(out, "{dur:>10} | {pad}{}() {{{mark}", n.function);
            for c in &n.children {
                node(c, level + 1, out);
            }
            let _ = writeln!(out, "{:>10} | {pad}}}", "");
        }
    }
    node(&tree.root, 0, out);
}

fn node_json(n: &CallNode) -> Value {
    let mut v = json!({"function": n.function, "duration_ns": n.duration_ns,
                       "children": n.children.iter().map(node_json).collect::<Vec<_>>()});
    if n.unwound {
        v["unwound"] = json!(true);
    }
    v
}

/// The JSON object of one tree.
pub fn tree_json(tree: &CallTree) -> Value {
    let mut v = node_json(&tree.root);
    v["type"] = json!("tree");
    v["pid"] = json!(tree.pid);
    v["goid"] = json!(tree.goid);
    v["ts_ns"] = json!(tree.ts_ns);
    v["truncated"] = json!(tree.truncated);
    v
}

/// Collapsed stacks weighted by self time.
#[derive(Debug, Default)]
pub struct FoldedStacks {
    stacks: BTreeMap<String, u64>,
}

impl FoldedStacks {
    /// Adds every node of `tree`.
    pub fn add(&mut self, tree: &CallTree) {
        fn walk(n: &CallNode, prefix: &str, stacks: &mut BTreeMap<String, u64>) {
            let path = if prefix.is_empty() {
                n.function.clone()
            } else {
                format!("{prefix};{}", n.function)
            };
            let children: u64 = n.children.iter().map(|c| c.duration_ns).sum();
            *stacks.entry(path.clone()).or_default() += n.duration_ns.saturating_sub(children);
            for c in &n.children {
                walk(c, &path, stacks);
            }
        }
        walk(&tree.root, "", &mut self.stacks);
    }

    /// `stack self_ns` lines.
    pub fn write_folded(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        for (stack, ns) in &self.stacks {
            writeln!(w, "{stack} {ns}")?;
        }
        Ok(())
    }

    /// The flame graph (h12 implements it with inferno).
    pub fn write_svg(
        &self,
        _w: &mut impl std::io::Write,
        _title: &str,
        _subtitle: &str,
    ) -> anyhow::Result<()> {
        anyhow::bail!("--svg is not available in this build (the renderer is not merged yet)")
    }
}
