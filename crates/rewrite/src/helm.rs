//! Which of the two Helm edits was made, and why. A values file with `global.imageRegistry` can
//! be moved two ways: by that one setting, which the chart's templates prepend to the images they
//! compose with it, or by each image's own field, written with the private registry. Which is
//! right depends on the templates (a chart that prepends the global to an image written in full
//! pulls a double prefix); the values file alone cannot tell, so the plan says which edit it made
//! and on what evidence, for `rewrite` to show.

use std::ops::Range;

use discover::{Finding, PartRole};

use crate::edit::Edit;

/// A decision `rewrite` made that the file alone cannot prove right, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Where the edit is (the global setting, or the image's own value).
    pub span: Range<usize>,
    pub image: String,
    pub message: String,
}

/// Notes for the edits made to one finding of a values file that has `global.imageRegistry`.
/// `edits` are the edits planned for it alone.
pub(crate) fn global_registry_notes(f: &Finding, edits: &[Edit], notes: &mut Vec<Note>) {
    let Some(global) = f.site.helm_global_registry.as_deref() else {
        return;
    };
    if edits.is_empty() {
        return;
    }
    let global_part = f
        .parts
        .iter()
        .find(|p| p.role == PartRole::GlobalRegistry && !p.value.trim().is_empty());
    match global_part {
        Some(part) if edits.iter().any(|e| e.span == part.span) => {
            // One note per setting, however many images it moves.
            if let Some(n) = notes.iter_mut().find(|n| n.span == part.span) {
                n.image.push_str(", ");
                n.image.push_str(&f.image);
                return;
            }
            let new = &edits
                .iter()
                .find(|e| e.span == part.span)
                .unwrap()
                .replacement;
            notes.push(Note {
                span: part.span.clone(),
                image: f.image.clone(),
                message: format!(
                    "edited global.imageRegistry ({global} -> {new}), not the images' own fields: \
                     the values compose these images with it (registry/repository fields under a \
                     chart-wide global), which is how a chart that honours global.imageRegistry \
                     reads them; the chart's templates were not read"
                ),
            });
        }
        _ => notes.push(Note {
            span: f.span.clone(),
            image: f.image.clone(),
            message: format!(
                "wrote the private registry into this image's own value, and global.imageRegistry \
                 ({global}) is set too: the values do not compose this image with the global, so \
                 it is taken as written in full; the chart's templates were not read — if they \
                 prepend global.imageRegistry to this value, the image pulled gets a double prefix \
                 (check with `helm template`)"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::{Mapping, Mode, PlanOptions, plan};

    fn notes(values: &str) -> Vec<(String, String)> {
        let report = discover::scan_file("values.yaml", values.as_bytes(), &Default::default());
        let mapping = Mapping::new("registry.corp", Mode::ReplaceHost, vec![]).unwrap();
        let plan = plan(values, &report.findings, &mapping, &PlanOptions::default()).unwrap();
        plan.notes
            .into_iter()
            .map(|n| (values[n.span].to_string(), n.message))
            .collect()
    }

    #[test]
    fn an_edited_global_is_said_once_for_the_images_it_moves() {
        let notes = notes(
            "global: {imageRegistry: docker.io}\na: {image: {repository: x/a, tag: '1'}}\nb: {image: {repository: x/b, tag: '1'}}\n",
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].0, "docker.io");
        assert!(
            notes[0]
                .1
                .starts_with("edited global.imageRegistry (docker.io -> registry.corp)")
        );
    }

    #[test]
    fn an_image_written_in_full_beside_a_global_warns_of_a_double_prefix() {
        let notes = notes("global: {imageRegistry: docker.io}\nimage: nginx:1.25\n");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].0, "nginx:1.25");
        assert!(notes[0].1.contains("double prefix"));
        assert!(self::notes("image: nginx:1.25\n").is_empty());
    }
}
