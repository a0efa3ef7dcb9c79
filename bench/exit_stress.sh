#!/usr/bin/env bash
# `ingest quarantine` N times in a row (default 400) on a small dataset with rejected rows:
# counts the calls that did not exit 0 (issue 17, finding 10: an abort at exit, "terminate
# called without an active exception", about 1 in 350 calls under load). Run it while the
# machine is busy (e.g. beside `make test`): the abort showed under load only.
set -euo pipefail
calls=${1:-400}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/configs"
printf 'id,value,day\n1,2.5,2026-01-01\n2,x,2026-01-02\n3,4,2026-01-03\n4,bad,2026-01-04\n' > "$work/data.csv"
cat > "$work/configs/q.yaml" <<YAML
dataset_id: QTEST
source: {kind: file, path: $work/data.csv, format: csv}
normalize: {primary_keys: [id], schema: {value: float64, day: date}}
checks: {max_rejected_ratio: 0.9}
YAML
export INGEST_CONFIG_DIR=$work/configs INGEST_STORE_ROOT=$work/store DAGSTER_HOME=$work/dagster_home
"$here/.venv/bin/ingest" run QTEST > /dev/null
failed=0
for i in $(seq "$calls"); do
  if ! "$here/.venv/bin/ingest" quarantine QTEST > /dev/null 2> "$work/err"; then
    failed=$((failed + 1))
    echo "call $i: exit code $?: $(tail -1 "$work/err")"
  fi
done
echo "calls=$calls nonzero=$failed"
