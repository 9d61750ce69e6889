//! The journey's evidence steps that move no status: the mobile OTP (its counts and the
//! code's hash) and the personal-details form (sealed). Each closes its step's row in
//! `journey_steps`, inside the audit chain, in the transaction that decides it.

use super::chain::Wrote;
use super::Store;
use crate::clock::now_ms;
use crate::domain::otp::{self, OtpRow};
use crate::error::Result;
use sqlx::Row;

/// What a send or a try was allowed to do.
#[derive(Debug)]
pub enum OtpCount {
    /// Counted: the row after the count.
    Counted(OtpRow),
    /// The step waits until this time (tries or sends spent).
    Waiting(i64),
    /// A resend asked for too soon: the next may go at this time.
    TooSoon(i64),
    /// No code was sent yet (a try).
    NotSent,
}

const OTP_COLUMNS: &str =
    "code_hash, channel, sent_at, expires_at, sends, tries, locked_until, verified_at";

fn otp_from_row(r: &sqlx::any::AnyRow) -> Result<OtpRow, sqlx::Error> {
    Ok(OtpRow {
        code_hash: r.try_get("code_hash")?,
        channel: r.try_get("channel")?,
        sent_at: r.try_get("sent_at")?,
        expires_at: r.try_get("expires_at")?,
        sends: r.try_get("sends")?,
        tries: r.try_get("tries")?,
        locked_until: r.try_get("locked_until")?,
        verified_at: r.try_get("verified_at")?,
    })
}

