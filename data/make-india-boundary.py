#!/usr/bin/env python3
"""Build data/india-boundary.geojson: India as India officially draws it.

Usage:
    python3 data/make-india-boundary.py COUNTRIES_TOPOJSON CLAIMS_GEOJSON [OUT]

COUNTRIES_TOPOJSON  countries-10m.json from the npm package world-atlas@2.0.2
                    (Natural Earth v4.1.0 ne_10m_admin_0_countries, TopoJSON).
CLAIMS_GEOJSON      data/source/ne_50m_breakaway_india_claims.geojson: the
                    features of Natural Earth's ne_50m_admin_0_breakaway_disputed_areas
                    whose India-worldview column ADM0_A3_IN is "IND" and which lie
                    outside (or on the edge of) the default India polygon.
OUT                 defaults to india-boundary.geojson beside this script.

Natural Earth builds its India worldview layer (ne_*_admin_0_countries_ind) by
dissolving those same pieces by ADM0_A3_IN. We reproduce it as a set of polygons:
the default India polygons plus every claimed piece. Members may overlap along
seams; a point is in India when it is inside ANY member (that is how the Rust
module tests it), so the overlap is harmless.

Simplification: Douglas-Peucker in degree space with TOLERANCE. Vertices shared
by more than one ring are locked, so edges shared between the claimed pieces are
simplified identically and no slivers open between them. Rings that would
collapse below 4 points keep their original vertices (small islands stay).
Only the standard library is used.
"""

import json
import math
import os
import sys

TOLERANCE = 0.01  # degrees
DIGITS = 4
# Islands smaller than SMALL_ISLAND (deg^2, about 60 km^2) are replaced by their
# convex hull grown by ISLAND_MARGIN degrees (about 1.1 km): the 1:10m source is
# quantized to ~400 m, which is coarser than atolls such as Kavaratti are wide.
SMALL_ISLAND = 0.005
ISLAND_MARGIN = 0.01


def topo_polygons(topo, name):
    """Decode one country of a TopoJSON topology into a list of polygons."""
    tr = topo.get("transform")
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for p in arc:
            if tr:
                x += p[0]
                y += p[1]
                pts.append((x * tr["scale"][0] + tr["translate"][0],
                            y * tr["scale"][1] + tr["translate"][1]))
            else:
                pts.append((p[0], p[1]))
        arcs.append(pts)

    def ring(indexes):
        out = []
        for i in indexes:
            pts = arcs[i] if i >= 0 else arcs[~i][::-1]
            out.extend(pts if not out else pts[1:])
        return out

    for geom in topo["objects"]["countries"]["geometries"]:
        if geom.get("properties", {}).get("name") != name:
            continue
        if geom["type"] == "Polygon":
            return [[ring(r) for r in geom["arcs"]]]
        if geom["type"] == "MultiPolygon":
            return [[ring(r) for r in poly] for poly in geom["arcs"]]
    raise SystemExit(f"{name} not found in topology")


def geojson_polygons(fc):
    polys = []
    for f in fc["features"]:
        if f["properties"].get("ADM0_A3_IN") != "IND":
            continue
        g = f["geometry"]
        if g["type"] == "Polygon":
            polys.append([[tuple(p) for p in r] for r in g["coordinates"]])
        else:
            polys.extend([[tuple(p) for p in r] for r in poly] for poly in g["coordinates"])
    return polys


def seg_dist(p, a, b):
    ax, ay = a
    bx, by = b
    px, py = p
    dx, dy = bx - ax, by - ay
    if dx == 0 and dy == 0:
        return math.hypot(px - ax, py - ay)
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def dp(points, tol):
    """Douglas-Peucker on an open polyline; keeps both ends."""
    if len(points) < 3:
        return list(points)
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        best, idx = 0.0, -1
        for k in range(i + 1, j):
            d = seg_dist(points[k], points[i], points[j])
            if d > best:
                best, idx = d, k
        if idx >= 0 and best > tol:
            keep[idx] = True
            stack.append((i, idx))
            stack.append((idx, j))
    return [p for p, k in zip(points, keep) if k]


