//! The status machine: every `status` / `sub_status` pair a Video KYC request can be in,
//! the events that move it, and which moves are legal.
//!
//! This module is pure data and pure functions (no I/O), so it can be tested pair by pair
//! and event by event. Nothing else in the crate decides whether a move is legal: the
//! store asks [`next`] and applies the answer together with a history row.
//!
//! A request's state is its sub-status: each sub-status belongs to exactly one status
//! (phase), so the pair is derived with [`SubStatus::status`].

use std::collections::{HashMap, VecDeque};
use std::fmt;

/// The phase of a request, the `status` field of `GET /vkyc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Received,
    Expired,
    PreVideoCall,
    VideoCall,
    Failed,
    AgentReviewed,
    AuditorReviewed,
    Rejected,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Received,
        Status::Expired,
        Status::PreVideoCall,
        Status::VideoCall,
        Status::Failed,
        Status::AgentReviewed,
        Status::AuditorReviewed,
        Status::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "RECEIVED",
            Status::Expired => "EXPIRED",
            Status::PreVideoCall => "PRE_VIDEO_CALL",
            Status::VideoCall => "VIDEO_CALL",
            Status::Failed => "FAILED",
            Status::AgentReviewed => "AGENT_REVIEWED",
            Status::AuditorReviewed => "AUDITOR_REVIEWED",
            Status::Rejected => "REJECTED",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! sub_statuses {
    ($( $variant:ident => $text:literal, $status:ident, $description:literal; )*) => {
        /// The `sub_status` field of `GET /vkyc`: the state of a request.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SubStatus { $( $variant, )* }

        impl SubStatus {
            pub const ALL: &'static [SubStatus] = &[ $( SubStatus::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( SubStatus::$variant => $text, )* }
            }

            /// The phase this sub-status belongs to.
            pub fn status(self) -> Status {
                match self { $( SubStatus::$variant => Status::$status, )* }
            }

            /// The meaning given in the status table.
            pub fn description(self) -> &'static str {
                match self { $( SubStatus::$variant => $description, )* }
            }
        }
    };
}

sub_statuses! {
    LinkGenerated => "LINK_GENERATED", Received, "Cashfree generated the Video KYC link successfully.";
    VkycExpired => "VKYC_EXPIRED", Expired, "The Video KYC link has expired.";
    AadhaarVerificationSuccess => "AADHAAR_VERIFICATION_SUCCESS", PreVideoCall, "Aadhaar verification succeeded.";
    AadhaarVerificationFailed => "AADHAAR_VERIFICATION_FAILED", PreVideoCall, "Aadhaar verification failed.";
    AadhaarVerificationExpired => "AADHAAR_VERIFICATION_EXPIRED", PreVideoCall, "The Aadhaar verification session expired.";
    UserIpVerificationSuccessful => "USER_IP_VERIFICATION_SUCCESSFUL", PreVideoCall, "IP address verification succeeded.";
    UserProxyDetected => "USER_PROXY_DETECTED", PreVideoCall, "Cashfree detected a proxy or VPN.";
    TechnicalFailure => "TECHNICAL_FAILURE", PreVideoCall, "A technical issue occurred during verification.";
    UserLocationVerificationSuccess => "USER_LOCATION_VERIFICATION_SUCCESS", PreVideoCall, "Location verification succeeded.";
    UserLocationOutsideIndia => "USER_LOCATION_OUTSIDE_INDIA", PreVideoCall, "The user is outside India.";
    UserAudioCheckFailed => "USER_AUDIO_CHECK_FAILED", PreVideoCall, "Microphone access is not enabled.";
    UserVideoCheckFailed => "USER_VIDEO_CHECK_FAILED", PreVideoCall, "Camera access is not enabled.";
    UserLocationPermissionDisabled => "USER_LOCATION_PERMISSION_DISABLED", PreVideoCall, "The user did not grant location access.";
    UserDeviceCheckSuccess => "USER_DEVICE_CHECK_SUCCESS", PreVideoCall, "The device passed all checks.";
    UserQueued => "USER_QUEUED", PreVideoCall, "The user is waiting for an available agent.";
    ScheduledUserQueued => "SCHEDULED_USER_QUEUED", PreVideoCall, "The user is queued for a scheduled appointment.";
    NoAgentFound => "NO_AGENT_FOUND", PreVideoCall, "No agent is available at this time.";
    AgentAssignedToUser => "AGENT_ASSIGNED_TO_USER", PreVideoCall, "Cashfree assigned an agent to the user.";
    UserMeetingScheduled => "USER_MEETING_SCHEDULED", PreVideoCall, "Cashfree scheduled the user meeting successfully.";
    UserMeetingCancelled => "USER_MEETING_CANCELLED", PreVideoCall, "The user meeting was cancelled.";
    UserAcceptedMeeting => "USER_ACCEPTED_MEETING", VideoCall, "The user accepted the meeting invitation.";
    UserRejectedMeeting => "USER_REJECTED_MEETING", VideoCall, "The user rejected the meeting invitation.";
    UserMissedMeeting => "USER_MISSED_MEETING", VideoCall, "The user missed the scheduled meeting.";
    UserDroppedOff => "USER_DROPPED_OFF", VideoCall, "The user disconnected during verification.";
    AgentDroppedOff => "AGENT_DROPPED_OFF", VideoCall, "The agent disconnected during verification.";
    UserEndedCall => "USER_ENDED_CALL", VideoCall, "The user ended the call.";
    AgentEndedCall => "AGENT_ENDED_CALL", VideoCall, "The agent ended the call.";
    TechnicalError => "TECHNICAL_ERROR", Failed, "A technical error occurred during verification.";
    AgentApproved => "AGENT_APPROVED", AgentReviewed, "The agent approved the KYC verification.";
    AgentRejected => "AGENT_REJECTED", AgentReviewed, "The agent rejected the KYC verification.";
    AgentUnableToValidate => "AGENT_UNABLE_TO_VALIDATE", AgentReviewed, "The agent could not complete validation.";
    AuditorApproved => "AUDITOR_APPROVED", AuditorReviewed, "The auditor approved the KYC verification.";
    AuditorRejected => "AUDITOR_REJECTED", AuditorReviewed, "The auditor rejected the KYC verification.";
    InsufficientBalance => "INSUFFICIENT_BALANCE", Rejected, "The merchant's balance could not pay for the request.";
}

