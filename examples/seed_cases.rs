//! Fills a vkyc database with a realistic history of Video KYC cases, for the report and
//! case-search benchmarks: merchants, agents and auditors, customers, and requests spread
//! over the last DAYS days (busier in Indian working hours), each taken as far through the
//! journey as chance allows — link opened or not, each check passed, failed and retried
//! or given up, the queue, the call with an agent, the agent's and the auditor's decision
//! — with the same rows the server writes: requests, history, journey steps and attempts,
//! queue entries, calls, audits and the agents' shifts online (presence log). Requests
//! whose next step would lie in the future stay where they are, so the newest ones are
//! still in flight.
//!
//!   cargo run --release --example seed_cases -- DATABASE_URL COUNT \
//!       [--days 35] [--merchants 4] [--agents 40] [--auditors 8] [--seed 1]
//!
//! Rows are generated here (never from outside input) and written as literal multi-row
//! VALUES in large transactions, which is much faster than binding parameters one by one.
//! Staff accounts are `seed_agent_N` / `seed_auditor_N` with the password `seed-password`.
//! Run it on an empty database or one it filled before (it appends, with new names).
//! Prints one line: `seeded COUNT requests (ROWS rows) in SECONDS s`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};
use std::fmt::Write;
use std::time::Instant;

const DAY_MS: i64 = 86_400_000;
const MIN_MS: i64 = 60_000;
/// India Standard Time is UTC+05:30, all year.
const IST_OFFSET_MS: i64 = 19_800_000;
const ROWS_PER_INSERT: usize = 1000;
const REQUESTS_PER_TX: usize = 20_000;
const LINK_VALIDITY_MS: i64 = 3 * DAY_MS;

struct Args {
    url: String,
    count: usize,
    days: i64,
    merchants: i64,
    agents: i64,
    auditors: i64,
    seed: u64,
}

fn args() -> anyhow::Result<Args> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        raw.len() >= 2,
        "usage: seed_cases DATABASE_URL COUNT [--days N] [--merchants N] [--agents N] \
         [--auditors N] [--seed N]"
    );
    let mut a = Args {
        url: raw[0].clone(),
        count: raw[1].parse()?,
        days: 35,
        merchants: 4,
        agents: 40,
        auditors: 8,
        seed: 1,
    };
    let mut rest = raw[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--days" => a.days = value.parse()?,
            "--merchants" => a.merchants = value.parse()?,
            "--agents" => a.agents = value.parse()?,
            "--auditors" => a.auditors = value.parse()?,
            "--seed" => a.seed = value.parse()?,
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    anyhow::ensure!(
        a.days >= 1 && a.merchants >= 1,
        "days and merchants must be >= 1"
    );
    anyhow::ensure!(
        a.agents >= 1 && a.auditors >= 1,
        "agents and auditors must be >= 1"
    );
    Ok(a)
}

/// Rows of one table, flushed as multi-row INSERTs.
struct Table {
    head: &'static str,
    rows: Vec<String>,
}

impl Table {
    fn new(head: &'static str) -> Table {
        Table {
            head,
            rows: Vec::new(),
        }
    }
}

/// Everything generated for one transaction's worth of requests.
struct Batch {
    users: Table,
    requests: Table,
    history: Table,
    steps: Table,
    attempts: Table,
    queue: Table,
    calls: Table,
    audits: Table,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            users: Table::new(
                "INSERT INTO users (id, merchant_id, user_id, phone, created_at, updated_at) VALUES ",
            ),
            requests: Table::new(
                "INSERT INTO requests (id, merchant_id, verification_id, user_ref, user_id, \
                 link_token, link_expires_at, status, sub_status, version, created_at, \
                 updated_at, event_seq) VALUES ",
            ),
            history: Table::new(
                "INSERT INTO history (request_id, at, actor, event, from_status, \
                 from_sub_status, to_status, to_sub_status, details) VALUES ",
            ),
            steps: Table::new(
                "INSERT INTO journey_steps (request_id, step, started_at, ended_at, outcome) VALUES ",
            ),
            attempts: Table::new("INSERT INTO journey_attempts (request_id, step, at) VALUES "),
            queue: Table::new(
                "INSERT INTO queue_entries (request_id, priority, enqueued_at, state) VALUES ",
            ),
            calls: Table::new(
                "INSERT INTO calls (id, request_id, agent_id, state, invited_at, accepted_at, \
                 ended_at, ended_by, liveness_code, questions, duration_ms, decision, remarks, \
                 decided_at) VALUES ",
            ),
            audits: Table::new(
                "INSERT INTO audits (request_id, auditor_id, decision, remarks, at) VALUES ",
            ),
        }
    }

    fn tables(&mut self) -> [&mut Table; 8] {
        [
            &mut self.users,
            &mut self.requests,
            &mut self.history,
            &mut self.steps,
            &mut self.attempts,
            &mut self.queue,
            &mut self.calls,
            &mut self.audits,
        ]
    }
}

