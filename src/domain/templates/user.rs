//! The user template: how the customer's journey runs. Which steps, in what order; the
//! personal-details form; how Aadhaar is established; the languages and the consent text
//! in each; the bank's own face (name, logo, colour) on every page and message.

use super::{valid_kind_name, valid_name, yes};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The customer's journey.
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
    /// An uploaded logo's id (its PNG's SHA-256, hex); empty: none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub logo: String,
    /// "About N minutes", in the box that says what to keep ready (1 to 120).
    #[serde(default = "five")]
    pub minutes: u32,
    /// The journey's steps in order (see [`check_steps`]). Absent: the journey before
    /// templates had steps (no mobile OTP, no personal details), so versions stored then
    /// read as they ran.
    #[serde(default = "classic_steps")]
    pub steps: Vec<String>,
    /// The personal-details form, when `steps` has `personal_details`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal_details: Vec<Field>,
    /// How the customer's Aadhaar is established: `offline_ekyc` (the customer uploads
    /// UIDAI's offline e-KYC file; always offered), `digilocker` (the customer fetches it
    /// from a DigiLocker-style provider) and `merchant_details` (the `aadhaar_details` the
    /// merchant sent replace the customer's Aadhaar step).
    #[serde(default = "classic_methods")]
    pub aadhaar_methods: Vec<String>,
    /// The languages the journey offers, the first being the one it opens in.
    #[serde(default = "both_languages")]
    pub languages: Vec<String>,
    /// The consent text per language; a language not named shows vkyc's own text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consent_text: BTreeMap<String, String>,
}

/// One question of the personal-details form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The key it is stored under (`[a-z_]`, 1 to 32).
    pub name: String,
    /// What the form asks, in English.
    pub label: String,
    /// The same in Hindi; empty: the English label.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label_hi: String,
    /// `choice` (one of `choices`) or `text` (1 to 100 characters).
    #[serde(rename = "type")]
    pub kind: FieldKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default = "yes")]
    pub required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Choice,
    Text,
}

/// Every step a journey may have.
pub const STEPS: [&str; 8] = [
    "mobile_otp",
    "personal_details",
    "consent",
    "aadhaar",
    "ip",
    "location",
    "devices",
    "waiting",
];

/// The checked steps, which every journey ends with in this order: their sub-statuses
/// follow one another in the status table, and a status move never runs backwards.
pub const CHECKED_STEPS: [&str; 5] = ["aadhaar", "ip", "location", "devices", "waiting"];

/// The steps that move no status and leave evidence (any order, before the checks).
pub const EVIDENCE_STEPS: [&str; 3] = ["mobile_otp", "personal_details", "consent"];

/// The Aadhaar methods this version knows.
pub const AADHAAR_METHODS: [&str; 3] = ["offline_ekyc", "digilocker", "merchant_details"];

/// The languages the journey's pages are written in.
pub const LANGUAGES: [&str; 2] = ["en", "hi"];

fn classic_methods() -> Vec<String> {
    vec!["offline_ekyc".into(), "merchant_details".into()]
}

fn classic_steps() -> Vec<String> {
    std::iter::once("consent")
        .chain(CHECKED_STEPS)
        .map(String::from)
        .collect()
}

fn both_languages() -> Vec<String> {
    LANGUAGES.map(String::from).to_vec()
}

fn five() -> u32 {
    5
}

/// Checks a step list: known steps, each once, consent among them, and the checked steps
/// last and in their order.
pub fn check_steps(steps: &[String]) -> Result<(), String> {
    for (i, s) in steps.iter().enumerate() {
        if !STEPS.contains(&s.as_str()) {
            return Err(format!("steps[{i}]: one of {}", STEPS.join(", ")));
        }
        if steps[..i].contains(s) {
            return Err(format!("steps[{i}]: {s} is listed twice"));
        }
    }
    let n = steps.len();
    if n < CHECKED_STEPS.len() + 1 || steps[n - CHECKED_STEPS.len()..] != CHECKED_STEPS {
        return Err(format!(
            "steps: must end with {} (their statuses follow one another)",
            CHECKED_STEPS.join(", ")
        ));
    }
    if !steps.iter().any(|s| s == "consent") {
        return Err("steps: consent is required".into());
    }
    Ok(())
}

impl UserTemplate {
    /// Whether the merchant's `aadhaar_details` stand in for the customer's Aadhaar step.
    pub fn takes_merchant_details(&self) -> bool {
        self.offers("merchant_details")
    }

    pub fn offers(&self, method: &str) -> bool {
        self.aadhaar_methods.iter().any(|m| m == method)
    }

    pub fn has_step(&self, step: &str) -> bool {
        self.steps.iter().any(|s| s == step)
    }

