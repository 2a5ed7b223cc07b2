//! `FERRY_ROUTES`: any text is a set of valid routes or errors that each name a field under
//! `routes`. Accepted routes never overlap: no key (built from every route's prefix and
//! suffixes) matches two of them.
#![no_main]

use ferry::domain::job::Limits;
use ferry::trigger::routes::Routes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    let routes = match Routes::from_json(text, &limits) {
        Ok(routes) => routes,
        Err(invalid) => {
            assert!(!invalid.errors.is_empty());
            for e in &invalid.errors {
                assert!(e.field.starts_with("routes"), "{e}");
            }
            return;
        }
    };
    let all: Vec<_> = (0..routes.len()).map(|i| routes.get(i)).collect();
    let mut suffixes: Vec<&str> = vec![""];
    for route in &all {
        assert!(route.job.clone().validate(&limits).is_ok(), "{route:?}");
        suffixes.extend(route.suffixes.iter().map(String::as_str));
    }
    for route in &all {
        for suffix in &suffixes {
            for middle in ["", "x/"] {
                let key = format!("{}{middle}{suffix}", route.prefix);
                let matching: Vec<&str> = all
                    .iter()
                    .filter(|r| r.matches(route.bucket.as_str(), &key))
                    .map(|r| r.name.as_str())
                    .collect();
                assert!(matching.len() <= 1, "{key:?} matches {matching:?}");
            }
        }
    }
});
