#!/usr/bin/env bash
# The mutation table of issue 15: each mutant (canister_build::mutants, one fix of issue 12
# reverted) against the test of testbed/tests/safety_net.rs that guards its fix. A mutant is
# "killed" when that test fails under it; "survived" when it passes (the test does not see
# the reverted fix); "build failed" when the mutant could not be built.
#
#   scripts/mutants.sh [NAME...]      the named mutants (all without arguments)
#   scripts/mutants.sh --explore N [NAME...]
#                                     instead, the explorer (`agentctl explore --seeds N`) on
#                                     the plain trio and on each mutant: the first seed whose
#                                     history breaks an invariant under the mutant while the
#                                     same seed holds on the plain trio ("seeds needed"); a
#                                     history its wall-time bound stopped (TIMEOUT) counts
#                                     neither way
#
# Each mutant is built on first use into target/canisters/mutants (the agent's mutants take
# about two minutes each on 2 cores). Logs go to target/mutants-logs/NAME.log. Prints a
# markdown table; exits non-zero if a mutant survived or did not build.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
logs=target/mutants-logs
mkdir -p "$logs"
list=$(cargo run -q -p canister-build --bin build-canisters -- --mutants) || exit 2

# Whether mutant $1 is among the names that follow (all are, when none follow).
wanted() {
    local name=$1
    shift
    [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx "$name"
}

# The explorer's table: seed -> "FAIL invariant", "timeout" or "ok", from agentctl explore's
# progress lines ("[   n] seed S  ... FAIL ...", then "       invariant: detail"; "... TIMEOUT
# ...", then "       timed_out: detail": the history's wall-time bound struck, so the seed
# neither finds nor misses the mutant).
explore_outcomes() {
    # The seed is the word after "seed" (the counter is padded: "[   1]" is two fields).
    awk '/^\[ *[0-9]+\] seed / { for (i = 1; i < NF; i++) if ($i == "seed") seed = $(i + 1); fail = 0
                                 if ($0 ~ / FAIL /) { fail = 1 }
                                 else if ($0 ~ / TIMEOUT /) { print seed, "timeout" }
                                 else { print seed, "ok" }
                                 next }
         fail == 1 { sub(/^ +/, ""); split($0, a, ":"); print seed, "FAIL", a[1]; fail = 0 }' "$1"
}

if [ "${1:-}" = "--explore" ]; then
    seeds="${2:?--explore N}"
    shift 2
    cargo build -q -p agentctl || exit 2
    agentctl=target/debug/agentctl
    base="$logs/plain.explore.log"
    "$agentctl" explore --seeds "$seeds" --shrink-runs 0 >"$base" 2>&1
    explore_outcomes "$base" >"$logs/plain.outcomes"
    echo "plain trio: $(grep -c FAIL "$logs/plain.outcomes") of $seeds seeds break an invariant"
    echo "plain trio: $(grep -c timeout "$logs/plain.outcomes") of $seeds seeds timed out (see $base)"
    echo
    echo "| mutant | item | seeds needed (first seed that breaks an invariant; the plain trio holds on it) | seeds that find it, of $seeds | seeds timed out | wall s |"
    echo "| --- | --- | --- | --- | --- | --- |"
    bad=0
    while IFS=$'\t' read -r name item guard reverts; do
        wanted "$name" "$@" || continue
        log="$logs/$name.explore.log"
        start=$(date +%s)
        "$agentctl" explore --mutant "$name" --seeds "$seeds" --shrink-runs 0 >"$log" 2>&1
        took=$(( $(date +%s) - start ))
        explore_outcomes "$log" >"$logs/$name.outcomes"
        found=$(join <(sort "$logs/$name.outcomes") <(sort "$logs/plain.outcomes") |
            awk '$2 == "FAIL" && $4 == "ok" { print $1, $3 }' | sort -n)
        if [ -z "$found" ]; then
            first="not found"
            bad=1
        else
            first=$(echo "$found" | head -1 | awk '{ print "seed " $1 " (" $2 ")" }')
        fi
        echo "| $name | $item | $first | $(echo -n "$found" | grep -c .) | $(grep -c timeout "$logs/$name.outcomes") | $took |"
    done <<<"$list"
    exit $bad
fi
echo "| mutant | item | guarding test (safety_net.rs) | result | wall s |"
echo "| --- | --- | --- | --- | --- |"
bad=0
while IFS=$'\t' read -r name item guard reverts; do
    wanted "$name" "$@" || continue
    log="$logs/$name.log"
    start=$(date +%s)
    TESTBED_MUTANT="$name" cargo test -p testbed --test safety_net -- --exact "$guard" \
        >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    if grep -q 'cargo build` of the canisters failed\|could not compile' "$log"; then
        result="build failed"
        bad=1
    elif [ $rc -eq 0 ] && grep -q "test result: ok. 1 passed" "$log"; then
        result="survived"
        bad=1
    elif grep -q "test result: FAILED. 0 passed; 1 failed" "$log"; then
        # The first line of the panic message says what the test saw.
        why=$(grep -A1 "panicked at" "$log" | sed -n 2p | cut -c1-110 | tr '|' '/')
        result="killed: ${why}"
    else
        result="unclear (exit $rc; see $log)"
        bad=1
    fi
    echo "| $name | $item | $guard | $result | $took |"
done <<<"$list"
exit $bad
