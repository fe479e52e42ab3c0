//! Evaluation of Ansible variables: laziness, undefined, filters and the bounds that keep a
//! hostile role from hanging a scan.

use resolve::ansible::Project;
use resolve::{EvalError, Limits};

fn project(defaults: &str) -> Project {
    Project::load(
        &[("roles/r/defaults/main.yml", defaults)],
        &[],
        Limits::default(),
    )
}

fn resolve(defaults: &str, template: &str) -> Result<String, EvalError> {
    project(defaults)
        .resolve(Some("roles/r"), template, "test")
        .map(|r| r.value)
}

#[test]
fn a_variable_that_refers_to_itself_is_a_cycle_naming_it_and_its_file() {
    let err = resolve("a: \"{{ b }}\"\nb: \"x{{ a }}\"\n", "{{ a }}").unwrap_err();
    match err {
        EvalError::Cycle { name, at, chain } => {
            assert_eq!(name, "a");
            assert_eq!(at, "roles/r/defaults/main.yml:1:1");
            assert_eq!(chain, "a -> b -> a");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn a_cycle_hidden_behind_default_is_still_an_error() {
    let err = resolve("a: \"{{ a | default('x') }}\"\n", "{{ a }}").unwrap_err();
    assert!(matches!(err, EvalError::Cycle { .. }), "{err:?}");
}

#[test]
fn exponential_growth_stops_at_the_output_limit() {
    let mut defaults = String::from("v0: xxxxxxxxxxxxxxxx\n");
    // 16 bytes doubled 24 times would be 256 MiB.
    for i in 1..25 {
        defaults.push_str(&format!(
            "v{i}: \"{{{{ v{p} }}}}{{{{ v{p} }}}}\"\n",
            p = i - 1
        ));
    }
    let err = resolve(&defaults, "{{ v24 }}").unwrap_err();
    assert!(matches!(err, EvalError::TooLarge { .. }), "{err:?}");
}

#[test]
fn deep_chains_stop_at_the_depth_limit() {
    let mut defaults = String::from("v0: x\n");
    for i in 1..100 {
        defaults.push_str(&format!("v{i}: \"{{{{ v{} }}}}y\"\n", i - 1));
    }
    let err = resolve(&defaults, "{{ v99 }}").unwrap_err();
    assert!(
        matches!(err, EvalError::TooDeep { limit: 32, .. }),
        "{err:?}"
    );
}

#[test]
fn undefined_variables_take_the_default_branch_and_are_an_error_when_printed() {
    let d = "base: \"{% if reg is defined %}{{ reg }}/{% else %}docker.io/{% endif %}\"\n";
    assert_eq!(resolve(d, "{{ base }}lib/x").unwrap(), "docker.io/lib/x");
    assert_eq!(resolve(d, "{{ ns | default('acme') }}").unwrap(), "acme");
    assert_eq!(resolve(d, "{{ ns | d('acme') }}").unwrap(), "acme");
    assert_eq!(
        resolve(d, "{{ reg }}/x").unwrap_err(),
        EvalError::Undefined {
            name: "reg".to_string()
        }
    );
}

#[test]
fn the_filters_image_strings_use_behave_as_ansible_s() {
    let d = "repo: Quay.IO/Acme/App\ntag: 1.10\nflag: \"yes\"\nparts: [a, b]\n";
    for (template, want) in [
        ("{{ repo | lower }}", "quay.io/acme/app"),
        ("{{ repo | upper }}", "QUAY.IO/ACME/APP"),
        ("{{ repo | replace('Acme', 'corp') }}", "Quay.IO/corp/App"),
        (
            "{{ repo | regex_replace('^([^/]+)/', 'r.example/\\\\1-') }}",
            "r.example/Quay.IO-Acme/App",
        ),
        ("{{ '  x ' | trim }}", "x"),
        ("{{ tag | string }}", "1.1"),
        ("{{ tag }}", "1.1"),
        ("{{ parts | join('/') }}", "a/b"),
        ("{{ parts | first }}{{ parts | last }}", "ab"),
        ("{{ flag | bool | ternary('on', 'off') }}", "on"),
        ("{{ 'v' ~ tag }}", "v1.1"),
    ] {
        assert_eq!(resolve(d, template).unwrap(), want, "{template}");
    }
}

#[test]
fn a_nested_image_table_is_evaluated_lazily_and_set_overrides_every_default() {
    let d = "reg: docker.io\nimages:\n  app:\n    repo: \"{{ reg }}/app\"\n";
    let p = Project::load(
        &[("roles/r/defaults/main.yml", d)],
        &[("reg".to_string(), "r.example".to_string())],
        Limits::default(),
    );
    let r = p
        .resolve(Some("roles/r"), "{{ images.app.repo }}", "t")
        .unwrap();
    assert_eq!(r.value, "r.example/app");
    let reg = r.definitions.iter().find(|d| d.name == "reg").unwrap();
    assert_eq!(reg.file, "--set");
}

#[test]
fn printing_a_table_whose_value_does_not_parse_ends_quickly() {
    let d = "a: \"{% for i in range(050) %}{{ b'}}{% endfor %}\"\nb: \"{{ c ~  c }}\"\nc: xxxx\nimages:\n  x:\n    repo: \"{{ a }}\"\n";
    let started = std::time::Instant::now();
    let r = resolve(d, "{{ images.x}}");
    assert!(
        started.elapsed().as_secs() < 2,
        "{:?} {r:?}",
        started.elapsed()
    );
}
