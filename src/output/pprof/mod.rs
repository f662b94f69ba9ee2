//! `--pprof FILE`: gotrace's wall-clock samples as a pprof profile (gzipped `profile.proto`,
//! encoded by `prost`), so that `go tool pprof -top` / `-http` open it as any Go profile.
//!
//! `graph --pprof`: every traced call is one wall-clock sample of its self time (its duration
//! less its traced children's, as the folded stacks weigh it), on the stack of calls from its
//! root call, summed over the calls with the same stack. A call's own frame is its function's
//! entry; each caller's frame is the call instruction it called from (the return address the
//! BPF side read at the callee's entry), named by the binary's pclntab: its `file:line`, and
//! the inlined calls it sits in as the location's further lines (pprof's inline frames,
//! innermost first). When that instruction is not in the traced caller (an untraced function
//! called the callee), the caller's entry follows it, so the traced caller stays on the stack.
//!
//! `funclat --breakdown --pprof` ([`WallProfile::add_function`]): funclat keeps no stacks, so
//! each traced function's calls are summed on the function's own frame alone, their whole
//! durations (a traced function called by another is counted in both).
//!
//! With --breakdown the profile has two more sample types, `oncpu` and `offcpu` (`wall` is
//! their sum in every sample): a call's self time off the CPU is sampled on frames of its own
//! beneath the call's (`[blocked: chan receive]`, `[runnable]`, `[syscall]`, `[unattributed]`,
//! as the flame graphs draw it, [`CallNode::self_off_cpu`]), the rest of it as on-CPU time on
//! the call's frame.

pub mod proto;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use prost::Message;

use crate::gobin::format::symbols::SourceFrame;
use crate::gobin::GoBinary;
use crate::output::breakdown::Breakdown;
use crate::output::calltree::{CallNode, CallTree};
use proto::{Function, Line, Location, Mapping, Profile, Sample, ValueType};

/// One frame of a sample's stack, before symbolization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Frame {
    /// Somewhere in the function entered at this (link-time) address: a call's own frame.
    Entry(u64),
    /// The call instruction before `return_pc` (0: unknown) in a call of the function entered
    /// at `caller`.
    Call { return_pc: u64, caller: u64 },
    /// A frame without code of its own, named `WallProfile::named[i]`: an off-CPU part
    /// (--breakdown) beneath its call's frame, or a function that exists only inlined.
    Named(u32),
}

/// What the profile says about the run besides its samples.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The traced binary's path (the mapping's file name).
    pub binary: String,
    /// When entries began and stopped counting, on the events' clock (the session's
    /// [`Stop`](crate::session::Stop)): the profile's time and duration.
    pub window: (u64, u64),
    /// One comment line (the command that traced).
    pub comment: String,
}

/// Call trees gathered as pprof samples.
#[derive(Debug, Default)]
pub struct WallProfile {
    /// Stack (leaf first) → self ns on and off the CPU, summed over the calls on it.
    samples: HashMap<Vec<Frame>, [u64; 2]>,
    /// Function names by entry, as the trees name them.
    names: HashMap<u64, String>,
    /// --breakdown: the sample types `oncpu` and `offcpu` too.
    breakdown: bool,
    /// The names of the frames without code, by `Frame::Named` index.
    named: Vec<String>,
}

impl WallProfile {
    /// No samples yet; `breakdown`: the trees carry breakdowns (--breakdown).
    pub fn new(breakdown: bool) -> Self {
        WallProfile {
            breakdown,
            ..Self::default()
        }
    }

    /// Adds every call of `tree`.
    pub fn add(&mut self, tree: &CallTree) {
        let mut callers = Vec::new();
        self.add_node(&tree.root, &mut callers);
    }

    /// Adds `node`'s self time on the stack `callers` (outermost first) leads to, then its
    /// children's.
    fn add_node(&mut self, node: &CallNode, callers: &mut Vec<Frame>) {
        self.names
            .entry(node.entry_pc)
            .or_insert_with(|| node.function.clone());
        let stack: Vec<Frame> = std::iter::once(Frame::Entry(node.entry_pc))
            .chain(callers.iter().rev().copied())
            .collect();
        self.add_time(stack, node.self_ns(), node.self_off_cpu());
        for child in &node.children {
            callers.push(Frame::Call {
                return_pc: child.return_pc,
                caller: node.entry_pc,
            });
            self.add_node(child, callers);
            callers.pop();
        }
    }

    /// `funclat --breakdown`: adds the calls of the function `name` entered at `entry` (0: it
    /// exists only inlined), whose parts summed over them are `parts`, on its own frame.
    pub fn add_function(&mut self, entry: u64, name: &str, parts: &Breakdown) {
        let frame = match entry {
            0 => Frame::Named(self.named_index(name)),
            entry => {
                self.names.entry(entry).or_insert_with(|| name.to_owned());
                Frame::Entry(entry)
            }
        };
        self.add_time(vec![frame], parts.total_ns(), parts.off_cpu_frames());
    }

