//! AdmissionReview in, JSONPatch out: the shared Mapping and Policy applied to pods at creation.
