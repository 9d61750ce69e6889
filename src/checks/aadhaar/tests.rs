//! Unit tests of the parts: redaction, canonicalisation, the parser's refusals, and
//! inputs that must never panic.

use super::c14n::{canonicalize, C14nAlg};
use super::identity::{parse_reference_id, parse_xml};
use super::signature::verify_signature;
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
