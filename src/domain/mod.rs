//! Pure rules: no database, no network, no clock of their own. The status machine, working
//! hours and slots, India's boundary, what the merchant API accepts, how a request is
//! shown, the webhook events, the call's approval rule. Everything above builds on these;
//! nothing here imports from above (the store, the surfaces, the workers).

pub mod approval;
pub mod chain;
pub mod events;
pub mod geo;
pub mod logo;
pub mod otp;
pub mod queue;
pub mod recording_links;
pub mod request;
pub mod retention;
pub mod slots;
pub mod status;
pub mod templates;
pub mod validate;
pub mod views;
