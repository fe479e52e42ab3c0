//! Route classes of registry paths: a bounded label set for metrics and the repository a request
//! names, for the authorisation check.

use serving::metrics::METRICS_PATH;

/// What kind of endpoint a path is: a bounded label set (repository names and digests would make
/// one series per image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteClass {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/NAME/manifests/REF`
    Manifest,
    /// `/v2/NAME/blobs/DIGEST`
    Blob,
    /// `/v2/NAME/blobs/uploads/[ID]`
    Upload,
    /// `/v2/NAME/tags/list`
    Tags,
    /// `/v2/NAME/referrers/DIGEST`
    Referrers,
    Token,
    Metrics,
    Other,
}

impl RouteClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Base => "base",
            RouteClass::Catalog => "catalog",
            RouteClass::Manifest => "manifest",
            RouteClass::Blob => "blob",
            RouteClass::Upload => "upload",
            RouteClass::Tags => "tags",
            RouteClass::Referrers => "referrers",
            RouteClass::Token => "token",
            RouteClass::Metrics => "metrics",
            RouteClass::Other => "other",
        }
    }
}

/// The route class of a request path and, for repository routes, the repository name (not
/// validated here: the handlers do that). A name may itself contain `blobs` or `manifests`
/// segments, so the name is everything before the endpoint suffix, matched from the end.
pub fn classify(path: &str) -> (RouteClass, Option<&str>) {
    match path {
        "/v2" | "/v2/" => return (RouteClass::Base, None),
        "/v2/_catalog" => return (RouteClass::Catalog, None),
        crate::auth::TOKEN_PATH => return (RouteClass::Token, None),
        METRICS_PATH => return (RouteClass::Metrics, None),
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return (RouteClass::Other, None);
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    // Byte length of the first k segments joined by '/'.
    let name = |k: usize| -> Option<&str> {
        let len = segs[..k].iter().map(|s| s.len()).sum::<usize>() + k.saturating_sub(1);
        (k > 0 && len > 0).then(|| &rest[..len])
    };
    if n >= 3 {
        let class = match (segs[n - 2], segs[n - 1]) {
            ("manifests", _) => Some(RouteClass::Manifest),
            ("tags", "list") => Some(RouteClass::Tags),
            ("referrers", _) => Some(RouteClass::Referrers),
            ("blobs", "uploads") => Some(RouteClass::Upload),
            ("blobs", _) => Some(RouteClass::Blob),
            _ => None,
        };
        if let Some(c) = class
            && let Some(repo) = name(n - 2)
        {
            return (c, Some(repo));
        }
    }
    if n >= 4
        && segs[n - 3] == "blobs"
        && segs[n - 2] == "uploads"
        && let Some(repo) = name(n - 3)
    {
        return (RouteClass::Upload, Some(repo));
    }
    (RouteClass::Other, None)
}