    /// Where the template's logo is served (`/brand/<id>.png`), when it has one.
    pub fn logo_url(&self) -> Option<String> {
        (!self.logo.is_empty()).then(|| format!("/brand/{}.png", self.logo))
    }

    /// The steps before the checks, in the template's order.
    pub fn evidence_steps(&self) -> impl Iterator<Item = &str> {
        self.steps
            .iter()
            .map(String::as_str)
            .filter(|s| EVIDENCE_STEPS.contains(s))
    }

    /// The language a journey opens in.
    pub fn first_language(&self) -> &str {
        self.languages.first().map(String::as_str).unwrap_or("en")
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
        let logo = self.logo.as_bytes();
        let logo_id =
            logo.len() == 64 && logo.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !logo.is_empty() && !logo_id {
            return Err("logo: an uploaded logo's id (64 hex digits)".into());
        }
        if !(1..=120).contains(&self.minutes) {
            return Err("minutes: 1 to 120".into());
        }
        check_steps(&self.steps)?;
        self.check_fields()?;
        for (i, m) in self.aadhaar_methods.iter().enumerate() {
            if !AADHAAR_METHODS.contains(&m.as_str()) || self.aadhaar_methods[..i].contains(m) {
                return Err(format!(
                    "aadhaar_methods[{i}]: {}, each once",
                    AADHAAR_METHODS.join(", ")
                ));
            }
        }
        if !self.offers("offline_ekyc") {
            return Err(
                "aadhaar_methods: offline_ekyc is the customer's own way, and must be offered"
                    .into(),
            );
        }
        if self.languages.is_empty() {
            return Err("languages: at least one of en, hi".into());
        }
        for (i, l) in self.languages.iter().enumerate() {
            if !LANGUAGES.contains(&l.as_str()) || self.languages[..i].contains(l) {
                return Err(format!("languages[{i}]: en or hi, each once"));
            }
        }
        for (lang, text) in &self.consent_text {
            if !self.languages.contains(lang) {
                return Err(format!("consent_text.{lang}: not among the languages"));
            }
            let n = text.trim().chars().count();
            if !(20..=4000).contains(&n) {
                return Err(format!("consent_text.{lang}: 20 to 4000 characters"));
            }
        }
        if self.description.chars().count() > 500 {
            return Err("description: at most 500 characters".into());
        }
        Ok(())
    }

    fn check_fields(&self) -> Result<(), String> {
        // The form is there exactly when its step is.
        if self.has_step("personal_details") == self.personal_details.is_empty() {
            return Err(
                "personal_details: the form's fields, given exactly when steps has personal_details"
                    .into(),
            );
        }
        if self.personal_details.len() > 12 {
            return Err("personal_details: at most 12 fields".into());
        }
        let short = |s: &str| !s.trim().is_empty() && s.chars().count() <= 80;
        for (i, f) in self.personal_details.iter().enumerate() {
            let at = format!("personal_details[{i}]");
            if !valid_kind_name(&f.name) {
                return Err(format!("{at}.name: 1 to 32 of a-z and '_'"));
            }
            if self.personal_details[..i].iter().any(|o| o.name == f.name) {
                return Err(format!("{at}.name: {} is listed twice", f.name));
            }
            if !short(&f.label) || !(f.label_hi.is_empty() || short(&f.label_hi)) {
                return Err(format!("{at}.label: 1 to 80 characters"));
            }
            match f.kind {
                FieldKind::Choice => {
                    if !(2..=20).contains(&f.choices.len()) {
                        return Err(format!("{at}.choices: 2 to 20"));
                    }
                    for (j, c) in f.choices.iter().enumerate() {
                        if !short(c) || f.choices[..j].contains(c) {
                            return Err(format!("{at}.choices[{j}]: 1 to 80 characters, once"));
                        }
                    }
                }
                FieldKind::Text if !f.choices.is_empty() => {
                    return Err(format!("{at}.choices: only for type = \"choice\""));
                }
                FieldKind::Text => {}
            }
        }
        Ok(())
    }

