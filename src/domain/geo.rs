//! Is a browser's GPS position inside India, as India officially draws it?
//!
//! The boundary is `data/india-boundary.geojson` (see `data/README.md`): Natural
//! Earth's India-worldview India, i.e. Jammu & Kashmir and Ladakh in full
//! (Gilgit-Baltistan, Pakistan-administered Kashmir, Siachen, Shaksgam and Aksai
//! Chin included), Arunachal Pradesh, and the Andaman & Nicobar and Lakshadweep
//! islands. It is embedded in the binary and parsed once, on first use.

use std::sync::OnceLock;

/// The boundary as GeoJSON (one MultiPolygon feature).
pub const BOUNDARY_GEOJSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/india-boundary.geojson"
));

/// One polygon: rings of (lon, lat) points (first = outer, rest = holes) and
/// its bounding box.
struct Polygon {
    rings: Vec<Vec<(f64, f64)>>,
    min_lon: f64,
    max_lon: f64,
    min_lat: f64,
    max_lat: f64,
}

impl Polygon {
    fn new(rings: Vec<Vec<(f64, f64)>>) -> Self {
        let (mut min_lon, mut max_lon) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut min_lat, mut max_lat) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(lon, lat) in rings.iter().flatten() {
            min_lon = min_lon.min(lon);
            max_lon = max_lon.max(lon);
            min_lat = min_lat.min(lat);
            max_lat = max_lat.max(lat);
        }
        Polygon {
            rings,
            min_lon,
            max_lon,
            min_lat,
            max_lat,
        }
    }

    /// Even-odd ray casting over every ring, so holes are respected.
    fn contains(&self, lon: f64, lat: f64) -> bool {
        if lon < self.min_lon || lon > self.max_lon || lat < self.min_lat || lat > self.max_lat {
            return false;
        }
        let mut inside = false;
        for ring in &self.rings {
            let n = ring.len();
            if n < 3 {
                continue;
            }
            let mut j = n - 1;
            for i in 0..n {
                let (xi, yi) = ring[i];
                let (xj, yj) = ring[j];
                if (yi > lat) != (yj > lat) {
                    let x = xi + (lat - yi) * (xj - xi) / (yj - yi);
                    if lon < x {
                        inside = !inside;
                    }
                }
                j = i;
            }
        }
        inside
    }
}

/// A finite latitude in [-90, 90] and longitude in [-180, 180].
pub fn valid_position(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
}

/// Whether (lat, lon) lies inside India's official boundary. Invalid positions
/// are never inside. The boundary's members may overlap along seams, so a point
/// is inside when any member polygon contains it.
pub fn inside_india(lat: f64, lon: f64) -> bool {
    valid_position(lat, lon) && boundary().iter().any(|p| p.contains(lon, lat))
}

fn boundary() -> &'static [Polygon] {
    static POLYGONS: OnceLock<Vec<Polygon>> = OnceLock::new();
    POLYGONS.get_or_init(|| {
        parse_multipolygon(BOUNDARY_GEOJSON).expect("data/india-boundary.geojson is malformed")
    })
}

/// Reads the first `"coordinates"` member of a GeoJSON text as MultiPolygon
/// coordinates. Only the number arrays are parsed; nothing else is needed.
fn parse_multipolygon(text: &str) -> Option<Vec<Polygon>> {
    let start = text.find("\"coordinates\"")? + "\"coordinates\"".len();
    let mut p = Parser {
        s: text.as_bytes(),
        i: start,
    };
    p.skip_ws();
    p.expect(b':')?;
    let polygons = p.array(|p| p.array(|p| p.array(|p| p.point())))?;
    let polygons: Vec<Polygon> = polygons.into_iter().map(Polygon::new).collect();
    (!polygons.is_empty()).then_some(polygons)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.skip_ws();
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.expect(b'[')?;
        let mut out = Vec::new();
        self.skip_ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(out);
        }
        loop {
            out.push(item(self)?);
            self.skip_ws();
            match self.s.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    fn number(&mut self) -> Option<f64> {
        self.skip_ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    /// `[lon, lat]` (any further ordinates are ignored).
    fn point(&mut self) -> Option<(f64, f64)> {
        let v = self.array(|p| p.number())?;
        (v.len() >= 2).then(|| (v[0], v[1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_embedded_boundary() {
        let polys = boundary();
        assert!(polys.len() > 10, "mainland, claimed areas and islands");
        assert!(polys.iter().all(|p| p.rings.iter().all(|r| r.len() >= 4)));
    }

    #[test]
    fn hole_is_respected() {
        let square = |a: f64, b: f64| vec![(a, a), (b, a), (b, b), (a, b), (a, a)];
        let p = Polygon::new(vec![square(0.0, 10.0), square(4.0, 6.0)]);
        assert!(p.contains(2.0, 2.0));
        assert!(!p.contains(5.0, 5.0));
        assert!(!p.contains(11.0, 5.0));
    }

    #[test]
    fn rejects_malformed_text() {
        assert!(parse_multipolygon("{}").is_none());
        assert!(parse_multipolygon(r#"{"coordinates": [[[[1,2],[3"#).is_none());
        assert!(parse_multipolygon(r#"{"coordinates": []}"#).is_none());
    }
}
