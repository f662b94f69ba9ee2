//! Function signatures the user writes for binaries without DWARF (stripped builds), e.g.
//! `main.doWork(n int, s string) (int, error)`: the function name, and the parameter and
//! result types in the form [`crate::plan::capture`] plans from. Built-in types, pointers,
//! slices, `error`, `any`/`interface{}`, maps, channels and funcs are understood, and the
//! standard library's types of the binary's Go release (`*http.Request`, `context.Context`,
//! `time.Duration`: [`crate::gobin::runtime::stdlib_types`]), laid out as DWARF would give
//! them; the program's own struct types cannot be written, only pointers to them
//! (`*main.Server`). A method's receiver is its first parameter (docs/signatures.md).

use anyhow::{bail, Context, Result};

use crate::gobin::format::dwarf::{DwarfInfo, FuncSig, GoType, Param, TypeId, TypeKind, TypeTable};
use crate::gobin::runtime::stdlib_types::{self, StdTypes};
use crate::gobin::GoBinary;

/// A parsed signature: the types live in `types`.
#[derive(Debug, Clone)]
pub struct UserSignature {
    /// The function's name, the pattern before the parameter list.
    pub function: String,
    /// Its parameters and results, as written.
    pub sig: FuncSig,
    /// The types `sig` refers to.
    pub types: TypeTable,
}

/// Splits `pattern` into the function name and the signature text when it has one: the
/// parameter list is the first `(` not directly after a `.` (method names contain `.(`).
pub fn split_pattern(pattern: &str) -> (&str, Option<&str>) {
    let bytes = pattern.as_bytes();
    let open = (0..bytes.len()).find(|&i| bytes[i] == b'(' && (i == 0 || bytes[i - 1] != b'.'));
    match open {
        Some(i) if i > 0 => (pattern[..i].trim(), Some(&pattern[i..])),
        _ => (pattern, None),
    }
}

/// The patterns of a command line, split: the function names the planner matches, and the
/// signatures written in them (`'main.handle(w http.ResponseWriter, r *http.Request)'`),
/// parsed with the standard library's types of `bin`'s Go release (`args`, `funclat`).
pub fn parse_patterns(
    bin: &GoBinary<'_>,
    patterns: &[String],
) -> Result<(Vec<String>, Vec<UserSignature>)> {
    let mut user_sigs = Vec::new();
    let mut names = Vec::new();
    let mut std = None;
    for pattern in patterns {
        let (name, written) = split_pattern(pattern);
        if written.is_some() {
            let std = std
                .get_or_insert_with(|| {
                    stdlib_types::for_binary(bin.build.go_release(), bin.elf.arch)
                })
                .as_ref()
                .map_err(String::as_str);
            user_sigs.push(parse(pattern, bin.elf.arch.ptr_size(), std)?);
        }
        names.push(name.to_owned());
    }
    Ok((names, user_sigs))
}

/// Where each function's signature comes from: the one the user wrote, else DWARF's.
#[derive(Clone, Copy)]
pub struct Signatures<'a> {
    /// The signatures written on the command line.
    pub written: &'a [UserSignature],
    /// The binary's DWARF (None: stripped of it).
    pub dwarf: Option<&'a DwarfInfo>,
}

impl<'a> Signatures<'a> {
    /// The signature the user wrote for the function `name`, if any.
    pub fn written(&self, name: &str) -> Option<&'a UserSignature> {
        self.written.iter().find(|u| u.function == name)
    }

    /// The signature of the function `name` with code at `entry`, and the table of its
    /// types; None when it has neither a written one nor DWARF's.
    pub fn of(&self, name: &str, entry: u64) -> Option<(&'a FuncSig, &'a TypeTable)> {
        if let Some(user) = self.written(name) {
            return Some((&user.sig, &user.types));
        }
        let dwarf = self.dwarf?;
        Some((dwarf.signature(name, entry)?, &dwarf.types))
    }
}

/// The standard library's types a signature may name, or why there are none (the binary's
/// Go release has no embedded layouts).
pub type StdLibrary<'a> = std::result::Result<&'a StdTypes, &'a str>;

