"""Restarts: the journal makes every accepted event run to completion once,
whether the daemon stopped cleanly, was down while files arrived, or was
killed with SIGKILL in the middle of work (then at-least-once: a handler may
run again, but every event ends 'done' exactly once)."""

import json
import os
import sqlite3
import time

import harness
from harness import SluiceTestCase, echo_pipeline


def slow_pipeline(name="slow", directory="inbox", concurrency=2):
    return {
        "name": name,
        "trigger": {"directory": directory},
        "steps": [{"name": "nap", "handler": "fail.slow", "timeout_ms": 5000}],
        "concurrency": concurrency,
        "isolation": "thread",
    }


class Restart(SluiceTestCase):

    def keys(self, sb, pipeline):
        return sorted(json.loads(r["payload"])["Records"][0]["s3"]["object"]["key"]
                      for r in sb.db_rows("SELECT payload FROM events WHERE pipeline = ?",
                                          (pipeline,)))

    def assert_done_once(self, sb, pipeline, keys, exactly_once=True):
        """Every key has one journal entry, done; each event has exactly one
        ok invocation (exactly_once) or at least one (at-least-once)."""
        self.assertEqual(self.keys(sb, pipeline), sorted(keys), "journaled keys")
        states = sb.db_rows("SELECT state, count(*) AS n FROM events WHERE pipeline = ?"
                            " GROUP BY state", (pipeline,))
        self.assertEqual(states, [{"state": "done", "n": len(keys)}])
        per_event = sb.db_rows(
            "SELECT e.event_id, sum(i.status = 'ok') AS ok, count(i.id) AS n"
            " FROM events e LEFT JOIN invocations i"
            " ON i.event_id = e.event_id AND i.pipeline = e.pipeline"
            " WHERE e.pipeline = ? GROUP BY e.event_id", (pipeline,))
        if exactly_once:
            bad = [r for r in per_event if r["ok"] != 1 or r["n"] != 1]
            self.assertEqual(bad, [], "events not run exactly once")
        else:
            bad = [r for r in per_event if not r["ok"]]
            self.assertEqual(bad, [], "events without an ok invocation")
        orphans = sb.db_rows("SELECT DISTINCT event_id FROM invocations WHERE pipeline = ?"
                             " AND event_id NOT IN (SELECT event_id FROM events)", (pipeline,))
        self.assertEqual(orphans, [], "invocations of events the journal does not know")

    # ------------------------------------------------------------------
    def start_jobs(self, concurrency, n, first_done=False):
        """A daemon on slow_pipeline(concurrency) and n files job-NN.txt in its
        inbox, all journaled (and with first_done, one invocation finished):
        (sandbox, daemon, file names)."""
        sb = self.sandbox()
        sb.add_pipeline(slow_pipeline(concurrency=concurrency))
        d1 = self.daemon(sb)
        names = ["job-%02d.txt" % i for i in range(n)]
        for name in names:
            sb.drop("inbox/" + name, name)
        self.wait_for(lambda: sb.count("events") == len(names), what="all files journaled")
        if first_done:
            self.wait_for(lambda: sb.count("invocations") >= 1,
                          what="a first finished invocation")
        return sb, d1, names

    def test_files_dropped_while_down_are_processed_once_at_start(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        d1 = self.daemon(sb)
        sb.drop("inbox/before.txt", "before")
        self.wait_events(sb, 1)
        self.stop(d1)

        names = ["down-%02d.txt" % i for i in range(20)] + ["sub/down-sub.txt"]
        for name in names:
            sb.drop("inbox/" + name, name)
        d2 = self.daemon(sb)
        self.wait_events(sb, 1 + len(names))
        sb.drop("inbox/after.txt", "after")
        self.wait_events(sb, 2 + len(names))
        self.stop(d2)
        self.assert_done_once(sb, "files", ["before.txt", "after.txt"] + names)

    def test_files_processed_before_a_restart_are_not_processed_again(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        d1 = self.daemon(sb)
        names = ["old-%02d.txt" % i for i in range(10)]
        for name in names:
            sb.drop("inbox/" + name, name)
        self.wait_events(sb, len(names))
        self.stop(d1)
        for run in (2, 3):
            d = self.daemon(sb)
            # the start-up scan sees the old files again; a file dropped after
            # it is journaled after them, so once it is done they would be too
            sentinel = "sentinel-%d.txt" % run
            sb.drop("inbox/" + sentinel, sentinel)
            names.append(sentinel)
            self.wait_events(sb, len(names))
            self.stop(d)
            self.assert_done_once(sb, "files", names)

    def test_sigterm_lets_running_handlers_finish_and_the_rest_resumes(self):
        sb, d1, names = self.start_jobs(2, 10, first_done=True)
        self.stop(d1)
        # every invocation that started finished and was recorded as ok, and
        # its event is done; the others wait in the journal
        self.assertEqual(sb.count("invocations WHERE status <> 'ok'"), 0)
        self.assertEqual(
            sb.count("events WHERE state = 'done' AND event_id NOT IN"
                     " (SELECT event_id FROM invocations)"), 0)
        self.assertEqual(
            sb.count("invocations WHERE event_id IN"
                     " (SELECT event_id FROM events WHERE state <> 'done')"), 0,
            "an invocation finished but its event is not done after a clean stop")
        pending = sb.count("events WHERE state = 'pending'")
        self.assertGreater(pending, 0, "the test stopped too late to leave work pending")

        d2 = self.daemon(sb)
        self.wait_events(sb, len(names), timeout=30)
        self.stop(d2)
        self.assert_done_once(sb, "slow", names, exactly_once=True)

    def test_kill9_during_slow_steps_then_restart_finishes_every_file_once(self):
        sb, d1, names = self.start_jobs(2, 12, first_done=True)
        d1.kill9()
        pending = sb.count("events WHERE state = 'pending'")
        self.assertGreater(pending, 0, "the test killed the daemon too late")

        d2 = self.daemon(sb)
        self.wait_events(sb, len(names), timeout=30)
        sb.drop("inbox/sentinel.txt", "after the restart")
        names.append("sentinel.txt")
        self.wait_events(sb, len(names), timeout=30)
        self.stop(d2)
        self.assert_done_once(sb, "slow", names, exactly_once=False)
        self.assertEqual(sb.count("invocations WHERE status <> 'ok'"), 0)

    def test_pending_events_in_the_journal_resume_at_start(self):
        """Events the journal holds as pending run at start even when their
        files are gone (the journal, not a rescan, carries them)."""
        sb, d1, names = self.start_jobs(1, 6)
        d1.kill9()
        pending = sb.db_rows("SELECT event_id FROM events WHERE state = 'pending'")
        self.assertGreater(len(pending), 0, "the test killed the daemon too late")
        for name in names:
            os.unlink(sb.path("inbox", name))

        # plus one written into the journal by hand, as another node or an
        # earlier version could have left it
        payload = json.dumps({"Records": [{"eventVersion": "2.1",
                                           "eventSource": "sluice:directory",
                                           "s3": {"bucket": {"name": "inbox"},
                                                  "object": {"key": "by-hand.txt",
                                                             "size": 0}}}]})
        con = sqlite3.connect(sb.database, timeout=10)
        with con:
            con.execute("INSERT INTO events (event_id, pipeline, source, payload, received_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        ("by-hand-1", "slow", "directory:inbox", payload,
                         time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())))
        con.close()

        d2 = self.daemon(sb)
        self.wait_events(sb, len(names) + 1, timeout=30)
        self.stop(d2)
        for row in pending + [{"event_id": "by-hand-1"}]:
            self.assertGreaterEqual(
                sb.count("invocations WHERE event_id = ? AND status = 'ok'", (row["event_id"],)),
                1, "pending event %s did not run after the restart" % row["event_id"])
        self.assertEqual(sb.count("events WHERE state <> 'done'"), 0)
        self.assertEqual(sb.count("invocations WHERE event_id = 'by-hand-1'"), 1)


