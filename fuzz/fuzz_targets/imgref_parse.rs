//! Any UTF-8 string: parsing must not panic, a valid reference must print back as written,
//! and normalisation must be idempotent and produce a reference that parses to itself.
#![no_main]

use imgref::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    match Reference::parse(s) {
        Ok(r) => {
            assert_eq!(r.to_string(), s);
            let n = r.normalized();
            assert_eq!(n.normalized(), n);
            assert!(n.is_normalized());
            assert_eq!(Reference::parse(n.as_str()), Ok(n.clone()));
            assert_eq!(n.name(), r.name());
            let moved = r
                .with_name(&n.name())
                .expect("a normalised name is a valid name");
            assert_eq!((moved.tag(), moved.digest()), (r.tag(), r.digest()));
        }
        Err(e) => {
            assert!(e.position <= s.chars().count());
            assert_eq!(e.found, s.chars().nth(e.position));
            let _ = e.to_string();
        }
    }
});
