#!/bin/bash
# The shell loop a user would write with inotify-tools (Debian):
#   peer_inotifywait.sh script DIR LOGFILE   runs peer_handler.sh per file (fork+exec)
#   peer_inotifywait.sh builtin DIR LOGFILE  the handler is a shell builtin (no fork)
mode=$1 dir=$2 log=$3
handler="$(dirname "$0")/peer_handler.sh"
if [ "$mode" = script ]; then
    inotifywait -m -q -e close_write -e moved_to --format '%w%f' "$dir" |
        while IFS= read -r f; do "$handler" "$log" "$f"; done
else
    inotifywait -m -q -e close_write -e moved_to --format '%w%f' "$dir" |
        while IFS= read -r f; do printf '%s %s\n' "$EPOCHREALTIME" "$f" >> "$log"; done
fi
