//! The wall clock, in milliseconds since the Unix epoch: the one unit every stored time
//! and every rule here uses.

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
