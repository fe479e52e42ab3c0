//! Dockerfiles, Jenkinsfiles and image lists: what each reports, the traps it must not report,
//! exact byte positions (also after non-ASCII text), and malformed input that must not panic.

use std::path::PathBuf;

use discover::{
    DEFAULT_JNLP_IMAGE, FileReport, Finding, Kind, LineIndex, Options, Source, scan_file,
};
use proptest::prelude::*;

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Scan a fixture under its own file name, checking the positions of every finding.
fn scan(rel: &str) -> (Vec<u8>, FileReport) {
    let bytes = fixture(rel);
    let report = scan_file(rel, &bytes, &Options::default());
    assert_positions(&bytes, &report);
    (bytes, report)
}

/// Every span lies on character boundaries inside the file, and an exact span spells the image.
fn assert_positions(bytes: &[u8], report: &FileReport) {
    let text = String::from_utf8_lossy(bytes);
    for f in &report.findings {
        assert!(
            f.span.start <= f.span.end && f.span.end <= bytes.len(),
            "{f:?}"
        );
        if let Ok(t) = std::str::from_utf8(bytes) {
            assert!(
                t.is_char_boundary(f.span.start) && t.is_char_boundary(f.span.end),
                "{f:?}"
            );
        }
        if f.exact {
            assert_eq!(
                &bytes[f.span.clone()],
                f.image.as_bytes(),
                "{f:?} in {text:?}"
            );
        }
    }
}

fn images(report: &FileReport) -> Vec<&str> {
    report.findings.iter().map(|f| f.image.as_str()).collect()
}

fn find<'r>(report: &'r FileReport, image: &str) -> &'r Finding {
    report
        .findings
        .iter()
        .find(|f| f.image == image)
        .unwrap_or_else(|| panic!("{image} not found in {:#?}", images(report)))
}

fn written<'b>(bytes: &'b [u8], f: &Finding) -> &'b str {
    std::str::from_utf8(&bytes[f.span.clone()]).expect("span on char boundaries")
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

#[test]
fn dockerfile_reports_every_pulled_image_and_nothing_else() {
    let (_, report) = scan("dockerfile/multistage.Dockerfile");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.source == Source::Dockerfile)
    );
    assert_eq!(
        images(&report),
        [
            "docker/dockerfile:1.7",
            "golang:1.22.5-bookworm",
            "ghcr.io/acme/protoc:25.1",
            "${REGISTRY}/tools/linter:v2",
            "registry.example.com/tools/lint:1.22.5",
            "alpine:3.20",
            "nginx:1.27-alpine",
            "gcr.io/distroless/static-debian12:nonroot@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "docker.io/acme/assets:1.0",
        ]
    );
}

#[test]
fn dockerfile_stage_names_indexes_and_scratch_are_not_images() {
    let (_, report) = scan("dockerfile/multistage.Dockerfile");
    for stage in [
        "builder",
        "Builder",
        "test",
        "Test",
        "0",
        "runtime-base",
        "scratch",
        "golang:1.0",
    ] {
        assert!(!images(&report).contains(&stage), "{stage} reported");
    }
    let (_, report) = scan("dockerfile/Containerfile");
    assert_eq!(
        images(&report),
        ["mcr.microsoft.com/windows/servercore:ltsc2022"]
    );
}

#[test]
fn dockerfile_heredoc_bodies_and_labels_are_not_instructions() {
    let (_, report) = scan("dockerfile/multistage.Dockerfile");
    assert!(
        images(&report)
            .iter()
            .all(|i| !i.contains("fake/") && !i.contains("not-an-image"))
    );
    assert!(
        images(&report)
            .iter()
            .all(|i| !i.contains("example.com/acme/app"))
    );
}

#[test]
fn dockerfile_arg_defaults_are_substituted_and_marked_inexact() {
    let (bytes, report) = scan("dockerfile/multistage.Dockerfile");
    let golang = find(&report, "golang:1.22.5-bookworm");
    assert_eq!((golang.kind, golang.exact), (Kind::Literal, false));
    // The span covers the reference as written; the --platform flag is not part of it.
    assert_eq!(written(&bytes, golang), "golang:${GO_VERSION}-${DISTRO}");
    assert_eq!(golang.context, "FROM (stage builder)");
    assert!(golang.reference.is_some());

    let alpine = find(&report, "alpine:3.20");
    assert_eq!((alpine.kind, alpine.exact), (Kind::Literal, false));
    assert_eq!(written(&bytes, alpine), "alpine:${ALPINE_TAG:-3.20}");

    // An ARG default that itself uses an earlier ARG.
    let tools = find(&report, "registry.example.com/tools/lint:1.22.5");
    assert_eq!(written(&bytes, tools), "$TOOLS");
}

