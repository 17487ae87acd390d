"""Directory trigger: which files become events, and what an event holds.

Each test has its own sandbox and daemon. "No event" is always proven with a
sentinel: a file that must become an event after the one that must not; the
daemon reads one inotify queue in order, so once the sentinel is journaled the
earlier file would have been too.
"""

import json
import os
import re
import sqlite3
import urllib.parse

import harness
from harness import SluiceTestCase, echo_pipeline

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_MS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class DirectoryTrigger(SluiceTestCase):

    def start_echo(self, directory="inbox", **extra):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", directory, **extra))
        d = self.daemon(sb)
        return sb, d

    def keys(self, sb, pipeline="files"):
        rows = sb.db_rows("SELECT payload FROM events WHERE pipeline = ? ORDER BY id", (pipeline,))
        return [json.loads(r["payload"])["Records"][0]["s3"]["object"]["key"] for r in rows]

    def assert_each_once(self, sb, expected_keys, pipeline="files"):
        """Exactly the expected keys were journaled, once each, all done, each
        with exactly one invocation (status ok)."""
        keys = self.keys(sb, pipeline)
        self.assertEqual(sorted(keys), sorted(expected_keys), "journaled keys")
        events = sb.db_rows("SELECT event_id, state FROM events WHERE pipeline = ?", (pipeline,))
        self.assertEqual({e["state"] for e in events}, {"done"} if events else set())
        per_event = sb.db_rows(
            "SELECT e.event_id, count(i.id) AS n, sum(i.status = 'ok') AS ok"
            " FROM events e LEFT JOIN invocations i ON i.event_id = e.event_id"
            " AND i.pipeline = e.pipeline WHERE e.pipeline = ? GROUP BY e.event_id", (pipeline,))
        bad = [r for r in per_event if r["n"] != 1 or r["ok"] != 1]
        self.assertEqual(bad, [], "events without exactly one ok invocation")
        self.assertEqual(sb.count("invocations WHERE pipeline = ?", (pipeline,)),
                         len(expected_keys), "invocations in all")

    # ------------------------------------------------------------------
    def test_file_written_and_closed_gives_one_s3_shaped_event(self):
        sb, d = self.start_echo()
        data = "hello, sluice\n" * 10
        path = sb.drop("inbox/hello.txt", data)
        events = self.wait_events(sb, 1)
        self.assertEqual(len(events), 1)
        ev = events[0]
        self.assertEqual(ev["pipeline"], "files")
        self.assertEqual(ev["source"], "directory:inbox")
        self.assertEqual(ev["attempts"], 1)
        self.assertIsNone(ev["error"])
        self.assertRegex(ev["received_at"], ISO_MS_RE)
        self.assertRegex(ev["finished_at"], ISO_MS_RE)

        payload = json.loads(ev["payload"])
        self.assertEqual(list(payload), ["Records"])
        self.assertEqual(len(payload["Records"]), 1)
        rec = payload["Records"][0]
        self.assertEqual(rec["eventVersion"], "2.1")
        self.assertEqual(rec["eventSource"], "sluice:directory")
        self.assertEqual(rec["eventName"], "ObjectCreated:Put")
        self.assertRegex(rec["eventTime"], ISO_MS_RE)
        self.assertEqual(rec["s3"]["bucket"]["name"], "inbox")
        obj = rec["s3"]["object"]
        self.assertEqual(obj["key"], "hello.txt")
        self.assertEqual(obj["size"], len(data.encode()))
        self.assertEqual(obj["path"], path)
        self.assertTrue(os.path.isabs(obj["path"]))

        inv = sb.db_rows("SELECT * FROM invocations")
        self.assertEqual(len(inv), 1, "exactly one invocation")
        inv = inv[0]
        self.assertEqual(inv["event_id"], ev["event_id"])
        self.assertEqual(inv["pipeline"], "files")
        self.assertEqual(inv["step"], "echo")
        self.assertEqual(inv["handler"], "echo.handler")
        self.assertEqual(inv["source"], "directory:inbox")
        self.assertEqual(inv["attempt"], 1)
        self.assertEqual(inv["status"], "ok")
        self.assertEqual(inv["status_code"], 200)
        self.assertIsNone(inv["error"])
        self.assertRegex(inv["request_id"], UUID_RE)
        self.assertRegex(inv["started_at"], ISO_MS_RE)
        self.assertGreaterEqual(inv["duration_ms"], 0)
        # echo answers with its event: what went in came out, byte for byte
        self.assertEqual(inv["input_bytes"], len(ev["payload"].encode()))
        self.assertEqual(inv["output_bytes"], inv["input_bytes"])
        self.stop(d)

    def test_key_is_url_encoded_like_s3(self):
        sb, d = self.start_echo()
        name = "a report (v2)+ü.txt"
        sb.drop("inbox/" + name, "data")
        self.wait_events(sb, 1)
        key = self.keys(sb)[0]
        self.assertNotIn(" ", key)
        self.assertEqual(urllib.parse.unquote_plus(key), name)
        self.stop(d)

    def test_file_written_slowly_gives_one_event_with_full_size(self):
        sb, d = self.start_echo()
        path = sb.path("inbox", "slow.log")
        pieces = [("piece %d " % i) * 200 for i in range(5)]
        with open(path, "w") as f:
            for piece in pieces:
                f.write(piece)
                f.flush()
                os.fsync(f.fileno())
                # "slowly": the file stays open and incomplete for a while,
                # and the daemon must journal nothing meanwhile
                self.assert_stays(lambda: sb.count("events") == 0, 0.15,
                                  "no event while the file is still open for writing")
        self.wait_events(sb, 1)
        # the close is what made it complete: a sentinel proves no second event follows
        sb.drop("inbox/sentinel.txt")
        self.wait_events(sb, 2)
        rows = sb.db_rows("SELECT payload FROM events ORDER BY id")
        self.assertEqual(len(rows), 2)
        obj = json.loads(rows[0]["payload"])["Records"][0]["s3"]["object"]
        self.assertEqual(obj["key"], "slow.log")
        self.assertEqual(obj["size"], sum(len(p) for p in pieces))
        self.assert_each_once(sb, ["slow.log", "sentinel.txt"])
        self.stop(d)

    def test_file_open_for_writing_at_start_waits_for_its_close(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        os.makedirs(sb.path("inbox"))
        sb.drop("inbox/complete.txt", "already here")
        with open(sb.path("inbox", "growing.txt"), "w") as f:
            f.write("first half ")
            f.flush()
            d = self.daemon(sb)  # its start-up scan finds a file still open for writing
            self.wait_events(sb, 1)
            self.assert_stays(lambda: sb.count("events") == 1, 0.3,
                              "no event for growing.txt while it is open for writing")
            f.write("second half")
        self.wait_events(sb, 2)
        self.assert_each_once(sb, ["complete.txt", "growing.txt"])
        size = sb.db_value("SELECT json_extract(payload, '$.Records[0].s3.object.size')"
                           " FROM events WHERE event_id LIKE ?", ("%growing.txt@%",))
        self.assertEqual(size, len("first half second half"))
        self.stop(d)

    def test_file_open_for_writing_in_new_subfolder_waits_for_its_close(self):
        sb, d = self.start_echo()
        os.makedirs(sb.path("inbox", "new"))
        with open(sb.path("inbox", "new", "growing.txt"), "w") as f:
            f.write("first half ")
            f.flush()
            # the daemon scans the new folder while the file is open
            sb.drop("inbox/new/sentinel.txt")
            self.wait_events(sb, 1)
            self.assert_stays(lambda: sb.count("events") == 1, 0.3,
                              "no event for new/growing.txt while it is open for writing")
            f.write("second half")
        self.wait_events(sb, 2)
        self.assert_each_once(sb, ["new/sentinel.txt", "new/growing.txt"])
        size = sb.db_value("SELECT json_extract(payload, '$.Records[0].s3.object.size')"
                           " FROM events WHERE event_id LIKE ?", ("%growing.txt@%",))
        self.assertEqual(size, len("first half second half"))
        self.stop(d)

    def test_file_renamed_into_place_gives_one_event_for_final_name(self):
        sb, d = self.start_echo()
        # hidden temp name, then renamed
        tmp1 = sb.drop("inbox/.report.csv.tmp", "a,b\n1,2\n")
        os.rename(tmp1, sb.path("inbox", "report.csv"))
        # ".part" name, then renamed
        tmp2 = sb.drop("inbox/download.bin.part", "0123456789")
        os.rename(tmp2, sb.path("inbox", "download.bin"))
        # written outside the watched folder, then moved in
        outside = sb.drop("staging/moved.txt", "moved in")
        os.rename(outside, sb.path("inbox", "moved.txt"))
        self.wait_events(sb, 3)
        sb.drop("inbox/sentinel.txt")
        self.wait_events(sb, 4)
        self.assert_each_once(sb, ["report.csv", "download.bin", "moved.txt", "sentinel.txt"])
        sizes = {json.loads(r["payload"])["Records"][0]["s3"]["object"]["key"]:
                 json.loads(r["payload"])["Records"][0]["s3"]["object"]["size"]
                 for r in sb.db_rows("SELECT payload FROM events")}
        self.assertEqual(sizes["report.csv"], 8)
        self.assertEqual(sizes["download.bin"], 10)
        self.stop(d)

    def test_hidden_and_temporary_files_alone_give_no_event(self):
        sb, d = self.start_echo()
        ignored = [".hidden", ".config.json", "upload.tmp", "upload.temp", "video.part",
                   "video.partial", ".notes.swp", "notes.swx", "file.crdownload",
                   "file.download", "big.filepart", "backup~", "#autosave#"]
        for name in ignored:
            sb.drop("inbox/" + name, "ignored")
        # a hidden folder's content is not followed either
        sb.drop("inbox/.git/objects/blob", "ignored")
        sb.drop("inbox/sentinel.txt")
        self.wait_events(sb, 1)
        self.assert_each_once(sb, ["sentinel.txt"])
        self.stop(d)

    def test_files_in_new_subfolder_and_sub_subfolder(self):
        sb, d = self.start_echo()
        # created and filled right away: the watcher races the writer
        os.makedirs(sb.path("inbox", "2024", "06"))
        sb.drop("inbox/2024/a.txt", "a")
        sb.drop("inbox/2024/06/b.txt", "bb")
        self.wait_events(sb, 2)
        # a file written later in the (now watched) deep folder
        sb.drop("inbox/2024/06/c.txt", "ccc")
        # and a fresh folder three levels deep made in one go
        os.makedirs(sb.path("inbox", "x", "y", "z"))
        sb.drop("inbox/x/y/z/d.txt", "dddd")
        self.wait_events(sb, 4)
        sb.drop("inbox/sentinel.txt")
        self.wait_events(sb, 5)
        self.assert_each_once(sb, ["2024/a.txt", "2024/06/b.txt", "2024/06/c.txt",
                                   "x/y/z/d.txt", "sentinel.txt"])
        paths = {r["k"] for r in sb.db_rows(
            "SELECT json_extract(payload, '$.Records[0].s3.object.path') AS k FROM events")}
        self.assertIn(sb.path("inbox", "x", "y", "z", "d.txt"), paths)
        self.stop(d)

    def test_folder_moved_in_with_files(self):
        sb, d = self.start_echo()
        sb.drop("staging/batch/one.txt", "1")
        sb.drop("staging/batch/two.txt", "2")
        sb.drop("staging/batch/nested/three.txt", "3")
        sb.drop("staging/batch/.hidden", "ignored")
        os.rename(sb.path("staging", "batch"), sb.path("inbox", "batch"))
        self.wait_events(sb, 3)
        # the moved folder is watched from now on
        sb.drop("inbox/batch/nested/four.txt", "4")
        self.wait_events(sb, 4)
        self.assert_each_once(sb, ["batch/one.txt", "batch/two.txt", "batch/nested/three.txt",
                                   "batch/nested/four.txt"])
        self.stop(d)

    def test_match_suffix_selects_files(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("texts", "inbox", trigger={
            "directory": "inbox", "match": {"suffix": [".txt", ".md"]}}))
        sb.add_pipeline(echo_pipeline("all", "inbox"))
        d = self.daemon(sb)
        for name in ["a.csv", "b.txt", "c.txt.bak", "d.md", "e.TXT", "sub/f.txt"]:
            sb.drop("inbox/" + name, name)
        self.wait_events(sb, 6, pipeline="all")
        self.wait_events(sb, 3, pipeline="texts")
        sb.drop("inbox/sentinel.txt")
        self.wait_events(sb, 7, pipeline="all")
        self.wait_events(sb, 4, pipeline="texts")
        self.assert_each_once(sb, ["b.txt", "d.md", "sub/f.txt", "sentinel.txt"], "texts")
        self.assert_each_once(sb, ["a.csv", "b.txt", "c.txt.bak", "d.md", "e.TXT",
                                   "sub/f.txt", "sentinel.txt"], "all")
        self.stop(d)

    def test_thousand_files_at_once_each_done_exactly_once(self):
        n = 1000
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox", concurrency=4))
        d = self.daemon(sb)
        inbox = sb.path("inbox")
        names = ["f%04d.dat" % i for i in range(n)]
        for i, name in enumerate(names):
            with open(os.path.join(inbox, name), "w") as f:
                f.write("%d\n" % i)
        self.wait_events(sb, n, timeout=90)
        rows = sb.db_rows("SELECT count(*) AS events, count(DISTINCT event_id) AS ids,"
                          " sum(state = 'done') AS done FROM events")[0]
        self.assertEqual(rows, {"events": n, "ids": n, "done": n})
        inv = sb.db_rows("SELECT count(*) AS n, count(DISTINCT event_id) AS ids,"
                         " sum(status = 'ok') AS ok FROM invocations")[0]
        self.assertEqual(inv, {"n": n, "ids": n, "ok": n})
        self.assertEqual(sorted(self.keys(sb)), names)
        self.stop(d)

    def test_burst_larger_than_the_queue_waits_in_the_journal(self):
        n = 400
        sb = self.sandbox({"queue_size": 4})
        sb.add_pipeline(echo_pipeline("files", "inbox", concurrency=2))
        d = self.daemon(sb)
        names = ["g%03d.dat" % i for i in range(n)]
        for name in names:
            with open(sb.path("inbox", name), "w") as f:
                f.write(name)
        self.wait_events(sb, n, timeout=60)
        sb.drop("inbox/sentinel.txt")
        self.wait_events(sb, n + 1)
        self.assert_each_once(sb, names + ["sentinel.txt"])
        self.stop(d)

    def test_odd_file_names_and_empty_files(self):
        sb, d = self.start_echo()
        inbox = os.fsencode(sb.path("inbox"))
        odd = [b"latin1-\xe9t\xe9.txt", b"line\nbreak.txt", b"tab\tand %25 percent.txt"]
        for name in odd:
            with open(os.path.join(inbox, name), "wb") as f:
                f.write(b"odd")
        open(sb.path("inbox", "empty.txt"), "w").close()   # created and closed, never written
        self.wait_events(sb, len(odd) + 1)
        rows = sb.db_rows("SELECT payload FROM events ORDER BY id")
        objs = {}
        for r in rows:
            obj = json.loads(r["payload"])["Records"][0]["s3"]["object"]
            objs[urllib.parse.unquote_to_bytes(obj["key"].replace("+", " "))] = obj
        self.assertEqual(sorted(objs), sorted(odd + [b"empty.txt"]),
                         "the URL-encoded key gives the exact bytes of the name back")
        self.assertEqual(objs[b"empty.txt"]["size"], 0)
        for name in odd:
            self.assertEqual(objs[name]["size"], 3)
        self.assertEqual(sb.count("invocations WHERE status = 'ok'"), len(odd) + 1)
        self.stop(d)

    def test_database_text_stays_valid_utf8_for_any_file_name(self):
        """A file name that is not valid UTF-8 must not put invalid UTF-8
        into the database's TEXT columns (the payload replaces such bytes,
        and the URL-encoded key keeps them exactly): SQLite's text functions
        and clients such as Python's sqlite3 cannot read such values."""
        sb, d = self.start_echo()
        with open(os.path.join(os.fsencode(sb.path("inbox")), b"latin1-\xe9t\xe9.txt"),
                  "wb") as f:
            f.write(b"odd")
        self.wait_events(sb, 1)
        self.stop(d)
        for table, cols in (("events", "event_id, pipeline, source, payload, error"),
                            ("invocations", "request_id, event_id, pipeline, step, handler,"
                                            " source, error"),
                            ("logs", "request_id, message")):
            try:
                sb.db_rows("SELECT %s FROM %s" % (cols, table), strict_utf8=True)
            except sqlite3.OperationalError as e:
                self.fail("%s holds text that is not UTF-8: %s" % (table, e))

    def test_symlinks_are_not_followed(self):
        sb, d = self.start_echo()
        target = sb.drop("outside/secret.txt", "not in the inbox")
        os.makedirs(sb.path("outside", "dir"))
        sb.drop("outside/dir/inner.txt", "not in the inbox either")
        os.symlink(target, sb.path("inbox", "link.txt"))
        os.symlink(sb.path("outside", "dir"), sb.path("inbox", "linkdir"))
        sb.drop("outside/dir/later.txt", "written through no watch")
        sb.drop("inbox/sentinel.txt")
        self.wait_events(sb, 1)
        self.assert_each_once(sb, ["sentinel.txt"])
        self.stop(d)
        # nor at start-up
        d = self.daemon(sb)
        sb.drop("inbox/sentinel2.txt")
        self.wait_events(sb, 2)
        self.assert_each_once(sb, ["sentinel.txt", "sentinel2.txt"])
        self.stop(d)

    def test_folder_moved_out_is_no_longer_watched(self):
        sb, d = self.start_echo()
        sb.drop("inbox/sub/a.txt", "a")
        self.wait_events(sb, 1)
        os.makedirs(sb.path("elsewhere"))
        os.rename(sb.path("inbox", "sub"), sb.path("elsewhere", "sub"))
        sb.drop("elsewhere/sub/b.txt", "written after the move out")
        sb.drop("inbox/sentinel.txt")
        self.wait_events(sb, 2)
        # a new folder reusing the old name is watched afresh
        sb.drop("inbox/sub/c.txt", "c")
        self.wait_events(sb, 3)
        self.assert_each_once(sb, ["sub/a.txt", "sentinel.txt", "sub/c.txt"])
        self.stop(d)

    def test_nested_trigger_folders_each_get_their_events(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("outer", "inbox"))
        sb.add_pipeline(echo_pipeline("inner", "inbox/sub"))
        sb.add_pipeline(echo_pipeline("flat", "inbox", trigger={"directory": "inbox",
                                                               "recursive": False}))
        sb.drop("inbox/sub/present.txt", "there at start")
        d = self.daemon(sb)
        sb.drop("inbox/top.txt", "top")
        sb.drop("inbox/sub/deep.txt", "deep")
        self.wait_events(sb, 3, pipeline="outer")
        self.wait_events(sb, 2, pipeline="inner")
        self.wait_events(sb, 1, pipeline="flat")
        sb.drop("inbox/sentinel.txt")
        self.wait_events(sb, 4, pipeline="outer")
        self.wait_events(sb, 2, pipeline="flat")
        self.assert_each_once(sb, ["top.txt", "sub/present.txt", "sub/deep.txt",
                                   "sentinel.txt"], "outer")
        self.assert_each_once(sb, ["present.txt", "deep.txt"], "inner")
        self.assert_each_once(sb, ["top.txt", "sentinel.txt"], "flat")
        self.stop(d)


if __name__ == "__main__":
    harness.main()
