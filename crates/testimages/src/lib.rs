//! Test support for airlock (a dev-dependency, never shipped).
//!
//! * [`layout`]: builds real images — gzip tar layers of deterministic random bytes, a config with
//!   matching `rootfs.diff_ids`, OCI or Docker manifests, OCI indexes and Docker manifest lists —
//!   into an OCI image layout directory. Same seed, same bytes, same digests.
//! * [`registry`]: runs Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1 with a
//!   free port, optionally with htpasswd (bcrypt) auth and TLS from a generated CA; killed on drop.
//! * [`elf`]: minimal ELF64 executables (static or naming a loader) for code that reads ELF headers.
//! * [`skopeo`]: runs `skopeo copy` / `skopeo inspect --raw` with clear errors.
//!
//! ```no_run
//! use testimages::{ImageSet, ImageSpec, LayerSpec, Media, Platform, Registry, RegistryKind};
//! let set = ImageSet::temp().unwrap();
//! let img = set
//!     .image("demo/app:1.0", &ImageSpec::new(Media::Oci, Platform::linux_amd64(), vec![
//!         LayerSpec::new(64 * 1024, 1),
//!         LayerSpec::new(128 * 1024, 2),
//!     ]))
//!     .unwrap();
//! let reg = Registry::start(RegistryKind { auth: true, tls: true }).unwrap();
//! let dst = format!("docker://{}/demo/app:1.0", reg.host());
//! let mut args = vec!["--preserve-digests".to_string()];
//! args.extend(reg.dest_args());
//! testimages::skopeo_copy(&set.skopeo_source("demo/app:1.0").unwrap(), &dst, &args).unwrap();
//! let raw = testimages::skopeo_inspect_raw(&dst, &reg.inspect_args()).unwrap();
//! assert_eq!(testimages::sha256_digest(&raw), img.manifest.digest);
//! ```

pub mod elf;
pub mod layout;
pub mod registry;
pub mod skopeo;

pub use layout::{
    BuiltImage, BuiltIndex, BuiltLayer, Descriptor, ImageSet, ImageSpec, LayerSpec, Media,
    Platform, REF_NAME_ANNOTATION, build_image, build_index, media_types, sha256_digest,
};
pub use registry::{Registry, RegistryKind};
pub use skopeo::{NO_ARGS, Skopeo, skopeo, skopeo_copy, skopeo_inspect_raw};