/// Parses `name(params) results` for a target whose pointers have `ptr_size` bytes, naming
/// the standard library's types of `std`.
pub fn parse(pattern: &str, ptr_size: u64, std: StdLibrary<'_>) -> Result<UserSignature> {
    let (function, Some(rest)) = split_pattern(pattern) else {
        bail!("{pattern:?} has no parameter list");
    };
    let context = || format!("signature {pattern:?}");
    let close = matching_paren(rest).with_context(|| {
        format!("signature {pattern:?}: unclosed parenthesis (the parameter list has no ')')")
    })?;
    let params_text = rest.get(1..close).with_context(context)?;
    let results_text = rest.get(close + 1..).with_context(context)?.trim();
    let results_text = match results_text.strip_prefix('(') {
        Some(_) => match matching_paren(results_text) {
            Some(end) if end + 1 == results_text.len() => &results_text[1..end],
            Some(_) => bail!("signature {pattern:?}: text after the results' ')'"),
            None => {
                bail!("signature {pattern:?}: unclosed parenthesis (the results' '(' has no ')')")
            }
        },
        None if results_text.contains(['(', ')']) => {
            bail!("signature {pattern:?}: unbalanced parentheses after the parameter list")
        }
        None => results_text,
    };
    let mut builder = Builder {
        types: match std {
            Ok(std) => (0..std.types.len())
                .map(|i| std.types.get(TypeId(i)).clone())
                .collect(),
            Err(_) => Vec::new(),
        },
        ptr_size,
        std,
    };
    let params = builder.params(params_text, "~p").with_context(context)?;
    let results = builder.params(results_text, "~r").with_context(context)?;
    Ok(UserSignature {
        function: function.to_owned(),
        sig: FuncSig { params, results },
        types: TypeTable::from_types(builder.types),
    })
}

/// Index of the `)` closing the `(` at the start of `text`.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at top-level commas.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

struct Builder<'s> {
    /// The standard library's types (ids as in `std`), then the written ones.
    types: Vec<GoType>,
    ptr_size: u64,
    std: StdLibrary<'s>,
}

impl Builder<'_> {
    /// A parameter list: `a, b int, s string`, or unnamed types `int, error`.
    fn params(&mut self, text: &str, unnamed_prefix: &str) -> Result<Vec<Param>> {
        let items = split_top_level(text);
        let named = items
            .iter()
            .any(|item| item.contains(' ') && !is_type_with_space(item));
        let mut params = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if !named {
                let ty = self.type_of(item)?;
                params.push(Param {
                    name: format!("{unnamed_prefix}{i}"),
                    ty,
                });
                continue;
            }
            match item.split_once(' ') {
                Some((name, ty_text)) => {
                    let ty = self.type_of(ty_text.trim())?;
                    for name in pending.drain(..).chain(std::iter::once(name.to_owned())) {
                        params.push(Param { name, ty });
                    }
                }
                None => pending.push((*item).to_owned()),
            }
        }
        if !pending.is_empty() {
            bail!("parameters {pending:?} have no type");
        }
        Ok(params)
    }

    fn add(&mut self, name: &str, size: u64, kind: TypeKind) -> TypeId {
        self.types.push(GoType {
            name: name.to_owned(),
            size,
            kind,
        });
        TypeId(self.types.len() - 1)
    }

    /// The type written as `text`.
    fn type_of(&mut self, text: &str) -> Result<TypeId> {
        let ptr = self.ptr_size;
        let int = |signed| TypeKind::Int { signed };
        let (size, kind) = match text {
            "bool" => (1, TypeKind::Bool),
            "int8" => (1, int(true)),
            "uint8" | "byte" => (1, int(false)),
            "int16" => (2, int(true)),
            "uint16" => (2, int(false)),
            "int32" | "rune" => (4, int(true)),
            "uint32" => (4, int(false)),
            "int64" => (8, int(true)),
            "uint64" => (8, int(false)),
            "int" => (ptr, int(true)),
            "uint" => (ptr, int(false)),
            "uintptr" => (ptr, TypeKind::Uintptr),
            "float32" => (4, TypeKind::Float),
            "float64" => (8, TypeKind::Float),
            "complex64" => (8, TypeKind::Complex),
            "complex128" => (16, TypeKind::Complex),
            "string" => (2 * ptr, TypeKind::String),
            "error" => (2 * ptr, TypeKind::Interface { empty: false }),
            "any" | "interface{}" | "interface {}" => (2 * ptr, TypeKind::Interface { empty: true }),
            "unsafe.Pointer" => (ptr, TypeKind::UnsafePointer),
            _ if text.starts_with('*') => return self.pointer(text),
            _ if text.starts_with("map[") => (ptr, TypeKind::Map),
            _ if text.starts_with("chan ") || text.starts_with("<-chan ") => (ptr, TypeKind::Chan),
            _ if text.starts_with("func(") => (ptr, TypeKind::Func),
            _ if text.starts_with("[]") => {
                let elem = self.type_of(&text[2..])?;
                (3 * ptr, TypeKind::Slice { elem })
            }
            _ if text.contains('.') => return self.library_type(text),
            _ => bail!(
                "unknown type {text:?} (a signature can use built-in types, pointers, slices, error, any, maps, chans, funcs and the standard library's types such as *http.Request)"
            ),
        };
        Ok(self.add(text, size, kind))
    }

    /// `*T`: DWARF's pointer type when T is the standard library's, else a pointer whose
    /// target is not read (the program's own types, built-in ones).
    fn pointer(&mut self, text: &str) -> Result<TypeId> {
        let target = text[1..].trim();
        if let Ok(std) = self.std {
            if let Some(id) = std.lookup(text) {
                return Ok(id);
            }
            if let Some(elem) = std.lookup(target) {
                let name = format!("*{}", std.types.name(elem));
                return Ok(self.add(&name, self.ptr_size, TypeKind::Pointer { elem: Some(elem) }));
            }
        }
        Ok(self.add(text, self.ptr_size, TypeKind::Pointer { elem: None }))
    }

    /// A named type of the standard library (`http.Header`, `net/http.Header`).
    fn library_type(&self, text: &str) -> Result<TypeId> {
        let std = match self.std {
            Ok(std) => std,
            Err(why) => bail!(
                "{text}: {why}; write built-in types, or a pointer (*T), or trace an unstripped build"
            ),
        };
        std.lookup(text).with_context(|| {
            format!(
                "unknown type {text:?}: a signature can name the standard library's types listed in docs/signatures.md; the program's own struct types only through a pointer (*{text})"
            )
        })
    }
}

