//! The notification worker: the outbox of messages to customers (email, SMS, WhatsApp),
//! rendered per channel and sent, or recorded on a sandbox.

use crate::clock::now_ms;
use crate::state::AppState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many times a message is tried before it is marked failed.
pub const NOTIFY_ATTEMPTS: i64 = 5;

/// One pass of the notification worker: renders each pending message for its channel
/// and either records it (sandbox: shown to the merchant, never sent) or sends it.
pub async fn send_notifications(
    state: &AppState,
    notifier: &crate::notify::Notifier,
) -> crate::error::Result<usize> {
    use crate::notify::{render, Channel, Kind, Lang, Params};
    let now = now_ms();
    let pending = state.store.pending_notifications(now, 100).await?;
    let sandbox = state.config.environment == crate::config::Environment::Sandbox;
    for n in &pending {
        // Several processes may run this worker: each message is sent by the one that
        // claims it. A claim outlives any send (10 s timeout) and lapses after a crash.
        if !state
            .store
            .claim_notification(n.id, now, now + 60_000)
            .await?
        {
            continue;
        }
        let fail = |error: String| (None::<crate::notify::Message>, error);
        let prepared = async {
            let channel = Channel::parse(&n.channel)
                .ok_or_else(|| fail(format!("unknown channel {:?}", n.channel)))?;
            let kind = match n.kind.as_str() {
                "link" => Kind::Link,
                "slot_booked" => Kind::SlotBooked,
                "slot_reminder" => Kind::SlotReminder,
                "slot_cancelled" => Kind::SlotCancelled,
                other => return Err(fail(format!("unknown message kind {other:?}"))),
            };
            let request = state
                .store
                .request_by_id(n.request_id)
                .await
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail("the request is gone".into()))?;
            let user = state
                .store
                .user_by_ref(request.merchant_id, request.user_ref)
                .await
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail("the user is gone".into()))?;
            let to = match channel {
                Channel::Email => user.email.clone(),
                Channel::Sms | Channel::Whatsapp => Some(user.phone.clone()),
            }
            .ok_or_else(|| fail("the user has no email address".into()))?;
            let to =
                crate::notify::validate_address(channel, &to).map_err(|e| fail(e.to_string()))?;
            let lang = match state.store.consent(request.id).await {
                Ok(Some(c)) if c.lang == "hi" => Lang::Hi,
                _ => Lang::En,
            };
            let slot = match state.store.booking(request.id).await {
                Ok(Some(b)) => Some(crate::domain::slots::format_ist(b.slot_start)),
                _ => None,
            };
            // The bank's name as its user template shows it to the customer.
            let merchant = crate::operations::templates::display_name(&state.store, &request)
                .await
                .unwrap_or_default();
            let params = Params {
                name: user.name.clone().unwrap_or_default(),
                link: format!("{}/v/{}", state.base_url, request.link_token),
                slot_start: slot,
                merchant,
                code: String::new(),
            };
            Ok(render(channel, kind, lang, &to, &params))
        }
        .await;
        let (state_after, message, error) = match prepared {
            Err((_, error)) => ("failed", None, Some(error)),
            Ok(message) if sandbox => ("recorded", Some(message), None),
            Ok(message) => match notifier.send(&message).await {
                Ok(()) => ("sent", Some(message), None),
                Err(err) if n.attempts + 1 < NOTIFY_ATTEMPTS => {
                    ("pending", Some(message), Some(err.to_string()))
                }
                Err(err) => ("failed", Some(message), Some(err.to_string())),
            },
        };
        state
            .store
            .finish_notification(
                n.id,
                state_after,
                message.as_ref().map(|m| m.to.as_str()),
                message.as_ref().map(|m| m.subject.as_str()),
                message.as_ref().map(|m| m.body.as_str()),
                error.as_deref(),
            )
            .await?;
    }
    Ok(pending.len())
}

/// Builds the notifier from the configuration and returns its worker loop.
pub fn run_notifications(
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let notifier = crate::notify::Notifier::from_config(&state.config.notify)
        .map_err(|e| anyhow::anyhow!("notification settings: {e}"))?;
    Ok(async move {
        super::repeat(Duration::from_secs(1), shutdown, || async {
            if let Err(err) = send_notifications(&state, &notifier).await {
                tracing::warn!(error = %err, "sending notifications failed; retrying");
            }
        })
        .await
    })
}