#[test]
fn dockerfile_args_without_default_stay_templated_as_written() {
    let (bytes, report) = scan("dockerfile/multistage.Dockerfile");
    let lint = find(&report, "${REGISTRY}/tools/linter:v2");
    assert_eq!(lint.kind, Kind::Templated);
    assert!(lint.reference.is_none());
    assert!(lint.exact);
    assert_eq!(written(&bytes, lint), lint.image);

    let text = "ARG ARCH\nARG V\nFROM gcr.io/distroless/static:latest-$ARCH\nFROM golang:${V}\n";
    let report = scan_file("Dockerfile", text.as_bytes(), &Options::default());
    let got: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.image.as_str(), f.kind))
        .collect();
    assert_eq!(
        got,
        [
            ("gcr.io/distroless/static:latest-$ARCH", Kind::Templated),
            ("golang:${V}", Kind::Templated)
        ]
    );
}

#[test]
fn dockerfile_copy_from_and_mount_from_name_images() {
    let (bytes, report) = scan("dockerfile/multistage.Dockerfile");
    let nginx = find(&report, "nginx:1.27-alpine");
    assert_eq!((nginx.kind, nginx.exact), (Kind::Literal, true));
    assert_eq!(nginx.context, "COPY --from (stage runtime-base)");
    let protoc = find(&report, "ghcr.io/acme/protoc:25.1");
    assert!(
        protoc.context.starts_with("RUN --mount"),
        "{}",
        protoc.context
    );
    assert_eq!(written(&bytes, protoc), "ghcr.io/acme/protoc:25.1");
    assert!(
        find(&report, "docker.io/acme/assets:1.0")
            .context
            .starts_with("ONBUILD COPY")
    );
}

#[test]
fn dockerfile_syntax_directive_counts_only_at_the_top() {
    let (_, report) = scan("dockerfile/multistage.Dockerfile");
    let syntax = find(&report, "docker/dockerfile:1.7");
    assert_eq!((syntax.kind, syntax.exact), (Kind::Literal, true));
    let (_, report) = scan("dockerfile/late-syntax.Dockerfile");
    assert_eq!(images(&report), ["busybox:1.36"]);

    let report = scan_file(
        "Dockerfile",
        b"#syntax = docker/dockerfile:1\nFROM alpine\n",
        &Options::default(),
    );
    assert_eq!(images(&report), ["docker/dockerfile:1", "alpine"]);
}

#[test]
fn dockerfile_positions_are_exact_bytes_after_non_ascii_lines() {
    let (bytes, report) = scan("dockerfile/multistage.Dockerfile");
    let text = std::str::from_utf8(&bytes).expect("utf-8 fixture");
    let lines = LineIndex::new(text);
    let golang = find(&report, "golang:1.22.5-bookworm");
    assert_eq!(lines.position(golang.span.start), (9, 32));
    // A reference on a continuation line is still one contiguous, exact range.
    let distroless = report
        .findings
        .iter()
        .find(|f| f.image.starts_with("gcr.io/distroless"))
        .expect("distroless");
    assert!(distroless.exact);
    assert_eq!(lines.position(distroless.span.start).1, 3);
}

#[test]
fn dockerfile_with_crlf_and_backtick_escape() {
    let (bytes, report) = scan("dockerfile/Containerfile");
    let f = find(&report, "mcr.microsoft.com/windows/servercore:ltsc2022");
    assert_eq!(f.context, "FROM (stage base)");
    assert_eq!(written(&bytes, f), f.image);
}

#[test]
fn dockerfile_from_without_an_argument_is_an_error_not_a_panic() {
    let (_, report) = scan("dockerfile/no-argument.Dockerfile");
    assert_eq!(images(&report), ["alpine:3.20"]);
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert_eq!(report.errors[0].offset, 0);
}

