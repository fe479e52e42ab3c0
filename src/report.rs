//! Machine-readable output of `scan`: the JSON shape is an interface other tools parse, so it
//! lives here, apart from the code that prints tables.

use serde::Serialize;

use discover::LineIndex;

pub use crate::inputs::ErrorOut;
use crate::inputs::Scanned;

#[derive(Debug, Default, Serialize)]
pub struct ScanOutput {
    pub findings: Vec<FindingOut>,
    pub errors: Vec<ErrorOut>,
}

#[derive(Debug, Serialize)]
pub struct FindingOut {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub byte_start: usize,
    pub byte_end: usize,
    pub image: String,
    pub normalized: Option<String>,
    pub kind: discover::Kind,
    pub source: discover::Source,
    pub context: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartOut>,
    /// For a `resolved` finding: the template, the definitions that made it, and the knob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<ResolutionOut>,
}

#[derive(Debug, Serialize)]
pub struct ResolutionOut {
    pub template: String,
    pub definitions: Vec<DefinitionOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knob: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DefinitionOut {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Serialize)]
pub struct PartOut {
    pub role: discover::PartRole,
    pub value: String,
    pub line: usize,
    pub column: usize,
    pub byte_start: usize,
    pub byte_end: usize,
}

impl ScanOutput {
    /// The findings of every scanned file and the errors met reading them, placed by line and
    /// column.
    pub fn new(files: &[Scanned], errors: Vec<ErrorOut>) -> ScanOutput {
        let mut out = ScanOutput {
            findings: Vec::new(),
            errors,
        };
        for file in files {
            let index = LineIndex::new(&file.text);
            let place = |offset| index.position(offset);
            for f in &file.report.findings {
                let (line, column) = place(f.span.start);
                let parts = f
                    .parts
                    .iter()
                    .map(|p| {
                        let (line, column) = place(p.span.start);
                        PartOut {
                            role: p.role,
                            value: p.value.clone(),
                            line,
                            column,
                            byte_start: p.span.start,
                            byte_end: p.span.end,
                        }
                    })
                    .collect();
                out.findings.push(FindingOut {
                    file: file.name.clone(),
                    line,
                    column,
                    byte_start: f.span.start,
                    byte_end: f.span.end,
                    normalized: f.normalized(),
                    image: f.image.clone(),
                    kind: f.kind,
                    source: f.source,
                    context: f.context.clone(),
                    parts,
                    resolution: f.site.resolution.as_ref().map(|r| ResolutionOut {
                        template: r.template.clone(),
                        definitions: r
                            .definitions
                            .iter()
                            .map(|d| DefinitionOut {
                                name: d.name.clone(),
                                file: d.file.clone(),
                                line: d.line,
                                column: d.column,
                            })
                            .collect(),
                        knob: r.knob.clone(),
                    }),
                });
            }
        }
        out
    }
}
