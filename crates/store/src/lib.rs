//! Where images rest: the OCI image [`Layout`] directory (verified puts, locked `index.json`,
//! byte-range reads, a repository + tag index a registry can serve) and tar archives of it, which
//! [`TarArchive`] serves in place.
//! Must not depend on an HTTP client (a registry server links this crate without reqwest).

pub mod archive;
pub mod layout;
pub mod store;
pub mod tar_index;
pub mod upload;

pub use archive::{Compression, read_archive, read_archive_with_progress, write_archive};
pub use layout::{BlobWriter, Layout};
pub use store::{BlobRange, EntryRef, Store, split_entry_name, split_ref_name};
pub use tar_index::TarArchive;
pub use upload::Upload;
