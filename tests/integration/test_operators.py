"""Careless operators and failing machines (issue 21): two daemons on one
state folder, invalid UTF-8 and control characters from ZeroMQ producers,
a destination folder inside its own trigger folder, a database locked,
deleted or on a full disk, and a watched folder deleted and recreated.
Each test reproduces the break first, with the real daemon."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading

import harness
from harness import SluiceTestCase, echo_pipeline, endpoint

try:
    import zmq
except ImportError:  # pragma: no cover - python3-zmq is a test dependency
    zmq = None


def zmq_pipeline(name, topic, **extra):
    p = {"name": name, "trigger": {"zmq": {"topic": topic}},
         "steps": [{"name": "echo", "handler": "echo.handler"}], "isolation": "thread"}
    p.update(extra)
    return p


class Operators(SluiceTestCase):

    def zmq_sandbox(self, *pipelines, config=None):
        cfg = {"zmq": {"pull": endpoint(), "router": endpoint()}}
        cfg.update(config or {})
        sb = self.sandbox(cfg)
        for p in pipelines:
            sb.add_pipeline(p)
        return sb

    def pusher(self, sb):
        if zmq is None:
            self.skipTest("python3-zmq is not installed for %s" % sys.executable)
        ctx = zmq.Context()
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(sb.config["zmq"]["pull"])
        self.addCleanup(ctx.term)
        self.addCleanup(s.close, 0)
        return s

    # -- item 2 -------------------------------------------------------------
    def test_a_second_daemon_on_the_same_state_folder_refuses_to_start(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        first = self.daemon(sb)
        second = self.daemon(sb, start=False)
        second.start(wait_running=False)
        self.assertEqual(second.wait_exit(), 1, "the second daemon must refuse to run")
        self.assertIn("in use by another sluice (pid %d" % first.pid(), second.log())
        self.assertNotIn("running 1 pipeline", second.log())
        # the first one is unharmed, and the lock goes with it
        sb.drop("inbox/a.txt", "a")
        self.wait_events(sb, 1)
        self.stop(first)
        third = self.daemon(sb)
        self.stop(third)

    # -- issue 14: no umask() while threads run ----------------------------
    def test_the_database_files_are_not_world_readable_even_with_umask_0(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        old = os.umask(0)  # the daemon inherits it
        try:
            d = self.daemon(sb)
        finally:
            os.umask(old)
        sb.drop("inbox/a.txt", "a")
        self.wait_events(sb, 1)
        for suffix in ("", "-wal", "-shm"):
            mode = os.stat(sb.database + suffix).st_mode & 0o777
            self.assertEqual(mode, 0o640, "%s%s has mode %o" % (sb.database, suffix, mode))
        self.stop(d)

    # -- item 19 ------------------------------------------------------------
    def test_invalid_utf8_from_zeromq_is_rejected_with_a_reason(self):
        sb = self.zmq_sandbox(zmq_pipeline("p", "t."))
        d = self.daemon(sb)
        push = self.pusher(sb)
        push.send_multipart([b"t.payload", b'{"s": "caf\xe9"}'])           # Latin-1, not UTF-8
        push.send_multipart([b"t.\xff\xfe", b'{"s": 1}'])                   # topic
        push.send_multipart([b"t.surrogate", b'{"s": "\xed\xa0\x80"}'])    # encoded U+D800
        push.send_multipart([b"t.id", b'{"s": 2}', b"id-\xc0\xaf"])         # overlong '/' in the id
        push.send_multipart([b"t.good", '{"s": "caf\u00e9"}'.encode()])   # sentinel, valid
        self.wait_events(sb, 1)
        self.wait_for(lambda: sb.count("rejected") >= 4, what="four rejected rows")
        reasons = [r["reason"] for r in sb.db_rows("SELECT reason FROM rejected ORDER BY id")]
        self.assertEqual(len(reasons), 4, reasons)
        self.assertIn("the event id frame must be 1 to 200 printable bytes", reasons[3])
        self.assertIn("the payload is not valid UTF-8 (byte 10 of 13)", reasons[0])
        self.assertIn("the topic is not valid UTF-8", reasons[1])
        sources = [r["source"] for r in sb.db_rows("SELECT source FROM rejected ORDER BY id",
                                                    strict_utf8=True)]
        self.assertEqual(sources, ["zmq:pull:t.payload", "zmq:pull:(not UTF-8)",
                                   "zmq:pull:t.surrogate", "zmq:pull:t.id"])
        self.assertIn("the payload is not valid UTF-8", reasons[2])
        self.assertEqual([json.loads(r["payload"]) for r in sb.db_rows("SELECT payload FROM events")],
                         [{"s": "caf\u00e9"}], "only the valid event is journaled")
        self.stop(d)
        with open(d.log_path, "rb") as f:
            log = f.read().decode("utf-8")  # the log escapes what is not UTF-8
        self.assertIn("zmq:pull:(not UTF-8): message rejected", log)

    # -- item 20 ------------------------------------------------------------
    def test_control_characters_never_reach_the_log_raw(self):
        sb = self.zmq_sandbox(zmq_pipeline("p", "t."))
        d = self.daemon(sb)
        push = self.pusher(sb)
        forged = b"nobody\n2030-01-01T00:00:00.000Z sluice error: forged\x1b[2J\r\x07"
        push.send_multipart([forged, b"{}"])
        self.wait_for(lambda: sb.count("rejected") >= 1, what="the rejected row")
        self.wait_for(lambda: "forged" in d.log(), what="the log line")
        log = self.stop(d)
        self.assertNotRegex(log, r"(?m)^2030-01-01", "a newline in a topic forged a log line")
        for c in "\x1b\r\x07":
            self.assertNotIn(c, log, "a raw control character reached the log")
        self.assertIn("nobody\\n2030-01-01T00:00:00.000Z sluice error: forged\\x1b[2J\\r\\x07",
                      log)
        with open(d.log_path, "rb") as f:
            f.read().decode("utf-8")  # every line is UTF-8, whatever producers send

    # -- item 22 ------------------------------------------------------------
    def test_check_refuses_a_destination_folder_inside_the_trigger_folder(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("loops", "inbox", on_success={"directory": "inbox/done"}))
        sb.add_pipeline(echo_pipeline("same", "in2", on_failure={"directory": "in2"}))
        flat = echo_pipeline("flat", "in3", on_success={"directory": "in3/done"})
        flat["trigger"]["recursive"] = False
        sb.add_pipeline(flat)
        sb.add_pipeline(echo_pipeline("elsewhere", "in4", on_success={"directory": "out4"}))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        text = r.stdout + r.stderr
        self.assertRegex(text, r"loops\.json: on_success\.directory: .*inside the pipeline's "
                         r"own trigger folder")
        self.assertRegex(text, r"same\.json: on_failure\.directory: .*inside the pipeline's "
                         r"own trigger folder")
        self.assertNotIn("flat.json", text, "a non-recursive trigger does not see subfolders")
        self.assertNotIn("elsewhere.json", text)

    def assert_nothing_lost(self, sb, log, n_files, n_zmq):
        """Every file (pipeline files) and every ZeroMQ message (z.flood,
        {"n": 0..n_zmq-1}) journaled once and done; nothing refused."""
        self.assertNotIn("not accepted", log)
        self.assertNotIn("was not delivered", log)
        self.assertEqual(sb.count("rejected"), 0)
        self.assertEqual(sb.count("events WHERE pipeline = 'files'"), n_files)
        numbers = sorted(json.loads(r["payload"])["n"] for r in
                         sb.db_rows("SELECT payload FROM events WHERE source = 'zmq:z.flood'"))
        self.assertEqual(numbers, list(range(n_zmq)), "ZeroMQ events lost or doubled")
        self.assertEqual(sb.count("events WHERE state <> 'done'"), 0)

    # -- item 3 -------------------------------------------------------------
    def test_a_database_locked_longer_than_the_busy_timeout_is_a_wait(self):
        sb = self.zmq_sandbox(echo_pipeline("files", "inbox"), zmq_pipeline("z", "z."))
        d = self.daemon(sb)
        push = self.pusher(sb)
        push.send_multipart([b"z.warm", b"{}"])
        self.wait_events(sb, 1)
        op = sqlite3.connect(sb.database, isolation_level=None, timeout=30)
        self.addCleanup(op.close)
        op.execute("BEGIN EXCLUSIVE")  # an operator at the sqlite3 prompt
        n_files, n_zmq = 40, 2000
        for i in range(n_files):
            sb.drop("inbox/f-%03d.txt" % i, "f%d" % i)
        for i in range(n_zmq):  # no ids: the daemon makes them (and may run them ahead)
            push.send_multipart([b"z.flood", json.dumps({"n": i}).encode()])
        self.wait_for(lambda: "is locked by another connection" in d.log(), timeout=30,
                      what="the daemon to say that the database is locked")
        op.execute("ROLLBACK")
        self.wait_for(lambda: "writable again" in d.log(), timeout=30, what="the resume line")
        self.wait_events(sb, 1 + n_files + n_zmq, timeout=120)
        log = self.stop(d)
        self.assertEqual(log.count("is locked by another connection"), 1, "logged once")
        self.assert_nothing_lost(sb, log, n_files, n_zmq)

    # -- item 4 -------------------------------------------------------------
    def database_goes_away(self, how, word):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        d = self.daemon(sb)
        sb.drop("inbox/a.txt", "a")
        self.wait_events(sb, 1)
        how(sb)
        self.assertEqual(d.wait_exit(timeout=30), 1, "the daemon must stop, not go on blind")
        log = d.log()
        self.assertIn("the database %s was %s while sluice was running" % (sb.database, word),
                      log)
        self.assertIn("stopping:", log)

    def test_a_deleted_database_stops_the_daemon_with_a_clear_error(self):
        self.database_goes_away(lambda sb: os.unlink(sb.database), "deleted")

    def test_a_replaced_database_stops_the_daemon_with_a_clear_error(self):
        def replace(sb):
            other = sb.path("other.db")
            sqlite3.connect(other).close()
            with open(other, "wb") as f:
                f.write(b"")
            os.replace(other, sb.database)
        self.database_goes_away(replace, "replaced by another file")

    # -- item 5 -------------------------------------------------------------
    def small_filesystem(self, sb, rel, size):
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root (this test runs as uid %d)"
                          % os.geteuid())
        where = sb.path(rel)
        os.makedirs(where, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", where],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs here (%s)" % r.stdout.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", where])
        return where

    def fill(self, where):
        path = os.path.join(where, "filler")
        chunk = b"\0" * 65536
        with open(path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError:
                pass
        return path

    def test_a_full_disk_pauses_and_resumes_by_itself_losing_nothing(self):
        sb = self.zmq_sandbox(echo_pipeline("files", "inbox"), zmq_pipeline("z", "z."))
        var = self.small_filesystem(sb, "var", "8m")
        d = self.daemon(sb)
        push = self.pusher(sb)
        push.send_multipart([b"z.warm", b"{}"])
        self.wait_events(sb, 1)
        filler = self.fill(var)
        n_files, n_zmq = 100, 2000
        pad = "p" * 400
        for i in range(n_files):
            sb.drop("inbox/f-%03d-%s.txt" % (i, "n" * 100), "f%d" % i)
        for i in range(n_zmq):
            push.send_multipart([b"z.flood", json.dumps({"n": i, "pad": pad}).encode()])
        self.wait_for(lambda: "disk full" in d.log(), timeout=60,
                      what="the daemon to say that the disk is full")
        os.unlink(filler)
        self.wait_for(lambda: "writable again" in d.log(), timeout=60, what="the resume line")
        self.wait_events(sb, 1 + n_files + n_zmq, timeout=120)
        log = self.stop(d)
        self.assertEqual(log.count("disk full"), 1, "said once")
        self.assertNotIn("no transaction is active", log)
        self.assert_nothing_lost(sb, log, n_files, n_zmq)

    # -- item 6 -------------------------------------------------------------
    def test_a_watched_folder_deleted_or_renamed_then_recreated_triggers_again(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        d = self.daemon(sb)
        inbox = sb.path("inbox")
        sb.drop("inbox/one.txt", "1")
        self.wait_events(sb, 1)
        shutil.rmtree(inbox)
        self.wait_for(lambda: "watched folder %s was deleted" % inbox in d.log(),
                      what="the deletion to be logged")
        os.mkdir(inbox)
        sb.drop("inbox/two.txt", "2")
        self.wait_events(sb, 2)
        os.rename(inbox, sb.path("inbox.old"))
        self.wait_for(lambda: "watched folder %s was moved away" % inbox in d.log(),
                      what="the rename to be logged")
        sb.drop("inbox.old/not-ours.txt", "x")
        os.mkdir(inbox)
        sb.drop("inbox/three.txt", "3")
        self.wait_events(sb, 3)
        log = self.stop(d)
        self.assertEqual(log.count("is back: watching it again"), 2)
        keys = sorted(json.loads(r["payload"])["Records"][0]["s3"]["object"]["key"]
                      for r in sb.db_rows("SELECT payload FROM events"))
        self.assertEqual(keys, ["one.txt", "three.txt", "two.txt"])


if __name__ == "__main__":
    harness.main()