impl SubStatus {
    pub fn parse(s: &str) -> Option<SubStatus> {
        SubStatus::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    /// The state every new request starts in.
    pub const INITIAL: SubStatus = SubStatus::LinkGenerated;

    /// True when no event can move the request any more.
    pub fn is_final(self) -> bool {
        !RULES.iter().any(|r| r.from.contains(&self))
    }
}

impl fmt::Display for SubStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who caused a move; stored in every history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    Merchant,
    Customer,
    Agent,
    Auditor,
    System,
}

impl Actor {
    pub const ALL: [Actor; 5] = [
        Actor::Merchant,
        Actor::Customer,
        Actor::Agent,
        Actor::Auditor,
        Actor::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Merchant => "merchant",
            Actor::Customer => "customer",
            Actor::Agent => "agent",
            Actor::Auditor => "auditor",
            Actor::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Actor> {
        Actor::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

macro_rules! events {
    ($( $variant:ident => $text:literal, $actor:ident; )*) => {
        /// Something real that happened to a request.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Event { $( $variant, )* }

        impl Event {
            pub const ALL: &'static [Event] = &[ $( Event::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( Event::$variant => $text, )* }
            }

            /// Who normally causes this event.
            pub fn actor(self) -> Actor {
                match self { $( Event::$variant => Actor::$actor, )* }
            }
        }
    };
}

events! {
    LinkExpired => "link_expired", System;
    AadhaarVerified => "aadhaar_verified", Customer;
    AadhaarFailed => "aadhaar_failed", Customer;
    AadhaarSessionExpired => "aadhaar_session_expired", System;
    IpVerified => "ip_verified", Customer;
    ProxyDetected => "proxy_detected", Customer;
    IpOutsideIndia => "ip_outside_india", Customer;
    CheckTechnicalFailure => "check_technical_failure", System;
    LocationVerified => "location_verified", Customer;
    LocationOutsideIndia => "location_outside_india", Customer;
    LocationPermissionDenied => "location_permission_denied", Customer;
    DeviceCheckPassed => "device_check_passed", Customer;
    AudioCheckFailed => "audio_check_failed", Customer;
    VideoCheckFailed => "video_check_failed", Customer;
    Queued => "queued", Customer;
    NoAgentAvailable => "no_agent_available", System;
    MeetingScheduled => "meeting_scheduled", Customer;
    MeetingCancelled => "meeting_cancelled", Customer;
    ScheduledArrived => "scheduled_arrived", Customer;
    AgentAssigned => "agent_assigned", System;
    InviteAccepted => "invite_accepted", Customer;
    InviteRejected => "invite_rejected", Customer;
    MeetingMissed => "meeting_missed", System;
    UserDroppedOff => "user_dropped_off", System;
    AgentDroppedOff => "agent_dropped_off", System;
    UserEndedCall => "user_ended_call", Customer;
    AgentEndedCall => "agent_ended_call", Agent;
    CallTechnicalError => "call_technical_error", System;
    AgentApproved => "agent_approved", Agent;
    AgentRejected => "agent_rejected", Agent;
    AgentUnableToValidate => "agent_unable_to_validate", Agent;
    AuditorApproved => "auditor_approved", Auditor;
    AuditorRejected => "auditor_rejected", Auditor;
    BalanceExhausted => "balance_exhausted", System;
}

impl Event {
    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.iter().copied().find(|e| e.as_str() == s)
    }

    /// The one rule that describes this event.
    pub fn rule(self) -> &'static Rule {
        RULES
            .iter()
            .find(|r| r.event == self)
            .expect("every event has exactly one rule (checked by tests)")
    }
}

