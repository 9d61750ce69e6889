//! The customer's side of a `vkyc_link`: the pages at `/v/<key>` and the API they call.
//!
//! A key is either the link's token (40 hex digits, from `vkyc_link`) or an access token
//! from `POST /oauth/token` (64 hex digits, for the journey embedded in a merchant's page);
//! either opens exactly one request. The journey walks the steps its user template lists:
//! the evidence steps (mobile OTP, personal details, consent) in the template's order,
//! then Aadhaar (unless the merchant's `aadhaar_details` stand in), IP, location, devices,
//! then the queue or a booked slot. [`current_step`] derives where a customer is from the
//! request's sub-status and evidence, so a step called out of turn is refused and changes
//! nothing. Every checked step's outcome is a status-machine move stored with its
//! evidence; the evidence steps move no status (the table has none for them).

mod call;
mod checks;
mod digilocker;
mod evidence;
mod pages;
mod queue;

use crate::domain::status::{Actor, Event, Status, SubStatus};
use crate::domain::templates::UserTemplate;
use crate::error::{Error, ErrorType, Result};
use crate::state::AppState;
use crate::store::{Changes, Request, SideWrite};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v/{key}", get(pages::journey_page))
        .route("/v/{key}/api/state", get(state_of))
        .route("/v/{key}/api/otp", post(evidence::send_otp))
        .route("/v/{key}/api/otp/verify", post(evidence::verify_otp))
        .route("/v/{key}/api/details", post(evidence::details))
        .route("/v/{key}/api/consent", post(checks::consent))
        .route("/v/{key}/api/digilocker", post(digilocker::start))
        .route("/v/{key}/digilocker", get(digilocker::back))
        .route("/sandbox/digilocker", get(digilocker::sandbox_page))
        // The upload reads its own body, under `aadhaar_max_upload_bytes`, once the link
        // and the step are known to be good.
        .route("/v/{key}/api/aadhaar", post(checks::aadhaar))
        .route("/v/{key}/api/ip", post(checks::ip))
        .route("/v/{key}/api/location", post(checks::location))
        .route("/v/{key}/api/bandwidth", get(checks::bandwidth))
        .route("/v/{key}/api/devices", post(checks::devices))
        .route("/v/{key}/api/queue", post(queue::join))
        .route(
            "/v/{key}/api/slots",
            get(queue::free_slots)
                .post(queue::book)
                .delete(queue::cancel),
        )
        .route("/v/{key}/ws", get(queue::socket))
        .route("/assets/journey/{*file}", get(pages::asset))
        .route("/embed.js", get(pages::embed_script))
        .route("/brand/{file}", get(pages::brand_logo))
        .merge(call::routes())
}

/// Where a customer is in the journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    MobileOtp,
    PersonalDetails,
    Consent,
    Aadhaar,
    Ip,
    Location,
    Devices,
    /// Checks passed: join the queue or book a slot.
    Waiting,
    Queue,
    Scheduled,
    Call,
    Done,
    Expired,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::MobileOtp => "mobile_otp",
            Step::PersonalDetails => "personal_details",
            Step::Consent => "consent",
            Step::Aadhaar => "aadhaar",
            Step::Ip => "ip",
            Step::Location => "location",
            Step::Devices => "devices",
            Step::Waiting => "waiting",
            Step::Queue => "queue",
            Step::Scheduled => "scheduled",
            Step::Call => "call",
            Step::Done => "done",
            Step::Expired => "expired",
        }
    }
}

/// What besides the sub-status decides the step.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The evidence steps in the user template's order.
    pub evidence_steps: Vec<Step>,
    pub otp_verified: bool,
    pub details_given: bool,
    pub consented: bool,
    /// The merchant sent `aadhaar_details`, so the Aadhaar step is skipped.
    pub aadhaar_given: bool,
    /// The Aadhaar step has succeeded at some point.
    pub aadhaar_done: bool,
    /// The step whose attempt ended last (to tell which step an ambiguous failure
    /// such as USER_LOCATION_OUTSIDE_INDIA came from).
    pub last_step: Option<String>,
}

impl Default for Progress {
    /// The journey before templates had steps: consent first, nothing done.
    fn default() -> Progress {
        Progress {
            evidence_steps: vec![Step::Consent],
            otp_verified: false,
            details_given: false,
            consented: false,
            aadhaar_given: false,
            aadhaar_done: false,
            last_step: None,
        }
    }
}

