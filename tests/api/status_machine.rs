//! The status machine of `src/domain/status.rs`, checked against the status table it is built
//! from and against an independent statement of which moves are legal.
//!
//! The expected data below is written out by hand (copied from the status table, and from
//! the choices documented in docs/status-machine.md), not derived from `RULES`, so that a
//! change to `RULES` has to be made twice, on purpose.
//!
//! `VKYC_BLESS=1 cargo test --test status_machine` rewrites the generated sections of
//! docs/status-machine.md instead of checking them.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use vkyc::domain::status::*;

/// Every (status, sub_status, description) of the status table, in its order.
const SEED_TABLE: &[(&str, &str, &str)] = &[
    (
        "RECEIVED",
        "LINK_GENERATED",
        "Cashfree generated the Video KYC link successfully.",
    ),
    ("EXPIRED", "VKYC_EXPIRED", "The Video KYC link has expired."),
    (
        "PRE_VIDEO_CALL",
        "AADHAAR_VERIFICATION_SUCCESS",
        "Aadhaar verification succeeded.",
    ),
    (
        "PRE_VIDEO_CALL",
        "AADHAAR_VERIFICATION_FAILED",
        "Aadhaar verification failed.",
    ),
    (
        "PRE_VIDEO_CALL",
        "AADHAAR_VERIFICATION_EXPIRED",
        "The Aadhaar verification session expired.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_IP_VERIFICATION_SUCCESSFUL",
        "IP address verification succeeded.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_PROXY_DETECTED",
        "Cashfree detected a proxy or VPN.",
    ),
    (
        "PRE_VIDEO_CALL",
        "TECHNICAL_FAILURE",
        "A technical issue occurred during verification.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_LOCATION_VERIFICATION_SUCCESS",
        "Location verification succeeded.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_LOCATION_OUTSIDE_INDIA",
        "The user is outside India.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_AUDIO_CHECK_FAILED",
        "Microphone access is not enabled.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_VIDEO_CHECK_FAILED",
        "Camera access is not enabled.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_LOCATION_PERMISSION_DISABLED",
        "The user did not grant location access.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_DEVICE_CHECK_SUCCESS",
        "The device passed all checks.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_QUEUED",
        "The user is waiting for an available agent.",
    ),
    (
        "PRE_VIDEO_CALL",
        "SCHEDULED_USER_QUEUED",
        "The user is queued for a scheduled appointment.",
    ),
    (
        "PRE_VIDEO_CALL",
        "NO_AGENT_FOUND",
        "No agent is available at this time.",
    ),
    (
        "PRE_VIDEO_CALL",
        "AGENT_ASSIGNED_TO_USER",
        "Cashfree assigned an agent to the user.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_MEETING_SCHEDULED",
        "Cashfree scheduled the user meeting successfully.",
    ),
    (
        "PRE_VIDEO_CALL",
        "USER_MEETING_CANCELLED",
        "The user meeting was cancelled.",
    ),
    (
        "VIDEO_CALL",
        "USER_ACCEPTED_MEETING",
        "The user accepted the meeting invitation.",
    ),
    (
        "VIDEO_CALL",
        "USER_REJECTED_MEETING",
        "The user rejected the meeting invitation.",
    ),
    (
        "VIDEO_CALL",
        "USER_MISSED_MEETING",
        "The user missed the scheduled meeting.",
    ),
    (
        "VIDEO_CALL",
        "USER_DROPPED_OFF",
        "The user disconnected during verification.",
    ),
    (
        "VIDEO_CALL",
        "AGENT_DROPPED_OFF",
        "The agent disconnected during verification.",
    ),
    ("VIDEO_CALL", "USER_ENDED_CALL", "The user ended the call."),
    (
        "VIDEO_CALL",
        "AGENT_ENDED_CALL",
        "The agent ended the call.",
    ),
    (
        "FAILED",
        "TECHNICAL_ERROR",
        "A technical error occurred during verification.",
    ),
    (
        "AGENT_REVIEWED",
        "AGENT_APPROVED",
        "The agent approved the KYC verification.",
    ),
    (
        "AGENT_REVIEWED",
        "AGENT_REJECTED",
        "The agent rejected the KYC verification.",
    ),
    (
        "AGENT_REVIEWED",
        "AGENT_UNABLE_TO_VALIDATE",
        "The agent could not complete validation.",
    ),
    (
        "AUDITOR_REVIEWED",
        "AUDITOR_APPROVED",
        "The auditor approved the KYC verification.",
    ),
    (
        "AUDITOR_REVIEWED",
        "AUDITOR_REJECTED",
        "The auditor rejected the KYC verification.",
    ),
];

/// The one pair the code knows beyond the table: a request refused for lack of balance.
const EXTRA_PAIRS: &[(&str, &str)] = &[("REJECTED", "INSUFFICIENT_BALANCE")];

const ALL_STATUS_STRINGS: &[&str] = &[
    "RECEIVED",
    "EXPIRED",
    "PRE_VIDEO_CALL",
    "VIDEO_CALL",
    "FAILED",
    "AGENT_REVIEWED",
    "AUDITOR_REVIEWED",
    "REJECTED",
];

const ALL_ACTOR_STRINGS: &[&str] = &["merchant", "customer", "agent", "auditor", "system"];

