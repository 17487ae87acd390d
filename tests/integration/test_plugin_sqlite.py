"""The sqlite plugin (plugins/sqlite) through a running daemon, on real
database files: rows as JSON with every SQLite type, parameters bound from
the event (an injection attempt stays a value), read-only unless the config
says "write", one prepare per worker, a database replaced on disk, a missing
one built from config.create_from, the deadline and a locked database, every
error naming what to fix, and the sample pipeline pipelines/users.json as
shipped (`sluice invoke users '{}'` out of the box)."""

import json
import os
import shutil
import sqlite3
import subprocess
import threading

import harness
from harness import zmq_pipeline as invoke_pipeline
from cases import PluginCase, plugin_step

BIG = 2 ** 62 + 1  # not representable as a double: must keep every digit


def make_db(path, script):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    con = sqlite3.connect(path)
    try:
        con.executescript(script)
        con.commit()
    finally:
        con.close()


USERS = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL,
                    avatar BLOB, note TEXT, admin INTEGER NOT NULL DEFAULT 0);
INSERT INTO users VALUES (1, 'Ada', 9.5, x'00ff10', NULL, 1);
INSERT INTO users VALUES (2, 'Grace', 0.1, NULL,
                          'line1' || char(10) || 'tab' || char(9) || '"q"', 0);
