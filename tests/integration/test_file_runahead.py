"""File events from the live watch run while their journal row commits
(run-ahead, docs/reliability.md), still exactly once per (pipeline, event id):
a file event that repeats an id (a file opened for writing and closed
unchanged, a file moved away and back) is counted as a duplicate and not run
again, whether the first one is done or still running uncommitted. A kill -9
before the row commits, or while the handler runs, loses nothing: the file is
still in its folder and the next start's scan runs it."""

import json
import os
import shutil
import sqlite3
import textwrap

import harness
from harness import SluiceTestCase, echo_pipeline

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")

# Appends a line with the file's key to started.log, then blocks until
# release exists (with a deadline, so a test that fails leaves no process);
# pre.txt passes at once.
GATE = textwrap.dedent('''\
    import os, time

    HERE = os.path.dirname(os.path.abspath(__file__))

    def handler(event, context):
        key = event["Records"][0]["s3"]["object"]["key"]
        if key == "pre.txt":
            return {"key": key}
        with open(os.path.join(HERE, "started.log"), "a") as f:
            f.write(key + "\\n")
        deadline = time.monotonic() + 120
        while not os.path.exists(os.path.join(HERE, "release")):
            if time.monotonic() > deadline:
                raise TimeoutError("release never came")
            time.sleep(0.01)
        return {"key": key}
''')


