// A tile-free map: India's outline (the same boundary the location check uses, served at
// /desk/assets/india.geojson) as an SVG, with the customer's position and, when the
// browser gave one, its accuracy. No map service sees the customer's position.

const NS = 'http://www.w3.org/2000/svg';
// The outline's bounding box, in degrees, with a small margin.
const WEST = 67.5, EAST = 98.0, SOUTH = 5.5, NORTH = 37.5;
// Degrees of longitude are shorter than degrees of latitude this far north.
const LON_SCALE = Math.cos((22 * Math.PI) / 180);
const KM_PER_DEG_LAT = 111.2;

let outline;
function rings() {
  if (!outline) {
    outline = fetch('/desk/assets/india.geojson')
      .then((r) => (r.ok ? r.json() : null))
      .then((g) => (g ? g.features.flatMap((f) => f.geometry.coordinates.flat()) : []))
      .catch(() => []);
  }
  return outline;
}

const x = (lon) => (lon - WEST) * LON_SCALE;
const y = (lat) => NORTH - lat;

function el(name, attrs) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** The position as words: coordinates and accuracy (or that none was given). */
export function describe({ lat, lon, accuracy_m }) {
  if (typeof lat !== 'number' || typeof lon !== 'number') return 'No position';
  const acc = typeof accuracy_m === 'number' && accuracy_m > 0
    ? `±${Math.round(accuracy_m)} m`
    : 'accuracy not given';
  return `${lat.toFixed(5)}, ${lon.toFixed(5)} (${acc})`;
}

/**
 * Draws India's outline in `container` with a dot at (lat, lon), a circle of the
 * accuracy's radius when it is large enough to see, and the coordinates as a caption.
 */
export async function drawIndia(container, { lat, lon, accuracy_m } = {}) {
  const width = (EAST - WEST) * LON_SCALE;
  const height = NORTH - SOUTH;
  const svg = el('svg', {
    viewBox: `0 0 ${width.toFixed(2)} ${height.toFixed(2)}`,
    class: 'india-map',
    role: 'img',
    'aria-label': `Location on a map of India: ${describe({ lat, lon, accuracy_m })}`,
  });
  for (const ring of await rings()) {
    const d = ring.map(([lo, la], i) => `${i ? 'L' : 'M'}${x(lo).toFixed(3)} ${y(la).toFixed(3)}`).join('') + 'Z';
    svg.append(el('path', { d, class: 'india-outline' }));
  }
  if (typeof lat === 'number' && typeof lon === 'number') {
    const r = typeof accuracy_m === 'number' ? accuracy_m / 1000 / KM_PER_DEG_LAT : 0;
    if (r > 0.15) svg.append(el('circle', { cx: x(lon), cy: y(lat), r, class: 'india-accuracy' }));
    svg.append(el('circle', { cx: x(lon), cy: y(lat), r: 0.45, class: 'india-point' }));
  }
  const caption = document.createElement('p');
  caption.className = 'map-caption';
  caption.textContent = describe({ lat, lon, accuracy_m });
  container.replaceChildren(svg, caption);
}
