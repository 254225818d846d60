//! How long to wait before reconnecting a dropped WebSocket: doubling from
//! half a second up to ten seconds, shared by the terminal and the event
//! stream so both back off alike.

const FIRST_RETRY_MS: u32 = 500;
const MAX_RETRY_MS: u32 = 10_000;

/// The delay before reconnect attempt number `attempt` (1 for the first).
pub fn delay_ms(attempt: u32) -> u32 {
    let shift = attempt.saturating_sub(1).min(10);
    FIRST_RETRY_MS.saturating_mul(1 << shift).min(MAX_RETRY_MS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn delays_double_up_to_the_cap() {
        assert_eq!(super::delay_ms(1), 500);
        assert_eq!(super::delay_ms(2), 1000);
        assert_eq!(super::delay_ms(5), 8000);
        assert_eq!(super::delay_ms(6), 10_000);
        assert_eq!(super::delay_ms(100), 10_000);
    }
}