const FINAL_STATES: &[&str] = &[
    "AUDITOR_APPROVED",
    "AUDITOR_REJECTED",
    "VKYC_EXPIRED",
    "TECHNICAL_ERROR",
    "INSUFFICIENT_BALANCE",
];

// Entry groups, spelled out independently of src/domain/status.rs.
const AADHAAR_STEP: &[&str] = &[
    "LINK_GENERATED",
    "AADHAAR_VERIFICATION_FAILED",
    "AADHAAR_VERIFICATION_EXPIRED",
    "TECHNICAL_FAILURE",
];
const IP_STEP: &[&str] = &[
    "LINK_GENERATED",
    "AADHAAR_VERIFICATION_SUCCESS",
    "USER_PROXY_DETECTED",
    "TECHNICAL_FAILURE",
    "USER_LOCATION_OUTSIDE_INDIA",
];
/// Every state of the check steps (Aadhaar, IP, location, devices).
const ANY_CHECK_STEP: &[&str] = &[
    "LINK_GENERATED",
    "AADHAAR_VERIFICATION_SUCCESS",
    "AADHAAR_VERIFICATION_FAILED",
    "AADHAAR_VERIFICATION_EXPIRED",
    "USER_IP_VERIFICATION_SUCCESSFUL",
    "USER_PROXY_DETECTED",
    "TECHNICAL_FAILURE",
    "USER_LOCATION_VERIFICATION_SUCCESS",
    "USER_LOCATION_OUTSIDE_INDIA",
    "USER_LOCATION_PERMISSION_DISABLED",
    "USER_AUDIO_CHECK_FAILED",
    "USER_VIDEO_CHECK_FAILED",
];
/// Invitations that came to nothing: no call took place, so the link can still expire.
const INVITE_CAME_TO_NOTHING: &[&str] = &["USER_REJECTED_MEETING", "USER_MISSED_MEETING"];
const LOCATION_STEP: &[&str] = &[
    "USER_IP_VERIFICATION_SUCCESSFUL",
    "USER_LOCATION_OUTSIDE_INDIA",
    "USER_LOCATION_PERMISSION_DISABLED",
];
const DEVICE_STEP: &[&str] = &[
    "USER_LOCATION_VERIFICATION_SUCCESS",
    "USER_AUDIO_CHECK_FAILED",
    "USER_VIDEO_CHECK_FAILED",
];
const CALL_ATTEMPT_OVER: &[&str] = &[
    "USER_REJECTED_MEETING",
    "USER_MISSED_MEETING",
    "USER_DROPPED_OFF",
    "AGENT_DROPPED_OFF",
];
const IN_CALL: &[&str] = &["USER_ACCEPTED_MEETING"];
const CALL_ENDED: &[&str] = &["USER_ENDED_CALL", "AGENT_ENDED_CALL"];
const CALL_DROPPED: &[&str] = &["USER_DROPPED_OFF", "AGENT_DROPPED_OFF"];
const AGENT_DECIDED: &[&str] = &[
    "AGENT_APPROVED",
    "AGENT_REJECTED",
    "AGENT_UNABLE_TO_VALIDATE",
];

/// Marks the one event whose `from` set is "every RECEIVED and PRE_VIDEO_CALL pair of the
/// table"; [`expected_moves`] fills it in from [`SEED_TABLE`].
const BEFORE_THE_CALL: &[&str] = &["<every RECEIVED and PRE_VIDEO_CALL sub_status>"];

