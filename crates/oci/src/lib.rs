//! Moving container images: a distribution-spec registry [`Client`], an OCI image [`Layout`]
//! store with tar archives, and the [`transfer`] engine that copies images between them without
//! ever sending a blob twice or keeping bytes that do not match their digest.

pub mod archive;
pub mod auth;
pub mod client;
pub mod digest;
pub mod error;
pub mod layout;
pub mod manifest;
pub mod transfer;

pub use archive::{Compression, read_archive, write_archive};
pub use auth::Credential;
pub use client::{Client, ClientOptions, Manifest, ManifestHead, MountResult, Repo, UploadSession};
pub use digest::Digest;
pub use error::{Error, Result};
pub use layout::{BlobWriter, Layout};
pub use manifest::{Descriptor, Parsed, Platform};
pub use transfer::{
    CopiedImage, Endpoint, ImageResult, Resolved, Stats, Transfer, TransferOptions, resolve,
};
