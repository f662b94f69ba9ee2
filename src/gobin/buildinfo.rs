//! `.go.buildinfo`: the Go version and main module recorded by the linker.