/// Types whose spelling contains a space (`chan T`, `interface {}`), so that an unnamed
/// list of them is not taken for `name type` pairs.
fn is_type_with_space(item: &str) -> bool {
    item.starts_with("chan ") || item.starts_with("<-chan ") || item == "interface {}"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gobin::runtime::stdlib_types;

    const NO_STD: StdLibrary<'static> = Err("no standard library here");

    #[test]
    fn names_the_standard_librarys_types() {
        let std = stdlib_types::for_release((1, 19), 8).unwrap();
        let sig = parse(
            "main.(*S).handle(s *main.S, w http.ResponseWriter, r *http.Request, d time.Duration) error",
            8,
            Ok(&std),
        )
        .unwrap();
        let names: Vec<&str> = sig
            .sig
            .params
            .iter()
            .map(|p| sig.types.name(p.ty))
            .collect();
        assert_eq!(
            names,
            [
                "*main.S",
                "net/http.ResponseWriter",
                "*net/http.Request",
                "time.Duration"
            ]
        );
        let r = sig.types.get(sig.sig.params[2].ty);
        let TypeKind::Pointer {
            elem: Some(request),
        } = r.kind
        else {
            panic!("*http.Request has no target: {r:?}");
        };
        let TypeKind::Struct { fields } = &sig.types.get(request).kind else {
            panic!("http.Request is no struct");
        };
        let url = fields.iter().find(|f| f.name == "URL").unwrap();
        assert_eq!(sig.types.name(url.ty), "*net/url.URL");
        assert!(parse("main.f(r *http.Request)", 8, NO_STD).is_ok());
        assert!(parse("main.f(h http.Header)", 8, NO_STD).is_err());
    }

    fn names_and_types(sig: &UserSignature, params: &[Param]) -> Vec<(String, String)> {
        params
            .iter()
            .map(|p| (p.name.clone(), sig.types.name(p.ty).to_owned()))
            .collect()
    }

    #[test]
    fn splits_method_names_from_parameters() {
        assert_eq!(
            split_pattern("main.(*T).M(n int)"),
            ("main.(*T).M", Some("(n int)"))
        );
        assert_eq!(split_pattern("main.*"), ("main.*", None));
    }

    #[test]
    fn grouped_named_and_unnamed() {
        let sig = parse("main.f(a, b int, s string) (q int, err error)", 8, NO_STD).unwrap();
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names_and_types(&sig, &sig.sig.params),
            pairs(&[("a", "int"), ("b", "int"), ("s", "string")])
        );
        assert_eq!(
            names_and_types(&sig, &sig.sig.results),
            pairs(&[("q", "int"), ("err", "error")])
        );
        let sig = parse("main.g([]byte) (int, error)", 4, NO_STD).unwrap();
        assert_eq!(sig.sig.params[0].name, "~p0");
        assert_eq!(sig.types.get(sig.sig.params[0].ty).size, 12);
        assert_eq!(
            names_and_types(&sig, &sig.sig.results),
            pairs(&[("~r0", "int"), ("~r1", "error")])
        );
        let sig = parse("main.h(n int) int64", 8, NO_STD).unwrap();
        assert_eq!(
            names_and_types(&sig, &sig.sig.results),
            pairs(&[("~r0", "int64")])
        );
    }

    #[test]
    fn rejects_what_it_cannot_lay_out() {
        assert!(parse("main.f(p main.Point)", 8, NO_STD).is_err());
        assert!(parse("main.f(a, b)", 8, NO_STD).is_err());
        assert!(parse("main.f(n int", 8, NO_STD).is_err());
        let std = stdlib_types::for_release((1, 27), 8).unwrap();
        assert!(parse("main.f(p main.Point)", 8, Ok(&std)).is_err());
        assert!(parse("main.f(p http.NoSuchType)", 8, Ok(&std)).is_err());
    }
}
