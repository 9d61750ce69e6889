//! Verification of UIDAI's Aadhaar *offline e-KYC* (paperless) ZIP files.
//!
//! The customer downloads a password-protected ZIP from UIDAI (password =
//! the 4-character "share code" they chose) holding one XML document:
//!
//! ```text
//! <OfflinePaperlessKyc referenceId="{last4}{YYYYMMDDHHMMSSmmm, IST}">
//!   <UidData>
//!     <Poi name dob gender e m/>
//!     <Poa careof country dist house landmark loc pc po state street subdist vtc/>
//!     <Pht>{base64 JPEG}</Pht>
//!   </UidData>
//!   <Signature xmlns="http://www.w3.org/2000/09/xmldsig#">…</Signature>
//! </OfflinePaperlessKyc>
//! ```
//!
//! [`verify_offline_ekyc`] opens the ZIP with bounded reads, parses the XML
//! without DTD/entity support, verifies the enveloped XML-DSig signature
//! itself (C14N + digest + RSA PKCS#1 v1.5) against the operator-configured
//! UIDAI certificate only, checks the file's age and returns the extracted
//! data with every Aadhaar-looking number redacted to its last four digits.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use base64::Engine as _;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use roxmltree::{Document, Node, NodeId, NodeType};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// Size and time limits applied by [`verify_offline_ekyc`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted upload (the ZIP itself).
    pub max_zip_bytes: usize,
    /// Largest accepted uncompressed XML (declared or actual).
    pub max_xml_bytes: u64,
    /// Oldest accepted file (by the timestamp in `referenceId`).
    pub max_age: Duration,
    /// How far in the future the timestamp may be (clock skew).
    pub max_future_skew: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_zip_bytes: 5 * 1024 * 1024,
            max_xml_bytes: 10 * 1024 * 1024,
            max_age: Duration::days(3),
            max_future_skew: Duration::minutes(10),
        }
    }
}

/// Why an offline e-KYC upload was refused. Messages never contain personal data.
#[derive(Debug, thiserror::Error)]
pub enum AadhaarError {
    #[error("upload is larger than allowed")]
    TooLarge,
    #[error("upload is not a ZIP file")]
    NotAZip,
    #[error("ZIP entry expands beyond the allowed size")]
    ZipBomb,
    #[error("wrong share code")]
    WrongShareCode,
    #[error("not an Aadhaar offline e-KYC file: {0}")]
    NotAadhaar(String),
    #[error("signature verification failed: {0}")]
    BadSignature(String),
    #[error("offline e-KYC file is too old (generated at {generated_at})")]
    TooOld { generated_at: DateTime<Utc> },
    #[error("offline e-KYC file is dated in the future")]
    FromTheFuture,
    #[error("invalid UIDAI certificate: {0}")]
    Certificate(String),
}

impl AadhaarError {
    /// Stable snake_case machine reason.
    pub fn code(&self) -> &'static str {
        match self {
            AadhaarError::TooLarge => "too_large",
            AadhaarError::NotAZip => "not_a_zip",
            AadhaarError::ZipBomb => "zip_bomb",
            AadhaarError::WrongShareCode => "wrong_share_code",
            AadhaarError::NotAadhaar(_) => "not_aadhaar",
            AadhaarError::BadSignature(_) => "bad_signature",
            AadhaarError::TooOld { .. } => "too_old",
            AadhaarError::FromTheFuture => "from_the_future",
            AadhaarError::Certificate(_) => "certificate",
        }
    }
}

fn not_aadhaar(msg: &str) -> AadhaarError {
    AadhaarError::NotAadhaar(msg.to_string())
}

fn bad_sig(msg: &str) -> AadhaarError {
    AadhaarError::BadSignature(msg.to_string())
}

/// The UIDAI signing key(s) configured by the operator.
///
/// Built from an X.509 certificate in PEM or DER form. A PEM file may hold
/// several certificates (e.g. old and new UIDAI keys during a rotation): a
/// signature made by any of them is accepted. `PUBLIC KEY` / `RSA PUBLIC KEY`
/// PEM blocks are accepted as well.
#[derive(Debug, Clone)]
pub struct UidaiCertificate {
    keys: Vec<RsaPublicKey>,
}

