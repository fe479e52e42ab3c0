//! Machine-readable output of `scan`: the JSON shape is an interface other tools parse, so it
//! lives here, apart from the code that prints tables.

use serde::Serialize;

use discover::{FileReport, LineIndex};

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

#[derive(Debug, Serialize)]
pub struct ErrorOut {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ScanOutput {
    /// Add one file's report, turning byte offsets into lines and columns of `bytes`.
    pub fn add(&mut self, file: &str, bytes: &[u8], report: FileReport) {
        let text = String::from_utf8_lossy(bytes);
        let index = LineIndex::new(&text);
        for f in report.findings {
            let (line, column) = index.position(f.span.start);
            let parts = f
                .parts
                .iter()
                .map(|p| {
                    let (line, column) = index.position(p.span.start);
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
            self.findings.push(FindingOut {
                file: file.to_string(),
                line,
                column,
                byte_start: f.span.start,
                byte_end: f.span.end,
                normalized: f.normalized(),
                image: f.image,
                kind: f.kind,
                source: f.source,
                context: f.context,
                parts,
            });
        }
        for e in report.errors {
            let (line, column) = index.position(e.offset);
            self.errors.push(ErrorOut {
                file: file.to_string(),
                line,
                column,
                message: e.message,
            });
        }
    }

    pub fn error(&mut self, file: &str, message: String) {
        self.errors.push(ErrorOut {
            file: file.to_string(),
            line: 0,
            column: 0,
            message,
        });
    }
}
