//! `airlock scan`: report every image the given configuration will pull.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use crate::cli::{Color, Format, ScanArgs};
use crate::exit::Exit;
use crate::inputs;
use crate::output::escape;
use crate::report::{FindingOut, ScanOutput};

pub fn run(args: &ScanArgs) -> anyhow::Result<Exit> {
    imgref::Reference::parse(&args.jnlp_image).map_err(|e| anyhow::anyhow!("--jnlp-image: {e}"))?;
    let opts = discover::Options {
        default_jnlp_image: args.jnlp_image.clone(),
    };
    let (files, errors) = inputs::scan_all(&args.paths, &opts, args.read.max_file_size)?;
    let output = ScanOutput::new(&files, errors);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &output)?;
            writeln!(out)?;
        }
        Format::List => write_list(&mut out, &output)?,
        Format::Table => {
            let color = match args.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            write_table(&mut out, &output, color)?;
        }
    }
    out.flush()?;
    if args.format != Format::Json {
        for e in &output.errors {
            eprintln!(
                "airlock: {}:{}:{}: {}",
                escape(&e.file),
                e.line,
                e.column,
                escape(&e.message)
            );
        }
    }
    Ok(if output.errors.is_empty() {
        Exit::Ok
    } else {
        Exit::BadInput
    })
}

fn write_list(out: &mut impl Write, output: &ScanOutput) -> std::io::Result<()> {
    let unique: std::collections::BTreeSet<&str> = output
        .findings
        .iter()
        .filter(|f| f.kind.is_pullable())
        .filter_map(|f| f.normalized.as_deref())
        .collect();
    for r in unique {
        writeln!(out, "{}", escape(r))?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, output: &ScanOutput, color: bool) -> std::io::Result<()> {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut groups: BTreeMap<(bool, &str), Vec<&FindingOut>> = BTreeMap::new();
    for f in &output.findings {
        let key = f.normalized.as_deref().unwrap_or(&f.image);
        // Images to pull first, then what needs a person's attention (templated, built).
        groups
            .entry((!f.kind.is_pullable(), key))
            .or_default()
            .push(f);
    }
    for ((attention, image), findings) in &groups {
        let mut kinds: Vec<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let image = escape(image);
        let title = if *attention {
            paint("33", &image)
        } else {
            paint("1", &image)
        };
        let count = findings.len();
        let noun = if count == 1 { "place" } else { "places" };
        writeln!(
            out,
            "{title}  {}",
            paint("2", &format!("{count} {noun}, {}", kinds.join(", ")))
        )?;
        for f in findings {
            let loc = format!("{}:{}:{}", escape(&f.file), f.line, f.column);
            writeln!(
                out,
                "    {}  {}",
                paint("36", &loc),
                paint("2", &escape(&f.context))
            )?;
        }
    }
    let images = groups.keys().filter(|(attention, _)| !attention).count();
    writeln!(
        out,
        "{} images to pull, {} findings, {} errors",
        images,
        output.findings.len(),
        output.errors.len()
    )?;
    Ok(())
}
