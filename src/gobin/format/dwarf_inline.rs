//! DWARF's view of inlined calls (optional; the pclntab's inline trees in [`super::inline_tree`]
//! need no DWARF): every `DW_TAG_inlined_subroutine` below a concrete subprogram, with the
//! inlined function's name (from its `DW_AT_abstract_origin`), the enclosing calls, the call
//! site (`DW_AT_call_file` in the unit's line-program file table, `DW_AT_call_line`), the PC
//! ranges (`DW_AT_low_pc`/`DW_AT_high_pc` or `DW_AT_ranges`) and the formal parameters with
//! their locations (an expression, or a location list of PC ranges), as Go's compiler writes
//! them (cmd/compile/internal/dwarfgen/dwinl.go; the ranges of a call include those of the
//! calls inlined into it).

use std::collections::HashMap;

use anyhow::{Context, Result};
use gimli::{constants, AttributeValue, EndianSlice, RunTimeEndian};

use super::dwarf::sections;

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// One inlined call as DWARF describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinedSubroutine {
    /// The inlined function (the name on its abstract origin).
    pub func: String,
    /// The out-of-line subprogram whose code holds the call.
    pub parent: String,
    /// The inlined calls enclosing this one, innermost first.
    pub callers: Vec<String>,
    /// Call site; an empty file when the unit's file table has no such entry.
    pub call_file: String,
    /// Line of the call site (`DW_AT_call_line`).
    pub call_line: u64,
    /// `[lo, hi)` PC ranges, as DWARF lists them.
    pub ranges: Vec<(u64, u64)>,
    /// Formal parameters (and named results) of the inlined body, in DWARF order.
    pub params: Vec<InlinedParam>,
}

/// A formal parameter of an inlined call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinedParam {
    /// The parameter's name in the source.
    pub name: String,
    /// `DW_AT_variable_parameter`: a result, not an argument.
    pub is_result: bool,
    /// Where its value is, over the call's PC ranges.
    pub location: ParamLocation,
}

/// Where a parameter's value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamLocation {
    /// The compiler kept no location (optimized away).
    None,
    /// One DWARF expression, valid over the whole call.
    Expr(Vec<u8>),
    /// A location list: an expression per `[lo, hi)` PC range.
    List(Vec<(u64, u64, Vec<u8>)>),
}

impl ParamLocation {
    /// The expression that locates the value at `pc`; None when DWARF gives none there.
    pub fn at(&self, pc: u64) -> Option<&[u8]> {
        match self {
            ParamLocation::None => None,
            ParamLocation::Expr(expr) => Some(expr),
            ParamLocation::List(ranges) => ranges
                .iter()
                .find(|(lo, hi, _)| (*lo..*hi).contains(&pc))
                .map(|(_, _, expr)| expr.as_slice()),
        }
    }
}

/// Where one piece of a value is, by a DWARF location expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceLoc {
    /// In the register with this DWARF number.
    Register(u16),
    /// In memory at this offset from the frame base (Go's `DW_AT_frame_base` is the CFA).
    FrameOffset(i64),
    /// Optimized away (a piece with no location).
    Missing,
}

/// One piece of a value: where it is and, under `DW_OP_piece`, its size in bytes (None: the
/// location holds the whole value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocatedPiece {
    /// Where the piece is.
    pub loc: PieceLoc,
    /// Its size in bytes under `DW_OP_piece` (None: the whole value).
    pub size: Option<u64>,
}

