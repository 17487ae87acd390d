"""Retention (docs/operations.md#prune): the running daemon prunes
invocations, finished events and rejected messages older than their
retention, keeps dead-lettered events until they are replayed (then they age
like finished ones), and gives the space back: over many rounds of traffic
the database stays the same size. Retentions here are seconds (days may be
fractions)."""

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request

import harness
from harness import SluiceTestCase, echo_pipeline

SECONDS = 1 / 86400.0


def retention(seconds, **extra):
    r = {"invocations_days": seconds * SECONDS, "logs_days": seconds * SECONDS,
         "events_done_days": seconds * SECONDS, "rejected_days": seconds * SECONDS}
    r.update(extra)
    return {"retention": r}


class Retention(SluiceTestCase):

    def test_prunes_old_rows_and_keeps_dead_events_until_replayed(self):
        sb = self.sandbox(retention(1))
        sb.add_pipeline(echo_pipeline("fine", "inbox/fine"))
        sb.add_pipeline({"name": "dead", "trigger": {"directory": "inbox/dead"},
                         "steps": [{"name": "boom", "handler": "fail.error"}],
                         "isolation": "thread"})
        d = self.daemon(sb)
        for i in range(40):
            sb.drop("inbox/fine/%d.txt" % i)
        sb.drop("inbox/dead/a.txt")
        sb.drop("inbox/dead/b.txt")
        self.assertEqual(sb.cli("publish", "no.such.topic", "{}").returncode, 0)
        self.wait_for(lambda: sb.count("rejected") == 1, what="the rejected message")
        self.wait_events(sb, 2, state="dead", pipeline="dead")
        dead_ids = sorted(r["id"] for r in sb.db_rows("SELECT id FROM events WHERE state = 'dead'"))
        # everything but the dead events goes once it is older than a second
        self.wait_for(lambda: sb.count("invocations") == 0 and sb.count("rejected") == 0 and
                      sb.count("events WHERE state = 'done'") == 0,
                      what=lambda: "the old rows to be pruned (%s)" % harness.LazyJournal(sb))
        self.assertEqual(sorted(r["id"] for r in sb.db_rows("SELECT id FROM events")), dead_ids)
        # ... and stay while the daemon keeps pruning
        self.assert_stays(lambda: sb.count("events WHERE state = 'dead'") == 2, 1.5,
                          "dead events are kept until replayed")
        r = sb.cli("replay", "--pipeline", "dead")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # the replays fail again (dead, never replayed: kept); the originals go
        def replays_dead_and_originals_gone():
            rows = sb.db_rows("SELECT id, state FROM events")
            ids = {r["id"] for r in rows}
            return (ids and not ids & set(dead_ids) and
                    all(r["state"] == "dead" for r in rows))
        self.wait_for(replays_dead_and_originals_gone,
                      what=lambda: "the replays to fail and the originals to be pruned (%s)"
                      % sb.db_rows("SELECT id, state, replay_of FROM events"))
        rows = sb.db_rows("SELECT state, replay_of FROM events")
        self.assertEqual(rows, [{"state": "dead", "replay_of": None}] * 2)
        self.assertGreater(int(self.metric(sb, "sluice_retention_deleted_rows_total")), 40)
        self.stop(d)

    def metric(self, sb, name):
        url = "http://%s/metrics" % sb.config["admin"]["listen"]
        with urllib.request.urlopen(url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
        raise AssertionError("no metric " + name)

    def test_upgrade_from_schema_1_keeps_rows_and_switches_to_incremental_vacuum(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("fine", "inbox/fine"))
        d = self.daemon(sb)
        for i in range(3):
            sb.drop("inbox/fine/%d.txt" % i)
        self.wait_events(sb, 3, pipeline="fine")
        self.stop(d)
        # what a database of the previous version looks like
        con = sqlite3.connect(sb.database)
        con.executescript("PRAGMA auto_vacuum = NONE; VACUUM; DROP INDEX logs_at;"
                          " DROP INDEX events_replay_of; DROP TABLE schedules;"
                          " ALTER TABLE events DROP COLUMN node;"
                          " ALTER TABLE invocations DROP COLUMN node;"
                          " ALTER TABLE logs DROP COLUMN node; PRAGMA user_version = 1;")
        self.assertEqual(con.execute("PRAGMA auto_vacuum").fetchone()[0], 0)
        con.close()
        d = self.daemon(sb)
        self.assertIn("switching to incremental vacuum", d.log())
        self.assertEqual(sb.db_value("PRAGMA user_version"), 4)
        self.assertEqual(sb.db_value("PRAGMA auto_vacuum"), 2)
        self.assertEqual(sb.count("events WHERE state = 'done'"), 3)
        self.assertEqual(sb.count("invocations"), 3)
        self.assertEqual(sb.count("sqlite_master WHERE name IN ('logs_at', 'events_replay_of')"), 2)
        # rows from before version 4 have no node; new ones name it
        self.assertEqual(sb.count("events WHERE node IS NULL"), 3)
        sb.drop("inbox/fine/new.txt")
        self.wait_events(sb, 4, pipeline="fine")
        self.assertEqual(sb.count("events WHERE node IS NOT NULL"), 1)
        self.stop(d)
        d = self.daemon(sb) # once only
        self.assertNotIn("switching to incremental vacuum", d.log())

    @staticmethod
    def checkpointed_size(sb):
        con = sqlite3.connect(sb.database, timeout=10)
        try:
            con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            con.close()
        return os.stat(sb.database).st_size

    def test_database_size_stays_flat_over_a_long_run(self):
        sb = self.sandbox(retention(1))
        sb.add_pipeline({"name": "soak", "trigger": {"zmq": {"topic": "soak"}},
                         "steps": [{"name": "echo", "handler": "echo.handler"}],
                         "isolation": "thread"})
        d = self.daemon(sb)
        per_round, rounds, pad = 300, 12, "x" * 2000
        pages, files, checkpointed = [], [], []
        page_size = sb.db_value("PRAGMA page_size")
        for n in range(rounds):
            path = sb.path("round-%d.jsonl" % n)
            with open(path, "w") as f:
                for i in range(per_round):
                    f.write(json.dumps({"round": n, "i": i, "pad": pad}) + "\n")
            with open(path) as stdin:
                r = subprocess.run([harness.sluice_bin(), "publish", "-c", sb.config_path,
                                    "--lines", "soak"], stdin=stdin, cwd=sb.cwd, timeout=120,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            want = per_round * (n + 1)
            self.wait_for(lambda: self.metric(sb, "sluice_invocations_total") >= want,
                          what="round %d to run" % n)
            # settled: this round's rows pruned and their pages given back
            self.wait_for(lambda: sb.count("events") == 0 and sb.count("invocations") == 0 and
                          sb.db_value("PRAGMA freelist_count") == 0,
                          what="round %d to be pruned and vacuumed" % n)
            pages.append(sb.db_value("PRAGMA page_count"))
            files.append(os.stat(sb.database).st_size)
            # once the WAL is checkpointed (as the daemon's own autocheckpoint
            # does when it gets to it), the file is exactly those pages
            self.wait_for(lambda: self.checkpointed_size(sb) == pages[-1] * page_size,
                          what="round %d: the file to shrink to its live pages at a checkpoint" % n)
            checkpointed.append(os.stat(sb.database).st_size)
        written = rounds * per_round * len(pad)
        print("\nsettled page counts %s\nfile bytes before a checkpoint %s\nafter %s\n"
              "payload bytes written %d" % (pages, files, checkpointed, written), file=sys.stderr)
        # every settled round leaves the same few pages (give or take an
        # index's inner page; one round's rows take ~340), and the file holds
        # just those once checkpointed: nothing accumulates round after round
        self.assertLessEqual(max(pages) - min(pages), 8, pages)
        self.assertLessEqual(max(checkpointed) - min(checkpointed), 8 * page_size, checkpointed)
        self.assertLess(max(checkpointed), 64 * page_size)
        self.stop(d)


if __name__ == "__main__":
    harness.main()
