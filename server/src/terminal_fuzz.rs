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
        let mut output = Output { data: VecDeque::new(), start: 0, cursors: HashMap::new() };
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
