//! Property: rewriting a YAML document changes the image values and nothing else — every other
//! scalar keeps its value and its place in the document, whatever scalar styles and comments
//! surround it.

use discover::Options;
use proptest::prelude::*;
use rewrite::{Mapping, Mode, PlanOptions};

/// A scalar written in one of YAML's styles; values are chosen to survive each style.
fn styled(value: &str, style: u8, indent: usize) -> String {
    match style % 5 {
        0 => value.to_string(),
        1 => format!("'{}'", value.replace('\'', "''")),
        2 => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
        3 => format!("|\n{}{value}\n", " ".repeat(indent)),
        _ => format!(">-\n{}{value}\n", " ".repeat(indent)),
    }
}

fn image() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just(""),
        Just("quay.io/"),
        Just("docker.io/"),
        Just("ghcr.io/org/"),
        Just("localhost:5000/")
    ];
    let tag = prop_oneof![
        Just(""),
        Just(":1.2.3"),
        Just(":v2-alpine"),
        Just(":latest")
    ];
    (
        host,
        "[a-z][a-z0-9]{0,6}(/[a-z][a-z0-9-]{0,5}[a-z0-9])?",
        tag,
    )
        .prop_map(|(h, p, t)| format!("{h}{p}{t}"))
}

fn other_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9 _.-]{0,20}[a-zA-Z0-9]",
        Just("ünïcödé — 专为".to_string()),
        Just("x: y".to_string()),
        Just("it's \"quoted\"".to_string()),
        Just("nginx:1.25".to_string()),
    ]
}

#[derive(Debug, Clone)]
struct Doc {
    text: String,
}

fn document() -> impl Strategy<Value = Doc> {
    let container = (
        image(),
        0u8..3,
        proptest::collection::vec((other_value(), 0u8..5, any::<bool>()), 0..3),
    );
    proptest::collection::vec(container, 1..4).prop_map(|containers| {
        let mut t = String::from("# a pod — ü\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p  # trailing\n  annotations:\n    note: \"image: not/this:1\"\nspec:\n  containers:\n");
        for (i, (img, img_style, extras)) in containers.iter().enumerate() {
            t.push_str(&format!("    - name: c{i}\n      image: {}  # the image\n", styled(img, *img_style, 0)));
            for (j, (v, style, comment)) in extras.iter().enumerate() {
                // `x: y` is only valid YAML quoted or in a block.
                let style = if v.contains(": ") && style % 5 == 0 { 1 } else { *style };
                let value = styled(v, style, 8);
                if value.ends_with('\n') {
                    t.push_str(&format!("      k{j}: {value}"));
                } else {
                    t.push_str(&format!("      k{j}: {value}{}\n", if *comment { " # c" } else { "" }));
                }
            }
        }
        Doc { text: t }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn only_image_values_change(doc in document(), keep_host in any::<bool>()) {
        let mode = if keep_host { Mode::KeepHost } else { Mode::ReplaceHost };
        let mapping = Mapping::new("registry.corp.local:5000/mirror", mode, vec![]).unwrap();
        let opts = Options::default();
        let report = discover::scan_file("pod.yaml", doc.text.as_bytes(), &opts);
        prop_assert!(report.errors.is_empty(), "{:?}\n{}", report.errors, doc.text);
        let plan = rewrite::plan(&doc.text, &report.findings, &mapping, &PlanOptions::default()).unwrap();
        let new = rewrite::apply(&doc.text, &plan.edits);
        rewrite::verify("pod.yaml", &doc.text, &new, &plan, &opts)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", doc.text)))?;

        let before = discover::yaml_scalars(&doc.text).unwrap();
        let after = discover::yaml_scalars(&new).unwrap();
        prop_assert_eq!(before.len(), after.len());
        let images: Vec<_> = report.findings.iter().map(|f| f.span.clone()).collect();
        for ((span, was), (_, now)) in before.iter().zip(&after) {
            if images.contains(span) {
                let r = imgref::Reference::parse(was).unwrap();
                prop_assert_eq!(now, &mapping.map(&r).unwrap().to_string());
            } else {
                prop_assert_eq!(was, now);
            }
        }
    }
}
