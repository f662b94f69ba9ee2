//! The standard library's types for binaries without DWARF: for each Go release in
//! [`stdlib_types.tsv`](stdlib_types.tsv) and each pointer size, the same [`TypeTable`] that
//! [`crate::gobin::format::dwarf`] reads from an unstripped build, so that a written signature
//! may name `*http.Request` or `context.Context` and everything planned from it (values, field
//! paths) cannot tell the difference.
//!
//! Where the table comes from: `scripts/stdlib-types/main.go` holds one value of each root type
//! (net/http Request, Response, Header, ResponseWriter, Handler, HandlerFunc, Cookie, Client,
//! Server, RoundTripper; net/url URL, Values, Userinfo; context Context, CancelFunc; time Time,
//! Duration, Location, Month, Weekday, Timer, Ticker; error; bytes Buffer, Reader; strings
//! Builder, Reader; sync Mutex, RWMutex, WaitGroup, Once, Map, Pool, Cond; os File, Signal;
//! io/fs FileMode, FileInfo; net Conn, Listener, Addr, IP, IPNet, TCPAddr, UDPAddr, TCPConn,
//! UDPConn, TCPListener; io Reader, Writer, ReadCloser, WriteCloser, ReadWriter,
//! ReadWriteCloser; bufio Reader, Writer, ReadWriter; with pointers to the structs).
//! `tests/stdlib_types.rs` builds it with every installed toolchain for amd64 (its 64-bit
//! layout is arm64's too) and 386, reads the DWARF with gotrace's reader and writes each type
//! the roots contain, by value to any depth, and through pointers and slices into the packages
//! above (plus io/fs, internal/poll, sync/atomic and the runtime's parts they embed). A type
//! reached only through a pointer out of those packages (`*tls.ConnectionState`) is kept by
//! name and size, of unknown kind: its fields are not known. The same test checks every row
//! against each toolchain's DWARF as Go's `debug/dwarf` reads it.
//!
//! The file (one line a type: the mask of the columns, release/pointer bits, that have it,
//! then kind, size, name and the kind's details, tab-separated; a struct's details are its
//! fields, `name offset type` each, the name marked `+` when the field is embedded) shares
//! every line that releases have in common.

use std::collections::HashMap;

use crate::gobin::format::dwarf::{Field, GoType, TypeId, TypeKind, TypeTable};
use crate::gobin::Arch;

/// Before a struct field's name in the table: the field is embedded (DWARF's
/// `DW_AT_go_embedded_field`), so its fields are promoted. No Go identifier begins with it.
const EMBEDDED_MARK: &str = "+";

/// The generated layouts (see the module doc).
pub const TABLE: &str = include_str!("stdlib_types.tsv");

/// Aliases the standard library declares (`type FileMode = fs.FileMode`): DWARF knows only
/// the target's name.
const ALIASES: &[(&str, &str)] = &[
    ("os.FileMode", "io/fs.FileMode"),
    ("os.FileInfo", "io/fs.FileInfo"),
];

/// The standard library's types for one Go release and pointer size.
#[derive(Debug, Clone)]
pub struct StdTypes {
    /// Every type, as DWARF would give it.
    pub types: TypeTable,
    /// Ids by Go name as DWARF spells it (`*net/http.Request`) and by the name a Go source
    /// file writes (`*http.Request`).
    by_name: HashMap<String, TypeId>,
}

impl StdTypes {
    /// The type a signature names, by DWARF's name or Go's (`*http.Request`, `os.FileMode`).
    pub fn lookup(&self, written: &str) -> Option<TypeId> {
        let stars = written.len() - written.trim_start_matches('*').len();
        let (prefix, base) = written.split_at(stars);
        let base = ALIASES
            .iter()
            .find(|(alias, _)| *alias == base)
            .map_or(base, |(_, target)| target);
        self.by_name.get(&format!("{prefix}{base}")).copied()
    }
}

/// The Go releases (`1.21`) the table has columns for, each once, oldest first.
pub fn releases() -> Vec<String> {
    let mut out: Vec<String> = columns()
        .filter_map(|c| c.split_once('/').map(|(release, _)| release.to_owned()))
        .collect();
    out.dedup();
    out
}

