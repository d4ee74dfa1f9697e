#!/usr/bin/env bash
# The mutation table of issue 15: each mutant (canister_build::mutants, one fix of issue 12
# reverted) against the test of testbed/tests/safety_net.rs that guards its fix. A mutant is
# "killed" when that test fails under it; "survived" when it passes (the test does not see
# the reverted fix); "build failed" when the mutant could not be built.
#
#   scripts/mutants.sh [NAME...]      the named mutants (all without arguments)
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
echo "| mutant | item | guarding test (safety_net.rs) | result | wall s |"
echo "| --- | --- | --- | --- | --- |"
bad=0
while IFS=$'\t' read -r name item guard reverts; do
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
        continue
    fi
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
