//! A kube-apiserver stand-in on loopback for tests: plain HTTP/1.1, one thread per connection,
//! answering from recorded API responses (`tests/recorded/*.json`, shaped exactly as the real
//! server's JSON: kind, apiVersion, resourceVersion, `metadata.continue`, `Status` errors) and
//! keeping Secrets and ServiceAccounts in memory so that writes can be seen and counted. No
//! kube-apiserver can run here; kube 5 takes an `http://` cluster URL, so the real client code
//! path (URL building, query parameters, paging, error decoding) is what is tested.
//!
//! Shared by `crates/cluster/tests` and the CLI tests (`tests/it`, through `#[path]`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// A recorded response, `tests/recorded/NAME.json` beside this file.
pub fn recorded(name: &str) -> Value {
    let path = recorded_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `file!()` is relative to the workspace root, which is the including crate's manifest
/// directory or one of its parents.
fn recorded_dir() -> PathBuf {
    let here = Path::new(file!());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join(here).exists())
        .expect("the workspace root");
    root.join(here.parent().unwrap().parent().unwrap())
        .join("recorded")
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Query parameters, decoded.
    pub query: BTreeMap<String, String>,
    pub body: String,
    /// The `Accept` header: a metadata-only request asks for `as=PartialObjectMetadata`.
    pub accept: String,
}

impl Seen {
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

/// A fixed answer for a GET of a path: a list's pages (each page's `metadata.continue` token
/// leads to the next) or one object, with its status code.
#[derive(Debug, Clone)]
pub enum Canned {
    Pages(Vec<Value>),
    Object(u16, Value),
}

#[derive(Default)]
struct State {
    canned: BTreeMap<String, Canned>,
    /// Secrets and ServiceAccounts by path, writable.
    objects: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    next_rv: u64,
}

pub struct FakeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            next_rv: 5000,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(conn, &state));
            }
        });
        FakeApi { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer GETs of `path` with `canned`.
    pub fn canned(&self, path: &str, canned: Canned) -> &FakeApi {
        self.state
            .lock()
            .unwrap()
            .canned
            .insert(path.into(), canned);
        self
    }

    /// Store an object (a Secret or ServiceAccount) that GET, POST and PUT work on.
    pub fn object(&self, object: Value) -> &FakeApi {
        let path = object_path(&object);
        self.state.lock().unwrap().objects.insert(path, object);
        self
    }

    pub fn get_object(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn writes(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_write).collect()
    }

    pub fn forget_seen(&self) {
        self.state.lock().unwrap().seen.clear();
    }

    /// A kubeconfig pointing at this server, written into `dir`.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: auditor\n    namespace: {namespace}\n\
             - name: other\n  context:\n    cluster: fake\n    user: auditor\n    namespace: other-ns\n\
             current-context: fake\nusers:\n- name: auditor\n  user:\n    token: test-token\n",
            self.url()
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// `/api/v1/namespaces/NS/secrets/NAME` for a Secret, and so on.
fn object_path(object: &Value) -> String {
    let kind = object["kind"].as_str().expect("kind");
    let ns = object["metadata"]["namespace"].as_str().expect("namespace");
    let name = object["metadata"]["name"].as_str().expect("name");
    format!("/api/v1/namespaces/{ns}/{}/{name}", plural(kind))
}

fn plural(kind: &str) -> &'static str {
    match kind {
        "Secret" => "secrets",
        "ServiceAccount" => "serviceaccounts",
        other => panic!("the fake keeps no {other}"),
    }
}

/// The recorded cluster: `shop` (three pods over two pages), `ci` (a Jenkins agent that cannot
/// pull), `kube-system` (forbidden to these credentials).
pub fn recorded_cluster() -> FakeApi {
    let api = FakeApi::start();
    let pages = |names: &[&str]| Canned::Pages(names.iter().map(|n| recorded(n)).collect());
    api.canned("/api/v1/namespaces", pages(&["namespaces"]))
        .canned(
            "/api/v1/namespaces/shop/pods",
            pages(&["pods-shop-page1", "pods-shop-page2"]),
        )
        .canned("/api/v1/namespaces/ci/pods", pages(&["pods-ci"]))
        .canned(
            "/api/v1/namespaces/kube-system/pods",
            Canned::Object(403, recorded("forbidden-pods-kube-system")),
        )
        .canned(
            "/api/v1/namespaces/shop/serviceaccounts",
            pages(&["serviceaccounts-shop"]),
        )
        .canned(
            "/api/v1/namespaces/ci/serviceaccounts",
            pages(&["serviceaccounts-ci"]),
        )
        .object(recorded("secret-shop-regcred"));
    api
}

/// A `Status` object as kube-apiserver writes one for a failed request.
pub fn status(code: u16, reason: &str, message: &str, details: Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    })
}

