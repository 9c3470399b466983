#!/usr/bin/env bash
# Screens for the room (README): the Chinese tour, its help and the presenter
# layout at 80×24, and the English presenter layout at 60×20, from real runs
# in tmux. Each screen is kept as text (NAME.txt, what tmux shows) and as a
# one-frame asciicast (NAME.cast) that render_cast.py turns into NAME.png.
# Usage: assets/capture-room.sh [BIN_DIR]   (BIN_DIR: target/debug)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-target/debug}")
work=$(mktemp -d)
sock="plumdash-room-$$"
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

start 80 24
run "LANG=zh_CN.UTF-8 $bin/plumdash tour --db zh.db --step 500ms --restart-delay 1s --kill-at 50 --no-mouse --recording"
wait_for '导览 5/6'
shot room-zh-tour 80 24
key '?'
wait_for '按键'
shot room-zh-help 80 24
key Escape; sleep 0.5
key p
wait_for '┏ 状态'
shot room-zh-presenter 80 24
key q
wait_for '^>'

start 60 20
run "$bin/plumdash --layout presenter --db en.db --step 500ms --restart-delay 1s --kill-at 50 --no-mouse --recording"
wait_for 'RESUMED from'
shot room-en-presenter-60x20 60 20
key q
wait_for '^>'
echo "captured: room-zh-tour room-zh-help room-zh-presenter room-en-presenter-60x20"
