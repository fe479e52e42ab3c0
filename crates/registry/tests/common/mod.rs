//! Helpers shared by the metrics tests: a request through a Router and a strict reader of the
//! Prometheus text exposition format.
#![allow(dead_code)]

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Vec<u8>,
    authz: Option<&str>,
) -> (u16, Vec<u8>) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(a) = authz {
        b = b.header(header::AUTHORIZATION, a);
    }
    let resp = app
        .clone()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

/// One sample: name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// A strict reader of the text exposition format 0.0.4: every line is a HELP, a TYPE or a sample
/// of a family whose TYPE came first; label values are unescaped; anything else fails.
pub fn parse(text: &str) -> (HashMap<String, String>, Vec<Sample>) {
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "exposition ends with a line feed");
    for (n, line) in text.lines().enumerate() {
        let ctx = format!("line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect(&ctx);
            assert!(valid_name(name) && !help.is_empty(), "{ctx}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(&ctx);
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{ctx}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {ctx}"
            );
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{ctx}");
        let name_end = line.find(['{', ' ']).expect(&ctx);
        let name = &line[..name_end];
        assert!(valid_name(name), "{ctx}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {ctx}");
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end;
            loop {
                let (i, c) = chars.next().expect(&ctx);
                if c == '}' {
                    end = Some(i);
                    break;
                }
                let start = i;
                let mut eq = None;
                for (j, c) in chars.by_ref() {
                    if c == '=' {
                        eq = Some(j);
                        break;
                    }
                }
                let eq = eq.expect(&ctx);
                let lname = &r[start..eq];
                assert!(valid_name(lname), "{ctx}");
                assert_eq!(chars.next().map(|x| x.1), Some('"'), "{ctx}");
                let mut value = String::new();
                loop {
                    match chars.next().expect(&ctx).1 {
                        '\\' => match chars.next().expect(&ctx).1 {
                            'n' => value.push('\n'),
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            other => panic!("bad escape \\{other}: {ctx}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw line feed: {ctx}"),
                        c => value.push(c),
                    }
                }
                labels.push((lname.to_string(), value));
                match chars.peek().map(|x| x.1) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    _ => panic!("{ctx}"),
                }
            }
            rest = &r[end.unwrap() + 1..];
        }
        let v = rest.strip_prefix(' ').expect(&ctx);
        let v = match v {
            "+Inf" => f64::INFINITY,
            v => v.parse::<f64>().expect(&ctx),
        };
        samples.push((name.to_string(), labels, v));
    }
    (types, samples)
}

pub fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

pub fn get_sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
        .2
}