#[test]
fn dockerfile_detected_by_content_but_not_in_prose_or_yaml() {
    let opts = Options::default();
    let report = scan_file(
        "build/base",
        b"# base\nARG V=3.20\nFROM alpine:${V}\n",
        &opts,
    );
    assert_eq!(images(&report), ["alpine:3.20"]);
    assert_eq!(report.findings[0].source, Source::Dockerfile);

    let prose = b"From the team: build the image alpine:3.20 first.\n";
    let yaml = b"FROM: alpine:3.20\nimage: nginx:1.27\n";
    let block = b"image: nginx\nscript: |\n  FROM alpine:3.20\n";
    for (name, bytes) in [
        ("NOTES", &prose[..]),
        ("values.yaml", yaml),
        ("job.yaml", block),
        ("Dockerfile.yaml", block),
    ] {
        let report = scan_file(name, bytes, &opts);
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.source != Source::Dockerfile),
            "{name}: {report:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Jenkinsfile

#[test]
fn jenkinsfile_container_templates_and_docker_image_calls() {
    let (bytes, report) = scan("jenkinsfile/Jenkinsfile.scripted");
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.source == Source::Jenkinsfile)
    );
    let maven = find(&report, "maven:3.9.6-eclipse-temurin-21");
    assert_eq!((maven.kind, maven.exact), (Kind::Literal, true));
    assert_eq!(
        maven.context,
        "podTemplate › containerTemplate(name: maven).image"
    );

    let postgres = find(&report, "postgres:16.3");
    assert_eq!(postgres.kind, Kind::Literal);
    assert!(
        postgres.context.ends_with("docker.image()"),
        "{}",
        postgres.context
    );

    // A GString with ${…} is reported as written.
    let tools = find(&report, "registry.example.com/ci/tools:${toolsVersion}");
    assert_eq!((tools.kind, tools.exact), (Kind::Templated, true));

    // An escape sequence: the value is decoded, the span is the written text, not exact.
    let busybox = find(&report, "docker.io/library/busybox:1.36");
    assert_eq!((busybox.kind, busybox.exact), (Kind::Literal, false));
    assert_eq!(
        written(&bytes, busybox),
        "docker.io/library/busybox\\u003a1.36"
    );
    assert_eq!(
        busybox.context,
        "podTemplate › containerTemplate(name: busybox).image"
    );
}

#[test]
fn jenkinsfile_traps_are_not_reported() {
    let (_, report) = scan("jenkinsfile/Jenkinsfile.scripted");
    let mut got = images(&report);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "docker.io/library/busybox:1.36",
            DEFAULT_JNLP_IMAGE,
            "maven:3.9.6-eclipse-temurin-21",
            "postgres:16.3",
            "registry.example.com/ci/tools:${toolsVersion}",
        ]
    );
}

#[test]
fn jenkinsfile_implicit_jnlp_for_a_pod_template_without_one() {
    let (bytes, report) = scan("jenkinsfile/Jenkinsfile.scripted");
    let implicit: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == Kind::Implicit)
        .collect();
    assert_eq!(implicit.len(), 1);
    let jnlp = implicit[0];
    assert_eq!(jnlp.image, DEFAULT_JNLP_IMAGE);
    assert!(jnlp.reference.is_some());
    assert!(!jnlp.exact, "the keyword is not text to overwrite");
    assert_eq!(written(&bytes, jnlp), "podTemplate");
    assert_eq!(
        jnlp.context,
        "podTemplate › jnlp (injected by the Kubernetes plugin)"
    );

    let opts = Options {
        default_jnlp_image: "mirror.example.com/jenkins/inbound-agent:3.1".into(),
        ..Options::default()
    };
    let report = scan_file("Jenkinsfile", &bytes, &opts);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == Kind::Implicit && f.image == opts.default_jnlp_image)
    );
}

#[test]
fn jenkinsfile_no_implicit_jnlp_when_defined_or_inherited() {
    let (_, report) = scan("jenkinsfile/templates.groovy");
    assert!(
        report.findings.iter().all(|f| f.kind != Kind::Implicit),
        "{:#?}",
        report.findings
    );
    let jnlp = find(
        &report,
        "jenkins/inbound-agent:3261.v9c670a_4748a_9-1-jdk21",
    );
    assert_eq!(
        jnlp.context,
        "podTemplate › containerTemplate(name: jnlp).image"
    );
    find(&report, "python:3.12-slim");
}

