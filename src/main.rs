//! The `gatehouse` binary: parse the command line, run the command.

use clap::Parser;

/// mimalloc as the global allocator (cargo feature `mimalloc`, on by
/// default): measured A/B against the system allocator in one bench run,
/// see README, Performance.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gatehouse::commands::run(gatehouse::commands::Cli::parse())
}
