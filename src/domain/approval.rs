//! The rules a call must meet before its agent may approve it, and the PAN's form.
//! Pure functions of what the call recorded.

use serde_json::Value;

/// What a call has shown, as the rule below reads it.
pub struct CallRecord<'a> {
    /// `ended` for a whole call; `dropped` and the rest are not.
    pub state: &'a str,
    /// The call's questions as stored: a JSON array of `{text, answer}`.
    pub questions: &'a str,
    pub liveness_result: Option<&'a str>,
    pub pan: Option<&'a str>,
    /// The kinds of the stills captured (`face`, `pan`, ...).
    pub captured: &'a [String],
}

/// What is still missing before the agent may approve a call.
pub fn approval_blockers(call: &CallRecord) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if call.state != "ended" {
        missing.push("a whole call (this one dropped)");
    }
    let questions: Vec<Value> = serde_json::from_str(&call.questions).unwrap_or_default();
    if questions.iter().any(|q| q["answer"] != "correct") {
        missing.push("every question answered correctly");
    }
    if call.liveness_result != Some("passed") {
        missing.push("the liveness check passed");
    }
    if !call.captured.iter().any(|k| k == "face") {
        missing.push("a capture of the face");
    }
    if !call.captured.iter().any(|k| k == "pan") {
        missing.push("a capture of the PAN card");
    }
    if call.pan.is_none() {
        missing.push("the PAN entered");
    }
    missing
}

/// A PAN: five letters, four digits, one letter.
pub fn valid_pan(pan: &str) -> bool {
    let b = pan.as_bytes();
    b.len() == 10
        && b[..5].iter().all(u8::is_ascii_uppercase)
        && b[5..9].iter().all(u8::is_ascii_digit)
        && b[9].is_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_format() {
        assert!(valid_pan("ABCDE1234F"));
        for bad in [
            "abcde1234f",
            "ABCD1234F",
            "ABCDE12345",
            "ABCDE1234",
            "1BCDE1234F",
            "",
        ] {
            assert!(!valid_pan(bad), "{bad}");
        }
    }
}
