//! The Jenkins Kubernetes plugin's own settings of its default agent image, read where a file
//! states them: the Java system properties
//! `org.csanchez.jenkins.plugins.kubernetes.pipeline.PodTemplateStepExecution.defaultImage` (the
//! image) and `….dockerRegistryPrefix` (a registry put before it when a cloud sets no
//! `jnlpregistry`), as they appear in a controller's `JAVA_OPTS` — a Helm values
//! `controller.javaOpts`, a Deployment's env, a systemd unit. The plugin reads them at start-up,
//! so in the file that sets them they replace the built-in default for every template.

use std::ops::Range;

use crate::{Finding, Kind, Options, Source};

const PROPERTY: &str = "org.csanchez.jenkins.plugins.kubernetes.pipeline.PodTemplateStepExecution.";

/// `-D<PROPERTY><name>=<value>` in `text`: the value and its byte range (up to whitespace or a
/// quote), the last one winning as on a JVM command line.
fn property<'t>(text: &'t str, name: &str) -> Option<(&'t str, Range<usize>)> {
    let key = format!("-D{PROPERTY}{name}=");
    let at = text.rmatch_indices(&key).next()?.0 + key.len();
    let len = text[at..]
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
        .unwrap_or(text.len() - at);
    (len > 0).then(|| (&text[at..at + len], at..at + len))
}

/// The options for scanning `text`: `opts` with the plugin settings the text states, and the
/// finding for a default image it names (an image the controller's agents pull).
pub(crate) fn settings(text: &str, opts: &Options) -> Option<(Options, Option<Finding>)> {
    let image = property(text, "defaultImage");
    let prefix = property(text, "dockerRegistryPrefix");
    if image.is_none() && prefix.is_none() {
        return None;
    }
    let mut local = opts.clone();
    let finding = image.and_then(|(value, span)| {
        let f = Finding::from_value(
            value,
            span,
            true,
            Kind::Heuristic,
            Source::Jcasc,
            "Kubernetes plugin default agent image (-D…PodTemplateStepExecution.defaultImage)"
                .to_string(),
        )?;
        local.default_jnlp_image = value.to_string();
        Some(f)
    });
    if let Some((value, _)) = prefix {
        local.jnlp_registry_prefix = Some(value.trim_end_matches('/').to_string());
    }
    Some((local, finding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_property_wins_and_ends_at_a_quote() {
        let text = "javaOpts: \"-Dorg.csanchez.jenkins.plugins.kubernetes.pipeline.PodTemplateStepExecution.defaultImage=a:1 -Dorg.csanchez.jenkins.plugins.kubernetes.pipeline.PodTemplateStepExecution.defaultImage=b:2\"\n";
        let (v, r) = property(text, "defaultImage").unwrap();
        assert_eq!((v, &text[r]), ("b:2", "b:2"));
        assert!(property(text, "dockerRegistryPrefix").is_none());
    }
}
