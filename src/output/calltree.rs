//! `gotrace graph` output: call trees beneath a root call, rendered for people (indented like
//! ftrace's function_graph), as one JSON object per root call, and as collapsed stacks weighted
//! by self time (`--folded`, and `--svg` through the `inferno` crate's flame graph); with
//! `--breakdown` a call's self time off the CPU is drawn as frames of its own beneath it
//! (`[blocked: chan receive]`, `[runnable]`, `[syscall]`), so widths still sum to the roots'
//! wall time.
//!
//! Folded stacks separate frames with `;`, so a `;` inside a function name (a generic
//! instantiation over a struct shape, `F[go.shape.struct { a int; b int }]`) is written as `,`
//! there; the tree and the JSON keep the exact name.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use serde::Serialize;

use crate::output::breakdown::Breakdown;
use crate::output::clock;
use crate::output::values::NamedValue;

/// One traced call beneath (or at) a root call, on one goroutine. Its JSON object (serde) is
/// `function`, `duration_ns`, `children` (each the same shape), then `unwound` only when set,
/// `args` / `results` only when recorded (each value's object as `gotrace args` prints it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallNode {
    /// The function's Go name.
    pub function: String,
    /// The function's link-time entry (0: unknown).
    #[serde(skip)]
    pub entry_pc: u64,
    /// The link-time return address of the call, in its caller (0: unknown).
    #[serde(skip)]
    pub return_pc: u64,
    /// Monotonic ns (bpf_ktime_get_ns) at entry.
    #[serde(skip)]
    pub start_ns: u64,
    /// From entry to its RET (or to the unwinding that closed it), in ns.
    pub duration_ns: u64,
    /// The traced calls it made, in the order they were made.
    pub children: Vec<CallNode>,
    /// Closed by panic/Goexit unwinding (its RET never ran), not by its RET.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unwound: bool,
    /// The decoded argument and result values, when --args.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<NamedValue>>,
    /// The decoded result values, when --args, from its RET.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<NamedValue>>,
    /// With --breakdown, a call closed by its RET: where its time went (as `gotrace args
    /// --breakdown` gives it), its parts summing to `duration_ns`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
}

/// One call of ROOT with everything recorded beneath it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallTree {
    /// The process.
    pub pid: u32,
    /// The goroutine the root call ran on.
    pub goid: u64,
    /// When the root call entered: CLOCK_MONOTONIC ns (the events' clock, as JSON writes
    /// it); graph turns it into wall-clock ns since the Unix epoch before the human rendering.
    pub ts_ns: u64,
    /// The root's file:line (its definition), when known.
    pub root_site: Option<String>,
    /// The root call, with everything beneath it.
    pub root: CallNode,
    /// Nodes cut by --max-depth / --max-nodes beneath this root.
    pub truncated: u64,
}

impl CallNode {
    /// The time spent in this call outside its traced children (saturating at 0).
    pub fn self_ns(&self) -> u64 {
        let children: u64 = self.children.iter().map(|c| c.duration_ns).sum();
        self.duration_ns.saturating_sub(children)
    }

    /// With --breakdown, this call's self time ([`CallNode::self_ns`]) off the CPU, by part
    /// ([`Breakdown::off_cpu_frames`]: its breakdown less its children's); never more than its
    /// self time in all. Empty without a breakdown.
    pub fn self_off_cpu(&self) -> Vec<(String, u64)> {
        let Some(mut own) = self.breakdown.clone() else {
            return Vec::new();
        };
        for child in &self.children {
            if let Some(theirs) = &child.breakdown {
                own.subtract(theirs);
            }
        }
        let mut left = self.self_ns();
        own.off_cpu_frames()
            .into_iter()
            .filter_map(|(frame, ns)| {
                let ns = ns.min(left);
                left -= ns;
                (ns != 0).then_some((frame, ns))
            })
            .collect()
    }

    /// Closes the call at `ts_ns` (by its RET, or `unwound`): its duration, and the part of
    /// it its breakdown does not attribute.
    pub fn close(&mut self, ts_ns: u64, unwound: bool) {
        self.duration_ns = ts_ns.saturating_sub(self.start_ns);
        self.unwound = unwound;
        if let Some(breakdown) = &mut self.breakdown {
            breakdown.fill_unattributed(self.duration_ns);
        }
    }
}

/// Width of the duration column of the human rendering.
const DURATION_WIDTH: usize = 10;