    /// Adds `ns` on `stack` (leaf first): `off_cpu` of it on a frame of each part's name
    /// beneath the stack's leaf, the rest on the CPU on the stack itself.
    fn add_time(&mut self, stack: Vec<Frame>, ns: u64, off_cpu: Vec<(String, u64)>) {
        let on_cpu = ns.saturating_sub(off_cpu.iter().map(|(_, ns)| ns).sum::<u64>());
        for (part, ns) in off_cpu {
            let below = std::iter::once(Frame::Named(self.named_index(&part)));
            self.samples
                .entry(below.chain(stack.iter().copied()).collect())
                .or_default()[1] += ns;
        }
        if on_cpu > 0 {
            self.samples.entry(stack).or_default()[0] += on_cpu;
        }
    }

    /// The `Frame::Named` index of `name`.
    fn named_index(&mut self, name: &str) -> u32 {
        let index = match self.named.iter().position(|n| n == name) {
            Some(index) => index,
            None => {
                self.named.push(name.to_owned());
                self.named.len() - 1
            }
        };
        index as u32
    }

    /// Writes the gzipped profile to the file at `path`, its frames named from `bin`.
    pub fn write_file(&self, bin: &GoBinary<'_>, meta: &Meta, path: &Path) -> Result<()> {
        let mut file = std::fs::File::create(path)
            .map(std::io::BufWriter::new)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.write(bin, meta, &mut file)?;
        file.flush()
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Writes the gzipped profile, its frames named from `bin`.
    fn write(&self, bin: &GoBinary<'_>, meta: &Meta, w: impl Write) -> Result<()> {
        let profile = self.profile(bin, meta);
        let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
        gz.write_all(&profile.encode_to_vec())
            .and_then(|()| gz.finish().map(drop))
            .context("writing the pprof profile")
    }

    /// The profile's message.
    fn profile(&self, bin: &GoBinary<'_>, meta: &Meta) -> Profile {
        let return_pcs: Vec<u64> = self
            .samples
            .keys()
            .flatten()
            .filter_map(|frame| match *frame {
                Frame::Call { return_pc, .. } if return_pc != 0 => Some(return_pc),
                _ => None,
            })
            .collect();
        let mut tables = Tables {
            call_sites: bin.call_site_frames(&return_pcs),
            bin,
            names: &self.names,
            named: &self.named,
            profile: Profile::default(),
            strings: HashMap::new(),
            functions: HashMap::new(),
            locations: HashMap::new(),
        };
        tables.string("");
        let mut value_type = |name: &str| ValueType {
            r#type: tables.string(name),
            unit: tables.string("nanoseconds"),
        };
        let wall = value_type("wall");
        let mut sample_type = vec![wall.clone()];
        if self.breakdown {
            sample_type.extend([value_type("oncpu"), value_type("offcpu")]);
        }
        // The traced functions first, with the line they start at.
        let mut entries: Vec<u64> = self.names.keys().copied().collect();
        entries.sort_unstable();
        for entry in entries {
            tables.entry_location(entry);
        }
        let mut samples: Vec<_> = self.samples.iter().collect();
        // A stable file: the same trees give the same bytes.
        samples.sort_unstable();
        for (stack, &[on_cpu, off_cpu]) in samples {
            let mut location_id = Vec::with_capacity(stack.len());
            for frame in stack {
                tables.locations_of(*frame, &mut location_id);
            }
            tables.profile.sample.push(Sample {
                location_id,
                value: [on_cpu + off_cpu, on_cpu, off_cpu][..sample_type.len()]
                    .iter()
                    .map(|&ns| i64::try_from(ns).unwrap_or(i64::MAX))
                    .collect(),
                label: Vec::new(),
            });
        }
        let mapping = tables.mapping(meta);
        let comment = tables.string(&meta.comment);
        let mut profile = tables.profile;
        profile.mapping = vec![mapping];
        profile.default_sample_type = wall.r#type;
        profile.sample_type = sample_type;
        profile.period_type = Some(wall);
        profile.period = 1;
        let (open_ns, close_ns) = meta.window;
        let unix_ns = i128::from(open_ns) + crate::output::clock::monotonic_to_unix_ns();
        profile.time_nanos = i64::try_from(unix_ns).unwrap_or(0);
        profile.duration_nanos =
            i64::try_from(close_ns.saturating_sub(open_ns)).unwrap_or(i64::MAX);
        profile.comment = vec![comment];
        profile
    }
}

/// The profile under construction with its interned strings, functions and locations.
struct Tables<'a, 'data> {
    bin: &'a GoBinary<'data>,
    names: &'a HashMap<u64, String>,
    named: &'a [String],
    call_sites: HashMap<u64, Vec<SourceFrame<'data>>>,
    profile: Profile,
    strings: HashMap<String, i64>,
    /// Function ids by name.
    functions: HashMap<String, u64>,
    /// Location ids by frame: a call site's own, and its caller's entry when it follows.
    locations: HashMap<Frame, u64>,
}

/// The id of the one mapping (the traced binary).
const MAPPING_ID: u64 = 1;

impl Tables<'_, '_> {
    /// The string table index of `s`.
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    /// The id of function `name` (defined in `file`, starting at `start_line` when known).
    fn function(&mut self, name: &str, file: &str, start_line: i64) -> u64 {
        if let Some(&id) = self.functions.get(name) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let function = Function {
            id,
            name: self.string(name),
            system_name: self.string(name),
            filename: self.string(file),
            start_line,
        };
        self.profile.function.push(function);
        self.functions.insert(name.to_owned(), id);
        id
    }

