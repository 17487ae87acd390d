#!/bin/bash
# The handler script a user would write for incrond or `inotifywait | while
# read`: note that it ran, when (bash's $EPOCHREALTIME, µs) and on which file.
#   peer_handler.sh LOGFILE PATH
printf '%s %s\n' "$EPOCHREALTIME" "$2" >> "$1"