    /// Checks a filled form against the fields: every answer to a field of the form,
    /// each required one given, a choice among its choices, a text 1 to 100 characters
    /// with no control characters. Answers the stored form (the fields' order, trimmed),
    /// or the field at fault.
    pub fn read_details(
        &self,
        given: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<BTreeMap<String, String>, DetailError> {
        if let Some(unknown) = given
            .keys()
            .find(|k| !self.personal_details.iter().any(|f| &f.name == *k))
        {
            return Err(DetailError::Unknown(unknown.chars().take(32).collect()));
        }
        let mut out = BTreeMap::new();
        for f in &self.personal_details {
            let value = match given.get(&f.name) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
                Some(serde_json::Value::String(s)) => Some(s.trim().to_string()),
                Some(_) => return Err(DetailError::Invalid(f.name.clone())),
            };
            let Some(value) = value else {
                if f.required {
                    return Err(DetailError::Missing(f.name.clone()));
                }
                continue;
            };
            let fits = match f.kind {
                FieldKind::Choice => f.choices.contains(&value),
                FieldKind::Text => {
                    value.chars().count() <= 100 && !value.chars().any(char::is_control)
                }
            };
            if !fits {
                return Err(DetailError::Invalid(f.name.clone()));
            }
            out.insert(f.name.clone(), value);
        }
        Ok(out)
    }
}

/// What is wrong with a filled personal-details form.
#[derive(Debug, PartialEq, Eq)]
pub enum DetailError {
    Missing(String),
    Invalid(String),
    Unknown(String),
}

#[cfg(test)]
mod tests {
    use super::super::{built_in, parse, Kind};
    use super::*;

    fn user(extra: &str) -> Result<UserTemplate, String> {
        let (_, json) = parse(Kind::User, &format!("name = \"u\"\n{extra}"), false)?;
        Ok(serde_json::from_str(&json).unwrap())
    }

    #[test]
    fn steps_keep_the_checks_last_and_in_order() {
        let u = user("").unwrap();
        assert_eq!(u.steps, classic_steps());
        assert_eq!(u.evidence_steps().collect::<Vec<_>>(), ["consent"]);
        let ok = user(
            "steps = [\"consent\", \"mobile_otp\", \"aadhaar\", \"ip\", \"location\", \"devices\", \"waiting\"]",
        )
        .unwrap();
        assert_eq!(
            ok.evidence_steps().collect::<Vec<_>>(),
            ["consent", "mobile_otp"]
        );
        for bad in [
            "steps = []",
            "steps = [\"aadhaar\", \"ip\", \"location\", \"devices\", \"waiting\"]",
            "steps = [\"consent\", \"ip\", \"aadhaar\", \"location\", \"devices\", \"waiting\"]",
            "steps = [\"consent\", \"aadhaar\", \"ip\", \"location\", \"devices\", \"waiting\", \"mobile_otp\"]",
            "steps = [\"consent\", \"consent\", \"aadhaar\", \"ip\", \"location\", \"devices\", \"waiting\"]",
            "steps = [\"selfie\", \"consent\", \"aadhaar\", \"ip\", \"location\", \"devices\", \"waiting\"]",
            // A form without its step, and the step without a form.
            "[[personal_details]]\nname = \"x\"\nlabel = \"X\"\ntype = \"text\"",
            "steps = [\"personal_details\", \"consent\", \"aadhaar\", \"ip\", \"location\", \"devices\", \"waiting\"]",
            "languages = []",
            "languages = [\"fr\"]",
            "consent_text = { hi = \"too short\" }",
            "languages = [\"en\"]\nconsent_text = { hi = \"a consent text long enough to keep\" }",
            "logo = \"abc\"",
            "aadhaar_methods = [\"digilocker\"]",
        ] {
            assert!(user(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_form_reads_what_its_fields_allow() {
        let (_, json) = built_in(Kind::User, "vkyc_user_template_v1").unwrap();
        let t: UserTemplate = serde_json::from_str(&json).unwrap();
        assert_eq!(
            t.evidence_steps().collect::<Vec<_>>(),
            ["mobile_otp", "personal_details", "consent"]
        );
        let form = |v: serde_json::Value| t.read_details(v.as_object().unwrap());
        let good = serde_json::json!({
            "employment_type": "Salaried", "monthly_income": "₹25,000 to ₹50,000",
            "gender": "Female", "father_or_guardian_name": "  Ramesh Kumar ",
        });
        let read = form(good.clone()).unwrap();
        assert_eq!(read["father_or_guardian_name"], "Ramesh Kumar");
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("gender");
        assert_eq!(form(missing), Err(DetailError::Missing("gender".into())));
        let mut wrong = good.clone();
        wrong["employment_type"] = "Astronaut".into();
        assert_eq!(
            form(wrong),
            Err(DetailError::Invalid("employment_type".into()))
        );
        let mut typed = good.clone();
        typed["father_or_guardian_name"] = 5.into();
        assert!(form(typed).is_err());
        let mut long = good.clone();
        long["father_or_guardian_name"] = "x".repeat(101).into();
        assert!(form(long).is_err());
        let mut extra = good;
        extra["pan"] = "ABCDE1234F".into();
        assert_eq!(form(extra), Err(DetailError::Unknown("pan".into())));
    }
}
