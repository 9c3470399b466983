# The tmux helpers capture-patterns.sh and capture-room.sh share. Sourced
# after setting `name` (the tmux socket's name); reads the caller's first
# argument as the binaries' folder (default target/debug).
# shellcheck shell=bash
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-target/debug}")
work=$(mktemp -d)
sock="plumdash-$name-$$"
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

