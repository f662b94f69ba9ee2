//! `gotrace graph` against real Go processes (issue 11). The oracle is the target itself:
//! `examples/go-targets/calltree` records each root call's tree from `runtime.Callers` at every
//! function entry and prints it with the root's goroutine and duration; gotrace's trees must
//! equal that record node for node. The tests in this file run one at a time (they share the
//! kernel's uprobe state and the machine's two cores).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use common::chromium::{chromium, screenshot};
use common::gotrace::{gotrace, user_error_problems, GOTRACE};
use common::serial::serial;
use common::targets::{matrix_binary, GoBinary, Variant};
use common::traced::{field, own_count, split_output};
use common::{require, require_root};
use serde_json::Value;

/// What one traced run gave.
struct Run {
    output: Output,
    /// gotrace's JSON objects after `attached`.
    json: Vec<Value>,
    /// The target's own lines.
    own: Vec<String>,
}

/// `gotrace graph --json --depth 0 [extra] main.root 'main.*' -- BINARY ARGS` with GOMAXPROCS.
fn trace(binary: &GoBinary, gomaxprocs: u32, extra: &[&str], target_args: &[&str]) -> Run {
    let mut command = Command::new(GOTRACE);
    command
        .args(["graph", "--json", "--depth", "0"])
        .args(extra)
        .args(["main.root", "main.*", "--"])
        .arg(&binary.path)
        .args(target_args)
        .env("GOMAXPROCS", gomaxprocs.to_string());
    let output = command.output().expect("running gotrace");
    let (own, json) = split_output(&output.stdout);
    Run { output, json, own }
}

/// One root call as the target recorded it.
#[derive(Debug)]
struct OwnTree {
    goid: u64,
    ns: u64,
    shape: String,
}

/// The target's `tree goid=N ns=D SHAPE` lines.
fn own_trees(own: &[String]) -> Vec<OwnTree> {
    own.iter()
        .filter_map(|l| l.strip_prefix("tree "))
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let mut value = |key: &str| {
                let part = parts.next().unwrap();
                part.strip_prefix(key).unwrap().parse::<u64>().unwrap()
            };
            let goid = value("goid=");
            let ns = value("ns=");
            OwnTree {
                goid,
                ns,
                shape: parts.next().unwrap().to_owned(),
            }
        })
        .collect()
}

