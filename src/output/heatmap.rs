//! `gotrace funclat --heatmap FILE.svg`: latency heatmaps as Brendan Gregg draws them (x: time
//! in columns of `--heatmap-step` seconds, y: the log2 latency buckets, colour: the number of
//! calls), one panel per traced function in one standalone SVG written at exit. Plain SVG: each
//! cell's hover text (`<title>`) gives the function, bucket, time span and count, and carries
//! its count in a `data-count` attribute, so the cells of a panel add up to its calls.
//!
//! Columns come from the differences between the cumulative in-kernel histograms read at each
//! wake-up; the calls read at time t fall in column ceil(t / step) - 1.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::output::histogram::{Log2Hist, Unit, SLOTS};

/// Calls per log2 slot in one time column.
type Column = [u64; SLOTS];

/// The heatmap being collected.
pub struct Heatmap {
    path: PathBuf,
    step: Duration,
    unit: Unit,
    functions: Vec<String>,
    /// Cumulative histograms at the previous [`Heatmap::record`].
    previous: Vec<Log2Hist>,
    /// columns[function][step].
    columns: Vec<Vec<Column>>,
}

/// Pixel geometry of the drawing.
const CELL_HEIGHT: usize = 14;
const MAX_PLOT_WIDTH: usize = 960;
const LEFT: usize = 90;
const RIGHT: usize = 30;
const PANEL_TOP: usize = 44;
const PANEL_BOTTOM: usize = 46;
const LEGEND_HEIGHT: usize = 40;
/// The legend's text and five swatches need this much width.
const LEGEND_WIDTH: usize = LEFT + 250 + 5 * 56 + RIGHT;

/// The colour scale from one call to the most calls in a cell (light yellow to dark red).
const SCALE: [(f64, f64, f64); 3] = [
    (255.0, 237.0, 160.0),
    (253.0, 141.0, 60.0),
    (189.0, 0.0, 38.0),
];

impl Heatmap {
    /// Starts a heatmap of `functions` (plan order), to be written to `path` by
    /// [`Heatmap::write`]. Creates the file now, so that an unwritable path fails before
    /// tracing starts.
    pub fn new(path: PathBuf, step: Duration, unit: Unit, functions: Vec<String>) -> Result<Self> {
        super::claim_output_file("--heatmap", &path)?;
        Ok(Heatmap {
            path,
            step,
            unit,
            previous: vec![Log2Hist::default(); functions.len()],
            columns: vec![Vec::new(); functions.len()],
            functions,
        })
    }

    /// Adds the calls since the previous record (`hists` cumulative, in plan order) to the
    /// column of time `elapsed` since tracing began.
    pub fn record(&mut self, elapsed: Duration, hists: &[Log2Hist]) {
        let step_ns = self.step.as_nanos().max(1);
        let index = (elapsed.as_nanos().saturating_sub(1) / step_ns) as usize;
        for ((columns, previous), now) in self.columns.iter_mut().zip(&mut self.previous).zip(hists)
        {
            let delta = now.since(previous);
            if columns.len() <= index {
                columns.resize(index + 1, [0; SLOTS]);
            }
            for (cell, added) in columns[index].iter_mut().zip(delta.slots) {
                *cell += added;
            }
            *previous = now.clone();
        }
    }

    /// The width of one column.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// Writes the SVG.
    pub fn write(&self) -> Result<()> {
        std::fs::write(&self.path, self.render())
            .with_context(|| format!("writing the heatmap to {}", self.path.display()))
    }

    /// The whole SVG document.
    fn render(&self) -> String {
        let steps = self.columns.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let cell_width = (MAX_PLOT_WIDTH / steps).clamp(1, 24);
        let plot_width = cell_width * steps;
        let max_count = self
            .columns
            .iter()
            .flatten()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        let width = (LEFT + plot_width + RIGHT).max(LEGEND_WIDTH);
        let mut body = String::new();
        let mut y = LEGEND_HEIGHT;
        for (function, columns) in self.functions.iter().zip(&self.columns) {
            y += self.panel(&mut body, y, function, columns, cell_width, max_count);
        }
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{y}\" viewBox=\"0 0 {width} {y}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        legend(&mut svg, max_count, self.step);
        svg.push_str(&body);
        svg.push_str("</svg>\n");
        svg
    }

