//! The Aadhaar photo the agent and the auditor compare with the live face: the one in
//! the customer's e-KYC file, or else the merchant's `aadhaar_details.photo_link`.
//!
//! A merchant's link is fetched by this server, through the same guard as webhooks (no
//! internal addresses, the operator's proxy if set), never by a staff browser: the link
//! could point anywhere, and a browser would show the merchant's host who looks at
//! which case. What comes back must be a JPEG or PNG no larger than
//! [`MAX_PHOTO_BYTES`].

use crate::error::Result;
use crate::outbound::{check_resolved, check_url, guarded_client};
use crate::state::AppState;
use crate::store::Request;
use std::time::Duration;

pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// An image and its content type.
pub struct Photo {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Where a request's photo comes from, without fetching it: `"ekyc"`, `"photo_link"`
/// or `None`.
pub async fn photo_source(state: &AppState, request: &Request) -> Result<Option<&'static str>> {
    if state.store.has_aadhaar_photo(request.id).await? {
        return Ok(Some("ekyc"));
    }
    Ok(photo_link(state, request)?.map(|_| "photo_link"))
}

/// The request's Aadhaar photo, or `None` when there is none or the merchant's link
/// did not give an image (why is logged, without the link, which may carry a token).
pub async fn aadhaar_photo(state: &AppState, request: &Request) -> Result<Option<Photo>> {
    if let Some(bytes) = state.store.aadhaar_photo(request.id).await? {
        return Ok(image_type(&bytes).map(|content_type| Photo {
            content_type,
            bytes,
        }));
    }
    let Some(link) = photo_link(state, request)? else {
        return Ok(None);
    };
    match fetch(state, &link).await {
        Ok(photo) => Ok(Some(photo)),
        Err(reason) => {
            tracing::warn!(request_id = request.id, "photo_link not shown: {reason}");
            Ok(None)
        }
    }
}

fn photo_link(state: &AppState, request: &Request) -> Result<Option<String>> {
    let Some(details) = state.store.merchant_aadhaar_details(request)? else {
        return Ok(None);
    };
    let details: serde_json::Value = serde_json::from_str(&details).unwrap_or_default();
    let link = details
        .get("photo_link")
        .and_then(|l| l.as_str())
        .map(str::trim)
        .unwrap_or_default();
    Ok((!link.is_empty()).then(|| link.to_string()))
}

/// JPEG or PNG, by their first bytes (the sender's content type is not trusted).
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

async fn fetch(state: &AppState, link: &str) -> std::result::Result<Photo, String> {
    let allow_internal = state.config.webhook_allow_private_addresses;
    let url = check_url(link, allow_internal).map_err(str::to_string)?;
    let proxy = Some(state.config.webhook_proxy.as_str()).filter(|p| !p.is_empty());
    // Through a proxy the name is resolved out of sight: check it here first.
    if proxy.is_some() && !allow_internal {
        check_resolved(&url).await?;
    }
    let client = guarded_client(
        allow_internal,
        proxy,
        FETCH_TIMEOUT,
        concat!("vkyc-photos/", env!("CARGO_PKG_VERSION")),
    )
    .map_err(|e| e.to_string())?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("fetch failed: {}", e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("the link answered {}", response.status()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_PHOTO_BYTES as u64)
    {
        return Err("the image is too large".into());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("read failed: {}", e.without_url()))?
    {
        if bytes.len() + chunk.len() > MAX_PHOTO_BYTES {
            return Err("the image is too large".into());
        }
        bytes.extend_from_slice(&chunk);
    }
    let content_type = image_type(&bytes).ok_or("the link did not give a JPEG or PNG")?;
    Ok(Photo {
        content_type,
        bytes,
    })
}