/// Smallest accepted RSA modulus.
const MIN_RSA_BITS: usize = 2048;

impl UidaiCertificate {
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, AadhaarError> {
        let cert_err = |m: String| AadhaarError::Certificate(m);
        let mut keys = Vec::new();
        let text = std::str::from_utf8(bytes).ok();
        if let Some(text) = text.filter(|t| t.contains("-----BEGIN ")) {
            for (label, der) in pem_blocks(text).map_err(cert_err)? {
                let key = match label.as_str() {
                    "CERTIFICATE" | "X509 CERTIFICATE" => key_from_cert_der(&der)?,
                    "PUBLIC KEY" => RsaPublicKey::from_public_key_der(&der)
                        .map_err(|e| cert_err(format!("public key: {e}")))?,
                    "RSA PUBLIC KEY" => RsaPublicKey::from_pkcs1_der(&der)
                        .map_err(|e| cert_err(format!("RSA public key: {e}")))?,
                    _ => continue,
                };
                keys.push(key);
            }
        } else {
            keys.push(key_from_cert_der(bytes)?);
        }
        if keys.is_empty() {
            return Err(cert_err("no certificate found".into()));
        }
        for key in &keys {
            if key.size() * 8 < MIN_RSA_BITS {
                return Err(cert_err(format!(
                    "RSA key of {} bits is too small",
                    key.size() * 8
                )));
            }
        }
        Ok(UidaiCertificate { keys })
    }

    /// Number of keys loaded (one per certificate).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

fn key_from_cert_der(der: &[u8]) -> Result<RsaPublicKey, AadhaarError> {
    use x509_cert::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| AadhaarError::Certificate(format!("X.509: {e}")))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| AadhaarError::Certificate(format!("X.509 key: {e}")))?;
    RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| AadhaarError::Certificate(format!("not an RSA key: {e}")))
}

/// Splits PEM text into (label, decoded DER) blocks.
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----").ok_or("unterminated PEM header")?;
        let label = after[..label_end].trim().to_string();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start.find(&end_marker).ok_or("missing PEM END line")?;
        let body: String = body_start[..body_end]
            .lines()
            .filter(|l| !l.contains(':')) // skip RFC 1421 headers
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| format!("PEM base64: {e}"))?;
        blocks.push((label, der));
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(blocks)
}

mod archive;
mod c14n;
mod identity;
mod signature;
#[cfg(test)]
mod tests;

use archive::read_zip_xml;
use identity::{extract, parse_xml};
pub use identity::{mobile_match, name_match, redact_aadhaar_numbers, Address, Match, OfflineKyc};
use signature::verify_signature;

/// Verifies an uploaded offline e-KYC ZIP and extracts its data.
pub fn verify_offline_ekyc(
    zip: &[u8],
    share_code: &str,
    cert: &UidaiCertificate,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<OfflineKyc, AadhaarError> {
    if zip.len() > limits.max_zip_bytes {
        return Err(AadhaarError::TooLarge);
    }
    let xml = read_zip_xml(zip, share_code.trim(), limits.max_xml_bytes)?;
    let xml = std::str::from_utf8(&xml).map_err(|_| not_aadhaar("XML is not UTF-8"))?;
    let doc = parse_xml(xml)?;

    let root = doc.root_element();
    if root.tag_name().namespace().is_some() || root.tag_name().name() != "OfflinePaperlessKyc" {
        return Err(not_aadhaar("root element is not OfflinePaperlessKyc"));
    }

    verify_signature(&doc, &cert.keys)?;
    let kyc = extract(root)?;

    if now.signed_duration_since(kyc.generated_at) > limits.max_age {
        return Err(AadhaarError::TooOld {
            generated_at: kyc.generated_at,
        });
    }
    if kyc.generated_at.signed_duration_since(now) > limits.max_future_skew {
        return Err(AadhaarError::FromTheFuture);
    }
    Ok(kyc)
}
