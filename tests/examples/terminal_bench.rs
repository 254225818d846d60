//! Terminal throughput and keystroke echo: the playground's terminal
//! WebSocket against ttyd, side by side in one run. `scripts/bench-terminal`
//! starts both servers and runs this client:
//!
//!     terminal_bench --ours WS_URL --ttyd WS_URL [--rounds 3] [--keys 300]
//!         [--bytes 100000000] [--seq-lines 10000000]
//!         [--ours-pid PID] [--ttyd-pid PID] [--ttyd-label NAME]
//!
//! One WebSocket per side for the whole run, one shell behind each. Every
//! round, alternating which side goes first, each side gets:
//! - a flood: the shell prints a start marker, `--bytes` bytes of `a` and an
//!   end marker; the client reads as fast as it can, compares every byte with
//!   what it should be and counts the bytes between the markers;
//! - with `--seq-lines N` (0: off), the same with `seq N` (lines of digits);
//! - echo: `--keys` single keys typed one at a time into `cat`, each timed
//!   from sending it to receiving its echo (the PTY's line discipline echoes).
//!
//! Protocols. Ours: binary frames are raw bytes both ways, text frames are
//! JSON (`{"type":"attached","offset":N}` first). ttyd 1.7 (subprotocol
//! `tty`): the client first sends `{"AuthToken":"","columns":N,"rows":N}`;
//! then input is `'0'` + bytes; every server message starts with a command
//! byte: `'0'` output, `'1'` window title, `'2'` preferences.
//!
//! Exits 1 if any flood arrived with a wrong byte count or wrong bytes, or a
//! side failed.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use playground_protocol::TerminalServerMsg;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const COLS: u16 = 120;
const ROWS: u16 = 40;
/// Longest wait for the next output while something is expected.
const IDLE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Proto {
    Playground,
    Ttyd,
}

/// One terminal: a WebSocket and the shell behind it.
struct Term {
    proto: Proto,
    ws: Ws,
    /// Output already received but not yet looked at (what followed a marker).
    unread: Vec<u8>,
    /// Counter for unique markers.
    marks: u32,
}

