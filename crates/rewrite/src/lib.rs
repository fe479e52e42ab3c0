//! Pointing configuration at the private registry: the one [`Mapping`] from public names to
//! private ones (shared by every verb), the [`plan`] of byte edits for a file's findings, and
//! [`verify`], which re-reads the edited text and refuses a result in which anything other than
//! the intended image values changed.

mod edit;
mod mapping;
mod verify;

pub use edit::{Edit, Plan, PlanError, PlanOptions, Skipped, apply, plan, shift};
pub use mapping::{Mapping, MappingError, Mode, Rule};
pub use verify::{VerifyError, verify};
