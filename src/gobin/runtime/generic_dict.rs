//! The dictionary parameter that Go's DWARF left out of shape instantiations before Go 1.27.
//!
//! Since Go 1.18 a generic function is compiled once per *shape* (`pkg.F[go.shape.int]`) and
//! takes, before its own parameters (a method's receiver included), a pointer to the
//! instantiation's dictionary named `.dict` (`noder.stencil` in 1.18-1.19, the unified IR's
//! `dictParamName` from 1.20). DWARF generation skipped every name starting with `.`
//! (`dwarfgen.createDwarfVars`, `ir.IsSynthetic`), so up to Go 1.26 the DWARF of
//! `main.generic[go.shape.int](v int)` lists only `v`, which the ABI still places after the
//! dictionary (AX then BX on amd64; the second stack word on 386). Go 1.27's DWARF lists
//! `.dict`. Seen with `gotrace list --json` and `readelf --debug-dump=info` on
//! examples/go-targets/goshapes and inlined (1.19, 1.21.13, 1.24.11, 1.27.3): without the
//! dictionary, `v` read as the dictionary's address.
//!
//! [`complete`] puts `.dict` back, as one pointer word, where DWARF lacks it.

use crate::gobin::format::dwarf::{DwarfInfo, GoType, Param, TypeKind};
use crate::gobin::format::dwarf_inline::erase_type_args;

/// The compiler's name of the dictionary parameter.
pub const DICT_NAME: &str = ".dict";

/// Whether `name` (DWARF's) is a function compiled for a shape that takes a dictionary: a
/// generic function `pkg.F[go.shape...]` or a method of a generic type
/// `pkg.(*T[go.shape...]).M`, not a closure inside one (`pkg.F[go.shape.int].func1`, which
/// reaches the dictionary through its closure context).
fn takes_dictionary(name: &str) -> bool {
    if !name.contains("go.shape.") {
        return false;
    }
    let erased = erase_type_args(name);
    if erased.ends_with("[...]") {
        return true;
    }
    let Some((head, method)) = erased.rsplit_once('.') else {
        return false;
    };
    let closure = ["func", "gowrap", "deferwrap"].iter().any(|prefix| {
        method
            .strip_prefix(prefix)
            .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
    }) || method.chars().all(|c| c.is_ascii_digit());
    (head.ends_with("[...]") || head.ends_with("[...])")) && !closure
}

/// Adds the dictionary parameter to every shape instantiation whose DWARF lacks it.
/// `ptr_size`: the binary's pointer size.
pub fn complete(info: &mut DwarfInfo, ptr_size: u64) {
    let mut dict_type = None;
    for (name, sig) in &mut info.functions {
        if !takes_dictionary(name) || sig.params.first().is_some_and(|p| p.name == DICT_NAME) {
            continue;
        }
        let ty = *dict_type.get_or_insert_with(|| {
            let uintptr = info.types.find("uintptr");
            info.types.push(GoType {
                name: "*uintptr".to_owned(),
                size: ptr_size,
                kind: TypeKind::Pointer { elem: uintptr },
            })
        });
        sig.params.insert(
            0,
            Param {
                name: DICT_NAME.to_owned(),
                ty,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::takes_dictionary;

    #[test]
    fn shape_instantiations_take_a_dictionary() {
        assert!(takes_dictionary("main.maxOf[go.shape.int_0]"));
        assert!(takes_dictionary("main.(*List[go.shape.string]).Push"));
        assert!(takes_dictionary(
            "main.Pair[go.shape.int,go.shape.string].Key"
        ));
        assert!(!takes_dictionary("main.maxOf[go.shape.int].func1"));
        assert!(!takes_dictionary("main.maxOf[go.shape.int].func1.2"));
        assert!(!takes_dictionary("main.maxOf[go.shape.int].gowrap1"));
        assert!(!takes_dictionary("main.maxOf[int]"));
        assert!(!takes_dictionary("main.add"));
    }
}