/// The status (phase) of a sub-status, as the status machine defines it.
fn status_of(sub: &str) -> &'static str {
    vkyc::domain::status::SubStatus::parse(sub)
        .expect("the generator uses known sub-statuses")
        .status()
        .as_str()
}

/// One request being walked through its journey.
struct Case<'a> {
    id: i64,
    sub: &'static str,
    at: i64,
    now: i64,
    moves: i64,
    batch: &'a mut Batch,
}

impl Case<'_> {
    /// Moves the request by `event` to `to` at `at`, unless `at` is still in the future
    /// (then false: the request stays where it is).
    fn go(&mut self, at: i64, actor: &str, event: &str, to: &'static str) -> bool {
        self.go_with(at, actor, event, to, "NULL")
    }

    fn go_with(
        &mut self,
        at: i64,
        actor: &str,
        event: &str,
        to: &'static str,
        details: &str,
    ) -> bool {
        if at > self.now {
            return false;
        }
        self.batch.history.rows.push(format!(
            "({}, {at}, '{actor}', '{event}', '{}', '{}', '{}', '{to}', {details})",
            self.id,
            status_of(self.sub),
            self.sub,
            status_of(to),
        ));
        self.sub = to;
        self.at = at;
        self.moves += 1;
        true
    }

    fn step(&mut self, step: &str, started: i64, ended: i64, outcome: &str, attempt: bool) {
        self.batch.steps.rows.push(format!(
            "({}, '{step}', {started}, {ended}, '{outcome}')",
            self.id
        ));
        if attempt {
            self.batch
                .attempts
                .rows
                .push(format!("({}, '{step}', {started})", self.id));
        }
    }
}

/// A delay drawn from an exponential distribution of the given mean, at least 1 s.
fn exp_ms(rng: &mut StdRng, mean_ms: f64) -> i64 {
    let u: f64 = rng.gen_range(1e-9..1.0);
    ((-u.ln()) * mean_ms).max(1000.0) as i64
}

struct World {
    agent_ids: Vec<i64>,
    auditor_ids: Vec<i64>,
    next_call_id: i64,
    /// Agents with a call going on now.
    live_agents: std::collections::HashSet<i64>,
}

/// One check step: how often it passes, and the failures it can produce.
struct Check {
    step: &'static str,
    pass_event: &'static str,
    pass_to: &'static str,
    pass_rate: f64,
    failures: &'static [(&'static str, &'static str)],
}

const CHECKS: &[Check] = &[
    Check {
        step: "aadhaar",
        pass_event: "aadhaar_verified",
        pass_to: "AADHAAR_VERIFICATION_SUCCESS",
        pass_rate: 0.88,
        failures: &[
            ("aadhaar_failed", "AADHAAR_VERIFICATION_FAILED"),
            ("aadhaar_failed", "AADHAAR_VERIFICATION_FAILED"),
            ("aadhaar_session_expired", "AADHAAR_VERIFICATION_EXPIRED"),
        ],
    },
    Check {
        step: "ip",
        pass_event: "ip_verified",
        pass_to: "USER_IP_VERIFICATION_SUCCESSFUL",
        pass_rate: 0.95,
        failures: &[
            ("proxy_detected", "USER_PROXY_DETECTED"),
            ("ip_outside_india", "USER_LOCATION_OUTSIDE_INDIA"),
        ],
    },
    Check {
        step: "location",
        pass_event: "location_verified",
        pass_to: "USER_LOCATION_VERIFICATION_SUCCESS",
        pass_rate: 0.94,
        failures: &[
            (
                "location_permission_denied",
                "USER_LOCATION_PERMISSION_DISABLED",
            ),
            ("location_outside_india", "USER_LOCATION_OUTSIDE_INDIA"),
        ],
    },
    Check {
        step: "devices",
        pass_event: "device_check_passed",
        pass_to: "USER_DEVICE_CHECK_SUCCESS",
        pass_rate: 0.92,
        failures: &[
            ("audio_check_failed", "USER_AUDIO_CHECK_FAILED"),
            ("video_check_failed", "USER_VIDEO_CHECK_FAILED"),
        ],
    },
];

