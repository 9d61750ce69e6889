//! What an operator does to a case's retention: legal holds and their release, and the
//! day the business relationship ended. The command line and the admin console share
//! these, and the store writes each change with its staff audit row.

use super::{invalid, missing, refused, Actor};
use crate::clock::now_ms;
use crate::domain::retention::parse_relationship_end;
use crate::domain::status::SubStatus;
use crate::error::Result;
use crate::store::{By, CaseChange, Request, Store};

/// The longest reason kept with a hold or a release.
pub const MAX_REASON_CHARS: usize = 500;

/// The case a command names: by reference id, or by verification_id (with the merchant's
/// client id when several merchants used the same one).
pub async fn find(
    store: &Store,
    reference_id: Option<i64>,
    verification_id: Option<&str>,
    client_id: Option<&str>,
) -> Result<Request> {
    let not_found = || missing("case_not_found", "no such case");
    if let Some(id) = reference_id {
        return store.request_by_id(id).await?.ok_or_else(not_found);
    }
    let Some(vid) = verification_id else {
        return Err(invalid(
            "case_missing",
            "name the case: --reference-id, or --verification-id (and --merchant)",
        ));
    };
    let mut found = store.requests_by_verification_id(vid).await?;
    if let Some(client_id) = client_id {
        let merchant = super::merchants::find(store, client_id).await?;
        found.retain(|r| r.merchant_id == merchant.id);
    }
    match found.len() {
        0 => Err(not_found()),
        1 => Ok(found.remove(0)),
        _ => Err(invalid(
            "case_ambiguous",
            "several merchants used that verification_id: add --merchant <client id>",
        )),
    }
}

fn by(actor: &Actor) -> (Option<i64>, Option<String>, String) {
    match actor {
        Actor::Cli => (None, None, "vkyc cli".into()),
        Actor::Admin { staff_id, ip } => (
            Some(*staff_id),
            Some(ip.clone()),
            format!("staff {staff_id}"),
        ),
    }
}

fn reason(text: &str) -> Result<&str> {
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid(
            "reason_missing",
            "give the reason (it is kept and audited)",
        ));
    }
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(invalid(
            "reason_too_long",
            "the reason is at most 500 characters",
        ));
    }
    Ok(text)
}

fn purged() -> crate::error::Error {
    refused(
        "case_purged",
        "this case's personal data has been removed already",
    )
}

/// Places a legal hold: the case is never purged while it stands.
pub async fn hold(store: &Store, actor: &Actor, request: &Request, why: &str) -> Result<()> {
    let why = reason(why)?;
    let (staff_id, ip, name) = by(actor);
    let by = By {
        staff_id,
        ip: ip.as_deref(),
        name: &name,
    };
    match store.place_hold(request.id, why, &by, now_ms()).await? {
        CaseChange::Done => Ok(()),
        CaseChange::Purged => Err(purged()),
        CaseChange::Unchanged => Err(refused("case_already_held", "the case is on hold already")),
    }
}

/// Releases a legal hold: the case falls under its retention rule again.
pub async fn release(store: &Store, actor: &Actor, request: &Request, why: &str) -> Result<()> {
    let why = reason(why)?;
    let (staff_id, ip, name) = by(actor);
    let by = By {
        staff_id,
        ip: ip.as_deref(),
        name: &name,
    };
    match store.release_hold(request.id, why, &by, now_ms()).await? {
        CaseChange::Done => Ok(()),
        _ => Err(refused("case_not_held", "the case is not on hold")),
    }
}

/// Records the day the business relationship ended (approved cases only).
pub async fn relationship_end(
    store: &Store,
    actor: &Actor,
    request: &Request,
    date: &str,
) -> Result<()> {
    let now = now_ms();
    parse_relationship_end(date, now).map_err(|why| invalid("date_invalid", why))?;
    if request.sub_status != SubStatus::AuditorApproved {
        return Err(refused(
            "case_not_approved",
            format!(
                "only an approved case has a relationship; this one is {}",
                request.sub_status
            ),
        ));
    }
    let (staff_id, ip, name) = by(actor);
    let by = By {
        staff_id,
        ip: ip.as_deref(),
        name: &name,
    };
    match store
        .set_relationship_end(request.id, date, &by, now)
        .await?
    {
        CaseChange::Done => Ok(()),
        CaseChange::Purged => Err(purged()),
        CaseChange::Unchanged => Err(missing("case_not_found", "no such case")),
    }
}
