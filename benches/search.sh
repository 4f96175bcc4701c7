#!/usr/bin/env bash
# Search and customer-360 latency at 1M contacts / 10M activities (docs/benchmarks.md).
#
#   benches/search.sh RAPPORT_BINARY DATABASE_URL [ROUNDS]
#
# DATABASE_URL is sqlite:///path/file.db or postgres://…/rapport_bench. Seeds it with
# `rapport demo --size large --seed-only` (skipped when already seeded; resumes a partial
# seed), serves it, creates a token for the demo admin, then runs search_bench, built with
#   CARGO_TARGET_DIR=$PWD/benches/target cargo build --release --manifest-path benches/Cargo.toml --bin search_bench
set -euo pipefail

RAPPORT=${1:?rapport binary}
DB_URL=${2:?database url}
ROUNDS=${3:-100}
BENCH=${BENCH:-$(dirname "$0")/target/release/search_bench}
ADDR=${ADDR:-127.0.0.1:18090}

"$RAPPORT" --database-url "$DB_URL" demo --size large --seed-only
TOKEN=$("$RAPPORT" --database-url "$DB_URL" token create --email admin@demo.rapport.test | tr -d '[:space:]')
"$RAPPORT" --database-url "$DB_URL" serve --listen "$ADDR" >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 50); do
    curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "http://$ADDR/api/v1/me" && break
    sleep 0.2
done
"$BENCH" --db "$DB_URL" --base "http://$ADDR" --token "$TOKEN" --rounds "$ROUNDS"
