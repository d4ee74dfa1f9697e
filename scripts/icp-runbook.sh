#!/usr/bin/env bash
# The README's operator runbook, run for real with DFINITY's icp-cli against
# `agentctl serve --deploy` (ic-sim behind the IC's HTTP interface). The steps and the answers
# they must give are in scripts/runbook.txt.
#
# It installs what it needs, as a fresh machine would: node and npm with apt when missing, and
# icp from npm (pinned, telemetry off) into target/icp-cli. Then it creates two identities (an
# operator, and a stranger that is neither operator nor controller), starts the server, links the
# canisters, checks that a wrong root key is refused, and runs every step. Exits non-zero on the
# first step that does not hold, saying which and why.
#
# Environment: AGENTCTL (the agentctl binary; built with cargo when unset), RUNBOOK_WORK
# (a work directory; a fresh temporary one when unset).
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ICP_PACKAGE=@icp-sdk/icp-cli-linux-x64
ICP_VERSION=1.5.0
ICP_DIR=$ROOT/target/icp-cli
ICP=$ICP_DIR/node_modules/$ICP_PACKAGE/bin/icp
WORK=${RUNBOOK_WORK:-$(mktemp -d)}
mkdir -p "$WORK"
export DO_NOT_TRACK=1 ICP_TELEMETRY_DISABLED=1 RUST_BACKTRACE=0
export ICP_HOME=$WORK/icp-home ICP_ENVIRONMENT=sim
SERVER_PID=

say() { printf 'runbook: %s\n' "$*"; }
fail() { printf 'runbook: FAILED: %s\n' "$*" >&2; exit 1; }
cleanup() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

# --- icp from npm ------------------------------------------------------------------------------
install_icp() {
  if [ -x "$ICP" ] && [ "$("$ICP" --version)" = "icp $ICP_VERSION" ]; then
    say "icp $ICP_VERSION already installed in $ICP_DIR"
    return
  fi
  if ! command -v npm >/dev/null; then
    say "npm is missing: installing node and npm with apt"
    command -v apt-get >/dev/null || fail "npm is missing and there is no apt-get to install it: install node and npm, then run again"
    local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >/dev/null || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null \
      || fail "apt-get install nodejs npm failed"
  fi
  local start=$SECONDS
  mkdir -p "$ICP_DIR"
  npm install --no-audit --no-fund --silent --prefix "$ICP_DIR" "$ICP_PACKAGE@$ICP_VERSION" \
    || fail "npm install $ICP_PACKAGE@$ICP_VERSION failed (is the npm registry reachable?)"
  [ -x "$ICP" ] || fail "npm installed $ICP_PACKAGE but $ICP is not there"
  say "installed $("$ICP" --version) from npm in $((SECONDS - start)) s"
}

# --- the server ----------------------------------------------------------------------------------
# The binary itself (not a shell function around it), so that $! is the server and the exit trap
# stops it.
if [ -z "${AGENTCTL:-}" ]; then
  (cd "$ROOT" && cargo build -q -p agentctl) || fail "cargo build -p agentctl failed"
  AGENTCTL=$ROOT/target/debug/agentctl
fi
agentctl() { "$AGENTCTL" "$@"; }

start_server() {
  "$AGENTCTL" serve --port 0 --deploy --operator "$ME" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  local waited=0
  until grep -q '^ready$' "$WORK/server.log"; do
    kill -0 "$SERVER_PID" 2>/dev/null || fail "agentctl serve exited: $(cat "$WORK/server.log")"
    [ $waited -lt 1800 ] || fail "agentctl serve did not get ready in 30 minutes"
    sleep 1; waited=$((waited + 1))
  done
  value() { sed -n "s/^$1: //p" "$WORK/server.log" | head -1; }
  URL=$(value url); AGENT=$(value agent); WATCHDOG=$(value watchdog); STAGING=$(value staging)
  say "server $URL: agent $AGENT, watchdog $WATCHDOG, staging $STAGING"
}

# A copy of the project whose `sim` network points at the server's port.
make_project() {
  local dir=$1 root_key=$2
  mkdir -p "$dir"
  sed -e "s#url: http://127.0.0.1:4943#url: $URL#" -e "s#root-key: .*#root-key: $root_key#" \
    "$ROOT/icp.yaml" >"$dir/icp.yaml"
  grep -q "url: $URL" "$dir/icp.yaml" || fail "icp.yaml has no \`url: http://127.0.0.1:4943\` line to point at the server"
}

# --- steps -----------------------------------------------------------------------------------------
# Whether `canister call CANISTER METHOD` is a query in CANISTER's .did.
is_query() {
  grep -Eq "^  $2 : .*\) query;$" "$ROOT/$1/$1.did"
}

# The identity that must be refused before COMMAND runs, if COMMAND changes anything.
needs_refusal() {
  local words=($1)
  case "${words[0]} ${words[1]}" in
    "canister call") ! is_query "${words[2]}" "${words[3]}" ;;
    "canister stop" | "canister start") return 0 ;;
    "canister snapshot") [ "${words[2]}" != list ] ;;
    *) return 1 ;;
  esac
}

run_icp() { # COMMAND [--identity NAME]: prints the answer (stdout and stderr)
  eval "\"\$ICP\" $1 ${2:-}" 2>&1 || true
}

