//! One module per gotrace subcommand.

pub mod list;
