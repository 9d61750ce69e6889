//! The one test binary. The behavioural suite starts the real server on port 0 and
//! drives it over HTTP; beside it are the tests of the parts on their own (the Aadhaar
//! check, IP databases, the relay, the status machine, the validators, the layout).
//! It runs on SQLite by default and on PostgreSQL when `VKYC_TEST_PG_URL` names a server
//! (each test then gets a database of its own).

mod helpers;
#[path = "../support/mod.rs"]
mod support;

mod aadhaar;
mod admin;
mod admin_settings;
mod audit_trail;
mod auth;
mod backup;
mod bad_input;
mod calls;
mod cases;
mod cli;
mod crash;
mod desk;
mod desk_screens;
mod expiry;
mod geo;
mod health;
mod history_and_sandbox;
mod ipcheck;
mod journey;
mod journey_flows;
mod journey_steps;
mod journey_templates;
mod layout;
mod media_relay;
mod metrics;
mod moves;
mod notify;
mod openapi;
mod rate_limits;
mod recording_sides;
mod recordings_s3;
mod relay_nodes;
mod report_rollups;
mod reports;
mod retention;
mod sealed;
mod sealed_recordings;
mod security;
mod status_machine;
mod templates;
mod users;
mod validators;
mod vkyc;
mod webhook_events;
mod webhooks;
