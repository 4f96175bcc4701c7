#!/usr/bin/env bash
# HTTP benchmark harness: Rapport (B) as a ratio to a bare axum baseline (A) that does
# the same read through the fastest driver, measured alternately in the same run
# (A B A B ..., see shared/PERFORMANCE.md), on SQLite and on PostgreSQL.
#
#   benches/http.sh [PATH/TO/rapport]
#
# Without a rapport binary only the raw server runs: that checks the harness and gives
# the raw limits, but no ratios.
#
# Settings (environment):
#   DURATION=10s THREADS=2 CONNECTIONS=32 RUNS=3   wrk load per measurement
#   BACKENDS="sqlite postgres"                     which databases
#   CASES="user_get login"                         which case_* functions, in order
#   PG_URL=postgres://postgres@127.0.0.1:5432      server with trust auth (or a password in the URL)
#   PG_DB=rapport_http_bench                       created and dropped by this script
#   SEED_USERS=10000                               extra users rows, so lookups hit a real-sized index
#   RAW_PORT=39100 RAPPORT_PORT=39101
#   RAW_SERVER=path                                prebuilt raw_user_server (default: build it)
#   RAPPORT_LOGIN_PATH=/login                      enables B in the login case (form POST)
#   KEEP=1                                         keep the work folder and the PostgreSQL db
#
# The load generator (wrk) and the servers share the machine's cores: say so with the
# figures. Each wrk run is bounded by DURATION; the script stops its own servers on exit.
#
# Adding a case: write `case_NAME() { measure "label" A_URL B_URL [wrk options...]; }`
# (B_URL empty when Rapport has no such endpoint yet) and add NAME to CASES.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

RAPPORT=${1:-}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
RUNS=${RUNS:-3}
BACKENDS=${BACKENDS:-sqlite postgres}
CASES=${CASES:-user_get login}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_DB=${PG_DB:-rapport_http_bench}
SEED_USERS=${SEED_USERS:-10000}
RAW_PORT=${RAW_PORT:-39100}
RAPPORT_PORT=${RAPPORT_PORT:-39101}
RAPPORT_LOGIN_PATH=${RAPPORT_LOGIN_PATH:-/login}
KEEP=${KEEP:-0}

# Must match BENCH_PASSWORD in raw_user_server.rs: the raw login baseline verifies it.
EMAIL=bench-admin@rapport.example
PASSWORD=bench-password-1

RAW_ADDR=127.0.0.1:$RAW_PORT
RAPPORT_ADDR=127.0.0.1:$RAPPORT_PORT

log() { printf '%s\n' "$*" >&2; }
# psql: no NOTICE chatter ("database ... does not exist, skipping"); errors still show.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
die() { log "http.sh: $*"; exit 1; }

# ------------------------------------------------------------------ set-up and clean-up

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rapport-http.XXXXXX")
RESULTS=$WORK/results.tsv
NOTES=$WORK/notes.txt
: >"$RESULTS"
: >"$NOTES"
RAW_PID=
RAPPORT_PID=
PG_CREATED=0

stop_servers() {
    # Only the processes this script started, by their pid.
    for pid in $RAW_PID $RAPPORT_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    RAW_PID=
    RAPPORT_PID=
}

