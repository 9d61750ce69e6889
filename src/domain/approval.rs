//! The rules a call must meet before its agent may approve it, and the PAN's form.
//! Pure functions of what the call recorded.

use crate::domain::templates::AgentTemplate;
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

/// What is still missing before the agent may approve a call, under the request's
/// agent template.
pub fn approval_blockers(call: &CallRecord, template: &AgentTemplate) -> Vec<String> {
    let mut missing = Vec::new();
    if call.state != "ended" {
        missing.push("a whole call (this one dropped)".to_string());
    }
    // Questions that cannot be read block the approval: a damaged record must never
    // read as "nothing left to answer". The merchant's own questions count only when
    // the template requires them.
    let counts = |q: &Value| template.merchant_questions_required || q["source"] != "merchant";
    match read_questions(call.questions) {
        Some(questions)
            if questions
                .iter()
                .filter(|q| counts(q))
                .all(|q| q["answer"] == "correct") => {}
        Some(_) => missing.push("every question answered correctly".to_string()),
        None => missing.push("the call's questions, which cannot be read".to_string()),
    }
    if template.liveness_required && call.liveness_result != Some("passed") {
        missing.push("the liveness check passed".to_string());
    }
    for capture in template.captures.iter().filter(|c| c.required) {
        if !call.captured.contains(&capture.kind) {
            missing.push(format!("a capture of the {}", capture.label));
        }
    }
    if template.pan_required && call.pan.is_none() {
        missing.push("the PAN entered".to_string());
    }
    missing
}

/// The call's questions as stored (a JSON array), or `None` when they cannot be read.
pub fn read_questions(stored: &str) -> Option<Vec<Value>> {
    serde_json::from_str(stored).ok()
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
    use crate::domain::templates::{built_in, Kind};

    fn standard() -> AgentTemplate {
        let (_, json) = built_in(Kind::Agent, "vkyc_agent_template_v1").unwrap();
        serde_json::from_str(&json).unwrap()
    }

    fn approval_blockers(call: &CallRecord) -> Vec<String> {
        super::approval_blockers(call, &standard())
    }

    fn record<'a>(questions: &'a str, captured: &'a [String]) -> CallRecord<'a> {
        CallRecord {
            state: "ended",
            questions,
            liveness_result: Some("passed"),
            pan: Some("ABCDE1234F"),
            captured,
        }
    }

    #[test]
    fn a_complete_call_may_be_approved_and_each_gap_blocks() {
        let both = ["face".to_string(), "pan".to_string()];
        let answered = r#"[{"text":"Your city?","answer":"correct"}]"#;
        assert!(approval_blockers(&record(answered, &both)).is_empty());
        let wrong = r#"[{"text":"Your city?","answer":"incorrect"}]"#;
        assert_eq!(
            approval_blockers(&record(wrong, &both)),
            ["every question answered correctly"]
        );
        let unasked = r#"[{"text":"Your city?"}]"#;
        assert_eq!(approval_blockers(&record(unasked, &both)).len(), 1);
        let face_only = ["face".to_string()];
        assert_eq!(
            approval_blockers(&record(answered, &face_only)),
            ["a capture of the PAN card"]
        );
        let dropped = CallRecord {
            state: "dropped",
            ..record(answered, &both)
        };
        assert_eq!(approval_blockers(&dropped).len(), 1);
    }

    #[test]
    fn the_agent_template_decides_what_is_required() {
        let both = ["face".to_string(), "pan".to_string()];
        let merchant_wrong = r#"[{"source":"merchant","answer":"incorrect"},
                                 {"source":"deployment","answer":"correct"}]"#;
        let (_, json) = built_in(Kind::Agent, "vkyc_agent_template_signature_v1").unwrap();
        let signature: AgentTemplate = serde_json::from_str(&json).unwrap();
        assert_eq!(
            super::approval_blockers(&record(r#"[]"#, &both), &signature),
            ["a capture of the signature on paper"]
        );
        let mut relaxed = standard();
        relaxed.merchant_questions_required = false;
        relaxed.liveness_required = false;
        relaxed.pan_required = false;
        relaxed.captures[1].required = false;
        let bare = CallRecord {
            liveness_result: None,
            pan: None,
            ..record(merchant_wrong, &both[..1])
        };
        assert!(super::approval_blockers(&bare, &relaxed).is_empty());
        assert_eq!(approval_blockers(&bare).len(), 4);
        let bank_wrong = r#"[{"source":"deployment","answer":"incorrect"}]"#;
        assert_eq!(
            super::approval_blockers(&record(bank_wrong, &both), &relaxed),
            ["every question answered correctly"]
        );
    }

    #[test]
    fn questions_that_cannot_be_read_block_the_approval() {
        let both = ["face".to_string(), "pan".to_string()];
        for damaged in ["", "not json", "{}", r#"{"answer":"correct"}"#, "[1, 2"] {
            assert_eq!(
                approval_blockers(&record(damaged, &both)),
                ["the call's questions, which cannot be read"],
                "{damaged:?}"
            );
        }
    }

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
