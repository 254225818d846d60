//! End-to-end tests of the port proxy: real servers (python3's standard
//! library) inside real instances, reached through the real binary by host
//! name (`<sid>-<port>-<instance>.localhost`) and by path (`/proxy/...`).
//! They need root (CI runs as root).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use playground_tests::TestServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A server with one session and one instance in it.
struct Setup {
    server: TestServer,
    sid: String,
    name: String,
}

impl Setup {
    async fn new(args: &[&str]) -> Setup {
        let (server, sid, name) = TestServer::with_instance(args).await;
        Setup { server, sid, name }
    }

    /// The port the playground listens on.
    fn server_port(&self) -> u16 {
        self.server
            .base
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// `<sid without dashes>-<port>-<instance>.localhost`.
    fn host(&self, port: u16) -> String {
        format!(
            "{}-{port}-{}.localhost",
            self.sid.replace('-', ""),
            self.name
        )
    }

    /// The host-name URL of `path` on `port` of the instance.
    fn url(&self, port: u16, path: &str) -> String {
        format!("http://{}:{}{path}", self.host(port), self.server_port())
    }

    /// The path-based URL of `path` (starting with `/`) on `port`.
    fn path_url(&self, port: u16, path: &str) -> String {
        self.server
            .url(&format!("/proxy/{}/{}/{port}{path}", self.sid, self.name))
    }

    /// An HTTP client that reaches `*.localhost` names on loopback, as
    /// browsers do.
    fn client(&self, ports: &[u16]) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(300));
        for &port in ports {
            builder = builder.resolve(&self.host(port), SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        builder.build().unwrap()
    }

    /// Write `script` to /srv/`file` in the instance, run it with python3 in
    /// the background and wait until something listens on `port`.
    async fn start_python(&self, file: &str, script: &str, port: u16) {
        self.start_background(
            &format!("mkdir -p /srv && cat > /srv/{file} <<'PYEOF'\n{script}\nPYEOF\npython3 /srv/{file}"),
            port,
        )
        .await;
    }

    /// Run `command` in the background in the instance and wait until
    /// something listens on `port`.
    async fn start_background(&self, command: &str, port: u16) {
        let script = format!(
            "set -e\n{{\n{command}\n}} >/tmp/server-{port}.log 2>&1 </dev/null &\n\
             for i in $(seq 200); do\n\
               if grep -qi ':{port:04X} 0*:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then exit 0; fi\n\
               sleep 0.05\n\
             done\n\
             cat /tmp/server-{port}.log; exit 1"
        );
        let out = self.server.exec(&self.sid, &self.name, &script).await;
        assert_eq!(
            out.exit_code, 0,
            "server on port {port} did not start: {out:?}"
        );
    }
}

/// RSS of a process in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The bytes `data.bin` holds (the same generator runs in python below).
fn lcg_bytes(n: usize) -> Vec<u8> {
    let mut x: u32 = 1;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 24) as u8
        })
        .collect()
}

const MAKE_FILES: &str = "mkdir -p /srv/www/sub && cd /srv/www && echo hello > hello.txt \
    && echo inner > sub/inner.txt && python3 -c '
x = 1
out = bytearray(1 << 20)
for i in range(1 << 20):
    x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    out[i] = x >> 24
open(\"data.bin\", \"wb\").write(out)
'";

/// A response's status and headers read off a raw connection.
async fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    // Strictly at the start: stray bytes before a response are a bug.
    assert!(
        line.starts_with("HTTP/1."),
        "no status line: {:?}",
        line.chars().take(80).collect::<String>()
    );
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    (status, headers)
}