class FileRunAhead(SluiceTestCase):

    # -- helpers ---------------------------------------------------------
    def event(self, sb, key, pipeline="files"):
        for r in sb.db_rows("SELECT * FROM events WHERE pipeline = ?", (pipeline,)):
            if json.loads(r["payload"])["Records"][0]["s3"]["object"]["key"] == key:
                return r
        return None

    def runs_of(self, sb, key, pipeline="files"):
        ev = self.event(sb, key, pipeline)
        return 0 if ev is None else sb.count(
            "invocations WHERE pipeline = ? AND event_id = ?", (pipeline, ev["event_id"]))

    def wait_duplicates(self, sb, key, n):
        self.wait_for(lambda: (self.event(sb, key) or {}).get("duplicates") == n,
                      what="%s counted as a duplicate %d time(s)" % (key, n))

    def start(self, sb):
        """A daemon whose start-up scan is over: it found pre.txt, there
        before it (a slice reads a small folder to its end), so files dropped
        from now on are reported by the watch alone."""
        sb.drop("inbox/pre.txt", "pre")
        d = self.daemon(sb)
        self.wait_events(sb, 1)
        return d

    def echo_daemon(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        return sb, self.start(sb)

    def gate_sandbox(self):
        """A sandbox whose pipeline "files" runs GATE (process isolation)."""
        if not PYTHON:
            self.skipTest("python3 is not installed")
        sb = self.sandbox({"python": PYTHON})
        sb.drop("code/py/gate.py", GATE)
        sb.add_pipeline({"name": "files", "trigger": {"directory": "inbox"},
                         "steps": [{"name": "gate", "runtime": "python3", "code": "code/py",
                                    "handler": "gate.handler", "timeout_ms": 120000}]})
        return sb

    def started(self, sb):
        try:
            with open(sb.path("code", "py", "started.log")) as f:
                return f.read().split()  # pre.txt is not written there
        except FileNotFoundError:
            return []

    def release(self, sb):
        sb.drop("code/py/release", "go")

    def drop_while_locked(self, key):
        """A daemon on gate_sandbox(), the database's write lock taken (as an
        operator's sqlite3 in a transaction would: the daemon's writer can
        commit nothing until it is closed), inbox/KEY dropped and its handler
        started, its row not committed: (sandbox, daemon, lock, file path)."""
        sb = self.gate_sandbox()
        d = self.start(sb)
        lock = sqlite3.connect(sb.database, timeout=10, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        self.addCleanup(lock.close)
        path = sb.drop("inbox/" + key, key)
        self.wait_for(lambda: self.started(sb) == [key], what="the handler started")
        self.assertEqual(sb.count("events"), 1, "the row committed while the lock was held")
        return sb, d, lock, path

    def assert_once(self, sb, keys):
        rows = sb.db_rows("SELECT e.event_id, e.state, count(i.id) AS n FROM events e"
                          " LEFT JOIN invocations i ON i.event_id = e.event_id"
                          " AND i.pipeline = e.pipeline WHERE e.pipeline = 'files'"
                          " GROUP BY e.id")
        self.assertEqual(len(rows), len(keys) + 1, "one journal row per file (and pre.txt)")
        self.assertEqual([r for r in rows if r["state"] != "done" or r["n"] != 1], [],
                         "files not done exactly once")

    # -- tests -------------------------------------------------------------
    def test_a_dropped_file_runs_once_and_its_row_is_done(self):
        sb, d = self.echo_daemon()
        sb.drop("inbox/one.txt", "one")
        self.wait_events(sb, 2)
        self.stop(d)
        self.assert_once(sb, ["one.txt"])
        self.assertEqual(self.event(sb, "one.txt")["duplicates"], 0)

    def test_a_file_opened_for_writing_and_closed_unchanged_is_a_duplicate(self):
        sb, d = self.echo_daemon()
        path = sb.drop("inbox/same.txt", "same")
        self.wait_events(sb, 2)
        os.close(os.open(path, os.O_WRONLY))  # IN_CLOSE_WRITE, same inode/size/mtime
        self.wait_duplicates(sb, "same.txt", 1)
        os.close(os.open(path, os.O_WRONLY))
        self.wait_duplicates(sb, "same.txt", 2)
        sb.drop("inbox/sentinel.txt", "after")
        self.wait_events(sb, 3)
        self.stop(d)
        self.assert_once(sb, ["same.txt", "sentinel.txt"])

    def test_a_file_moved_away_and_back_is_a_duplicate(self):
        sb, d = self.echo_daemon()
        os.makedirs(sb.path("elsewhere"))
        a = sb.drop("inbox/a.txt", "a")
        self.wait_events(sb, 2)
        b = sb.path("inbox", "b.txt")
        os.rename(a, b)  # a new name: a new event
        self.wait_events(sb, 3)
        os.rename(b, a)  # back: the id of the first one
        self.wait_duplicates(sb, "a.txt", 1)
        out = sb.path("elsewhere", "a.txt")
        os.rename(a, out)  # out of the watched folder and back in
        os.rename(out, a)
        self.wait_duplicates(sb, "a.txt", 2)
        self.stop(d)
        self.assert_once(sb, ["a.txt", "b.txt"])

    def test_a_burst_of_files_runs_each_once(self):
        sb, d = self.echo_daemon()
        names = ["burst-%03d.txt" % i for i in range(300)]
        for name in names:
            sb.drop("inbox/" + name, name)
        self.wait_events(sb, len(names) + 1, timeout=120)
        self.stop(d)
        self.assert_once(sb, names)
        self.assertEqual(sb.count("events WHERE duplicates <> 0"), 0)

    def test_the_handler_starts_before_the_row_commits(self):
        """With the writer unable to commit, a dropped file's handler still
        starts (run-ahead); the row is written once the lock goes."""
        sb, d, lock, _ = self.drop_while_locked("early.txt")
        self.release(sb)
        lock.close()
        self.wait_events(sb, 2)
        self.stop(d)
        self.assert_once(sb, ["early.txt"])

    def test_a_repeat_while_the_first_is_uncommitted_is_a_duplicate(self):
        """The second close of a file whose first event runs and whose row
        has not committed is recognised in memory, not run again."""
        sb, d, lock, path = self.drop_while_locked("twice.txt")
        os.close(os.open(path, os.O_WRONLY))
        self.release(sb)
        lock.close()
        self.wait_events(sb, 2)
        self.wait_duplicates(sb, "twice.txt", 1)
        self.stop(d)
        self.assertEqual(self.started(sb), ["twice.txt"])
        self.assert_once(sb, ["twice.txt"])

    def test_kill9_before_the_row_commits_loses_nothing(self):
        sb, d1, lock, _ = self.drop_while_locked("lost.txt")
        d1.kill9()
        lock.close()
        self.assertEqual(sb.count("events"), 1)
        self.release(sb)
        d2 = self.daemon(sb)  # its scan finds the file
        self.wait_events(sb, 2)
        self.stop(d2)
        self.assertEqual(self.started(sb), ["lost.txt", "lost.txt"])  # at least once
        row = self.event(sb, "lost.txt")
        self.assertEqual((row["state"], row["duplicates"]), ("done", 0))
        self.assertEqual(sb.count("invocations WHERE status = 'ok'"), 2)  # and pre.txt

    def test_kill9_while_the_handler_runs_loses_nothing(self):
        sb = self.gate_sandbox()
        d1 = self.start(sb)
        sb.drop("inbox/running.txt", "running")
        self.wait_for(lambda: self.started(sb) == ["running.txt"], what="the handler started")
        self.wait_events(sb, 1, state="pending")  # committed while it runs
        d1.kill9()
        self.release(sb)
        d2 = self.daemon(sb)  # the pending row runs; the scan's repeat is a duplicate
        self.wait_events(sb, 2)
        self.wait_duplicates(sb, "running.txt", 1)
        self.stop(d2)
        self.assertEqual(sb.count("events"), 2)
        self.assertEqual(self.started(sb), ["running.txt", "running.txt"])
        self.assertEqual(sb.count("invocations WHERE status = 'ok'"), 2)  # and pre.txt


if __name__ == "__main__":
    harness.main()
