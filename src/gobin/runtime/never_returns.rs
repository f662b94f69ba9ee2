//! The Go runtime functions whose calls never return: the panic and throw entry points.

/// Whether a call of the function named `name` never returns (Go's panic and throw entry
/// points): such a call inside an inlined instance does not end it.
pub fn never_returns(name: &str) -> bool {
    name.starts_with("runtime.panic")
        || name.starts_with("runtime.goPanic")
        || matches!(
            name,
            "runtime.gopanic"
                | "runtime.throw"
                | "runtime.fatal"
                | "runtime.fatalthrow"
                | "runtime.fatalpanic"
        )
}