class Database(SluiceTestCase):

    def test_database_is_wal_versioned_and_private(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        d = self.daemon(sb)
        sb.drop("inbox/a.txt")
        self.wait_events(sb, 1)
        self.assertEqual(sb.db_value("PRAGMA journal_mode"), "wal")
        version = sb.db_value("PRAGMA user_version")
        self.assertGreaterEqual(version, 1)
        names = {r["name"] for r in sb.db_rows(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        self.assertTrue({"events", "invocations", "logs", "failures",
                         "pipeline_stats"} <= names, names)
        self.assertEqual(os.stat(sb.database).st_mode & 0o007, 0,
                         "the database holds event payloads: not world-readable")
        self.stop(d)
        # a restart keeps the schema version and the rows
        d = self.daemon(sb)
        self.assertEqual(sb.db_value("PRAGMA user_version"), version)
        self.assertEqual(sb.count("events"), 1)
        self.stop(d)

    def test_database_from_a_newer_sluice_is_refused(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        d = self.daemon(sb)
        self.stop(d)
        con = sqlite3.connect(sb.database)
        con.execute("PRAGMA user_version = 9999")
        con.close()
        d = self.daemon(sb, start=False)
        d.start(wait_running=False)
        rc = d.wait_exit(timeout=30)
        self.assertNotEqual(rc, 0, d.log())
        self.assertIn("9999", d.log())
        self.assertNotIn("sluice info: running", d.log())


if __name__ == "__main__":
    harness.main()