/// The column labels of the table's header, `1.21/64`.
fn columns() -> impl Iterator<Item = &'static str> {
    TABLE
        .lines()
        .find_map(|line| line.strip_prefix("columns\t"))
        .unwrap_or("")
        .split('\t')
}

/// The standard library's types of a binary built by Go `release` (None: unknown) for
/// `arch`, or why there are none.
pub fn for_binary(release: Option<(u32, u32)>, arch: Arch) -> Result<StdTypes, String> {
    let (major, minor) = release.ok_or("the binary's Go release is unknown (no build info), so its standard library's layouts are too")?;
    for_release((major, minor), arch.ptr_size()).ok_or_else(|| {
        format!(
            "gotrace has no layouts of Go {major}.{minor}'s standard library (it has {}, from their toolchains' DWARF)",
            releases().join(", ")
        )
    })
}

/// The standard library's types of Go `major.minor` with pointers of `ptr_size` bytes; None
/// when the table has no column for them.
pub fn for_release((major, minor): (u32, u32), ptr_size: u64) -> Option<StdTypes> {
    let label = format!("{major}.{minor}/{}", ptr_size * 8);
    let column = columns().position(|c| c == label)?;
    let rows: Vec<Vec<&str>> = TABLE
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("columns\t"))
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .filter(|row| {
            row.first()
                .and_then(|mask| u64::from_str_radix(mask, 16).ok())
                .is_some_and(|mask| mask >> column & 1 == 1)
        })
        .collect();
    let mut by_name: HashMap<String, TypeId> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(name) = row.get(3) {
            by_name.entry((*name).to_owned()).or_insert(TypeId(i));
        }
    }
    let mut extra = Vec::new();
    let mut id_of = |name: &str| -> TypeId {
        if let Some(&id) = by_name.get(name) {
            return id;
        }
        // A name no row defines (a corrupt table): an unknown type, as DWARF's reader gives.
        extra.push(GoType {
            name: name.to_owned(),
            size: 0,
            kind: TypeKind::Unknown,
        });
        let id = TypeId(rows.len() + extra.len() - 1);
        by_name.insert(name.to_owned(), id);
        id
    };
    let mut types: Vec<GoType> = rows.iter().map(|row| parse_row(row, &mut id_of)).collect();
    types.extend(extra);
    for (i, ty) in types.iter().enumerate() {
        if let Some(short) = source_name(&ty.name) {
            by_name.entry(short).or_insert(TypeId(i));
        }
    }
    Some(StdTypes {
        types: TypeTable::from_types(types),
        by_name,
    })
}

/// One row (mask, kind, size, name, details) as a type, naming other types through `id_of`.
fn parse_row(row: &[&str], id_of: &mut impl FnMut(&str) -> TypeId) -> GoType {
    let field = |i: usize| row.get(i).copied().unwrap_or("");
    let number = |i: usize| field(i).parse::<u64>().unwrap_or(0);
    let kind = match field(1) {
        "bool" => TypeKind::Bool,
        "int" => TypeKind::Int { signed: true },
        "uint" => TypeKind::Int { signed: false },
        "uintptr" => TypeKind::Uintptr,
        "float" => TypeKind::Float,
        "complex" => TypeKind::Complex,
        "string" => TypeKind::String,
        "ptr" => TypeKind::Pointer {
            elem: row.get(4).map(|elem| id_of(elem)),
        },
        "unsafeptr" => TypeKind::UnsafePointer,
        "slice" => TypeKind::Slice {
            elem: id_of(field(4)),
        },
        "array" => TypeKind::Array {
            len: number(4),
            elem: id_of(field(5)),
        },
        "struct" => TypeKind::Struct {
            fields: row
                .iter()
                .skip(4)
                .filter_map(|f| {
                    let mut parts = f.splitn(3, ' ');
                    let (name, offset, ty) = (parts.next()?, parts.next()?, parts.next()?);
                    let (name, embedded) = match name.strip_prefix(EMBEDDED_MARK) {
                        Some(name) => (name, true),
                        None => (name, false),
                    };
                    Some(Field {
                        name: name.to_owned(),
                        offset: offset.parse().ok()?,
                        ty: id_of(ty),
                        embedded,
                    })
                })
                .collect(),
        },
        "map" => TypeKind::Map,
        "chan" => TypeKind::Chan,
        "func" => TypeKind::Func,
        "iface" => TypeKind::Interface { empty: false },
        "eface" => TypeKind::Interface { empty: true },
        _ => TypeKind::Unknown,
    };
    GoType {
        name: field(3).to_owned(),
        size: number(2),
        kind,
    }
}

