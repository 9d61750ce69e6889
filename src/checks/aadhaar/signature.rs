//! The enveloped XML-DSig signature: references, digests and the RSA signature over
//! the canonical `SignedInfo`, checked against the operator's UIDAI certificate.

use super::c14n::{canonicalize, C14nAlg};
use super::identity::{child_elements, text_of};
use super::*;

pub(super) const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(super) const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub(super) const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

pub(super) fn c14n_alg(node: Node) -> Option<C14nAlg> {
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
pub(super) enum HashAlg {
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

pub(super) fn is_dsig(node: Node, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(DSIG_NS)
        && node.tag_name().name() == name
}

pub(super) fn b64_text(node: Node) -> Option<Vec<u8>> {
    let s: String = text_of(node)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .ok()
}

/// Verifies the single enveloped signature over the whole document.
pub(super) fn verify_signature(doc: &Document, keys: &[RsaPublicKey]) -> Result<(), AadhaarError> {
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