/// One event: the states it may happen in, and the state it leads to.
#[derive(Debug)]
pub struct Rule {
    pub event: Event,
    pub from: &'static [SubStatus],
    pub to: SubStatus,
}

use SubStatus as S;

// Groups of states, named after the journey step they lead into. A failed check can be
// retried, so each failure state is also an entry into the step that produced it.
const AADHAAR_ENTRY: &[SubStatus] = &[
    S::LinkGenerated,
    S::AadhaarVerificationFailed,
    S::AadhaarVerificationExpired,
    S::TechnicalFailure,
];
// The Aadhaar step is skipped when the merchant sent `aadhaar_details`, so the IP check
// may follow the link directly. An IP outside India yields USER_LOCATION_OUTSIDE_INDIA;
// its retry runs the IP check again.
const IP_ENTRY: &[SubStatus] = &[
    S::LinkGenerated,
    S::AadhaarVerificationSuccess,
    S::UserProxyDetected,
    S::TechnicalFailure,
    S::UserLocationOutsideIndia,
];
const LOCATION_ENTRY: &[SubStatus] = &[
    S::UserIpVerificationSuccessful,
    S::UserLocationOutsideIndia,
    S::UserLocationPermissionDisabled,
];
const DEVICE_ENTRY: &[SubStatus] = &[
    S::UserLocationVerificationSuccess,
    S::UserAudioCheckFailed,
    S::UserVideoCheckFailed,
];
// Where a customer may (re)join the live queue: after the device check, after no agent
// was found, after cancelling a slot, or after a call attempt that did not happen or
// dropped (a dropped call is never resumed: a new call starts from the queue).
const QUEUE_ENTRY: &[SubStatus] = &[
    S::UserDeviceCheckSuccess,
    S::NoAgentFound,
    S::UserMeetingCancelled,
    S::AgentAssignedToUser,
    S::UserRejectedMeeting,
    S::UserMissedMeeting,
    S::UserDroppedOff,
    S::AgentDroppedOff,
];
const SCHEDULE_ENTRY: &[SubStatus] = &[
    S::UserDeviceCheckSuccess,
    S::NoAgentFound,
    S::UserQueued,
    S::UserMeetingCancelled,
    S::UserRejectedMeeting,
    S::UserMissedMeeting,
    S::UserDroppedOff,
    S::AgentDroppedOff,
];
const NO_AGENT_ENTRY: &[SubStatus] = &[
    S::UserDeviceCheckSuccess,
    S::UserQueued,
    S::ScheduledUserQueued,
    S::NoAgentFound,
    S::UserMeetingCancelled,
    S::UserRejectedMeeting,
    S::UserMissedMeeting,
    S::UserDroppedOff,
    S::AgentDroppedOff,
];
const IN_CALL: &[SubStatus] = &[S::UserAcceptedMeeting];
const CALL_ENDED: &[SubStatus] = &[S::UserEndedCall, S::AgentEndedCall];
// After a drop the agent may still record a negative outcome; approval needs a whole call.
const CALL_OVER: &[SubStatus] = &[
    S::UserEndedCall,
    S::AgentEndedCall,
    S::UserDroppedOff,
    S::AgentDroppedOff,
];
const AGENT_DECIDED: &[SubStatus] = &[S::AgentApproved, S::AgentRejected, S::AgentUnableToValidate];
// A link expires only before the customer has reached the call: in every pre-call state,
// and after an invitation that was declined or missed (no call took place). A call that
// happened (ended or dropped) waits for the agent's decision instead.
const BEFORE_CALL: &[SubStatus] = &[
    S::LinkGenerated,
    S::AadhaarVerificationSuccess,
    S::AadhaarVerificationFailed,
    S::AadhaarVerificationExpired,
    S::UserIpVerificationSuccessful,
    S::UserProxyDetected,
    S::TechnicalFailure,
    S::UserLocationVerificationSuccess,
    S::UserLocationOutsideIndia,
    S::UserAudioCheckFailed,
    S::UserVideoCheckFailed,
    S::UserLocationPermissionDisabled,
    S::UserDeviceCheckSuccess,
    S::UserQueued,
    S::ScheduledUserQueued,
    S::NoAgentFound,
    S::AgentAssignedToUser,
    S::UserMeetingScheduled,
    S::UserMeetingCancelled,
    S::UserRejectedMeeting,
    S::UserMissedMeeting,
];
// Every check step, where a technical fault (a database, a service, the browser) can stop
// the journey. Its retry starts the checks again from the Aadhaar or the IP step.
const CHECKS: &[SubStatus] = &[
    S::LinkGenerated,
    S::AadhaarVerificationSuccess,
    S::AadhaarVerificationFailed,
    S::AadhaarVerificationExpired,
    S::UserIpVerificationSuccessful,
    S::UserProxyDetected,
    S::TechnicalFailure,
    S::UserLocationVerificationSuccess,
    S::UserLocationOutsideIndia,
    S::UserLocationPermissionDisabled,
    S::UserAudioCheckFailed,
    S::UserVideoCheckFailed,
];
// The merchant's balance is charged when the customer first reaches the queue.
const CHARGEABLE: &[SubStatus] = &[S::UserDeviceCheckSuccess];

