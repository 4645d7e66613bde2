//! The `gatehouse` binary: parse the command line, run the command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    gatehouse::commands::run(gatehouse::commands::Cli::parse())
}