    /// Draws one function's panel at height `top`; returns the panel's height.
    fn panel(
        &self,
        svg: &mut String,
        top: usize,
        function: &str,
        columns: &[Column],
        cell_width: usize,
        max_count: u64,
    ) -> usize {
        let used = |slot: usize| columns.iter().any(|c| c[slot] > 0);
        let low = (0..SLOTS).find(|&s| used(s)).unwrap_or(0);
        let high = (0..SLOTS).rfind(|&s| used(s)).unwrap_or(0);
        let rows = high - low + 1;
        let plot_top = top + PANEL_TOP;
        let plot_bottom = plot_top + rows * CELL_HEIGHT;
        let calls: u64 = columns.iter().flatten().sum();
        let steps = columns.len().max(1);
        let _ = writeln!(
            svg,
            "<g class=\"panel\" data-function=\"{f}\" data-calls=\"{calls}\">\n<text x=\"{LEFT}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\">{f}: {calls} calls</text>",
            top + 24,
            f = escape(function),
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{LEFT}\" y=\"{plot_top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
            steps * cell_width,
            rows * CELL_HEIGHT
        );
        for slot in low..=high {
            let row_y = plot_bottom - (slot - low + 1) * CELL_HEIGHT;
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                LEFT - 6,
                row_y + CELL_HEIGHT - 3,
                self.slot_label(slot)
            );
            for (step, column) in columns.iter().enumerate() {
                let count = column[slot];
                if count == 0 {
                    continue;
                }
                let (from, to) = (self.step_start(step), self.step_start(step + 1));
                let _ = writeln!(
                    svg,
                    "<rect x=\"{}\" y=\"{row_y}\" width=\"{cell_width}\" height=\"{CELL_HEIGHT}\" fill=\"{}\" data-count=\"{count}\"><title>{}\n{} to {}\nt = {from} to {to} s\n{count} calls</title></rect>",
                    LEFT + step * cell_width,
                    colour(count, max_count),
                    escape(function),
                    self.slot_label(slot),
                    self.slot_label(slot + 1),
                );
            }
        }
        self.time_axis(svg, plot_bottom, steps, cell_width);
        let _ = writeln!(
            svg,
            "<text transform=\"translate(14,{}) rotate(-90)\" text-anchor=\"middle\">latency (log2 buckets)</text>\n</g>",
            plot_top + rows * CELL_HEIGHT / 2
        );
        PANEL_TOP + rows * CELL_HEIGHT + PANEL_BOTTOM
    }

    /// Tick labels under the plot, at least 60 pixels apart, and the axis title.
    fn time_axis(&self, svg: &mut String, plot_bottom: usize, steps: usize, cell_width: usize) {
        let every = 60usize.div_ceil(cell_width);
        for step in (0..=steps).step_by(every) {
            let x = LEFT + step * cell_width;
            let _ = writeln!(
                svg,
                "<line x1=\"{x}\" y1=\"{plot_bottom}\" x2=\"{x}\" y2=\"{}\" stroke=\"#999\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                plot_bottom + 4,
                plot_bottom + 16,
                self.step_start(step)
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time since tracing began (s), columns of {} s</text>",
            LEFT + steps * cell_width / 2,
            plot_bottom + 34,
            self.step.as_secs_f64()
        );
    }

    /// Seconds at the start of column `step`, for labels.
    fn step_start(&self, step: usize) -> String {
        trim_float(self.step.as_secs_f64() * step as f64)
    }

    /// The lower bound of log2 slot `slot` as a readable duration.
    fn slot_label(&self, slot: usize) -> String {
        let ns = 2f64.powi(slot as i32) * self.unit.divisor() as f64;
        let (value, suffix) = if ns < 1e3 {
            (ns, "ns")
        } else if ns < 1e6 {
            (ns / 1e3, "µs")
        } else if ns < 1e9 {
            (ns / 1e6, "ms")
        } else {
            (ns / 1e9, "s")
        };
        format!("{} {suffix}", three_digits(value))
    }
}