/// Walks request `c` through its journey from LINK_GENERATED at `c.at`.
fn walk(c: &mut Case, rng: &mut StdRng, world: &mut World, aadhaar_step: bool) {
    let created = c.at;
    let expires = created + LINK_VALIDITY_MS;
    // A fifth of links are never opened; most of those expire.
    let opened = c.at + exp_ms(rng, 90.0 * MIN_MS as f64);
    if rng.gen_bool(0.2) || opened > c.now {
        c.go(expires, "system", "link_expired", "VKYC_EXPIRED");
        return;
    }
    let consent_end = opened + rng.gen_range(5_000..60_000);
    c.step("consent", opened, consent_end, "CONSENT_GIVEN", false);
    c.at = consent_end;
    for check in CHECKS {
        if check.step == "aadhaar" && !aadhaar_step {
            continue;
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let started = c.at + rng.gen_range(5_000..90_000);
            let ended = started + rng.gen_range(3_000..120_000);
            if ended > c.now {
                return;
            }
            if rng.gen_bool(check.pass_rate) {
                c.step(
                    check.step,
                    started,
                    ended,
                    check.pass_to,
                    check.step != "devices",
                );
                c.go(ended, "customer", check.pass_event, check.pass_to);
                break;
            }
            let (event, to) = check.failures[rng.gen_range(0..check.failures.len())];
            c.step(check.step, started, ended, to, check.step != "devices");
            c.go(ended, "customer", event, to);
            // Half give up after a failure (their link expires later), the rest retry,
            // at most three times in all.
            if tries >= 3 || rng.gen_bool(0.5) {
                c.go(expires, "system", "link_expired", "VKYC_EXPIRED");
                return;
            }
        }
    }
    // The live queue (a tenth book a slot and come back at it: they queue with priority).
    let scheduled = rng.gen_bool(0.1);
    let enqueued = c.at + rng.gen_range(2_000..30_000);
    let queued = if scheduled {
        c.go(
            enqueued,
            "customer",
            "meeting_scheduled",
            "USER_MEETING_SCHEDULED",
        ) && c.go(
            enqueued + rng.gen_range(30..240) * MIN_MS,
            "customer",
            "scheduled_arrived",
            "SCHEDULED_USER_QUEUED",
        )
    } else {
        c.go(enqueued, "customer", "queued", "USER_QUEUED")
    };
    if !queued {
        return;
    }
    let enqueued_at = c.at;
    let priority = if scheduled { 0 } else { 1 };
    let invited = enqueued_at + exp_ms(rng, 3.0 * MIN_MS as f64);
    let accepted = invited + rng.gen_range(3_000..40_000);
    let declined = rng.gen_bool(0.06);
    // Calls last 3 to 12 minutes, most around 5 to 7.
    let length = (rng.gen_range(3.0..7.0f64) + rng.gen_range(0.0..5.0f64)) * MIN_MS as f64;
    let ended = accepted + length as i64;
    // An agent has at most one live call: a call still going on now needs a free agent,
    // and without one the customer is still waiting.
    let live = invited <= c.now && (accepted > c.now || (!declined && ended > c.now));
    let agent = if live {
        let free: Vec<i64> = world
            .agent_ids
            .iter()
            .copied()
            .filter(|a| !world.live_agents.contains(a))
            .collect();
        if free.is_empty() {
            None
        } else {
            Some(free[rng.gen_range(0..free.len())])
        }
    } else {
        Some(world.agent_ids[rng.gen_range(0..world.agent_ids.len())])
    };
    let Some(agent) = agent.filter(|_| invited <= c.now) else {
        c.batch
            .queue
            .rows
            .push(format!("({}, {priority}, {enqueued_at}, 'waiting')", c.id));
        return;
    };
    if live {
        world.live_agents.insert(agent);
    }
    c.batch
        .queue
        .rows
        .push(format!("({}, {priority}, {enqueued_at}, 'assigned')", c.id));
    c.go_with(
        invited,
        "system",
        "agent_assigned",
        "AGENT_ASSIGNED_TO_USER",
        &format!("'{{\"agent_id\": {agent}}}'"),
    );
    let call_id = world.next_call_id;
    world.next_call_id += 1;
    let code = rng.gen_range(1000..10_000);
    let mut call = CallRow {
        id: call_id,
        agent,
        invited,
        ..CallRow::default()
    };
    if declined || accepted > c.now {
        if accepted > c.now {
            call.state = "invited";
        } else {
            call.state = "declined";
            call.ended = Some(accepted);
            call.ended_by = Some("customer");
            c.go(
                accepted,
                "customer",
                "invite_rejected",
                "USER_REJECTED_MEETING",
            );
            c.go(
                expires.max(accepted + 1000),
                "system",
                "link_expired",
                "VKYC_EXPIRED",
            );
        }
        c.batch.calls.rows.push(call.values(c.id, code));
        return;
    }
    c.go(
        accepted,
        "customer",
        "invite_accepted",
        "USER_ACCEPTED_MEETING",
    );
    call.accepted = Some(accepted);
    if ended > c.now {
        call.state = "active";
        c.batch.calls.rows.push(call.values(c.id, code));
        return;
    }
    let roll: f64 = rng.gen();
    let (event, to, state, by) = if roll < 0.82 {
        ("agent_ended_call", "AGENT_ENDED_CALL", "ended", "agent")
    } else if roll < 0.93 {
        ("user_ended_call", "USER_ENDED_CALL", "ended", "customer")
    } else {
        ("user_dropped_off", "USER_DROPPED_OFF", "dropped", "system")
    };
    c.go(ended, by, event, to);
    call.state = state;
    call.ended = Some(ended);
    call.ended_by = Some(by);
    call.duration = Some(ended - accepted);
    // The agent's decision, a minute or three after the call.
    let decided = ended + rng.gen_range(20_000..240_000);
    let roll: f64 = rng.gen();
    let (decision, event, to) = if state == "ended" && roll < 0.80 {
        ("approved", "agent_approved", "AGENT_APPROVED")
    } else if roll < 0.95 {
        ("rejected", "agent_rejected", "AGENT_REJECTED")
    } else {
        (
            "unable",
            "agent_unable_to_validate",
            "AGENT_UNABLE_TO_VALIDATE",
        )
    };
    if !c.go_with(
        decided,
        "agent",
        event,
        to,
        &format!("'{{\"agent_id\": {agent}}}'"),
    ) {
        c.batch.calls.rows.push(call.values(c.id, code));
        return;
    }
    call.decision = Some(decision);
    call.decided = Some(decided);
    c.batch.calls.rows.push(call.values(c.id, code));
    // The auditor's review, within hours; a few of the agent's decisions are overturned.
    let reviewed = decided + exp_ms(rng, 4.0 * 60.0 * MIN_MS as f64);
    let agree = rng.gen_bool(if decision == "approved" { 0.96 } else { 0.90 });
    let approve = (decision == "approved") == agree;
    let (decision, event, to) = if approve {
        ("approved", "auditor_approved", "AUDITOR_APPROVED")
    } else {
        ("rejected", "auditor_rejected", "AUDITOR_REJECTED")
    };
    let auditor = world.auditor_ids[rng.gen_range(0..world.auditor_ids.len())];
    if c.go(reviewed, "auditor", event, to) {
        c.batch.audits.rows.push(format!(
            "({}, {auditor}, '{decision}', 'seeded review', {reviewed})",
            c.id
        ));
    }
}

