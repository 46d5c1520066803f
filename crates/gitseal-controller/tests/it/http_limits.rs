//! The HTTP servers against hostile clients on loopback: half-open
//! connections, idle keep-alives, oversized heads and request bodies, and a
//! client that fills the connection cap while the probes must keep answering.

use std::net::SocketAddr;
use std::time::Duration;

use gitseal_controller::http::Limits;
use gitseal_crypto::Identity;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::common::*;
use crate::fake_api::FakeApi;
use crate::process::http_get;

async fn start(limits: Limits) -> (Running, SocketAddr, SocketAddr) {
    let fake = FakeApi::new();
    add_key(&fake, &Identity::generate(), 60);
    let mut c = config();
    c.probe_listen = Some("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()));
    c.http_limits = limits;
    let running = start_with(&fake, c).await;
    let http = running
        .handles
        .http_addr
        .unwrap_or_else(|| panic!("no http"));
    let probes = running
        .handles
        .probe_addr
        .unwrap_or_else(|| panic!("no probes"));
    wait_for("ready", 10, || {
        running.handles.health.not_ready().is_empty().then_some(())
    })
    .await;
    (running, http, probes)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

/// Reads until the server closes; `None` if it has not within `secs`.
async fn closed_within(s: &mut TcpStream, secs: u64) -> Option<String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(secs), s.read_to_end(&mut buf)).await {
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

/// One GET with a deadline: (status, body).
async fn get_within(addr: SocketAddr, path: &str, secs: u64) -> (u16, String) {
    tokio::time::timeout(Duration::from_secs(secs), http_get(addr, path))
        .await
        .unwrap_or_else(|_| panic!("GET {path} on {addr} took over {secs} s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_while_one_client_holds_hundreds_of_half_open_connections() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(2),
        ..Limits::PUBLIC
    };
    let (running, http, probes) = start(limits).await;
    // More half-open connections than the cap: a request line and one
    // header, never the blank line that ends the head.
    let mut held = Vec::new();
    for _ in 0..(limits.max_connections + 44) {
        let mut s = connect(http).await;
        s.write_all(b"GET /v1/keys HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
        held.push(s);
    }
    // The probes answer at once, again and again.
    for _ in 0..10 {
        assert_eq!(
            get_within(probes, "/healthz", 1).await,
            (200, "ok\n".into())
        );
        assert_eq!(
            get_within(probes, "/readyz", 1).await,
            (200, "ready\n".into())
        );
    }
    // The held connections are closed by the server (408) once their
    // header deadline passes, and the public listener serves again.
    let started = Instant::now();
    let mut first = held.remove(0);
    let answer = closed_within(&mut first, 10)
        .await
        .unwrap_or_else(|| panic!("a half-open connection was kept open"));
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    let (code, _) = get_within(http, "/v1/keys", 15).await;
    assert_eq!(code, 200);
    crate::interpose::report(&format!(
        "public listener answered again {:?} after the attack stopped growing",
        started.elapsed()
    ));
    for s in &mut held {
        assert!(
            closed_within(s, 10).await.is_some(),
            "a half-open connection was kept open"
        );
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_a_slot_frees() {
    let limits = Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(2),
        ..Limits::PUBLIC
    };
    let (running, http, _) = start(limits).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(http).await);
    }
    // Give the server a moment to take all four slots.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (code, _) = get_within(http, "/healthz", 10).await;
    let waited = started.elapsed();
    assert_eq!(code, 200);
    assert!(
        waited >= Duration::from_millis(1_500),
        "the fifth connection was served after {waited:?}, before any slot was free"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::PUBLIC
    };
    let (running, http, _) = start(limits).await;
    let mut s = connect(http).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let started = Instant::now();
    let text = closed_within(&mut s, 10)
        .await
        .unwrap_or_else(|| panic!("an idle keep-alive connection was kept open"));
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_request_bodies_and_other_methods_are_refused() {
    let (running, http, probes) = start(Limits::PUBLIC).await;
    // A head larger than the cap.
    let mut s = connect(http).await;
    let big = format!(
        "GET /v1/keys HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(Limits::PUBLIC.max_header_bytes + 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let text = closed_within(&mut s, 5).await.unwrap_or_default();
    assert!(text.starts_with("HTTP/1.1 431"), "{text:?}");

    // A GET that announces a 64 MiB body: refused unread, connection closed
    // while the client is still sending.
    let (mut rd, mut s) = connect(http).await.into_split();
    s.write_all(b"GET /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    let mut reply = vec![0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        tokio::select! {
            r = s.write_all(&chunk) => {
                if r.is_err() { break String::new(); }
                sent += chunk.len();
            }
            r = rd.read(&mut reply) => {
                let n = r.unwrap_or(0);
                break String::from_utf8_lossy(&reply[..n]).into_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server kept reading the body"
        );
    };
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 413"),
        "{text:?}"
    );
    assert!(sent < 64 * 1024 * 1024, "the whole body was accepted");

    let mut s = connect(http).await;
    s.write_all(
        b"POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap_or_else(|e| panic!("write: {e}"));
    let text = closed_within(&mut s, 5).await.unwrap_or_default();
    assert!(text.starts_with("HTTP/1.1 405"), "{text:?}");
    assert!(text.contains("x-content-type-options: nosniff"), "{text}");

    // The probe port serves health only.
    assert_eq!(get_within(probes, "/v1/keys", 5).await.0, 404);
    assert_eq!(get_within(probes, "/metrics", 5).await.0, 404);
    assert_eq!(get_within(probes, "/healthz", 5).await.0, 200);
    // The public port still does everything.
    assert_eq!(get_within(http, "/v1/keys", 5).await.0, 200);
    assert_eq!(get_within(http, "/readyz", 5).await.0, 200);
    running.shutdown().await;
}
