#!/usr/bin/env python3
"""soak.py - a bounded soak test of sluice (not part of CI).

Runs the daemon on its own temporary folder and, for --minutes (default 10),
sends a mixed load of good and bad events: ZeroMQ publishes (valid, invalid
JSON, wrong frame counts), synchronous invokes (ok, failing, unknown
pipeline), file drops, handlers that crash, time out and fail, over HTTP too.
Every --every seconds it samples the daemon's RSS, open fds, journal rows and
their states, and prints one line. At the end it checks that nothing was lost
(every accepted event reached done or dead), that RSS and fds stayed flat
(last third vs first third of the samples), and exits non-zero otherwise.

Hostile handlers (issue 21, tests/plugins/hostile.c) run beside the good
traffic: a handler that forks and exits, a bounded fork bomb that hangs past
its deadline, a sandboxed handler that starts a setsid daemon, one that
signals its parent (sandboxed, and as "nobody" and as a dynamic uid when the
soak runs as root), one that answers 65 MiB (over the worker frame limit).
Each records the pids it starts; a sample also counts those still alive
(leftovers) and the daemon's zombie children. At the end good traffic must
have no failed invocation, and no process a hostile handler started may be
left.

    bench/soak.py [--minutes 10] [--every 10] [--build build]

Only loopback addresses; every loop is bounded in count and time.
"""
import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, fds


