# Shared by bench/expiry and bench/large (sourced): argument defaults, cleanup, a vkyc
# server on SQLite or a fresh PostgreSQL database, SQL through sqlite3 or psql, and the
# recording of a section in BENCHMARKS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
OUTPUT=$ROOT/BENCHMARKS.md
RECORD=1
KEEP=
PG_URL=
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vkyc-bench.XXXXXX")
PIDS=()
PG_DB=
die() { echo "$(basename "$0"): $*" >&2; exit 2; }
log() { printf '\n== %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
cleanup() {
  local status=$?
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  done
  if [ -n "$KEEP" ]; then
    echo "$(basename "$0"): kept $WORK${PG_DB:+ and database $PG_DB}" >&2
  else
    [ -z "$PG_DB" ] || psql "$PG_URL" -qX -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 ||
      echo "could not drop database $PG_DB" >&2
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# setup_backend: sets BACKEND, BACKEND_DETAIL, DB_URL (and creates the PostgreSQL database).
setup_backend() {
  mkdir -p "$WORK/data"
  if [ -n "$PG_URL" ]; then
    command -v psql >/dev/null || die "--postgres needs psql"
    BACKEND=PostgreSQL
    PG_DB=vkyc_bench_$(date +%Y%m%d%H%M%S)_$$
    psql "$PG_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null
    local base=${PG_URL%%\?*} query= scheme rest authority
    [[ $PG_URL == *\?* ]] && query="?${PG_URL#*\?}"
    scheme=${base%%://*}; rest=${base#*://}; authority=${rest%%/*}
    DB_URL="$scheme://$authority/$PG_DB$query"
    BACKEND_DETAIL="PostgreSQL $(psql "$DB_URL" -qXAt -c 'SHOW server_version' 2>/dev/null || echo '?'), fresh database"
  else
    command -v sqlite3 >/dev/null || die "sqlite3 is needed"
    BACKEND=SQLite
    DB_URL="sqlite://$WORK/data/vkyc.db"
    BACKEND_DETAIL="SQLite (WAL, synchronous=FULL) in a fresh temporary directory"
  fi
}

# sql QUERY: one query's rows, fields separated by a space.
sql() {
  if [ -n "$PG_URL" ]; then psql "$DB_URL" -qXAt -F ' ' -c "$1"
  else sqlite3 -readonly -separator ' ' "$WORK/data/vkyc.db" "$1"; fi
}

build() {
  log "building (release)"
  (cd "$ROOT" && cargo build --release --bin vkyc --example fill_requests "$@")
  TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  [[ $TARGET = /* ]] || TARGET=$ROOT/$TARGET
  VKYC=$TARGET/release/vkyc
  FILL=$TARGET/release/examples/fill_requests
}

# start_server NAME [VAR=VALUE...]: a vkyc serve on the database; sets SERVER_PID, API,
# and (on the first start) CLIENT_ID / CLIENT_SECRET.
start_server() {
  local name=$1; shift
  local clean=(env)
  for var in $(compgen -e | grep '^VKYC_' || true); do clean+=(-u "$var"); done
  "${clean[@]}" VKYC_DATA_DIR="$WORK/data" VKYC_DATABASE_URL="$DB_URL" VKYC_LISTEN=127.0.0.1:0 \
    VKYC_MEDIA__UDP_BIND=127.0.0.1:0 VKYC_ENVIRONMENT=sandbox RUST_LOG=${RUST_LOG_SERVER:-warn} "$@" \
    "$VKYC" serve >"$WORK/$name.out" 2>"$WORK/$name.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 300); do
    grep -q "merchant API:" "$WORK/$name.out" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/$name.out" "$WORK/$name.err" >&2; die "the server did not start"; }
    sleep 0.1
  done
  API=$(grep -m1 "merchant API:" "$WORK/$name.out" | awk '{print $NF}')
  for _ in $(seq 1 50); do grep -q "client secret:" "$WORK/$name.out" && break; sleep 0.1; done
  if grep -q "client secret:" "$WORK/$name.out"; then
    CLIENT_ID=$(awk '/client id:/ {print $NF; exit}' "$WORK/$name.out")
    CLIENT_SECRET=$(awk '/client secret:/ {print $NF; exit}' "$WORK/$name.out")
  fi
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  wait "$SERVER_PID" 2>/dev/null || true
}

cpu_busy() {
  local a b
  a=($(head -n1 /proc/stat)); sleep 2; b=($(head -n1 /proc/stat))
  awk -v u="$(( b[1] + b[2] + b[3] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[6] - a[7] - a[8] ))" \
    -v i="$(( b[4] + b[5] - a[4] - a[5] ))" 'BEGIN { if (u + i > 0) printf "%.0f %%", 100 * u / (u + i); else print "?" }'
}

num() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } print s r }'; }

machine_lines() {
  local cpu mem commit
  cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
  mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || true)
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)
  if [ "$commit" != none ] && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit (with uncommitted changes)"
  fi
  echo "- Machine: $(nproc) CPUs ($cpu), $mem RAM, $(uname -sr); load generator on the same machine"
  echo "- Other load: CPUs $BUSY_BEFORE busy just before measuring; load average $LOAD_BEFORE"
  echo "- Commit: $commit; $(rustc --version 2>/dev/null | awk '{print $1, $2}')"
}

# record SECTION_FILE: prints it, and adds it to BENCHMARKS.md below the marker.
record() {
  log "results"
  cat "$1"
  [ -n "$RECORD" ] || return 0
  local marker='<!-- bench/run inserts new results below this line, newest first -->'
  grep -qF -- "$marker" "$OUTPUT" || die "no results marker in $OUTPUT"
  awk -v marker="$marker" -v section="$1" '
    skip && $0 == "" { skip = 0; next }
    { skip = 0; print }
    $0 == marker && !done { print ""; while ((getline line < section) > 0) print line; done = 1; skip = 1 }
  ' "$OUTPUT" >"$WORK/out.md"
  cat "$WORK/out.md" >"$OUTPUT"
  echo "recorded in $OUTPUT" >&2
}
