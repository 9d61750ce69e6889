//! Templates: named, versioned descriptions of how a request runs, chosen on
//! `POST /vkyc` by `user_template` and `agent_template` (docs/templates.md).
//!
//! An agent template is the agent's checklist: the questions, whether liveness and the
//! PAN are required, the captures (face, PAN, signature on paper, others by name) and
//! the rejection reasons offered. A user template names the customer's journey. Pure
//! data and rules here; the versions live in the store (`operations::templates`).

use serde::{Deserialize, Serialize};

/// Which of the two a template is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    Agent,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "user" => Some(Kind::User),
            "agent" => Some(Kind::Agent),
            _ => None,
        }
    }

    /// The template a request gets when `POST /vkyc` names none.
    pub fn default_name(self) -> &'static str {
        match self {
            Kind::User => "vkyc_standard_template",
            Kind::Agent => "vkyc_agent_template_v1",
        }
    }

    /// The request field that names it (and its error code's stem).
    pub fn field(self) -> &'static str {
        match self {
            Kind::User => "user_template",
            Kind::Agent => "agent_template",
        }
    }
}

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

fn yes() -> bool {
    true
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

/// The customer's journey: the bank's own face on its pages and messages, and the
/// "before you start" box. Every built-in runs today's steps; steps taken from the
/// template are the next part of this work (docs/templates.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTemplate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The name the customer sees on every journey page and in every message (up to 60
    /// characters); empty: the merchant's name.
    #[serde(default)]
    pub display_name: String,
    /// The pages' primary colour, `#rrggbb`; empty: vkyc's own.
    #[serde(default)]
    pub primary_colour: String,
    /// "About N minutes", in the box that says what to keep ready (1 to 120).
    #[serde(default = "five")]
    pub minutes: u32,
    /// How the customer's Aadhaar is established: `offline_ekyc` (the customer uploads
    /// UIDAI's offline e-KYC file; always offered) and `merchant_details` (the
    /// `aadhaar_details` the merchant sent replace the customer's Aadhaar step).
    #[serde(default = "both_methods")]
    pub aadhaar_methods: Vec<String>,
}

/// The Aadhaar methods this version knows.
pub const AADHAAR_METHODS: [&str; 2] = ["offline_ekyc", "merchant_details"];

fn both_methods() -> Vec<String> {
    AADHAAR_METHODS.map(String::from).to_vec()
}

fn five() -> u32 {
    5
}

/// The built-in templates' TOML, as shipped.
pub const BUILT_IN: [(Kind, &str); 5] = [
    (
        Kind::User,
        include_str!("../templates/vkyc_standard_template.toml"),
    ),
    (
        Kind::User,
        include_str!("../templates/vkyc_user_template_v1.toml"),
    ),
    (
        Kind::User,
        include_str!("../templates/vkyc_user_okyc_template_v1.toml"),
    ),
    (
        Kind::Agent,
        include_str!("../templates/vkyc_agent_template_v1.toml"),
    ),
    (
        Kind::Agent,
        include_str!("../templates/vkyc_agent_template_signature_v1.toml"),
    ),
];

/// A template's name: what `POST /vkyc` accepts (`[A-Za-z0-9._-]`, 1 to 50).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 50
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn valid_kind_name(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 32
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
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

impl UserTemplate {
    /// Whether the merchant's `aadhaar_details` stand in for the customer's Aadhaar step.
    pub fn takes_merchant_details(&self) -> bool {
        self.aadhaar_methods.iter().any(|m| m == "merchant_details")
    }

    pub fn check(&self) -> Result<(), String> {
        if !valid_name(&self.name) {
            return Err("name: 1 to 50 of A-Z, a-z, 0-9, '.', '_', '-'".into());
        }
        if self.display_name.chars().count() > 60 || self.display_name.chars().any(char::is_control)
        {
            return Err("display_name: at most 60 characters, no control characters".into());
        }
        let colour = self.primary_colour.as_bytes();
        let hex_colour =
            colour.len() == 7 && colour[0] == b'#' && colour[1..].iter().all(u8::is_ascii_hexdigit);
        if !colour.is_empty() && !hex_colour {
            return Err("primary_colour: #rrggbb".into());
        }
        if !(1..=120).contains(&self.minutes) {
            return Err("minutes: 1 to 120".into());
        }
        for (i, m) in self.aadhaar_methods.iter().enumerate() {
            if !AADHAAR_METHODS.contains(&m.as_str()) || self.aadhaar_methods[..i].contains(m) {
                return Err(format!(
                    "aadhaar_methods[{i}]: offline_ekyc or merchant_details, each once"
                ));
            }
        }
        if !self.aadhaar_methods.iter().any(|m| m == "offline_ekyc") {
            return Err(
                "aadhaar_methods: offline_ekyc is the customer's own way, and must be offered"
                    .into(),
            );
        }
        if self.description.chars().count() > 500 {
            return Err("description: at most 500 characters".into());
        }
        Ok(())
    }
}

/// A template read from TOML or JSON and checked; answers its name and its canonical
/// JSON (what the store keeps and versions).
pub fn parse(kind: Kind, text: &str, json: bool) -> Result<(String, String), String> {
    fn read<T: serde::de::DeserializeOwned>(text: &str, json: bool) -> Result<T, String> {
        if json {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string())
        }
    }
    match kind {
        Kind::Agent => {
            let t: AgentTemplate = read(text, json)?;
            t.check()?;
            Ok((
                t.name.clone(),
                serde_json::to_string(&t).expect("serializes"),
            ))
        }
        Kind::User => {
            let t: UserTemplate = read(text, json)?;
            t.check()?;
            Ok((
                t.name.clone(),
                serde_json::to_string(&t).expect("serializes"),
            ))
        }
    }
}

