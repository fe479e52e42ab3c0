//! Byte edits that point configuration files at the private registry; depends on `discover` and
//! `mapping`, never on `policy`, the network or the binary.
//!
//! The [`plan`] of byte edits for a file's findings uses the one [`Mapping`] (re-exported from
//! the `mapping` crate, where it lives so that callers without files can use it), and
//! [`verify`] re-reads the edited text and refuses a result in which anything other than the
//! intended image values changed.

mod edit;
mod helm;
mod verify;

pub use edit::{Edit, Expected, Plan, PlanError, PlanOptions, Seen, Skipped, apply, plan, shift};
pub use helm::Note;
pub use mapping::{Mapping, MappingError, Mode, Rule, k0s_pulls};
pub use verify::{VerifyError, verify};