def ring_area(r):
    return 0.5 * sum(r[i][0] * r[i + 1][1] - r[i + 1][0] * r[i][1] for i in range(len(r) - 1))


def convex_hull(points):
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def grown_hull(ring, margin):
    """Convex hull of the ring Minkowski-summed with a 16-gon of radius margin."""
    pts = []
    for x, y in ring:
        for k in range(16):
            a = 2 * math.pi * k / 16
            pts.append((x + margin * math.cos(a), y + margin * math.sin(a)))
    hull = convex_hull(pts)
    return hull + [hull[0]]


def simplify_ring(ring, locked, tol):
    pts = ring[:-1] if ring[0] == ring[-1] else ring[:]
    anchors = [i for i, p in enumerate(pts) if p in locked]
    if not anchors:
        # Anchor the ring at its first vertex and at the vertex farthest from it.
        far = max(range(len(pts)), key=lambda i: math.dist(pts[0], pts[i]))
        anchors = [0, far] if far else [0]
    out = []
    for n, a in enumerate(anchors):
        b = anchors[(n + 1) % len(anchors)]
        seq = pts[a:b + 1] if b > a else pts[a:] + pts[:b + 1]
        part = dp(seq, tol)
        out.extend(part[:-1])
    out.append(out[0])
    if len(out) < 4 or abs(ring_area(out)) < 1e-12:
        out = pts + [pts[0]]
    return out


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    topo = json.load(open(sys.argv[1]))
    claims = json.load(open(sys.argv[2]))
    out_path = sys.argv[3] if len(sys.argv) > 3 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "india-boundary.geojson")

    polys = topo_polygons(topo, "India") + geojson_polygons(claims)

    # Vertices used by more than one ring are locked (shared seams).
    seen = {}
    for pi, poly in enumerate(polys):
        for ri, ring in enumerate(poly):
            for p in set(ring):
                seen.setdefault(p, set()).add((pi, ri))
    locked = {p for p, owners in seen.items() if len(owners) > 1}

    before = sum(len(r) for poly in polys for r in poly)
    result = []
    for poly in polys:
        rings = []
        for ri, ring in enumerate(poly):
            small = ri == 0 and len(poly) == 1 and abs(ring_area(ring)) < SMALL_ISLAND \
                and not any(p in locked for p in ring)
            if small:
                s = grown_hull(ring, ISLAND_MARGIN)
            else:
                s = simplify_ring(ring, locked, TOLERANCE)
            s = [(round(x, DIGITS), round(y, DIGITS)) for x, y in s]
            dedup = [s[0]]
            for p in s[1:]:
                if p != dedup[-1]:
                    dedup.append(p)
            if len(dedup) >= 4:
                rings.append(dedup)
        if rings:
            result.append(rings)
    after = sum(len(r) for poly in result for r in poly)

    fc = {
        "type": "FeatureCollection",
        "features": [{
            "type": "Feature",
            "properties": {
                "name": "India",
                "worldview": "India (ADM0_A3_IN = IND)",
                "source": "Natural Earth (public domain): ne_10m_admin_0_countries v4.1.0 via npm "
                          "world-atlas@2.0.2 + ne_50m_admin_0_breakaway_disputed_areas v5.1.x "
                          "pieces with ADM0_A3_IN = IND",
                "simplification": f"Douglas-Peucker {TOLERANCE} deg, shared vertices locked, "
                                  f"{DIGITS} decimals",
                "note": "member polygons may overlap; inside = inside any member. Islands under "
                        f"{SMALL_ISLAND} deg^2 are convex hulls grown by {ISLAND_MARGIN} deg",
            },
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [[[list(p) for p in r] for r in poly] for poly in result],
            },
        }],
    }
    with open(out_path, "w") as f:
        json.dump(fc, f, separators=(",", ":"))
        f.write("\n")
    print(f"polygons: {len(result)}  vertices before: {before}  after: {after}  "
          f"bytes: {os.path.getsize(out_path)}")


if __name__ == "__main__":
    main()
