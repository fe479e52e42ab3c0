//! The live cluster through kube-rs: audit of what runs, pull secrets, webhook install.
