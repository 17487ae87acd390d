# The tutorial's function.sh (handler), and two more for the tests.
function handler () {
  EVENT_DATA=$1

  RESPONSE="Echoing request: '$EVENT_DATA'"

  echo $RESPONSE
}

# Sleeps past any deadline; writes the bootstrap's pid first.
function slow () {
  echo $$ > "$LAMBDA_TASK_ROOT/bootstrap.pid"
  sleep 300
}

# Fails, which ends the tutorial's bootstrap (set -e): a runtime crash.
function crash () {
  echo "about to fail" >&2
  exit 3
}
