//! Field offsets of runtime.g and runtime.m: from DWARF, or a per-Go-version table when stripped.