/// Draws the colour legend at the top: swatches for 1 call up to the largest count.
fn legend(svg: &mut String, max_count: u64, step: Duration) {
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"24\">calls per cell ({} s x one log2 bucket):</text>",
        trim_float(step.as_secs_f64())
    );
    if max_count == 0 {
        return;
    }
    let mut shown: Vec<u64> = (0..5)
        .map(|i| (max_count as f64).powf(f64::from(i) / 4.0).round() as u64)
        .collect();
    shown.dedup();
    for (i, &count) in shown.iter().enumerate() {
        let x = LEFT + 250 + i * 56;
        let _ = writeln!(
            svg,
            "<rect class=\"legend\" x=\"{x}\" y=\"12\" width=\"16\" height=\"16\" fill=\"{}\"/><text x=\"{}\" y=\"24\">{count}</text>",
            colour(count, max_count),
            x + 20
        );
    }
}

/// The fill for a cell of `count` calls (log scale up to `max`).
fn colour(count: u64, max: u64) -> String {
    let t = if max <= 1 {
        1.0
    } else {
        (count as f64).ln() / (max as f64).ln()
    };
    let scaled = t.clamp(0.0, 1.0) * (SCALE.len() - 1) as f64;
    let i = (scaled.floor() as usize).min(SCALE.len() - 2);
    let f = scaled - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (SCALE[i], SCALE[i + 1]);
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// A number without trailing zeros (at most 3 decimals).
fn trim_float(value: f64) -> String {
    fixed(value, 3)
}

/// A number rounded to three significant digits (1 <= value < 1000): 131, 65.5, 8.19.
fn three_digits(value: f64) -> String {
    let decimals = match value {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    fixed(value, decimals)
}

/// `value` with `decimals` decimals, trailing zeros (and a bare point) removed.
fn fixed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if decimals == 0 {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Escapes text for SVG (XML) content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(slots: &[(usize, u64)]) -> Log2Hist {
        let mut h = Log2Hist::default();
        for &(slot, count) in slots {
            h.slots[slot] += count;
            h.count += count;
        }
        h
    }

    #[test]
    fn deltas_land_in_their_columns_and_add_up() {
        let path = std::env::temp_dir().join(format!("heatmap-unit-{}.svg", std::process::id()));
        let names = vec!["main.a<b>".to_owned(), "main.c".to_owned()];
        let mut map =
            Heatmap::new(path.clone(), Duration::from_secs(1), Unit::Micros, names).unwrap();
        map.record(Duration::from_millis(1000), &[hist(&[(3, 5)]), hist(&[])]);
        map.record(
            Duration::from_millis(2500),
            &[hist(&[(3, 7), (9, 1)]), hist(&[(0, 2)])],
        );
        assert_eq!(map.columns[0].len(), 3);
        assert_eq!(map.columns[0][0][3], 5);
        assert_eq!(map.columns[0][2][3], 2);
        assert_eq!(map.columns[0][2][9], 1);
        map.write().unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let counts: u64 = svg
            .split("data-count=\"")
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].parse::<u64>().unwrap())
            .sum();
        assert_eq!(counts, 8 + 2);
        assert!(svg.contains("main.a&lt;b&gt;: 8 calls"));
        assert!(
            svg.contains(">8 µs</text>"),
            "slot 3 in µs is labelled 8 µs"
        );
        assert!(
            svg.contains(">512 µs</text>"),
            "slot 9 in µs is labelled 512 µs"
        );
        assert!(!svg.contains("main.a<b>"));
    }

    #[test]
    fn colours_run_from_light_to_dark() {
        assert_eq!(colour(1, 100), "#ffeda0");
        assert_eq!(colour(100, 100), "#bd0026");
        assert_eq!(colour(1, 1), "#bd0026");
    }

    #[test]
    fn labels_keep_three_digits() {
        assert_eq!(three_digits(131.072), "131");
        assert_eq!(three_digits(65.536), "65.5");
        assert_eq!(three_digits(8.192), "8.19");
        assert_eq!(three_digits(1.0), "1");
    }
}