#[test]
fn jenkinsfile_declarative_agents() {
    let (_, report) = scan("jenkinsfile/Jenkinsfile.declarative");
    let maven = find(&report, "maven:3.9-eclipse-temurin-17");
    assert_eq!(
        maven.context,
        "pipeline › stages › stage(Unit) › agent › docker.image"
    );
    let node = find(&report, "node:20-alpine");
    assert_eq!(
        node.context,
        "pipeline › stages › stage(Lint) › agent › docker"
    );
    let jnlp = report
        .findings
        .iter()
        .find(|f| f.kind == Kind::Implicit)
        .expect("kubernetes agent jnlp");
    assert_eq!(
        jnlp.context,
        "pipeline › agent › kubernetes › jnlp (injected by the Kubernetes plugin)"
    );
}

#[test]
fn jenkinsfile_kubesphere_params_are_templated() {
    let (_, report) = scan("jenkinsfile/templates.groovy");
    let go = find(&report, "$(.params.GoImage)");
    assert_eq!(go.kind, Kind::Templated);
    assert_eq!(
        go.context,
        "pipeline › agent › kubernetes › containerTemplate(name: go).image"
    );
}

/// Goes through the YAML module (`yaml::scan_embedded`): the pod YAML's images, positioned in
/// the Groovy file.
#[test]
fn jenkinsfile_pod_yaml_in_strings_is_scanned_with_file_positions() {
    let (bytes, report) = scan("jenkinsfile/Jenkinsfile.declarative");
    let kaniko = find(&report, "gcr.io/kaniko-project/executor:v1.23.2-debug");
    assert!(kaniko.exact);
    assert_eq!(written(&bytes, kaniko), kaniko.image);
    assert!(
        kaniko
            .context
            .starts_with("pipeline › agent › kubernetes yaml › "),
        "{}",
        kaniko.context
    );

    let (_, report) = scan("jenkinsfile/templates.groovy");
    let agent = find(&report, "registry.example.com/jenkins/agent:latest");
    assert!(
        agent.context.starts_with("podTemplate yaml › "),
        "{}",
        agent.context
    );
}

/// Goes through the YAML module, which hands the `template: |` string to the Groovy scanner.
#[test]
fn pipeline_embedded_in_yaml_is_scanned_as_groovy() {
    let (bytes, report) = scan("jenkinsfile/clustertemplate.yaml");
    let go = find(&report, "golang:1.22-alpine");
    assert_eq!(
        (go.source, go.kind, go.exact),
        (Source::Jenkinsfile, Kind::Literal, true)
    );
    assert_eq!(written(&bytes, go), go.image);
    // It inherits from the `go` template, so no jnlp is injected.
    assert!(report.findings.iter().all(|f| f.kind != Kind::Implicit));
}

#[test]
fn yaml_holding_a_pipeline_is_not_a_jenkinsfile() {
    let (_, report) = scan("jenkinsfile/clustertemplate.yaml");
    // Scanned as Groovy from the top, contexts would start at the pipeline, not at the YAML path.
    assert!(
        report
            .findings
            .iter()
            .all(|f| !f.context.starts_with("pipeline")),
        "{report:?}"
    );
}

#[test]
fn jenkinsfile_detected_by_content() {
    let text = b"// deploy\npipeline {\n  agent { docker 'alpine:3.20' }\n}\n";
    let report = scan_file("ci/deploy", text, &Options::default());
    assert_eq!(images(&report), ["alpine:3.20"]);
    assert_eq!(report.findings[0].source, Source::Jenkinsfile);
}

#[test]
fn jenkinsfile_unterminated_strings_are_errors_not_panics() {
    let (_, report) = scan("jenkinsfile/unterminated.groovy");
    assert!(!report.errors.is_empty());
    find(&report, "alpine:3.20");
    assert!(
        !images(&report).iter().any(|i| i.starts_with("maven")),
        "{:?}",
        images(&report)
    );
}

// ---------------------------------------------------------------------------------------------
// Image list

