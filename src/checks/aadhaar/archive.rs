//! The e-KYC ZIP: one XML file, encrypted with the share code (ZipCrypto or AES), read
//! under a size limit so that a ZIP bomb is refused.

use super::*;

pub(super) fn read_zip_xml(
    zip: &[u8],
    share_code: &str,
    max_xml: u64,
) -> Result<Vec<u8>, AadhaarError> {
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