    /// Appends the location ids `frame` stands for (leaf first).
    fn locations_of(&mut self, frame: Frame, out: &mut Vec<u64>) {
        match frame {
            Frame::Entry(entry) => out.push(self.entry_location(entry)),
            Frame::Call { return_pc, caller } => {
                let frames = self.call_sites.get(&return_pc).cloned().unwrap_or_default();
                let Some(outermost) = frames.last() else {
                    // The call instruction is unknown: the caller alone.
                    out.push(self.entry_location(caller));
                    return;
                };
                let in_caller = self
                    .bin
                    .func_entered_at(caller)
                    .is_some_and(|f| f.name == outermost.function);
                out.push(self.call_location(return_pc, &frames));
                if !in_caller {
                    out.push(self.entry_location(caller));
                }
            }
            Frame::Named(index) => out.push(self.named_location(index)),
        }
    }

    /// The location of a frame without code: a function of its name, at no address or file.
    fn named_location(&mut self, index: u32) -> u64 {
        let key = Frame::Named(index);
        if let Some(&id) = self.locations.get(&key) {
            return id;
        }
        let name = self.named.get(index as usize).cloned().unwrap_or_default();
        let function_id = self.function(&name, "", 0);
        let line = vec![Line {
            function_id,
            line: 0,
            column: 0,
        }];
        self.push_location(key, 0, line)
    }

    /// The location of a function's own frame: its entry, at its first line.
    fn entry_location(&mut self, entry: u64) -> u64 {
        let key = Frame::Entry(entry);
        if let Some(&id) = self.locations.get(&key) {
            return id;
        }
        let func = self.bin.func_entered_at(entry);
        let (file, line) = func
            .and_then(|f| self.bin.pclntab.line(f, entry).ok().flatten())
            .unwrap_or(("", 0));
        let name = match (func, self.names.get(&entry)) {
            (Some(f), _) => f.name.to_owned(),
            (None, Some(name)) => name.clone(),
            (None, None) => format!("{entry:#x}"),
        };
        let function_id = self.function(&name, file, line);
        self.push_location(
            key,
            entry,
            vec![Line {
                function_id,
                line,
                column: 0,
            }],
        )
    }

    /// The location of a call instruction (by its return address) with its source frames.
    fn call_location(&mut self, return_pc: u64, frames: &[SourceFrame<'_>]) -> u64 {
        let key = Frame::Call {
            return_pc,
            caller: 0,
        };
        if let Some(&id) = self.locations.get(&key) {
            return id;
        }
        let lines = frames
            .iter()
            .map(|f| Line {
                function_id: self.function(f.function, f.file, 0),
                line: f.line,
                column: 0,
            })
            .collect();
        self.push_location(key, return_pc, lines)
    }

    fn push_location(&mut self, key: Frame, address: u64, line: Vec<Line>) -> u64 {
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(Location {
            id,
            mapping_id: MAPPING_ID,
            address,
            line,
            is_folded: false,
        });
        self.locations.insert(key, id);
        id
    }

    /// The binary's code, every frame already named.
    fn mapping(&mut self, meta: &Meta) -> Mapping {
        let start = self.bin.funcs.first().map_or(0, |f| f.entry);
        let limit = self.bin.funcs.last().map_or(0, |f| f.end);
        let build_id = crate::gobin::format::buildinfo::go_build_id(&self.bin.elf);
        Mapping {
            id: MAPPING_ID,
            memory_start: start,
            memory_limit: limit,
            file_offset: self.bin.elf.file_offset(start).unwrap_or(0),
            filename: self.string(&meta.binary),
            build_id: self.string(build_id.as_deref().unwrap_or("")),
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            has_inline_frames: true,
        }
    }
}
