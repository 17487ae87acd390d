#!/usr/bin/python3
"""The naive script a user would write instead of sluice for ZeroMQ events
(issue 15 item 1): a PULL loop (Debian python3-zmq) that does json.loads, calls
a no-op handler and inserts one row per event, committing in batches, into a
table with no index besides its rowid, WAL and synchronous=NORMAL. It keeps
no journal, no invocation record and no log: this is the figure sluice must
beat while keeping all of those.

    peer_zmq_naive.py ENDPOINT DB COUNT [BATCH]
"""
import json
import sqlite3
import sys
import time
import zmq


def handler(event, context):
    """The no-op handler."""
    return None


INSERT = "INSERT INTO invocations (topic, payload, received_at) VALUES (?, ?, ?)"


def flush(db, rows):
    """One transaction per batch."""
    db.execute("BEGIN")
    db.executemany(INSERT, rows)
    db.execute("COMMIT")


def main():
    endpoint, db_path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS invocations (id INTEGER PRIMARY KEY, topic TEXT,"
               " payload TEXT, received_at REAL)")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, 10000)
    sock.bind(endpoint)
    print("ready", flush=True)

    done = 0
    rows = []
    while done < count:
        try:
            topic, payload = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            if rows:                   # nothing waiting: commit what we have
                flush(db, rows)
                rows = []
            topic, payload = sock.recv_multipart()
        event = json.loads(payload)
        handler(event, None)
        rows.append((topic.decode(), payload.decode(), time.time()))
        done += 1
        if len(rows) >= batch:
            flush(db, rows)
            rows = []
    if rows:
        flush(db, rows)
    db.close()
    time.sleep(1)  # let the harness read this process's CPU time before it goes
    sock.close(linger=0)
    ctx.term()


if __name__ == "__main__":
    main()
