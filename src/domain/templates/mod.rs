//! Templates: named, versioned descriptions of how a request runs, chosen on
//! `POST /vkyc` by `user_template` and `agent_template` (docs/templates.md).
//!
//! An agent template is the agent's checklist: the questions, whether liveness and the
//! PAN are required, the captures (face, PAN, signature on paper, others by name) and
//! the rejection reasons offered. A user template names the customer's journey. Pure
//! data and rules here; the versions live in the store (`operations::templates`).

mod agent;
mod user;

pub use agent::{AgentTemplate, Capture};
pub use user::{DetailError, Field, FieldKind, UserTemplate, AADHAAR_METHODS, STEPS};

/// serde's default for flags that are on unless a template says otherwise.
fn yes() -> bool {
    true
}

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

/// The built-in templates' TOML, as shipped.
pub const BUILT_IN: [(Kind, &str); 5] = [
    (
        Kind::User,
        include_str!("../../templates/vkyc_standard_template.toml"),
    ),
    (
        Kind::User,
        include_str!("../../templates/vkyc_user_template_v1.toml"),
    ),
    (
        Kind::User,
        include_str!("../../templates/vkyc_user_okyc_template_v1.toml"),
    ),
    (
        Kind::Agent,
        include_str!("../../templates/vkyc_agent_template_v1.toml"),
    ),
    (
        Kind::Agent,
        include_str!("../../templates/vkyc_agent_template_signature_v1.toml"),
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

/// A capture's or a form field's key.
fn valid_kind_name(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 32
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
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