/// The pieces a location expression, as Go's compiler writes them (a register, `DW_OP_fbreg`,
/// or a list of those each ended by `DW_OP_piece`), puts a value in; an empty expression gives
/// none. Err names an operation it does not evaluate.
pub fn location_pieces(expr: &[u8], address_size: u8) -> Result<Vec<LocatedPiece>, String> {
    let encoding = gimli::Encoding {
        format: gimli::Format::Dwarf32,
        version: 4,
        address_size,
    };
    let mut ops =
        gimli::Expression(EndianSlice::new(expr, RunTimeEndian::Little)).operations(encoding);
    let mut pieces = Vec::new();
    let mut current: Option<PieceLoc> = None;
    while let Some(op) = ops
        .next()
        .map_err(|e| format!("its DWARF location does not parse ({e})"))?
    {
        current = Some(match (op, current.take()) {
            (
                gimli::Operation::Piece {
                    size_in_bits,
                    bit_offset: None,
                },
                loc,
            ) if size_in_bits % 8 == 0 => {
                pieces.push(LocatedPiece {
                    loc: loc.unwrap_or(PieceLoc::Missing),
                    size: Some(size_in_bits / 8),
                });
                continue;
            }
            (gimli::Operation::Register { register }, None) => PieceLoc::Register(register.0),
            (gimli::Operation::FrameOffset { offset }, None) => PieceLoc::FrameOffset(offset),
            (gimli::Operation::CallFrameCFA, None) => PieceLoc::FrameOffset(0),
            (gimli::Operation::PlusConstant { value }, Some(PieceLoc::FrameOffset(offset))) => {
                PieceLoc::FrameOffset(offset.wrapping_add(value as i64))
            }
            (op, _) => {
                return Err(format!(
                    "its DWARF location uses {op:?}, which gotrace does not evaluate"
                ))
            }
        });
    }
    if let Some(loc) = current.filter(|_| pieces.is_empty()) {
        pieces.push(LocatedPiece { loc, size: None });
    } else if current.is_some() {
        return Err("its DWARF location ends with a piece of no size".to_owned());
    }
    Ok(pieces)
}

/// DWARF's inlined calls, found by what the pclntab says of an instance.
#[derive(Debug, Default)]
pub struct InlinedCallIndex {
    /// By (parent, function, call line), the names with their type arguments erased.
    calls: HashMap<(String, String, u64), Vec<InlinedSubroutine>>,
}

/// `name` with each type-argument list written `[...]`, as Go 1.18-1.19 name every
/// instantiation of a generic function in the pclntab (`main.maxOf[...]`, where DWARF says
/// `main.maxOf[go.shape.int_0]`). Names of later releases agree with DWARF's anyway.
pub(crate) fn erase_type_args(name: &str) -> String {
    let mut erased = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    erased.push_str("[...]");
                }
                depth += 1;
            }
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => erased.push(c),
            _ => {}
        }
    }
    erased
}

impl InlinedCallIndex {
    /// Indexes `calls`.
    pub fn new(calls: Vec<InlinedSubroutine>) -> Self {
        let mut index = InlinedCallIndex::default();
        for call in calls {
            let key = (
                erase_type_args(&call.parent),
                erase_type_args(&call.func),
                call.call_line,
            );
            index.calls.entry(key).or_default().push(call);
        }
        index
    }

    /// The inlined call of `func` in `parent` at `call_line`, inside the inlined calls
    /// `callers` (innermost first), whose ranges overlap `ranges`. Names are compared with
    /// their type arguments erased (see [`erase_type_args`]); the ranges tell instantiations
    /// apart.
    pub fn find<S: AsRef<str>>(
        &self,
        parent: &str,
        func: &str,
        call_line: i64,
        callers: &[S],
        ranges: &[(u64, u64)],
    ) -> Option<&InlinedSubroutine> {
        let key = (
            erase_type_args(parent),
            erase_type_args(func),
            u64::try_from(call_line).ok()?,
        );
        let overlaps = |theirs: &[(u64, u64)]| {
            theirs
                .iter()
                .any(|&(lo, hi)| ranges.iter().any(|&(l, h)| lo < h && l < hi))
        };
        self.calls.get(&key)?.iter().find(|call| {
            call.callers.len() == callers.len()
                && call
                    .callers
                    .iter()
                    .zip(callers)
                    .all(|(a, b)| erase_type_args(a) == erase_type_args(b.as_ref()))
                && overlaps(&call.ranges)
        })
    }
}

