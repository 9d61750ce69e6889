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

/// Postal address from `<Poa>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    pub careof: String,
    pub house: String,
    pub street: String,
    pub landmark: String,
    pub loc: String,
    pub vtc: String,
    pub po: String,
    pub subdist: String,
    pub dist: String,
    pub state: String,
    pub country: String,
    pub pc: String,
}

impl Address {
    /// The non-empty parts joined with ", " (care-of first, PIN code last).
    pub fn one_line(&self) -> String {
        let parts = [
            &self.careof,
            &self.house,
            &self.street,
            &self.landmark,
            &self.loc,
            &self.vtc,
            &self.po,
            &self.subdist,
            &self.dist,
            &self.state,
            &self.country,
            &self.pc,
        ];
        let mut out = String::new();
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(part);
        }
        out
    }
}

/// Data extracted from a verified offline e-KYC file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OfflineKyc {
    /// `referenceId` as in the file (last 4 Aadhaar digits + IST timestamp).
    pub reference_id: String,
    pub aadhaar_last4: String,
    /// Serialized as RFC 3339 (UTC).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub generated_at: DateTime<Utc>,
    pub name: String,
    /// As given by UIDAI (normally DD-MM-YYYY; sometimes only a year).
    pub dob: String,
    pub gender: String,
    pub address: Address,
    /// UIDAI's hash of e-mail + share code (`Poi/@e`), if present.
    pub email_hash: Option<String>,
    /// UIDAI's hash of mobile + share code (`Poi/@m`), if present.
    pub mobile_hash: Option<String>,
    #[serde(skip)]
    pub photo_jpeg: Vec<u8>,
}

fn serialize_rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

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

// ---------------------------------------------------------------- ZIP

fn read_zip_xml(zip: &[u8], share_code: &str, max_xml: u64) -> Result<Vec<u8>, AadhaarError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|_| AadhaarError::NotAZip)?;
    if archive.len() != 1 {
        return Err(not_aadhaar("ZIP must hold exactly one file"));
    }
    {
        let entry = archive
            .by_index_raw(0)
            .map_err(|_| not_aadhaar("unreadable ZIP entry"))?;
        let is_xml = entry.name_raw().to_ascii_lowercase().ends_with(b".xml");
        if entry.is_dir() || !is_xml {
            return Err(not_aadhaar("ZIP does not hold an .xml file"));
        }
        if entry.size() > max_xml {
            return Err(AadhaarError::ZipBomb);
        }
        if !entry.encrypted() {
            return Err(not_aadhaar("ZIP entry is not password-protected"));
        }
    }
    if share_code.is_empty() {
        return Err(AadhaarError::WrongShareCode);
    }
    let entry = match archive.by_index_decrypt(0, share_code.as_bytes()) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::InvalidPassword) => return Err(AadhaarError::WrongShareCode),
        Err(_) => return Err(not_aadhaar("unsupported ZIP entry")),
    };
    // Never trust the header: read at most one byte more than allowed.
    let mut out = Vec::new();
    let mut limited = entry.take(max_xml.saturating_add(1));
    let read = limited.read_to_end(&mut out);
    if out.len() as u64 > max_xml {
        return Err(AadhaarError::ZipBomb);
    }
    match read {
        Ok(_) => Ok(out),
        // The zip crate itself also stops at the declared size: an entry
        // that inflates past its header is a bomb, not a wrong code.
        Err(e) if e.to_string().contains("larger than its declared") => Err(AadhaarError::ZipBomb),
        // ZipCrypto's password check only has 8 bits; a wrong code that
        // slips through fails decompression or the CRC (AES: the HMAC) here.
        Err(_) => Err(AadhaarError::WrongShareCode),
    }
}

// ---------------------------------------------------------------- XML

/// Deepest element nesting accepted (UIDAI's files are ~4 deep); bounds the
/// recursion of the canonicaliser.
const MAX_DEPTH: usize = 64;
const MAX_NODES: u32 = 100_000;

