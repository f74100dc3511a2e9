//! `rampart-loadgen`: see the library docs (`src/lib.rs`) for what each mode does.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::ExitCode;

use clap::Parser as _;
use rampart_loadgen::cli::Cli;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match rampart_loadgen::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rampart-loadgen: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
