#!/usr/bin/env python3
"""Times the admin reports over a large history, through the HTTP API.

For each database (SQLite, and PostgreSQL when --pg-url is given): seed COUNT requests
over DAYS days with examples/seed_cases (or reuse --sqlite-file / --pg-db filled before),
start `vkyc serve`, sign an admin in, and call each report for the last 30 days RUNS
times (p50 and max), while a light write load (a few request creates per second through
the merchant API) runs beside it unless --no-writes. Figures go into BENCHMARKS.md.

  bench/reports/run.py [--count 1000000] [--days 35] [--runs 5] [--pg-url URL]
                       [--sqlite-file F] [--pg-db NAME] [--keep] [--no-record]

VKYC_BIN and SEED_BIN name prebuilt binaries (else `cargo build --release` builds them).
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import vkyclib as v  # noqa: E402

REPORTS = ["funnel", "failures", "times", "agents", "live"]
PASSWORD = "bench-reports-password"


def binaries():
    vkyc, seed = os.environ.get("VKYC_BIN"), os.environ.get("SEED_BIN")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(v.ROOT, "target"))
    if not vkyc:
        vkyc = v.build()
    if not seed:
        v.log("building examples/seed_cases (release)")
        subprocess.run(["cargo", "build", "--release", "--example", "seed_cases"], cwd=v.ROOT, check=True)
        seed = os.path.join(target, "release", "examples", "seed_cases")
    return vkyc, seed


def seed(seed_bin, url, count, days):
    v.log(f"seeding {count} requests over {days} days into {v.redact(url)}")
    started = time.time()
    out = subprocess.run([seed_bin, url, str(count), "--days", str(days)], capture_output=True,
                         text=True, check=True)
    v.log(out.stdout.strip())
    return time.time() - started


class Desk:
    """A signed-in desk session over one keep-alive connection."""

    def __init__(self, base_url, username):
        u = urllib.parse.urlsplit(base_url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        status, body, headers = self.call("POST", "/desk/api/login",
                                          {"username": username, "password": PASSWORD})
        if status != 200:
            raise RuntimeError(f"login failed: {status} {body}")
        cookie = headers.get("set-cookie", "").split(";")[0]
        self.headers = {"cookie": cookie}

    def call(self, method, path, body=None):
        headers = dict(getattr(self, "headers", {}))
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, raw, {k.lower(): val for k, val in resp.getheaders()}


def writer(base_url, client, stop, counter):
    """A few creates per second, as a live deployment would see while reports run."""
    c = v.Client(base_url, *client)
    for u in range(50):
        c.call("POST", "/user", {"user_id": f"bench_rep_user_{u}", "phone": "9876543210"})
    i = 0
    while not stop.is_set():
        i += 1
        try:
            status, _ = c.call("POST", "/vkyc", {
                "verification_id": f"bench_rep_{os.getpid()}_{time.time_ns()}",
                "user_id": f"bench_rep_user_{i % 50}",
            })
            if status == 200:
                counter[0] += 1
        except OSError:
            pass
        stop.wait(0.2)


def time_reports(base_url, runs, frm, to):
    desk = Desk(base_url, "bench_reports_admin")
    figures = {}
    for name in REPORTS:
        times, rows = [], 0
        for _ in range(runs):
            t0 = time.perf_counter()
            status, raw, _ = desk.call("GET", f"/desk/api/reports/{name}?from={frm}&to={to}")
            times.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"{name}: {status} {raw[:300]}")
            rows = len(json.loads(raw)["rows"])
        times.sort()
        figures[name] = (times[len(times) // 2], times[-1], rows)
        v.log(f"{name}: p50 {figures[name][0]:.3f} s, max {figures[name][1]:.3f} s, {rows} rows")
    return figures


def run_one(label, vkyc, db_url, runs, writes, work):
    server = v.Server(vkyc, {"VKYC_DATABASE_URL": db_url, "VKYC_DATA_DIR": os.path.join(work, label),
                             "VKYC_DEFAULT_RATE_LIMIT_PER_MINUTE": "0"},
                      os.path.join(work, f"{label}.log"))
    t0 = time.time()
    server.start(timeout=1800)
    startup = time.time() - t0
    try:
        proc = subprocess.run([vkyc, "staff", "create", "--username", "bench_reports_admin", "--role",
                               "admin", "--password-stdin"], input=PASSWORD, env=server.env,
                              capture_output=True, text=True)
        if proc.returncode != 0 and "already" not in (proc.stdout + proc.stderr):
            raise RuntimeError(proc.stdout + proc.stderr)
        stop, counter, thread = threading.Event(), [0], None
        if writes:
            out = server.cli("merchant", "create", "--name", "bench reports writer", "--env", "test")
            cid = next(l.split()[-1] for l in out.splitlines() if "client id" in l)
            sec = next(l.split()[-1] for l in out.splitlines() if "client secret" in l)
            thread = threading.Thread(target=writer, args=(server.url, (cid, sec), stop, counter),
                                      daemon=True)
            thread.start()
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 19800))
        first = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 19800 - 29 * 86400))
        try:
            figures = time_reports(server.url, runs, first, today)
        finally:
            stop.set()
            if thread:
                thread.join()
        return figures, startup, counter[0]
    finally:
        server.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=35)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pg-url")
    ap.add_argument("--sqlite-file")
    ap.add_argument("--pg-db")
    ap.add_argument("--no-writes", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    vkyc, seed_bin = binaries()
    work = v.workdir("bench-reports-")
    lines = []
    try:
        sqlite_file = a.sqlite_file or os.path.join(work, "reports.db")
        seeded = None
        if not a.sqlite_file:
            seeded = seed(seed_bin, f"sqlite://{sqlite_file}", a.count, a.days)
        figures, startup, writes = run_one("sqlite", vkyc, f"sqlite://{sqlite_file}", a.runs,
                                           not a.no_writes, work)
        lines.append(("SQLite", figures, seeded, startup, writes))
        if a.pg_url:
            parts = urllib.parse.urlsplit(a.pg_url)
            name = a.pg_db
            seeded = None
            if not name:
                name, _ = v.create_database(a.pg_url, "bench_reports")
            url = urllib.parse.urlunsplit(parts._replace(path="/" + name))
            if not a.pg_db:
                seeded = seed(seed_bin, url, a.count, a.days)
            try:
                figures, startup, writes = run_one("postgres", vkyc, url, a.runs, not a.no_writes, work)
                lines.append((f"PostgreSQL {v.pg_version(url)}", figures, seeded, startup, writes))
            finally:
                if not a.keep and not a.pg_db:
                    v.drop_database(a.pg_url, name)
    finally:
        if not a.keep:
            v.remove(work)
    out = [f"### Reports over {a.count:,} requests, 30 days ({time.strftime('%Y-%m-%d')})", "",
           f"bench/reports/run.py --count {a.count} --days {a.days} --runs {a.runs}; commit {v.commit()}; "
           f"{v.machine()}; load average {v.loadavg()}. {a.note}".rstrip(), "",
           "Each report for the last 30 IST days through `GET /desk/api/reports/<name>` (JSON), "
           f"{a.runs} runs, {'with' if not a.no_writes else 'without'} a light write load "
           "(about 5 request creates per second through the merchant API).", "",
           "| database | report | p50 | max | rows |", "|---|---|---|---|---|"]
    for db, figures, _, _, _ in lines:
        for name in REPORTS:
            p50, mx, rows = figures[name]
            out.append(f"| {db} | {name} | {p50:.3f} s | {mx:.3f} s | {rows} |")
    out.append("")
    for db, _, seeded, startup, writes in lines:
        extra = f"seeded in {seeded:.0f} s; " if seeded else ""
        out.append(f"- {db}: {extra}server start (migrations) {startup:.1f} s; {writes} requests "
                   "created during the runs.")
    section = "\n".join(out) + "\n"
    print(section)
    if not a.no_record:
        v.record(section, os.path.join(v.ROOT, "BENCHMARKS.md"))


if __name__ == "__main__":
    main()