fn parse_xml(xml: &str) -> Result<Document<'_>, AadhaarError> {
    // roxmltree refuses DTDs with declarations by default; refuse even an
    // empty DOCTYPE so no entity machinery is ever involved.
    if xml.contains("<!DOCTYPE") {
        return Err(not_aadhaar("DTDs are not allowed"));
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..Default::default()
    };
    let doc = Document::parse_with_options(xml, opts)
        .map_err(|e| AadhaarError::NotAadhaar(format!("invalid XML: {e}")))?;
    // Depth check without recursion.
    let mut depth = vec![0usize; doc.descendants().count() + 1];
    for node in doc.descendants() {
        let d = node.parent().map_or(0, |p| depth[p.id().get_usize()] + 1);
        if d > MAX_DEPTH {
            return Err(not_aadhaar("XML nested too deeply"));
        }
        depth[node.id().get_usize()] = d;
    }
    Ok(doc)
}

fn child_elements<'a, 'i>(node: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    node.children().filter(|n| n.is_element()).collect()
}

fn text_of(node: Node) -> String {
    node.children()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

fn only_child<'a, 'i>(parent: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, AadhaarError> {
    let mut found = parent.children().filter(|n| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace().is_none()
    });
    match (found.next(), found.next()) {
        (Some(n), None) => Ok(n),
        (None, _) => Err(AadhaarError::NotAadhaar(format!("missing <{name}>"))),
        (Some(_), Some(_)) => Err(AadhaarError::NotAadhaar(format!("more than one <{name}>"))),
    }
}

fn extract(root: Node) -> Result<OfflineKyc, AadhaarError> {
    let reference_id = root
        .attribute("referenceId")
        .ok_or_else(|| not_aadhaar("missing referenceId"))?
        .trim()
        .to_string();
    let (aadhaar_last4, generated_at) = parse_reference_id(&reference_id)?;

    let uid = only_child(root, "UidData")?;
    let poi = only_child(uid, "Poi")?;
    let poa = only_child(uid, "Poa")?;
    let pht = only_child(uid, "Pht")?;

    let attr = |n: Node, a: &str| redact_aadhaar_numbers(n.attribute(a).unwrap_or("").trim());
    let name = attr(poi, "name");
    if name.is_empty() {
        return Err(not_aadhaar("missing name"));
    }
    let hash = |a: &str| {
        poi.attribute(a)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            // Hex digests are kept intact (redacting a digit run inside one
            // would corrupt it); anything else is treated as free text.
            .map(|v| {
                if v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    v.to_string()
                } else {
                    redact_aadhaar_numbers(v)
                }
            })
    };
    let address = Address {
        careof: attr(poa, "careof"),
        house: attr(poa, "house"),
        street: attr(poa, "street"),
        landmark: attr(poa, "landmark"),
        loc: attr(poa, "loc"),
        vtc: attr(poa, "vtc"),
        po: attr(poa, "po"),
        subdist: attr(poa, "subdist"),
        dist: attr(poa, "dist"),
        state: attr(poa, "state"),
        country: attr(poa, "country"),
        pc: attr(poa, "pc"),
    };
    let photo_b64: String = text_of(pht)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let photo_jpeg = base64::engine::general_purpose::STANDARD
        .decode(photo_b64.as_bytes())
        .map_err(|_| not_aadhaar("photo is not base64"))?;
    if photo_jpeg.is_empty() {
        return Err(not_aadhaar("missing photo"));
    }
    Ok(OfflineKyc {
        reference_id,
        aadhaar_last4,
        generated_at,
        name,
        dob: attr(poi, "dob"),
        gender: attr(poi, "gender"),
        address,
        email_hash: hash("e"),
        mobile_hash: hash("m"),
        photo_jpeg,
    })
}