impl Term {
    /// Connect; `marks` continues the marker count of earlier connections.
    async fn connect(proto: Proto, url: &str, marks: u32) -> Result<Term, String> {
        let mut request = url
            .into_client_request()
            .map_err(|e| format!("{url}: {e}"))?;
        if proto == Proto::Ttyd {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("tty"));
        }
        // TCP_NODELAY on, as browsers do.
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        match proto {
            Proto::Playground => {
                // The first frame must say where the stream starts.
                let first = tokio::time::timeout(IDLE, ws.next())
                    .await
                    .map_err(|_| "no attached message".to_string())?;
                match first {
                    Some(Ok(Message::Text(t))) => {
                        match serde_json::from_str::<TerminalServerMsg>(&t) {
                            Ok(TerminalServerMsg::Attached { .. }) => {}
                            _ => return Err(format!("first frame was not attached: {t}")),
                        }
                    }
                    other => return Err(format!("first frame was not attached: {other:?}")),
                }
            }
            Proto::Ttyd => {
                let hello = serde_json::json!({"AuthToken": "", "columns": COLS, "rows": ROWS});
                ws.send(Message::Text(hello.to_string().into()))
                    .await
                    .map_err(|e| format!("ttyd hello: {e}"))?;
            }
        }
        Ok(Term {
            proto,
            ws,
            unread: Vec::new(),
            marks,
        })
    }

    /// Type `input`.
    async fn send(&mut self, input: &[u8]) -> Result<(), String> {
        let message = match self.proto {
            Proto::Playground => Message::Binary(Bytes::copy_from_slice(input)),
            Proto::Ttyd => {
                let mut v = Vec::with_capacity(input.len() + 1);
                v.push(b'0');
                v.extend_from_slice(input);
                Message::Binary(v.into())
            }
        };
        self.ws
            .send(message)
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// The next piece of terminal output (control messages are skipped).
    async fn recv(&mut self, deadline: Instant) -> Result<Bytes, String> {
        if !self.unread.is_empty() {
            return Ok(Bytes::from(std::mem::take(&mut self.unread)));
        }
        loop {
            let next = tokio::time::timeout_at(deadline.into(), self.ws.next())
                .await
                .map_err(|_| "timed out waiting for output".to_string())?;
            let message = match next {
                None => return Err("the WebSocket closed".into()),
                Some(Err(e)) => return Err(format!("receive: {e}")),
                Some(Ok(m)) => m,
            };
            match (self.proto, message) {
                (Proto::Playground, Message::Binary(b)) => return Ok(b),
                (Proto::Playground, Message::Text(t)) => {
                    match serde_json::from_str::<TerminalServerMsg>(&t) {
                        Ok(TerminalServerMsg::Exited { code }) => {
                            return Err(format!("the shell exited with {code}"))
                        }
                        _ => eprintln!("    playground says: {t}"),
                    }
                }
                // '1' (title) and '2' (preferences): nothing to do.
                (Proto::Ttyd, Message::Binary(b)) if b.first() == Some(&b'0') => {
                    return Ok(b.slice(1..));
                }
                (Proto::Ttyd, Message::Text(t)) if t.as_bytes().first() == Some(&b'0') => {
                    return Ok(Bytes::copy_from_slice(&t.as_bytes()[1..]));
                }
                (_, Message::Close(frame)) => {
                    return Err(format!("closed by the server: {frame:?}"))
                }
                _ => {}
            }
        }
    }

    /// Read until one of `markers` has arrived; returns which one and when
    /// the frame that completed it arrived. What follows it stays unread.
    async fn wait_for(&mut self, markers: &[&[u8]]) -> Result<(usize, Instant), String> {
        let longest = markers.iter().map(|m| m.len()).max().unwrap_or(1);
        let mut window: Vec<u8> = Vec::new();
        loop {
            let chunk = self.recv(Instant::now() + IDLE).await.map_err(|e| {
                let want: Vec<_> = markers.iter().map(|m| String::from_utf8_lossy(m)).collect();
                format!("waiting for {want:?}: {e}")
            })?;
            let arrived = Instant::now();
            window.extend_from_slice(&chunk);
            let found = markers
                .iter()
                .enumerate()
                .filter_map(|(k, m)| find(&window, m).map(|at| (at, k, m.len())))
                .min();
            if let Some((at, k, len)) = found {
                self.unread = window[at + len..].to_vec();
                return Ok((k, arrived));
            }
            let cut = window.len().saturating_sub(longest - 1);
            window.drain(..cut);
        }
    }

    fn next_mark(&mut self, prefix: &str) -> (String, String) {
        self.marks += 1;
        // Typed with an empty quote inside, so the echo of the command line
        // never matches; printed whole.
        let (a, b) = prefix.split_at(2);
        (
            format!("{a}''{b}{:04}", self.marks),
            format!("{prefix}{:04}", self.marks),
        )
    }

    /// Wait until the shell has run everything typed so far.
    async fn sync(&mut self) -> Result<(), String> {
        let (typed, printed) = self.next_mark("SYNC");
        self.send(format!("echo {typed}\r").as_bytes()).await?;
        self.wait_for(&[printed.as_bytes()]).await?;
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a flood should deliver, produced piece by piece.
enum Expected {
    /// `left` more copies of one byte.
    Repeat { byte: u8, left: u64 },
    /// The lines of `seq last` from `next` on, ending in `newline`.
    Seq {
        next: u64,
        last: u64,
        newline: &'static [u8],
        carry: Vec<u8>,
    },
}

impl Expected {
    /// The next up to `max` expected bytes, in `buf`.
    fn fill(&mut self, buf: &mut Vec<u8>, max: usize) {
        buf.clear();
        match self {
            Expected::Repeat { byte, left } => {
                let n = (*left).min(max as u64);
                buf.resize(n as usize, *byte);
                *left -= n;
            }
            Expected::Seq {
                next,
                last,
                newline,
                carry,
            } => {
                buf.append(carry);
                while buf.len() < max && *next <= *last {
                    buf.extend_from_slice(next.to_string().as_bytes());
                    buf.extend_from_slice(newline);
                    *next += 1;
                }
                if buf.len() > max {
                    carry.extend_from_slice(&buf[max..]);
                    buf.truncate(max);
                }
            }
        }
    }

    fn done(&self) -> bool {
        match self {
            Expected::Repeat { left, .. } => *left == 0,
            Expected::Seq {
                next, last, carry, ..
            } => *next > *last && carry.is_empty(),
        }
    }
}

/// Bytes `seq n` prints, with each newline `newline_len` bytes.
fn seq_len(n: u64, newline_len: u64) -> u64 {
    let mut total = 0;
    let mut lo = 1u64;
    let mut digits = 1;
    while lo <= n {
        let hi = (lo * 10 - 1).min(n);
        total += (hi - lo + 1) * (digits + newline_len);
        lo *= 10;
        digits += 1;
    }
    total
}

#[derive(Clone, Copy)]
enum FloodKind {
    Zeros(u64),
    Seq(u64),
}

struct Flood {
    /// Bytes between the markers.
    received: u64,
    expected: u64,
    /// Where the stream first differed from what was expected.
    first_difference: Option<u64>,
    secs: f64,
    /// CPU seconds the terminal server (playground or ttyd) used meanwhile.
    server_cpu: Option<f64>,
}

impl Flood {
    fn ok(&self) -> bool {
        self.first_difference.is_none() && self.received == self.expected
    }
    fn mbs(&self) -> f64 {
        self.received as f64 / self.secs / 1e6
    }
}

/// User + system CPU seconds of a process (all its threads).
fn cpu_secs(pid: Option<i32>) -> Option<f64> {
    let pid = pid?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((utime + stime) as f64 / tick as f64)
}

async fn flood(term: &mut Term, kind: FloodKind, pid: Option<i32>) -> Result<Flood, String> {
    term.sync().await?;
    let (start_typed, start) = term.next_mark("START");
    let (end_typed, end) = term.next_mark("END");
    let body = match kind {
        FloodKind::Zeros(n) => format!("head -c {n} /dev/zero | tr '\\0' a"),
        FloodKind::Seq(n) => format!("seq {n}"),
    };
    let command = format!("printf '%s\\n' {start_typed}; {body}; printf '%s\\n' {end_typed}\r");
    let cpu0 = cpu_secs(pid);
    term.send(command.as_bytes()).await?;
    // The line ending tells whether the PTY turns \n into \r\n (onlcr).
    let crlf = format!("{start}\r\n");
    let lf = format!("{start}\n");
    let (which, t0) = term.wait_for(&[crlf.as_bytes(), lf.as_bytes()]).await?;
    let newline: &'static [u8] = if which == 0 { b"\r\n" } else { b"\n" };
    let end_marker = [end.as_bytes(), newline].concat();
    let (mut expect, expected) = match kind {
        FloodKind::Zeros(n) => (
            Expected::Repeat {
                byte: b'a',
                left: n,
            },
            n,
        ),
        FloodKind::Seq(n) => (
            Expected::Seq {
                next: 1,
                last: n,
                newline,
                carry: Vec::new(),
            },
            seq_len(n, newline.len() as u64),
        ),
    };
    let mut want = Vec::new();
    let mut received = 0u64;
    let mut first_difference = None;
    // Output past the expected bytes (or off them), searched for the end
    // marker; only a marker's length of it is kept between frames.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let chunk = term
            .recv(Instant::now() + IDLE)
            .await
            .map_err(|e| format!("after {received} bytes of the flood: {e}"))?;
        let arrived = Instant::now();
        let mut rest: &[u8] = &chunk;
        if first_difference.is_none() && !expect.done() {
            expect.fill(&mut want, rest.len());
            let got = &rest[..want.len()];
            if got == want.as_slice() {
                received += got.len() as u64;
                rest = &rest[got.len()..];
            } else {
                let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
                received += at as u64;
                rest = &rest[at..];
                first_difference = Some(received);
            }
        }
        if rest.is_empty() {
            continue;
        }
        let searched = tail.len().saturating_sub(end_marker.len() - 1);
        tail.extend_from_slice(rest);
        if let Some(at) = find(&tail[searched..], &end_marker).map(|i| i + searched) {
            received += at as u64;
            if first_difference.is_none() && (at > 0 || !expect.done()) {
                first_difference = Some(received - at as u64);
            }
            term.unread = tail[at + end_marker.len()..].to_vec();
            let secs = arrived.duration_since(t0).as_secs_f64();
            let server_cpu = match (cpu0, cpu_secs(pid)) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            };
            return Ok(Flood {
                received,
                expected,
                first_difference,
                secs,
                server_cpu,
            });
        }
        // Not found: keep only what could start the marker.
        let keep = end_marker.len() - 1;
        if tail.len() > keep {
            let drop = tail.len() - keep;
            received += drop as u64;
            tail.drain(..drop);
        }
    }
}

