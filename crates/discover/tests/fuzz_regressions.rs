//! Inputs the `scan` fuzz target once crashed on, each named after its bug; they must scan
//! without a panic and with every span inside the input (and exact spans spelling the image).

use discover::{Options, scan_file};

#[test]
fn past_fuzz_crashes_scan_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // The fuzz target's first byte picks the file name; these were all found as YAML or raw.
        for (name, bytes) in [("fuzz.yaml", &data[..]), ("fuzz.yaml", &data[1..])] {
            let report = scan_file(name, bytes, &Options::default());
            for f in &report.findings {
                assert!(f.span.end <= bytes.len(), "{}: {f:?}", path.display());
                if f.exact {
                    assert_eq!(
                        &bytes[f.span.clone()],
                        f.image.as_bytes(),
                        "{}",
                        path.display()
                    );
                }
            }
        }
        seen += 1;
    }
    assert!(seen >= 3);
}
