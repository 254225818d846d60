//! Terminal output under a flood: 100 MB of numbered lines (`seq`) through a
//! real shell's terminal WebSocket reach every kind of client whole: a fast
//! one, one reading about 1 MB/s, one pausing and resuming at random, one
//! that disconnects every few megabytes and comes back with `?from=`. Each
//! must get every line once, in order, and nothing else. Ctrl-C stops a
//! flood within 100 ms, and a client away for longer than the server keeps
//! output is told exactly how much it missed.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use playground_protocol::TerminalServerMsg;
use playground_tests::TestServer;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Lines of `seq` in a flood: 1..=12,000,000 is 100.9 MB of output (the
/// terminal makes each `\n` a `\r\n`: 112.9 MB on the wire).
const LINES: u64 = 12_000_000;
/// The flood, between markers that only the output spells out in full
/// (the echoed command line shows `$((0+1))`).
const FLOOD: &str = "echo BEGIN-$((0+1)); seq 1 12000000; echo END-$((1+1))\n";
const BEGIN: &[u8] = b"BEGIN-1\r\n";
const END: &[u8] = b"END-2\r\n";

/// How long a whole flood may take (the 1 MB/s client needs about 115 s).
const FLOOD_TIMEOUT: Duration = Duration::from_secs(400);

/// Check that `received` holds exactly the flood's lines between the
/// markers: every line once, in order, nothing else.
fn check_flood(who: &str, received: &[u8]) {
    let begin = find(received, BEGIN).unwrap_or_else(|| panic!("{who}: no BEGIN marker"));
    let body = &received[begin + BEGIN.len()..];
    let mut expected = 1u64;
    let mut rest = body;
    while expected <= LINES {
        let line = format!("{expected}\r\n");
        if !rest.starts_with(line.as_bytes()) {
            let at = body.len() - rest.len();
            let show = String::from_utf8_lossy(&rest[..rest.len().min(60)]);
            panic!("{who}: expected line {expected} at byte {at} after BEGIN, found {show:?}");
        }
        rest = &rest[line.len()..];
        expected += 1;
    }
    assert!(
        rest.starts_with(END),
        "{who}: after line {LINES} expected END, found {:?}",
        String::from_utf8_lossy(&rest[..rest.len().min(60)])
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Output received so far, and whether END has come.
struct Received {
    bytes: Vec<u8>,
    /// Stream offset after the last byte.
    offset: u64,
    acked: u64,
    ended: bool,
}

impl Received {
    fn new(offset: u64) -> Received {
        Received {
            bytes: Vec::with_capacity(120 << 20),
            offset,
            acked: offset,
            ended: false,
        }
    }

    /// Add a frame's bytes; only the new bytes (and the few before them a
    /// marker could straddle) are searched.
    fn add(&mut self, frame: &[u8]) {
        let from = self.bytes.len().saturating_sub(END.len());
        self.bytes.extend_from_slice(frame);
        self.offset += frame.len() as u64;
        self.ended = self.ended || find(&self.bytes[from..], END).is_some();
    }

    /// Acknowledge what arrived, every 32 KiB as the page does.
    async fn ack(&mut self, ws: &mut Socket) {
        if self.offset - self.acked >= 32 * 1024 {
            self.acked = self.offset;
            let ack = format!(r#"{{"type":"ack","offset":{}}}"#, self.offset);
            ws.send(Message::Text(ack.into())).await.unwrap();
        }
    }
}

/// A small deterministic random source (xorshift), seeded per run.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Connect to the terminal (acknowledging what arrives when `ack`);
/// returns the socket and the offset it starts at. Fails the test on a
/// `missed` notice: these clients must lose nothing.
async fn connect(
    server: &TestServer,
    sid: &str,
    name: &str,
    from: Option<u64>,
    ack: bool,
) -> (Socket, u64) {
    let mut query = format!("?ack={ack}");
    if let Some(from) = from {
        query.push_str(&format!("&from={from}"));
    }
    let url = server.ws_url(&format!(
        "/api/sessions/{sid}/instances/{name}/terminal{query}"
    ));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let offset = match ws.next().await {
        Some(Ok(Message::Text(text))) => match serde_json::from_str(&text).unwrap() {
            TerminalServerMsg::Attached { offset } => offset,
            other => panic!("expected attached, got {other:?}"),
        },
        other => panic!("expected attached, got {other:?}"),
    };
    if let Some(from) = from {
        assert_eq!(offset, from, "reconnect did not resume at its offset");
    }
    (ws, offset)
}

/// The bytes of one frame; fails the test on a control message other than
/// the ones a running shell sends.
fn output_of(message: Message, who: &str) -> Option<Vec<u8>> {
    match message {
        Message::Binary(bytes) => Some(bytes.to_vec()),
        Message::Text(text) => {
            let msg: TerminalServerMsg = serde_json::from_str(&text).unwrap();
            panic!("{who}: unexpected control message during the flood: {msg:?}");
        }
        Message::Close(frame) => panic!("{who}: socket closed during the flood: {frame:?}"),
        _ => None,
    }
}

/// Read as fast as possible until END, acknowledging nothing.
async fn read_fast(mut ws: Socket, who: &str) -> (Socket, Vec<u8>) {
    let mut received = Received::new(0);
    while !received.ended {
        let message = ws.next().await.expect("socket ended").unwrap();
        if let Some(bytes) = output_of(message, who) {
            received.add(&bytes);
        }
    }
    (ws, received.bytes)
}

/// Read at about `rate` bytes per second until END.
async fn read_slowly(mut ws: Socket, offset: u64, rate: u64) -> Vec<u8> {
    let start = Instant::now();
    let mut received = Received::new(offset);
    while !received.ended {
        let message = ws.next().await.expect("socket ended").unwrap();
        if let Some(bytes) = output_of(message, "slow client") {
            received.add(&bytes);
            received.ack(&mut ws).await;
        }
        let due = Duration::from_secs_f64(received.bytes.len() as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    received.bytes
}

/// Read, sending pause and resume at random moments, until END.
async fn read_pausing(mut ws: Socket, offset: u64, mut rng: Rng) -> Vec<u8> {
    let mut received = Received::new(offset);
    let mut pauses = 0;
    while !received.ended {
        let message = ws.next().await.expect("socket ended").unwrap();
        if let Some(bytes) = output_of(message, "pausing client") {
            received.add(&bytes);
            received.ack(&mut ws).await;
        }
        if rng.below(200) == 0 {
            ws.send(Message::Text(r#"{"type":"pause"}"#.into()))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            ws.send(Message::Text(r#"{"type":"resume"}"#.into()))
                .await
                .unwrap();
            pauses += 1;
        }
    }
    println!("pausing client paused {pauses} times");
    received.bytes
}

/// Read, dropping the connection every few megabytes (with bytes in
/// flight) and coming back with `?from=` the offset after the last byte
/// received, until END.
async fn read_reconnecting(
    server: &TestServer,
    sid: &str,
    name: &str,
    mut ws: Socket,
    offset: u64,
    mut rng: Rng,
) -> Vec<u8> {
    let mut received = Received::new(offset);
    let mut next_drop = 1 + rng.below(4 << 20) as usize;
    let mut reconnects = 0;
    while !received.ended {
        let message = ws.next().await.expect("socket ended").unwrap();
        if let Some(bytes) = output_of(message, "reconnecting client") {
            received.add(&bytes);
            received.ack(&mut ws).await;
        }
        if received.bytes.len() >= next_drop && !received.ended {
            // Sometimes a clean close, mostly the connection just goes.
            if rng.below(4) == 0 {
                let _ = ws.close(None).await;
            }
            drop(ws);
            ws = connect(server, sid, name, Some(received.offset), true)
                .await
                .0;
            received.acked = received.offset;
            next_drop = received.bytes.len() + 1 + rng.below(4 << 20) as usize;
            reconnects += 1;
        }
    }
    println!("reconnecting client reconnected {reconnects} times");
    received.bytes
}

fn seed() -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("random seed {seed}");
    seed
}

/// Wait for the shell to answer; how many output bytes that took.
async fn ready(ws: &mut Socket) -> u64 {
    ws.send(Message::Binary(b"echo READY-$((2*3))\n".to_vec().into()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while find(&seen, b"READY-6").is_none() {
            let message = ws.next().await.unwrap().unwrap();
            if let Some(bytes) = output_of(message, "client") {
                seen.extend_from_slice(&bytes);
            }
        }
    })
    .await
    .expect("the shell never answered");
    seen.len() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fast_client_gets_every_line_and_ctrl_c_stops_a_flood_at_once() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let (mut ws, _) = connect(&server, &sid, &name, None, false).await;
    ready(&mut ws).await;
    ws.send(Message::Binary(FLOOD.as_bytes().to_vec().into()))
        .await
        .unwrap();
    let start = Instant::now();
    let (mut ws, received) = tokio::time::timeout(FLOOD_TIMEOUT, read_fast(ws, "fast client"))
        .await
        .expect("the flood did not finish in time");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fast client: {} bytes in {secs:.1} s ({:.0} MB/s)",
        received.len(),
        received.len() as f64 / secs / 1e6
    );
    check_flood("fast client", &received);

    // An endless flood; Ctrl-C must end it (and bring the prompt back)
    // within 100 ms while output streams at full speed.
    ws.send(Message::Binary(b"PS1='P$((6*7))> '\n".to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(b"seq 1 999999999\n".to_vec().into()))
        .await
        .unwrap();
    let mut seen = 0usize;
    while seen < 8 << 20 {
        let message = ws.next().await.unwrap().unwrap();
        seen += output_of(message, "fast client").map_or(0, |b| b.len());
    }
    let sent = Instant::now();
    ws.send(Message::Binary(b"\x03".to_vec().into()))
        .await
        .unwrap();
    let mut tail = Vec::new();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while find(&tail, b"P42> ").is_none() {
            let message = ws.next().await.unwrap().unwrap();
            if let Some(bytes) = output_of(message, "fast client") {
                tail.extend_from_slice(&bytes);
                let keep = tail.len().saturating_sub(64);
                tail.drain(..keep);
            }
        }
        sent.elapsed()
    })
    .await
    .expect("Ctrl-C did not stop the flood within 10 s");
    println!("Ctrl-C to prompt: {:.1} ms", waited.as_secs_f64() * 1e3);
    assert!(
        waited < Duration::from_millis(100),
        "Ctrl-C took {waited:?} to stop the flood"
    );
    server.finish(&sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_pausing_and_reconnecting_clients_each_get_every_line() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let seed = seed();
    let (mut slow, slow_at) = connect(&server, &sid, &name, None, true).await;
    let slow_at = slow_at + ready(&mut slow).await;
    // The others join before the flood starts and get all that is kept.
    let (pausing, pausing_at) = connect(&server, &sid, &name, None, true).await;
    let (reconnecting, offset) = connect(&server, &sid, &name, None, true).await;
    slow.send(Message::Binary(FLOOD.as_bytes().to_vec().into()))
        .await
        .unwrap();
    let start = Instant::now();
    let (slow, pausing, reconnecting) = tokio::time::timeout(FLOOD_TIMEOUT, async {
        tokio::join!(
            read_slowly(slow, slow_at, 1_000_000),
            read_pausing(pausing, pausing_at, Rng(seed)),
            read_reconnecting(
                &server,
                &sid,
                &name,
                reconnecting,
                offset,
                Rng(seed.rotate_left(17))
            ),
        )
    })
    .await
    .expect("the flood did not finish in time");
    println!(
        "three clients, {} bytes each, in {:.1} s",
        slow.len(),
        start.elapsed().as_secs_f64()
    );
    check_flood("slow client", &slow);
    check_flood("pausing client", &pausing);
    check_flood("reconnecting client", &reconnecting);
    server.finish(&sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_away_too_long_is_told_how_much_it_missed() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let (mut ws, start) = connect(&server, &sid, &name, None, false).await;
    let got = ready(&mut ws).await;
    let away_at = start + got;
    // 2 MB of output (far more than the server keeps), printed after this
    // client has gone.
    ws.send(Message::Binary(
        b"sleep 0.5; seq 1 300000; echo DONE-$((4+4))\n"
            .to_vec()
            .into(),
    ))
    .await
    .unwrap();
    let _ = ws.close(None).await;
    drop(ws);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let url = server.ws_url(&format!(
        "/api/sessions/{sid}/instances/{name}/terminal?from={away_at}"
    ));
    let (mut back, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut control = Vec::new();
    let mut output = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while find(&output, b"DONE-8").is_none() {
            match back.next().await.unwrap().unwrap() {
                Message::Text(text) => {
                    control.push(serde_json::from_str::<TerminalServerMsg>(&text).unwrap())
                }
                Message::Binary(bytes) => output.extend_from_slice(&bytes),
                _ => {}
            }
        }
    })
    .await
    .expect("the output after the gap never arrived");
    let TerminalServerMsg::Attached { offset } = control[0] else {
        panic!("expected attached first, got {control:?}");
    };
    assert!(offset > away_at, "the gap was kept: {offset} <= {away_at}");
    assert_eq!(
        control.get(1),
        Some(&TerminalServerMsg::Missed {
            bytes: offset - away_at
        }),
        "the client was not told what it missed"
    );
    // What follows the gap is the stream's tail: consecutive lines up to
    // 300000, then the marker.
    let text = String::from_utf8_lossy(&output);
    let numbers: Vec<u64> = text
        .split("\r\n")
        .skip(1) // the first line may be cut
        .map_while(|l| l.parse().ok())
        .collect();
    assert!(
        numbers.len() > 10_000,
        "too little after the gap: {} lines",
        numbers.len()
    );
    assert_eq!(numbers.last(), Some(&300_000));
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "lines out of order after the gap"
    );

    // A client that was not away too long is told nothing.
    let (mut recent, _) = connect(&server, &sid, &name, Some(offset), false).await;
    ready(&mut recent).await;
    server.finish(&sid).await;
}
