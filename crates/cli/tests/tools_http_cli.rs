//! httpsnoop against a small HTTP/1.1 server in the test process, with a
//! keep-alive client sending a GET and a POST split over several writes.

mod common;

use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Serves one keep-alive connection: reads each request's head line by
/// line and its body by Content-Length, answers, until the client closes.
fn serve(listener: TcpListener) {
    // One fd for reads and writes: httpsnoop follows connections by fd.
    let (stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap() == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.strip_prefix("Content-Length: ") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let response: &[u8] = if request_line.starts_with("GET") {
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        } else {
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
        };
        // Head and body in two writes.
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        writer.write_all(&response[..split]).unwrap();
        writer.write_all(&response[split..]).unwrap();
    }
}

fn read_response(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn httpsnoop_reports_each_exchange_of_a_keep_alive_connection() {
    if !require_bpf() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let me = std::process::id().to_string();
    let mut tool = Command::new(BIN)
        .args([
            "httpsnoop",
            "--json",
            "-v",
            "-p",
            &me,
            "--port",
            &port.to_string(),
            "-d",
            "8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let server = std::thread::spawn(move || serve(listener));
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client_port = client.local_addr().unwrap().port();
    let get = b"GET /index.html HTTP/1.1\r\nHost: test\r\n\r\n";
    client.write_all(get).unwrap();
    let got = read_response(&mut client, 43);
    assert!(got.ends_with(b"hello"));
    let post_head = b"POST /submit HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\n";
    client.write_all(post_head).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    client.write_all(b"hello").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    client.write_all(b" world").unwrap();
    let got = read_response(&mut client, 45);
    assert!(got.ends_with(b"ok"));
    drop(client);
    server.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-INT", &tool.id().to_string()])
        .status()
        .unwrap();
    let status = tool.wait().unwrap();
    let mut stdout = String::new();
    tool.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    tool.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(events.len(), 2, "{stdout}\n{stderr}");
    let (g, p) = (&events[0], &events[1]);
    let client = format!("127.0.0.1:{client_port}");
    for e in [g, p] {
        assert_eq!(e["pid"], std::process::id());
        assert_eq!(e["client"], client);
        assert_eq!(e["fd"], g["fd"], "one connection");
        assert!(e["latency_ms"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(g["method"], "GET");
    assert_eq!(g["path"], "/index.html");
    assert_eq!(g["status"], 200);
    assert_eq!(g["req_bytes"], get.len());
    assert_eq!(g["resp_bytes"], 43);
    assert_eq!(g["req_headers"], serde_json::json!(["Host: test"]));
    assert_eq!(p["method"], "POST");
    assert_eq!(p["path"], "/submit");
    assert_eq!(p["status"], 201);
    assert_eq!(p["req_bytes"], post_head.len() + 11);
    assert_eq!(p["resp_bytes"], 45);
    assert_eq!(p["resp_headers"], serde_json::json!(["Content-Length: 2"]));
}
