#!/usr/bin/env bash
# Screens for the room (README): the Chinese tour, its help and the presenter
# layout at 80×24, and the English presenter layout at 60×20, from real runs
# in tmux. Each screen is kept as text (NAME.txt, what tmux shows) and as a
# one-frame asciicast (NAME.cast) that render_cast.py turns into NAME.png.
# Usage: assets/capture-room.sh [BIN_DIR]   (BIN_DIR: target/debug)
set -euo pipefail
name=room
# shellcheck source=assets/tmux-capture.sh
. "$(dirname "$0")/tmux-capture.sh"

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