/// The built-in of this kind and name, as (name, canonical JSON).
pub fn built_in(kind: Kind, name: &str) -> Option<(String, String)> {
    BUILT_IN
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(k, text)| parse(*k, text, false).expect("built-in templates parse"))
        .find(|(n, _)| n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_parse_and_the_defaults_are_among_them() {
        for (kind, text) in BUILT_IN {
            parse(kind, text, false).unwrap();
        }
        for kind in [Kind::User, Kind::Agent] {
            assert!(built_in(kind, kind.default_name()).is_some());
        }
        let (_, json) = built_in(Kind::Agent, "vkyc_agent_template_v1").unwrap();
        let t: AgentTemplate = serde_json::from_str(&json).unwrap();
        let kinds: Vec<&str> = t.captures.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["face", "pan"]);
        assert!(t.liveness_required && t.pan_required && t.merchant_questions_required);
        assert!(built_in(Kind::User, "vkyc_agent_template_v1").is_none());
    }

    #[test]
    fn templates_that_cannot_work_are_refused() {
        let good = r#"name = "t"
captures = [{ kind = "face", label = "Face" }]"#;
        let (name, json) = parse(Kind::Agent, good, false).unwrap();
        assert_eq!(name, "t");
        let t: AgentTemplate = serde_json::from_str(&json).unwrap();
        assert!(t.captures[0].required && t.liveness_required);
        for bad in [
            "name = \"a b\"\ncaptures = []",
            "name = \"t\"\ncaptures = []\nrandom_questions = 21",
            "name = \"t\"\ncaptures = [{ kind = \"Face\", label = \"x\" }]",
            "name = \"t\"\ncaptures = [{ kind = \"f\", label = \"x\" }, { kind = \"f\", label = \"y\" }]",
            "name = \"t\"\ncaptures = [{ kind = \"f\", label = \" \" }]",
            "name = \"t\"\ncaptures = []\nrejection_reasons = [\"\"]",
            "name = \"t\"\ncaptures = []\nunknown = 1",
            "name = \"t\"",
        ] {
            assert!(parse(Kind::Agent, bad, false).is_err(), "{bad}");
        }
        assert!(parse(Kind::User, "name = \"u\"\nsteps = []", false).is_err());
        let (_, json) = parse(
            Kind::User,
            "name = \"u\"\nprimary_colour = \"#0a3D62\"",
            false,
        )
        .unwrap();
        let u: UserTemplate = serde_json::from_str(&json).unwrap();
        assert_eq!((u.minutes, u.display_name.as_str()), (5, ""));
        assert!(u.takes_merchant_details());
        let (_, json) = built_in(Kind::User, "vkyc_user_okyc_template_v1").unwrap();
        let okyc: UserTemplate = serde_json::from_str(&json).unwrap();
        assert_eq!(okyc.aadhaar_methods, ["offline_ekyc"]);
        assert!(!okyc.takes_merchant_details());
        for bad in [
            "primary_colour = \"blue\"",
            "primary_colour = \"#12345\"",
            "minutes = 0",
            "display_name = \"a\\nb\"",
            "aadhaar_methods = [\"merchant_details\"]",
            "aadhaar_methods = [\"offline_ekyc\", \"digilocker\"]",
            "aadhaar_methods = [\"offline_ekyc\", \"offline_ekyc\"]",
        ] {
            assert!(
                parse(Kind::User, &format!("name = \"u\"\n{bad}"), false).is_err(),
                "{bad}"
            );
        }
        assert!(parse(Kind::Agent, "{\"name\": \"j\", \"captures\": []}", true).is_ok());
    }
}