/// A JSON tree node in the target's shape syntax: `name{child child}`.
fn shape(node: &Value) -> String {
    let kids: Vec<String> = node["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(shape)
        .collect();
    format!(
        "{}{{{}}}",
        node["function"].as_str().unwrap(),
        kids.join(" ")
    )
}

fn trees(json: &[Value]) -> Vec<&Value> {
    json.iter().filter(|v| v["type"] == "tree").collect()
}

fn summary(json: &[Value]) -> &Value {
    let last = json.last().expect("a summary line");
    assert_eq!(last["type"], "summary", "last JSON line: {last}");
    last
}

/// gotrace's trees by goid, in the target's shape syntax (each root call runs on a goroutine
/// of its own).
fn traced_shapes(json: &[Value]) -> BTreeMap<u64, String> {
    let mut shapes = BTreeMap::new();
    for tree in trees(json) {
        let old = shapes.insert(field(tree, "goid"), shape(tree));
        assert!(old.is_none(), "two trees on goroutine {}", tree["goid"]);
    }
    shapes
}

/// The target's `goexit goid=N open=A,B` lines: the calls of each goroutine that
/// runtime.Goexit ended, outermost first.
fn own_goexits(own: &[String]) -> BTreeMap<u64, Vec<String>> {
    own.iter()
        .filter_map(|l| l.strip_prefix("goexit goid="))
        .map(|l| {
            let (goid, open) = l.split_once(" open=").unwrap();
            let open = open.split(',').map(str::to_owned).collect();
            (goid.parse().unwrap(), open)
        })
        .collect()
}

/// Every node of a JSON tree with the names from the root to it, depth first.
fn paths(node: &Value) -> Vec<(Vec<String>, &Value)> {
    let name = node["function"].as_str().unwrap().to_owned();
    let mut all = vec![(vec![name.clone()], node)];
    for child in node["children"].as_array().unwrap() {
        for (mut path, n) in paths(child) {
            path.insert(0, name.clone());
            all.push((path, n));
        }
    }
    all
}

/// Acceptance: gotrace's trees equal the target's record, node for node; only the calls that
/// panicked (main.boom) and the calls runtime.Goexit ended (the target's `goexit` record) are
/// unwound, and a Goexit tree comes out when the goroutine ends, not at the end of tracing
/// (`open_at_end` 0); each call lasts at least as long as its children; the summary counts
/// every root call and nothing lost.
fn check_trees(version: &'static str, goarch: &'static str, variant: Variant, gomaxprocs: u32) {
    let Some(binary) = require(matrix_binary(version, goarch, variant, "calltree")) else {
        return;
    };
    let label = format!("{binary} GOMAXPROCS={gomaxprocs}");
    let run = trace(&binary, gomaxprocs, &[], &["-rounds", "2"]);
    assert!(
        run.output.status.success(),
        "{label}: {:?}\n{}",
        run.output.status,
        String::from_utf8_lossy(&run.output.stderr)
    );
    let own = own_trees(&run.own);
    assert_eq!(own.len() as u64, own_count(&run.own, "roots"), "{label}");
    let expected: BTreeMap<u64, String> = own.iter().map(|t| (t.goid, t.shape.clone())).collect();
    let traced = traced_shapes(&run.json);
    for (goid, shape) in &expected {
        assert_eq!(traced.get(goid), Some(shape), "{label}: goroutine {goid}");
    }
    assert_eq!(traced.len(), expected.len(), "{label}: {traced:#?}");
    let goexits = own_goexits(&run.own);
    assert_eq!(goexits.len(), 2, "{label}: one Goexit per round");
    let mut booms = 0;
    for tree in trees(&run.json) {
        let ended = goexits.get(&field(tree, "goid"));
        for (path, node) in paths(tree) {
            let boom = node["function"] == "main.boom";
            booms += u64::from(boom);
            let by_goexit = ended.is_some_and(|open| open.starts_with(&path));
            assert_eq!(
                node["unwound"].as_bool().unwrap_or(false),
                boom || by_goexit,
                "{label}: {node}"
            );
            let children: u64 = node["children"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| field(c, "duration_ns"))
                .sum();
            assert!(children <= field(node, "duration_ns"), "{label}: {node}");
        }
    }
    assert_eq!(booms, 2, "{label}: one main.boom per panic shape and round");
    let summary = summary(&run.json);
    assert_eq!(
        field(summary, "trees"),
        own.len() as u64,
        "{label}: {summary}"
    );
    for key in [
        "lost",
        "unreadable",
        "unmatched",
        "truncated_calls",
        "in_flight_at_end",
    ] {
        assert_eq!(field(summary, key), 0, "{label}: {key} in {summary}");
    }
}

/// Every build of the matrix at GOMAXPROCS 1 and 2.
fn check_version(version: &'static str) {
    if !require_root() {
        return;
    }
    let _serial = serial();
    for goarch in ["amd64", "386"] {
        for &variant in Variant::for_goarch(goarch) {
            for gomaxprocs in [1, 2] {
                check_trees(version, goarch, variant, gomaxprocs);
            }
        }
    }
}

#[test]
fn trees_equal_the_targets_record_go1_19() {
    check_version("1.19");
}

#[test]
fn trees_equal_the_targets_record_go1_27() {
    check_version("1.27.3");
}

/// `--min`: only the root calls slower than the threshold, and all of them. The target's
/// slow roots sleep 200 ms, the others take a few ms at most; the threshold lies between, far
/// enough from both that a loaded machine cannot move a root across it.
#[test]
fn min_keeps_only_and_all_slow_roots() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let Some(binary) = require(matrix_binary("1.27.3", "amd64", Variant::Plain, "calltree")) else {
        return;
    };
    let run = trace(
        &binary,
        2,
        &["--min", "100ms"],
        &["-rounds", "3", "-slow", "200ms"],
    );
    assert!(run.output.status.success(), "{:?}", run.output);
    let own = own_trees(&run.own);
    for tree in &own {
        assert!(
            tree.ns < 50_000_000 || tree.ns > 150_000_000,
            "the oracle's groups overlap the threshold: {tree:?}"
        );
    }
    let slow: Vec<u64> = own
        .iter()
        .filter(|t| t.ns > 100_000_000)
        .map(|t| t.goid)
        .collect();
    assert_eq!(slow.len(), 3, "{own:?}");
    let traced: Vec<u64> = traced_shapes(&run.json).into_keys().collect();
    let mut expected = slow.clone();
    expected.sort_unstable();
    assert_eq!(traced, expected);
    let summary = summary(&run.json);
    assert_eq!(field(summary, "trees"), 3, "{summary}");
    assert_eq!(
        field(summary, "below_min"),
        own.len() as u64 - 3,
        "{summary}"
    );
}

