#!/usr/bin/env bash
# The mutation table of issue 15: each mutant (canister_build::mutants, one fix of issue 12
# reverted) against the test of testbed/tests/safety_net.rs that guards its fix. A mutant is
# "killed" when that test fails under it; "survived" when it passes (the test does not see
# the reverted fix); "build failed" when the mutant could not be built.
#
#   scripts/mutants.sh [NAME...]      the named mutants (all without arguments)
#   scripts/mutants.sh --explore N [NAME...]
#                                     instead, the explorer (`agentctl explore --seed S`, seeds
#                                     1..N one process each) on the plain trio and on each
#                                     mutant: the first seed whose history breaks an invariant
#                                     under the mutant while the same seed holds on the plain
#                                     trio ("seeds needed"), and how many of the seeds do.
#       EXPLORE_STEPS=K        steps per history (default 30)
#       EXPLORE_SEED_LIST="S…" these seeds instead of 1..N
#       EXPLORE_FIRST=1        stop at a mutant's first finding (the count is then 1)
#       EXPLORE_TIMEOUT=SECS   wall bound per history and trio (default 900; "timeout" counts
#                              as not holding on the plain trio, as not found on a mutant; a
#                              history agentctl's own bound stopped (TIMEOUT) counts the same)
#
# Each mutant is built on first use into target/canisters/mutants (the agent's mutants take
# about two minutes each on 2 cores). Logs go to target/mutants-logs/NAME.log. Prints a
# markdown table; exits non-zero if a mutant survived or did not build.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
logs=target/mutants-logs
mkdir -p "$logs"
list_mutants=$(cargo run -q -p canister-build --bin build-canisters -- --mutants) || exit 2

# Whether mutant $1 is among the names that follow (all are, when none follow).
wanted() {
    local name=$1
    shift
    [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx "$name"
}

# The explorer's table: seed -> "FAIL invariant" or "ok", from agentctl explore's progress
# lines ("[   n] seed S  ... FAIL ...", then "       invariant: detail").
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
    steps="${EXPLORE_STEPS:-30}"
    list="${EXPLORE_SEED_LIST:-$(seq 1 "$seeds")}"
    cargo build -q -p agentctl || exit 2
    agentctl=target/debug/agentctl
    # One seed of one trio ("plain" or a mutant's name), bounded by EXPLORE_TIMEOUT seconds:
    # prints "ok", "FAIL invariant" or "timeout". The plain trio's outcomes are kept per seed
    # and step count, so a second table reuses them.
    outcome() {
        local trio=$1 seed=$2 file="$logs/$1.s$2.n$steps.outcome"
        if [ "$trio" != plain ] || [ ! -s "$file" ]; then
            local mutant=()
            [ "$trio" = plain ] || mutant=(--mutant "$trio")
            timeout "${EXPLORE_TIMEOUT:-900}" "$agentctl" explore "${mutant[@]}" --seed "$seed" \
                --steps "$steps" --shrink-runs 0 >"$logs/$trio.s$seed.n$steps.log" 2>&1
            if [ $? -eq 124 ]; then
                echo timeout >"$file"
            else
                explore_outcomes "$logs/$trio.s$seed.n$steps.log" | cut -d' ' -f2- >"$file"
            fi
        fi
        cat "$file"
    }
    echo "histories of $steps steps; seeds: $(echo $list)"
    echo
    echo "| mutant | item | first seed that finds it (invariant) | seeds that find it, of those run | wall s |"
    echo "| --- | --- | --- | --- | --- |"
    bad=0
    while IFS=$'\t' read -r name item guard reverts; do
        wanted "$name" "$@" || continue
        start=$(date +%s)
        first="not found"
        found=0
        run=0
        for seed in $list; do
            plain=$(outcome plain "$seed")
            if [ "$plain" != ok ]; then
                # The plain trio does not hold on this seed (or ran out of time): it cannot
                # tell the mutant apart.
                continue
            fi
            got=$(outcome "$name" "$seed")
            run=$((run + 1))
            case "$got" in
            FAIL*)
                found=$((found + 1))
                [ "$first" = "not found" ] && first="seed $seed (${got#FAIL })"
                [ -n "${EXPLORE_FIRST:-}" ] && break
                ;;
            esac
        done
        [ "$found" -eq 0 ] && bad=1
        echo "| $name | $item | $first | $found of $run | $(($(date +%s) - start)) |"
    done <<<"$list_mutants"
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
done <<<"$list_mutants"
exit $bad
