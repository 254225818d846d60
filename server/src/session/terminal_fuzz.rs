//! Property tests of the terminal's output buffer, which clients index with
//! `?from=<offset>` on reconnect: any offset reads the kept bytes from the
//! nearest kept position, never out of bounds, and never more than `KEEP`
//! are kept.
//!
//! Bounded in `cargo test`; `PROPTEST_CASES=100000` for a long run.

use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn any_offset_reads_what_is_kept(
        chunks in proptest::collection::vec(1usize..40_000, 0..20),
        from in prop_oneof![any::<u64>(), 0u64..600_000],
    ) {
        let mut output = Output { data: VecDeque::new(), start: 0, cursors: HashMap::new(), lingering: HashSet::new() };
        let mut total = 0u64;
        for (i, len) in chunks.iter().enumerate() {
            // Byte n of the stream is n % 251, so every read can be checked.
            let bytes: Vec<u8> = (total..total + *len as u64).map(|n| (n % 251) as u8).collect();
            output.push(&bytes);
            total += *len as u64;
            prop_assert!(output.data.len() <= KEEP, "after chunk {}", i);
            prop_assert_eq!(output.end(), total);
        }
        let (at, chunk) = output.read_from(from);
        prop_assert!(at >= output.start && at <= output.end());
        prop_assert!(chunk.len() <= FRAME);
        for (k, b) in chunk.iter().enumerate() {
            prop_assert_eq!(*b, ((at + k as u64) % 251) as u8);
        }
        if from <= output.end() && from >= output.start {
            prop_assert_eq!(at, from);
        }
    }
}

/// One step of the reader, a client or the connection handler.
#[derive(Clone, Debug)]
enum Step {
    /// The reader reads up to this many bytes (sized to the room, as `pump` does).
    Read(usize),
    /// A client attaches, from an offset or from all that is kept.
    Attach(Option<u64>),
    /// A client attaches between the reader sizing its read and pushing it.
    AttachDuringRead(usize, Option<u64>),
    /// Client `i % n` receives up to one frame.
    Receive(usize),
    /// Client `i % n` goes away.
    Detach(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..=READ).prop_map(Step::Read),
        1 => proptest::option::of(0u64..2_000_000).prop_map(Step::Attach),
        1 => ((1usize..=READ), proptest::option::of(0u64..2_000_000))
            .prop_map(|(n, from)| Step::AttachDuringRead(n, from)),
        4 => any::<usize>().prop_map(Step::Receive),
        1 => any::<usize>().prop_map(Step::Detach),
    ]
}

proptest! {
    /// Whatever the reader, the clients and the connections do, no attached
    /// client ever finds a byte at its cursor gone, every byte it receives is
    /// the stream's byte at that offset, and the window stays bounded.
    #[test]
    fn no_attached_client_loses_a_byte(steps in proptest::collection::vec(step(), 1..400)) {
        let mut output = Output { data: VecDeque::new(), start: 0, cursors: HashMap::new(), lingering: HashSet::new() };
        let mut clients: Vec<u64> = Vec::new();
        let mut next = 0u64;
        for step in steps {
            match step {
                Step::Read(n) => {
                    let n = n.min(output.room());
                    let end = output.end();
                    let bytes: Vec<u8> = (end..end + n as u64).map(|b| (b % 251) as u8).collect();
                    output.push(&bytes);
                }
                Step::AttachDuringRead(n, from) => {
                    let n = n.min(output.room());
                    next += 1;
                    output.attach(next, from);
                    clients.push(next);
                    let end = output.end();
                    let bytes: Vec<u8> = (end..end + n as u64).map(|b| (b % 251) as u8).collect();
                    output.push(&bytes);
                }
                Step::Attach(from) => {
                    next += 1;
                    let (cursor, missed) = output.attach(next, from);
                    match from {
                        Some(from) if from <= output.end() => prop_assert_eq!(cursor, from.max(output.start)),
                        _ => prop_assert_eq!(cursor, output.start),
                    }
                    prop_assert_eq!(missed, from.filter(|&f| f < output.start).map_or(0, |f| output.start - f));
                    clients.push(next);
                }
                Step::Receive(i) if !clients.is_empty() => {
                    let client = clients[i % clients.len()];
                    let cursor = output.cursors[&client];
                    let (at, chunk) = output.read_from(cursor);
                    prop_assert_eq!(at, cursor, "client {}'s output was trimmed", client);
                    for (k, b) in chunk.iter().enumerate() {
                        prop_assert_eq!(*b, ((at + k as u64) % 251) as u8);
                    }
                    output.advance(client, at + chunk.len() as u64);
                }
                Step::Detach(i) if !clients.is_empty() => {
                    let client = clients.remove(i % clients.len());
                    output.detach(client);
                }
                Step::Receive(_) | Step::Detach(_) => {}
            }
            for cursor in output.cursors.values() {
                prop_assert!(*cursor >= output.start && *cursor <= output.end());
            }
            prop_assert!(output.data.len() <= KEEP + READ, "len {} start {} cursors {:?}", output.data.len(), output.start, output.cursors);
        }
    }
}