def db_counts(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        states = dict(con.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())
        inv = con.execute("SELECT count(*) FROM invocations").fetchone()[0]
        rej = con.execute("SELECT count(*) FROM rejected").fetchone()[0]
    finally:
        con.close()
    return states, inv, rej


def setup(root, build):
    ports = {k: free_port() for k in ("pull", "router", "http")}
    cfg = {
        "plugin_path": [os.path.join(build, "plugins"), os.path.join(build, "tests", "plugins")],
        "zmq": {"pull": "tcp://127.0.0.1:%d" % ports["pull"],
                "router": "tcp://127.0.0.1:%d" % ports["router"]},
        "http": {"listen": "127.0.0.1:%d" % ports["http"], "timeout_ms": 5000},
        "queue_size": 2048,
    }
    os.mkdir(os.path.join(root, "pipelines"))
    pipelines = [
        {"name": "good", "trigger": {"zmq": {"topic": "good"}},
         "steps": [{"handler": "echo.handler"}], "concurrency": 2},
        {"name": "flaky", "trigger": {"zmq": {"topic": "flaky"}},
         "steps": [{"handler": "fail.flaky", "retry": {"max_attempts": 2, "interval_ms": 20}}]},
        {"name": "bad", "trigger": {"zmq": {"topic": "bad"}},
         "steps": [{"handler": "fail.error"}], "on_failure": {"directory": "dead"}},
        {"name": "crashy", "trigger": {"zmq": {"topic": "crash"}},
         "steps": [{"handler": "crash.segv", "timeout_ms": 2000}]},
        {"name": "slow", "trigger": {"zmq": {"topic": "slow"}},
         "steps": [{"handler": "fail.slow", "timeout_ms": 100}]},
        {"name": "files", "trigger": {"directory": "inbox"},
         "steps": [{"handler": "checksum.handler"}], "isolation": "thread"},
        {"name": "api", "trigger": {"http": {"method": "POST", "path": "/e/{id}"}},
         "steps": [{"handler": "echo.handler"}]},
        # hostile (issue 21)
        {"name": "forkexit", "trigger": {"zmq": {"topic": "h.forkexit"}},
         "steps": [{"handler": "hostile.fork_exit", "timeout_ms": 60000}]},
        {"name": "bomb", "trigger": {"zmq": {"topic": "h.bomb"}},
         "steps": [{"handler": "hostile.fork_bomb", "timeout_ms": 300}]},
        # the daemon it starts lives as long as its worker: the second step
        # ends the worker, so they do not pile up in a warm one
        {"name": "daemonize", "trigger": {"zmq": {"topic": "h.daemonize"}}, "sandbox": True,
         "steps": [{"handler": "hostile.daemonize"}, {"handler": "crash.exit"}]},
        {"name": "killer", "trigger": {"zmq": {"topic": "h.killer"}}, "sandbox": True,
         "steps": [{"handler": "hostile.kill_parent"}]},
        # a 65 MiB response: over the worker frame limit, an error that says so
        # (building and checking 65 MiB of JSON takes the worker a while: every
        # tenth round, with time to do it)
        {"name": "bigresp", "trigger": {"zmq": {"topic": "h.big"}},
         "steps": [{"handler": "hostile.big_response", "timeout_ms": 20000}]},
    ]
    if os.geteuid() == 0:
        pipelines.append({"name": "killer_nobody", "trigger": {"zmq": {"topic": "h.kn"}},
                          "run_as": "nobody", "steps": [{"handler": "hostile.kill_parent"}]})
        pipelines.append({"name": "killer_dynamic", "trigger": {"zmq": {"topic": "h.kd"}},
                          "run_as": "dynamic", "steps": [{"handler": "hostile.kill_parent"}]})
    for p in pipelines:
        with open(os.path.join(root, "pipelines", p["name"] + ".json"), "w") as f:
            json.dump(p, f)
    with open(os.path.join(root, "sluice.json"), "w") as f:
        json.dump(cfg, f)
    return ports


GOOD = ("good", "api", "files")


def pidfile(root):
    return os.path.join(root, "hostile.pids")


def leftovers(root, build):
    """Processes a hostile handler started that still run (not zombies). A
    recorded pid that now names a process of another program is a reused pid,
    not a leftover: hostile processes are forks of the build's worker."""
    try:
        with open(pidfile(root)) as f:
            pids = {int(l) for l in f if l.strip()}
    except OSError:
        return []
    out = []
    build = os.path.realpath(build)
    for pid in pids:
        try:
            if not os.readlink("/proc/%d/exe" % pid).startswith(build + os.sep):
                continue
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(pid)
        except OSError:
            pass
    return out


def zombies(parent):
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                n += fields[0] == "Z" and int(fields[1]) == parent
            except OSError:
                pass
    return n


ROUNDS = [0]


def send_hostile(push, root, rng):
    """One of each hostile handler per round (the 65 MiB answer every tenth);
    returns how many were sent."""
    ev = json.dumps({"pidfile": pidfile(root), "n": 10}).encode()
    topics = [b"h.forkexit", b"h.bomb", b"h.daemonize", b"h.killer"]
    if ROUNDS[0] % 10 == 0:
        topics.append(b"h.big")
    ROUNDS[0] += 1
    if os.geteuid() == 0:
        topics += [b"h.kn", b"h.kd"]
    for t in topics:
        push.send_multipart([t, ev])
    return len(topics)


def send_mixed(sluice, cfg, root, ports, rng, n):
    """One round of mixed traffic; returns how many events it expects accepted."""
    import zmq  # Debian python3-zmq
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 2000)
    push.connect("tcp://127.0.0.1:%d" % ports["pull"])
    accepted = send_hostile(push, root, rng)
    for i in range(n):
        kind = rng.random()
        if kind < 0.55:
            push.send_multipart([b"good", json.dumps({"i": i}).encode()])
            accepted += 1
        elif kind < 0.65:
            push.send_multipart([b"flaky", b"{}"])
            accepted += 1
        elif kind < 0.72:
            push.send_multipart([b"bad", b"{}"])
            accepted += 1
        elif kind < 0.74:
            push.send_multipart([b"crash", b"{}"])
            accepted += 1
        elif kind < 0.743:  # each costs a 100 ms timeout and a new worker: keep it rare
            push.send_multipart([b"slow", b"{}"])
            accepted += 1
        elif kind < 0.77:
            push.send_multipart([b"good", json.dumps({"j": i}).encode()])
            accepted += 1
        elif kind < 0.85:
            push.send_multipart([b"good", b"{not json"])  # rejected
        elif kind < 0.90:
            push.send_multipart([b"only-one-frame"])  # rejected
        else:
            push.send_multipart([b"nobody.listens", b"{}"])  # rejected: no pipeline
    push.close()
    for i in range(5):
        path = os.path.join(root, "inbox", "f-%d-%d.txt" % (time.time_ns(), i))
        with open(path + ".part", "w") as f:
            f.write("x" * rng.randint(0, 4096))
        os.rename(path + ".part", path)
        accepted += 1
    subprocess.run([sluice, "invoke", "-c", cfg, "--timeout", "10000", "good", "{}"],
                   stdout=subprocess.DEVNULL, timeout=20)
    subprocess.run([sluice, "invoke", "-c", cfg, "--timeout", "10000", "nope", "{}"],
                   stdout=subprocess.DEVNULL, timeout=20)
    accepted += 1
    try:
        import urllib.request
        req = urllib.request.Request("http://127.0.0.1:%d/e/1" % ports["http"], data=b"{}",
                                     method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        accepted += 1
    except Exception:
        pass
    return accepted


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--every", type=float, default=10)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rate", type=int, default=200, help="events per round (about 1 s)")
    args = ap.parse_args()
    sluice = os.path.join(args.build, "sluice")
    root = tempfile.mkdtemp(prefix="sluice-soak-")
    ports = setup(root, args.build)
    cfg = os.path.join(root, "sluice.json")
    log = open(os.path.join(root, "daemon.log"), "w")
    daemon = subprocess.Popen([sluice, "run", "-c", cfg], cwd=root, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "running" not in open(log.name).read():
        time.sleep(0.05)
    rng = random.Random(42)
    samples, sent = [], 0
    end = time.monotonic() + args.minutes * 60
    next_sample = time.monotonic()
    print("%8s %10s %6s %10s %10s %10s %10s %8s %9s %7s" % (
        "t_s", "rss_kb", "fds", "accepted", "done", "dead", "pending", "rejected", "leftover",
        "zombies"))
    t0 = time.monotonic()
    while time.monotonic() < end and daemon.poll() is None:
        sent += send_mixed(sluice, cfg, root, ports, rng, args.rate)
        if time.monotonic() >= next_sample:
            rss, fds = proc_stats(daemon.pid)
            states, inv, rej = db_counts(os.path.join(root, "var", "sluice.db"))
            samples.append((rss, fds))
            print("%8.0f %10d %6d %10d %10d %10d %10d %8d %9d %7d" % (
                time.monotonic() - t0, rss, fds, sent, states.get("done", 0),
                states.get("dead", 0), states.get("pending", 0), rej,
                len(leftovers(root, args.build)), zombies(daemon.pid)), flush=True)
            next_sample += args.every
    # let the backlog drain, bounded
    drain_end = time.monotonic() + 180
    while time.monotonic() < drain_end:
        states, _, _ = db_counts(os.path.join(root, "var", "sluice.db"))
        if states.get("pending", 0) == 0:
            break
        time.sleep(0.5)
    alive = daemon.poll() is None
    if alive:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    states, inv, rej = db_counts(os.path.join(root, "var", "sluice.db"))
    finished = states.get("done", 0) + states.get("dead", 0)
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(root, "var", "sluice.db"), uri=True)
    marks = ",".join("?" * len(GOOD))
    good_total, good_failed = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status != 'ok') FROM invocations "
        "WHERE pipeline IN (%s)" % marks, GOOD).fetchone()
    hostile = con.execute("SELECT pipeline, status, count(*) FROM invocations WHERE pipeline "
                          "NOT IN (%s) GROUP BY 1, 2 ORDER BY 1, 2" % marks, GOOD).fetchall()
    con.close()
    left = []
    left_end = time.monotonic() + 10    # SIGKILLed processes take a moment to go
    while time.monotonic() < left_end:
        left = leftovers(root, args.build)
        if not left:
            break
        time.sleep(0.2)
    # the first third is warm-up (caches, thread arenas); flat means the
    # middle third and the last third agree
    third = max(1, len(samples) // 3)
    middle = samples[third:2 * third] or samples[:third]
    rss_first = sum(s[0] for s in middle) / len(middle)
    rss_last = sum(s[0] for s in samples[-third:]) / third
    fds_first = max(s[1] for s in middle) if middle else 0
    fds_last = max(s[1] for s in samples[-third:]) if samples else 0
    problems = []
    if not alive:
        problems.append("the daemon died (see %s)" % log.name)
    if daemon.returncode not in (0, None):
        problems.append("the daemon exited %s" % daemon.returncode)
    if states.get("pending", 0):
        problems.append("%d events still pending" % states["pending"])
    if finished < sent:
        problems.append("%d accepted events missing from the journal" % (sent - finished))
    if rss_last > rss_first * 1.10 + 1024:
        problems.append("RSS grew from %.0f to %.0f kB" % (rss_first, rss_last))
    if fds_last > fds_first + 4:
        problems.append("open fds grew from %d to %d" % (fds_first, fds_last))
    if good_failed:
        problems.append("%d of %d invocations of good pipelines failed" % (good_failed,
                                                                           good_total))
    if left:
        problems.append("%d processes started by hostile handlers outlived the daemon: %s" % (
            len(left), left[:20]))
    print("sent %d accepted events; done %d, dead %d, invocations %d, rejected %d" % (
        sent, states.get("done", 0), states.get("dead", 0), inv, rej))
    print("RSS %.0f -> %.0f kB, fds %d -> %d; folder %s" % (rss_first, rss_last, fds_first,
                                                             fds_last, root))
    print("good invocations %d, failed %d; hostile: %s" % (
        good_total, good_failed, ", ".join("%s/%s %d" % h for h in hostile)))
    for p in problems:
        print("PROBLEM: " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
