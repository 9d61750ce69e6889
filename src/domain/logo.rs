//! A bank's logo for its journey pages: an uploaded PNG or JPEG, decoded under limits,
//! scaled to fit the header and written again as a PNG, so what is served is pixels this
//! server drew (no metadata, no trailing payload, no other format) and small.

use image::{ImageFormat, ImageReader};
use sha2::{Digest, Sha256};
use std::io::Cursor;

/// The largest upload read.
pub const MAX_UPLOAD_BYTES: usize = 1024 * 1024;
/// The largest picture decoded, each side (a tiny file may claim a huge picture).
const MAX_SIDE: u32 = 4096;
/// The box the logo is scaled down into.
pub const FIT_WIDTH: u32 = 480;
pub const FIT_HEIGHT: u32 = 160;

/// A logo as kept and served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    /// The PNG's SHA-256, hex: its name in `/brand/<id>.png` and in templates.
    pub id: String,
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Why an upload is not a logo.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogoError {
    #[error("the logo is larger than {} KiB", MAX_UPLOAD_BYTES / 1024)]
    TooLarge,
    #[error("the logo must be a PNG or JPEG picture")]
    NotAnImage,
    #[error("the picture is larger than {MAX_SIDE}×{MAX_SIDE} pixels")]
    TooManyPixels,
}

/// Decodes, scales and re-encodes an upload.
pub fn reencode(bytes: &[u8]) -> Result<Logo, LogoError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(LogoError::TooLarge);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| LogoError::NotAnImage)?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(LogoError::NotAnImage);
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(u64::from(MAX_SIDE) * u64::from(MAX_SIDE) * 4);
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => LogoError::TooManyPixels,
        _ => LogoError::NotAnImage,
    })?;
    let picture = if picture.width() > FIT_WIDTH || picture.height() > FIT_HEIGHT {
        picture.thumbnail(FIT_WIDTH, FIT_HEIGHT)
    } else {
        picture
    };
    let picture = image::DynamicImage::ImageRgba8(picture.to_rgba8());
    let mut png = Vec::new();
    picture
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|_| LogoError::NotAnImage)?;
    Ok(Logo {
        id: hex::encode(Sha256::digest(&png)),
        width: picture.width(),
        height: picture.height(),
        png,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let picture = image::RgbaImage::from_pixel(width, height, image::Rgba([122, 31, 92, 255]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgba8(picture)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn logos_are_redrawn_small_and_named_by_their_png() {
        let big = reencode(&png(1200, 400)).unwrap();
        assert_eq!((big.width, big.height), (480, 160));
        assert!(big.png.starts_with(b"\x89PNG"));
        assert_eq!(big.id, hex::encode(Sha256::digest(&big.png)));
        // Bytes after the picture are not kept.
        let mut trailing = png(40, 20);
        trailing.extend_from_slice(b"<script>alert(1)</script>");
        let kept = reencode(&trailing).unwrap();
        assert!(!kept.png.windows(8).any(|w| w == b"<script>"));
        assert_eq!((kept.width, kept.height), (40, 20));
        assert_eq!(reencode(b"GIF89a...."), Err(LogoError::NotAnImage));
        assert_eq!(reencode(b"<svg/>"), Err(LogoError::NotAnImage));
        assert_eq!(
            reencode(&vec![0; MAX_UPLOAD_BYTES + 1]),
            Err(LogoError::TooLarge)
        );
        // A PNG header that claims 100000 × 100000 pixels is refused before decoding.
        let mut huge = png(1, 1);
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(reencode(&huge).is_err());
    }
}
