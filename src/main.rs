//! The `airlock` binary: parse the command line, run one verb, map the outcome to an exit code.
//! Every verb lives in its own module under `cmd/`; the work itself lives in the crates.

mod cli;
mod cmd;
mod config;
mod exit;
mod fsutil;
mod inputs;
mod listen;
mod lockfile;
mod nodeconfig;
mod output;
mod registry;
mod report;
mod selfimage;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            // Errors name values from files and registries: escaped like all human output.
            eprintln!("airlock: {}", output::escape(&output::error_chain(&err)));
            exit::Exit::from_error(&err).into()
        }
    }
}