/// `--args` on one matrix binary: the values in the trees are the ones the target records.
/// Beneath each root call, example/rec.goid (which the target's record uses for its `tree
/// goid=N` line) returns that tree's goroutine id, and strconv.ParseInt, which it calls, gets
/// its decimal text as argument `s`; main.root's argument `kind` takes each shape once
/// (-rounds 1); every capture decodes (summary `malformed` 0).
fn check_args(version: &'static str, goarch: &'static str, variant: Variant) {
    let Some(binary) = require(matrix_binary(version, goarch, variant, "calltree")) else {
        return;
    };
    // gotrace's lines go to a file (-o): a tree line with values is longer than a pipe's
    // atomic write, and the launched target shares stdout.
    let json_path = std::env::temp_dir().join(format!(
        "gotrace-graph-args-{}-{version}-{goarch}.json",
        std::process::id()
    ));
    let output = Command::new(GOTRACE)
        .args([
            "graph",
            "--json",
            "--args",
            "--depth",
            "0",
            "main.root",
            "main.*",
        ])
        .arg("-o")
        .arg(&json_path)
        .args(["example/rec.*", "strconv.ParseInt", "--"])
        .arg(&binary.path)
        .args(["-rounds", "1", "-par", "1"])
        .output()
        .expect("running gotrace");
    assert!(output.status.success(), "{output:?}");
    let written = std::fs::read(&json_path).expect("reading gotrace's -o file");
    let _ = std::fs::remove_file(&json_path);
    let own: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let (_, json) = split_output(&written);
    let own = own_trees(&own);
    let what = format!("go{version} {goarch} {variant:?}");
    let mut kinds = Vec::new();
    for tree in trees(&json) {
        let goid = field(tree, "goid");
        assert!(
            own.iter().any(|t| t.goid == goid),
            "{what}: goroutine {goid} not in {own:?}"
        );
        let arg = &tree["args"][0];
        assert_eq!(arg["name"], "kind", "{what}: {tree}");
        kinds.push(arg["value"].as_u64().expect("kind is an int"));
        let nodes = paths(tree);
        let goids: Vec<_> = nodes
            .iter()
            .filter(|(_, n)| n["function"] == "example/rec.goid" && n["unwound"].is_null())
            .map(|(_, n)| n["results"][0]["value"].as_u64())
            .collect();
        assert!(
            !goids.is_empty(),
            "{what}: no example/rec.goid beneath {tree}"
        );
        assert!(
            goids.iter().all(|&g| g == Some(goid)),
            "{what}: {goids:?} in tree of goroutine {goid}"
        );
        for (_, parse) in nodes
            .iter()
            .filter(|(_, n)| n["function"] == "strconv.ParseInt")
        {
            assert_eq!(parse["args"][0]["name"], "s", "{what}: {parse}");
            assert_eq!(
                parse["args"][0]["value"],
                goid.to_string(),
                "{what}: {parse}"
            );
        }
    }
    kinds.sort_unstable();
    assert_eq!(kinds, (0..own.len() as u64).collect::<Vec<_>>(), "{what}");
    let summary = summary(&json);
    assert_eq!(
        field(summary, "trees"),
        own.len() as u64,
        "{what}: {summary}"
    );
    assert_eq!(field(summary, "malformed"), 0, "{what}: {summary}");
}

