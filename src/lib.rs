//! `vkyc`: a self-hosted Video KYC (V-CIP) server that speaks the merchant API of
//! Cashfree's hosted Video KYC service.

pub mod aadhaar;
pub mod app;
pub mod auth;
pub mod calls;
pub mod cli;
pub mod config;
pub mod desk;
pub mod error;
pub mod geo;
pub mod input;
pub mod ipcheck;
pub mod journey;
pub mod media;
pub mod merchant_api;
pub mod notify;
pub mod ratelimit;
pub mod recordings;
pub mod secrets;
pub mod slots;
pub mod status;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod validate;
pub mod views;
pub mod webhooks;
pub mod workers;
