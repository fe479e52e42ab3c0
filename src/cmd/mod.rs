//! One module per verb; `run` dispatches.

pub mod audit;
mod check;
mod docs;
mod image;
mod lock;
mod mirror;
mod pack;
mod push;
mod rewrite;
mod scan;
pub mod secrets;
mod serve;
pub mod transfer;
mod webhook;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Scan(args) => scan::run(&args),
        Command::Rewrite(args) => rewrite::run(&args),
        Command::Lock(args) => lock::run(&args),
        Command::Pack(args) => pack::run(&args),
        Command::Image(args) => image::run(&args),
        Command::Push(args) => push::run(&args),
        Command::Mirror(args) => mirror::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Secrets(args) => secrets::run(&args),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
        Command::Webhook(args) => webhook::run(&args),
    }
}