/// One HTTP/1.1 response read off a raw connection: status, headers, body.
async fn read_response(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (status, headers) = read_head(reader).await;
    let mut line = String::new();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = get("content-length") {
        body.resize(len.parse().unwrap(), 0);
        reader.read_exact(&mut body).await.unwrap();
    } else if get("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            line.clear();
            reader.read_line(&mut line).await.unwrap();
            let size = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn files_come_back_byte_for_byte_over_kept_alive_connections() {
    let s = Setup::new(&[]).await;
    let made = s.server.exec(&s.sid, &s.name, MAKE_FILES).await;
    assert_eq!(made.exit_code, 0, "{made:?}");
    // Bound to the instance's loopback only: the proxy still reaches it.
    s.start_background(
        "python3 -m http.server 8000 --bind 127.0.0.1 --directory /srv/www",
        8000,
    )
    .await;
    let expected = lcg_bytes(1 << 20);
    let client = s.client(&[8000]);

    // By host name.
    let response = client.get(s.url(8000, "/data.bin")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), expected.len());
    assert!(body == expected, "data.bin differs through the proxy");
    let hello = client.get(s.url(8000, "/hello.txt")).send().await.unwrap();
    assert_eq!(hello.text().await.unwrap(), "hello\n");

    // By path, with the session id in either form.
    for sid in [s.sid.clone(), s.sid.replace('-', "")] {
        let url = s
            .server
            .url(&format!("/proxy/{sid}/{}/8000/data.bin", s.name));
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.bytes().await.unwrap() == expected);
    }
    // A redirect of the program (`/sub` -> `/sub/`) stays under the prefix,
    // and the bare prefix gains its slash.
    let response = client.get(s.path_url(8000, "/sub")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.url().path().ends_with("/8000/sub/"),
        "{}",
        response.url()
    );
    assert!(response.text().await.unwrap().contains("inner.txt"));
    let response = client.get(s.path_url(8000, "")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.url().path().ends_with("/8000/"));
    assert!(response.text().await.unwrap().contains("data.bin"));

    // Several requests on one browser connection, although python's server
    // closes its connection after every answer (HTTP/1.0).
    let stream = TcpStream::connect(("127.0.0.1", s.server_port()))
        .await
        .unwrap();
    let mut reader = BufReader::new(stream);
    for (path, want) in [
        ("/hello.txt", &b"hello\n"[..]),
        ("/sub/inner.txt", b"inner\n"),
        ("/data.bin", &expected[..]),
        ("/hello.txt", b"hello\n"),
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}:{}\r\n\r\n",
            s.host(8000),
            s.server_port()
        );
        reader
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let (status, headers, body) = read_response(&mut reader).await;
        assert_eq!(status, 200, "{path}");
        assert!(body == want, "{path} differs on a kept-alive connection");
        assert!(
            !headers
                .iter()
                .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close")),
            "the proxy closes the browser's connection: {headers:?}"
        );
    }
    s.server.stop().await;
}

const DOWNLOAD_SERVER: &str = r#"
import http.server
CHUNK = bytes(range(256)) * 256
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        close = self.path.startswith('/close')
        count = 160 if close else 1600
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        if not close:
            self.send_header('Content-Length', str(len(CHUNK) * count))
        self.end_headers()
        for _ in range(count):
            self.wfile.write(CHUNK)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('0.0.0.0', 8001), Handler).serve_forever()
"#;

/// Read a response body chunk by chunk (never whole), checking that byte
/// `i` is `i % 256`; returns its length and the largest server RSS seen.
async fn read_pattern(mut response: reqwest::Response, pid: i32) -> (u64, u64) {
    let pattern: Vec<u8> = (0..(1usize << 17) + 256).map(|i| i as u8).collect();
    let mut total: u64 = 0;
    let mut next_sample: u64 = 0;
    let mut max_rss = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        for piece in chunk.chunks(1 << 17) {
            let start = (total % 256) as usize;
            assert!(
                piece == &pattern[start..start + piece.len()],
                "wrong bytes at offset {total}"
            );
            total += piece.len() as u64;
        }
        if total >= next_sample {
            max_rss = max_rss.max(rss_kib(pid));
            next_sample += 4 << 20;
        }
    }
    (total, max_rss)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_download_streams_through_without_growing_the_server() {
    let s = Setup::new(&[]).await;
    s.start_python("download.py", DOWNLOAD_SERVER, 8001).await;
    let client = s.client(&[8001]);
    let pid = s.server.pid();
    let before = rss_kib(pid);

    let started = Instant::now();
    let response = client.get(s.url(8001, "/big")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(100 << 20));
    let (total, max_rss) = read_pattern(response, pid).await;
    assert_eq!(total, 100 << 20);
    assert!(
        max_rss < before + 40 * 1024,
        "server memory grew from {before} KiB to {max_rss} KiB during a 100 MiB download"
    );
    eprintln!(
        "100 MiB through the proxy in {:?}; server RSS {before} KiB -> at most {max_rss} KiB",
        started.elapsed()
    );

    // A body whose end is the program closing its connection, by path.
    let response = client.get(s.path_url(8001, "/close")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (total, _) = read_pattern(response, pid).await;
    assert_eq!(total, 10 << 20);
    s.server.stop().await;
}

const SPLICE_SERVER: &str = r#"
import http.server, time
CHUNK = bytes(range(256)) * 256
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def head(self):
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(64 * len(CHUNK)))
        self.end_headers()
    def do_HEAD(self):
        self.head()
    def do_GET(self):
        self.head()
        if self.path == '/short':
            for _ in range(16):
                self.wfile.write(CHUNK)
            self.wfile.flush()
            self.close_connection = True
            return
        for _ in range(64):
            self.wfile.write(CHUNK)
            if self.path == '/slow':
                self.wfile.flush()
                time.sleep(0.005)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('0.0.0.0', 8005), Handler).serve_forever()
