#!/usr/bin/python3
"""The script a user would write instead of sluice for ZeroMQ events: a PULL
consumer (Debian python3-zmq) that does the same work sluice does per event -
parse the JSON payload, journal the event, call a trivial handler, write the
invocations row, mark the event done - into a database with sluice's schema
and indexes (copied from a database sluice created), with sluice's pragmas
(WAL, synchronous=FULL), committing in batches.

    peer_zmq.py ENDPOINT DB SCHEMA_FROM_DB COUNT [BATCH]
"""
import json
import random
import sqlite3
import sys
import time
import zmq

APPEND = ("INSERT OR IGNORE INTO events (event_id, pipeline, source, payload, received_at)"
          " VALUES (?, ?, ?, ?, ?)")
INVOCATION = ("INSERT INTO invocations (request_id, event_id, pipeline, step, handler, source,"
              " attempt, started_at, duration_ms, init_ms, status, status_code, error,"
              " input_bytes, output_bytes, plugin_version, max_memory_kb)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
FINISH = ("UPDATE events SET state = ?, attempts = attempts + ?, finished_at = ?, error = ?"
          " WHERE id = ?")


def uuid7():
    ms = time.time_ns() // 1_000_000
    r = random.getrandbits(80)
    h = "%012x%04x%016x" % (ms, 0x7000 | (r >> 68) & 0x0fff, (0x8 << 60) | (r & ((1 << 62) - 1)))
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def iso_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def handler(event, context):
    """The trivial handler: answer with the event, as sluice's echo does."""
    return {"statusCode": 200, "body": event}


def main():
    endpoint, db_path, schema_from, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    src = sqlite3.connect(schema_from)
    schema = [r[0] for r in src.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        " ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid")]
    src.close()
    db.execute("BEGIN")
    for sql in schema:
        db.execute(sql)
    db.execute("COMMIT")

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, 10000)
    sock.bind(endpoint)
    print("ready", flush=True)

    done = 0
    pending = 0
    db.execute("BEGIN")
    while done < count:
        try:
            topic, payload = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            if pending:                # nothing waiting: make what we have durable
                db.execute("COMMIT")
                db.execute("BEGIN")
                pending = 0
            topic, payload = sock.recv_multipart()
        topic = topic.decode()
        text = payload.decode()
        event = json.loads(text)                      # parse (and validate) the JSON
        event_id = uuid7()
        source = "zmq:" + topic
        cur = db.execute(APPEND, (event_id, "python", source, text, iso_now()))
        journal_id = cur.lastrowid
        request_id = uuid7()
        started_at = iso_now()
        t0 = time.perf_counter()
        response = handler(event, {"request_id": request_id})
        duration_ms = (time.perf_counter() - t0) * 1000
        body = json.dumps(response["body"])
        db.execute(INVOCATION, (request_id, event_id, "python", "echo", "peer.handler", source, 1,
                                started_at, duration_ms, None, "ok", response["statusCode"], None,
                                len(payload), len(body), "1.0", None))
        db.execute(FINISH, ("done", 1, iso_now(), None, journal_id))
        done += 1
        pending += 1
        if pending >= batch:
            db.execute("COMMIT")
            db.execute("BEGIN")
            pending = 0
    db.execute("COMMIT")
    db.close()
    time.sleep(1)  # let the harness read this process's CPU time before it goes
    sock.close(linger=0)
    ctx.term()


if __name__ == "__main__":
    main()