impl Progress {
    fn done(&self, step: Step) -> bool {
        match step {
            Step::MobileOtp => self.otp_verified,
            Step::PersonalDetails => self.details_given,
            Step::Consent => self.consented,
            _ => true,
        }
    }
}

/// The step a request is at: a pure function of its sub-status and progress.
pub fn current_step(sub: SubStatus, expired: bool, p: &Progress) -> Step {
    use SubStatus as S;
    if expired || sub.status() == Status::Expired {
        return Step::Expired;
    }
    let before_call = matches!(sub.status(), Status::Received | Status::PreVideoCall);
    if before_call {
        if let Some(step) = p.evidence_steps.iter().find(|s| !p.done(**s)) {
            return *step;
        }
    }
    let aadhaar_next = !p.aadhaar_given && !p.aadhaar_done;
    match sub {
        S::LinkGenerated | S::TechnicalFailure if aadhaar_next => Step::Aadhaar,
        S::LinkGenerated | S::TechnicalFailure => Step::Ip,
        S::AadhaarVerificationFailed | S::AadhaarVerificationExpired => Step::Aadhaar,
        S::AadhaarVerificationSuccess | S::UserProxyDetected => Step::Ip,
        S::UserLocationOutsideIndia if p.last_step.as_deref() == Some("ip") => Step::Ip,
        S::UserLocationOutsideIndia
        | S::UserIpVerificationSuccessful
        | S::UserLocationPermissionDisabled => Step::Location,
        S::UserLocationVerificationSuccess | S::UserAudioCheckFailed | S::UserVideoCheckFailed => {
            Step::Devices
        }
        S::UserDeviceCheckSuccess
        | S::NoAgentFound
        | S::UserMeetingCancelled
        | S::UserMissedMeeting
        | S::UserRejectedMeeting
        | S::UserDroppedOff
        | S::AgentDroppedOff => Step::Waiting,
        S::UserQueued | S::ScheduledUserQueued => Step::Queue,
        S::UserMeetingScheduled => Step::Scheduled,
        S::AgentAssignedToUser | S::UserAcceptedMeeting => Step::Call,
        _ => Step::Done,
    }
}

/// A request opened by a journey key, with what the journey knows of it.
pub struct Opened {
    pub request: Request,
    pub progress: Progress,
    pub step: Step,
    /// Opened through an access token (the embedded journey).
    pub embedded: bool,
    /// The version of the user template the request was made under.
    pub user_template: UserTemplate,
}

/// Why a key opens nothing.
pub enum KeyError {
    Unknown,
    Expired,
    Failed(Error),
}

impl From<Error> for KeyError {
    fn from(err: Error) -> KeyError {
        KeyError::Failed(err)
    }
}

impl From<KeyError> for Error {
    fn from(err: KeyError) -> Error {
        match err {
            KeyError::Unknown => Error::new(
                StatusCode::NOT_FOUND,
                ErrorType::ValidationError,
                "link_not_found",
                "this Video KYC link is not valid.",
            ),
            KeyError::Expired => Error::new(
                StatusCode::GONE,
                ErrorType::ValidationError,
                "link_expired",
                "this Video KYC link has expired.",
            ),
            KeyError::Failed(err) => err,
        }
    }
}

pub(super) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Opens the request behind `key`, with its progress and current step.
pub async fn open(state: &AppState, key: &str) -> std::result::Result<Opened, KeyError> {
    let now = crate::clock::now_ms();
    let (request, embedded) = if is_hex(key, 40) {
        (state.store.request_by_token(key).await?, false)
    } else if is_hex(key, 64) {
        let digest = crate::auth::secret_digest(key);
        match state.store.access_token_request(&digest, now).await? {
            Some(id) => (state.store.request_by_id(id).await?, true),
            None => return Err(KeyError::Expired),
        }
    } else {
        return Err(KeyError::Unknown);
    };
    let request = request.ok_or(KeyError::Unknown)?;
    let expired = request.link_expires_at <= now;
    // A request whose personal data was purged (a sandbox request 30 days on) cannot be
    // taken up again: its link is over, as an expired one is.
    if expired || request.sub_status.status() == Status::Expired || request.purged_at.is_some() {
        return Err(KeyError::Expired);
    }
    // Read once here: the progress and the state body (brand, Aadhaar methods) use it.
    let (_, user_template) =
        crate::operations::templates::user_template(&state.store, &request).await?;
    let progress = progress(state, &request, &user_template).await?;
    let step = current_step(request.sub_status, expired, &progress);
    Ok(Opened {
        request,
        progress,
        step,
        embedded,
        user_template,
    })
}