#[test]
fn image_list_one_reference_per_line() {
    let (bytes, report) = scan("imagelist/images.txt");
    assert!(report.errors.is_empty());
    assert_eq!(
        images(&report),
        [
            "acme/operator:v2.3.0",
            "acme/csi-attacher:v4.6.1",
            "quay.io/acme/agent@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "registry.k8s.io/pause:3.10",
            "busybox",
        ]
    );
    for f in &report.findings {
        assert_eq!(
            (f.kind, f.source, f.exact),
            (Kind::Literal, Source::ImageList, true)
        );
        assert!(f.reference.is_some());
    }
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    assert_eq!(
        LineIndex::new(text).position(report.findings[0].span.start),
        (2, 1)
    );
}

#[test]
fn image_list_with_crlf_and_trailing_comments() {
    let text = b"nginx:1.27\r\n# c\r\nacme/app:2 # note\r\n";
    let report = scan_file("images", text, &Options::default());
    assert_positions(text, &report);
    assert_eq!(images(&report), ["nginx:1.27", "acme/app:2"]);
}

#[test]
fn prose_yaml_and_bare_words_are_not_image_lists() {
    for rel in [
        "imagelist/prose.txt",
        "imagelist/settings.txt",
        "imagelist/words.txt",
        "imagelist/list.yaml",
    ] {
        let (_, report) = scan(rel);
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.source != Source::ImageList),
            "{rel}: {report:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed input

#[test]
fn binary_input_does_not_panic() {
    let opts = Options::default();
    let not_utf8 = [0xffu8, 0xfe, 0x00, 0x46, 0x52, 0x4f, 0x4d, 0x20, 0xc3];
    let controls = "FROM \u{0}\u{1}\u{7f}\nimage: '\u{0}'\n\u{feff}podTemplate(\u{0}";
    for name in ["Dockerfile", "Jenkinsfile", "images.txt", "blob.bin"] {
        let report = scan_file(name, &not_utf8, &opts);
        // Named like a format airlock reads: an error; anything else in a walked tree: skipped.
        let named = matches!(name, "Dockerfile" | "Jenkinsfile");
        assert_eq!(!report.errors.is_empty(), named, "{name}");
        assert!(report.findings.is_empty(), "{name}");
        let report = scan_file(name, controls.as_bytes(), &opts);
        assert_positions(controls.as_bytes(), &report);
    }
}

/// Fragments of all three syntaxes, so random inputs reach deep into each parser.
const PIECES: &[&str] = &[
    "FROM ",
    "ARG ",
    "AS ",
    "COPY ",
    "RUN ",
    "ONBUILD ",
    "--from=",
    "--mount=type=bind,from=",
    "--platform=$P ",
    "# syntax=",
    "# escape=`",
    "<<EOF",
    "<<-E",
    "EOF",
    "E",
    "\\",
    "`",
    "\n",
    "\r\n",
    " ",
    "\t",
    "alpine:3",
    "a/b:1",
    "x",
    "$",
    "${",
    "${V:-",
    "}",
    "V=1",
    "scratch",
    "0",
    "podTemplate(",
    "containerTemplate(",
    "pipeline {",
    "agent {",
    "kubernetes {",
    "docker ",
    "image",
    "image: ",
    "yaml ",
    "name: 'jnlp'",
    "inheritFrom ",
    "docker.image(",
    "'",
    "\"",
    "'''",
    "\"\"\"",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    ".",
    "//",
    "/*",
    "*/",
    "#",
    "\\u00",
    "专",
    "é",
    "\u{feff}",
];

proptest! {
    #[test]
    fn text_formats_never_panic_and_spans_stay_exact(
        parts in prop::collection::vec(prop::sample::select(PIECES), 0..80),
        name in prop::sample::select(&["Dockerfile", "Jenkinsfile", "images.txt", "x.groovy"][..]),
    ) {
        let text = parts.concat();
        let report = scan_file(name, text.as_bytes(), &Options::default());
        assert_positions(text.as_bytes(), &report);
    }
}

#[test]
fn binary_files_are_skipped_unless_named_like_configuration() {
    let bytes = b"\xff\xfe\x00\x01binary";
    assert_eq!(
        discover::scan_file("blob.dat", bytes, &discover::Options::default()),
        discover::FileReport::default()
    );
    let report = discover::scan_file("values.yaml", bytes, &discover::Options::default());
    assert_eq!(report.errors[0].message, "not UTF-8 text");
}