INSERT INTO users VALUES (3, 'Zoë 🚀', -3e300, x'', 'ünïcode', 0);
INSERT INTO users VALUES (%d, 'Big', 1.0, NULL, NULL, 0);
""" % BIG


def query_step(config, name="query", **extra):
    return plugin_step("sqlite.query", config, name, **extra)


class SqlitePlugin(PluginCase):

    # -- helpers ------------------------------------------------------------
    def new_sandbox(self):
        sb = self.sandbox()  # ZeroMQ endpoints of its own: see harness.Sandbox
        return sb

    def invoke(self, sb, pipeline, event, timeout_ms=60000):
        """`sluice invoke`: (exit status, parsed JSON output or None, stdout's text)."""
        p, out = harness.invoke_run(self, sb, pipeline, event, timeout_ms)
        return p.returncode, out, p.stdout

    def rows_of(self, db, sql):
        con = sqlite3.connect(db)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    # -- reading ------------------------------------------------------------
    def test_rows_come_back_as_json_with_every_type(self):
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                sb = self.new_sandbox()
                db = sb.path("data", "app.db")
                make_db(db, USERS)
                sb.add_pipeline(invoke_pipeline("scan", [query_step({
                    "database": db,
                    "sql": "SELECT id, name, score, avatar, note, admin FROM users ORDER BY id"})],
                    isolation=isolation))
                d = self.daemon(sb)
                rc, out, text = self.invoke(sb, "scan", {})
                self.assertEqual(rc, 0, out)
                body = out["body"]
                self.assertEqual(body["count"], 4)
                self.assertNotIn("truncated", body)
                self.assertEqual(body["rows"][:3], [
                    {"id": 1, "name": "Ada", "score": 9.5, "avatar": "AP8Q", "note": None,
                     "admin": 1},
                    {"id": 2, "name": "Grace", "score": 0.1, "avatar": None,
                     "note": 'line1\ntab\t"q"', "admin": 0},
                    {"id": 3, "name": "Zoë 🚀", "score": -3e300, "avatar": "",
                     "note": "ünïcode", "admin": 0},
                ])
                # 2^62 + 1 does not fit a double: a string keeps every digit
                self.assertEqual(body["rows"][3], {"id": str(BIG), "name": "Big", "score": 1.0,
                                                   "avatar": None, "note": None, "admin": 0})
                self.assertIn('"id":"%d"' % BIG, text)
                self.stop(d)

    def test_parameters_are_bound_from_the_event_never_pasted(self):
        sb = self.new_sandbox()
        db = sb.path("app.db")
        make_db(db, USERS)
        sb.add_pipeline(invoke_pipeline("get", [query_step({
            "database": db, "sql": "SELECT id, name FROM users WHERE name = ?",
            "params": ["/user/name"]})]))
        sb.add_pipeline(invoke_pipeline("typed", [query_step({
            "database": db,
            "sql": "SELECT typeof(?1) AS a, typeof(?2) AS b, typeof(?3) AS c, typeof(?4) AS d, "
                   "typeof(?5) AS e, ?2 AS b_value, ?3 AS c_value, ?4 AS d_value",
            "params": ["/s", "/i", "/f", "/t", "/missing"]})]))
        sb.add_pipeline(invoke_pipeline("optional", [query_step({
            "database": db, "sql": "SELECT id FROM users WHERE (:id IS NULL OR id = :id) "
                                   "ORDER BY id LIMIT 3",
            "params": ["/id"]})]))
        d = self.daemon(sb)
        self.assertEqual(self.invoke_ok(sb, "get", {"user": {"name": "Grace"}}),
                         {"rows": [{"id": 2, "name": "Grace"}], "count": 1})
        for evil in ["x' OR '1'='1", "Ada'; DROP TABLE users; --", "' UNION SELECT 1, sql "
                     "FROM sqlite_master --"]:
            with self.subTest(value=evil):
                self.assertEqual(self.invoke_ok(sb, "get", {"user": {"name": evil}}),
                                 {"rows": [], "count": 0})
        self.assertEqual(self.rows_of(db, "SELECT count(*) FROM users"), [(4,)])
        body = self.invoke_ok(sb, "typed", {"s": "text", "i": 42, "f": 2.5, "t": True})
        self.assertEqual(body["rows"], [{"a": "text", "b": "integer", "c": "real", "d": "integer",
                                         "e": "null", "b_value": 42, "c_value": 2.5,
                                         "d_value": 1}])
        self.assertEqual(self.invoke_ok(sb, "optional", {})["rows"],
                         [{"id": 1}, {"id": 2}, {"id": 3}])
        self.assertEqual(self.invoke_ok(sb, "optional", {"id": 2})["rows"], [{"id": 2}])
        self.assertEqual(self.invoke_ok(sb, "optional", {"id": None})["count"], 3)
        msg = self.invoke_fails(sb, "optional", {"id": [1, 2]}, "InvalidEvent")
        self.assertEqual(msg, 'config.params[0] "/id" points at an array in the event; only '
                         "strings, numbers, booleans and null can be bound")
        self.stop(d)

    def test_max_rows_truncates_and_says_so(self):
        sb = self.new_sandbox()
        db = sb.path("app.db")
        make_db(db, USERS)
        sb.add_pipeline(invoke_pipeline("scan", [query_step({
            "database": db, "sql": "SELECT id FROM users ORDER BY id", "max_rows": 2})]))
        d = self.daemon(sb)
        self.assertEqual(self.invoke_ok(sb, "scan", {}),
                         {"rows": [{"id": 1}, {"id": 2}], "count": 2, "truncated": True})
        self.wait_for(lambda: any("max_rows" in m for m in self.logs(sb, "scan")),
                      what="the truncation warning in the logs")
        self.stop(d)

    # -- writing ------------------------------------------------------------
    def test_read_only_unless_the_config_says_write(self):
        sb = self.new_sandbox()
        db = sb.path("app.db")
        make_db(db, USERS)
        insert = "INSERT INTO users (name, score) VALUES (?, ?)"
        sb.add_pipeline(invoke_pipeline("ro", [query_step({
            "database": db, "sql": insert, "params": ["/name", "/score"]})]))
        sb.add_pipeline(invoke_pipeline("ro_pragma", [query_step({
            "database": db, "sql": "PRAGMA user_version = 7"})]))
        sb.add_pipeline(invoke_pipeline("rw", [query_step({
            "database": db, "sql": insert, "params": ["/name", "/score"], "write": True})]))
        sb.add_pipeline(invoke_pipeline("returning", [query_step({
            "database": db, "write": True, "params": ["/id"],
            "sql": "UPDATE users SET admin = 1 WHERE id = ? RETURNING id, name, admin"})]))
        d = self.daemon(sb)
        for pipeline in ("ro", "ro_pragma"):
            msg = self.invoke_fails(sb, pipeline, {"name": "Eve", "score": 1}, "ConfigError")
            self.assertEqual(msg, 'config.sql changes the database, and the step is read-only; '
                             'set "write": true in the step\'s config to allow it')
        self.assertEqual(self.rows_of(db, "SELECT count(*) FROM users"), [(4,)])
        self.assertEqual(self.rows_of(db, "PRAGMA user_version"), [(0,)])
        body = self.invoke_ok(sb, "rw", {"name": "Eve", "score": 7.25})
        self.assertEqual(body, {"rows": [], "count": 0, "changes": 1,
                                "last_insert_rowid": str(BIG + 1)})
        self.assertEqual(self.rows_of(db, "SELECT name, score FROM users WHERE name = 'Eve'"),
                         [("Eve", 7.25)])
        msg = self.invoke_fails(sb, "rw", {"name": "Eve", "score": 1}, "ConstraintError")
        self.assertIn("UNIQUE constraint failed: users.name", msg)
        body = self.invoke_ok(sb, "returning", {"id": 2})
        # (last_insert_rowid is the connection's: this step's has inserted nothing)
        self.assertEqual(body, {"rows": [{"id": 2, "name": "Grace", "admin": 1}], "count": 1,
                                "changes": 1, "last_insert_rowid": 0})
        self.stop(d)

    # -- connections --------------------------------------------------------
    def test_the_statement_is_prepared_once_per_worker_and_follows_a_replaced_file(self):
        sb = self.new_sandbox()
        db = sb.path("app.db")
        make_db(db, USERS)
        sb.add_pipeline(invoke_pipeline("count", [query_step({
            "database": db, "sql": "SELECT count(*) AS n FROM users"})], concurrency=1))
        d = self.daemon(sb)
        for _ in range(5):
            self.assertEqual(self.invoke_ok(sb, "count", {})["rows"], [{"n": 4}])
        self.wait_for(lambda: self.logs(sb, "count"), what="the open log line")
        opened = [m for m in self.logs(sb, "count") if m.startswith("opened ")]
        self.assertEqual(opened, ["opened %s read-only and prepared: SELECT count(*) AS n FROM "
                                  "users" % db])
        # another process replaces the file (write a new one, rename it over)
        make_db(db + ".new", "CREATE TABLE users (id INTEGER); INSERT INTO users VALUES (1);")
        os.replace(db + ".new", db)
        self.assertEqual(self.invoke_ok(sb, "count", {})["rows"], [{"n": 1}])
        self.stop(d)

    def test_a_missing_database_is_built_from_create_from(self):
        sb = self.new_sandbox()
        script = sb.drop("schema/users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, "
                         "name TEXT);\nINSERT INTO users (name) VALUES ('one'), ('two');\n")
        broken = sb.drop("schema/broken.sql", "CREATE TABLE t (x);\nINSERT INTO nowhere "
                         "VALUES (1);\n")
        db = sb.path("state", "deep", "users.db")
        sb.add_pipeline(invoke_pipeline("users", [query_step({
            "database": db, "create_from": script,
            "sql": "SELECT name FROM users ORDER BY id"})]))
        sb.add_pipeline(invoke_pipeline("broken", [query_step({
            "database": sb.path("state", "broken.db"), "create_from": broken,
            "sql": "SELECT 1"})]))
        sb.add_pipeline(invoke_pipeline("missing", [query_step({
            "database": sb.path("state", "missing.db"), "sql": "SELECT 1"})]))
        sb.add_pipeline(invoke_pipeline("no_script", [query_step({
            "database": sb.path("state", "other.db"), "create_from": sb.path("nope.sql"),
            "sql": "SELECT 1"})]))
        d = self.daemon(sb)
        self.assertEqual(self.invoke_ok(sb, "users", {})["rows"], [{"name": "one"},
                                                                   {"name": "two"}])
        self.assertTrue(os.path.isfile(db))
        self.wait_for(lambda: any(m.startswith("created the database") for m in
                                  self.logs(sb, "users")), what="the creation log line")
        self.assertIn("created the database %s from %s" % (db, script), self.logs(sb, "users"))
        msg = self.invoke_fails(sb, "broken", {}, "CreateError")
        self.assertEqual(msg, 'config.create_from "%s" failed on a new database: no such table: '
                         "nowhere (fix the script; nothing was created at %s)"
                         % (broken, sb.path("state", "broken.db")))
        msg = self.invoke_fails(sb, "missing", {}, "DatabaseNotFound")
        self.assertIn("the database %s does not exist" % sb.path("state", "missing.db"), msg)
        self.assertIn("set config.create_from to a .sql file that builds it", msg)
        msg = self.invoke_fails(sb, "no_script", {}, "ConfigError")
        self.assertIn('config.create_from "%s": No such file or directory' % sb.path("nope.sql"),
                      msg)
        self.assertEqual(sorted(os.listdir(sb.path("state"))), ["deep"])
        self.assertEqual(os.listdir(sb.path("state", "deep")), ["users.db"])
        self.stop(d)

    # -- deadlines and locks ------------------------------------------------
    def test_a_slow_query_stops_at_the_deadline_and_a_lock_fails_as_busy(self):
        sb = self.new_sandbox()
        db = sb.path("app.db")
        make_db(db, USERS)
        slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                "SELECT count(*) AS c FROM n")
        for isolation in ("process", "thread"):
            sb.add_pipeline(invoke_pipeline("slow_" + isolation, [query_step(
                {"database": db, "sql": slow}, timeout_ms=400)], isolation=isolation))
        sb.add_pipeline(invoke_pipeline("read", [query_step(
            {"database": db, "sql": "SELECT count(*) AS n FROM users"}, timeout_ms=1000)]))
        d = self.daemon(sb)
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                msg = self.invoke_fails(sb, "slow_" + isolation, {}, "Sandbox.Timedout")
                self.assertIn("the statement did not finish before the step's deadline", msg)
        self.wait_for(lambda: len(sb.db_rows("SELECT id FROM invocations WHERE pipeline LIKE "
                                             "'slow_%'")) == 2, what="two invocation rows")
        statuses = sb.db_rows("SELECT pipeline, status FROM invocations WHERE pipeline LIKE "
                              "'slow_%' ORDER BY pipeline")
        self.assertEqual([r["status"] for r in statuses], ["timeout", "timeout"])
        # a writer holding an exclusive lock: the reader waits, then says busy
        locked = threading.Event()
        release = threading.Event()

        def hold():
            con = sqlite3.connect(db, isolation_level=None)
            con.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(30)
            con.execute("ROLLBACK")
            con.close()

        t = threading.Thread(target=hold)
        t.start()
        try:
            self.assertTrue(locked.wait(10))
            msg = self.invoke_fails(sb, "read", {}, "DatabaseBusy")
            self.assertIn("the database %s stayed locked by another connection" % db, msg)
        finally:
            release.set()
            t.join()
        self.assertEqual(self.invoke_ok(sb, "read", {})["rows"], [{"n": 4}])
        self.stop(d)

    # -- errors -------------------------------------------------------------
    def test_errors_say_what_to_fix(self):
        sb = self.new_sandbox()
        db = sb.path("app.db")
        make_db(db, USERS)
        not_db = sb.drop("notes.db", "this is a text file, not a database\n" * 20)
        # What the declared keys settle: `sluice check`, before anything runs.
        checked = [
            ({"database": db}, 'config: missing required key "sql"'),
            ({"sql": "SELECT 1"}, 'config: missing required key "database"'),
            ({"database": db, "sql": "SELECT 1", "params": "/a"},
             "config.params: expected an array, got a string"),
            ({"database": db, "sql": "SELECT 1", "write": "yes"},
             "config.write: expected true or false, got a string"),
            ({"database": db, "sql": "SELECT 1", "databse": "x"},
             'config: unknown key "databse" (did you mean "database"?)'),
        ]
        self.check_refuses(sb, checked, query_step)
        for i in range(len(checked)):
            os.unlink(sb.pipeline_file("k%d" % i))
        init = "Runtime.InitError"
        cases = [
            ({"database": db, "sql": ""}, init, "config.sql must be one SQL statement"),
            ({"database": "", "sql": "SELECT 1"}, init, "config.database must name the SQLite "
             "database file"),
            ({"database": db, "sql": "SELEKT 1"}, "ConfigError",
             'config.sql does not compile against %s: near "SELEKT": syntax error' % db),
            ({"database": db, "sql": "SELECT * FROM nowhere"}, "ConfigError",
             "no such table: nowhere"),
            ({"database": db, "sql": "SELECT 1; SELECT 2"}, "ConfigError",
             'config.sql holds more than one statement (the rest starts at " SELECT 2")'),
            ({"database": db, "sql": "-- nothing\n"}, "ConfigError",
             "config.sql holds no statement"),
            ({"database": db, "sql": "SELECT ?, ?", "params": ["/a"]}, "ConfigError",
             "config.sql has 2 parameters but config.params lists 1 JSON pointer"),
            ({"database": db, "sql": "SELECT 1", "params": ["a"]}, init,
             "config.params[0] must be a JSON pointer into the event"),
            ({"database": db, "sql": "SELECT u.id, v.id FROM users u, users v"}, "ConfigError",
             'config.sql returns two columns named "id" (columns 1 and 2); give one an alias'),
            ({"database": db, "sql": "SELECT 1", "max_rows": 0}, init,
             "config.max_rows must be a whole number from 1 to 1000000"),
            ({"database": db, "sql": "SELECT 1", "max_rows": 2e9}, init,
             "config.max_rows must be a whole number from 1 to 1000000"),
            ({"database": not_db, "sql": "SELECT 1 FROM t"}, "DatabaseError",
             "cannot read the database %s: file is not a database" % not_db),
            ({"database": db, "sql": "SELECT abs(-9223372036854775807 - 1)"}, "SQLError",
             "integer overflow"),
        ]
        for i, (cfg, _, _) in enumerate(cases):
            sb.add_pipeline(invoke_pipeline("c%d" % i, [query_step(cfg)]))
        d = self.daemon(sb)
        for i, (cfg, error_type, want) in enumerate(cases):
            with self.subTest(config=cfg):
                msg = self.invoke_fails(sb, "c%d" % i, {}, error_type)
                self.assertIn(want, msg)
        self.stop(d)

    # -- the sample pipeline ----------------------------------------------
    def test_the_sample_pipeline_works_out_of_the_box(self):
        source = harness.env_path("SLUICE_SOURCE_DIR")
        sb = self.new_sandbox()
        sample = self.copy_sample(sb, "users.json")
        cfg = sample["steps"][0]["config"]
        # Step config paths start from the daemon's working folder, the
        # repository root for `sluice run`: lay the sandbox out the same way.
        script = sb.path(cfg["create_from"])
        os.makedirs(os.path.dirname(script))
        shutil.copy(os.path.join(source, cfg["create_from"]), script)
        check = sb.cli("check")
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertFalse(os.path.exists(sb.path(cfg["database"])))
        d = self.daemon(sb, cwd=sb.root)
        body = self.invoke_ok(sb, sample["name"], {})
        self.assertEqual(body["count"], 5)
        self.assertEqual(body["rows"][0], {"id": 1, "name": "Ada Lovelace",
                                           "email": "ada@example.com", "team": "engines",
                                           "created_at": "2024-01-15T09:30:00Z"})
        self.assertTrue(os.path.isfile(sb.path(cfg["database"])))
        self.assertEqual(self.invoke_ok(sb, sample["name"], {"id": 2})["rows"][0]["name"],
                         "Grace Hopper")
        body = self.invoke_ok(sb, sample["name"], {"team": "compilers"})
        self.assertEqual([r["id"] for r in body["rows"]], [2, 3])
        # the command line users would type, argument and all
        p = subprocess.run([harness.sluice_bin(), "invoke", "-c", sb.config_path,
                            sample["name"], "{}"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60, cwd=sb.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["body"]["count"], 5)
        # the ZeroMQ trigger: published events run the same query
        before = sb.count("events WHERE pipeline = ? AND state = 'done'", (sample["name"],))
        pub = subprocess.run([harness.sluice_bin(), "publish", "-c", sb.config_path,
                              "users.lookup", '{"id": 4}'], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=60, cwd=sb.root)
        self.assertEqual(pub.returncode, 0, pub.stderr)
        self.wait_events(sb, before + 1, pipeline=sample["name"])
        self.stop(d)


if __name__ == "__main__":
    harness.main()