/// Every legal move, as data. One rule per event. Where two events lead on from the same
/// state, the one listed first is the ordinary course of a journey, which is the way
/// [`path`] prefers.
pub const RULES: &[Rule] = &[
    Rule {
        event: Event::LinkExpired,
        from: BEFORE_CALL,
        to: S::VkycExpired,
    },
    Rule {
        event: Event::AadhaarVerified,
        from: AADHAAR_ENTRY,
        to: S::AadhaarVerificationSuccess,
    },
    Rule {
        event: Event::AadhaarFailed,
        from: AADHAAR_ENTRY,
        to: S::AadhaarVerificationFailed,
    },
    Rule {
        event: Event::AadhaarSessionExpired,
        from: AADHAAR_ENTRY,
        to: S::AadhaarVerificationExpired,
    },
    Rule {
        event: Event::IpVerified,
        from: IP_ENTRY,
        to: S::UserIpVerificationSuccessful,
    },
    Rule {
        event: Event::ProxyDetected,
        from: IP_ENTRY,
        to: S::UserProxyDetected,
    },
    Rule {
        event: Event::IpOutsideIndia,
        from: IP_ENTRY,
        to: S::UserLocationOutsideIndia,
    },
    Rule {
        event: Event::CheckTechnicalFailure,
        from: CHECKS,
        to: S::TechnicalFailure,
    },
    Rule {
        event: Event::LocationVerified,
        from: LOCATION_ENTRY,
        to: S::UserLocationVerificationSuccess,
    },
    Rule {
        event: Event::LocationOutsideIndia,
        from: LOCATION_ENTRY,
        to: S::UserLocationOutsideIndia,
    },
    Rule {
        event: Event::LocationPermissionDenied,
        from: LOCATION_ENTRY,
        to: S::UserLocationPermissionDisabled,
    },
    Rule {
        event: Event::DeviceCheckPassed,
        from: DEVICE_ENTRY,
        to: S::UserDeviceCheckSuccess,
    },
    Rule {
        event: Event::AudioCheckFailed,
        from: DEVICE_ENTRY,
        to: S::UserAudioCheckFailed,
    },
    Rule {
        event: Event::VideoCheckFailed,
        from: DEVICE_ENTRY,
        to: S::UserVideoCheckFailed,
    },
    Rule {
        event: Event::Queued,
        from: QUEUE_ENTRY,
        to: S::UserQueued,
    },
    Rule {
        event: Event::NoAgentAvailable,
        from: NO_AGENT_ENTRY,
        to: S::NoAgentFound,
    },
    Rule {
        event: Event::MeetingScheduled,
        from: SCHEDULE_ENTRY,
        to: S::UserMeetingScheduled,
    },
    Rule {
        event: Event::MeetingCancelled,
        from: &[S::UserMeetingScheduled, S::ScheduledUserQueued],
        to: S::UserMeetingCancelled,
    },
    Rule {
        event: Event::ScheduledArrived,
        from: &[S::UserMeetingScheduled],
        to: S::ScheduledUserQueued,
    },
    Rule {
        event: Event::AgentAssigned,
        from: &[S::UserQueued, S::ScheduledUserQueued],
        to: S::AgentAssignedToUser,
    },
    Rule {
        event: Event::InviteAccepted,
        from: &[S::AgentAssignedToUser],
        to: S::UserAcceptedMeeting,
    },
    Rule {
        event: Event::InviteRejected,
        from: &[S::AgentAssignedToUser],
        to: S::UserRejectedMeeting,
    },
    Rule {
        event: Event::MeetingMissed,
        from: &[S::AgentAssignedToUser, S::UserMeetingScheduled],
        to: S::UserMissedMeeting,
    },
    Rule {
        event: Event::AgentEndedCall,
        from: IN_CALL,
        to: S::AgentEndedCall,
    },
    Rule {
        event: Event::UserEndedCall,
        from: IN_CALL,
        to: S::UserEndedCall,
    },
    Rule {
        event: Event::UserDroppedOff,
        from: IN_CALL,
        to: S::UserDroppedOff,
    },
    Rule {
        event: Event::AgentDroppedOff,
        from: IN_CALL,
        to: S::AgentDroppedOff,
    },
    Rule {
        event: Event::CallTechnicalError,
        from: &[
            S::AgentAssignedToUser,
            S::UserAcceptedMeeting,
            S::UserEndedCall,
            S::AgentEndedCall,
        ],
        to: S::TechnicalError,
    },
    Rule {
        event: Event::AgentApproved,
        from: CALL_ENDED,
        to: S::AgentApproved,
    },
    Rule {
        event: Event::AgentRejected,
        from: CALL_OVER,
        to: S::AgentRejected,
    },
    Rule {
        event: Event::AgentUnableToValidate,
        from: CALL_OVER,
        to: S::AgentUnableToValidate,
    },
    Rule {
        event: Event::AuditorApproved,
        from: AGENT_DECIDED,
        to: S::AuditorApproved,
    },
    Rule {
        event: Event::AuditorRejected,
        from: AGENT_DECIDED,
        to: S::AuditorRejected,
    },
    Rule {
        event: Event::BalanceExhausted,
        from: CHARGEABLE,
        to: S::InsufficientBalance,
    },
];