cleanup() {
    stop_servers
    if [ "$PG_CREATED" = 1 ] && [ "$KEEP" != 1 ]; then
        psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { printf '%s\n' "$*" >>"$NOTES"; log "note: $*"; }

check_tools() {
    if ! command -v wrk >/dev/null; then
        die "wrk not found: apt-get install -y wrk"
    fi
    command -v curl >/dev/null || die "curl not found: apt-get install -y curl"
    if [ -n "$RAPPORT" ]; then
        [ -x "$RAPPORT" ] || die "not an executable: $RAPPORT"
        RAPPORT=$(cd "$(dirname "$RAPPORT")" && pwd)/$(basename "$RAPPORT")
    fi
}

build_raw_server() {
    if [ -n "${RAW_SERVER:-}" ]; then return; fi
    log "building raw_user_server (release, -j1)..."
    CARGO_TARGET_DIR=$HERE/target cargo build --release -j1 --quiet \
        --manifest-path "$HERE/Cargo.toml" --bin raw_user_server
    RAW_SERVER=$HERE/target/release/raw_user_server
}

# Waits until URL answers 200 (with optional extra curl arguments), at most 30 s.
wait_ready() {
    local url=$1; shift
    for _ in $(seq 300); do
        if curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# First "id" value of a JSON object, quoted or not; jq when present.
json_id() {
    if command -v jq >/dev/null; then
        jq -r '.id'
    else
        grep -o '"id" *: *"\{0,1\}[0-9]\{1,\}' | head -n1 | grep -o '[0-9]\{1,\}$'
    fi
}

# ------------------------------------------------------------------ per backend

# Sets DB_URL and SCHEMA (the migrations, for the raw-only mode) for backend $1.
# Returns non-zero when the backend is not available here.
create_database() {
    case $1 in
    sqlite)
        DB_URL=sqlite://$WORK/bench.db
        ;;
    postgres)
        command -v psql >/dev/null || { note "postgres skipped: psql not found"; return 1; }
        if ! psql "$PG_URL/postgres" -qc 'SELECT 1' >/dev/null 2>&1; then
            note "postgres skipped: no server at $PG_URL"
            return 1
        fi
        psql "$PG_URL/postgres" -v ON_ERROR_STOP=1 -q \
            -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" >/dev/null
        PG_CREATED=1
        DB_URL=$PG_URL/$PG_DB
        ;;
    *) die "unknown backend $1" ;;
    esac
    # All of the backend's migrations, in order: used only when there is no rapport
    # binary to run `rapport migrate`.
    SCHEMA=$WORK/schema-$1.sql
    cat "$ROOT"/migrations/"$1"/*.sql >"$SCHEMA"
}

drop_database() {
    if [ "$1" = postgres ] && [ "$KEEP" != 1 ]; then
        psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
        PG_CREATED=0
    fi
}

# Schema, the admin user and its token (through Rapport when we have it), extra users;
# then both servers. Sets TOKEN and USER_ID (the row both servers are asked for).
prepare_and_start() {
    TOKEN=
    local seeded
    if [ -n "$RAPPORT" ]; then
        "$RAPPORT" migrate --database-url "$DB_URL" >&2
        "$RAPPORT" user add --email "$EMAIL" --password "$PASSWORD" --role admin --database-url "$DB_URL" >&2
        TOKEN=$("$RAPPORT" token create --email "$EMAIL" --database-url "$DB_URL" | tr -d '[:space:]')
        [ -n "$TOKEN" ] || die "rapport token create printed no token"
        seeded=$("$RAW_SERVER" seed --database-url "$DB_URL" --users "$SEED_USERS")
    else
        seeded=$("$RAW_SERVER" seed --database-url "$DB_URL" --users "$SEED_USERS" --schema "$SCHEMA")
    fi

    "$RAW_SERVER" --database-url "$DB_URL" --listen "$RAW_ADDR" 2>"$WORK/raw-$BACKEND.log" &
    RAW_PID=$!
    wait_ready "http://$RAW_ADDR/health" || die "raw server did not start: $(cat "$WORK/raw-$BACKEND.log")"

    if [ -n "$RAPPORT" ]; then
        "$RAPPORT" serve --database-url "$DB_URL" --listen "$RAPPORT_ADDR" >"$WORK/rapport-$BACKEND.log" 2>&1 &
        RAPPORT_PID=$!
        wait_ready "http://$RAPPORT_ADDR/api/v1/me" -H "Authorization: Bearer $TOKEN" ||
            die "rapport did not start: $(tail -n 20 "$WORK/rapport-$BACKEND.log")"
        USER_ID=$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://$RAPPORT_ADDR/api/v1/me" | json_id)
        [ -n "$USER_ID" ] || die "no id in GET /api/v1/me"
    else
        # The middle of the seeded range: a row deep in the index, not the first page.
        local first=${seeded% *} last=${seeded#* }
        USER_ID=$(((first + last) / 2))
    fi
    # Both servers must return the same row before we time anything.
    curl -fsS -o /dev/null "http://$RAW_ADDR/users/$USER_ID" || die "raw server cannot read user $USER_ID"
}

# ------------------------------------------------------------------ measuring

# Converts a wrk latency ("612.00us", "3.21ms", "1.02s") to milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else printf "nan" }'
}

# One bounded wrk run; prints "req/s p50_ms p99_ms". Fails on any non-2xx/3xx answer
# or socket error: a benchmark of error pages would be a lie.
run_wrk() {
    local url=$1; shift
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url")
    if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
        log "$out"
        die "errors from $url"
    fi
    if grep -q 'Socket errors' <<<"$out"; then
        note "socket errors against $url: $(grep 'Socket errors' <<<"$out")"
    fi
    local rps p50 p99
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    printf '%s %s %s\n' "$rps" "$p50" "$p99"
}

# measure LABEL A_URL B_URL [wrk options...]: RUNS x (A then B), recorded in RESULTS.
# An empty B_URL measures A alone (no Rapport binary, or no such endpoint yet).
measure() {
    local label=$1 a=$2 b=$3; shift 3
    local run r
    for run in $(seq "$RUNS"); do
        r=$(run_wrk "$a" "$@")
        printf '%s\t%s\tA\t%s\t%s\n' "$BACKEND" "$label" "$run" "${r// /$'\t'}" >>"$RESULTS"
        log "  $BACKEND | $label | A run $run: $r"
        if [ -n "$b" ]; then
            r=$(run_wrk "$b" "$@")
            printf '%s\t%s\tB\t%s\t%s\n' "$BACKEND" "$label" "$run" "${r// /$'\t'}" >>"$RESULTS"
            log "  $BACKEND | $label | B run $run: $r"
        fi
    done
}

# ------------------------------------------------------------------ cases

# Authenticated record GET: Rapport's token auth + permission + data scope + audit-free
# read, against the bare primary-key read. Both requests carry the same header.
case_user_get() {
    local b=
    [ -n "$RAPPORT" ] && b="http://$RAPPORT_ADDR/api/v1/users/$USER_ID"
    measure "GET user by id" "http://$RAW_ADDR/users/$USER_ID" "$b" \
        -H "Authorization: Bearer ${TOKEN:-none}"
}

# Password login throughput, bound by argon2id (tens per second per core by design).
# A verifies one argon2 hash with the argon2 crate's default parameters. Rapport has no
# password endpoint in the interface this harness targets yet: set RAPPORT_LOGIN_PATH
# (a form POST taking email and password) once it does.
case_login() {
    local script=$WORK/login.lua b=
    cat >"$script" <<EOF
wrk.method = "POST"
wrk.body = "email=$EMAIL&password=$PASSWORD&csrf_token=bench"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
-- Rapport's login form is CSRF-protected with a double-submit cookie: send both halves.
wrk.headers["Cookie"] = "rapport_login_csrf=bench"
EOF
    if [ -n "$RAPPORT" ] && [ -n "$RAPPORT_LOGIN_PATH" ]; then
        b="http://$RAPPORT_ADDR$RAPPORT_LOGIN_PATH"
    else
        note "login: B skipped (no RAPPORT_LOGIN_PATH); A is the raw argon2 verify limit"
    fi
    # Few connections: each request holds a core for tens of milliseconds.
    CONNECTIONS=${LOGIN_CONNECTIONS:-4} measure "POST login (argon2)" \
        "http://$RAW_ADDR/login" "$b" -s "$script"
}

# ------------------------------------------------------------------ report

# Median with min-max of the values on stdin, one per line: "median [min-max]".
med_range() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.0f [%.0f–%.0f]", m, v[1], v[NR] }'
}
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print ""; exit }
        print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
column_of() { # backend label side column(5=req/s,6=p50,7=p99)
    awk -F'\t' -v b="$1" -v l="$2" -v s="$3" -v c="$4" '$1 == b && $2 == l && $3 == s { print $c }' "$RESULTS"
}

latency() { # backend label side -> "p50 / p99" medians, or "-"
    local p50 p99
    p50=$(column_of "$1" "$2" "$3" 6 | median)
    p99=$(column_of "$1" "$2" "$3" 7 | median)
    if [ -n "$p50" ]; then printf '%s / %s' "$p50" "$p99"; else printf -- '-'; fi
}

report() {
    echo
    echo "## HTTP: Rapport (B) vs raw axum + fastest driver (A)"
    echo
    echo "$(date -u +%Y-%m-%d) · $(nproc) cores, shared by the servers and wrk (loopback) · wrk -t$THREADS -c$CONNECTIONS -d$DURATION (login: -c${LOGIN_CONNECTIONS:-4}) · $RUNS runs each, A B alternating · medians [min–max]"
    echo
    echo "| backend | case | A raw req/s | B rapport req/s | B/A | A p50 / p99 ms | B p50 / p99 ms |"
    echo "|---|---|---|---|---|---|---|"
    local backend label a b ratio
    while IFS=$'\t' read -r backend label; do
        a=$(column_of "$backend" "$label" A 5 | med_range)
        b=$(column_of "$backend" "$label" B 5 | med_range)
        local ma mb
        ma=$(column_of "$backend" "$label" A 5 | median)
        mb=$(column_of "$backend" "$label" B 5 | median)
        ratio=-
        [ -n "$mb" ] && ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.0f%%", 100 * b / a }')
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$backend" "$label" "$a" "$b" "$ratio" \
            "$(latency "$backend" "$label" A)" "$(latency "$backend" "$label" B)"
    done < <(cut -f1,2 "$RESULTS" | awk '!seen[$0]++')
    if [ -s "$NOTES" ]; then
        echo
        sort -u "$NOTES" | sed 's/^/* /'
    fi
}

# ------------------------------------------------------------------ main

main() {
    check_tools
    build_raw_server
    [ -n "$RAPPORT" ] || note "no rapport binary given: raw server only (harness check, no ratios)"
    for BACKEND in $BACKENDS; do
        log "== $BACKEND"
        create_database "$BACKEND" || continue
        prepare_and_start
        for c in $CASES; do
            declare -F "case_$c" >/dev/null || die "no such case: $c (define case_$c)"
            "case_$c"
        done
        stop_servers
        drop_database "$BACKEND"
    done
    report
}

main
