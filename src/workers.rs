//! Background work. Each worker is a loop around a single step that tests can call
//! directly; the loop only adds the timer and the shutdown.

use crate::status::{Actor, Event};
use crate::store::{now_ms, Store};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many expired links one step moves at most.
pub const EXPIRY_BATCH: i64 = 2_000;

/// One pass of the expiry worker: moves every request whose link expired by `now` and
/// that has not reached the call to `EXPIRED` / `VKYC_EXPIRED`. Returns how many moved.
/// A request that another process or a customer moved first is left alone (the next
/// pass sees its new state).
pub async fn expire_due(store: &Store, now: i64) -> anyhow::Result<usize> {
    let mut moved = 0;
    loop {
        let due = store.due_expiries(now, EXPIRY_BATCH).await?;
        // One transaction (one commit) and a few statements per batch: 100,000 links due
        // in the same minute take 50 commits, not 100,000.
        let outcomes = store
            .apply_each(&due, Event::LinkExpired, Actor::System)
            .await?;
        let progressed = outcomes.iter().filter(|o| o.is_ok()).count();
        moved += progressed;
        if (due.len() as i64) < EXPIRY_BATCH || progressed == 0 {
            return Ok(moved);
        }
    }
}

pub async fn run_expiry(store: Store, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match expire_due(&store, now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "links expired"),
            Err(err) => tracing::warn!(error = ?err, "expiry pass failed; retrying"),
        }
    }
}

/// Runs the queue's sweep ([`crate::journey::sweep`]) every few seconds.
pub async fn run_journey(state: crate::app::AppState, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match crate::journey::sweep(&state, now_ms()).await {
            Ok(done) if done == Default::default() => {}
            Ok(done) => tracing::info!(?done, "queue sweep"),
            Err(err) => tracing::warn!(error = %err, "queue sweep failed; retrying"),
        }
    }
}

/// How many times a message is tried before it is marked failed.
pub const NOTIFY_ATTEMPTS: i64 = 5;

/// One pass of the notification worker: renders each pending message for its channel
/// and either records it (sandbox: shown to the merchant, never sent) or sends it.
pub async fn send_notifications(
    state: &crate::app::AppState,
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
                Ok(Some(b)) => Some(crate::slots::format_ist(b.slot_start)),
                _ => None,
            };
            let merchant = state
                .store
                .merchant_name(request.merchant_id)
                .await
                .unwrap_or_default();
            let params = Params {
                name: user.name.clone().unwrap_or_default(),
                link: format!("{}/v/{}", state.base_url, request.link_token),
                slot_start: slot,
                merchant,
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
    state: crate::app::AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut settings = state.config.notify.clone();
    // An empty string in the file means "not configured".
    settings.smtp_url = settings.smtp_url.filter(|s| !s.is_empty());
    settings.email_from = settings.email_from.filter(|s| !s.is_empty());
    let notifier = crate::notify::Notifier::new(&settings)
        .map_err(|e| anyhow::anyhow!("notification settings: {e}"))?;
    Ok(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if let Err(err) = send_notifications(&state, &notifier).await {
                tracing::warn!(error = %err, "sending notifications failed; retrying");
            }
        }
    })
}