#[test]
fn args_are_the_values_the_target_records() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    check_args("1.27.3", "amd64", Variant::Pie);
    check_args("1.19", "386", Variant::Plain);
}

/// A node of the target's shape syntax, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    name: String,
    children: Vec<Node>,
}

/// Parses `name{child child}`.
fn parse(text: &str) -> Node {
    fn node(s: &mut &str) -> Node {
        let open = s.find('{').unwrap();
        let name = s[..open].to_owned();
        *s = &s[open + 1..];
        let mut children = Vec::new();
        loop {
            *s = s.trim_start();
            if let Some(rest) = s.strip_prefix('}') {
                *s = rest;
                return Node { name, children };
            }
            children.push(node(s));
        }
    }
    let mut s = text;
    node(&mut s)
}

fn render(n: &Node) -> String {
    let kids: Vec<String> = n.children.iter().map(render).collect();
    format!("{}{{{}}}", n.name, kids.join(" "))
}

/// The tree cut as --max-depth / --max-nodes cut it: nodes in entry order (pre-order), each
/// kept when its parent is, it lies at most `max_depth` beneath the root and fewer than
/// `max_nodes` were kept before it. Returns the cut tree and how many nodes were cut.
fn cut(root: &Node, max_depth: usize, max_nodes: usize) -> (Node, u64) {
    fn walk(
        n: &Node,
        depth: usize,
        limits: (usize, usize),
        kept: &mut usize,
        cut: &mut u64,
    ) -> Option<Node> {
        if depth > limits.0 || *kept >= limits.1 {
            *cut += count(n);
            return None;
        }
        *kept += 1;
        let children = n
            .children
            .iter()
            .filter_map(|c| walk(c, depth + 1, limits, kept, cut))
            .collect();
        Some(Node {
            name: n.name.clone(),
            children,
        })
    }
    fn count(n: &Node) -> u64 {
        1 + n.children.iter().map(count).sum::<u64>()
    }
    let (mut kept, mut cut_nodes) = (0, 0);
    let tree = walk(root, 0, (max_depth, max_nodes), &mut kept, &mut cut_nodes).unwrap();
    (tree, cut_nodes)
}

/// --max-depth and --max-nodes cut exactly the calls beyond them (oracle: the target's tree cut
/// by the rule) and count them in each tree and in the summary.
#[test]
fn limits_cut_and_count() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let Some(binary) = require(matrix_binary("1.27.3", "amd64", Variant::Plain, "calltree")) else {
        return;
    };
    for (max_depth, max_nodes) in [(3, 10_000), (64, 5), (2, 4)] {
        let (d, n) = (max_depth.to_string(), max_nodes.to_string());
        let run = trace(
            &binary,
            2,
            &["--max-depth", &d, "--max-nodes", &n],
            &["-rounds", "1"],
        );
        assert!(run.output.status.success(), "{:?}", run.output);
        let mut total = 0;
        let by_goid: BTreeMap<u64, &Value> = trees(&run.json)
            .into_iter()
            .map(|t| (field(t, "goid"), t))
            .collect();
        for own in own_trees(&run.own) {
            let (expected, cut_nodes) = cut(&parse(&own.shape), max_depth, max_nodes);
            let tree = by_goid[&own.goid];
            assert_eq!(shape(tree), render(&expected), "limits {d}/{n}");
            assert_eq!(
                field(tree, "truncated_calls"),
                cut_nodes,
                "limits {d}/{n}: {tree}"
            );
            total += cut_nodes;
        }
        assert!(total > 0, "limits {d}/{n} cut nothing");
        assert_eq!(field(summary(&run.json), "truncated_calls"), total);
    }
}