/// Milliseconds from typing each key into `cat` to receiving its echo.
async fn echo(term: &mut Term, keys: usize) -> Result<Vec<f64>, String> {
    term.sync().await?;
    // The shell has handed the terminal back to cooked mode (echo on) before
    // it runs the command line, so once the marker is out every key typed
    // is echoed at once by the PTY.
    let (typed, printed) = term.next_mark("READY");
    term.send(format!("echo {typed}; cat\r").as_bytes()).await?;
    term.wait_for(&[printed.as_bytes()]).await?;
    // Give cat a moment to be reading (not needed for the echo, which the
    // line discipline does, but it keeps the shell's start-up off the clock).
    tokio::time::sleep(Duration::from_millis(100)).await;
    term.unread.clear();
    let mut samples = Vec::with_capacity(keys);
    for i in 0..keys {
        let key = b'a' + (i % 26) as u8;
        let sent = Instant::now();
        term.send(&[key]).await?;
        loop {
            let chunk = term
                .recv(sent + Duration::from_secs(10))
                .await
                .map_err(|e| format!("echo of key {i}: {e}"))?;
            if chunk.contains(&key) {
                samples.push(sent.elapsed().as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    // Two Ctrl-D: the first hands the line to cat (within the 4095 bytes a
    // cooked line may hold), the second is end of file. Unlike Ctrl-C this
    // leaves whatever is typed next to the shell, never to a dying cat.
    term.send(b"\x04\x04").await?;
    term.sync().await?;
    Ok(samples)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // Nearest rank.
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Everything measured on one side.
struct Side {
    label: String,
    proto: Proto,
    url: String,
    /// Markers used so far (a reconnecting client may see old output again).
    marks: u32,
    pid: Option<i32>,
    zeros: Vec<Flood>,
    seqs: Vec<Flood>,
    echo_ms: Vec<f64>,
}

impl Side {
    /// One round on a connection of its own (an idle ttyd connection would
    /// be closed for not answering pings while the other side is measured).
    async fn round(
        &mut self,
        round: u32,
        bytes: u64,
        seq_lines: u64,
        keys: usize,
    ) -> Result<(), String> {
        let mut term = Term::connect(self.proto, &self.url, self.marks).await?;
        let result = self.measure(&mut term, round, bytes, seq_lines, keys).await;
        self.marks = term.marks;
        let _ = term.ws.close(None).await;
        result
    }

    async fn measure(
        &mut self,
        term: &mut Term,
        round: u32,
        bytes: u64,
        seq_lines: u64,
        keys: usize,
    ) -> Result<(), String> {
        // The shell is up and has run a command before anything is timed.
        term.sync().await?;
        let f = flood(term, FloodKind::Zeros(bytes), self.pid).await?;
        report(&self.label, round, "flood", &f);
        self.zeros.push(f);
        if seq_lines > 0 {
            let f = flood(term, FloodKind::Seq(seq_lines), self.pid).await?;
            report(&self.label, round, "seq  ", &f);
            self.seqs.push(f);
        }
        let samples = echo(term, keys).await?;
        println!(
            "    round {round} {:<12} echo   {} keys: median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.label,
            samples.len(),
            median(&samples),
            percentile(&samples, 0.99),
            percentile(&samples, 1.0),
        );
        self.echo_ms.extend(samples);
        Ok(())
    }
}

fn report(label: &str, round: u32, what: &str, f: &Flood) {
    let cpu = f
        .server_cpu
        .map(|c| format!(", server CPU {c:.2} s"))
        .unwrap_or_default();
    println!(
        "    round {round} {label:<12} {what}  {} bytes in {:.3} s = {:.1} MB/s{cpu}{}",
        thousands(f.received),
        f.secs,
        f.mbs(),
        if f.ok() { "" } else { "  <-- WRONG" },
    );
    if !f.ok() {
        println!(
            "FAIL: {label} round {round} {}: received {} bytes, expected {}{}",
            what.trim(),
            thousands(f.received),
            thousands(f.expected),
            // (A missing stretch of a constant flood shows only at its end.)
            f.first_difference
                .filter(|&d| d != f.received)
                .map(|d| format!(" (first difference at byte {})", thousands(d)))
                .unwrap_or_default(),
        );
    }
}

/// "100,000,000" when every round got the same count, else the range.
fn counts(floods: &[Flood]) -> String {
    let min = floods.iter().map(|f| f.received).min().unwrap_or(0);
    let max = floods.iter().map(|f| f.received).max().unwrap_or(0);
    let bad = floods.iter().filter(|f| !f.ok()).count();
    let range = if min == max {
        thousands(min)
    } else {
        format!("{}..{}", thousands(min), thousands(max))
    };
    if bad > 0 {
        format!("{range} FAIL ({bad}/{} wrong)", floods.len())
    } else {
        range
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: terminal_bench --ours WS_URL --ttyd WS_URL [--rounds N] [--keys N] [--bytes N]\n\
         \x20      [--seq-lines N] [--ours-pid PID] [--ttyd-pid PID] [--ttyd-label NAME]"
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut ours = None;
    let mut ttyd = None;
    let mut rounds = 3u32;
    let mut keys = 300usize;
    let mut bytes = 100_000_000u64;
    let mut seq_lines = 0u64;
    let mut ours_pid = None;
    let mut ttyd_pid = None;
    let mut ttyd_label = "ttyd".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        let number = || value.parse::<u64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--ours" => ours = Some(value.clone()),
            "--ttyd" => ttyd = Some(value.clone()),
            "--rounds" => rounds = number() as u32,
            "--keys" => keys = number() as usize,
            "--bytes" => bytes = number(),
            "--seq-lines" => seq_lines = number(),
            "--ours-pid" => ours_pid = Some(number() as i32),
            "--ttyd-pid" => ttyd_pid = Some(number() as i32),
            "--ttyd-label" => ttyd_label = value.clone(),
            _ => usage(),
        }
    }
    let (Some(ours), Some(ttyd)) = (ours, ttyd) else {
        usage()
    };
    if rounds == 0 || keys == 0 || bytes == 0 {
        usage()
    }

    let mut sides: Vec<Side> = [
        ("playground".to_string(), Proto::Playground, ours, ours_pid),
        (ttyd_label, Proto::Ttyd, ttyd, ttyd_pid),
    ]
    .into_iter()
    .map(|(label, proto, url, pid)| Side {
        label,
        proto,
        url,
        marks: 0,
        pid,
        zeros: Vec::new(),
        seqs: Vec::new(),
        echo_ms: Vec::new(),
    })
    .collect();

    println!(
        "terminal: {rounds} rounds, alternating; flood of {} bytes{}, {keys} keys typed into cat",
        thousands(bytes),
        if seq_lines > 0 {
            format!(" and seq {seq_lines}")
        } else {
            String::new()
        },
    );
    let mut failed = false;
    for round in 1..=rounds {
        let order: [usize; 2] = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        for i in order {
            let side = &mut sides[i];
            if let Err(e) = side.round(round, bytes, seq_lines, keys).await {
                println!("FAIL: {} round {round}: {e}", side.label);
                failed = true;
                break;
            }
        }
        if failed {
            break;
        }
    }

    println!();
    println!(
        "{:<18} | {:>13} | {:>40} | {:>14} | {:>11} | {:>14}",
        "path", "MB/s (median)", "bytes received", "echo median ms", "echo p99 ms", "server CPU s"
    );
    let row = |name: &str, floods: &[Flood], echo_ms: Option<&[f64]>| {
        let mbs: Vec<f64> = floods.iter().map(Flood::mbs).collect();
        let cpu: Vec<f64> = floods.iter().filter_map(|f| f.server_cpu).collect();
        let (em, ep) = match echo_ms {
            Some(v) => (
                format!("{:.3}", median(v)),
                format!("{:.3}", percentile(v, 0.99)),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{name:<18} | {:>13.1} | {:>40} | {em:>14} | {ep:>11} | {:>14}",
            median(&mbs),
            counts(floods),
            if cpu.is_empty() {
                "-".to_string()
            } else {
                format!("{:.2}", median(&cpu))
            },
        );
    };
    for side in &sides {
        row(&side.label, &side.zeros, Some(&side.echo_ms));
    }
    if seq_lines > 0 {
        for side in &sides {
            row(&format!("{} (seq)", side.label), &side.seqs, None);
        }
    }
    println!(
        "(MB/s = 10^6 bytes/s between the markers' arrival; server CPU = median CPU seconds \
         the terminal server used per flood; echo over all {} keys of all rounds)",
        sides[0].echo_ms.len()
    );

    let wrong: Vec<String> = sides
        .iter()
        .flat_map(|s| {
            s.zeros
                .iter()
                .chain(&s.seqs)
                .filter(|f| !f.ok())
                .map(move |f| {
                    format!(
                        "{}: {} of {} bytes",
                        s.label,
                        thousands(f.received),
                        thousands(f.expected)
                    )
                })
        })
        .collect();
    for w in &wrong {
        println!("FAIL: wrong byte count: {w}");
    }
    if failed || !wrong.is_empty() {
        std::process::exit(1);
    }
}
