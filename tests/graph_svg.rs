//! `gotrace graph --svg` (issue 11): the flame graph written by `FoldedStacks::write_svg` from
//! hand-built call trees, checked against two oracles nobody here wrote: inferno's own layout
//! (each frame's `fg:w`, the inclusive time it computed from our self-weighted stacks, must
//! equal the trees' call durations on that stack) and headless Chromium's rendering (every
//! frame drawn where and in the colour the SVG says; the screenshot is kept among the test
//! artifacts). The SVG must name the root.

mod common;

use std::collections::BTreeMap;

use common::chromium::{chromium, screenshot};
use common::require;
use gotrace::output::calltree::{CallNode, CallTree, FoldedStacks};

/// A call with no arguments.
fn call(function: &str, duration_ns: u64, children: Vec<CallNode>) -> CallNode {
    CallNode {
        function: function.to_owned(),
        duration_ns,
        children,
        ..CallNode::default()
    }
}

/// A recursion `depth` deep, each level taking `step` ns more than the one it calls.
fn recursion(depth: u32, step: u64) -> CallNode {
    let children = match depth {
        0 => vec![],
        _ => vec![recursion(depth - 1, step)],
    };
    call("main.fib", step * u64::from(depth + 1), children)
}

/// One root call of `main.handle` scaled by `k`: fan-out, recursion, a method, a closure, an
/// unwound (panicking) callee, the same function at several depths, and a generic name with
/// `;` in its shape.
fn root_call(goid: u64, k: u64) -> CallTree {
    let mut panicky = call(
        "main.mayPanic",
        7_000 * k,
        vec![call("main.leaf", 1_000 * k, vec![])],
    );
    panicky.unwound = true;
    let generic = "main.Sum[go.shape.struct { a int; b int }]";
    CallTree {
        pid: 4242,
        goid,
        ts_ns: 1_700_000_000_000_000_000,
        root_site: Some("/src/server/main.go:42".into()),
        root: call(
            "main.handle",
            100_000 * k,
            vec![
                call(
                    "main.(*Parser).Parse",
                    30_000 * k,
                    vec![
                        call("main.leaf", 4_000 * k, vec![]),
                        call(generic, 6_000 * k, vec![]),
                    ],
                ),
                recursion(4, 5_000 * k),
                call(
                    "main.handle.func1",
                    12_000 * k,
                    vec![call("main.leaf", 2_000 * k, vec![])],
                ),
                panicky,
                call("main.leaf", 3_000 * k, vec![]),
            ],
        ),
        truncated: 0,
    }
}

/// Adds each node's duration under its folded stack (`;` in names written as `,`).
fn inclusive(node: &CallNode, parent: &str, into: &mut BTreeMap<String, u64>) {
    let name = node.function.replace(';', ",");
    let path = match parent {
        "" => name,
        _ => format!("{parent};{name}"),
    };
    *into.entry(path.clone()).or_default() += node.duration_ns;
    for child in &node.children {
        inclusive(child, &path, into);
    }
}

/// One frame of inferno's SVG.
#[derive(Debug)]
struct Frame {
    name: String,
    y: f64,
    height: f64,
    x_pct: f64,
    width_pct: f64,
    fill: [u8; 3],
    fg_x: u64,
    fg_w: u64,
}

/// The value of attribute `name` in one element's text.
fn attribute<'a>(element: &'a str, name: &str) -> &'a str {
    let start = element
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {element}"))
        + name.len()
        + 3;
    &element[start..start + element[start..].find('"').unwrap()]
}

/// The frames of an inferno flame graph: `<g><title>NAME (…)</title><rect …/>`.
fn frames(svg: &str) -> Vec<Frame> {
    svg.split("<g><title>")
        .skip(1)
        .map(|frame| {
            let title = &frame[..frame.find("</title>").unwrap()];
            let name = title[..title.rfind(" (").unwrap()]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            let rect = &frame[frame.find("<rect").unwrap()..];
            let rect = &rect[..rect.find("/>").unwrap()];
            let number = |attr: &str| attribute(rect, attr).trim_end_matches('%').parse::<f64>();
            let fill = attribute(rect, "fill");
            let rgb: Vec<u8> = fill
                .trim_start_matches("rgb(")
                .trim_end_matches(')')
                .split(',')
                .map(|c| c.trim().parse().unwrap())
                .collect();
            Frame {
                name,
                y: number("y").unwrap(),
                height: number("height").unwrap(),
                x_pct: number("x").unwrap(),
                width_pct: number("width").unwrap(),
                fill: [rgb[0], rgb[1], rgb[2]],
                fg_x: attribute(rect, "fg:x").parse().unwrap(),
                fg_w: attribute(rect, "fg:w").parse().unwrap(),
            }
        })
        .collect()
}

