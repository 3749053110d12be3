//! HTTP/1.x exchanges put together from a connection's reads and writes:
//! a request is what the server reads until it starts writing, its
//! response what it writes until it reads again (keep-alive) or closes.

use std::collections::HashMap;

use serde::Serialize;

/// What the BPF side saw on one tracked connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io<'a> {
    /// The server read `len` bytes, of which `data` are the first.
    Read { len: u64, data: &'a [u8] },
    /// The server wrote `len` bytes, of which `data` are the first.
    Write { len: u64, data: &'a [u8] },
    /// The server closed the connection.
    Close,
}

/// One request and its response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exchange {
    /// Request method (`GET`).
    pub method: String,
    /// Request target (`/index.html`).
    pub path: String,
    /// Response status code; 0 when no response was seen.
    pub status: u16,
    /// Nanoseconds from the request's first read to the response's last write.
    pub latency_ns: u64,
    /// Bytes of the request, headers and body.
    pub req_bytes: u64,
    /// Bytes of the response, headers and body.
    pub resp_bytes: u64,
    /// Request header lines (the captured part), with `-v`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub req_headers: Vec<String>,
    /// Response header lines (the captured part), with `-v`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resp_headers: Vec<String>,
}

/// The bytes of a head (request or response) kept for parsing: enough for
/// a request line and the headers users look at.
const HEAD_LIMIT: usize = 8192;

#[derive(Debug, Default)]
struct Pending {
    started_ns: u64,
    last_write_ns: u64,
    req_head: Vec<u8>,
    resp_head: Vec<u8>,
    req_bytes: u64,
    resp_bytes: u64,
    /// Whether a byte of the response has been written.
    responding: bool,
    /// Whether the request was seen from its first byte (not a connection
    /// on which the server spoke first).
    request_from_start: bool,
    req_gap: bool,
    resp_gap: bool,
}

/// Reassembles exchanges per connection. Keys are the caller's (pid, fd).
#[derive(Debug, Default)]
pub struct Tracker {
    conns: HashMap<(u32, i32), Pending>,
}

/// Appends captured bytes to `head` up to the kept limit, while the head is
/// not complete (no blank line yet). A call moved `len` bytes but only the
/// first `data.len()` were captured; after such a gap the head stops
/// growing, since what follows would not join on.
fn extend_head(head: &mut Vec<u8>, gap: &mut bool, data: &[u8], len: u64) {
    let complete = head.windows(4).any(|w| w == b"\r\n\r\n");
    if !complete && !*gap && head.len() < HEAD_LIMIT {
        let room = HEAD_LIMIT - head.len();
        head.extend_from_slice(&data[..data.len().min(room)]);
    }
    *gap |= (data.len() as u64) < len;
}

impl Tracker {
    /// Feeds one event of connection `key` at time `ts_ns`; returns the
    /// exchange it completes, if any.
    pub fn feed(
        &mut self,
        key: (u32, i32),
        ts_ns: u64,
        io: Io<'_>,
        verbose: bool,
    ) -> Option<Exchange> {
        match io {
            Io::Read { len, data } => {
                let done = match self.conns.get(&key) {
                    Some(p) if p.responding => self.conns.remove(&key),
                    _ => None,
                };
                let p = self.conns.entry(key).or_insert_with(|| Pending {
                    started_ns: ts_ns,
                    request_from_start: true,
                    ..Pending::default()
                });
                p.req_bytes += len;
                extend_head(&mut p.req_head, &mut p.req_gap, data, len);
                done.and_then(|d| finish(d, verbose))
            }
            Io::Write { len, data } => {
                let p = self.conns.entry(key).or_insert_with(|| Pending {
                    started_ns: ts_ns,
                    ..Pending::default()
                });
                p.responding = true;
                p.resp_bytes += len;
                p.last_write_ns = ts_ns;
                extend_head(&mut p.resp_head, &mut p.resp_gap, data, len);
                None
            }
            Io::Close => self.conns.remove(&key).and_then(|d| finish(d, verbose)),
        }
    }

    /// Every exchange with a response, with its connection's key, for
    /// when tracing stops.
    pub fn drain(&mut self, verbose: bool) -> Vec<((u32, i32), Exchange)> {
        let mut keys: Vec<_> = self.conns.keys().copied().collect();
        keys.sort();
        keys.into_iter()
            .filter_map(|k| Some((k, self.conns.remove(&k)?)))
            .filter(|(_, p)| p.responding)
            .filter_map(|(k, p)| Some((k, finish(p, verbose)?)))
            .collect()
    }
}

