#!/usr/bin/env python3
"""Times a purge of COUNT expired requests, and what it does to the database's size.

For each database (SQLite, and PostgreSQL when --pg-url is given): seed COUNT requests
with examples/seed_cases (35 days of cases with their history, journey evidence, calls,
captures and audits), mark every one expired long ago (`VKYC_EXPIRED`, last moved 200
days back), then run `vkyc retention purge` once with `[retention] purge_batch` at COUNT,
so that one pass purges them all (each request in its own transaction, as the worker
does). Records the time, the purge rate, and the database's size before, after, and (on
SQLite) after VACUUM. A request-create load runs through the merchant API meanwhile
unless --no-writes. Figures go into BENCHMARKS.md.

  bench/purge/run.py [--count 100000] [--pg-url URL] [--no-writes] [--no-record]

VKYC_BIN and SEED_BIN name prebuilt binaries (else `cargo build --release` builds them).
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import vkyclib as v  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reports"))
from run import binaries, seed, writer  # noqa: E402

DAY_MS = 86_400_000


def sql_of(url):
    """A function running SQL against the database, answering the first column."""
    if url.startswith("sqlite://"):
        import sqlite3
        path = url[len("sqlite://"):].split("?")[0]

        def run(sql):
            con = sqlite3.connect(path, timeout=60)
            try:
                rows = con.execute(sql).fetchall()
                con.commit()
                return rows[0][0] if rows else None
            finally:
                con.close()
        return run
    return lambda sql: (v.psql(url, sql).strip() or None)


def size(url, run):
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):].split("?")[0]
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    return int(run("SELECT pg_database_size(current_database())"))


def one(label, vkyc, seed_bin, url, count, writes, work):
    seed(seed_bin, url, count, 35)
    run = sql_of(url)
    data_dir = os.path.join(work, label)
    env = {"VKYC_DATABASE_URL": url, "VKYC_DATA_DIR": data_dir,
           "VKYC_DEFAULT_RATE_LIMIT_PER_MINUTE": "0"}
    server = v.Server(vkyc, env, os.path.join(work, f"{label}.log"))
    # Started first: its own purge worker's first pass finds nothing due (the seeded cases
    # are under 35 days old), and its next is an hour away, so the timed pass does it all.
    server.start(timeout=1800)
    long_ago = v.now_ms() - 200 * DAY_MS
    run(f"UPDATE requests SET status = 'EXPIRED', sub_status = 'VKYC_EXPIRED', "
        f"updated_at = {long_ago}")
    run("UPDATE merchants SET env = 'live'")
    before = size(url, run)
    stop, created = threading.Event(), [0]
    load = None
    if writes:
        out = server.cli("merchant", "create", "--name", "bench purge writer", "--env", "test")
        cid = next(l.split()[-1] for l in out.splitlines() if "client id" in l)
        sec = next(l.split()[-1] for l in out.splitlines() if "client secret" in l)
        load = threading.Thread(target=writer, args=(server.url, (cid, sec), stop, created),
                                daemon=True)
        load.start()
    try:
        cli_env = dict(os.environ, **env, VKYC_RETENTION__PURGE_BATCH=str(count))
        started = time.perf_counter()
        out = subprocess.run([vkyc, "retention", "purge"], env=cli_env, capture_output=True,
                             text=True, check=True)
        took = time.perf_counter() - started
        v.log(out.stdout.strip())
    finally:
        stop.set()
        if load:
            load.join()
        server.kill(signal.SIGTERM)
    purged = int(run("SELECT COUNT(*) FROM requests WHERE purged_at IS NOT NULL"))
    after = size(url, run)
    vacuumed = None
    if url.startswith("sqlite://"):
        run("PRAGMA wal_checkpoint(TRUNCATE)")
        import sqlite3
        path = url[len("sqlite://"):].split("?")[0]
        con = sqlite3.connect(path)
        con.execute("VACUUM")
        con.close()
        vacuumed = size(url, run)
    return {"purged": purged, "seconds": took, "before": before, "after": after,
            "vacuumed": vacuumed, "created": created[0], "stdout": out.stdout.strip()}


def mib(n):
    return f"{n / 1048576:.1f} MiB" if n is not None else "–"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--pg-url")
    p.add_argument("--no-writes", action="store_true")
    p.add_argument("--no-record", action="store_true")
    a = p.parse_args()
    vkyc, seed_bin = binaries()
    work = v.workdir("bench-purge-")
    results = []
    try:
        results.append(("SQLite", one("sqlite", vkyc, seed_bin,
                                      f"sqlite://{os.path.join(work, 'purge.db')}", a.count,
                                      not a.no_writes, work)))
        if a.pg_url:
            db, url = v.create_database(a.pg_url, "bench_purge")
            try:
                results.append(("PostgreSQL " + v.pg_version(url), one("pg", vkyc, seed_bin, url, a.count,
                                                       not a.no_writes, work)))
            finally:
                v.drop_database(a.pg_url, db)
    finally:
        v.remove(work)
    lines = [
        f"### Purging {a.count:,} expired requests ({time.strftime('%Y-%m-%d')})",
        "",
        f"bench/purge/run.py --count {a.count}{' --no-writes' if a.no_writes else ''}; "
        f"commit {v.commit()}; {v.machine()}; load average {v.loadavg()}.",
        "",
        "Seeded cases marked expired 200 days ago, purged by one `vkyc retention purge` pass "
        "(one transaction per request), with request creates through the merchant API "
        "meanwhile. Size: the database file and its WAL (SQLite), `pg_database_size` "
        "(PostgreSQL).",
        "",
        "| database | purged | time | per second | size before | after | after VACUUM |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in results:
        lines.append(f"| {label} | {r['purged']:,} | {r['seconds']:.1f} s | "
                     f"{r['purged'] / r['seconds']:.0f} | {mib(r['before'])} | {mib(r['after'])} | "
                     f"{mib(r['vacuumed'])} |")
    lines.append("")
    for label, r in results:
        lines.append(f"- {label}: {r['stdout']}; {r['created']} requests created during the purge.")
    output = "\n".join(lines) + "\n"
    print(output)
    if not a.no_record:
        v.record(output, os.path.join(v.ROOT, "BENCHMARKS.md"))


if __name__ == "__main__":
    main()
