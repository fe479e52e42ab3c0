//! `airlock completions` and `airlock man`: shell completions and man pages generated from the
//! clap definitions in `cli.rs`, so they never drift from the flags the binary accepts.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::Exit;

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout().lock());
    Ok(Exit::Ok)
}

pub fn man(args: &ManArgs) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Gives each verb its display name (`airlock-scan`), the title of its page.
    cmd.build();
    let Some(dir) = &args.dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        std::io::Write::write_all(&mut std::io::stdout().lock(), &page)?;
        return Ok(Exit::Ok);
    };
    anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
    let mut written = 0;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(dir, sub.clone())?;
        written += 1;
    }
    write_page(dir, cmd)?;
    eprintln!(
        "airlock: wrote {} man pages in {}",
        written + 1,
        dir.display()
    );
    Ok(Exit::Ok)
}

/// One page, replaced atomically: a reader (or `mandb`) never sees half a page.
fn write_page(dir: &Path, cmd: clap::Command) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd);
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    crate::fsutil::write_atomic(&path, &page)
        .with_context(|| format!("cannot write {}", path.display()))
}
