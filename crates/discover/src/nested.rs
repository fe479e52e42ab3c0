//! Documents held in strings of other documents (pod YAML in a Jenkinsfile, a pipeline or JCasC
//! in a ConfigMap): the seam through which the YAML and Groovy readers scan each other's text
//! without either module depending on the other; `lib.rs` wires them together.

use crate::{FileReport, OffsetMap, Options, PodRef};

/// Scans a string found inside a document, in whichever format it holds.
pub(crate) trait Nested {
    fn options(&self) -> &Options;

    /// YAML held in a string: `map` maps its offsets to the file, `context` prefixes every
    /// finding's context, and `pod` is the pod template it describes, when an enclosing Jenkins
    /// template makes it one (its containers then belong to that template).
    fn yaml(
        &self,
        text: &str,
        map: &OffsetMap,
        context: &str,
        pod: Option<PodRef>,
        out: &mut FileReport,
    );

    /// A pipeline held in a string, scanned when `text` holds one; whether it did.
    fn pipeline(
        &self,
        text: &str,
        map: &OffsetMap,
        context: &str,
        pod: Option<PodRef>,
        out: &mut FileReport,
    ) -> bool;
}