fn serve(conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut length = 0usize;
        let mut accept = String::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("accept") {
                    accept = v.trim().to_string();
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let seen = Seen {
            method,
            path: path.to_string(),
            query: parse_query(query),
            body: String::from_utf8_lossy(&body).into_owned(),
            accept,
        };
        let (code, answer) = respond(state, &seen);
        state.lock().unwrap().seen.push(seen);
        let text = answer.to_string();
        let mut out = conn.try_clone().unwrap();
        let head = format!(
            "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reason_phrase(code),
            text.len()
        );
        if out
            .write_all(head.as_bytes())
            .and_then(|()| out.write_all(text.as_bytes()))
            .is_err()
        {
            return;
        }
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Status",
    }
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn respond(state: &Mutex<State>, req: &Seen) -> (u16, Value) {
    let mut st = state.lock().unwrap();
    if req.method == "GET"
        && let Some(canned) = st.canned.get(&req.path)
    {
        return match canned {
            Canned::Object(code, v) => (*code, v.clone()),
            Canned::Pages(pages) => {
                // A token leads to the page after the one that handed it out.
                let index = match req.query.get("continue") {
                    None => 0,
                    Some(t) => match pages
                        .iter()
                        .position(|p| p["metadata"]["continue"].as_str() == Some(t.as_str()))
                    {
                        Some(i) => i + 1,
                        None => {
                            return (
                                410,
                                status(
                                    410,
                                    "Expired",
                                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                                    json!({}),
                                ),
                            );
                        }
                    },
                };
                (200, pages[index].clone())
            }
        };
    }
    // Objects: /api/v1/namespaces/NS/RESOURCE[/NAME]
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let (ns, resource, name) = match segments.as_slice() {
        ["api", "v1", "namespaces", ns, r] => (*ns, *r, None),
        ["api", "v1", "namespaces", ns, r, n] => (*ns, *r, Some(*n)),
        _ => {
            return (
                404,
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                    json!({}),
                ),
            );
        }
    };
    let kind_of = |r: &str| match r {
        "secrets" => "Secret",
        _ => "ServiceAccount",
    };
    let not_found = |name: &str| {
        (
            404,
            status(
                404,
                "NotFound",
                &format!("{resource} \"{name}\" not found"),
                json!({"name": name, "kind": resource}),
            ),
        )
    };
    match (req.method.as_str(), name) {
        ("GET", Some(n)) => match st.objects.get(&req.path) {
            // As kube-apiserver answers a metadata-only GET: the object's metadata, no data.
            Some(o) if req.accept.contains("as=PartialObjectMetadata") => (
                200,
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                }),
            ),
            Some(o) => (200, o.clone()),
            None => not_found(n),
        },
        ("POST", None) => {
            let mut o: Value = serde_json::from_str(&req.body).expect("JSON body");
            let n = o["metadata"]["name"].as_str().unwrap().to_string();
            let path = format!("/api/v1/namespaces/{ns}/{resource}/{n}");
            if st.objects.contains_key(&path) {
                return (
                    409,
                    status(
                        409,
                        "AlreadyExists",
                        &format!("{resource} \"{n}\" already exists"),
                        json!({"name": n, "kind": resource}),
                    ),
                );
            }
            st.next_rv += 1;
            o["metadata"]["namespace"] = json!(ns);
            o["metadata"]["resourceVersion"] = json!(st.next_rv.to_string());
            o["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", st.next_rv));
            o["metadata"]["creationTimestamp"] = json!("2026-03-01T10:00:00Z");
            o["kind"] = json!(kind_of(resource));
            o["apiVersion"] = json!("v1");
            st.objects.insert(path, o.clone());
            (201, o)
        }
        ("PUT", Some(n)) => {
            let Some(current) = st.objects.get(&req.path).cloned() else {
                return not_found(n);
            };
            let mut o: Value = serde_json::from_str(&req.body).expect("JSON body");
            if o["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                return (
                    409,
                    status(
                        409,
                        "Conflict",
                        &format!(
                            "Operation cannot be fulfilled on {resource} \"{n}\": the object has been modified; please apply your changes to the latest version and try again"
                        ),
                        json!({"name": n, "kind": resource}),
                    ),
                );
            }
            st.next_rv += 1;
            o["metadata"]["resourceVersion"] = json!(st.next_rv.to_string());
            o["metadata"]["uid"] = current["metadata"]["uid"].clone();
            o["metadata"]["creationTimestamp"] = current["metadata"]["creationTimestamp"].clone();
            st.objects.insert(req.path.clone(), o.clone());
            (200, o)
        }
        _ => (
            405,
            status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                json!({}),
            ),
        ),
    }
}
