//! What the Jenkins readers of both formats (JCasC templates, Jenkinsfile `podTemplate`s) ask of
//! a raw pod YAML string before parsing it.

/// A raw pod YAML with a container named `jnlp`: a `name: jnlp` line, quoted or not, with or
/// without a trailing comment.
pub(crate) fn has_jnlp(yaml: &str) -> bool {
    yaml.lines().any(|line| {
        let l = line.trim_start();
        let l = l.strip_prefix("- ").unwrap_or(l).trim_start();
        l.strip_prefix("name:").is_some_and(|v| {
            let v = v.split(" #").next().unwrap_or("").trim();
            let v = ['"', '\'']
                .iter()
                .find_map(|q| v.strip_prefix(*q)?.strip_suffix(*q))
                .unwrap_or(v);
            v == "jnlp"
        })
    })
}
