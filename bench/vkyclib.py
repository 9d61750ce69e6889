"""Shared helpers of bench/crash, bench/pg-restart and bench/scale (Python 3 stdlib only).

They drive real `vkyc serve` processes: start and kill them, call the merchant API over
keep-alive HTTP/1.1, receive their webhooks, make PostgreSQL databases with psql, and
write a dated section into BENCHMARKS.md the way bench/run does.
"""

import http.client
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "<!-- bench/run inserts new results below this line, newest first -->"
PG_DEFAULT = "postgres://postgres:postgres@127.0.0.1:5432/postgres"


def log(msg):
    print(f"== {msg}", file=sys.stderr, flush=True)


def now_ms():
    return int(time.time() * 1000)


def redact(url):
    """A URL without its password, for what is written down."""
    return re.sub(r"(://[^:/@ ]+):[^@ ]+@", r"\1:***@", url)


# ---- building ----

def build():
    """cargo build --release; returns the path of the vkyc binary."""
    log("building (release)")
    subprocess.run(["cargo", "build", "--release", "--bin", "vkyc"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    if not os.path.isabs(target):
        target = os.path.join(ROOT, target)
    return os.path.join(target, "release", "vkyc")


# ---- PostgreSQL ----

def psql(url, sql, check=True):
    out = subprocess.run(["psql", url, "-qXAt", "-F", " ", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
    if check and out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr.strip()}")
    return out.stdout.strip()


def create_database(admin_url, prefix):
    """Creates a fresh database; returns (name, its URL)."""
    name = f"{prefix}_{time.strftime('%Y%m%d%H%M%S')}_{os.getpid()}"
    psql(admin_url, f"CREATE DATABASE {name}")
    parts = urllib.parse.urlsplit(admin_url)
    return name, urllib.parse.urlunsplit(parts._replace(path="/" + name))


def drop_database(admin_url, name):
    psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)


def pg_version(url):
    try:
        return psql(url, "SHOW server_version")
    except Exception:
        return "?"


# ---- one vkyc process ----

class Server:
    """A `vkyc serve` process with our own VKYC_* settings only (the caller's shell's
    VKYC_* variables must not change a run). Output goes to a log file, which is read
    for the listening URL and, on a fresh database, the bootstrap credentials."""

    def __init__(self, binary, env, log_path):
        self.binary = binary
        base = {k: v for k, v in os.environ.items() if not k.startswith("VKYC_")}
        self.env = {**base, "VKYC_LISTEN": "127.0.0.1:0", "VKYC_ENVIRONMENT": "sandbox",
                    "VKYC_MEDIA__UDP_BIND": "127.0.0.1:0", "RUST_LOG": "warn", **env}
        self.log_path = log_path
        self.proc = None
        self.url = None  # http://127.0.0.1:PORT
        self.starts = 0

    def start(self, timeout=60):
        """Starts the server; returns (client_id, secret) when it printed new ones."""
        self.starts += 1
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        out = open(self.log_path, "ab")
        out.write(f"\n---- start {self.starts} at {time.strftime('%H:%M:%S')} ----\n".encode())
        out.flush()
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
            m = re.search(r"merchant API: (\S+)/verification", text)
            if m:
                self.url = m.group(1)
                cid = re.search(r"client id:\s+(\S+)", text)
                sec = re.search(r"client secret:\s+(\S+)", text)
                if cid and sec:
                    return cid.group(1), sec.group(1)
                if "bootstrap" in text and not sec:
                    time.sleep(0.05)
                    continue
                return None
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"vkyc serve did not start; see {self.log_path}:\n{text[-2000:]}")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args):
        """Runs `vkyc ARGS...` with this server's settings (same database)."""
        out = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"vkyc {' '.join(args)} failed: {out.stdout}{out.stderr}")
        return out.stdout

    def warnings(self):
        """WARN/ERROR lines of the log, ANSI colours removed."""
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path, "rb") as f:
            text = re.sub(r"\x1b\[[0-9;]*m", "", f.read().decode(errors="replace"))
        return [l for l in text.splitlines() if re.search(r"\s(WARN|ERROR)\s", l)]


# ---- the merchant API ----

class Client:
    """One keep-alive connection to one server (not shared between threads). Every call
    has a timeout; a failed connection is dropped and made again on the next call."""

    def __init__(self, base_url, client_id, secret, timeout=10.0):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port
        self.timeout = timeout
        self.headers = {"x-client-id": client_id, "x-client-secret": secret,
                        "x-api-version": "2024-12-01", "content-type": "application/json"}
        self.conn = None

    def call(self, method, path, body=None):
        """Returns (status, parsed JSON body or None). Raises OSError (and
        http.client.HTTPException) when no complete answer came."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        data = json.dumps(body).encode() if body is not None else None
        try:
            self.conn.request(method, "/verification" + path, body=data, headers=self.headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except Exception:
            self.close()
            raise
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return resp.status, parsed

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def is_error_shape(body):
    """The API's error body: exactly the strings type, code and message."""
    return (isinstance(body, dict) and set(body) == {"type", "code", "message"}
            and all(isinstance(body[k], str) for k in body))


# ---- a webhook receiver ----

class Receiver:
    """Answers 200 to every POST and remembers each call: event_id, verification_id,
    sequence, sub_status, attempt and arrival time. Runs in this process, so it outlives
    the servers it hears from."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        # Seconds to wait before answering (a slow receiver keeps deliveries in flight).
        self.delay = 0.0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw)
                    data = body.get("data") or {}
                    call = (body.get("event_id"), data.get("verification_id"), body.get("sequence"),
                            data.get("sub_status"), self.headers.get("x-webhook-attempt"), time.time())
                except ValueError:
                    call = (None, None, None, None, None, time.time())
                with receiver.lock:
                    receiver.calls.append(call)
                if receiver.delay:
                    time.sleep(receiver.delay)  # recorded on arrival, answered late
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a sender killed mid-call resets its connection: expected here

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return list(self.calls)


# ---- the machine and the record ----

def cpu_busy(seconds=2.0):
    """How busy all CPUs were over `seconds`, in percent (other work skews the figures)."""
    def read():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], v[3] + v[4]
    try:
        u1, i1 = read(); time.sleep(seconds); u2, i2 = read()
        return f"{100 * (u2 - u1) / max(1, (u2 - u1) + (i2 - i1)):.0f} %"
    except OSError:
        return "?"


def machine():
    cpu = mem = "?"
    try:
        cpu = next(l.split(": ", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
        mem = next(f"{int(l.split()[1]) / 1048576:.1f} GiB" for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, {os.uname().sysname} {os.uname().release}"


def commit():
    try:
        c = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return c + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "none"


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def record(section, output):
    """Puts `section` right below the results marker of `output` (newest first)."""
    text = open(output).read() if os.path.exists(output) else ""
    if MARKER in text:
        text = text.replace(MARKER, MARKER + "\n\n" + section.rstrip("\n"), 1)
    else:
        text += f"\n## Results\n\n{MARKER}\n\n{section}"
    with open(output, "w") as f:
        f.write(text)
    log(f"recorded in {output}")


def workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR", "/tmp"))


def remove(path):
    shutil.rmtree(path, ignore_errors=True)


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
