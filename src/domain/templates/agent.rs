//! The agent template: the checklist an agent works through on a call, and the rule
//! the server applies before it accepts an approval.

use super::{valid_kind_name, valid_name, yes};
use serde::{Deserialize, Serialize};

/// A capture the agent takes on the call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// `face`, `pan`, `signature` or another name (`[a-z_]`, up to 32).
    pub kind: String,
    /// What the agent's console calls it.
    pub label: String,
    /// Whether approval waits for it.
    #[serde(default = "yes")]
    pub required: bool,
}

/// The agent's checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentTemplate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Questions drawn at random from each question bank per call (0 to 20); absent:
    /// each bank's own count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_questions: Option<u32>,
    /// Whether the merchant's own `security_questions` must all be answered correctly
    /// before approval (the banks' questions always must).
    #[serde(default = "yes")]
    pub merchant_questions_required: bool,
    #[serde(default = "yes")]
    pub liveness_required: bool,
    /// Whether the PAN number must be entered.
    #[serde(default = "yes")]
    pub pan_required: bool,
    pub captures: Vec<Capture>,
    /// The reasons an agent may choose when rejecting (remarks stay free text).
    #[serde(default)]
    pub rejection_reasons: Vec<String>,
}

impl AgentTemplate {
    /// Checks what serde cannot: names, counts, captures, reasons.
    pub fn check(&self) -> Result<(), String> {
        if !valid_name(&self.name) {
            return Err("name: 1 to 50 of A-Z, a-z, 0-9, '.', '_', '-'".into());
        }
        if self.random_questions.is_some_and(|n| n > 20) {
            return Err("random_questions: 0 to 20".into());
        }
        if self.captures.len() > 10 {
            return Err("captures: at most 10".into());
        }
        for (i, c) in self.captures.iter().enumerate() {
            if !valid_kind_name(&c.kind) {
                return Err(format!("captures[{i}].kind: 1 to 32 of a-z and '_'"));
            }
            if self.captures[..i].iter().any(|o| o.kind == c.kind) {
                return Err(format!("captures[{i}].kind: {} is listed twice", c.kind));
            }
            if c.label.trim().is_empty() || c.label.chars().count() > 60 {
                return Err(format!("captures[{i}].label: 1 to 60 characters"));
            }
        }
        if self.rejection_reasons.len() > 30 {
            return Err("rejection_reasons: at most 30".into());
        }
        for (i, r) in self.rejection_reasons.iter().enumerate() {
            if r.trim().is_empty() || r.chars().count() > 200 {
                return Err(format!("rejection_reasons[{i}]: 1 to 200 characters"));
            }
        }
        if self.description.chars().count() > 500 {
            return Err("description: at most 500 characters".into());
        }
        Ok(())
    }

    /// Whether a still of this kind may be taken on a call under this template.
    pub fn captures_kind(&self, kind: &str) -> bool {
        self.captures.iter().any(|c| c.kind == kind)
    }
}