/// Every event: (event, actor, the sub-statuses it may happen in, the sub-status it leads to).
/// Each `from` is a union of the listed groups.
const EXPECTED_MOVES: &[(&str, &str, &[&[&str]], &str)] = &[
    (
        "link_expired",
        "system",
        &[BEFORE_THE_CALL, INVITE_CAME_TO_NOTHING],
        "VKYC_EXPIRED",
    ),
    (
        "aadhaar_verified",
        "customer",
        &[AADHAAR_STEP],
        "AADHAAR_VERIFICATION_SUCCESS",
    ),
    (
        "aadhaar_failed",
        "customer",
        &[AADHAAR_STEP],
        "AADHAAR_VERIFICATION_FAILED",
    ),
    (
        "aadhaar_session_expired",
        "system",
        &[AADHAAR_STEP],
        "AADHAAR_VERIFICATION_EXPIRED",
    ),
    (
        "ip_verified",
        "customer",
        &[IP_STEP],
        "USER_IP_VERIFICATION_SUCCESSFUL",
    ),
    (
        "proxy_detected",
        "customer",
        &[IP_STEP],
        "USER_PROXY_DETECTED",
    ),
    (
        "ip_outside_india",
        "customer",
        &[IP_STEP],
        "USER_LOCATION_OUTSIDE_INDIA",
    ),
    (
        "check_technical_failure",
        "system",
        &[ANY_CHECK_STEP],
        "TECHNICAL_FAILURE",
    ),
    (
        "location_verified",
        "customer",
        &[LOCATION_STEP],
        "USER_LOCATION_VERIFICATION_SUCCESS",
    ),
    (
        "location_outside_india",
        "customer",
        &[LOCATION_STEP],
        "USER_LOCATION_OUTSIDE_INDIA",
    ),
    (
        "location_permission_denied",
        "customer",
        &[LOCATION_STEP],
        "USER_LOCATION_PERMISSION_DISABLED",
    ),
    (
        "device_check_passed",
        "customer",
        &[DEVICE_STEP],
        "USER_DEVICE_CHECK_SUCCESS",
    ),
    (
        "audio_check_failed",
        "customer",
        &[DEVICE_STEP],
        "USER_AUDIO_CHECK_FAILED",
    ),
    (
        "video_check_failed",
        "customer",
        &[DEVICE_STEP],
        "USER_VIDEO_CHECK_FAILED",
    ),
    (
        "queued",
        "customer",
        &[
            &[
                "USER_DEVICE_CHECK_SUCCESS",
                "NO_AGENT_FOUND",
                "USER_MEETING_CANCELLED",
                "AGENT_ASSIGNED_TO_USER",
            ],
            CALL_ATTEMPT_OVER,
        ],
        "USER_QUEUED",
    ),
    (
        "no_agent_available",
        "system",
        &[
            &[
                "USER_DEVICE_CHECK_SUCCESS",
                "USER_QUEUED",
                "SCHEDULED_USER_QUEUED",
                "NO_AGENT_FOUND",
                "USER_MEETING_CANCELLED",
            ],
            CALL_ATTEMPT_OVER,
        ],
        "NO_AGENT_FOUND",
    ),
    (
        "meeting_scheduled",
        "customer",
        &[
            &[
                "USER_DEVICE_CHECK_SUCCESS",
                "NO_AGENT_FOUND",
                "USER_QUEUED",
                "USER_MEETING_CANCELLED",
            ],
            CALL_ATTEMPT_OVER,
        ],
        "USER_MEETING_SCHEDULED",
    ),
    (
        "meeting_cancelled",
        "customer",
        &[&["USER_MEETING_SCHEDULED", "SCHEDULED_USER_QUEUED"]],
        "USER_MEETING_CANCELLED",
    ),
    (
        "scheduled_arrived",
        "customer",
        &[&["USER_MEETING_SCHEDULED"]],
        "SCHEDULED_USER_QUEUED",
    ),
    (
        "agent_assigned",
        "system",
        &[&["USER_QUEUED", "SCHEDULED_USER_QUEUED"]],
        "AGENT_ASSIGNED_TO_USER",
    ),
    (
        "invite_accepted",
        "customer",
        &[&["AGENT_ASSIGNED_TO_USER"]],
        "USER_ACCEPTED_MEETING",
    ),
    (
        "invite_rejected",
        "customer",
        &[&["AGENT_ASSIGNED_TO_USER"]],
        "USER_REJECTED_MEETING",
    ),
    (
        "meeting_missed",
        "system",
        &[&["AGENT_ASSIGNED_TO_USER", "USER_MEETING_SCHEDULED"]],
        "USER_MISSED_MEETING",
    ),
    ("user_dropped_off", "system", &[IN_CALL], "USER_DROPPED_OFF"),
    (
        "agent_dropped_off",
        "system",
        &[IN_CALL],
        "AGENT_DROPPED_OFF",
    ),
    ("user_ended_call", "customer", &[IN_CALL], "USER_ENDED_CALL"),
    ("agent_ended_call", "agent", &[IN_CALL], "AGENT_ENDED_CALL"),
    (
        "call_technical_error",
        "system",
        &[&["AGENT_ASSIGNED_TO_USER"], IN_CALL, CALL_ENDED],
        "TECHNICAL_ERROR",
    ),
    ("agent_approved", "agent", &[CALL_ENDED], "AGENT_APPROVED"),
    (
        "agent_rejected",
        "agent",
        &[CALL_ENDED, CALL_DROPPED],
        "AGENT_REJECTED",
    ),
    (
        "agent_unable_to_validate",
        "agent",
        &[CALL_ENDED, CALL_DROPPED],
        "AGENT_UNABLE_TO_VALIDATE",
    ),
    (
        "auditor_approved",
        "auditor",
        &[AGENT_DECIDED],
        "AUDITOR_APPROVED",
    ),
    (
        "auditor_rejected",
        "auditor",
        &[AGENT_DECIDED],
        "AUDITOR_REJECTED",
    ),
    (
        "balance_exhausted",
        "system",
        &[&["USER_DEVICE_CHECK_SUCCESS"]],
        "INSUFFICIENT_BALANCE",
    ),
];

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn sub(s: &str) -> SubStatus {
    SubStatus::parse(s).unwrap_or_else(|| panic!("the test names an unknown sub_status {s:?}"))
}

fn event(s: &str) -> Event {
    Event::parse(s).unwrap_or_else(|| panic!("the test names an unknown event {s:?}"))
}

fn subs(list: &[&str]) -> BTreeSet<SubStatus> {
    list.iter().map(|s| sub(s)).collect()
}

fn seed_subs_in_phases(phases: &[&str]) -> BTreeSet<SubStatus> {
    SEED_TABLE
        .iter()
        .filter(|(status, _, _)| phases.contains(status))
        .map(|(_, s, _)| sub(s))
        .collect()
}

