//! `airlock scan`: report every image the given configuration will pull.

use std::collections::BTreeMap;
use std::io::Write;

use anstyle::{AnsiColor, Style};

use crate::cli::{Color, Format, ScanArgs};
use crate::exit::Exit;
use crate::inputs;
use crate::output::{count, escape};
use crate::report::{FindingOut, ScanOutput};

pub fn run(args: &ScanArgs) -> anyhow::Result<Exit> {
    let (files, errors) = inputs::scan_all(&args.paths, &args.read)?;
    let output = ScanOutput::new(&files, errors);
    // anstream decides on colour (NO_COLOR, CLICOLOR_FORCE, a terminal or not) and strips the
    // styles when there is none; JSON and lists carry no style to strip.
    let choice = match args.color {
        Color::Always => anstream::ColorChoice::Always,
        Color::Never => anstream::ColorChoice::Never,
        Color::Auto => anstream::ColorChoice::Auto,
    };
    let stdout = anstream::AutoStream::new(std::io::stdout().lock(), choice);
    let mut out = std::io::BufWriter::new(stdout);
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &output)?;
            writeln!(out)?;
        }
        Format::List => write_list(&mut out, &output)?,
        Format::Table => write_table(&mut out, &output)?,
    }
    out.flush()?;
    if args.format != Format::Json {
        for e in &output.errors {
            eprintln!("airlock: {e}");
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

const PULL: Style = Style::new().bold();
const ATTENTION: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
const LOCATION: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));
const DETAIL: Style = Style::new().dimmed();

/// Styles are always written: the [`anstream::AutoStream`] underneath drops them when colour is
/// off.
fn write_table(out: &mut impl Write, output: &ScanOutput) -> std::io::Result<()> {
    let paint = |style: Style, s: &str| format!("{}{s}{}", style.render(), style.render_reset());
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
            paint(ATTENTION, &image)
        } else {
            paint(PULL, &image)
        };
        let places = count(findings.len() as u64, "place", "places");
        writeln!(
            out,
            "{title}  {}",
            paint(DETAIL, &format!("{places}, {}", kinds.join(", ")))
        )?;
        for f in findings {
            let loc = format!("{}:{}:{}", escape(&f.file), f.line, f.column);
            writeln!(
                out,
                "    {}  {}",
                paint(LOCATION, &loc),
                paint(DETAIL, &escape(&f.context))
            )?;
            if let Some(r) = &f.resolution {
                let defs: Vec<String> = r
                    .definitions
                    .iter()
                    .map(|d| format!("{} {}:{}:{}", d.name, d.file, d.line, d.column))
                    .collect();
                writeln!(
                    out,
                    "      {}",
                    paint(
                        DETAIL,
                        &escape(&format!("from {} ({})", r.template, defs.join(", ")))
                    )
                )?;
            }
        }
    }
    let knobs: std::collections::BTreeSet<&str> = output
        .findings
        .iter()
        .filter_map(|f| f.resolution.as_ref()?.knob.as_deref())
        .collect();
    for knob in knobs {
        writeln!(
            out,
            "{}",
            paint(
                ATTENTION,
                &escape(&format!(
                    "registry knob: {knob} moves every resolved image (--set {knob}=REGISTRY)"
                ))
            )
        )?;
    }
    let images = groups.keys().filter(|(attention, _)| !attention).count();
    writeln!(
        out,
        "{} to pull, {}, {}",
        count(images as u64, "image", "images"),
        count(output.findings.len() as u64, "finding", "findings"),
        count(output.errors.len() as u64, "error", "errors")
    )?;
    Ok(())
}