/// `referenceId` = 4 digits (end of the Aadhaar number) + `YYYYMMDDHHMMSS`
/// + optional `mmm`, in IST.
fn parse_reference_id(r: &str) -> Result<(String, DateTime<Utc>), AadhaarError> {
    let bad = || not_aadhaar("malformed referenceId");
    if !(r.len() == 4 + 17 || r.len() == 4 + 14) || !r.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |a: usize, b: usize| r[a..b].parse::<u32>().map_err(|_| bad());
    let date =
        NaiveDate::from_ymd_opt(num(4, 8)? as i32, num(8, 10)?, num(10, 12)?).ok_or_else(bad)?;
    let millis = if r.len() == 21 { num(18, 21)? } else { 0 };
    let local = date
        .and_hms_milli_opt(num(12, 14)?, num(14, 16)?, num(16, 18)?, millis)
        .ok_or_else(bad)?;
    let ist = chrono::FixedOffset::east_opt(5 * 3600 + 30 * 60).ok_or_else(bad)?;
    let at = ist.from_local_datetime(&local).single().ok_or_else(bad)?;
    Ok((r[..4].to_string(), at.with_timezone(&Utc)))
}

// ---------------------------------------------------------------- redaction

/// Replaces every 12-digit Aadhaar-looking number (`123456789012`,
/// `1234 5678 9012`, `1234-5678-9012`) not embedded in a longer digit run by
/// `XXXXXXXX` + its last four digits.
pub fn redact_aadhaar_numbers(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            if let Some((end, last4_at)) = match_aadhaar(b, i) {
                out.push_str(&text[copied..i]);
                out.push_str("XXXXXXXX");
                out.push_str(&text[last4_at..end]);
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// Returns (end, start of last 4 digits) for a match starting at `start`.
fn match_aadhaar(b: &[u8], start: usize) -> Option<(usize, usize)> {
    let run = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let first = run(start);
    if first == 12 {
        return Some((start + 12, start + 8));
    }
    if first != 4 {
        return None;
    }
    let sep = *b.get(start + 4)?;
    if sep != b' ' && sep != b'-' {
        return None;
    }
    let g2 = start + 5;
    if run(g2) != 4 || b.get(g2 + 4) != Some(&sep) {
        return None;
    }
    let g3 = g2 + 5;
    if run(g3) != 4 {
        return None;
    }
    Some((g3 + 4, g3))
}

// ---------------------------------------------------------------- XML-DSig

const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

#[derive(Debug, Clone)]
struct C14nAlg {
    exclusive: bool,
    with_comments: bool,
    /// Exclusive C14N InclusiveNamespaces PrefixList ("" = default).
    inclusive_prefixes: Vec<String>,
}

fn c14n_alg(node: Node) -> Option<C14nAlg> {
    let (exclusive, with_comments) = match node.attribute("Algorithm")? {
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315" => (false, false),
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments" => (false, true),
        "http://www.w3.org/2001/10/xml-exc-c14n#" => (true, false),
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments" => (true, true),
        _ => return None,
    };
    let mut inclusive_prefixes = Vec::new();
    if exclusive {
        for child in child_elements(node) {
            if child.tag_name().namespace() == Some(EXC_C14N_NS)
                && child.tag_name().name() == "InclusiveNamespaces"
            {
                for p in child
                    .attribute("PrefixList")
                    .unwrap_or("")
                    .split_whitespace()
                {
                    inclusive_prefixes.push(if p == "#default" {
                        String::new()
                    } else {
                        p.to_string()
                    });
                }
            }
        }
    }
    Some(C14nAlg {
        exclusive,
        with_comments,
        inclusive_prefixes,
    })
}

#[derive(Clone, Copy)]
enum HashAlg {
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlg {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => Sha1::digest(data).to_vec(),
            HashAlg::Sha256 => Sha256::digest(data).to_vec(),
            HashAlg::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn pkcs1v15(self) -> Pkcs1v15Sign {
        match self {
            HashAlg::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            HashAlg::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }
}

fn is_dsig(node: Node, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(DSIG_NS)
        && node.tag_name().name() == name
}

fn b64_text(node: Node) -> Option<Vec<u8>> {
    let s: String = text_of(node)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .ok()
}

/// Verifies the single enveloped signature over the whole document.
fn verify_signature(doc: &Document, keys: &[RsaPublicKey]) -> Result<(), AadhaarError> {
    let root = doc.root_element();
    let sigs: Vec<Node> = doc
        .descendants()
        .filter(|n| is_dsig(*n, "Signature"))
        .collect();
    let sig = match sigs.as_slice() {
        [] => return Err(bad_sig("no Signature")),
        [one] => *one,
        _ => return Err(bad_sig("more than one Signature")),
    };
    if sig.parent_element().map(|p| p.id()) != Some(root.id()) {
        return Err(bad_sig("Signature is not a child of the document element"));
    }

    let parts = child_elements(sig);
    let (signed_info, sig_value) = match parts.as_slice() {
        [si, sv, rest @ ..]
            if is_dsig(*si, "SignedInfo")
                && is_dsig(*sv, "SignatureValue")
                && rest
                    .iter()
                    .all(|n| is_dsig(*n, "KeyInfo") || is_dsig(*n, "Object")) =>
        {
            (*si, *sv)
        }
        _ => return Err(bad_sig("malformed Signature element")),
    };

    let si_parts = child_elements(signed_info);
    let (c14n_method, sig_method, reference) = match si_parts.as_slice() {
        [c, s, r]
            if is_dsig(*c, "CanonicalizationMethod")
                && is_dsig(*s, "SignatureMethod")
                && is_dsig(*r, "Reference") =>
        {
            (*c, *s, *r)
        }
        _ => return Err(bad_sig("SignedInfo must hold exactly one Reference")),
    };
    let si_c14n =
        c14n_alg(c14n_method).ok_or_else(|| bad_sig("unsupported CanonicalizationMethod"))?;
    let sig_hash = match sig_method.attribute("Algorithm") {
        Some("http://www.w3.org/2000/09/xmldsig#rsa-sha1") => HashAlg::Sha1,
        Some("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256") => HashAlg::Sha256,
        Some("http://www.w3.org/2001/04/xmldsig-more#rsa-sha512") => HashAlg::Sha512,
        _ => return Err(bad_sig("unsupported SignatureMethod")),
    };
    if child_elements(sig_method)
        .iter()
        .any(|n| is_dsig(*n, "HMACOutputLength"))
    {
        return Err(bad_sig("unsupported SignatureMethod"));
    }

    // The one Reference must cover the whole document (URI="").
    if reference.attribute("URI") != Some("") {
        return Err(bad_sig("unexpected Reference (URI must be empty)"));
    }
    let ref_parts = child_elements(reference);
    let (transforms, digest_method, digest_value) = match ref_parts.as_slice() {
        [t, m, v]
            if is_dsig(*t, "Transforms")
                && is_dsig(*m, "DigestMethod")
                && is_dsig(*v, "DigestValue") =>
        {
            (*t, *m, *v)
        }
        _ => return Err(bad_sig("malformed Reference")),
    };
    let transform_list = child_elements(transforms);
    if !transform_list.iter().all(|n| is_dsig(*n, "Transform")) {
        return Err(bad_sig("malformed Transforms"));
    }
    let ref_c14n = match transform_list.as_slice() {
        [env] if env.attribute("Algorithm") == Some(ENVELOPED) => C14nAlg {
            exclusive: false,
            with_comments: false,
            inclusive_prefixes: Vec::new(),
        },
        [env, c] if env.attribute("Algorithm") == Some(ENVELOPED) => {
            c14n_alg(*c).ok_or_else(|| bad_sig("unsupported Transform"))?
        }
        _ => return Err(bad_sig("unsupported Transforms")),
    };
    let ref_hash = match digest_method.attribute("Algorithm") {
        Some("http://www.w3.org/2000/09/xmldsig#sha1") => HashAlg::Sha1,
        Some("http://www.w3.org/2001/04/xmlenc#sha256") => HashAlg::Sha256,
        Some("http://www.w3.org/2001/04/xmlenc#sha512") => HashAlg::Sha512,
        _ => return Err(bad_sig("unsupported DigestMethod")),
    };
    let expected_digest =
        b64_text(digest_value).ok_or_else(|| bad_sig("DigestValue is not base64"))?;

    // URI="" selects the document without comments, whatever the C14N flavour.
    let ref_octets = canonicalize(doc.root(), &ref_c14n, false, Some(sig.id()));
    if ref_hash.digest(ref_octets.as_bytes()) != expected_digest {
        return Err(bad_sig("digest mismatch: signed content was altered"));
    }

    let si_octets = canonicalize(signed_info, &si_c14n, si_c14n.with_comments, None);
    let hashed = sig_hash.digest(si_octets.as_bytes());
    let signature = b64_text(sig_value).ok_or_else(|| bad_sig("SignatureValue is not base64"))?;
    if keys
        .iter()
        .any(|k| k.verify(sig_hash.pkcs1v15(), &hashed, &signature).is_ok())
    {
        Ok(())
    } else {
        Err(bad_sig("signature does not match the UIDAI certificate"))
    }
}

// ---------------------------------------------------------------- C14N

/// Canonical XML 1.0 (inclusive) or Exclusive XML Canonicalization 1.0 of
/// the document (`node` = root) or of the subtree at element `node`,
/// leaving out the subtree `skip` (the enveloped signature).
fn canonicalize(node: Node, alg: &C14nAlg, with_comments: bool, skip: Option<NodeId>) -> String {
    let mut c = Canon {
        input: node.document().input_text(),
        alg,
        with_comments,
        skip,
        out: String::new(),
    };
    if node.is_root() {
        let mut after_root = false;
        for child in node.children() {
            match child.node_type() {
                NodeType::Element => {
                    c.element(child, &BTreeMap::new(), true);
                    after_root = true;
                }
                NodeType::Comment | NodeType::PI => {
                    if child.is_comment() && !with_comments {
                        continue;
                    }
                    if after_root {
                        c.out.push('\n');
                    }
                    c.leaf(child);
                    if !after_root {
                        c.out.push('\n');
                    }
                }
                _ => {}
            }
        }
    } else {
        c.element(node, &BTreeMap::new(), true);
    }
    c.out
}

struct Canon<'c> {
    input: &'c str,
    alg: &'c C14nAlg,
    with_comments: bool,
    skip: Option<NodeId>,
    out: String,
}

/// prefix ("" = default namespace) -> namespace URI, as rendered so far.
type NsContext = BTreeMap<String, String>;

impl Canon<'_> {
    fn element_qname(&self, el: Node) -> String {
        let src = self.input.get(el.range()).unwrap_or("");
        src.trim_start_matches('<')
            .split(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .next()
            .unwrap_or("")
            .to_string()
    }

    fn element(&mut self, el: Node, parent_ctx: &NsContext, apex: bool) {
        let qname = self.element_qname(el);
        let el_prefix = qname.split_once(':').map_or("", |(p, _)| p).to_string();

        let mut in_scope = NsContext::new();
        for ns in el.namespaces() {
            if ns.uri() == XML_NS {
                continue;
            }
            let prefix = ns.name().unwrap_or("");
            if prefix.is_empty() && ns.uri().is_empty() {
                continue; // xmlns="" = no default namespace
            }
            in_scope.insert(prefix.to_string(), ns.uri().to_string());
        }

        // Attributes: (namespace URI, local name, qname, value).
        let mut attrs: Vec<(String, String, String, String)> = el
            .attributes()
            .map(|a| {
                let qn = self
                    .input
                    .get(a.range_qname())
                    .unwrap_or(a.name())
                    .to_string();
                (
                    a.namespace().unwrap_or("").to_string(),
                    a.name().to_string(),
                    qn,
                    a.value().to_string(),
                )
            })
            .collect();
        if apex && !self.alg.exclusive {
            // Inclusive C14N of a subset: inherit xml:* attributes.
            for anc in el.ancestors().skip(1).filter(|n| n.is_element()) {
                for a in anc.attributes().filter(|a| a.namespace() == Some(XML_NS)) {
                    if !attrs.iter().any(|x| x.0 == XML_NS && x.1 == a.name()) {
                        attrs.push((
                            XML_NS.to_string(),
                            a.name().to_string(),
                            format!("xml:{}", a.name()),
                            a.value().to_string(),
                        ));
                    }
                }
            }
        }
        attrs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));

        // Which namespace declarations to consider.
        let mut candidates: Vec<String> = Vec::new();
        if self.alg.exclusive {
            candidates.push(el_prefix.clone());
            for (_, _, qn, _) in &attrs {
                if let Some((p, _)) = qn.split_once(':') {
                    if p != "xml" {
                        candidates.push(p.to_string());
                    }
                }
            }
            for p in &self.alg.inclusive_prefixes {
                if p.is_empty() || in_scope.contains_key(p) {
                    candidates.push(p.clone());
                }
            }
        } else {
            candidates.push(String::new());
            candidates.extend(in_scope.keys().cloned());
        }
        candidates.sort();
        candidates.dedup();

        let mut ctx = parent_ctx.clone();
        let mut decls: Vec<(String, String)> = Vec::new();
        for p in candidates {
            let current = in_scope.get(&p).map(String::as_str).unwrap_or("");
            let rendered = parent_ctx.get(&p).map(String::as_str).unwrap_or("");
            let emit = if p.is_empty() {
                current != rendered
            } else {
                in_scope.contains_key(&p) && parent_ctx.get(&p).map(String::as_str) != Some(current)
            };
            if emit {
                ctx.insert(p.clone(), current.to_string());
                decls.push((p, current.to_string()));
            }
        }

        self.out.push('<');
        self.out.push_str(&qname);
        for (p, uri) in &decls {
            if p.is_empty() {
                self.out.push_str(" xmlns=\"");
            } else {
                self.out.push_str(" xmlns:");
                self.out.push_str(p);
                self.out.push_str("=\"");
            }
            escape_attr(&mut self.out, uri);
            self.out.push('"');
        }
        for (_, _, qn, value) in &attrs {
            self.out.push(' ');
            self.out.push_str(qn);
            self.out.push_str("=\"");
            escape_attr(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('>');

        for child in el.children() {
            if Some(child.id()) == self.skip {
                continue;
            }
            match child.node_type() {
                NodeType::Element => self.element(child, &ctx, false),
                NodeType::Text => escape_text(&mut self.out, child.text().unwrap_or("")),
                NodeType::Comment if self.with_comments => self.leaf(child),
                NodeType::PI => self.leaf(child),
                _ => {}
            }
        }

        self.out.push_str("</");
        self.out.push_str(&qname);
        self.out.push('>');
    }

    /// Comment or processing instruction.
    fn leaf(&mut self, node: Node) {
        if node.is_comment() {
            self.out.push_str("<!--");
            self.out.push_str(node.text().unwrap_or(""));
            self.out.push_str("-->");
        } else if let Some(pi) = node.pi() {
            self.out.push_str("<?");
            self.out.push_str(pi.target);
            if let Some(v) = pi.value.filter(|v| !v.is_empty()) {
                self.out.push(' ');
                self.out.push_str(v);
            }
            self.out.push_str("?>");
        }
    }
}

fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

// ---------------------------------------------------------------- unit tests

#[cfg(test)]
mod tests {
    use super::*;

    fn inclusive() -> C14nAlg {
        C14nAlg {
            exclusive: false,
            with_comments: false,
            inclusive_prefixes: vec![],
        }
    }

    #[test]
    fn redacts_plain_and_grouped_numbers() {
        assert_eq!(
            redact_aadhaar_numbers("id 123456789012."),
            "id XXXXXXXX9012."
        );
        assert_eq!(redact_aadhaar_numbers("1234 5678 9012"), "XXXXXXXX9012");
        assert_eq!(redact_aadhaar_numbers("a1234-5678-9012b"), "aXXXXXXXX9012b");
        // Not 12 digits, or part of a longer run: left alone.
        assert_eq!(redact_aadhaar_numbers("12345678901"), "12345678901");
        assert_eq!(redact_aadhaar_numbers("1234567890123"), "1234567890123");
        assert_eq!(redact_aadhaar_numbers("1234 5678-9012"), "1234 5678-9012");
        assert_eq!(redact_aadhaar_numbers("560038"), "560038");
        assert_eq!(
            redact_aadhaar_numbers("नाम 234567890123 ✓"),
            "नाम XXXXXXXX0123 ✓"
        );
        assert_eq!(redact_aadhaar_numbers(""), "");
    }

    #[test]
    fn c14n_document_basics() {
        let xml = "<?xml version=\"1.0\"?>\n<?pi  data?>\n<!--c-->\n<r b='2' a=\"1&amp;&#xD;\" xmlns:z='urn:z' xmlns='urn:d'>\
                   <z:e z:x='1' y='&lt;'/><![CDATA[<x>]]>\r\n<f xmlns=''/><!--in--></r>";
        let doc = Document::parse(xml).unwrap();
        let got = canonicalize(doc.root(), &inclusive(), false, None);
        assert_eq!(
            got,
            "<?pi data?>\n<r xmlns=\"urn:d\" xmlns:z=\"urn:z\" a=\"1&amp;&#xD;\" b=\"2\">\
             <z:e y=\"&lt;\" z:x=\"1\"></z:e>&lt;x&gt;\n<f xmlns=\"\"></f></r>"
        );
        let with = canonicalize(doc.root(), &inclusive(), true, None);
        assert!(with.contains("\n<!--c-->\n<r") && with.contains("<!--in--></r>"));
    }

    #[test]
    fn c14n_subset_inherits_namespaces() {
        let xml = "<r xmlns:a='urn:a'><S xmlns='urn:s'><I><x/></I></S></r>";
        let doc = Document::parse(xml).unwrap();
        let i = doc.descendants().find(|n| n.has_tag_name("I")).unwrap();
        assert_eq!(
            canonicalize(i, &inclusive(), false, None),
            "<I xmlns=\"urn:s\" xmlns:a=\"urn:a\"><x></x></I>"
        );
        let exc = C14nAlg {
            exclusive: true,
            with_comments: false,
            inclusive_prefixes: vec![],
        };
        assert_eq!(
            canonicalize(i, &exc, false, None),
            "<I xmlns=\"urn:s\"><x></x></I>"
        );
    }

    #[test]
    fn dtds_are_refused_by_the_parser_itself() {
        let xxe = "<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><r>&xxe;</r>";
        // roxmltree's defaults (allow_dtd = false) refuse it on their own...
        assert!(Document::parse(xxe).is_err());
        assert!(Document::parse_with_options(xxe, roxmltree::ParsingOptions::default()).is_err());
        // ...and parse_xml refuses any DOCTYPE, even an empty one.
        assert!(matches!(parse_xml(xxe), Err(AadhaarError::NotAadhaar(_))));
        assert!(matches!(
            parse_xml("<!DOCTYPE r><r/>"),
            Err(AadhaarError::NotAadhaar(_))
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}{}", "<a>".repeat(5000), "</a>".repeat(5000));
        assert!(parse_xml(&deep).is_err());
    }

    #[test]
    fn reference_id_parsing() {
        let (last4, at) = parse_reference_id("123420190412120013476").unwrap();
        assert_eq!(last4, "1234");
        assert_eq!(at.to_rfc3339(), "2019-04-12T06:30:13.476+00:00");
        assert!(parse_reference_id("12342019041212001").is_err());
        assert!(parse_reference_id("123420191312120013476").is_err());
        assert!(parse_reference_id("12x420190412120013476").is_err());
    }

    #[test]
    fn address_one_line_skips_empty_parts() {
        let a = Address {
            house: "12".into(),
            street: "MG Road".into(),
            state: "Karnataka".into(),
            pc: "560001".into(),
            ..Default::default()
        };
        assert_eq!(a.one_line(), "12, MG Road, Karnataka, 560001");
    }

    #[test]
    fn certificate_rejects_garbage() {
        assert!(matches!(
            UidaiCertificate::from_pem_or_der(b"nonsense"),
            Err(AadhaarError::Certificate(_))
        ));
        assert!(UidaiCertificate::from_pem_or_der(
            b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"
        )
        .is_err());
        assert!(UidaiCertificate::from_pem_or_der(b"").is_err());
    }

    /// Tiny xorshift PRNG so the fuzz test needs no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn fuzz_inputs_never_panic() {
        let key = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&[0xC5; 256]),
            rsa::BigUint::from(65537u32),
        )
        .unwrap();
        let cert = UidaiCertificate { keys: vec![key] };
        let limits = Limits::default();
        let now = Utc::now();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        // A small real ZIP (stored, unencrypted) to mutate as well.
        let mut seeds: Vec<Vec<u8>> = vec![b"PK\x05\x06".to_vec(), vec![0; 22]];
        {
            let mut buf = Cursor::new(Vec::new());
            let mut w = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            w.start_file("a.xml", opts).unwrap();
            std::io::Write::write_all(&mut w, b"<OfflinePaperlessKyc/>").unwrap();
            w.finish().unwrap();
            seeds.push(buf.into_inner());
        }
        for round in 0..3000 {
            let data: Vec<u8> = if round % 3 == 0 {
                let len = (rng.next() % 512) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut d = seeds[round % seeds.len()].clone();
                if !d.is_empty() {
                    for _ in 0..1 + rng.next() % 4 {
                        let i = (rng.next() as usize) % d.len();
                        d[i] = rng.next() as u8;
                    }
                    let cut = (rng.next() as usize) % (d.len() + 1);
                    if round % 2 == 0 {
                        d.truncate(cut);
                    }
                }
                d
            };
            let _ = verify_offline_ekyc(&data, "1234", &cert, now, &limits);
            let _ = UidaiCertificate::from_pem_or_der(&data);
            if let Ok(s) = std::str::from_utf8(&data) {
                let _ = redact_aadhaar_numbers(s);
            }
        }
        // Random XML-ish strings through the parser and verifier.
        let pieces = [
            "<",
            ">",
            "/",
            "OfflinePaperlessKyc",
            "Signature",
            " xmlns=\"http://www.w3.org/2000/09/xmldsig#\"",
            "SignedInfo",
            "Reference URI=\"\"",
            "=\"",
            "\"",
            "&amp;",
            "<!--x-->",
            "<?p?>",
            " a:b=\"1\"",
            " xmlns:a=\"u\"",
        ];
        for _ in 0..3000 {
            let n = rng.next() % 40;
            let s: String = (0..n)
                .map(|_| pieces[(rng.next() as usize) % pieces.len()])
                .collect();
            if let Ok(doc) = parse_xml(&s) {
                let _ = verify_signature(&doc, &cert.keys);
                let _ = canonicalize(doc.root(), &inclusive(), true, None);
            }
        }
    }
}