struct Expected {
    actor: &'static str,
    from: BTreeSet<SubStatus>,
    to: SubStatus,
}

/// [`EXPECTED_MOVES`] as a map from event to its expected rule.
fn expected_moves() -> BTreeMap<Event, Expected> {
    let mut out = BTreeMap::new();
    for &(name, actor, groups, to) in EXPECTED_MOVES {
        let from = groups
            .iter()
            .flat_map(|g| {
                if *g == BEFORE_THE_CALL {
                    seed_subs_in_phases(&["RECEIVED", "PRE_VIDEO_CALL"])
                        .into_iter()
                        .collect::<Vec<_>>()
                } else {
                    subs(g).into_iter().collect()
                }
            })
            .collect();
        let previous = out.insert(
            event(name),
            Expected {
                actor,
                from,
                to: sub(to),
            },
        );
        assert!(previous.is_none(), "EXPECTED_MOVES lists {name} twice");
    }
    out
}

fn rule_from(event: Event) -> BTreeSet<SubStatus> {
    event.rule().from.iter().copied().collect()
}

/// The sub-statuses from which `ev` is legal, according to `next()` alone.
fn legal_from(ev: Event) -> BTreeSet<SubStatus> {
    SubStatus::ALL
        .iter()
        .copied()
        .filter(|&s| next(s, ev).is_ok())
        .collect()
}

/// Shortest distances from `from`, computed with a breadth-first search over `next()`
/// (independently of `path()`).
fn distances_from(from: SubStatus) -> HashMap<SubStatus, usize> {
    let mut dist = HashMap::from([(from, 0)]);
    let mut queue = VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        for &ev in Event::ALL {
            if let Ok(to) = next(at, ev) {
                if !dist.contains_key(&to) {
                    dist.insert(to, dist[&at] + 1);
                    queue.push_back(to);
                }
            }
        }
    }
    dist
}

/// Applies `events` one by one from `from` through `next()`, failing on an illegal move.
fn walk(from: SubStatus, events: &[Event]) -> Result<SubStatus, IllegalMove> {
    events.iter().try_fold(from, |at, &ev| next(at, ev))
}

// ---------------------------------------------------------------------------------------
// The pairs of the status table
// ---------------------------------------------------------------------------------------

#[test]
fn the_known_status_pairs_are_exactly_the_status_table_plus_rejected_insufficient_balance() {
    let expected: BTreeSet<(String, String)> = SEED_TABLE
        .iter()
        .map(|(st, s, _)| (st.to_string(), s.to_string()))
        .chain(
            EXTRA_PAIRS
                .iter()
                .map(|(st, s)| (st.to_string(), s.to_string())),
        )
        .collect();
    assert_eq!(
        expected.len(),
        SEED_TABLE.len() + EXTRA_PAIRS.len(),
        "the test data repeats a pair"
    );
    let known: BTreeSet<(String, String)> = SubStatus::ALL
        .iter()
        .map(|s| (s.status().as_str().to_string(), s.as_str().to_string()))
        .collect();
    assert_eq!(
        known.len(),
        SubStatus::ALL.len(),
        "SubStatus::ALL repeats a sub_status"
    );
    let missing: Vec<_> = expected.difference(&known).collect();
    let unexpected: Vec<_> = known.difference(&expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "pairs missing from the code: {missing:?}; pairs the table does not have: {unexpected:?}"
    );
}

#[test]
fn every_sub_status_of_the_table_has_the_tables_description() {
    for &(status, s, description) in SEED_TABLE {
        let sub_status = sub(s);
        assert_eq!(sub_status.status().as_str(), status, "phase of {s}");
        assert_eq!(sub_status.description(), description, "description of {s}");
    }
}

#[test]
fn insufficient_balance_is_a_described_rejected_sub_status() {
    let s = sub("INSUFFICIENT_BALANCE");
    assert_eq!(s.status(), Status::Rejected);
    assert!(!s.description().trim().is_empty());
}

