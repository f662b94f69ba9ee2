//! The file formats of a Go binary, read from its bytes: ELF layout, build info, the pclntab
//! (functions, lines, SP deltas, inline trees), DWARF (types, signatures, inlined calls) and
//! the varints they share.

pub mod buildinfo;
pub mod dwarf;
pub mod dwarf_inline;
pub mod elf;
pub mod inline_tree;
pub mod pclntab;
pub mod symbols;
pub mod varint;
