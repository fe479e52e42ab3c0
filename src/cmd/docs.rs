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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use clap::CommandFactory;

    /// Every short flag of `cmd` and its subcommands, with the long names it stands for and
    /// the verbs it appears in.
    fn shorts(
        cmd: &clap::Command,
        path: &str,
        out: &mut BTreeMap<char, BTreeMap<String, BTreeSet<String>>>,
    ) {
        for arg in cmd.get_arguments() {
            let Some(short) = arg.get_short() else {
                continue;
            };
            let long = arg.get_long().unwrap_or("(none)").to_string();
            out.entry(short)
                .or_default()
                .entry(long)
                .or_default()
                .insert(path.to_string());
        }
        for sub in cmd.get_subcommands() {
            shorts(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn each_short_flag_means_one_long_flag_across_every_verb() {
        let mut cmd = crate::cli::Cli::command();
        cmd.build();
        let mut found = BTreeMap::new();
        shorts(&cmd, "airlock", &mut found);
        let clashes: Vec<_> = found.iter().filter(|(_, longs)| longs.len() > 1).collect();
        assert!(
            clashes.is_empty(),
            "one short flag, several meanings: {clashes:#?}"
        );
        // The walk reaches the verbs whose short flags used to disagree.
        assert_eq!(
            found[&'f'].keys().collect::<Vec<_>>(),
            ["file"],
            "{:?}",
            found[&'f']
        );
        assert!(found[&'f']["file"].contains("airlock mirror"));
        assert!(found.contains_key(&'n') && found.contains_key(&'o'));
    }

    /// Flags a verb accepts but ignores are worse than none: `mirror --deny-latest` would look
    /// like it checked something.
    #[test]
    fn verbs_that_only_map_images_offer_no_policy_flags() {
        let mut cmd = crate::cli::Cli::command();
        cmd.build();
        let policy = [
            "allow-registry",
            "deny-latest",
            "require-digest",
            "pull-secret",
        ];
        for verb in ["rewrite", "push", "mirror", "serve"] {
            let sub = cmd.find_subcommand(verb).unwrap();
            let longs: BTreeSet<&str> = sub.get_arguments().filter_map(|a| a.get_long()).collect();
            assert!(
                longs.contains("registry") && longs.contains("rule"),
                "{verb}"
            );
            for flag in policy {
                assert!(
                    !longs.contains(flag),
                    "{verb} offers --{flag}, which it ignores"
                );
            }
        }
        for verb in ["check", "audit", "webhook"] {
            let sub = cmd.find_subcommand(verb).unwrap();
            let longs: BTreeSet<&str> = sub.get_arguments().filter_map(|a| a.get_long()).collect();
            for flag in policy {
                assert!(longs.contains(flag), "{verb} lacks --{flag}");
            }
        }
    }
}