/// Ends the open attempt at an evidence step (or records one that opened and ended now).
async fn close_step(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    request_id: i64,
    step: &str,
    outcome: &str,
    evidence: &serde_json::Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    let evidence = evidence.to_string();
    let closed = sqlx::query(
        "UPDATE journey_steps SET ended_at = $1, outcome = $2, evidence = $3 \
         WHERE request_id = $4 AND step = $5 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(outcome)
    .bind(&evidence)
    .bind(request_id)
    .bind(step)
    .execute(&mut **tx)
    .await?;
    if closed.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO journey_steps (request_id, step, started_at, ended_at, outcome, \
             evidence) VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(request_id)
        .bind(step)
        .bind(now)
        .bind(outcome)
        .bind(&evidence)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    pub async fn otp(&self, request_id: i64) -> Result<Option<OtpRow>> {
        let row = sqlx::query(&format!(
            "SELECT {OTP_COLUMNS} FROM journey_otps WHERE request_id = $1"
        ))
        .bind(request_id)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.as_ref().map(otp_from_row).transpose()?)
    }

    /// Counts a send of a new code (its hash given) before it goes out: refused while
    /// the step waits, sooner than [`otp::RESEND_AFTER_MS`] after the last, or past
    /// [`otp::MAX_SENDS`] (which starts the wait). One statement each, so two pages
    /// asking at once cannot both pass a limit.
    pub async fn count_otp_send(
        &self,
        request_id: i64,
        code_hash: &str,
        channel: &str,
        now: i64,
    ) -> Result<OtpCount> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO journey_otps (request_id, code_hash, channel, sent_at, expires_at, \
             sends, tries) VALUES ($1, '', $2, 0, 0, 0, 0) ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(request_id)
        .bind(channel)
        .execute(&mut *tx)
        .await?;
        // A wait that is over starts the counts again.
        sqlx::query(
            "UPDATE journey_otps SET sends = 0, tries = 0, locked_until = NULL \
             WHERE request_id = $1 AND locked_until <= $2",
        )
        .bind(request_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let counted = sqlx::query(&format!(
            "UPDATE journey_otps SET sends = sends + 1, code_hash = $1, channel = $2, \
             sent_at = $3, expires_at = $4 WHERE request_id = $5 AND verified_at IS NULL \
             AND locked_until IS NULL AND sends < $6 AND sent_at <= $7 RETURNING {OTP_COLUMNS}"
        ))
        .bind(code_hash)
        .bind(channel)
        .bind(now)
        .bind(now + otp::VALID_MS)
        .bind(request_id)
        .bind(otp::MAX_SENDS)
        .bind(now - otp::RESEND_AFTER_MS)
        .fetch_optional(&mut *tx)
        .await?;
        let answer = match counted {
            Some(row) => OtpCount::Counted(otp_from_row(&row)?),
            None => {
                let row = sqlx::query(&format!(
                    "SELECT {OTP_COLUMNS} FROM journey_otps WHERE request_id = $1"
                ))
                .bind(request_id)
                .fetch_one(&mut *tx)
                .await?;
                let row = otp_from_row(&row)?;
                if let Some(until) = row.waiting_until(now) {
                    OtpCount::Waiting(until)
                } else if row.sends >= otp::MAX_SENDS {
                    // The sends are spent: the step waits from the last one.
                    let until = row.sent_at.max(now - otp::RESEND_AFTER_MS) + otp::WAIT_MS;
                    sqlx::query("UPDATE journey_otps SET locked_until = $1 WHERE request_id = $2")
                        .bind(until)
                        .bind(request_id)
                        .execute(&mut *tx)
                        .await?;
                    OtpCount::Waiting(until)
                } else {
                    OtpCount::TooSoon(row.resend_at())
                }
            }
        };
        tx.commit().await?;
        Ok(answer)
    }

    /// Counts a try before the code is compared: refused while the step waits or when no
    /// code was sent. The fifth wrong try starts the wait ([`Store::otp_wrong`]).
    pub async fn count_otp_try(&self, request_id: i64, now: i64) -> Result<OtpCount> {
        let counted = sqlx::query(&format!(
            "UPDATE journey_otps SET tries = tries + 1 WHERE request_id = $1 \
             AND verified_at IS NULL AND sends > 0 AND tries < $2 \
             AND (locked_until IS NULL OR locked_until <= $3) RETURNING {OTP_COLUMNS}"
        ))
        .bind(request_id)
        .bind(otp::MAX_TRIES)
        .bind(now)
        .fetch_optional(&self.write)
        .await?;
        if let Some(row) = counted {
            return Ok(OtpCount::Counted(otp_from_row(&row)?));
        }
        Ok(match self.otp(request_id).await? {
            None => OtpCount::NotSent,
            Some(row) if row.sends == 0 => OtpCount::NotSent,
            Some(row) => OtpCount::Waiting(row.locked_until.unwrap_or(now + otp::WAIT_MS)),
        })
    }

    /// A wrong code that spent the last try: the step waits.
    pub async fn otp_wait(&self, request_id: i64, until: i64) -> Result<()> {
        sqlx::query("UPDATE journey_otps SET locked_until = $1 WHERE request_id = $2")
            .bind(until)
            .bind(request_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The right code: the number is confirmed, the step closed with its evidence.
    pub async fn otp_verified(&self, request_id: i64, evidence: &serde_json::Value) -> Result<()> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE journey_otps SET verified_at = $1 WHERE request_id = $2")
            .bind(now)
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
        close_step(
            &mut tx,
            request_id,
            "mobile_otp",
            "MOBILE_VERIFIED",
            evidence,
            now,
        )
        .await?;
        self.seal(&mut tx, &[request_id], Wrote::STEPS).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a message sent (or, on a sandbox, recorded) outside the outbox: the OTP,
    /// which is sent as it is made so that its code is never stored.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_notification(
        &self,
        request_id: i64,
        channel: &str,
        kind: &str,
        state: &str,
        recipient: &str,
        body: &str,
        error: Option<&str>,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO notifications (request_id, channel, kind, state, attempts, created_at, \
             recipient, subject, body, last_error, sent_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $6, '', $7, $8, $9)",
        )
        .bind(request_id)
        .bind(channel)
        .bind(kind)
        .bind(state)
        .bind(now)
        .bind(recipient)
        .bind(body)
        .bind(error)
        .bind((state != "failed").then_some(now))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- personal details ----

    /// Stores the filled form, sealed, and closes its step with the form's digest; false
    /// when a form was stored already (another page was first).
    pub async fn insert_personal_details(
        &self,
        request_id: i64,
        details: &str,
        evidence: &serde_json::Value,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        if !self.key_is_current_in(&mut tx).await? {
            return Err(super::sealed::key_changed());
        }
        let stored = sqlx::query(
            "INSERT INTO personal_details (request_id, details, at) VALUES ($1, $2, $3) \
             ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(request_id)
        .bind(self.seal_text(details))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if stored.rows_affected() == 0 {
            return Ok(false);
        }
        close_step(
            &mut tx,
            request_id,
            "personal_details",
            "DETAILS_GIVEN",
            evidence,
            now,
        )
        .await?;
        self.seal(&mut tx, &[request_id], Wrote::STEPS).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The filled form (JSON), opened.
    pub async fn personal_details(&self, request_id: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT details FROM personal_details WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| -> Result<String> { self.open_text(&r.try_get::<String, _>("details")?) })
            .transpose()
    }
}
