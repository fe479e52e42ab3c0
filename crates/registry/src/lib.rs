//! The OCI distribution registry server behind `airlock serve`: HTTP handlers over the
//! [`oci_store`] store. Must not depend on an HTTP client (reqwest), discovery or policy.

pub mod auth;
pub mod metrics;
pub mod tls;
