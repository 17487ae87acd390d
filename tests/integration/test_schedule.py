"""Scheduled pipelines through a running daemon: second-level rates firing EventBridge's
Scheduled Event, the schedules table and `sluice stats`, a firing missed while sluice was
down run once at start with catch_up (and never twice), none without it, overlap "skip" and
"queue" with a handler that holds until the test releases it, and `sluice check` messages."""

import datetime
import json
import os
import shutil
import sqlite3
import textwrap

import harness
from harness import SluiceTestCase

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")

HOLD = textwrap.dedent('''\
    import os, time

    def hold(event, context):
        root = os.environ["LAMBDA_TASK_ROOT"]
        open(os.path.join(root, "started-" + event["time"]), "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(root, "release")) and time.monotonic() < deadline:
            time.sleep(0.02)
        return {"time": event["time"]}
''')


def iso_ms(text):
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000)


def iso(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def echo_scheduled(name, schedule, **trigger):
    t = {"schedule": schedule}
    t.update(trigger)
    return {"name": name, "trigger": t, "isolation": "thread",
            "steps": [{"name": "echo", "handler": "echo.handler"}]}


class Schedules(SluiceTestCase):

    def events(self, sb, pipeline):
        return sb.db_rows("SELECT * FROM events WHERE pipeline = ? ORDER BY id", (pipeline,))

    def test_rate_fires_scheduled_events_and_stats_show_them(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_scheduled("tick", "rate(1 second)"))
        d = self.daemon(sb)
        self.wait_for(lambda: len(self.events(sb, "tick")) >= 2, what="two firings")
        self.wait_settled(sb, 2, pipeline="tick")
        rows = self.events(sb, "tick")[:2]
        times = []
        for row in rows:
            ev = json.loads(row["payload"])
            self.assertEqual((ev["detail-type"], ev["source"], ev["version"], ev["detail"]),
                             ("Scheduled Event", "aws.events", "0", {}))
            self.assertEqual(ev["resources"],
                             ["arn:sluice:events:local:000000000000:rule/tick"])
            self.assertEqual(row["event_id"], ev["id"])
            self.assertEqual(row["source"], "schedule:rate(1 second)")
            self.assertRegex(ev["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            times.append(ev["time"])
        self.assertLess(times[0], times[1])
        self.assertNotEqual(rows[0]["event_id"], rows[1]["event_id"])
        sched = sb.db_rows("SELECT * FROM schedules WHERE pipeline = 'tick'")[0]
        self.assertEqual(sched["expression"], "rate(1 second)")
        self.assertIsNone(sched["timezone"])
        self.assertLess(sched["last_fired_at"], sched["next_fire_at"])
        r = sb.cli("stats")
        self.assertEqual(r.returncode, 0, r.stderr)
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("tick ")]
        self.assertEqual(len(line), 1, r.stdout)
        self.assertIn("rate(1 second)", line[0])
        self.assertRegex(line[0], r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z +\d{4}-")
        self.stop(d)

    def seeded(self, catch_up):
        """A daemon that was down through a firing of rate(5 minutes): the schedules row
        says the last firing was 12 minutes ago and the next one was due 7 minutes ago."""
        sb = self.sandbox()
        sb.add_pipeline(echo_scheduled("five", "rate(5 minutes)", catch_up=catch_up))
        self.stop(self.daemon(sb))
        now = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) * 1000
        last, due = now - 720000, now - 420000
        self.seed(sb, last, due)
        return sb, last, due

    def seed(self, sb, last, due):
        con = sqlite3.connect(sb.database)
        with con:
            con.execute("UPDATE schedules SET last_fired_at = ?, next_fire_at = ? "
                        "WHERE pipeline = 'five'", (iso(last), iso(due)))
        con.close()

    def test_catch_up_runs_a_missed_firing_once(self):
        sb, last, due = self.seeded(True)
        d = self.daemon(sb)
        self.wait_settled(sb, 1, pipeline="five")
        ev = json.loads(self.events(sb, "five")[0]["payload"])
        # the latest firing missed (2 minutes ago), once: a rate keeps its phase
        self.assertEqual(ev["time"], iso(last + 600000)[:19] + "Z")
        self.wait_for(lambda: sb.db_value("SELECT last_fired_at FROM schedules") ==
                      iso(last + 600000), what="the last firing recorded")
        self.assertEqual(sb.db_value("SELECT next_fire_at FROM schedules"), iso(last + 900000))
        self.stop(d)
        # a restart that finds the same firing again (its record lost) does not run it twice
        self.seed(sb, last, due)
        d = self.daemon(sb)
        self.wait_for(lambda: sb.db_value("SELECT duplicates FROM events WHERE pipeline = "
                                          "'five'") == 1, what="the duplicate recognised")
        self.stop(d)
        self.assertEqual(len(self.events(sb, "five")), 1)
        self.assertEqual(sb.count("invocations WHERE pipeline = 'five'"), 1)

    def test_without_catch_up_a_missed_firing_is_skipped(self):
        sb, last, due = self.seeded(False)
        d = self.daemon(sb)
        self.wait_for(lambda: sb.db_value("SELECT next_fire_at FROM schedules") ==
                      iso(last + 900000), what="the next firing recorded")
        self.stop(d)
        self.assertEqual(self.events(sb, "five"), [])

    def held(self, overlap):
        if not PYTHON:
            self.skipTest("python3 is not installed")
        sb = self.sandbox({"python": PYTHON})
        sb.drop("code/app.py", HOLD)
        sb.add_pipeline({"name": "held", "concurrency": 2,
                         "trigger": {"schedule": "rate(1 second)", "overlap": overlap},
                         "steps": [{"name": "hold", "runtime": "python3", "code": "code",
                                    "handler": "app.hold", "timeout_ms": 60000}]})
        return sb, self.daemon(sb)

    def started(self, sb):
        return sorted(f for f in os.listdir(sb.path("code")) if f.startswith("started-"))

    def test_overlap_skip_drops_firings_while_a_run_goes(self):
        sb, d = self.held("skip")
        self.wait_for(lambda: d.log().count("skipped the firing") >= 2,
                      what="two firings skipped while the first run holds")
        self.assertEqual(len(self.started(sb)), 1, "no second run started")
        sb.drop("code/release", "")
        self.wait_for(lambda: len(self.started(sb)) >= 2, what="a firing after the release")
        self.stop(d)

    def test_overlap_queue_runs_held_firings_one_after_another(self):
        sb, d = self.held("queue")
        self.wait_for(lambda: len(self.events(sb, "held")) >= 1, what="the first firing")
        # held firings are not journaled yet, and none starts beside the first
        self.wait_for(lambda: d.log().count("waits for the last run to end") >= 2,
                      what="two firings held while the first run holds")
        self.assertEqual(len(self.started(sb)), 1)
        sb.drop("code/release", "")
        self.wait_for(lambda: len(self.started(sb)) >= 3, what="the held firings run")
        self.stop(d)
        self.assertNotIn("skipped the firing", d.log())
        rows = sb.db_rows("SELECT started_at, duration_ms FROM invocations ORDER BY started_at")
        for a, b in zip(rows, rows[1:]):
            self.assertLessEqual(iso_ms(a["started_at"]) + a["duration_ms"],
                                 iso_ms(b["started_at"]) + 1, rows)

    def test_check_messages(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_scheduled("both", "cron(0 12 * * * *)"))
        sb.add_pipeline(echo_scheduled("tz", "cron(0 12 * * ? *)", timezone="Mars/Olympus"))
        sb.add_pipeline(echo_scheduled("ov", "rate(5 minutes)", overlap="later"))
        sb.add_pipeline(echo_scheduled("plural", "rate(1 minutes)"))
        sb.add_pipeline({"name": "lonely", "trigger": {"directory": "in", "catch_up": True},
                         "isolation": "thread", "steps": [{"handler": "echo.handler"}]})
        r = sb.cli("check")
        self.assertNotEqual(r.returncode, 0)
        text = r.stdout + r.stderr
        for want in ("both.json: trigger.schedule: cron(0 12 * * * *): day-of-month and "
                     "day-of-week cannot both be `*`",
                     "tz.json: trigger.schedule: timezone \"Mars/Olympus\" is not in the TZ "
                     "database",
                     "ov.json: trigger.overlap: \"later\" is not \"skip\" or \"queue\"",
                     "plural.json: trigger.schedule: rate(1 minutes): with 1 the unit is "
                     "singular: rate(1 minute)",
                     "lonely.json: trigger: \"timezone\", \"catch_up\" and \"overlap\" go with "
                     "\"schedule\""):
            self.assertIn(want, text)


if __name__ == "__main__":
    harness.main()
