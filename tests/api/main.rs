//! The behavioural suite: the real server, started on port 0, driven over HTTP.
//! It runs on SQLite by default and on PostgreSQL when `VKYC_TEST_PG_URL` names a server
//! (each test then gets a database of its own).

mod helpers;

mod auth;
mod bad_input;
mod calls;
mod cli;
mod crash;
mod desk;
mod expiry;
mod history_and_sandbox;
mod journey;
mod journey_flows;
mod moves;
mod rate_limits;
mod recordings_s3;
mod security;
mod users;
mod vkyc;
mod webhooks;
