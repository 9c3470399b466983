#!/usr/bin/env bash
# Screens of the seed's three recovery patterns (README, "Recovery patterns"),
# from real runs in tmux at 120×36: the transaction log after a replay, the
# state machine after a restore, and the checkpoint pattern's --unsafe variant
# after the step it lost. Each screen is kept as text (NAME.txt) and as a
# one-frame asciicast (NAME.cast) that render_cast.py turns into NAME.png.
# Usage: assets/capture-patterns.sh [BIN_DIR]   (BIN_DIR: target/debug)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-target/debug}")
work=$(mktemp -d)
sock="plumdash-patterns-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

start() { # COLS ROWS
  tmux -L "$sock" kill-server 2>/dev/null || true
  tmux -L "$sock" -f /dev/null new-session -d -s main -x "$1" -y "$2" \
    env -u NO_COLOR -u LC_ALL -u LC_MESSAGES TERM=xterm-256color LANG=C.UTF-8 PS1='> ' \
    bash --noprofile --norc
  until tmux -L "$sock" capture-pane -p -t main | grep -q '^>'; do sleep 0.1; done
}
run() { tmux -L "$sock" send-keys -t main -l "cd $work && $1"; tmux -L "$sock" send-keys -t main Enter; }
key() { tmux -L "$sock" send-keys -t main "$@"; }
wait_for() { # REGEX
  for _ in $(seq 1 300); do
    if tmux -L "$sock" capture-pane -p -t main | grep -qE "$1"; then return 0; fi
    sleep 0.1
  done
  echo "never saw /$1/" >&2
  exit 1
}
shot() { # NAME COLS ROWS
  sleep 0.4
  tmux -L "$sock" capture-pane -p -t main >"$here/$1.txt"
  tmux -L "$sock" capture-pane -p -e -t main | /usr/bin/python3 -c '
import json, sys
cols, rows = int(sys.argv[1]), int(sys.argv[2])
lines = sys.stdin.read().rstrip("\n").split("\n")
data = "\x1b[H\x1b[2J" + "\r\n".join(lines)
print(json.dumps({"version": 2, "width": cols, "height": rows}))
print(json.dumps([0.0, "o", data]))' "$2" "$3" >"$here/$1.cast"
}

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
