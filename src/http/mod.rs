//! The HTTP surfaces: the merchant API (`/verification`), the customer journey (`/v/...`),
//! the staff desk (`/desk`) and recording playback, plus `app`, which assembles them with
//! the middleware and starts the workers. A surface reads the request, asks the parts
//! below, and writes the answer; rules and SQL live below, never here.

pub mod app;
pub mod desk;
pub mod input;
pub mod internal;
pub mod journey;
pub mod merchant_api;
pub mod metrics;
pub mod origin;
pub mod recordings;
pub mod serve;