#[derive(Default)]
struct CallRow {
    id: i64,
    agent: i64,
    state: &'static str,
    invited: i64,
    accepted: Option<i64>,
    ended: Option<i64>,
    ended_by: Option<&'static str>,
    duration: Option<i64>,
    decision: Option<&'static str>,
    decided: Option<i64>,
}

fn num(v: Option<i64>) -> String {
    v.map_or("NULL".into(), |v| v.to_string())
}

fn text(v: Option<&str>) -> String {
    v.map_or("NULL".into(), |v| format!("'{v}'"))
}

impl CallRow {
    fn values(&self, request_id: i64, code: i64) -> String {
        format!(
            "({}, {request_id}, {}, '{}', {}, {}, {}, {}, '{code}', '[]', {}, {}, {}, {})",
            self.id,
            self.agent,
            self.state,
            self.invited,
            num(self.accepted),
            num(self.ended),
            text(self.ended_by),
            num(self.duration),
            text(self.decision),
            if self.decision.is_some() {
                "'seeded decision'"
            } else {
                "NULL"
            },
            num(self.decided),
        )
    }
}

/// Weights of each IST hour of the day: quiet at night, busiest late morning and evening.
const HOUR_WEIGHTS: [u32; 24] = [
    1, 1, 1, 1, 1, 1, 2, 4, 7, 10, 12, 12, 11, 10, 10, 11, 11, 12, 12, 11, 9, 6, 3, 2,
];