/// Each frame's stack (names from the bottom frame up), from the frames' rows (`y`) and
/// spans (`fg:x`, `fg:w`): a frame's parent is the frame one row below whose span holds it.
fn stacks(frames: &[Frame]) -> BTreeMap<String, u64> {
    let mut rows: Vec<f64> = frames.iter().map(|f| f.y).collect();
    rows.sort_by(|a, b| b.total_cmp(a));
    rows.dedup();
    let row = |f: &Frame| rows.iter().position(|&y| y == f.y).unwrap();
    let path = |f: &Frame| {
        let mut names = vec![f.name.clone()];
        let mut current = f;
        while row(current) > 0 {
            current = frames
                .iter()
                .find(|p| {
                    row(p) + 1 == row(current)
                        && p.fg_x <= current.fg_x
                        && current.fg_x + current.fg_w <= p.fg_x + p.fg_w
                })
                .unwrap_or_else(|| panic!("no parent frame for {current:?}"));
            names.push(current.name.clone());
        }
        names.reverse();
        names.join(";")
    };
    let mut out = BTreeMap::new();
    for frame in frames {
        assert!(
            out.insert(path(frame), frame.fg_w).is_none(),
            "two frames on one stack"
        );
    }
    out
}

#[test]
fn flame_graph_matches_the_trees_and_renders_in_chromium() {
    let Some(chromium) = require(chromium()) else {
        return;
    };
    let trees: Vec<CallTree> = (1..=3).map(|k| root_call(10 + k, k)).collect();
    let mut folded = FoldedStacks::new();
    for tree in &trees {
        folded.add(tree);
    }
    let dir = std::env::temp_dir().join(format!("gotrace-graph-svg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let svg_path = dir.join("graph.svg");
    let title = "gotrace graph main.handle: 8 functions beneath it";
    let mut file = std::fs::File::create(&svg_path).unwrap();
    folded
        .write_svg(&mut file, title, &folded.summary())
        .expect("write the flame graph");
    drop(file);
    let svg = std::fs::read_to_string(&svg_path).unwrap();

    // Titles, and the root by name.
    assert!(svg.contains(&format!(">{title}</text>")), "the title");
    let summary = "3 calls of main.handle, 600.0µs in all";
    assert_eq!(folded.summary(), summary);
    assert!(svg.contains(&format!(">{summary}</text>")), "the subtitle");
    assert!(
        svg.contains("<g><title>main.handle (600,000 ns, 100.00%)</title>"),
        "the root's frame"
    );

    // inferno's layout: every stack's inclusive time is the trees' time on that stack.
    let frames = frames(&svg);
    let mut drawn = stacks(&frames);
    assert_eq!(drawn.remove("all"), Some(folded.total_ns()));
    let mut expected = BTreeMap::new();
    for tree in &trees {
        inclusive(&tree.root, "", &mut expected);
    }
    let expected: BTreeMap<String, u64> = expected
        .into_iter()
        .map(|(stack, ns)| (format!("all;{stack}"), ns))
        .collect();
    assert_eq!(drawn, expected);

    // Chromium draws every frame at least 4 pixels wide where the SVG puts it, in its colour
    // (sampled at the frame's right end on its bottom row, clear of the left-aligned label).
    let width: u64 = attribute(&svg[svg.find("<svg").unwrap()..], "width")
        .parse()
        .unwrap();
    let height: u64 = attribute(&svg[svg.find("<svg").unwrap()..], "height")
        .parse()
        .unwrap();
    let shot = screenshot(&chromium, &svg_path, (width, height), "graph-flame", &dir);
    assert_eq!(
        (u64::from(shot.width), u64::from(shot.height)),
        (width, height)
    );
    // inferno's x percentages are of the plot area between 10-pixel margins.
    let plot = (width - 20) as f64;
    let mut checked = 0;
    for frame in &frames {
        let left = 10.0 + frame.x_pct * plot / 100.0;
        let right = left + frame.width_pct * plot / 100.0;
        if right - left < 4.0 {
            continue;
        }
        let (x, y) = (
            (right - 2.0) as usize,
            (frame.y + frame.height - 1.5) as usize,
        );
        let pixel = shot.pixels[y * shot.width as usize + x];
        assert!(
            pixel
                .iter()
                .zip(frame.fill)
                .all(|(&a, b)| a.abs_diff(b) <= 3),
            "{} drawn {pixel:?} at ({x}, {y}), the SVG says {:?}; screenshot {}",
            frame.name,
            frame.fill,
            shot.path.display()
        );
        checked += 1;
    }
    eprintln!(
        "flame graph: {} frames, {checked} checked in the {width}x{height} screenshot {}",
        frames.len(),
        shot.path.display()
    );
    assert!(checked >= 8, "only {checked} frames wide enough to check");
    let _ = std::fs::remove_dir_all(&dir);
}