async fn progress(
    state: &AppState,
    request: &Request,
    user_template: &UserTemplate,
) -> Result<Progress> {
    let consented = state.store.consent(request.id).await?.is_some();
    let steps = state.store.steps(request.id).await?;
    let ended = |name: &str| steps.iter().any(|s| s.step == name && s.ended_at.is_some());
    let aadhaar_done = steps.iter().any(|s| {
        s.step == "aadhaar" && s.outcome.as_deref() == Some("AADHAAR_VERIFICATION_SUCCESS")
    });
    let last_step = steps
        .iter()
        .filter(|s| s.ended_at.is_some())
        .max_by_key(|s| s.ended_at)
        .map(|s| s.step.clone());
    // The merchant's details replace the customer's Aadhaar step only where the user
    // template takes them (vkyc_user_okyc_template_v1 always asks for the e-KYC file).
    let takes_details = request.aadhaar_details.is_some() && user_template.takes_merchant_details();
    let evidence_steps = user_template
        .evidence_steps()
        .filter_map(|s| match s {
            "mobile_otp" => Some(Step::MobileOtp),
            "personal_details" => Some(Step::PersonalDetails),
            "consent" => Some(Step::Consent),
            _ => None,
        })
        .collect();
    Ok(Progress {
        evidence_steps,
        otp_verified: ended("mobile_otp"),
        details_given: ended("personal_details"),
        consented,
        aadhaar_given: takes_details,
        aadhaar_done,
        last_step,
    })
}

/// Refuses a call made for a step the journey is not at (nothing changes).
pub fn expect_step(opened: &Opened, steps: &[Step]) -> Result<()> {
    if steps.contains(&opened.step) {
        return Ok(());
    }
    Err(Error::new(
        StatusCode::CONFLICT,
        ErrorType::ValidationError,
        "journey_step_invalid",
        format!(
            "this step is not open now: the journey is at the {} step.",
            opened.step.as_str()
        ),
    ))
}

/// Applies a journey move and its side writes; a lost race or an illegal move is a 409.
pub async fn apply(
    state: &AppState,
    opened: &Opened,
    events: &[Event],
    evidence: Value,
    changes: &Changes,
    sides: Vec<SideWrite>,
) -> Result<Request> {
    state
        .store
        .apply_journey(
            &opened.request,
            events,
            Actor::Customer,
            Some(&evidence),
            changes,
            &sides,
        )
        .await
        .map_err(Error::from)
}

/// The customer's address (behind trusted proxies) and browser.
pub struct Client {
    pub ip: IpAddr,
    pub user_agent: String,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Client> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = crate::auth::client_ip(peer, forwarded, &state.journey.trusted_proxies);
        let user_agent = parts
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(512)
            .collect();
        Ok(Client { ip, user_agent })
    }
}

