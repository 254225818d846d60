//! Property tests of every type the server reads from the network: request
//! bodies and WebSocket control messages. Bytes of any kind must parse or be
//! rejected, never panic; what parses must serialise back to an equal value.
//!
//! `cargo test` runs a bounded number of cases; for a long run set
//! `PROPTEST_CASES=100000`.

use playground_protocol::{
    CreateSession, ExecRequest, SessionEvent, TerminalClientMsg, TerminalServerMsg,
};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Parse `bytes` as `T`; anything that parses must survive a round trip.
fn parse_or_reject<T>(bytes: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = serde_json::from_slice::<T>(bytes) {
        let text = serde_json::to_vec(&value).expect("a parsed value serialises");
        let again: T = serde_json::from_slice(&text).expect("its own output parses");
        assert_eq!(again, value);
    }
}

fn every_type(bytes: &[u8]) {
    parse_or_reject::<CreateSession>(bytes);
    parse_or_reject::<ExecRequest>(bytes);
    parse_or_reject::<TerminalClientMsg>(bytes);
    // Clients parse these; the server only writes them, but the web app and
    // tests read them from the network.
    parse_or_reject::<TerminalServerMsg>(bytes);
    parse_or_reject::<SessionEvent>(bytes);
}

/// Strings that stress JSON: escapes, quotes, non-ASCII, lone surrogates
/// written as `\u` escapes by the encoder.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ]{0,12}",
        any::<String>(),
        Just("\\\"\u{0}\u{7f}\u{10ffff}".to_string()),
    ]
}

fn create_session() -> impl Strategy<Value = CreateSession> {
    (proptest::option::of(text()), proptest::option::of(text()))
        .prop_map(|(template, scenario)| CreateSession { template, scenario })
}

fn exec_request() -> impl Strategy<Value = ExecRequest> {
    (
        proptest::collection::vec(text(), 0..4),
        proptest::option::of(text()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(cmd, stdin, timeout_secs)| ExecRequest {
            cmd,
            stdin,
            timeout_secs,
        })
}

fn terminal_client_msg() -> impl Strategy<Value = TerminalClientMsg> {
    prop_oneof![
        (any::<u16>(), any::<u16>())
            .prop_map(|(cols, rows)| TerminalClientMsg::Resize { cols, rows }),
        Just(TerminalClientMsg::Pause),
        Just(TerminalClientMsg::Resume),
    ]
}

/// A small change to a valid document: drop, insert or replace one byte,
/// or cut it short. Finds the edge cases valid shapes sit next to.
#[derive(Clone, Debug)]
enum Mutation {
    Remove(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Remove(i) if len > 0 => {
                bytes.remove(i % len);
            }
            Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Mutation::Replace(i, b) if len > 0 => bytes[i % len] = b,
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        every_type(&bytes);
    }

    #[test]
    fn json_shaped_text_never_panics(text in r#"[{}\[\]":,a-z0-9 \\.eE+-]{0,64}"#) {
        every_type(text.as_bytes());
    }

    #[test]
    fn request_bodies_round_trip(create in create_session(), exec in exec_request()) {
        let text = serde_json::to_string(&create).unwrap();
        prop_assert_eq!(serde_json::from_str::<CreateSession>(&text).unwrap(), create);
        let text = serde_json::to_string(&exec).unwrap();
        prop_assert_eq!(serde_json::from_str::<ExecRequest>(&text).unwrap(), exec);
    }

    #[test]
    fn control_messages_round_trip(msg in terminal_client_msg()) {
        let text = serde_json::to_string(&msg).unwrap();
        prop_assert_eq!(serde_json::from_str::<TerminalClientMsg>(&text).unwrap(), msg);
    }

    #[test]
    fn mutated_request_bodies_never_panic(
        create in create_session(),
        exec in exec_request(),
        msg in terminal_client_msg(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        for valid in [
            serde_json::to_vec(&create).unwrap(),
            serde_json::to_vec(&exec).unwrap(),
            serde_json::to_vec(&msg).unwrap(),
        ] {
            every_type(&mutate(valid, &mutations));
        }
    }

    /// Wrong types and out-of-range numbers in otherwise well-formed
    /// messages are rejected, not wrapped or truncated.
    #[test]
    fn out_of_range_sizes_are_rejected(cols in 65536u64.., rows in any::<u16>()) {
        let text = format!(r#"{{"type":"resize","cols":{cols},"rows":{rows}}}"#);
        prop_assert!(serde_json::from_str::<TerminalClientMsg>(&text).is_err());
        let negative = format!(r#"{{"type":"resize","cols":-1,"rows":{rows}}}"#);
        prop_assert!(serde_json::from_str::<TerminalClientMsg>(&negative).is_err());
    }
}

#[test]
fn unknown_fields_in_create_session_are_rejected() {
    assert!(serde_json::from_str::<CreateSession>(r#"{"templat":"x"}"#).is_err());
    assert!(serde_json::from_str::<CreateSession>(r#"{"template":null}"#).is_ok());
}