/// --folded and --svg: the folded stacks' weights (self times) add up to the root calls'
/// durations and every stack starts at the root; the flame graph names the root and what was
/// traced, and headless Chromium renders it (the screenshot is kept as a test artifact).
#[test]
fn folded_and_svg_of_the_trees() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let Some(binary) = require(matrix_binary("1.27.3", "amd64", Variant::Plain, "calltree")) else {
        return;
    };
    let Some(chromium) = require(chromium()) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("gotrace-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (folded, svg) = (dir.join("out.folded"), dir.join("out.svg"));
    let extra = [
        "--folded",
        folded.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ];
    let run = trace(&binary, 2, &extra, &["-rounds", "1"]);
    assert!(run.output.status.success(), "{:?}", run.output);
    let roots: u64 = trees(&run.json)
        .iter()
        .map(|t| field(t, "duration_ns"))
        .sum();
    let text = std::fs::read_to_string(&folded).unwrap();
    let mut sum = 0;
    for line in text.lines() {
        let (stack, weight) = line.rsplit_once(' ').unwrap();
        assert!(stack.starts_with("main.root"), "{line}");
        sum += weight.parse::<u64>().unwrap();
    }
    assert_eq!(sum, roots);
    let image = std::fs::read_to_string(&svg).unwrap();
    assert!(
        image.contains("main.root (gotrace graph main.root main.*)"),
        "no title"
    );
    assert!(
        image.contains(">main.root<") || image.contains("main.root ("),
        "root not named"
    );
    let shot = screenshot(&chromium, &svg, (1200, 600), "graph-flamegraph", &dir);
    // Flame graph frames are drawn in warm colours on a light background: a blank page has none.
    let warm = shot
        .pixels
        .iter()
        .filter(|[r, g, b]| *r > 180 && *g < 200 && *b < 120)
        .count();
    assert!(
        warm > 1000,
        "no flame graph frames drawn in {}",
        shot.path.display()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Bad input: one line, exit code 2.
#[test]
fn bad_input_is_one_line_and_exit_2() {
    let Some(binary) = require(matrix_binary("1.27.3", "amd64", Variant::Plain, "calltree")) else {
        return;
    };
    let path = binary.path.to_str().unwrap();
    let Some(stripped) = require(matrix_binary(
        "1.27.3",
        "amd64",
        Variant::Stripped,
        "calltree",
    )) else {
        return;
    };
    let stripped = stripped.path.to_str().unwrap();
    for args in [
        // --args on a stripped binary traces without values (tests/stripped.rs); a field needs
        // the signature written.
        vec!["graph", "--args", "--field", "kind", "main.root", stripped],
        vec!["graph", "--min", "5x", "main.root", path],
        vec!["graph", "--min", "-5ms", "main.root", path],
        vec!["graph", "--min", "fast", "main.root", path],
        vec!["graph", "main.nosuch", path],
        vec!["graph", "--max-nodes", "0", "main.root", path],
        vec!["graph", "main.root"],
    ] {
        let problems = user_error_problems(&gotrace(&args));
        assert!(problems.is_empty(), "{args:?}: {problems:?}");
    }
}

/// The functions each function of `binary` calls directly, as `go tool objdump` lists them
/// (`CALL name(SB)` lines under each `TEXT name(SB)` header), named as in the pclntab: objdump
/// names an assembly function by its ELF symbol, with the `.abi0` suffix the pclntab lacks.
fn objdump_calls(binary: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let output = common::toolchain::oracle_toolchain()
        .expect("the oracle toolchain")
        .command()
        .args(["tool", "objdump"])
        .arg(binary)
        .output()
        .expect("running go tool objdump");
    assert!(output.status.success(), "go tool objdump failed");
    let mut calls: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some(rest) = line.strip_prefix("TEXT ") {
            current = rest.split("(SB)").next().unwrap().to_owned();
            calls.entry(current.clone()).or_default();
        } else if let Some((_, target)) = line.split_once("\tCALL ") {
            if let Some(name) = target.trim().strip_suffix("(SB)") {
                if !name.contains('+') {
                    let name = name.strip_suffix(".abi0").unwrap_or(name);
                    calls.get_mut(&current).unwrap().push(name.to_owned());
                }
            }
        }
    }
    calls
}

/// --depth: the functions gotrace plans beneath ROOT are those objdump's direct calls reach
/// within N calls, without the runtime (the plan itself, read through the library).
#[test]
fn reach_follows_objdumps_direct_calls() {
    let Some(binary) = require(matrix_binary("1.27.3", "amd64", Variant::Plain, "calltree")) else {
        return;
    };
    let calls = objdump_calls(&binary.path);
    let file = gotrace::gobin::BinaryFile::open(&binary.path).unwrap();
    let bin = file.parse().unwrap();
    let root = bin.funcs.iter().find(|f| f.name == "main.root").unwrap();
    for depth in 0..=3 {
        let mut expected = std::collections::BTreeSet::new();
        let mut level = vec!["main.root".to_owned()];
        for _ in 0..depth {
            let mut next = Vec::new();
            for name in &level {
                for callee in calls.get(name).into_iter().flatten() {
                    let runtime = gotrace::plan::reach::is_runtime(callee);
                    if !runtime && callee != "main.root" && expected.insert(callee.clone()) {
                        next.push(callee.clone());
                    }
                }
            }
            level = next;
        }
        let reached: std::collections::BTreeSet<String> =
            gotrace::plan::reach::reachable(&bin, &[root.entry], depth, false)
                .iter()
                .map(|f| f.name.to_owned())
                .collect();
        assert_eq!(reached, expected, "depth {depth}");
        assert!(depth == 0 || !reached.is_empty());
    }
}

/// Calls already running when tracing begins are not invented: attached (-p) while a slow root
/// call sleeps, gotrace prints no tree for it and counts its return as in flight at the start.
#[test]
fn calls_running_before_tracing_are_counted_not_invented() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let Some(binary) = require(matrix_binary("1.27.3", "amd64", Variant::Plain, "calltree")) else {
        return;
    };
    use std::io::BufRead;
    let mut target = Command::new(&binary.path)
        .args(["-rounds", "1", "-par", "8", "-slow", "3s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(target.stdout.take().unwrap()).lines();
    // The slow root call is under way once it says so.
    assert!(lines.any(|l| l.unwrap() == "sleeping"));
    let pid = target.id().to_string();
    let output = gotrace([
        "graph",
        "--json",
        "--depth",
        "0",
        "main.root",
        "main.*",
        "-p",
        &pid,
    ]);
    let own: Vec<String> = lines.map(Result::unwrap).collect();
    target.wait().unwrap();
    let (_, json) = split_output(&output.stdout);
    assert!(trees(&json).is_empty(), "{json:?}");
    assert_eq!(own_count(&own, "roots"), 8);
    let summary = summary(&json);
    // Running before the gate opened: in flight at the start, neither unmatched nor lost.
    assert_eq!(field(summary, "in_flight_at_start"), 1, "{summary}");
    assert_eq!(field(summary, "unmatched"), 0, "{summary}");
    assert_eq!(field(summary, "trees"), 0, "{summary}");
}