/// Appends the human block of one root call: a header line (goroutine, process, wall time,
/// root and its `file:line`, total duration, cut calls), one line per call indented two spaces
/// per level (`func();` for a leaf, `func() {` … `}` around children), then a blank line.
pub fn render_human(tree: &CallTree, out: &mut impl io::Write) {
    let when = clock::hms_micros(i128::from(tree.ts_ns));
    let site = tree
        .root_site
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let cut = match tree.truncated {
        0 => String::new(),
        n => format!(", {n} calls cut by --max-depth/--max-nodes"),
    };
    let _ = writeln!(
        out,
        "goid {} pid {} {when} {}{site} {}{cut}",
        tree.goid,
        tree.pid,
        tree.root.function,
        clock::human_duration(tree.root.duration_ns)
    );
    render_node(&tree.root, 0, out);
    let _ = writeln!(out);
}

/// Appends the lines of `node` at indentation `depth`, then its children's.
fn render_node(node: &CallNode, depth: usize, out: &mut impl io::Write) {
    let indent = "  ".repeat(depth);
    let duration = clock::human_duration(node.duration_ns);
    let args = node
        .args
        .as_deref()
        .map(|values| human_list(values, true))
        .unwrap_or_default();
    let results = node
        .results
        .as_deref()
        .map(|values| format!(" = ({})", human_list(values, false)))
        .unwrap_or_default();
    let unwound = if node.unwound {
        " /* unwound by panic or runtime.Goexit */"
    } else {
        ""
    };
    let name = &node.function;
    let parts = node
        .breakdown
        .as_ref()
        .map(|b| format!(" /* {} */", b.human()))
        .unwrap_or_default();
    if node.children.is_empty() {
        let _ = writeln!(
            out,
            "{duration:>DURATION_WIDTH$} | {indent}{name}({args}){results};{unwound}{parts}"
        );
        return;
    }
    let _ = writeln!(
        out,
        "{duration:>DURATION_WIDTH$} | {indent}{name}({args}) {{{unwound}{parts}"
    );
    for child in &node.children {
        render_node(child, depth + 1, out);
    }
    let _ = writeln!(
        out,
        "{:>DURATION_WIDTH$} | {indent}}}{results} /* {name} */",
        ""
    );
}

