//! Any bytes as a file: discovery must not panic, whatever the format it detects.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = discover::scan_file("fuzz.yaml", data, &discover::Options::default());
});
