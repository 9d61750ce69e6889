//! Tests for `vkyc::checks::aadhaar` against files signed by an independent signer
//! (xmlsec1), made by the scripts in tests/support/ (needs Debian packages
//! xmlsec1, openssl, zip, p7zip-full).

use crate::support::{support_dir, Signer};
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use vkyc::checks::aadhaar::{
    redact_aadhaar_numbers, verify_offline_ekyc, AadhaarError, Limits, OfflineKyc, UidaiCertificate,
};

impl Signer {
    fn certificate(&self) -> UidaiCertificate {
        UidaiCertificate::from_pem_or_der(&std::fs::read(&self.cert).unwrap()).unwrap()
    }

    /// ZIPs an arbitrary XML document (unsigned by the script) with share code 1234.
    fn zip_raw_xml(&self, xml: &[u8], extra: &[&str]) -> Vec<u8> {
        let file = self.path("raw.xml");
        std::fs::write(&file, xml).unwrap();
        let mut args = vec!["--raw-xml", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.zip(&args)
    }

    /// A signed XML document (as the script makes it, before zipping).
    fn signed_xml(&self, extra: &[&str]) -> String {
        let keep = self.path("kept.xml");
        let mut args = vec!["--keep-xml", keep.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.zip(&args);
        std::fs::read_to_string(keep).unwrap()
    }
}

fn verify(zip: &[u8], code: &str, cert: &UidaiCertificate) -> Result<OfflineKyc, AadhaarError> {
    verify_offline_ekyc(zip, code, cert, Utc::now(), &Limits::default())
}

/// `at` as the script's --generated argument (IST wall clock).
fn ist(at: DateTime<Utc>) -> String {
    (at + Duration::minutes(330))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[test]
fn happy_path_extracts_all_fields() {
    let s = Signer::new();
    let generated = Utc::now() - Duration::hours(2);
    let zip = s.zip(&[
        "--name",
        "Asha Rani",
        "--dob",
        "15-08-1991",
        "--gender",
        "F",
        "--last4",
        "4321",
        "--generated",
        &ist(generated),
    ]);
    let kyc = verify(&zip, "1234", &s.certificate()).expect("valid file");
    assert_eq!(kyc.name, "Asha Rani");
    assert_eq!(kyc.dob, "15-08-1991");
    assert_eq!(kyc.gender, "F");
    assert_eq!(kyc.aadhaar_last4, "4321");
    assert!(kyc.reference_id.starts_with("4321"));
    assert_eq!(kyc.reference_id.len(), 21);
    // The script stamps milliseconds 123; compare to the second.
    assert_eq!(kyc.generated_at.timestamp(), generated.timestamp());
    assert_eq!(kyc.address.careof, "S/O Test Parent");
    assert_eq!(kyc.address.house, "12");
    assert_eq!(kyc.address.street, "100 Feet Road");
    assert_eq!(kyc.address.landmark, "Near Park & Temple");
    assert_eq!(kyc.address.loc, "Indiranagar");
    assert_eq!(kyc.address.vtc, "Bengaluru");
    assert_eq!(kyc.address.po, "Indiranagar");
    assert_eq!(kyc.address.subdist, "Bangalore North");
    assert_eq!(kyc.address.dist, "Bengaluru Urban");
    assert_eq!(kyc.address.state, "Karnataka");
    assert_eq!(kyc.address.country, "India");
    assert_eq!(kyc.address.pc, "560038");
    assert_eq!(
        kyc.address.one_line(),
        "S/O Test Parent, 12, 100 Feet Road, Near Park & Temple, Indiranagar, Bengaluru, \
         Indiranagar, Bangalore North, Bengaluru Urban, Karnataka, India, 560038"
    );
    assert_eq!(kyc.email_hash.as_deref().map(str::len), Some(64));
    assert_eq!(kyc.mobile_hash.as_deref().map(str::len), Some(64));
    assert!(kyc.photo_jpeg.starts_with(&[0xFF, 0xD8]), "photo is a JPEG");

    let json = serde_json::to_value(&kyc).unwrap();
    assert_eq!(json["aadhaar_last4"], "4321");
    assert_eq!(json["address"]["pc"], "560038");
    assert!(json["generated_at"].as_str().unwrap().ends_with('Z'));
    assert!(json.get("photo_jpeg").is_none());
}

#[test]
fn happy_path_sha1_sha256_zipcrypto_aes() {
    let s = Signer::new();
    let cert = s.certificate();
    for digest in ["sha1", "sha256"] {
        for aes in [false, true] {
            let mut args = vec!["--digest", digest, "--name", "Variant Person"];
            if aes {
                args.push("--aes");
            }
            let kyc = verify(&s.zip(&args), "1234", &cert)
                .unwrap_or_else(|e| panic!("{digest} aes={aes}: {e}"));
            assert_eq!(kyc.name, "Variant Person");
            assert!(!kyc.photo_jpeg.is_empty());
        }
    }
}

#[test]
fn wrong_share_code() {
    let s = Signer::new();
    let cert = s.certificate();
    for extra in [&[][..], &["--aes"][..]] {
        let zip = s.zip(extra);
        for code in ["9999", "4321", "", "12345", "abcd"] {
            let err = verify(&zip, code, &cert).unwrap_err();
            assert!(
                matches!(err, AadhaarError::WrongShareCode),
                "{extra:?} {code}: {err}"
            );
            assert_eq!(err.code(), "wrong_share_code");
        }
        // Surrounding whitespace from a form field is tolerated.
        assert!(verify(&zip, " 1234 ", &cert).is_ok());
    }
}

#[test]
fn tampered_content_is_refused() {
    let s = Signer::new();
    let cert = s.certificate();
    for extra in [
        &["--tamper"][..],
        &["--tamper", "--digest", "sha256", "--aes"][..],
    ] {
        let err = verify(&s.zip(extra), "1234", &cert).unwrap_err();
        assert!(matches!(err, AadhaarError::BadSignature(_)), "{err}");
        assert_eq!(err.code(), "bad_signature");
    }
}

#[test]
fn other_key_is_refused_even_with_its_cert_in_keyinfo() {
    let operator = Signer::new();
    let attacker = Signer::new();
    // The attacker's file carries the attacker's certificate in KeyInfo.
    let xml = attacker.signed_xml(&[]);
    assert!(xml.contains("<X509Certificate>"));
    let zip = attacker.zip(&[]);
    assert!(verify(&zip, "1234", &attacker.certificate()).is_ok());
    let err = verify(&zip, "1234", &operator.certificate()).unwrap_err();
    assert!(matches!(err, AadhaarError::BadSignature(_)), "{err}");
}

#[test]
fn too_old_and_future() {
    let s = Signer::new();
    let cert = s.certificate();
    let old = s.zip(&["--generated", &ist(Utc::now() - Duration::days(4))]);
    let err = verify(&old, "1234", &cert).unwrap_err();
    assert!(matches!(err, AadhaarError::TooOld { .. }), "{err}");
    assert_eq!(err.code(), "too_old");

    let future = s.zip(&["--generated", &ist(Utc::now() + Duration::hours(1))]);
    let err = verify(&future, "1234", &cert).unwrap_err();
    assert!(matches!(err, AadhaarError::FromTheFuture), "{err}");

    // Slight clock skew is fine; 2 days old is fine.
    let skew = s.zip(&["--generated", &ist(Utc::now() + Duration::minutes(2))]);
    assert!(verify(&skew, "1234", &cert).is_ok());
    let recent = s.zip(&["--generated", &ist(Utc::now() - Duration::days(2))]);
    assert!(verify(&recent, "1234", &cert).is_ok());
}

#[test]
fn not_a_zip() {
    let s = Signer::new();
    let cert = s.certificate();
    for data in [
        &b""[..],
        b"hello",
        b"<OfflinePaperlessKyc/>",
        &[0x50, 0x4b, 3, 4, 0, 0],
    ] {
        let err = verify(data, "1234", &cert).unwrap_err();
        assert!(matches!(err, AadhaarError::NotAZip), "{err}");
        assert_eq!(err.code(), "not_a_zip");
    }
}

#[test]
fn oversized_upload() {
    let s = Signer::new();
    let cert = s.certificate();
    let big = vec![0u8; Limits::default().max_zip_bytes + 1];
    let err = verify(&big, "1234", &cert).unwrap_err();
    assert!(matches!(err, AadhaarError::TooLarge), "{err}");
    assert_eq!(err.code(), "too_large");
    // A valid file is refused too when the limit is lower, before parsing.
    let zip = s.zip(&[]);
    let limits = Limits {
        max_zip_bytes: zip.len() - 1,
        ..Limits::default()
    };
    let err = verify_offline_ekyc(&zip, "1234", &cert, Utc::now(), &limits).unwrap_err();
    assert!(matches!(err, AadhaarError::TooLarge));
}

/// Overwrites the uncompressed-size fields of every local and central header.
fn patch_declared_sizes(zip: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 30 <= zip.len() {
        match &zip[i..i + 4] {
            b"PK\x03\x04" => zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes()),
            b"PK\x01\x02" if i + 28 <= zip.len() => {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes())
            }
            _ => {}
        }
        i += 1;
    }
}

#[test]
fn zip_bomb() {
    let s = Signer::new();
    let cert = s.certificate();
    let zeros = vec![0u8; 50 * 1024 * 1024];
    let zip = s.zip_raw_xml(&zeros, &[]);
    assert!(
        zip.len() < Limits::default().max_zip_bytes,
        "compresses well"
    );
    let err = verify(&zip, "1234", &cert).unwrap_err();
    assert!(matches!(err, AadhaarError::ZipBomb), "{err}");
    assert_eq!(err.code(), "zip_bomb");

    // Headers that lie about the size: the limiting reader still stops it.
    let mut lying = zip.clone();
    patch_declared_sizes(&mut lying, 1000);
    let err = verify(&lying, "1234", &cert).unwrap_err();
    assert!(matches!(err, AadhaarError::ZipBomb), "{err}");
    // Same with a declared size just under our limit: reading stops at the
    // first byte past the declared size, never at the 50 MB.
    let limits = Limits {
        max_xml_bytes: 5000,
        ..Limits::default()
    };
    patch_declared_sizes(&mut lying, 4000);
    let err = verify_offline_ekyc(&lying, "1234", &cert, Utc::now(), &limits).unwrap_err();
    assert!(matches!(err, AadhaarError::ZipBomb), "{err}");

    // A real file refused when the XML limit is below its size.
    let zip = s.zip(&[]);
    let limits = Limits {
        max_xml_bytes: 1000,
        ..Limits::default()
    };
    let err = verify_offline_ekyc(&zip, "1234", &cert, Utc::now(), &limits).unwrap_err();
    assert!(matches!(err, AadhaarError::ZipBomb), "{err}");
}

#[test]
fn dtd_and_external_entities_are_refused() {
    let s = Signer::new();
    let cert = s.certificate();
    let signed = s.signed_xml(&[]);
    // Put a DTD with an external entity into an otherwise genuine file.
    let with_dtd = signed.replacen(
        "<OfflinePaperlessKyc",
        "<!DOCTYPE OfflinePaperlessKyc [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<OfflinePaperlessKyc",
        1,
    );
    let with_dtd = with_dtd.replacen("name=\"Test Person\"", "name=\"&xxe;\"", 1);
    assert!(with_dtd.contains("&xxe;"));
    for xml in [
        with_dtd.as_str(),
        "<!DOCTYPE r [<!ENTITY a \"aaaa\">]><OfflinePaperlessKyc a=\"&a;\"/>",
    ] {
        let err = verify(&s.zip_raw_xml(xml.as_bytes(), &[]), "1234", &cert).unwrap_err();
        assert!(matches!(err, AadhaarError::NotAadhaar(_)), "{err}");
        assert_eq!(err.code(), "not_aadhaar");
    }
}

#[test]
fn other_signed_xml_is_not_aadhaar() {
    let s = Signer::new();
    let cert = s.certificate();
    let zip = s.zip(&["--root", "PurchaseOrder"]);
    let err = verify(&zip, "1234", &cert).unwrap_err();
    assert!(matches!(err, AadhaarError::NotAadhaar(_)), "{err}");
}

#[test]
fn signature_structure_attacks() {
    let s = Signer::new();
    let cert = s.certificate();
    let signed = s.signed_xml(&[]);
    let start = signed.find("<Signature").unwrap();
    let end = signed.find("</Signature>").unwrap() + "</Signature>".len();
    let signature = &signed[start..end];

    let cases = [
        // Unsigned.
        signed.replace(signature, ""),
        // Signature duplicated.
        signed.replace(signature, &format!("{signature}{signature}")),
        // Signature moved inside UidData.
        signed
            .replace(signature, "")
            .replace("</UidData>", &format!("{signature}</UidData>")),
        // A Reference to something else.
        signed.replace("<Reference URI=\"\">", "<Reference URI=\"#x\">"),
        // Extra element added after signing.
        signed.replace("</UidData>", "</UidData><Extra/>"),
        // A comment is not signed content, but a changed attribute is.
        signed.replace("pc=\"560038\"", "pc=\"560039\""),
        // Broken SignatureValue.
        signed.replacen("<SignatureValue>", "<SignatureValue>AAAA", 1),
    ];
    for (i, xml) in cases.iter().enumerate() {
        assert_ne!(xml, &signed, "case {i} changed nothing");
        let err = verify(&s.zip_raw_xml(xml.as_bytes(), &[]), "1234", &cert).unwrap_err();
        assert!(
            matches!(err, AadhaarError::BadSignature(_)),
            "case {i}: {err}"
        );
    }

    // Comments are outside the signed node-set (URI=""), so adding one is harmless.
    let commented = signed.replace("<UidData>", "<UidData><!-- note -->");
    assert!(verify(&s.zip_raw_xml(commented.as_bytes(), &[]), "1234", &cert).is_ok());
    // And the untouched document round-trips through --raw-xml.
    assert!(verify(&s.zip_raw_xml(signed.as_bytes(), &[]), "1234", &cert).is_ok());
}

#[test]
fn zip_with_two_entries_is_not_aadhaar() {
    let s = Signer::new();
    let cert = s.certificate();
    std::fs::write(s.path("a.xml"), s.signed_xml(&[])).unwrap();
    std::fs::write(s.path("b.xml"), "<x/>").unwrap();
    let zip_path = s.path("two.zip");
    let status = Command::new("zip")
        .current_dir(s.dir.path())
        .args([
            "-q",
            "-P",
            "1234",
            zip_path.to_str().unwrap(),
            "a.xml",
            "b.xml",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let err = verify(&std::fs::read(&zip_path).unwrap(), "1234", &cert).unwrap_err();
    assert!(matches!(err, AadhaarError::NotAadhaar(_)), "{err}");

    // One entry that is not .xml.
    let txt_path = s.path("one.zip");
    std::fs::write(s.path("a.txt"), "hello").unwrap();
    let status = Command::new("zip")
        .current_dir(s.dir.path())
        .args(["-q", "-P", "1234", txt_path.to_str().unwrap(), "a.txt"])
        .status()
        .unwrap();
    assert!(status.success());
    let err = verify(&std::fs::read(&txt_path).unwrap(), "1234", &cert).unwrap_err();
    assert!(matches!(err, AadhaarError::NotAadhaar(_)), "{err}");
}

#[test]
fn aadhaar_numbers_in_fields_are_redacted() {
    let s = Signer::new();
    let zip = s.zip(&[
        "--name",
        "Ravi 2345 6789 0123 Kumar",
        "--careof",
        "C/O 987654321098",
        "--last4",
        "0123",
    ]);
    let kyc = verify(&zip, "1234", &s.certificate()).unwrap();
    assert_eq!(kyc.name, "Ravi XXXXXXXX0123 Kumar");
    assert_eq!(kyc.address.careof, "C/O XXXXXXXX1098");
    assert_eq!(kyc.aadhaar_last4, "0123");
    let json = serde_json::to_string(&kyc).unwrap();
    assert!(!json.contains("2345 6789") && !json.contains("98765432"));
    assert_eq!(
        redact_aadhaar_numbers("UID 2345-6789-0123"),
        "UID XXXXXXXX0123"
    );
}

#[test]
fn certificate_formats() {
    let s = Signer::new();
    let pem = std::fs::read(&s.cert).unwrap();
    let der_path = s.path("c.der");
    let ok = Command::new("openssl")
        .args([
            "x509",
            "-in",
            &s.cert,
            "-outform",
            "DER",
            "-out",
            der_path.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let der = std::fs::read(&der_path).unwrap();
    let zip = s.zip(&[]);
    for bytes in [&pem[..], &der[..]] {
        let cert = UidaiCertificate::from_pem_or_der(bytes).unwrap();
        assert!(verify(&zip, "1234", &cert).is_ok());
    }
    // A bundle with another certificate first still verifies (key rotation).
    let other = Signer::new();
    let mut bundle = std::fs::read(&other.cert).unwrap();
    bundle.extend_from_slice(&pem);
    let cert = UidaiCertificate::from_pem_or_der(&bundle).unwrap();
    assert_eq!(cert.key_count(), 2);
    assert!(verify(&zip, "1234", &cert).is_ok());
    // A private key is not a certificate.
    let err = UidaiCertificate::from_pem_or_der(&std::fs::read(&s.key).unwrap()).unwrap_err();
    assert_eq!(err.code(), "certificate");
}

#[test]
fn mangled_real_files_never_panic() {
    let s = Signer::new();
    let cert = s.certificate();
    let original = verify(&s.zip(&["--aes"]), "1234", &cert).unwrap();
    for zip in [s.zip(&[]), s.zip(&["--aes"])] {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..400 {
            let mut data = zip.clone();
            if round % 2 == 0 {
                data.truncate((next() as usize) % data.len());
            } else {
                for _ in 0..1 + next() % 3 {
                    let i = (next() as usize) % data.len();
                    data[i] ^= 1 << (next() % 8);
                }
            }
            if let Ok(kyc) = verify(&data, "1234", &cert) {
                // Only bytes outside the signed content can have changed.
                assert_eq!(kyc.name, original.name);
                assert_eq!(kyc.photo_jpeg, original.photo_jpeg);
            }
        }
    }
}

#[test]
fn canonicalization_variants_and_namespaces() {
    let s = Signer::new();
    let cert = s.certificate();
    let root_attrs =
        r#"xmlns:x="urn:x" x:a="1" xml:lang="en" b="&quot;q&quot;&#9;&lt;" xmlns:unused="urn:u""#;
    for c14n in [
        "inclusive",
        "inclusive-comments",
        "exclusive",
        "exclusive-comments",
    ] {
        for attrs in ["", root_attrs] {
            for digest in ["sha1", "sha256"] {
                let zip = s.zip(&["--c14n", c14n, "--root-attrs", attrs, "--digest", digest]);
                verify(&zip, "1234", &cert)
                    .unwrap_err_or_ok(&format!("{c14n} {digest} attrs={attrs:?}"));
            }
        }
    }
}

trait OkOrPanic {
    fn unwrap_err_or_ok(self, what: &str);
}

impl OkOrPanic for Result<OfflineKyc, AadhaarError> {
    fn unwrap_err_or_ok(self, what: &str) {
        if let Err(e) = self {
            panic!("{what}: {e}");
        }
    }
}

#[test]
fn support_dir_is_found() {
    assert!(Path::new(&support_dir()).join("make-aadhaar-zip").exists());
}