#[test]
fn every_phase_has_at_least_one_sub_status() {
    for status in Status::ALL {
        assert!(
            SubStatus::ALL.iter().any(|s| s.status() == status),
            "{status} has no sub_status"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------

#[test]
fn every_status_round_trips_through_its_string() {
    let strings: BTreeSet<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(strings, ALL_STATUS_STRINGS.iter().copied().collect());
    for status in Status::ALL {
        assert_eq!(Status::parse(status.as_str()), Some(status));
        assert_eq!(status.to_string(), status.as_str());
    }
}

#[test]
fn every_sub_status_round_trips_through_its_string() {
    for &s in SubStatus::ALL {
        assert_eq!(SubStatus::parse(s.as_str()), Some(s));
        assert_eq!(s.to_string(), s.as_str());
    }
}

#[test]
fn every_event_round_trips_through_its_string() {
    let names: BTreeSet<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(names.len(), Event::ALL.len(), "two events share a name");
    for &ev in Event::ALL {
        assert_eq!(Event::parse(ev.as_str()), Some(ev));
    }
}

#[test]
fn every_actor_round_trips_through_its_string() {
    let strings: BTreeSet<&str> = Actor::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(strings, ALL_ACTOR_STRINGS.iter().copied().collect());
    for actor in Actor::ALL {
        assert_eq!(Actor::parse(actor.as_str()), Some(actor));
    }
}

#[test]
fn unknown_strings_parse_to_none() {
    let mut unknown: Vec<String> = vec![
        String::new(),
        " ".into(),
        "UNKNOWN".into(),
        "LINK GENERATED".into(),
        "link-expired".into(),
        "\0".into(),
        "RECEIVED/LINK_GENERATED".into(),
    ];
    // Every known string with a changed case or surrounding space is unknown: parsing is
    // exact.
    let known: Vec<&str> = Status::ALL
        .iter()
        .map(|s| s.as_str())
        .chain(SubStatus::ALL.iter().map(|s| s.as_str()))
        .chain(Event::ALL.iter().map(|e| e.as_str()))
        .chain(Actor::ALL.iter().map(|a| a.as_str()))
        .collect();
    for k in &known {
        unknown.push(k.to_lowercase());
        unknown.push(k.to_uppercase());
        unknown.push(format!(" {k}"));
        unknown.push(format!("{k} "));
        unknown.push(format!("{k}x"));
    }
    for text in unknown.iter().filter(|t| !known.contains(&t.as_str())) {
        assert_eq!(Status::parse(text), None, "Status::parse({text:?})");
        assert_eq!(SubStatus::parse(text), None, "SubStatus::parse({text:?})");
        assert_eq!(Event::parse(text), None, "Event::parse({text:?})");
        assert_eq!(Actor::parse(text), None, "Actor::parse({text:?})");
    }
    // And the kinds do not leak into each other.
    for s in Status::ALL {
        assert_eq!(Event::parse(s.as_str()), None);
        assert_eq!(Actor::parse(s.as_str()), None);
    }
    for &s in SubStatus::ALL {
        assert_eq!(
            Status::parse(s.as_str()),
            None,
            "{s} is a sub_status, not a status"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------

#[test]
fn every_event_has_exactly_one_rule() {
    for &ev in Event::ALL {
        let count = RULES.iter().filter(|r| r.event == ev).count();
        assert_eq!(count, 1, "{} has {count} rules", ev.as_str());
    }
    assert_eq!(RULES.len(), Event::ALL.len());
}

#[test]
fn every_rule_can_happen_somewhere_and_lists_each_state_once() {
    for rule in RULES {
        let ev = rule.event.as_str();
        assert!(!rule.from.is_empty(), "{ev} can never happen");
        let set: BTreeSet<_> = rule.from.iter().collect();
        assert_eq!(set.len(), rule.from.len(), "{ev} lists a state twice");
        let found = rule.event.rule();
        assert!(
            found.event == rule.event && found.to == rule.to && found.from == rule.from,
            "{ev}: Event::rule finds another rule"
        );
    }
}

#[test]
fn the_rules_are_the_independently_written_expected_moves() {
    let expected = expected_moves();
    assert_eq!(
        expected.keys().copied().collect::<BTreeSet<_>>(),
        Event::ALL.iter().copied().collect::<BTreeSet<_>>(),
        "EXPECTED_MOVES must name every event"
    );
    for (&ev, want) in &expected {
        let name = ev.as_str();
        let rule = ev.rule();
        assert_eq!(ev.actor().as_str(), want.actor, "actor of {name}");
        assert_eq!(rule.to, want.to, "target of {name}");
        let got = rule_from(ev);
        let missing: Vec<_> = want.from.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want.from).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}: the code does not allow it from {missing:?}, and allows it from {extra:?} too"
        );
    }
}

#[test]
fn next_accepts_exactly_the_expected_moves_for_every_sub_status_and_event() {
    let expected = expected_moves();
    for &from in SubStatus::ALL {
        for &ev in Event::ALL {
            let want = &expected[&ev];
            let got = next(from, ev);
            if want.from.contains(&from) {
                assert_eq!(got, Ok(want.to), "{} from {from}", ev.as_str());
            } else {
                assert_eq!(
                    got,
                    Err(IllegalMove { from, event: ev }),
                    "{} from {from}",
                    ev.as_str()
                );
            }
        }
    }
}

#[test]
fn next_agrees_with_rules_for_every_sub_status_and_event() {
    for &from in SubStatus::ALL {
        for rule in RULES {
            let got = next(from, rule.event);
            if rule.from.contains(&from) {
                assert_eq!(got, Ok(rule.to), "{} from {from}", rule.event.as_str());
            } else {
                let err = got.expect_err("the rule does not list this state");
                assert_eq!(
                    err,
                    IllegalMove {
                        from,
                        event: rule.event
                    }
                );
                let message = err.to_string();
                assert!(
                    message.contains(rule.event.as_str()) && message.contains(from.as_str()),
                    "the refusal names the event and the state: {message}"
                );
            }
        }
    }
}

#[test]
fn events_from_lists_exactly_the_legal_events_in_rules_order() {
    for &from in SubStatus::ALL {
        let listed: Vec<Event> = events_from(from).map(|r| r.event).collect();
        let legal: Vec<Event> = RULES
            .iter()
            .map(|r| r.event)
            .filter(|&ev| next(from, ev).is_ok())
            .collect();
        assert_eq!(listed, legal, "events from {from}");
    }
}

#[test]
fn a_link_expires_before_a_call_took_place_and_from_nothing_else() {
    let mut before_call: BTreeSet<SubStatus> = SubStatus::ALL
        .iter()
        .copied()
        .filter(|s| matches!(s.status(), Status::Received | Status::PreVideoCall))
        .collect();
    assert_eq!(
        before_call,
        seed_subs_in_phases(&["RECEIVED", "PRE_VIDEO_CALL"])
    );
    // A declined or missed invitation is no call either.
    before_call.extend(subs(INVITE_CAME_TO_NOTHING));
    assert_eq!(legal_from(Event::LinkExpired), before_call);
    for &s in &before_call {
        assert_eq!(next(s, Event::LinkExpired), Ok(SubStatus::VkycExpired));
    }
    // Once the customer has reached the call, the link no longer matters.
    for s in seed_subs_in_phases(&[
        "VIDEO_CALL",
        "AGENT_REVIEWED",
        "AUDITOR_REVIEWED",
        "FAILED",
        "EXPIRED",
    ])
    .difference(&subs(INVITE_CAME_TO_NOTHING))
    {
        assert!(
            next(*s, Event::LinkExpired).is_err(),
            "link_expired from {s}"
        );
    }
}

#[test]
fn auditor_decisions_happen_only_after_an_agent_decision() {
    let agent_reviewed = seed_subs_in_phases(&["AGENT_REVIEWED"]);
    assert_eq!(agent_reviewed, subs(AGENT_DECIDED));
    assert_eq!(legal_from(Event::AuditorApproved), agent_reviewed);
    assert_eq!(legal_from(Event::AuditorRejected), agent_reviewed);
    for &s in &agent_reviewed {
        assert_eq!(
            next(s, Event::AuditorApproved),
            Ok(SubStatus::AuditorApproved)
        );
        assert_eq!(
            next(s, Event::AuditorRejected),
            Ok(SubStatus::AuditorRejected)
        );
    }
}

#[test]
fn an_auditor_decision_is_the_only_way_into_auditor_reviewed() {
    for rule in RULES {
        if rule.to.status() == Status::AuditorReviewed {
            assert!(
                matches!(rule.event, Event::AuditorApproved | Event::AuditorRejected),
                "{} leads into AUDITOR_REVIEWED",
                rule.event.as_str()
            );
            assert_eq!(rule.event.actor(), Actor::Auditor);
        }
    }
}

#[test]
fn an_agent_approves_only_after_a_call_that_ended_normally() {
    assert_eq!(
        legal_from(Event::AgentApproved),
        subs(&["USER_ENDED_CALL", "AGENT_ENDED_CALL"])
    );
    for s in subs(CALL_DROPPED) {
        assert!(next(s, Event::AgentApproved).is_err(), "approval after {s}");
    }
    // AGENT_APPROVED is reached by agent_approved only.
    for rule in RULES {
        if rule.to == SubStatus::AgentApproved {
            assert_eq!(rule.event, Event::AgentApproved);
        }
    }
}

#[test]
fn an_agent_may_reject_or_be_unable_to_validate_after_an_ended_or_dropped_call_only() {
    let call_over = subs(&[
        "USER_ENDED_CALL",
        "AGENT_ENDED_CALL",
        "USER_DROPPED_OFF",
        "AGENT_DROPPED_OFF",
    ]);
    assert_eq!(legal_from(Event::AgentRejected), call_over);
    assert_eq!(legal_from(Event::AgentUnableToValidate), call_over);
}

#[test]
fn a_dropped_call_can_rejoin_the_queue_but_never_resumes_the_call() {
    for dropped in subs(CALL_DROPPED) {
        assert_eq!(
            next(dropped, Event::Queued),
            Ok(SubStatus::UserQueued),
            "{dropped}"
        );
        assert_eq!(
            next(dropped, Event::MeetingScheduled),
            Ok(SubStatus::UserMeetingScheduled)
        );
        // No event leads from a drop back into the call or to its normal end.
        for rule in events_from(dropped) {
            assert!(
                !matches!(
                    rule.to,
                    SubStatus::UserAcceptedMeeting
                        | SubStatus::UserEndedCall
                        | SubStatus::AgentEndedCall
                ),
                "{dropped} --{}--> {}",
                rule.event.as_str(),
                rule.to
            );
        }
        // Back in the call only through a fresh assignment and invitation.
        let back = path(dropped, SubStatus::UserAcceptedMeeting).expect("a new call is possible");
        assert!(back.contains(&Event::AgentAssigned), "{back:?}");
        assert_eq!(back.last(), Some(&Event::InviteAccepted));
    }
}

#[test]
fn the_call_starts_only_when_the_customer_accepts_an_assigned_agents_invitation() {
    assert_eq!(
        legal_from(Event::InviteAccepted),
        subs(&["AGENT_ASSIGNED_TO_USER"])
    );
    let into_call: Vec<&str> = RULES
        .iter()
        .filter(|r| r.to == SubStatus::UserAcceptedMeeting)
        .map(|r| r.event.as_str())
        .collect();
    assert_eq!(into_call, ["invite_accepted"]);
    // The ways a call ends all start from the running call.
    for ev in [
        Event::UserEndedCall,
        Event::AgentEndedCall,
        Event::UserDroppedOff,
        Event::AgentDroppedOff,
    ] {
        assert_eq!(legal_from(ev), subs(IN_CALL), "{}", ev.as_str());
    }
}

#[test]
fn every_failed_check_can_be_retried() {
    // (failure state, an event that re-runs the failed step)
    let retries = [
        ("AADHAAR_VERIFICATION_FAILED", "aadhaar_verified"),
        ("AADHAAR_VERIFICATION_EXPIRED", "aadhaar_verified"),
        ("USER_PROXY_DETECTED", "ip_verified"),
        ("TECHNICAL_FAILURE", "ip_verified"),
        ("USER_LOCATION_OUTSIDE_INDIA", "ip_verified"),
        ("USER_LOCATION_OUTSIDE_INDIA", "location_verified"),
        ("USER_LOCATION_PERMISSION_DISABLED", "location_verified"),
        ("USER_AUDIO_CHECK_FAILED", "device_check_passed"),
        ("USER_VIDEO_CHECK_FAILED", "device_check_passed"),
        ("NO_AGENT_FOUND", "queued"),
        ("USER_MEETING_CANCELLED", "meeting_scheduled"),
        ("USER_REJECTED_MEETING", "queued"),
        ("USER_MISSED_MEETING", "meeting_scheduled"),
    ];
    for (state, ev) in retries {
        assert!(next(sub(state), event(ev)).is_ok(), "{ev} from {state}");
    }
}

#[test]
fn an_ip_outside_india_is_reported_as_a_location_outside_india() {
    for s in subs(IP_STEP) {
        assert_eq!(
            next(s, Event::IpOutsideIndia),
            Ok(SubStatus::UserLocationOutsideIndia)
        );
    }
    assert_eq!(
        next(SubStatus::UserLocationOutsideIndia, Event::IpVerified),
        Ok(SubStatus::UserIpVerificationSuccessful)
    );
}

#[test]
fn the_balance_is_charged_only_when_the_device_check_has_passed() {
    assert_eq!(
        legal_from(Event::BalanceExhausted),
        subs(&["USER_DEVICE_CHECK_SUCCESS"])
    );
    let into_rejected: Vec<&str> = RULES
        .iter()
        .filter(|r| r.to.status() == Status::Rejected)
        .map(|r| r.event.as_str())
        .collect();
    assert_eq!(into_rejected, ["balance_exhausted"]);
}

// ---------------------------------------------------------------------------------------
// Paths and final states
// ---------------------------------------------------------------------------------------

#[test]
fn the_initial_state_is_link_generated() {
    assert_eq!(SubStatus::INITIAL, sub("LINK_GENERATED"));
    assert_eq!(SubStatus::INITIAL.status(), Status::Received);
}

#[test]
fn every_sub_status_is_reachable_from_link_generated() {
    for &to in SubStatus::ALL {
        let events = path(SubStatus::INITIAL, to).unwrap_or_else(|| panic!("{to} is unreachable"));
        assert_eq!(walk(SubStatus::INITIAL, &events), Ok(to), "{events:?}");
    }
}

#[test]
fn every_path_walked_through_next_ends_exactly_at_its_target_and_is_shortest() {
    for &from in SubStatus::ALL {
        let dist = distances_from(from);
        for &to in SubStatus::ALL {
            match path(from, to) {
                None => assert!(
                    !dist.contains_key(&to),
                    "path({from}, {to}) is None but {to} is reachable"
                ),
                Some(events) => {
                    assert_eq!(
                        walk(from, &events),
                        Ok(to),
                        "path({from}, {to}) = {events:?}"
                    );
                    assert_eq!(
                        Some(&events.len()),
                        dist.get(&to),
                        "path({from}, {to}) is not shortest"
                    );
                }
            }
        }
    }
}

#[test]
fn a_path_from_a_state_to_itself_is_empty() {
    for &s in SubStatus::ALL {
        assert_eq!(path(s, s), Some(vec![]), "{s}");
    }
}

#[test]
fn the_final_states_have_no_outgoing_event_and_are_the_only_ones() {
    let finals = subs(FINAL_STATES);
    for &s in SubStatus::ALL {
        let outgoing: Vec<&str> = Event::ALL
            .iter()
            .filter(|&&ev| next(s, ev).is_ok())
            .map(|e| e.as_str())
            .collect();
        if finals.contains(&s) {
            assert!(outgoing.is_empty(), "{s} is final but allows {outgoing:?}");
            assert!(s.is_final(), "{s}");
            for &other in SubStatus::ALL {
                if other != s {
                    assert_eq!(path(s, other), None, "{s} leads to {other}");
                }
            }
        } else {
            assert!(
                !outgoing.is_empty(),
                "{s} is a dead end but not a final state"
            );
            assert!(!s.is_final(), "{s}");
        }
    }
}

#[test]
fn every_non_final_state_can_still_reach_a_final_state() {
    let finals = subs(FINAL_STATES);
    for &s in SubStatus::ALL {
        let dist = distances_from(s);
        assert!(
            finals.iter().any(|f| dist.contains_key(f)),
            "{s} can never finish"
        );
    }
}

#[test]
fn the_sandbox_happy_path_goes_through_an_ended_call_and_agent_approval() {
    let events =
        path(SubStatus::INITIAL, SubStatus::AuditorApproved).expect("approval is reachable");
    let mut states = vec![SubStatus::INITIAL];
    for &ev in &events {
        let at = *states.last().unwrap();
        states.push(next(at, ev).expect("legal step"));
    }
    assert_eq!(states.last(), Some(&SubStatus::AuditorApproved));
    assert!(
        states.contains(&SubStatus::UserEndedCall) || states.contains(&SubStatus::AgentEndedCall),
        "{states:?}"
    );
    assert!(states.contains(&SubStatus::AgentApproved), "{states:?}");
    for s in [
        SubStatus::UserIpVerificationSuccessful,
        SubStatus::UserLocationVerificationSuccess,
        SubStatus::UserDeviceCheckSuccess,
        SubStatus::UserQueued,
        SubStatus::AgentAssignedToUser,
        SubStatus::UserAcceptedMeeting,
    ] {
        assert!(states.contains(&s), "the happy path passes {s}: {states:?}");
    }
    // No failure, drop or retry on the way.
    for s in &states {
        assert!(
            !s.as_str().contains("FAIL")
                && !s.as_str().contains("DROPPED")
                && !s.as_str().contains("OUTSIDE")
                && !s.as_str().contains("NO_AGENT"),
            "{states:?}"
        );
    }
}

#[test]
fn expirable_is_every_state_before_a_call_took_place() {
    let got: BTreeSet<SubStatus> = expirable().iter().copied().collect();
    assert_eq!(got.len(), expirable().len(), "expirable() repeats a state");
    let mut want = seed_subs_in_phases(&["RECEIVED", "PRE_VIDEO_CALL"]);
    want.extend(subs(INVITE_CAME_TO_NOTHING));
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------

/// The Mermaid diagram of the machine: one line per (from, event, to) edge, in the order
/// of `RULES`, states named by their sub_status.
pub fn mermaid_diagram() -> String {
    let mut out = String::from("```mermaid\nstateDiagram-v2\n");
    out.push_str(&format!("    [*] --> {}\n", SubStatus::INITIAL));
    for rule in RULES {
        for from in rule.from {
            out.push_str(&format!(
                "    {from} --> {}: {}\n",
                rule.to,
                rule.event.as_str()
            ));
        }
    }
    for &s in SubStatus::ALL {
        if s.is_final() {
            out.push_str(&format!("    {s} --> [*]\n"));
        }
    }
    out.push_str("```\n");
    out
}

#[test]
fn the_diagram_has_one_line_per_edge() {
    let diagram = mermaid_diagram();
    let edges = diagram.lines().filter(|l| l.contains(": ")).count();
    let expected: usize = RULES.iter().map(|r| r.from.len()).sum();
    assert_eq!(edges, expected);
    for rule in RULES {
        for from in rule.from {
            let line = format!("    {from} --> {}: {}", rule.to, rule.event.as_str());
            assert!(diagram.lines().any(|l| l == line), "missing {line}");
        }
    }
}

#[test]
fn the_markdown_table_has_one_row_per_rule() {
    let table = markdown_table();
    assert_eq!(table.lines().count(), 2 + RULES.len());
    for rule in RULES {
        let prefix = format!(
            "| `{}` | {} |",
            rule.event.as_str(),
            rule.event.actor().as_str()
        );
        assert!(
            table.lines().any(|l| l.starts_with(&prefix)),
            "no row for {}",
            rule.event.as_str()
        );
    }
}

const DOC: &str = "docs/status-machine.md";

/// Replaces the text between `begin` and `end` (each on its own line) with `body`;
/// returns the old text between them.
fn splice(doc: &mut String, begin: &str, end: &str, body: &str) -> Result<String, String> {
    let start = doc
        .find(begin)
        .ok_or_else(|| format!("{DOC} has no {begin}"))?
        + begin.len();
    let stop = start
        + doc[start..]
            .find(end)
            .ok_or_else(|| format!("{DOC} has no {end} after {begin}"))?;
    let old = doc[start..stop].to_string();
    doc.replace_range(start..stop, &format!("\n{body}"));
    Ok(old)
}

#[test]
fn the_document_shows_the_current_table_and_diagram() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DOC);
    let original =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut doc = original.clone();
    let sections = [
        (
            "<!-- BEGIN GENERATED TABLE -->",
            "<!-- END GENERATED TABLE -->",
            markdown_table(),
        ),
        (
            "<!-- BEGIN GENERATED DIAGRAM -->",
            "<!-- END GENERATED DIAGRAM -->",
            mermaid_diagram(),
        ),
    ];
    let mut stale = Vec::new();
    for (begin, end, body) in &sections {
        let old = splice(&mut doc, begin, end, body).unwrap_or_else(|e| panic!("{e}"));
        if old != format!("\n{body}") {
            stale.push(*begin);
        }
    }
    if std::env::var("VKYC_BLESS").as_deref() == Ok("1") {
        if doc != original {
            std::fs::write(&file, &doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
        return;
    }
    assert!(
        stale.is_empty(),
        "{DOC} is out of date in {stale:?}; run `VKYC_BLESS=1 cargo test --test status_machine` \
         to regenerate it"
    );
}