/// `a=1, b="x"` (named) or `1, "x"`, from the values' human text.
fn human_list(values: &[NamedValue], named: bool) -> String {
    values
        .iter()
        .map(|v| {
            if named {
                format!("{}={}", v.label(), v.human())
            } else {
                v.human()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One root call as the JSON record of `gotrace graph --json` (a `"tree"` line, serde): `pid`,
/// `goid`, `ts_ns` (CLOCK_MONOTONIC), `site` (when known), `truncated_calls` (calls cut by
/// --depth / --max-nodes), and the root's own [`CallNode`] fields.
#[derive(Serialize)]
pub struct TreeLine<'t> {
    pid: u32,
    goid: u64,
    #[serde(serialize_with = "crate::output::lines::exact_u64")]
    ts_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<&'t str>,
    truncated_calls: u64,
    #[serde(flatten)]
    root: &'t CallNode,
}

impl<'t> TreeLine<'t> {
    /// The `tree` JSON line of `tree`.
    pub fn new(tree: &'t CallTree) -> Self {
        TreeLine {
            pid: tree.pid,
            goid: tree.goid,
            ts_ns: tree.ts_ns,
            site: tree.root_site.as_deref(),
            truncated_calls: tree.truncated,
            root: &tree.root,
        }
    }
}

/// Collapsed stacks of many call trees (`root;child;grandchild self_ns`), each stack weighted
/// by the self time of its last frame summed over the trees: the input of flamegraph.pl,
/// speedscope and inferno, and of [`FoldedStacks::write_svg`].
#[derive(Debug, Default)]
pub struct FoldedStacks {
    /// Stack → total self ns, sorted (the order flame graph tools expect).
    stacks: BTreeMap<String, u64>,
    roots: BTreeSet<String>,
    trees: u64,
    total_ns: u64,
    truncated: u64,
}

impl FoldedStacks {
    /// No stacks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every call of `tree` under its stack from the root.
    pub fn add(&mut self, tree: &CallTree) {
        self.trees += 1;
        self.total_ns = self.total_ns.saturating_add(tree.root.duration_ns);
        self.truncated += tree.truncated;
        self.roots.insert(tree.root.function.clone());
        let mut path = String::new();
        self.add_node(&tree.root, &mut path);
    }

    /// Adds `node`'s self time under `path;node` (with --breakdown, its time off the CPU as
    /// frames of their own beneath it: `path;node;[blocked: chan receive]`), then its
    /// children's.
    fn add_node(&mut self, node: &CallNode, path: &mut String) {
        let parent_len = path.len();
        if parent_len > 0 {
            path.push(';');
        }
        path.push_str(&node.function.replace(';', ","));
        let off_cpu = node.self_off_cpu();
        let on_cpu = node.self_ns() - off_cpu.iter().map(|(_, ns)| ns).sum::<u64>();
        let weight = self.stacks.entry(path.clone()).or_default();
        *weight = weight.saturating_add(on_cpu);
        for (frame, ns) in off_cpu {
            let weight = self.stacks.entry(format!("{path};{frame}")).or_default();
            *weight = weight.saturating_add(ns);
        }
        for child in &node.children {
            self.add_node(child, path);
        }
        path.truncate(parent_len);
    }

    /// The root calls added.
    pub fn trees(&self) -> u64 {
        self.trees
    }

    /// The sum of the root calls' durations (which the stacks' weights add up to when every
    /// call's children fit in it).
    pub fn total_ns(&self) -> u64 {
        self.total_ns
    }

    /// One line for a flame graph's subtitle: how many root calls of which roots, their total
    /// duration, and the calls cut by the bounds.
    pub fn summary(&self) -> String {
        let roots: Vec<&str> = self.roots.iter().map(String::as_str).collect();
        let calls = if self.trees == 1 { "call" } else { "calls" };
        let of = match roots.as_slice() {
            [] => format!("root {calls}"),
            [root] => format!("{calls} of {root}"),
            few if few.len() <= 3 => format!("root {calls} ({})", few.join(", ")),
            more => format!(
                "root {calls} ({}, … {} roots)",
                more[..3].join(", "),
                more.len()
            ),
        };
        let cut = match self.truncated {
            0 => String::new(),
            n => format!(", {n} calls cut by --max-depth/--max-nodes"),
        };
        format!(
            "{} {of}, {} in all{cut}",
            self.trees,
            clock::human_duration(self.total_ns)
        )
    }

    /// Writes one `stack self_ns` line per distinct stack, sorted by stack.
    pub fn write_folded(&self, w: &mut impl io::Write) -> io::Result<()> {
        for (stack, ns) in &self.stacks {
            writeln!(w, "{stack} {ns}")?;
        }
        Ok(())
    }

    /// Writes an interactive flame graph (inferno's SVG, with its search and zoom) with
    /// `title` and `subtitle`, frame widths in self nanoseconds. With no time recorded inferno
    /// writes its placeholder image and this returns an `InvalidData` error.
    pub fn write_svg(&self, w: &mut impl io::Write, title: &str, subtitle: &str) -> io::Result<()> {
        let lines: Vec<String> = self
            .stacks
            .iter()
            .map(|(stack, ns)| format!("{stack} {ns}"))
            .collect();
        let mut options = inferno::flamegraph::Options::default();
        options.title = title.to_owned();
        options.subtitle = Some(subtitle.to_owned());
        options.count_name = "ns".to_owned();
        options.name_type = "Function:".to_owned();
        // The same function gets the same colour in every graph.
        options.deterministic = true;
        // The lines come from a BTreeMap: already sorted.
        options.no_sort = true;
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), w)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(function: &str, start_ns: u64, duration_ns: u64, children: Vec<CallNode>) -> CallNode {
        CallNode {
            function: function.to_owned(),
            start_ns,
            duration_ns,
            children,
            ..CallNode::default()
        }
    }

    /// A decoded value `name` of type `type_name`: `value`, printed `text`.
    fn value(name: &str, type_name: &str, value: serde_json::Value, text: &str) -> NamedValue {
        NamedValue {
            name: name.into(),
            expr: None,
            type_name: Some(type_name.into()),
            value,
            text: text.into(),
            hex: None,
            pointee: None,
            len_cap: None,
            truncated: None,
            reason: None,
        }
    }

    /// main.handle (100) → main.parse (30) → main.leaf (10); main.handle → main.leaf (20);
    /// main.handle → main.work (40, unwound, with args) → main.leaf (5). Self times: handle 10,
    /// parse 20, leaf 10 + 20 + 5, work 35.
    fn sample() -> CallTree {
        let mut work = node("main.work", 60, 40, vec![node("main.leaf", 61, 5, vec![])]);
        work.unwound = true;
        work.args = Some(vec![
            value("n", "int", json!(3), "3"),
            value("s", "string", json!("x"), "\"x\""),
        ]);
        let mut leaf = node("main.leaf", 40, 20, vec![]);
        leaf.results = Some(vec![value("~r0", "int", json!(7), "7")]);
        CallTree {
            pid: 4242,
            goid: 17,
            ts_ns: 1_700_000_000_123_456_789,
            root_site: Some("/src/main.go:42".into()),
            root: node(
                "main.handle",
                0,
                100,
                vec![
                    node("main.parse", 5, 30, vec![node("main.leaf", 6, 10, vec![])]),
                    leaf,
                    work,
                ],
            ),
            truncated: 2,
        }
    }

    fn folded(stacks: &FoldedStacks) -> Vec<(String, u64)> {
        let mut text = Vec::new();
        stacks.write_folded(&mut text).unwrap();
        String::from_utf8(text)
            .unwrap()
            .lines()
            .map(|line| {
                let (stack, ns) = line.rsplit_once(' ').unwrap();
                (stack.to_owned(), ns.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn folded_stacks_are_weighted_by_self_time_and_add_up() {
        let tree = sample();
        let mut stacks = FoldedStacks::new();
        stacks.add(&tree);
        stacks.add(&tree);
        let lines = folded(&stacks);
        let expected = [
            ("main.handle", 10),
            ("main.handle;main.leaf", 20),
            ("main.handle;main.parse", 20),
            ("main.handle;main.parse;main.leaf", 10),
            ("main.handle;main.work", 35),
            ("main.handle;main.work;main.leaf", 5),
        ];
        let expected: Vec<(String, u64)> = expected
            .iter()
            .map(|(s, ns)| (s.to_string(), 2 * ns))
            .collect();
        assert_eq!(lines, expected);
        let sum: u64 = lines.iter().map(|(_, ns)| ns).sum();
        assert_eq!(sum, 2 * tree.root.duration_ns);
        assert_eq!(sum, stacks.total_ns());
        assert_eq!(stacks.trees(), 2);
        assert_eq!(
            stacks.summary(),
            "2 calls of main.handle, 200ns in all, 4 calls cut by --max-depth/--max-nodes"
        );
    }

    #[test]
    fn children_longer_than_their_parent_leave_no_negative_self_time() {
        // A clock step or a cut can make the children outlast their parent.
        let tree = CallTree {
            pid: 1,
            goid: 1,
            ts_ns: 0,
            root_site: None,
            root: node("a", 0, 10, vec![node("b;c", 0, 15, vec![])]),
            truncated: 0,
        };
        let mut stacks = FoldedStacks::new();
        stacks.add(&tree);
        assert_eq!(
            folded(&stacks),
            vec![("a".to_string(), 0), ("a;b,c".to_string(), 15)]
        );
    }

    #[test]
    fn human_block_is_indented_like_function_graph() {
        let tree = sample();
        let mut text = Vec::new();
        render_human(&tree, &mut text);
        let text = String::from_utf8(text).unwrap();
        let when = clock::hms_micros(i128::from(tree.ts_ns));
        let expected = format!(
            "goid 17 pid 4242 {when} main.handle (/src/main.go:42) 100ns, 2 calls cut by --max-depth/--max-nodes
     100ns | main.handle() {{
      30ns |   main.parse() {{
      10ns |     main.leaf();
           |   }} /* main.parse */
      20ns |   main.leaf() = (7);
      40ns |   main.work(n=3, s=\"x\") {{ /* unwound by panic or runtime.Goexit */
       5ns |     main.leaf();
           |   }} /* main.work */
           | }} /* main.handle */

"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn json_has_the_issue_shape() {
        let tree = sample();
        let mut line = Vec::new();
        crate::output::lines::write_json_line(&mut line, "tree", &TreeLine::new(&tree)).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let leaf = |function: &str, duration_ns: u64| json!({"function": function, "duration_ns": duration_ns, "children": []});
        let expected = json!({
            "type": "tree",
            "pid": 4242,
            "goid": 17,
            "ts_ns": "1700000000123456789",
            "site": "/src/main.go:42",
            "truncated_calls": 2,
            "function": "main.handle",
            "duration_ns": 100,
            "children": [
                {"function": "main.parse", "duration_ns": 30, "children": [leaf("main.leaf", 10)]},
                {"function": "main.leaf", "duration_ns": 20, "children": [],
                 "results": [{"name": "~r0", "type": "int", "value": 7}]},
                {"function": "main.work", "duration_ns": 40, "unwound": true,
                 "children": [leaf("main.leaf", 5)],
                 "args": [{"name": "n", "type": "int", "value": 3},
                          {"name": "s", "type": "string", "value": "x"}]},
            ],
        });
        assert_eq!(value, expected);
    }

    #[test]
    fn svg_names_the_root_and_carries_title_and_subtitle() {
        let mut stacks = FoldedStacks::new();
        stacks.add(&sample());
        let mut svg = Vec::new();
        stacks
            .write_svg(&mut svg, "gotrace graph main.handle", &stacks.summary())
            .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..100]);
        for needle in [
            "gotrace graph main.handle",
            "1 call of main.handle",
            "main.work",
        ] {
            assert!(svg.contains(needle), "the SVG lacks {needle:?}");
        }
    }

    #[test]
    fn an_empty_flame_graph_is_an_error_not_a_silent_blank() {
        let mut svg = Vec::new();
        let err = FoldedStacks::new()
            .write_svg(&mut svg, "t", "s")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