fn ist_time_of_day(rng: &mut StdRng) -> i64 {
    let total: u32 = HOUR_WEIGHTS.iter().sum();
    let mut pick = rng.gen_range(0..total);
    let mut hour = 0;
    for (h, w) in HOUR_WEIGHTS.iter().enumerate() {
        if pick < *w {
            hour = h as i64;
            break;
        }
        pick -= w;
    }
    hour * 3_600_000 + rng.gen_range(0..3_600_000)
}

async fn max_id(pool: &AnyPool, table: &str) -> anyhow::Result<i64> {
    let row = sqlx::query(&format!("SELECT COALESCE(MAX(id), 0) AS m FROM {table}"))
        .fetch_one(pool)
        .await?;
    Ok(row.try_get("m")?)
}

async fn flush(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &mut Table,
) -> anyhow::Result<usize> {
    let n = table.rows.len();
    for chunk in table.rows.chunks(ROWS_PER_INSERT) {
        let mut sql = String::with_capacity(chunk.len() * 120 + table.head.len());
        sql.push_str(table.head);
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(row);
        }
        (&mut **tx).execute(sql.as_str()).await?;
    }
    table.rows.clear();
    Ok(n)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let started = Instant::now();
    // The migrations first; the rows are then written directly. (No master key: the
    // server that opens the database later claims its own.)
    vkyc::store::Store::migrate_database(&a.url).await?;
    let sqlite = a.url.starts_with("sqlite:");
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    // A bulk load: losing it to a power cut costs only a rerun.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
                        .await?;
                } else {
                    conn.execute("SET synchronous_commit = off").await?;
                }
                Ok(())
            })
        })
        .connect(&a.url)
        .await?;
    let mut rng = StdRng::seed_from_u64(a.seed);
    let now = vkyc::clock::now_ms();
    let run = started_tag(now);

    // Merchants and staff.
    let first_merchant = max_id(&pool, "merchants").await? + 1;
    let mut sql = String::from("INSERT INTO merchants (id, name, env, created_at) VALUES ");
    for m in 0..a.merchants {
        let _ = write!(
            sql,
            "{}({}, 'Seed Bank {} {run}', 'live', {})",
            if m == 0 { "" } else { "," },
            first_merchant + m,
            m + 1,
            now - (a.days + 30) * DAY_MS
        );
    }
    pool.execute(sql.as_str()).await?;
    let hash = vkyc::http::desk::hash_password("seed-password")?;
    let first_staff = max_id(&pool, "staff").await? + 1;
    let mut sql = String::from(
        "INSERT INTO staff (id, username, role, password_hash, failed_logins, created_at) VALUES ",
    );
    let staff = a.agents + a.auditors;
    for s in 0..staff {
        let (role, n) = if s < a.agents {
            ("agent", s + 1)
        } else {
            ("auditor", s - a.agents + 1)
        };
        let _ = write!(
            sql,
            "{}({}, 'seed_{role}_{n}_{run}', '{role}', '{hash}', 0, {})",
            if s == 0 { "" } else { "," },
            first_staff + s,
            now - (a.days + 30) * DAY_MS
        );
    }
    pool.execute(sql.as_str()).await?;
    let mut world = World {
        agent_ids: (0..a.agents).map(|s| first_staff + s).collect(),
        auditor_ids: (a.agents..staff).map(|s| first_staff + s).collect(),
        next_call_id: max_id(&pool, "calls").await? + 1,
        live_agents: Default::default(),
    };
    // The first merchants run the Aadhaar step in the journey; the last one sends the
    // Aadhaar details with the request, so its customers skip it.
    let first_user = max_id(&pool, "users").await? + 1;
    let first_request = max_id(&pool, "requests").await? + 1;

    // Requests are created day by day, in time order, so ids follow time as they do live.
    let today_ist = (now + IST_OFFSET_MS).div_euclid(DAY_MS);
    let first_day = today_ist - a.days + 1;
    let mut times: Vec<i64> = Vec::with_capacity(a.count);
    for i in 0..a.count {
        let day = first_day + (i as i64 * a.days) / a.count as i64;
        let t = day * DAY_MS - IST_OFFSET_MS + ist_time_of_day(&mut rng);
        times.push(t.min(now - 1000));
    }
    times.sort_unstable();

    // Each agent's shifts online: about eight hours a day from a morning start (IST).
    let mut shifts =
        Table::new("INSERT INTO presence_log (staff_id, started_at, last_seen, ended_at) VALUES ");
    for day in first_day..=today_ist {
        for agent in &world.agent_ids {
            let start =
                day * DAY_MS - IST_OFFSET_MS + 8 * 3_600_000 + rng.gen_range(0..4 * 3_600_000);
            let end = (start + rng.gen_range(7 * 3_600_000..9 * 3_600_000)).min(now);
            if start < end {
                shifts
                    .rows
                    .push(format!("({agent}, {start}, {end}, {end})"));
            }
        }
    }
    let mut tx = pool.begin().await?;
    let mut rows = flush(&mut tx, &mut shifts).await?;
    tx.commit().await?;
    let mut batch = Batch::new();
    let mut merchant_no = 0;
    for (chunk_no, chunk) in times.chunks(REQUESTS_PER_TX).enumerate() {
        for (j, created) in chunk.iter().enumerate() {
            let i = chunk_no * REQUESTS_PER_TX + j;
            let id = first_request + i as i64;
            // About two requests per customer, both with the customer's merchant.
            if i.is_multiple_of(2) {
                merchant_no = (rng.gen_range(0..100) * a.merchants / 100).min(a.merchants - 1);
            }
            let merchant = first_merchant + merchant_no;
            let user = first_user + (i / 2) as i64;
            let user_id = format!("seed_{run}_u{}", i / 2);
            if i.is_multiple_of(2) {
                batch.users.rows.push(format!(
                    "({user}, {merchant}, '{user_id}', '9{:09}', {created}, {created})",
                    i / 2 % 1_000_000_000
                ));
            }
            batch.history.rows.push(format!(
                "({id}, {created}, 'merchant', 'created', NULL, NULL, 'RECEIVED', \
                 'LINK_GENERATED', NULL)"
            ));
            let mut case = Case {
                id,
                sub: "LINK_GENERATED",
                at: *created,
                now,
                moves: 1,
                batch: &mut batch,
            };
            let aadhaar_step = merchant_no + 1 < a.merchants || a.merchants == 1;
            walk(&mut case, &mut rng, &mut world, aadhaar_step);
            let (sub, updated, version) = (case.sub, case.at.max(*created), case.moves);
            // The link token only has to be unique.
            batch.requests.rows.push(format!(
                "({id}, {merchant}, 'seed-{run}-{i}', {user}, '{user_id}', '{run}{id:016x}{:08x}', \
                 {}, '{}', '{sub}', {version}, {created}, {updated}, {version})",
                rng.gen::<u32>(),
                created + LINK_VALIDITY_MS,
                status_of(sub),
            ));
        }
        let mut tx = pool.begin().await?;
        for table in batch.tables() {
            rows += flush(&mut tx, table).await?;
        }
        tx.commit().await?;
        eprintln!(
            "  {} / {} requests, {rows} rows, {:.0} s",
            (chunk_no * REQUESTS_PER_TX + chunk.len()),
            a.count,
            started.elapsed().as_secs_f64()
        );
    }
    // Explicit ids leave PostgreSQL's identity sequences behind: move them past the rows.
    if !sqlite {
        for table in ["merchants", "staff", "users", "requests", "calls"] {
            pool.execute(
                format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     (SELECT MAX(id) FROM {table}))"
                )
                .as_str(),
            )
            .await?;
        }
    }
    // The rows went in directly, past the store: the reports' roll-ups are rebuilt from
    // them (the same statements as the migrations that added the roll-ups).
    let backend = if sqlite {
        vkyc::store::Backend::Sqlite
    } else {
        vkyc::store::Backend::Postgres
    };
    let rollups = vkyc::store::rollups::rebuild_statements(backend)
        .into_iter()
        .chain(vkyc::store::rollups::work::rebuild_statements(backend))
        .chain(vkyc::store::case_agents_statements());
    for sql in rollups {
        pool.execute(sql.as_str()).await?;
    }
    pool.execute("ANALYZE").await?;
    println!(
        "seeded {} requests ({rows} rows) in {:.1} s",
        a.count,
        started.elapsed().as_secs_f64()
    );
    pool.close().await;
    Ok(())
}

/// A short tag that keeps names of one run apart from those of earlier runs.
fn started_tag(now: i64) -> String {
    format!("{:x}", now / 1000 % 0xff_ffff)
}