"#;

/// Large bodies of known length are spliced between the sockets (see
/// server/src/proxy/splice.rs): the browser's connection must stay framed
/// as if hyper had sent them, for HEAD, for pipelined requests, for bodies
/// that trickle in, and be closed when the program cuts a body short.
#[tokio::test(flavor = "multi_thread")]
async fn spliced_bodies_keep_the_browsers_connection_in_step() {
    let s = Setup::new(&[]).await;
    s.start_python("splice.py", SPLICE_SERVER, 8005).await;
    let length = 4usize << 20;
    let pattern: Vec<u8> = (0..length).map(|i| i as u8).collect();
    let request = |method: &str, path: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\n\r\n",
            s.host(8005),
            s.server_port()
        )
    };
    let connect = || async {
        let stream = TcpStream::connect(("127.0.0.1", s.server_port()))
            .await
            .unwrap();
        BufReader::new(stream)
    };

    // HEAD, GET, a trickling GET, then two GETs sent at once: all on one
    // kept-alive connection.
    let mut reader = connect().await;
    let head = request("HEAD", "/big");
    reader.get_mut().write_all(head.as_bytes()).await.unwrap();
    let (status, headers) = read_head(&mut reader).await;
    assert_eq!(status, 200);
    assert!(
        headers.contains(&("content-length".into(), length.to_string())),
        "{headers:?}"
    );
    for path in ["/big", "/slow"] {
        let get = request("GET", path);
        reader.get_mut().write_all(get.as_bytes()).await.unwrap();
        let (status, _, body) = read_response(&mut reader).await;
        assert_eq!(status, 200, "{path}");
        assert!(body == pattern, "{path} differs");
    }
    let two = format!("{}{}", request("GET", "/big"), request("GET", "/big"));
    reader.get_mut().write_all(two.as_bytes()).await.unwrap();
    for n in 1..=2 {
        let (status, _, body) = read_response(&mut reader).await;
        assert_eq!(status, 200, "pipelined response {n}");
        assert!(body == pattern, "pipelined response {n} differs");
    }
    // Nothing after the last response.
    reader.get_mut().shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut rest))
        .await
        .expect("the proxy did not close after the browser")
        .unwrap();
    assert!(
        rest.is_empty(),
        "{} stray bytes after the last response",
        rest.len()
    );

    // The program closes after a quarter of the body: the browser gets the
    // quarter and then the end of its connection, not a hang.
    let mut reader = connect().await;
    let short = request("GET", "/short");
    reader.get_mut().write_all(short.as_bytes()).await.unwrap();
    let (status, _) = read_head(&mut reader).await;
    assert_eq!(status, 200);
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut got))
        .await
        .expect("the proxy kept the connection of a cut-short body open")
        .unwrap();
    assert_eq!(got.len(), length / 4);
    assert!(got == pattern[..length / 4]);
    s.server.stop().await;
}

const UPLOAD_SERVER: &str = r#"
import http.server, zlib
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_POST(self):
        left = int(self.headers.get('Content-Length', '0'))
        total, crc = 0, 0
        while left > 0:
            data = self.rfile.read(min(left, 1 << 16))
            if not data:
                break
            total += len(data)
            left -= len(data)
            crc = zlib.crc32(data, crc)
        body = ('%d %08x' % (total, crc)).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('0.0.0.0', 8002), Handler).serve_forever()
"#;