# COMMAND with the runbook's variables replaced by their values.
expand() {
  local text=$1 name
  for name in SNAPSHOT_BLOB SNAPSHOT UPGRADE VERSION INCIDENT RELEASE STRANGER ME; do
    text=${text//\$$name/${!name:-}}
  done
  printf '%s' "$text"
}

STEPS=0
step() {
  local kind=$1 pattern=$2 command=$3 answer name
  command=$(expand "$command"); pattern=$(expand "$pattern")
  if [[ $command == upload* ]]; then
    upload "$pattern" $command
    return
  fi
  if needs_refusal "$command"; then
    answer=$(run_icp "$command" "--identity stranger")
    # Refused by the method (Unauthorized), by the IC (not a controller), or before it runs
    # by the canister's inspect_message (IC0406, "rejected the message").
    if ! grep -Eq 'Unauthorized|IC0512|Only the controllers|IC0406|rejected the message' <<<"$answer"; then
      fail "a non-operator was not refused: icp $command --identity stranger answered: $answer"
    fi
  fi
  local deadline=$((SECONDS + 180))
  while :; do
    answer=$(run_icp "$command")
    if [ "$kind" = silent ]; then
      [ -z "$answer" ] && break
      fail "icp $command: expected no output, got: $answer"
    fi
    # Matched against the answer on one line, so that a pattern can span a record's fields.
    if grep -Eq -- "$pattern" <<<"$(tr '\n' ' ' <<<"$answer")"; then break; fi
    if [[ $kind == wait* ]] && [ $SECONDS -lt $deadline ]; then sleep 2; continue; fi
    fail "icp $command: expected /$pattern/, got: $answer"
  done
  if [[ $kind == capture* ]]; then
    name=${kind#capture }
    local value
    value=$(tr '\n' ' ' <<<"$answer" | grep -Eo -- "$pattern" | head -1 | sed -E "s/$pattern/\\1/")
    printf -v "$name" '%s' "$value"
    # A snapshot id as a candid blob, for the watchdog's rollback.
    if [ "$name" = SNAPSHOT ]; then SNAPSHOT_BLOB=$(sed 's/../\\&/g' <<<"$value"); fi
  fi
  STEPS=$((STEPS + 1))
  say "ok  icp $command"
}

upload() { # PATTERN upload KIND FILE
  local pattern=$1 kind=$3 file=$4 line answer first=1
  agentctl upload-args --kind "$kind" --wasm "$file" --out "$WORK/upload" >"$WORK/upload.txt"
  while read -r line; do
    line=${line#icp }
    if [ $first = 1 ]; then
      answer=$(run_icp "$line" "--identity stranger")
      grep -Eq 'Unauthorized|IC0406|rejected the message' <<<"$answer" \
        || fail "a non-operator's upload was not refused: $answer"
      first=0
    fi
    answer=$(run_icp "$line")
    grep -Eq -- "$pattern" <<<"$answer" || fail "icp $line: expected /$pattern/, got: $answer"
    STEPS=$((STEPS + 1))
  done < <(grep '^icp ' "$WORK/upload.txt")
  say "ok  upload $kind $(basename "$file") ($(grep -c '^icp ' "$WORK/upload.txt") icp calls)"
}

# --- main ------------------------------------------------------------------------------------------
install_icp
"$ICP" identity new operator --storage plaintext -q >/dev/null 2>&1 || true
"$ICP" identity new stranger --storage plaintext -q >/dev/null 2>&1 || true
"$ICP" identity default operator
ME=$("$ICP" identity principal --identity operator)
STRANGER=$("$ICP" identity principal --identity stranger)
[ "$ME" != "$STRANGER" ] || fail "the two identities are the same"

RUNBOOK_START=$SECONDS
start_server
RELEASE=$WORK/release.wasm
agentctl patch --wasm "$ROOT/target/canisters/wasm/agent.wasm.gz" --ops <(echo '[]') \
  --out "$RELEASE" --version runbook-release --schema 1..=3 >/dev/null

# A wrong root key: icp must refuse the server's answers.
make_project "$WORK/wrong-key" mainnet
answer=$(cd "$WORK/wrong-key" && "$ICP" canister call "$WATCHDOG" status '()' 2>&1 || true)
grep -Eqi 'certificate|signature|verif' <<<"$answer" \
  || fail "icp accepted an answer under the wrong root key: $answer"
say "ok  a wrong root key is refused: $(grep -Ei 'certificate|signature|verif' <<<"$answer" | head -1)"

make_project "$WORK/project" "$(sed -n 's/^root key: //p' "$WORK/server.log")"
cd "$WORK/project"
for pair in "agent $AGENT" "watchdog $WATCHDOG" "staging $STAGING"; do
  "$ICP" canister link $pair >/dev/null
done

while IFS= read -r line; do
  [[ -z ${line// } || $line == \#* ]] && continue
  IFS='|' read -r kind pattern command <<<"$line"
  kind=$(xargs <<<"$kind"); pattern=$(sed -E 's/^ +| +$//g' <<<"$pattern"); command=$(sed -E 's/^ +| +$//g' <<<"$command")
  step "$kind" "$pattern" "$command"
done <"$ROOT/scripts/runbook.txt"

say "$STEPS steps held in $((SECONDS - RUNBOOK_START)) s (server start included)"
