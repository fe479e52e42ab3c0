//! A tiny scripted HTTP/1.1 server for fault tests: every request is recorded and answered by a
//! closure, which can also cut the connection mid-body, stream an endless body, trickle bytes or
//! never answer. The server counts connections and the body bytes it managed to send, so a test
//! can prove what the client read.

// Shared by several test binaries; each uses only some of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Declares `declared` bytes, sends `body`, then closes the connection.
    Truncated {
        status: u16,
        headers: Vec<(String, String)>,
        declared: usize,
        body: Vec<u8>,
    },
    /// Streams body bytes until the client stops reading (or 1 GiB, 60 s): chunked encoding,
    /// or `Content-Length: declared` when given.
    Endless {
        status: u16,
        headers: Vec<(String, String)>,
        declared: Option<u64>,
    },
    /// Sends `Content-Length: declared` and then one byte every `every`.
    Trickle {
        status: u16,
        headers: Vec<(String, String)>,
        declared: u64,
        every: Duration,
    },
    /// Reads the request and never answers (holds the connection for up to 60 s).
    Silent,
}

/// The most an endless body sends, so a broken client cannot make a test run forever.
pub const ENDLESS_CAP: u64 = 1 << 30;

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        match &mut self {
            Reply::Full { headers, .. }
            | Reply::Truncated { headers, .. }
            | Reply::Endless { headers, .. }
            | Reply::Trickle { headers, .. } => headers.push((k.to_string(), v.to_string())),
            Reply::Silent => {}
        }
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Reply {
        if let Reply::Full { body, .. } = &mut self {
            *body = b.into();
        }
        self
    }
}

type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

pub struct Server {
    pub host: String,
    pub log: Arc<Mutex<Vec<Req>>>,
    /// Connections accepted.
    pub accepts: Arc<AtomicUsize>,
    /// Body bytes of `Endless` and `Trickle` replies the socket accepted.
    pub written: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Counters {
    log: Arc<Mutex<Vec<Req>>>,
    written: Arc<AtomicU64>,
}

impl Server {
    pub async fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        Server::start_on(listener, host, handler)
    }

    /// Serves on `listener`, known to the client as `host` (so a test can name the same server
    /// `127.0.0.1:P` and `localhost:P`).
    pub fn start_on(
        listener: TcpListener,
        host: String,
        handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let log = Arc::new(Mutex::new(Vec::new()));
        let accepts = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let handler: Handler = Arc::new(handler);
        let counters = Counters {
            log: log.clone(),
            written: written.clone(),
        };
        let a = accepts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (h, c) = (handler.clone(), counters.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, h, c).await;
                });
            }
        });
        Server {
            host,
            log,
            accepts,
            written,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .count()
    }
}

async fn serve(mut sock: TcpStream, handler: Handler, counters: Counters) -> std::io::Result<()> {
    let log = counters.log;
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let path = first.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    read_more(&mut sock, &mut buf).await?;
                };
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&buf[..line_end]).trim(), 16)
                        .unwrap_or(0);
                buf.drain(..line_end + 2);
                while buf.len() < size + 2 {
                    read_more(&mut sock, &mut buf).await?;
                }
                body.extend_from_slice(&buf[..size]);
                buf.drain(..size + 2);
                if size == 0 {
                    break;
                }
            }
        } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while buf.len() < len {
                read_more(&mut sock, &mut buf).await?;
            }
            body = buf.drain(..len).collect();
        }
        let req = Req {
            method,
            path,
            headers,
            body,
        };
        let reply = handler(&req);
        log.lock().unwrap().push(req);
        match reply {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                sock.write_all(out.as_bytes()).await?;
                sock.write_all(&body).await?;
            }
            Reply::Truncated {
                status,
                headers,
                declared,
                body,
            } => {
                let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {declared}\r\n");
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                sock.write_all(out.as_bytes()).await?;
                sock.write_all(&body).await?;
                sock.flush().await?;
                return Ok(());
            }
            Reply::Endless {
                status,
                headers,
                declared,
            } => {
                let mut out = format!("HTTP/1.1 {status} X\r\n");
                match declared {
                    Some(n) => out.push_str(&format!("content-length: {n}\r\n")),
                    None => out.push_str("transfer-encoding: chunked\r\n"),
                }
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                sock.write_all(out.as_bytes()).await?;
                let chunk = vec![b'x'; 64 * 1024];
                let framed = [
                    format!("{:x}\r\n", chunk.len()).into_bytes(),
                    chunk.clone(),
                    b"\r\n".to_vec(),
                ]
                .concat();
                let started = std::time::Instant::now();
                let mut sent = 0u64;
                while sent < declared.unwrap_or(ENDLESS_CAP).min(ENDLESS_CAP)
                    && started.elapsed() < Duration::from_secs(60)
                {
                    let w = if declared.is_some() { &chunk } else { &framed };
                    sock.write_all(w).await?;
                    sent += chunk.len() as u64;
                    counters
                        .written
                        .fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
                return Ok(());
            }
            Reply::Trickle {
                status,
                headers,
                declared,
                every,
            } => {
                let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {declared}\r\n");
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                sock.write_all(out.as_bytes()).await?;
                for _ in 0..declared {
                    tokio::time::sleep(every).await;
                    sock.write_all(b"x").await?;
                    sock.flush().await?;
                    counters.written.fetch_add(1, Ordering::SeqCst);
                }
                return Ok(());
            }
            Reply::Silent => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                return Ok(());
            }
        }
    }
}

async fn read_more(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = sock.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}
