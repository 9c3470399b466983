#!/usr/bin/env bash
# Screens of the seed's three recovery patterns (README, "Recovery patterns"),
# from real runs in tmux at 120×36: the transaction log after a replay, the
# state machine after a restore, and the checkpoint pattern's --unsafe variant
# after the step it lost. Each screen is kept as text (NAME.txt) and as a
# one-frame asciicast (NAME.cast) that render_cast.py turns into NAME.png.
# Usage: assets/capture-patterns.sh [BIN_DIR]   (BIN_DIR: target/debug)
set -euo pipefail
name=patterns
# shellcheck source=assets/tmux-capture.sh
. "$(dirname "$0")/tmux-capture.sh"

# NAME, plumdash's arguments, what to wait for before the screenshot.
capture() {
  start 120 36
  run "$bin/plumdash $2 --db $1.db --step 600ms --restart-delay 1s --kill-at 50 --no-mouse --recording"
  wait_for "$3"
  shot "$1" 120 36
  key q
  wait_for '^>'
}

# The transaction log is killed in its window (OP_5 applied, not yet logged),
# so the replay meets an operation already done and skips it.
start 120 36
run "$bin/plumdash --pattern txlog --db pattern-txlog.db --step 600ms --restart-delay 1s --no-mouse --recording"
wait_for 'applied 5 / logged 4'
key k
wait_for 'already applied, skipped'
shot pattern-txlog 120 36
key q
wait_for '^>'

capture pattern-fsm "--pattern fsm" 'machine restored in'
capture pattern-checkpoint-unsafe "--pattern checkpoint --unsafe" 'STEP LOST'
