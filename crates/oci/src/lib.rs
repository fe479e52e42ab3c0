//! OCI types shared by the client, the store and the transfer engine: [`Digest`], media types,
//! manifest and index parsing with their size and depth caps, blob stream verification and the
//! one [`Error`]. Must not depend on an HTTP client, an async runtime or the file system.

pub mod digest;
pub mod error;
pub mod manifest;
pub mod stream;
pub mod time;

pub use digest::{Digest, InvalidDigest};
pub use error::{Error, NetworkCause, Result};
pub use manifest::{Descriptor, Parsed, Platform};
pub use stream::{BlobStream, verify_stream};