/// Why a move was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalMove {
    pub from: SubStatus,
    pub event: Event,
}

impl fmt::Display for IllegalMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cannot happen in {}/{}",
            self.event.as_str(),
            self.from.status(),
            self.from
        )
    }
}

impl std::error::Error for IllegalMove {}

/// The state `event` leads to from `from`, or why it may not happen there.
pub fn next(from: SubStatus, event: Event) -> Result<SubStatus, IllegalMove> {
    let rule = event.rule();
    if rule.from.contains(&from) {
        Ok(rule.to)
    } else {
        Err(IllegalMove { from, event })
    }
}

/// Every event that may happen in `from`, in the order of [`RULES`].
pub fn events_from(from: SubStatus) -> impl Iterator<Item = &'static Rule> {
    RULES.iter().filter(move |r| r.from.contains(&from))
}

/// The shortest chain of legal events from `from` to `to` (empty when they are equal),
/// or `None` when `to` cannot be reached. Used by the sandbox to walk a request along
/// real moves.
pub fn path(from: SubStatus, to: SubStatus) -> Option<Vec<Event>> {
    let mut came_from: HashMap<SubStatus, (SubStatus, Event)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(state) = queue.pop_front() {
        if state == to {
            let mut events = Vec::new();
            let mut at = to;
            while at != from {
                let (prev, event) = came_from[&at];
                events.push(event);
                at = prev;
            }
            events.reverse();
            return Some(events);
        }
        for rule in events_from(state) {
            if rule.to != from && !came_from.contains_key(&rule.to) {
                came_from.insert(rule.to, (state, rule.event));
                queue.push_back(rule.to);
            }
        }
    }
    None
}

/// The sub-statuses a link expiry may still move. They all have status RECEIVED,
/// PRE_VIDEO_CALL or VIDEO_CALL, which the expiry worker's partial index covers.
pub fn expirable() -> &'static [SubStatus] {
    Event::LinkExpired.rule().from
}

/// The transition table as Markdown, one row per rule; docs/status-machine.md embeds it
/// and a test keeps the two identical.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| event | actor | from (sub_status) | to (status / sub_status) |\n|---|---|---|---|\n",
    );
    for rule in RULES {
        let from: Vec<String> = rule.from.iter().map(|s| format!("`{s}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | `{}` / `{}` |\n",
            rule.event.as_str(),
            rule.event.actor().as_str(),
            from.join(", "),
            rule.to.status(),
            rule.to
        ));
    }
    out
}
