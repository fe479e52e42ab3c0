//! Any bytes as an Ansible role's defaults and a template evaluated against them: evaluation must
//! not panic, hang or grow without bound, whatever the variables say (cycles, deep chains,
//! doubling strings, loops): it ends in a value within the output cap or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resolve::ansible::Project;
use resolve::Limits;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Defaults, then the template after the first NUL (or a lookup of every variable).
    let (defaults, template) = text.split_once('\0').unwrap_or((text, "{{ a }}{{ b }}{{ images }}"));
    let limits = Limits::default();
    let project = Project::load(&[("roles/r/defaults/main.yml", defaults)], &[], limits);
    if let Ok(r) = project.resolve(Some("roles/r"), template, "fuzz") {
        assert!(r.value.len() <= limits.output, "{} bytes", r.value.len());
    }
});