/// The lines of a head up to the blank line, split on CRLF.
fn head_lines(head: &[u8]) -> Vec<String> {
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(head.len());
    String::from_utf8_lossy(&head[..end])
        .split("\r\n")
        .map(str::to_string)
        .collect()
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

/// An exchange from a connection's pending state, or `None` when what was
/// read is not an HTTP/1.x request.
fn finish(p: Pending, verbose: bool) -> Option<Exchange> {
    if !p.request_from_start {
        return None;
    }
    let req = head_lines(&p.req_head);
    let mut first = req.first()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let version = first.next().unwrap_or("");
    if !METHODS.contains(&method.as_str()) || !version.starts_with("HTTP/1.") {
        return None;
    }
    let resp = head_lines(&p.resp_head);
    let status = resp
        .first()
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Some(Exchange {
        method,
        path,
        status,
        latency_ns: p.last_write_ns.saturating_sub(p.started_ns),
        req_bytes: p.req_bytes,
        resp_bytes: p.resp_bytes,
        req_headers: if verbose {
            req[1..].to_vec()
        } else {
            Vec::new()
        },
        resp_headers: if verbose && !resp.is_empty() {
            resp[1..].to_vec()
        } else {
            Vec::new()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(data: &[u8]) -> Io<'_> {
        Io::Read {
            len: data.len() as u64,
            data,
        }
    }

    fn write(data: &[u8]) -> Io<'_> {
        Io::Write {
            len: data.len() as u64,
            data,
        }
    }

    #[test]
    fn keep_alive_exchanges_split_over_reads_and_writes() {
        let mut t = Tracker::default();
        let k = (10, 4);
        assert_eq!(t.feed(k, 1_000, read(b"GET /a HT"), false), None);
        assert_eq!(
            t.feed(k, 2_000, read(b"TP/1.1\r\nHost: x\r\n\r\n"), false),
            None
        );
        assert_eq!(t.feed(k, 3_000, write(b"HTTP/1.1 200 OK\r\n"), false), None);
        assert_eq!(
            t.feed(k, 4_000_000, write(b"Content-Length: 0\r\n\r\n"), false),
            None
        );
        let first = t
            .feed(
                k,
                5_000_000,
                read(b"POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\n"),
                true,
            )
            .unwrap();
        assert_eq!(
            (first.method.as_str(), first.path.as_str(), first.status),
            ("GET", "/a", 200)
        );
        assert_eq!((first.req_bytes, first.resp_bytes), (28, 38));
        assert_eq!(first.latency_ns, 4_000_000 - 1_000);
        assert_eq!(t.feed(k, 5_000_001, read(b"hi"), true), None);
        t.feed(
            k,
            6_000_000,
            write(b"HTTP/1.1 201 Created\r\nX: y\r\n\r\nok"),
            true,
        );
        let second = t.feed(k, 7_000_000, Io::Close, true).unwrap();
        assert_eq!((second.method.as_str(), second.status), ("POST", 201));
        assert_eq!((second.req_bytes, second.resp_bytes), (41, 32));
        assert_eq!(second.req_headers, vec!["Content-Length: 2"]);
        assert_eq!(second.resp_headers, vec!["X: y"]);
        assert!(t.drain(false).is_empty());
    }

    #[test]
    fn non_http_traffic_and_unanswered_requests() {
        let mut t = Tracker::default();
        t.feed((1, 3), 0, read(b"\x16\x03\x01 TLS hello"), false);
        t.feed((1, 3), 1, write(b"\x16\x03\x03"), false);
        assert_eq!(t.feed((1, 3), 2, Io::Close, false), None);
        // A request whose response never came is left out at the end.
        t.feed((1, 5), 0, read(b"GET / HTTP/1.0\r\n\r\n"), false);
        assert!(t.drain(false).is_empty());
        // One with a response is reported when tracing stops.
        t.feed((1, 6), 0, read(b"GET /x HTTP/1.0\r\n\r\n"), false);
        t.feed((1, 6), 9, write(b"HTTP/1.0 404 Not Found\r\n\r\n"), false);
        let left = t.drain(false);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, (1, 6));
        assert_eq!(left[0].1.status, 404);
    }
}