/// `GET /v/<key>/api/state`: where the journey stands, for the page to draw.
async fn state_of(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Result<axum::Json<Value>> {
    let mut opened = open(&state, &key).await?;
    // An Aadhaar step left open too long ends here, so a returning customer sees it.
    if let Some(moved) = checks::expire_aadhaar_session(&state, &opened).await? {
        opened = reopen(&state, &key, moved).await?;
    }
    if !matches!(opened.step, Step::Done | Step::Expired) {
        state
            .store
            .open_step(opened.request.id, opened.step.as_str())
            .await?;
    }
    Ok(axum::Json(describe(&state, &opened).await?))
}

async fn reopen(state: &AppState, key: &str, _moved: Request) -> Result<Opened> {
    Ok(open(state, key).await?)
}

/// The state body: the step and what the page needs to draw it.
pub async fn describe(state: &AppState, opened: &Opened) -> Result<Value> {
    let r = &opened.request;
    let steps = state.store.steps(r.id).await?;
    let last = steps.iter().rev().find(|s| s.ended_at.is_some());
    let booking = state.store.booking(r.id).await?;
    let started = steps
        .iter()
        .rev()
        .find(|s| s.step == opened.step.as_str() && s.ended_at.is_none())
        .map(|s| s.started_at);
    // The bank's own face, and what to keep ready, from the request's templates.
    let user_template = &opened.user_template;
    let (_, agent_template) = crate::operations::templates::agent_template(&state.store, r).await?;
    let name =
        crate::operations::templates::display_name_under(&state.store, r, user_template).await?;
    let (days, hours) =
        crate::operations::calendar::days_and_hours(&state.store, &state.config).await?;
    let needs = |kind: &str| {
        agent_template
            .captures
            .iter()
            .any(|c| c.kind == kind && c.required)
    };
    let otp = if user_template.has_step("mobile_otp") {
        Some(otp_state(state, r).await?)
    } else {
        None
    };
    // The Aadhaar methods the customer can use here: DigiLocker only where a provider is.
    let methods: Vec<&str> = user_template
        .aadhaar_methods
        .iter()
        .map(String::as_str)
        .filter(|m| *m != "digilocker" || digilocker::provider(state).is_some())
        .collect();
    let logo = user_template.logo_url();
    // What is left of the Aadhaar step's tries in its window, for the page to say.
    let aadhaar_attempts_left = if opened.step == Step::Aadhaar {
        let j = &state.config.journey;
        let since = crate::clock::now_ms() - j.step_attempt_window_minutes as i64 * 60_000;
        let made = state
            .store
            .step_attempts_since(r.id, "aadhaar", since)
            .await?;
        Some((i64::from(j.step_attempts) - made).max(0))
    } else {
        None
    };
    Ok(json!({
        "brand": { "name": name, "colour": user_template.primary_colour, "logo": logo },
        "steps": user_template.steps,
        "languages": user_template.languages,
        "consent_text": user_template.consent_text,
        "personal_details": user_template.personal_details,
        "aadhaar_methods": methods,
        "aadhaar_attempts_left": aadhaar_attempts_left,
        "otp": otp,
        "before_you_start": {
            "minutes": user_template.minutes,
            "pan_card": needs("pan"),
            "paper_and_pen": needs("signature"),
            "days": days,
            "hours": hours,
        },
        "step": opened.step.as_str(),
        "status": r.sub_status.status().as_str(),
        "sub_status": r.sub_status.as_str(),
        "description": r.sub_status.description(),
        "link_expiry": crate::domain::views::iso_millis(r.link_expires_at),
        "aadhaar_required": !opened.progress.aadhaar_given,
        "consented": opened.progress.consented,
        "last_step": last.map(|s| s.step.clone()),
        "last_outcome": last.and_then(|s| s.outcome.clone()),
        "last_reason": last
            .and_then(|s| s.evidence.as_deref())
            .and_then(|e| serde_json::from_str::<Value>(e).ok())
            .and_then(|e| e.get("reason").and_then(Value::as_str).map(str::to_string)),
        "step_started_at": started.map(crate::domain::views::iso_millis),
        "aadhaar_session_seconds": state.config.journey.aadhaar_session_minutes * 60,
        "meeting_schedule": r.meeting_schedule.map(crate::domain::views::iso_seconds),
        "meeting_schedule_text": r.meeting_schedule.map(crate::domain::slots::format_ist),
        "booking_state": booking.map(|b| b.state),
        "embedded": opened.embedded,
        "sandbox": state.config.environment == crate::config::Environment::Sandbox,
    }))
}

/// The mobile OTP as the page shows it: where the code went, what is left, and when.
async fn otp_state(state: &AppState, r: &Request) -> Result<Value> {
    use crate::domain::otp;
    use crate::domain::views::iso_millis;
    let now = crate::clock::now_ms();
    let phone = state
        .store
        .user_by_ref(r.merchant_id, r.user_ref)
        .await?
        .map(|u| otp::masked(&u.phone))
        .unwrap_or_default();
    let row = state.store.otp(r.id).await?.unwrap_or_default();
    let waiting = row.waiting_until(now);
    // A wait that is over starts the counts again (the next send resets them).
    let row = if row.locked_until.is_some() && waiting.is_none() {
        otp::OtpRow {
            sends: 0,
            tries: 0,
            ..row
        }
    } else {
        row
    };
    Ok(json!({
        "to": phone,
        "sent": row.sends > 0,
        "channel": (row.sends > 0).then_some(row.channel.as_str()),
        "expires_at": (row.sends > 0).then(|| iso_millis(row.expires_at)),
        "tries_left": row.tries_left(),
        // Before the first code: the resends after it.
        "resends_left": if row.sends == 0 { otp::MAX_SENDS - 1 } else { row.resends_left() },
        "resend_at": (row.sends > 0).then(|| iso_millis(row.resend_at())),
        "waiting_until": waiting.map(iso_millis),
        "waiting_until_text": waiting.map(crate::domain::slots::format_ist),
        "sandbox_code": (state.config.environment == crate::config::Environment::Sandbox)
            .then_some(otp::SANDBOX_CODE),
    }))
}
