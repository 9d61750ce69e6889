//! Question banks: the deployment's and each merchant's own, each question in English
//! and (optionally) Hindi, some mandatory, and how many of the others a call draws at
//! random. Every save is a new version; a call records the versions it drew from and
//! keeps its own copy of the questions, so a past call shows exactly what it was asked.
//!
//! Until an admin saves the deployment's bank, the configuration's `[calls] questions`
//! are its version 0, all mandatory, English only. A merchant without a bank of its own
//! adds no questions. A saved empty bank asks nothing from that bank.

use super::{invalid, refused, Actor};
use crate::clock::now_ms;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::Store;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// `merchant_id` of the deployment's bank.
pub const DEPLOYMENT: i64 = 0;
/// Most questions one bank holds.
pub const MAX_QUESTIONS: usize = 100;
/// Longest question text, in characters.
pub const MAX_TEXT: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub en: String,
    #[serde(default)]
    pub hi: Option<String>,
    #[serde(default)]
    pub mandatory: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bank {
    /// 0: never saved (the configuration's questions, or none for a merchant).
    pub version: i64,
    pub questions: Vec<Question>,
    /// How many of the questions that are not mandatory a call draws.
    pub random_count: u32,
    pub created_at: Option<i64>,
}

impl Bank {
    /// The questions of one call: every mandatory one, plus `random_count` of the others
    /// (or the agent template's `random_questions`, when it says) chosen at random.
    pub fn draw(&self, random: Option<u32>) -> Vec<&Question> {
        let mut chosen: Vec<&Question> = self.questions.iter().filter(|q| q.mandatory).collect();
        let optional: Vec<&Question> = self.questions.iter().filter(|q| !q.mandatory).collect();
        let count = random.map_or(self.random_count as usize, |n| n as usize);
        chosen.extend(optional.choose_multiple(&mut rand::thread_rng(), count));
        chosen
    }
}

fn from_config(config: &Config) -> Bank {
    Bank {
        version: 0,
        questions: config
            .calls
            .questions
            .iter()
            .map(|q| Question {
                en: q.clone(),
                hi: None,
                mandatory: true,
            })
            .collect(),
        random_count: 0,
        created_at: None,
    }
}

/// The bank in use: the newest saved version, else the default.
pub async fn current(store: &Store, config: &Config, merchant_id: i64) -> Result<Bank> {
    match store.question_bank(merchant_id, None).await? {
        Some(row) => from_row(row),
        None if merchant_id == DEPLOYMENT => Ok(from_config(config)),
        None => Ok(Bank {
            version: 0,
            questions: vec![],
            random_count: 0,
            created_at: None,
        }),
    }
}

/// One saved version, as it was.
pub async fn version(store: &Store, merchant_id: i64, version: i64) -> Result<Option<Bank>> {
    store
        .question_bank(merchant_id, Some(version))
        .await?
        .map(from_row)
        .transpose()
}

fn from_row(row: crate::store::BankRow) -> Result<Bank> {
    Ok(Bank {
        version: row.version,
        questions: serde_json::from_str(&row.questions).map_err(Error::internal)?,
        random_count: u32::try_from(row.random_count).unwrap_or(0),
        created_at: Some(row.created_at),
    })
}

/// Checks and tidies a bank as an admin gave it.
pub fn check(questions: Vec<Question>, random_count: i64) -> Result<(Vec<Question>, u32)> {
    if questions.len() > MAX_QUESTIONS {
        return Err(invalid(
            "questions_value_invalid",
            format!("a bank holds at most {MAX_QUESTIONS} questions"),
        ));
    }
    let mut out = Vec::with_capacity(questions.len());
    for (i, q) in questions.into_iter().enumerate() {
        let en = q.en.trim().to_string();
        let hi = q.hi.map(|h| h.trim().to_string()).filter(|h| !h.is_empty());
        if en.is_empty() || en.chars().count() > MAX_TEXT {
            return Err(invalid(
                "questions_value_invalid",
                format!(
                    "question {}: the English text must be 1 to {MAX_TEXT} characters",
                    i + 1
                ),
            ));
        }
        if hi.as_ref().is_some_and(|h| h.chars().count() > MAX_TEXT) {
            return Err(invalid(
                "questions_value_invalid",
                format!(
                    "question {}: the Hindi text must be at most {MAX_TEXT} characters",
                    i + 1
                ),
            ));
        }
        out.push(Question {
            en,
            hi,
            mandatory: q.mandatory,
        });
    }
    let optional = out.iter().filter(|q| !q.mandatory).count() as i64;
    if !(0..=optional).contains(&random_count) {
        return Err(invalid(
            "random_count_value_invalid",
            format!("random_count must be between 0 and {optional} (the questions that are not mandatory)"),
        ));
    }
    Ok((out, random_count as u32))
}

/// Saves a new version on top of `base` (the version the admin edited); refused when
/// someone saved another version meanwhile. Returns the new version.
pub async fn save(
    store: &Store,
    actor: &Actor,
    merchant_id: i64,
    base: i64,
    questions: Vec<Question>,
    random_count: i64,
) -> Result<i64> {
    let (questions, random_count) = check(questions, random_count)?;
    let json = serde_json::to_string(&questions).map_err(Error::internal)?;
    let version = store
        .insert_question_bank(
            merchant_id,
            base,
            &json,
            random_count.into(),
            actor.staff_id(),
            now_ms(),
        )
        .await?
        .ok_or_else(|| {
            refused(
                "questions_changed",
                "the questions were changed meanwhile; reload them and edit again",
            )
        })?;
    let target = if merchant_id == DEPLOYMENT {
        "deployment questions".to_string()
    } else {
        format!("merchant {merchant_id} questions")
    };
    let details = format!(
        "version {version}: {} questions, {random_count} at random",
        questions.len()
    );
    actor
        .audit(store, "questions_saved", &target, Some(&details))
        .await?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(en: &str, mandatory: bool) -> Question {
        Question {
            en: en.into(),
            hi: None,
            mandatory,
        }
    }

    #[test]
    fn a_call_draws_every_mandatory_question_and_n_of_the_others() {
        let bank = Bank {
            version: 1,
            questions: vec![q("a", true), q("b", false), q("c", false), q("d", false)],
            random_count: 2,
            created_at: None,
        };
        for _ in 0..20 {
            let drawn = bank.draw(None);
            assert_eq!(drawn.len(), 3);
            assert_eq!(drawn.iter().filter(|x| x.en == "a").count(), 1);
            // An agent template's count wins over the bank's (never more than there are).
            assert_eq!(bank.draw(Some(1)).len(), 2);
            assert_eq!(bank.draw(Some(0)).len(), 1);
            assert_eq!(bank.draw(Some(9)).len(), 4);
        }
    }

    #[test]
    fn a_bank_is_checked() {
        assert!(check(vec![q(" ", true)], 0).is_err());
        assert!(check(vec![q("a", true)], 1).is_err());
        assert!(check(vec![q("a", false)], -1).is_err());
        let (out, n) = check(vec![q(" a ", false)], 1).unwrap();
        assert_eq!((out[0].en.as_str(), n), ("a", 1));
    }
}