/// How Go source names a named type of the table: its package's last path element, `*`s kept
/// (`*net/http.Request` → `*http.Request`); None for a type already named so (or unnamed).
fn source_name(dwarf_name: &str) -> Option<String> {
    let base = dwarf_name.trim_start_matches('*');
    let prefix = &dwarf_name[..dwarf_name.len() - base.len()];
    if base.contains(['[', '(', ' ', '{']) {
        return None;
    }
    let (path, name) = base.rsplit_once('.')?;
    let (_, package) = path.rsplit_once('/')?;
    Some(format!("{prefix}{package}.{name}"))
}

/// The kind word and details of a row for `ty` (the inverse of [`parse_row`]), naming other
/// types by `name_of`; used by the generator (tests/stdlib_types.rs).
pub fn row_of(ty: &GoType, name_of: impl Fn(TypeId) -> String) -> Vec<String> {
    let mut row = Vec::new();
    let kind = match &ty.kind {
        TypeKind::Bool => "bool",
        TypeKind::Int { signed: true } => "int",
        TypeKind::Int { signed: false } => "uint",
        TypeKind::Uintptr => "uintptr",
        TypeKind::Float => "float",
        TypeKind::Complex => "complex",
        TypeKind::String => "string",
        TypeKind::Pointer { elem } => {
            row.extend(elem.map(&name_of));
            "ptr"
        }
        TypeKind::UnsafePointer => "unsafeptr",
        TypeKind::Slice { elem } => {
            row.push(name_of(*elem));
            "slice"
        }
        TypeKind::Array { elem, len } => {
            row.push(len.to_string());
            row.push(name_of(*elem));
            "array"
        }
        TypeKind::Struct { fields } => {
            row.extend(fields.iter().map(|f| {
                let mark = if f.embedded { EMBEDDED_MARK } else { "" };
                format!("{mark}{} {} {}", f.name, f.offset, name_of(f.ty))
            }));
            "struct"
        }
        TypeKind::Map => "map",
        TypeKind::Chan => "chan",
        TypeKind::Func => "func",
        TypeKind::Interface { empty: false } => "iface",
        TypeKind::Interface { empty: true } => "eface",
        TypeKind::Unknown => "unknown",
    };
    let mut out = vec![kind.to_owned(), ty.size.to_string(), ty.name.clone()];
    out.extend(row);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_go_source_writes_them() {
        assert_eq!(
            source_name("*net/http.Request").as_deref(),
            Some("*http.Request")
        );
        assert_eq!(source_name("context.Context"), None);
        assert_eq!(source_name("map[string][]string"), None);
    }

    #[test]
    fn every_release_has_the_http_types() {
        for release in releases() {
            let (major, minor) = release.split_once('.').unwrap();
            let release = (major.parse().unwrap(), minor.parse().unwrap());
            for ptr_size in [8, 4] {
                let std = for_release(release, ptr_size).unwrap();
                for name in [
                    "*http.Request",
                    "http.ResponseWriter",
                    "context.Context",
                    "os.FileMode",
                ] {
                    let id = std
                        .lookup(name)
                        .unwrap_or_else(|| panic!("{name} in {release:?}"));
                    assert_ne!(std.types.get(id).kind, TypeKind::Unknown, "{name}");
                }
                let request = std.lookup("http.Request").unwrap();
                let TypeKind::Struct { fields } = &std.types.get(request).kind else {
                    panic!("http.Request is no struct");
                };
                assert_eq!(fields[0].name, "Method");
                assert_eq!(std.types.name(fields[0].ty), "string");
            }
        }
    }
}