fn crc32(data: &[u8]) -> u32 {
    let table: Vec<u32> = (0..256u32)
        .map(|mut c| {
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            c
        })
        .collect();
    !data.iter().fold(!0u32, |crc, &b| {
        table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn large_uploads_reach_the_program_whole() {
    let s = Setup::new(&[]).await;
    s.start_python("upload.py", UPLOAD_SERVER, 8002).await;
    let client = s.client(&[8002]);
    let pid = s.server.pid();

    for (size, url) in [
        (20usize << 20, s.url(8002, "/upload")),
        (64 << 20, s.path_url(8002, "/upload")),
    ] {
        let body: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
        let expected = format!("{size} {:08x}", crc32(&body));
        let before = rss_kib(pid);
        let max_rss = Arc::new(AtomicU64::new(before));
        let sampler = {
            let max_rss = max_rss.clone();
            tokio::spawn(async move {
                loop {
                    max_rss.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let response = client.post(url).body(body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), expected);
        sampler.abort();
        let max_rss = max_rss.load(Ordering::Relaxed);
        assert!(
            max_rss < before + 40 * 1024,
            "server memory grew from {before} KiB to {max_rss} KiB during a {size}-byte upload"
        );
    }
    s.server.stop().await;
}

const WEBSOCKET_SERVER: &str = r#"
import base64, hashlib, socket, struct, threading
GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

def send_frame(conn, opcode, payload):
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack('>H', n)
    else:
        head += bytes([127]) + struct.pack('>Q', n)
    conn.sendall(head + payload)

def serve(conn):
    f = conn.makefile('rb')
    try:
        f.readline()
        key = None
        while True:
            line = f.readline()
            if line in (b'\r\n', b'\n', b''):
                break
            name, _, value = line.decode('latin-1').partition(':')
            if name.strip().lower() == 'sec-websocket-key':
                key = value.strip().encode()
        if key is None:
            conn.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
            return
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'
                     b'Connection: Upgrade\r\nSec-WebSocket-Accept: ' + accept + b'\r\n\r\n')
        while True:
            head = f.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack('>H', f.read(2))[0]
            elif n == 127:
                n = struct.unpack('>Q', f.read(8))[0]
            mask = f.read(4) if head[1] & 0x80 else bytes(4)
            data = f.read(n)
            key_stream = (mask * (n // 4 + 1))[:n]
            payload = (int.from_bytes(data, 'big') ^ int.from_bytes(key_stream, 'big')).to_bytes(n, 'big')
            if opcode == 8:
                send_frame(conn, 8, payload[:2])
                return
            elif opcode == 9:
                send_frame(conn, 10, payload)
            elif opcode == 1:
                send_frame(conn, 1, b'echo: ' + payload)
            elif opcode == 2:
                send_frame(conn, 2, payload)
    finally:
        conn.close()

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('0.0.0.0', 8004))
server.listen(16)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn websockets_echo_through_the_proxy() {
    let s = Setup::new(&[]).await;
    s.start_python("ws.py", WEBSOCKET_SERVER, 8004).await;
    let by_host = format!("ws://{}:{}/chat", s.host(8004), s.server_port());
    let by_path = s.path_url(8004, "/chat").replacen("http://", "ws://", 1);
    for url in [by_host, by_path] {
        let request = url.as_str().into_client_request().unwrap();
        let stream = TcpStream::connect(("127.0.0.1", s.server_port()))
            .await
            .unwrap();
        let (mut ws, response) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::client_async(request, stream),
        )
        .await
        .expect("websocket handshake timed out")
        .unwrap_or_else(|e| panic!("websocket handshake through {url}: {e}"));
        assert_eq!(response.status(), 101);

        let big = "x".repeat(200_000);
        for text in ["hello proxy", "second message", big.as_str()] {
            ws.send(Message::Text(text.into())).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("no echo within 10 s")
                .unwrap()
                .unwrap();
            assert_eq!(reply, Message::Text(format!("echo: {text}").into()));
        }
        let bytes: Vec<u8> = (0..=255).collect();
        ws.send(Message::Binary(bytes.clone().into()))
            .await
            .unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(reply, Message::Binary(bytes.into()));

        ws.close(None).await.unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        assert!(
            ended.is_ok(),
            "the connection did not close after the close handshake"
        );
    }
    s.server.stop().await;
}

const HEADERS_SERVER: &str = r#"
import http.server, json
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        body = json.dumps({'path': self.path,
                           'headers': [[k.lower(), v] for k, v in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Keep-Alive', 'timeout=5')
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', 8003), Handler).serve_forever()
"#;

/// What the echo server saw: its path and the headers it got.
async fn seen(response: reqwest::Response) -> (String, Vec<(String, String)>) {
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("keep-alive").is_none(),
        "a hop-by-hop header of the program reached the browser"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    let headers = body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_string(),
                pair[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (body["path"].as_str().unwrap().to_string(), headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut found = headers.iter().filter(|(k, _)| k == name);
    let first = found.next().map(|(_, v)| v.as_str());
    assert!(found.next().is_none(), "{name} appears twice: {headers:?}");
    first
}

#[tokio::test(flavor = "multi_thread")]
async fn the_program_sees_the_browsers_host_and_forwarded_headers() {
    // Behind a TLS terminator: links and X-Forwarded-Proto say https.
    let s = Setup::new(&["--public-scheme=https", "--public-port=443"]).await;
    s.start_python("headers.py", HEADERS_SERVER, 8003).await;
    let client = s.client(&[8003]);

    let host = format!("{}:{}", s.host(8003), s.server_port());
    let response = client
        .get(s.url(8003, "/echo?a=1&b=%20"))
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "hop-by-hop")
        .header("keep-alive", "timeout=5")
        .header("x-forwarded-host", "spoofed.example")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-custom", "end-to-end")
        .send()
        .await
        .unwrap();
    let (path, headers) = seen(response).await;
    assert_eq!(path, "/echo?a=1&b=%20");
    assert_eq!(header(&headers, "host"), Some(host.as_str()));
    assert_eq!(header(&headers, "x-forwarded-host"), Some(host.as_str()));
    assert_eq!(header(&headers, "x-forwarded-proto"), Some("https"));
    assert_eq!(
        header(&headers, "x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(header(&headers, "x-custom"), Some("end-to-end"));
    assert_eq!(header(&headers, "x-secret"), None, "{headers:?}");
    assert_eq!(header(&headers, "keep-alive"), None, "{headers:?}");
    assert_eq!(header(&headers, "x-forwarded-prefix"), None);

    // By path: the playground's own host, the prefix taken off and reported.
    let response = client
        .get(s.path_url(8003, "/echo/deeper?q=2"))
        .send()
        .await
        .unwrap();
    let (path, headers) = seen(response).await;
    assert_eq!(path, "/echo/deeper?q=2");
    let own_host = s.server.base.trim_start_matches("http://").to_string();
    assert_eq!(header(&headers, "host"), Some(own_host.as_str()));
    assert_eq!(
        header(&headers, "x-forwarded-host"),
        Some(own_host.as_str())
    );
    assert_eq!(header(&headers, "x-forwarded-for"), Some("127.0.0.1"));
    let prefix = format!("/proxy/{}/{}/8003", s.sid, s.name);
    assert_eq!(
        header(&headers, "x-forwarded-prefix"),
        Some(prefix.as_str())
    );

    // Port links use the public scheme and leave out its default port.
    let session: serde_json::Value = s
        .server
        .http
        .get(s.server.url(&format!("/api/sessions/{}", s.sid)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ports = &session["instances"][0]["ports"];
    let link = ports
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"] == 8003)
        .and_then(|p| p["url"].as_str());
    assert_eq!(
        link,
        Some(format!("https://{}/", s.host(8003)).as_str()),
        "ports: {ports}"
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_clear_pages_with_fitting_status_codes() {
    let s = Setup::new(&[]).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let port = s.server_port();
    let root = s.server.url("/");
    // Send to the playground with a given Host.
    let get = |host: String, path: &str| {
        client
            .get(format!("{}{path}", s.server.base))
            .header("host", host)
            .send()
    };
    let page = |response: reqwest::Response, status: u16| async move {
        assert_eq!(response.status(), status);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        response.text().await.unwrap()
    };

    // Nothing listens on port 9: an explanation, at once.
    let started = Instant::now();
    let response = get(format!("{}:{port}", s.host(9)), "/").await.unwrap();
    let text = page(response, 502).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        text.contains(
            "Nothing is listening on port 9 in node1 yet; start a server there and reload"
        ),
        "{text}"
    );
    let response = client.get(s.path_url(9, "/x")).send().await.unwrap();
    assert!(page(response, 502).await.contains("port 9 in node1"));
    // A port host name goes to the proxy whatever the path, API paths too.
    let response = get(format!("{}:{port}", s.host(9)), "/healthz")
        .await
        .unwrap();
    page(response, 502).await;

    // Unknown session, unknown instance.
    let nobody = "0123456789abcdef0123456789abcdef";
    let response = get(format!("{nobody}-8000-node1.localhost:{port}"), "/")
        .await
        .unwrap();
    assert!(page(response, 404)
        .await
        .contains("does not exist or has ended"));
    let response = client
        .get(s.server.url(&format!("/proxy/{nobody}/node1/8000/")))
        .send()
        .await
        .unwrap();
    page(response, 404).await;
    let other = s.host(8000).replace("-node1.", "-node7.");
    let response = get(format!("{other}:{port}"), "/").await.unwrap();
    assert!(page(response, 404)
        .await
        .contains("no instance named node7"));

    // Malformed port addresses.
    let hex = s.sid.replace('-', "");
    for host in [
        "hello.localhost".to_string(),
        format!("www.localhost:{port}"),
        format!("{hex}-0-node1.localhost:{port}"),
        format!("{hex}-70000-node1.localhost:{port}"),
        format!("{hex}-8000-.localhost:{port}"),
        format!("{}-8000-node1.localhost:{port}", &hex[..31]),
        format!(
            "a.{}.localhost:{port}",
            s.host(8000).trim_end_matches(".localhost")
        ),
    ] {
        let response = get(host.clone(), "/").await.unwrap();
        let text = page(response, 400).await;
        assert!(text.contains("does not name a port"), "{host}: {text}");
    }
    for path in ["/proxy", "/proxy/", "/proxy/nope/node1/8000/", "/proxy/x/y"] {
        let response = client.get(s.server.url(path)).send().await.unwrap();
        page(response, 400).await;
    }
    // The bare path prefix is sent to its slashed form.
    let bare = format!("/proxy/{}/node1/8000", s.sid);
    let response = client
        .get(s.server.url(&format!("{bare}?a=b")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(
        response.headers()["location"],
        format!("{bare}/?a=b").as_str()
    );

    // Everything else is still the playground's.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let response = get(host, "/healthz").await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let response = client.get(&root).send().await.unwrap();
    assert_ne!(response.status(), 400);

    // An ended session's ports are gone.
    let response = s
        .server
        .http
        .delete(s.server.url(&format!("/api/sessions/{}", s.sid)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = get(format!("{}:{port}", s.host(9)), "/").await.unwrap();
    page(response, 404).await;
    s.server.stop().await;
}

/// A keep-alive HTTP/1.1 server (raw sockets, a thread per connection)
/// that says who it is (`tag`), which of its connections carried the
/// request (numbered from 1 as accepted) and the client's port. `/close`
/// answers with `Connection: close`; after `/drop-next`, the next request
/// on that connection is read and the connection closed unanswered, as a
/// program's idle timeout can do just as a request arrives.
const KEEP_ALIVE_SERVER: &str = r#"
import json, socket, sys, threading
TAG, PORT = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
state = {'connections': 0, 'dropped': 0}

def serve(conn, peer, number):
    f = conn.makefile('rb')
    drop_next = False
    try:
        while True:
            line = f.readline()
            if not line:
                return
            method, path, _ = line.decode('latin-1').split(' ', 2)
            length = 0
            while True:
                h = f.readline()
                if h in (b'\r\n', b'\n', b''):
                    break
                k, _, v = h.decode('latin-1').partition(':')
                if k.strip().lower() == 'content-length':
                    length = int(v.strip())
            if length:
                f.read(length)
            if drop_next:
                with lock:
                    state['dropped'] += 1
                return
            close = path == '/close'
            drop_next = path == '/drop-next'
            with lock:
                body = json.dumps({'tag': TAG, 'method': method, 'connection': number,
                                   'peer': peer[1], 'connections': state['connections'],
                                   'dropped': state['dropped']}).encode()
            head = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n' % (
                len(body), 'Connection: close\r\n' if close else '')
            conn.sendall(head.encode() + body)
            if close:
                return
    finally:
        conn.close()

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('0.0.0.0', PORT))
server.listen(64)
while True:
    conn, peer = server.accept()
    with lock:
        state['connections'] += 1
        number = state['connections']
    threading.Thread(target=serve, args=(conn, peer, number), daemon=True).start()
"#;

const KEEP_ALIVE_PORT: u16 = 8010;

/// Start [`KEEP_ALIVE_SERVER`] in `name` of session `sid`, saying `tag`.
async fn start_keep_alive(server: &TestServer, sid: &str, name: &str, tag: &str) {
    let port = KEEP_ALIVE_PORT;
    let script = format!(
        "set -e\nmkdir -p /srv && cat > /srv/keep.py <<'PYEOF'\n{KEEP_ALIVE_SERVER}\nPYEOF\n\
         python3 /srv/keep.py {tag} {port} >/tmp/keep.log 2>&1 </dev/null &\n\
         for i in $(seq 200); do\n\
           if grep -qi ':{port:04X} 0*:0000 0A' /proc/net/tcp 2>/dev/null; then exit 0; fi\n\
           sleep 0.05\n\
         done\n\
         cat /tmp/keep.log; exit 1"
    );
    let out = server.exec(sid, name, &script).await;
    assert_eq!(out.exit_code, 0, "{tag}: the server did not start: {out:?}");
}

/// What [`KEEP_ALIVE_SERVER`] answered.
#[derive(Debug, serde::Deserialize)]
struct Answer {
    tag: String,
    method: String,
    connection: u64,
    peer: u16,
    connections: u64,
    dropped: u64,
}

/// One port of one instance of one session, through the proxy by host name.
struct Port<'a> {
    server: &'a TestServer,
    sid: String,
    name: String,
}

impl Port<'_> {
    fn host(&self) -> String {
        format!(
            "{}-{KEEP_ALIVE_PORT}-{}.localhost",
            self.sid.replace('-', ""),
            self.name
        )
    }

    fn url(&self, path: &str) -> String {
        let port = self.server.base.rsplit(':').next().unwrap();
        format!("http://{}:{port}{path}", self.host())
    }

    async fn get(&self, client: &reqwest::Client, path: &str) -> Answer {
        let response = client.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {path} on {}: {text}", self.host());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

/// A client that reaches every port's host name on loopback and keeps its
/// own connection to the playground alive, as browsers do.
fn client_for(ports: &[&Port<'_>]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30));
    for port in ports {
        builder = builder.resolve(&port.host(), SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    builder.build().unwrap()
}

/// The devices on a session's bridge: one veth per instance, which goes
/// only when the instance's network namespace has gone.
fn bridge_ports(sid: &str) -> usize {
    let dir = format!("/sys/class/net/{}/brif", playground_tests::bridge_name(sid));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn kept_connections_are_reused_and_serve_only_their_own_instance() {
    let server = TestServer::start(&[]).await;
    let a = server.create_session().await.id;
    let b = server.create_session().await.id;
    // The same instance name and port in two sessions, and a second
    // instance in the first.
    assert_eq!(server.add_instance(&a).await, "node1");
    assert_eq!(server.add_instance(&a).await, "node2");
    assert_eq!(server.add_instance(&b).await, "node1");
    let port = |sid: &str, name: &str| Port {
        server: &server,
        sid: sid.to_string(),
        name: name.to_string(),
    };
    let (a1, a2, b1) = (port(&a, "node1"), port(&a, "node2"), port(&b, "node1"));
    start_keep_alive(&server, &a, "node1", "a-node1").await;
    start_keep_alive(&server, &a, "node2", "a-node2").await;
    start_keep_alive(&server, &b, "node1", "b-node1").await;
    let client = client_for(&[&a1, &a2, &b1]);

    // Many small requests one after the other: a handful of connections
    // to the program, not one per request.
    let mut seen = std::collections::BTreeSet::new();
    let mut last = None;
    for _ in 0..60 {
        let answer = a1.get(&client, "/").await;
        assert_eq!(answer.tag, "a-node1");
        seen.insert((answer.connection, answer.peer));
        last = Some(answer);
    }
    let last = last.unwrap();
    assert!(
        last.connections <= 3 && seen.len() <= 3,
        "60 requests took {} connections to the program ({seen:?})",
        last.connections
    );

    // Interleaved: each instance gets its own requests only, on its own
    // kept connections.
    for _ in 0..20 {
        for (port, tag) in [(&a1, "a-node1"), (&b1, "b-node1"), (&a2, "a-node2")] {
            assert_eq!(port.get(&client, "/").await.tag, tag, "{}", port.host());
        }
    }
    let b_before = b1.get(&client, "/").await.connections;
    let a2_before = a2.get(&client, "/").await.connections;
    let idle_since = Instant::now();
    assert!(b_before <= 3 && a2_before <= 3, "{b_before} {a2_before}");

    // Deleting an instance lets go of its kept connections at once: its
    // network namespace (and so its veth on the bridge) goes within
    // milliseconds, long before the pool's idle timeout.
    assert_eq!(bridge_ports(&a), 2);
    server.delete_instance(&a, "node1").await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while bridge_ports(&a) != 1 {
        assert!(
            Instant::now() < deadline,
            "the deleted instance's network namespace is still there after 3 s \
             (something holds a socket in it)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = client.get(a1.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("no instance named node1"));

    // A new instance of the same name (and address) in the same session:
    // its own program answers, on connections of its own.
    assert_eq!(server.add_instance(&a).await, "node1");
    start_keep_alive(&server, &a, "node1", "a-node1-again").await;
    for i in 0..20 {
        let answer = a1.get(&client, "/").await;
        assert_eq!(answer.tag, "a-node1-again", "request {i}");
        assert!(answer.connections <= 3, "{answer:?}");
    }
    // The others kept theirs through all this (unless it took longer than
    // the pool keeps idle connections, 30 s).
    let idle = idle_since.elapsed();
    for (port, tag, before) in [(&b1, "b-node1", b_before), (&a2, "a-node2", a2_before)] {
        let answer = port.get(&client, "/").await;
        assert_eq!(answer.tag, tag);
        if idle < Duration::from_secs(25) {
            assert_eq!(answer.connections, before, "{tag} got new connections");
        }
    }

    // A program's `Connection: close` is honoured: the next request goes
    // on a new connection, and works.
    let closing = b1.get(&client, "/close").await;
    let after = b1.get(&client, "/").await;
    assert_eq!(after.connections, closing.connections + 1, "{after:?}");
    assert_eq!(after.connection, after.connections);

    server.delete_session(&b).await;
    let left =
        playground_tests::wait_until_clean(&b, server.data_dir.path(), Duration::from_secs(30))
            .await;
    assert!(left.is_empty(), "left behind: {left:?}");
    server.finish(&a).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_connection_closed_unanswered_is_retried_only_when_safe() {
    let server = TestServer::start(&[]).await;
    let sid = server.create_session().await.id;
    let name = server.add_instance(&sid).await;
    start_keep_alive(&server, &sid, &name, "node").await;
    let port = Port {
        server: &server,
        sid: sid.clone(),
        name,
    };
    let client = client_for(&[&port]);
    // Let the connection get back to the pool before the next request.
    let settle = || tokio::time::sleep(Duration::from_millis(200));

    // The kept connection is closed unanswered: a GET goes again, on a new
    // connection, and the browser never knows.
    let first = port.get(&client, "/drop-next").await;
    settle().await;
    let retried = port.get(&client, "/").await;
    assert_eq!(
        retried.dropped, 1,
        "the kept connection was not used: {retried:?}"
    );
    assert_eq!(retried.connections, first.connections + 1);
    assert_eq!(retried.connection, retried.connections);

    // A POST may not go twice: a clear error instead.
    port.get(&client, "/drop-next").await;
    settle().await;
    let response = client
        .post(port.url("/form"))
        .body("a=1")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 502, "{text}");
    assert!(
        text.contains("closed the connection without answering this POST request")
            && text.contains("It was not sent again"),
        "{text}"
    );
    let after = port.get(&client, "/").await;
    assert_eq!(after.dropped, 2, "{after:?}");
    // And a POST on a connection that stays open works as ever.
    let response = client
        .post(port.url("/form"))
        .body("a=2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Answer = response.json().await.unwrap();
    assert_eq!(
        (answer.method.as_str(), answer.tag.as_str()),
        ("POST", "node")
    );
    server.finish(&sid).await;
}