/// What an open DIE contributes to the inlined calls below it.
enum Open {
    /// A subprogram with code, by name.
    Subprogram(String),
    /// An inlined call, by index into the result.
    Inlined(usize),
    /// Something else (a lexical block, an abstract subprogram...).
    Other,
}

/// Every inlined call of a binary's DWARF; None when the binary has no DWARF.
pub fn inlined_subroutines(elf: &object::File<'_>) -> Result<Option<Vec<InlinedSubroutine>>> {
    let Some((sections, endian)) = sections(elf, true)? else {
        return Ok(None);
    };
    let dwarf = sections.borrow(|data| EndianSlice::new(data, endian));
    let names = origin_names(&dwarf)?;
    let mut found = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next().context("reading a DWARF unit header")? {
        let unit = dwarf.unit(header).context("reading a DWARF unit")?;
        unit_calls(&dwarf, &unit, &names, &mut found)
            .with_context(|| format!("reading the DWARF unit at {:?}", unit.header.offset()))?;
    }
    Ok(Some(found))
}

/// Names of every subprogram and formal parameter DIE, by `.debug_info` offset (abstract
/// origins may be in another unit), and whether each parameter is a result.
fn origin_names(dwarf: &gimli::Dwarf<Reader<'_>>) -> Result<HashMap<usize, (String, bool)>> {
    let mut names = HashMap::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let mut entries = unit.entries();
        while let Some(entry) = entries.next_dfs()? {
            if !matches!(
                entry.tag(),
                constants::DW_TAG_subprogram | constants::DW_TAG_formal_parameter
            ) {
                continue;
            }
            let Some(name) = entry.attr_value(constants::DW_AT_name) else {
                continue;
            };
            let name = string(dwarf, &unit, name)?;
            let is_result = matches!(
                entry.attr_value(constants::DW_AT_variable_parameter),
                Some(AttributeValue::Flag(true))
            );
            if let Some(offset) = entry.offset().to_debug_info_offset(&unit.header) {
                names.insert(offset.0, (name, is_result));
            }
        }
    }
    Ok(names)
}

/// The inlined calls of one unit, appended to `found`.
fn unit_calls(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    names: &HashMap<usize, (String, bool)>,
    found: &mut Vec<InlinedSubroutine>,
) -> Result<()> {
    let origin = |entry: &gimli::DebuggingInformationEntry<Reader<'_>>| {
        let offset = match entry.attr_value(constants::DW_AT_abstract_origin)? {
            AttributeValue::UnitRef(o) => o.to_debug_info_offset(&unit.header)?.0,
            AttributeValue::DebugInfoRef(o) => o.0,
            _ => return None,
        };
        names.get(&offset)
    };
    let mut open: Vec<(isize, Open)> = Vec::new();
    let mut entries = unit.entries();
    while let Some(entry) = entries.next_dfs()? {
        let depth = entry.depth();
        while open.last().is_some_and(|(d, _)| *d >= depth) {
            open.pop();
        }
        let this = match entry.tag() {
            constants::DW_TAG_subprogram if entry.attr(constants::DW_AT_low_pc).is_some() => {
                let name = match entry.attr_value(constants::DW_AT_name) {
                    Some(name) => string(dwarf, unit, name)?,
                    None => origin(entry).map(|n| n.0.clone()).unwrap_or_default(),
                };
                Open::Subprogram(name)
            }
            constants::DW_TAG_inlined_subroutine => {
                let mut callers = Vec::new();
                let mut parent = String::new();
                for (_, up) in open.iter().rev() {
                    match up {
                        Open::Inlined(i) => callers.push(found[*i].func.clone()),
                        Open::Subprogram(name) => {
                            parent = name.clone();
                            break;
                        }
                        Open::Other => {}
                    }
                }
                let call_file = match entry.attr_value(constants::DW_AT_call_file) {
                    Some(AttributeValue::FileIndex(index)) => file_name(dwarf, unit, index)?,
                    Some(other) => match other.udata_value() {
                        Some(index) => file_name(dwarf, unit, index)?,
                        None => String::new(),
                    },
                    None => String::new(),
                };
                let mut ranges = Vec::new();
                let mut iter = dwarf.die_ranges(unit, entry)?;
                while let Some(range) = iter.next()? {
                    ranges.push((range.begin, range.end));
                }
                found.push(InlinedSubroutine {
                    func: origin(entry).map(|n| n.0.clone()).unwrap_or_default(),
                    parent,
                    callers,
                    call_file,
                    call_line: entry
                        .attr_value(constants::DW_AT_call_line)
                        .and_then(|v| v.udata_value())
                        .unwrap_or(0),
                    ranges,
                    params: Vec::new(),
                });
                Open::Inlined(found.len() - 1)
            }
            constants::DW_TAG_formal_parameter => {
                if let Some(&(d, Open::Inlined(i))) = open.last() {
                    if d == depth - 1 {
                        let (name, is_result) = origin(entry).cloned().unwrap_or_default();
                        let location = location(dwarf, unit, entry)?;
                        found[i].params.push(InlinedParam {
                            name,
                            is_result,
                            location,
                        });
                    }
                }
                Open::Other
            }
            _ => Open::Other,
        };
        if entry.has_children() {
            open.push((depth, this));
        }
    }
    Ok(())
}

