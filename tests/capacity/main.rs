//! Capacity searches in their own test binary. A step's verdict reads the
//! process's CPU to tell a harness limit from a server limit (docs/capacity.md,
//! "When a step passes"); in the shared `it` binary the other tests'
//! threads count as this search's CPU and a loaded run reads as
//! harness-limited. Cargo runs test binaries one after another, and the
//! other tests here run no search in this process (the Ctrl-C test runs the
//! CLI as a child), so the process's CPU is the search's own.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod search;
#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;
