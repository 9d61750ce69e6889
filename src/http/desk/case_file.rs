//! The case file: everything recorded about one request, in one JSON document, for the
//! admin's and auditor's screen and for the export. The Aadhaar number appears only
//! masked (only its last four digits are ever stored), and the customer's link token is
//! cut out of the messages sent to them (it would let the reader act as the customer).

use crate::domain::recording_links::reference;
use crate::domain::templates::Kind;
use crate::domain::views::{iso_millis, iso_seconds};
use crate::error::Result;
use crate::state::AppState;
use crate::store::Request;
use base64::Engine;
use serde_json::{json, Value};

/// Where a capture or recording of the case file lives, for the export.
pub struct Media {
    /// (capture id, file name in the export)
    pub captures: Vec<(i64, String)>,
    /// (file name in the export, where the recording is kept)
    pub recordings: Vec<(String, crate::storage::StoredRecording)>,
    /// The Aadhaar photo (JPEG) and its file name.
    pub aadhaar_photo: Option<(Vec<u8>, String)>,
}

/// How the case file is being read: on the desk (with links to the stills and signed
/// recording links) or for the export (with the names of the files beside it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Desk,
    Export,
}

/// `XXXX XXXX 1234`.
pub fn masked_aadhaar(last4: &str) -> Option<String> {
    (last4.len() == 4 && last4.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("XXXX XXXX {last4}"))
}

