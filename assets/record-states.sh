#!/usr/bin/env bash
# Records plain `plumdash` (no tour) with --kill-at 50 from start to COMPLETED
# in tmux under asciinema, for the state screenshots. Usage:
#   assets/record-states.sh OUT.cast [BIN_DIR]   (BIN_DIR: target/release)
set -euo pipefail
out=$(realpath -m "$1")
bin=$(realpath "${2:-target/release}")
work=$(mktemp -d)
sock="plumdash-states-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
tmux -L "$sock" -f /dev/null new-session -d -s main -x 120 -y 36 \
  env -u NO_COLOR TERM=xterm-256color LANG=C.UTF-8 PS1='> ' \
  asciinema rec --overwrite -q -c "bash --noprofile --norc" "$out"
until tmux -L "$sock" capture-pane -p -t main | grep -q '^>'; do sleep 0.1; done
tmux -L "$sock" send-keys -t main -l \
  "cd $work && $bin/plumdash --db demo.db --step 700ms --restart-delay 1s --kill-at 50 --no-mouse --recording"
tmux -L "$sock" send-keys -t main Enter
for _ in $(seq 1 300); do
  if tmux -L "$sock" capture-pane -p -t main | grep -q "COMPLETED"; then break; fi
  sleep 0.1
done
sleep 2
tmux -L "$sock" send-keys -t main q
sleep 2
tmux -L "$sock" send-keys -t main -l "exit"
tmux -L "$sock" send-keys -t main Enter
sleep 1
