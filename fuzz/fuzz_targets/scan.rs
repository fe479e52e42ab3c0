//! Any bytes as a file: discovery must not panic, whatever the format it detects, and every span
//! it reports lies inside the input (and spells the image where it says it does), and aliases
//! cannot multiply the findings past the per-file expansion cap.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The first byte picks the file name, so every format's detection and scanner get exercised.
const NAMES: &[&str] = &["fuzz.yaml", "Dockerfile", "Jenkinsfile", "images.txt", "-"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let name = NAMES[pick as usize % NAMES.len()];
    let report = discover::scan_file(name, bytes, &discover::Options::default());
    for f in &report.findings {
        assert!(f.span.start <= f.span.end && f.span.end <= bytes.len(), "{f:?}");
        if f.exact {
            assert_eq!(&bytes[f.span.clone()], f.image.as_bytes(), "{f:?}");
        }
        for p in &f.parts {
            assert!(p.span.end <= bytes.len(), "{p:?}");
        }
    }
    for e in &report.errors {
        assert!(e.offset <= bytes.len(), "{e:?}");
    }
    // Written images need bytes each; only aliases multiply them, and those are capped per file.
    // More findings than this means nested aliases (or a string reached through them) escaped
    // the cap.
    let bound = 2 * (bytes.len() as u64 + discover::ALIAS_EXPANSION_LIMIT);
    assert!(report.findings.len() as u64 <= bound, "{} findings", report.findings.len());
});