/// Name of entry `index` of the unit's line-program file table, with its directory.
fn file_name(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    index: u64,
) -> Result<String> {
    let Some(program) = &unit.line_program else {
        return Ok(String::new());
    };
    let header = program.header();
    let Some(file) = header.file(index) else {
        return Ok(String::new());
    };
    let name = string(dwarf, unit, file.path_name())?;
    let dir = match file.directory(header) {
        Some(dir) if file.directory_index() != 0 => string(dwarf, unit, dir)?,
        _ => String::new(),
    };
    Ok(if dir.is_empty() {
        name
    } else {
        format!("{dir}/{name}")
    })
}

/// `DW_AT_location` of a formal parameter: an expression or a location list.
fn location(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    entry: &gimli::DebuggingInformationEntry<Reader<'_>>,
) -> Result<ParamLocation> {
    let Some(value) = entry.attr_value(constants::DW_AT_location) else {
        return Ok(ParamLocation::None);
    };
    if let Some(expr) = value.exprloc_value() {
        return Ok(ParamLocation::Expr(expr.0.slice().to_vec()));
    }
    let Some(mut list) = dwarf.attr_locations(unit, value)? else {
        return Ok(ParamLocation::None);
    };
    let mut pieces = Vec::new();
    while let Some(piece) = list.next()? {
        pieces.push((
            piece.range.begin,
            piece.range.end,
            piece.data.0.slice().to_vec(),
        ));
    }
    Ok(ParamLocation::List(pieces))
}

/// A string attribute (inline or in `.debug_str`/`.debug_line_str`), lossily as UTF-8.
fn string(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    value: AttributeValue<Reader<'_>>,
) -> Result<String> {
    let raw = dwarf.attr_string(unit, value)?;
    Ok(String::from_utf8_lossy(raw.slice()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::erase_type_args;

    #[test]
    fn type_arguments_are_erased() {
        assert_eq!(
            erase_type_args("main.maxOf[go.shape.int_0]"),
            "main.maxOf[...]"
        );
        assert_eq!(erase_type_args("main.maxOf[...]"), "main.maxOf[...]");
        assert_eq!(
            erase_type_args("main.(*List[go.shape.map[string]int]).Push"),
            "main.(*List[...]).Push"
        );
        assert_eq!(erase_type_args("main.add"), "main.add");
    }
}
