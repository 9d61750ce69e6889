//! The customer's checks that read outside evidence: the Aadhaar offline e-KYC file
//! (ZIP, XML signature, identity) and the IP address (country, anonymisers). They read
//! files the operator configures, never the database; the journey applies their verdicts.

pub mod aadhaar;
pub mod digilocker;
pub mod ipcheck;
