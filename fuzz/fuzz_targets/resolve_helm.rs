//! Any bytes as a Helm chart's values, its `_helpers.tpl` and an image line of a template,
//! scanned and resolved the way `airlock scan` does: evaluation must not panic, hang or grow
//! without bound (self-including defines, doubling variables, deep parentheses): every resolved
//! image is within the output cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resolve::ansible::FileRef;
use resolve::Limits;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // values.yaml, then _helpers.tpl and the image expression after NULs.
    let mut parts = text.splitn(3, '\0');
    let values = parts.next().unwrap_or("");
    let helpers = parts.next().unwrap_or(r#"{{ define "img" }}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{ end }}"#);
    let line = parts.next().unwrap_or(r#"{{ include "img" . }}"#);
    let deployment = format!("spec:\n  containers:\n    - name: c\n      image: {line}\n");
    let named = [
        ("c/Chart.yaml", "name: c\nappVersion: 1.0\n".to_string()),
        ("c/values.yaml", values.to_string()),
        ("c/templates/_helpers.tpl", helpers.to_string()),
        ("c/templates/deployment.yaml", deployment),
    ];
    let opts = discover::Options::default();
    let mut reports: Vec<discover::FileReport> = named
        .iter()
        .map(|(n, t)| discover::scan_file(n, t.as_bytes(), &opts))
        .collect();
    let limits = Limits::default();
    let mut refs: Vec<FileRef<'_>> = named
        .iter()
        .zip(reports.iter_mut())
        .map(|((name, text), report)| FileRef { name, text, report })
        .collect();
    resolve::helm::apply(&mut refs, &[], &[("global.imageRegistry".into(), "r.example".into())], limits);
    for f in refs.iter().flat_map(|r| r.report.findings.iter()) {
        assert!(f.image.len() <= limits.output, "{} bytes", f.image.len());
    }
});