fn parse(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

pub async fn build(
    state: &AppState,
    request: &Request,
    purpose: Purpose,
) -> Result<(Value, Media)> {
    let store = &state.store;
    let id = request.id;
    let now = crate::clock::now_ms();
    let mut media = Media {
        captures: Vec::new(),
        recordings: Vec::new(),
        aadhaar_photo: None,
    };
    let user = store
        .user_by_ref(request.merchant_id, request.user_ref)
        .await?;
    let merchant = store.merchant_name(request.merchant_id).await?;

    let timeline: Vec<Value> = store
        .history(id)
        .await?
        .into_iter()
        .map(|h| {
            json!({ "time": iso_millis(h.at), "actor": h.actor, "event": h.event,
                    "from_sub_status": h.from_sub_status, "to_sub_status": h.to_sub_status,
                    "details": parse(h.details.as_deref()) })
        })
        .collect();

    let steps = store.steps(id).await?;
    let evidence_of = |step: &str| {
        steps
            .iter()
            .rev()
            .find(|s| s.step == step && s.ended_at.is_some())
            .map(|s| {
                json!({ "outcome": s.outcome, "time": s.ended_at.map(iso_millis),
                             "evidence": parse(s.evidence.as_deref()) })
            })
            .unwrap_or(Value::Null)
    };
    let journey: Vec<Value> = steps
        .iter()
        .map(|s| {
            json!({ "step": s.step, "started_at": iso_millis(s.started_at),
                    "ended_at": s.ended_at.map(iso_millis), "outcome": s.outcome,
                    "evidence": parse(s.evidence.as_deref()) })
        })
        .collect();

    let consent = store.consent_text(id).await?.map(|c| {
        json!({ "time": iso_millis(c.at), "ip": c.ip, "user_agent": c.user_agent,
                "lang": c.lang, "text": c.text, "text_sha256": c.text_sha256 })
    });

    let aadhaar = match store.aadhaar_kyc(id).await? {
        None => Value::Null,
        Some((source, details)) => {
            // Only last four digits are stored; redacting again costs nothing and keeps a
            // full number out of this file whatever a merchant once sent.
            let details: Value =
                serde_json::from_str(&crate::checks::aadhaar::redact_aadhaar_numbers(&details))
                    .unwrap_or(Value::Null);
            let ekyc = evidence_of("aadhaar");
            let checked = |key: &str| {
                ekyc["evidence"]
                    .get(key)
                    .cloned()
                    .unwrap_or(json!("not_available"))
            };
            let mut a = json!({
                "source": source,
                "number": details["aadhaar_last4"].as_str().and_then(masked_aadhaar),
                "name": details["name"], "dob": details["dob"], "gender": details["gender"],
                "address": details.get("address").or(details.get("split_address")),
                // The merchant's `care_of`, or the e-KYC file's `careof` (in its address).
                "care_of": details.get("care_of").or(details["address"].get("careof")),
                "checks": { "mobile": checked("mobile"), "name": checked("name") },
                "details": details,
            });
            if let Some(photo) = store.aadhaar_photo(id).await? {
                let file = "aadhaar_photo.jpg".to_string();
                a["photo"] = match purpose {
                    Purpose::Desk => json!(format!(
                        "data:image/jpeg;base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(&photo)
                    )),
                    Purpose::Export => json!(file),
                };
                media.aadhaar_photo = Some((photo, file));
            }
            a
        }
    };

    let mut calls = Vec::new();
    for call in store.calls_for_request(id).await? {
        let agent = store.staff_by_id(call.agent_id).await?.map(|s| s.username);
        let mut captures = Vec::new();
        for c in store.captures(call.id).await? {
            let file = format!("captures/capture-{}-{}.jpg", c.id, c.kind);
            let mut item = json!({ "id": c.id, "kind": c.kind, "time": iso_millis(c.at) });
            match purpose {
                Purpose::Desk => {
                    item["url"] = json!(format!("/desk/api/cases/{id}/captures/{}", c.id))
                }
                Purpose::Export => item["file"] = json!(file),
            }
            media.captures.push((c.id, file));
            captures.push(item);
        }
        let stored = store.stored_recording(&call)?;
        let recording = stored.map(|stored| {
            let file = format!("recordings/call-{}.webm", call.id);
            let mut r = json!({ "bytes": call.recording_bytes, "duration_ms": call.duration_ms });
            match purpose {
                Purpose::Desk => {
                    r["url"] = json!(state.signer.link(&state.base_url, &reference(call.id), now))
                }
                Purpose::Export => r["file"] = json!(file),
            }
            media.recordings.push((file, stored));
            r
        });
        calls.push(json!({
            "id": call.id,
            "agent": agent,
            "state": call.state,
            "invited_at": iso_millis(call.invited_at),
            "accepted_at": call.accepted_at.map(iso_millis),
            "ended_at": call.ended_at.map(iso_millis),
            "ended_by": call.ended_by,
            "duration_ms": call.duration_ms,
            "liveness_code": call.liveness_code,
            "liveness_result": call.liveness_result,
            "questions": parse(Some(&call.questions)),
            "pan": call.pan,
            "decision": call.decision,
            "remarks": call.remarks,
            "decided_at": call.decided_at.map(iso_millis),
            "quality": crate::calls::quality(state, &call).await,
            "captures": captures,
            "recording": recording,
        }));
    }

    let reviews: Vec<Value> = store
        .audit_reviews(id)
        .await?
        .into_iter()
        .map(|r| {
            json!({ "auditor": r.auditor, "decision": r.decision, "remarks": r.remarks,
                         "time": iso_millis(r.at) })
        })
        .collect();

    let webhooks: Vec<Value> = store
        .case_deliveries(id)
        .await?
        .into_iter()
        .map(|d| {
            let attempts: Vec<Value> = d
                .attempts
                .iter()
                .map(|a| {
                    json!({ "attempt": a.attempt, "time": iso_millis(a.at),
                                 "latency_ms": a.latency_ms, "status_code": a.status_code,
                                 "response": a.response_snippet, "error": a.error })
                })
                .collect();
            json!({ "id": d.id, "event_id": d.event_id, "event_type": d.event_type,
                    "seq": d.seq, "url": d.url, "status": d.status,
                    "created_at": iso_millis(d.created_at),
                    "delivered_at": d.delivered_at.map(iso_millis), "attempts": attempts })
        })
        .collect();

    let cut =
        |text: Option<String>| text.map(|t| t.replace(&request.link_token, "[link token removed]"));
    let notifications: Vec<Value> = store
        .notifications_for(id)
        .await?
        .into_iter()
        .map(|n| {
            json!({ "channel": n.channel, "kind": n.kind, "recipient": n.recipient,
                    "subject": n.subject, "body": cut(n.body), "state": n.state,
                    "attempts": n.attempts, "error": n.last_error,
                    "created_at": iso_millis(n.created_at), "sent_at": n.sent_at.map(iso_millis) })
        })
        .collect();

    let location = evidence_of("location");
    let (hold, relationship_end, purged_at) = store.retention_state(id).await?;
    let retention = json!({
        "legal_hold": hold.map(|h| json!({ "reason": h.reason, "by": h.held_by,
                                          "since": iso_millis(h.held_at) })),
        "relationship_end": relationship_end,
        "personal_data_purged_at": purged_at.map(iso_millis),
    });
    // The versions the request was made under, whole: the export must say what the
    // agent's checklist was, whatever the template says today.
    let mut templates = json!({});
    for kind in [Kind::User, Kind::Agent] {
        let t = crate::operations::templates::of_request(store, kind, request).await?;
        templates[kind.as_str()] = json!({ "name": t.name, "version": t.version,
                                           "body": parse(Some(&t.body)) });
    }
    // The bank as the customer saw it: its name and logo on every journey page.
    let (_, user_template) = crate::operations::templates::user_template(store, request).await?;
    let display_name =
        crate::operations::templates::display_name_under(store, request, &user_template).await?;
    let brand_logo = user_template.logo_url();
    let view = json!({
        "display_name": display_name,
        "brand_logo": brand_logo,
        "reference_id": request.id,
        "verification_id": request.verification_id,
        "merchant": merchant,
        "templates": templates,
        "status": request.sub_status.status().as_str(),
        "sub_status": request.sub_status.as_str(),
        "sub_status_description": request.sub_status.description(),
        "created_at": iso_millis(request.created_at),
        "link_expiry": iso_millis(request.link_expires_at),
        "meeting_schedule": request.meeting_schedule.map(iso_seconds),
        "agent_remarks": request.agent_remarks,
        "auditor_remarks": request.auditor_remarks,
        "user": {
            "user_id": request.user_id,
            "user_reference_id": request.user_ref,
            "name": user.as_ref().and_then(|u| u.name.clone()),
            "phone": user.as_ref().map(|u| u.phone.clone()),
            "email": user.as_ref().and_then(|u| u.email.clone()),
            "address": user.as_ref().and_then(|u| u.address.clone()),
        },
        "timeline": timeline,
        "journey": journey,
        "consent": consent,
        "personal_details": crate::operations::templates::personal_details_view(store, request).await?,
        "aadhaar": aadhaar,
        "location": location,
        "ip": evidence_of("ip"),
        "devices": evidence_of("devices"),
        "calls": calls,
        "reviews": reviews,
        "webhooks": webhooks,
        "notifications": notifications,
        "retention": retention,
    });
    Ok((view, media))
}
