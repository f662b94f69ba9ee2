//! DWARF (optional): function parameter and result types, globals, runtime.g / runtime.m layout.
