//! `vkyc`: a self-hosted Video KYC (V-CIP) server that speaks the merchant API of
//! Cashfree's hosted Video KYC service.
//!
//! The floors, from the top (a module may import only from floors below its own):
//! - `cli`: the commands; `http`: the surfaces (merchant API, customer journey, desk,
//!   recordings) and the router that assembles them;
//! - `calls` and `workers`: what happens to a call and what runs in the background;
//! - `operations`: what an administrator does (staff, merchants, question banks, the
//!   desk's hours), shared by the command line and the admin console;
//! - `state`: what they all share;
//! - services over the outside world: `auth`, `ratelimit`, `notify`, `storage`,
//!   `outbound`, `checks` (Aadhaar, IP), `case_export` (signed case archives), `audit_trail`
//!   (the hash-chained audit trail: verify and daily anchors), `backup` (backups and
//!   restores of a deployment), `store` (the database), `media` (the relay),
//!   `passwords` and `totp` (staff credentials);
//! - pure rules: `domain`; and the ground: `config`, `secrets`, `error`, `clock`,
//!   `files` (private files and directories).

pub mod audit_trail;
pub mod auth;
pub mod backup;
pub mod calls;
pub mod case_export;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod files;
pub mod http;
pub mod media;
pub mod metrics;
pub mod notify;
pub mod operations;
pub mod outbound;
pub mod passwords;
pub mod ratelimit;
pub mod secrets;
pub mod state;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod totp;
pub mod workers;
