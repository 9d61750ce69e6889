//! The identity inside the e-KYC XML: a parser that refuses DTDs and deep or huge
//! documents, the extraction of name, birth date, address and photo, and the redaction
//! of Aadhaar numbers from any text kept.

use super::*;

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

/// Deepest element nesting accepted (UIDAI's files are ~4 deep); bounds the
/// recursion of the canonicaliser.
pub(super) const MAX_DEPTH: usize = 64;
pub(super) const MAX_NODES: u32 = 100_000;

pub(super) fn parse_xml(xml: &str) -> Result<Document<'_>, AadhaarError> {
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

pub(super) fn child_elements<'a, 'i>(node: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    node.children().filter(|n| n.is_element()).collect()
}

pub(super) fn text_of(node: Node) -> String {
    node.children()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

pub(super) fn only_child<'a, 'i>(
    parent: Node<'a, 'i>,
    name: &str,
) -> Result<Node<'a, 'i>, AadhaarError> {
    let mut found = parent.children().filter(|n| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace().is_none()
    });
    match (found.next(), found.next()) {
        (Some(n), None) => Ok(n),
        (None, _) => Err(AadhaarError::NotAadhaar(format!("missing <{name}>"))),
        (Some(_), Some(_)) => Err(AadhaarError::NotAadhaar(format!("more than one <{name}>"))),
    }
}

pub(super) fn extract(root: Node) -> Result<OfflineKyc, AadhaarError> {
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
pub(super) fn parse_reference_id(r: &str) -> Result<(String, DateTime<Utc>), AadhaarError> {
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
pub(super) fn match_aadhaar(b: &[u8], start: usize) -> Option<(usize, usize)> {
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

/// How a detail of the e-KYC file compares with what the merchant told us of the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    Match,
    Mismatch,
    /// The file or the user record lacks it.
    NotAvailable,
}

/// Whether `phone` is the mobile number the file's `Poi/@m` was made from, as UIDAI
/// hashes it: SHA-256 of mobile + share code, hashed again as hex as many times as the
/// last digit of the Aadhaar number says (once for 0 and 1).
pub fn mobile_match(file: &OfflineKyc, phone: &str, share_code: &str) -> Match {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let Some(mobile) = digits
        .get(digits.len().saturating_sub(10)..)
        .filter(|m| m.len() == 10)
    else {
        return Match::NotAvailable;
    };
    let Some(want) = file.mobile_hash.as_deref().map(str::to_ascii_lowercase) else {
        return Match::NotAvailable;
    };
    let rounds = file
        .aadhaar_last4
        .chars()
        .last()
        .and_then(|c| c.to_digit(10))
        .unwrap_or(1)
        .max(1);
    let mut hash = hex::encode(Sha256::digest(format!("{mobile}{share_code}").as_bytes()));
    for _ in 1..rounds {
        hash = hex::encode(Sha256::digest(hash.as_bytes()));
    }
    if hash == want {
        Match::Match
    } else {
        Match::Mismatch
    }
}

/// Whether the file's name is the user's, letters compared without case, punctuation or
/// extra spaces ("Asha  Rao." is "asha rao").
pub fn name_match(file: &OfflineKyc, user_name: Option<&str>) -> Match {
    let plain = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let on_file = plain(&file.name);
    match user_name.map(plain).filter(|n| !n.is_empty()) {
        _ if on_file.is_empty() => Match::NotAvailable,
        None => Match::NotAvailable,
        Some(name) if name == on_file => Match::Match,
        Some(_) => Match::Mismatch,
    }
}
