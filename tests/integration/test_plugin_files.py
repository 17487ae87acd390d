"""The files plugin (plugins/files) through a running daemon: files.move,
files.copy and files.delete on the file that triggered a pipeline, names
already taken, subfolders, chaining after checksum.handler, and above all
the confinement: nothing outside config.allow is touched, whether reached by
"..", a symbolic link to a folder, a symbolic link as the file, or a folder
whose name merely starts like an allowed one. Ends with the sample pipeline
pipelines/archive.json as shipped."""

import os
import shutil
import tempfile

import harness
from harness import zmq_pipeline as invoke_pipeline
from cases import PluginCase, plugin_step


def s3_event(path, key=None):
    return {"Records": [{"eventSource": "sluice:directory", "s3": {
        "bucket": {"name": os.path.dirname(path)},
        "object": {"key": key if key is not None else os.path.basename(path), "path": path}}}]}


def files_step(action, config, name=None, **extra):
    return plugin_step("files." + action, config, name or action, **extra)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class FilesPlugin(PluginCase):

    # -- helpers ------------------------------------------------------------
    def new_sandbox(self):
        sb = self.sandbox()  # ZeroMQ endpoints of its own: see harness.Sandbox
        for folder in ("inbox", "done", "secret"):
            os.makedirs(sb.path(folder), exist_ok=True)
        return sb

    # -- the three actions ----------------------------------------------------
    def test_move_copy_and_delete_the_file_that_triggered_the_pipeline(self):
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                sb = self.new_sandbox()
                for action in ("move", "copy", "delete"):
                    inbox = sb.path("inbox", action)
                    os.makedirs(inbox)
                    cfg = {"allow": [inbox]}
                    if action != "delete":
                        cfg["to"] = sb.path("done", action)
                    sb.add_pipeline({"name": action, "trigger": {"directory": inbox},
                                     "steps": [files_step(action, cfg)],
                                     "isolation": isolation})
                d = self.daemon(sb)
                data = os.urandom(300000)
                for action in ("move", "copy", "delete"):
                    path = sb.drop("inbox/%s/report.bin" % action, data, mode="wb")
                    if action == "copy":
                        os.chmod(path, 0o640)
                        os.utime(path, (1500000000, 1600000000))
                for action in ("move", "copy", "delete"):
                    self.wait_events(sb, 1, pipeline=action)
                self.assertFalse(os.path.exists(sb.path("inbox/move/report.bin")))
                self.assertEqual(read(sb.path("done/move/report.bin")), data)
                self.assertEqual(read(sb.path("inbox/copy/report.bin")), data)
                copy = sb.path("done/copy/report.bin")
                self.assertEqual(read(copy), data)
                self.assertEqual(os.stat(copy).st_mode & 0o777, 0o640)
                self.assertEqual(int(os.stat(copy).st_mtime), 1600000000)
                self.assertFalse(os.path.exists(sb.path("inbox/delete/report.bin")))
                self.assertFalse(os.path.exists(sb.path("done/delete")))
                for action, verb in (("move", "moved"), ("copy", "copied")):
                    src = sb.path("inbox", action, "report.bin")
                    dst = sb.path("done", action, "report.bin")
                    self.assertEqual(self.logs_n(sb, action, 1),
                                     ["%s %s to %s (300000 bytes)" % (verb, src, dst)])
                self.assertEqual(self.logs_n(sb, "delete", 1), [
                    "deleted %s (300000 bytes)" % sb.path("inbox/delete/report.bin")])
                # no temporary files left anywhere
                for root, _, names in os.walk(sb.path("done")):
                    self.assertEqual([n for n in names if n.startswith(".")], [], root)
                self.stop(d)

    def test_the_response_says_what_was_done(self):
        sb = self.new_sandbox()
        cfg = {"allow": [sb.path("inbox")], "to": sb.path("done")}
        sb.add_pipeline(invoke_pipeline("mv", [files_step("move", cfg)]))
        sb.add_pipeline(invoke_pipeline("cp", [files_step("copy", cfg)]))
        sb.add_pipeline(invoke_pipeline("rm", [files_step("delete",
                                                          {"allow": [sb.path("inbox")]})]))
        d = self.daemon(sb)
        a = sb.drop("inbox/a b.txt", "hello\n")
        body = self.invoke_ok(sb, "cp", s3_event(a, key="a+b.txt"))
        self.assertEqual(body, {"action": "copy", "source": a,
                                "destination": sb.path("done/a b.txt"),
                                "path": sb.path("done/a b.txt"), "bytes": 6, "key": "a+b.txt"})
        body = self.invoke_ok(sb, "mv", s3_event(a, key="a+b.txt"))
        self.assertEqual(body, {"action": "move", "source": a,
                                "destination": sb.path("done/a b-1.txt"),
                                "path": sb.path("done/a b-1.txt"), "bytes": 6, "key": "a+b.txt"})
        b = sb.drop("inbox/b", "")
        body = self.invoke_ok(sb, "rm", {"path": b})
        self.assertEqual(body, {"action": "delete", "source": b, "bytes": 0})
        # several records: one entry each
        c1, c2 = sb.drop("inbox/c1", "1"), sb.drop("inbox/c2", "22")
        event = {"Records": s3_event(c1)["Records"] + s3_event(c2)["Records"]}
        body = self.invoke_ok(sb, "mv", event)
        self.assertEqual(body["count"], 2)
        self.assertEqual([f["destination"] for f in body["files"]],
                         [sb.path("done/c1"), sb.path("done/c2")])
        self.stop(d)

    def test_a_name_already_taken_is_renamed_overwritten_or_refused(self):
        sb = self.new_sandbox()
        for mode in ("rename", "overwrite", "fail"):
            sb.add_pipeline(invoke_pipeline(mode, [files_step("move", {
                "allow": [sb.path("inbox")], "to": sb.path("done", mode), "if_exists": mode})]))
            sb.add_pipeline(invoke_pipeline("copy_" + mode, [files_step("copy", {
                "allow": [sb.path("inbox")], "to": sb.path("done", "c" + mode),
                "if_exists": mode})]))
        d = self.daemon(sb)
        for mode in ("rename", "overwrite", "fail"):
            for prefix in ("", "copy_"):
                with self.subTest(mode=mode, action=prefix or "move"):
                    folder = sb.path("done", ("c" if prefix else "") + mode)
                    for i in range(3):
                        src = sb.drop("inbox/data.tar.gz", "version %d\n" % i)
                        pipeline = prefix + mode
                        if mode == "fail" and i > 0:
                            msg = self.invoke_fails(sb, pipeline, s3_event(src),
                                                    "DestinationExists")
                            self.assertEqual(msg, "%s/data.tar.gz already exists and "
                                             "config.if_exists is \"fail\"" % folder)
                            self.assertTrue(os.path.exists(src), "the source must stay")
                        else:
                            self.invoke_ok(sb, pipeline, s3_event(src))
                    names = sorted(os.listdir(folder))
                    if mode == "rename":
                        # the number goes before the last extension
                        self.assertEqual(names, ["data.tar-1.gz", "data.tar-2.gz",
                                                 "data.tar.gz"])
                        self.assertEqual(read(os.path.join(folder, "data.tar-2.gz")),
                                         b"version 2\n")
                    elif mode == "overwrite":
                        self.assertEqual(names, ["data.tar.gz"])
                        self.assertEqual(read(os.path.join(folder, "data.tar.gz")), b"version 2\n")
                    else:
                        self.assertEqual(names, ["data.tar.gz"])
                        self.assertEqual(read(os.path.join(folder, "data.tar.gz")), b"version 0\n")
        self.stop(d)

    def test_subfolders_are_kept_when_asked(self):
        sb = self.new_sandbox()
        sb.add_pipeline({"name": "keep", "trigger": {"directory": "inbox"},
                         "steps": [files_step("move", {"allow": [sb.path("inbox")],
                                                       "to": sb.path("done"),
                                                       "keep_subfolders": True})]})
        d = self.daemon(sb)
        sb.drop("inbox/2024/05/log.txt", "may\n")
        sb.drop("inbox/top.txt", "top\n")
        self.wait_events(sb, 2, pipeline="keep")
        self.assertEqual(read(sb.path("done/2024/05/log.txt")), b"may\n")
        self.assertEqual(read(sb.path("done/top.txt")), b"top\n")
        self.stop(d)

    def test_after_checksum_and_with_a_json_pointer(self):
        sb = self.new_sandbox()
        sb.add_pipeline({"name": "archive", "trigger": {"directory": "inbox"},
                         "steps": [{"name": "sha256", "handler": "checksum.handler"},
                                   files_step("move", {"allow": [sb.path("inbox")],
                                                       "to": sb.path("done")})]})
        sb.add_pipeline(invoke_pipeline("pointer", [files_step("copy", {
            "allow": [sb.path("other")], "to": sb.path("copies"), "path": "/result/input"})]))
        d = self.daemon(sb)
        sb.drop("inbox/x.csv", "a,b\n")
        self.wait_events(sb, 1, pipeline="archive")
        self.assertEqual(read(sb.path("done/x.csv")), b"a,b\n")
        self.assertFalse(os.path.exists(sb.path("inbox/x.csv")))
        os.makedirs(sb.path("other"))
        y = sb.drop("secret/../other/y.txt", "y\n")  # ".." that stays inside is fine
        body = self.invoke_ok(sb, "pointer", {"result": {"input": y}})
        self.assertEqual(body["destination"], sb.path("copies/y.txt"))
        msg = self.invoke_fails(sb, "pointer", {"result": {}}, "InvalidEvent")
        self.assertIn("the event has no file path at /result/input (config.path)", msg)
        self.stop(d)

    # -- confinement --------------------------------------------------------
    def test_nothing_outside_the_allowed_folders_is_touched(self):
        sb = self.new_sandbox()
        allow = [sb.path("inbox")]
        for action in ("move", "copy", "delete"):
            cfg = {"allow": allow}
            if action != "delete":
                cfg["to"] = sb.path("done")
            sb.add_pipeline(invoke_pipeline(action, [files_step(action, cfg)]))
        d = self.daemon(sb)
        secret = sb.drop("secret/key.pem", "PRIVATE\n")
        os.makedirs(sb.path("inbox2"))
        sibling = sb.drop("inbox2/file.txt", "sibling\n")
        os.symlink(sb.path("secret"), sb.path("inbox", "linked-folder"))
        os.symlink(secret, sb.path("inbox", "linked-file.pem"))
        os.makedirs(sb.path("inbox", "sub"))
        cases = [
            (secret, "PathNotAllowed", "is outside the folders in config.allow"),
            (sb.path("inbox", "..", "secret", "key.pem"), "PathNotAllowed",
             "is outside the folders in config.allow"),
            (sb.path("inbox", "sub", "..", "..", "secret", "key.pem"), "PathNotAllowed",
             "is outside the folders in config.allow"),
            (sb.path("inbox", "linked-folder", "key.pem"), "PathNotAllowed",
             "its folder %s is outside the folders in config.allow" % sb.path("secret")),
            (sb.path("inbox", "linked-file.pem"), "PathNotAllowed", "it is a symbolic link"),
            (sibling, "PathNotAllowed", "is outside the folders in config.allow"),
            ("/etc/passwd", "PathNotAllowed", "is outside the folders in config.allow"),
            (sb.path("inbox", "sub"), "FileError", "it is not a regular file"),
            (sb.path("inbox", "sub", ".."), "InvalidEvent", "does not name a file"),
            (sb.path("inbox", "nothing-here"), "FileNotFound", "no longer exists"),
        ]
        for action in ("move", "copy", "delete"):
            for path, error_type, text in cases:
                with self.subTest(action=action, path=path):
                    msg = self.invoke_fails(sb, action, s3_event(path), error_type)
                    self.assertIn(text, msg)
        self.assertEqual(read(secret), b"PRIVATE\n")
        self.assertEqual(read(sibling), b"sibling\n")
        self.assertTrue(os.path.islink(sb.path("inbox", "linked-file.pem")))
        self.assertEqual(os.listdir(sb.path("done")), [])
        msg = self.invoke_fails(sb, "move", s3_event(secret), "PathNotAllowed")
        self.assertEqual(msg, 'refusing to move %s: its folder %s is outside the folders in '
                         'config.allow ("%s")' % (secret, sb.path("secret"), sb.path("inbox")))
        self.stop(d)

    def test_a_symbolic_link_in_the_destination_is_not_followed(self):
        sb = self.new_sandbox()
        sb.add_pipeline(invoke_pipeline("keep", [files_step("move", {
            "allow": [sb.path("inbox")], "to": sb.path("done"), "keep_subfolders": True})]))
        d = self.daemon(sb)
        os.symlink(sb.path("secret"), sb.path("done", "sub"))
        src = sb.drop("inbox/sub/x.txt", "x\n")
        msg = self.invoke_fails(sb, "keep", s3_event(src), "PathNotAllowed")
        self.assertIn("a folder there is a symbolic link", msg)
        self.assertEqual(os.listdir(sb.path("secret")), [])
        self.assertTrue(os.path.exists(src))
        self.stop(d)

    def test_a_move_to_another_file_system_copies_then_removes(self):
        other = None
        for candidate in ("/dev/shm", "/run", "/var/tmp"):
            if os.path.isdir(candidate) and os.access(candidate, os.W_OK):
                if os.stat(candidate).st_dev != os.stat(tempfile.gettempdir()).st_dev:
                    other = candidate
                    break
        if other is None:
            self.skipTest("no writable folder on another file system than %s"
                          % tempfile.gettempdir())
        target = tempfile.mkdtemp(prefix="sluice-files-", dir=other)
        self.addCleanup(shutil.rmtree, target, True)
        sb = self.new_sandbox()
        sb.add_pipeline(invoke_pipeline("mv", [files_step("move", {
            "allow": [sb.path("inbox")], "to": target})]))
        d = self.daemon(sb)
        data = os.urandom(100000)
        src = sb.drop("inbox/big.bin", data, mode="wb")
        body = self.invoke_ok(sb, "mv", s3_event(src))
        self.assertEqual(body["destination"], os.path.join(os.path.realpath(target), "big.bin"))
        self.assertEqual(read(body["destination"]), data)
        self.assertFalse(os.path.exists(src))
        self.assertEqual(os.listdir(target), ["big.bin"])
        self.stop(d)

    def test_config_errors_say_how_to_fix_them(self):
        sb = self.new_sandbox()
        inbox = sb.path("inbox")
        # What the declared keys settle: `sluice check`, before anything runs.
        checked = [
            ("move", {"to": "x"}, 'steps[0] (move).config: missing required key "allow"'),
            ("move", {"allow": [3], "to": "x"}, "steps[0] (move).config.allow: expected a string "
             "or an array of strings, got an array"),
            ("move", {"allow": [inbox], "to": "x", "keep_subfolders": 1},
             "steps[0] (move).config.keep_subfolders: expected true or false, got a number"),
            ("move", {"allow": [inbox], "too": "x"},
             'steps[0] (move).config: unknown key "too" (did you mean "to"?)'),
        ]
        for i, (action, cfg, _) in enumerate(checked):
            sb.add_pipeline(invoke_pipeline("k%d" % i, [files_step(action, cfg)]))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, r.stderr)
        for i, (action, cfg, want) in enumerate(checked):
            with self.subTest(action=action, config=cfg):
                self.assertIn("%s: %s" % (sb.pipeline_file("k%d" % i), want), r.stderr)
            os.unlink(sb.pipeline_file("k%d" % i))
        # What the plugin's create refuses: every invocation says why.
        created = [
            ("move", {"allow": [], "to": "x"}, "config.allow must list the folders files may act "
             "in (1 to 64)"),
            ("copy", {"allow": [inbox], "to": ""}, "config.to must name a folder"),
            ("move", {"allow": [inbox], "to": "x", "if_exists": "skip"},
             'config.if_exists must be "rename" (name-1.ext, the default), "overwrite" or "fail"'),
            ("move", {"allow": [inbox], "to": "x", "path": "input"},
             "config.path must be a JSON pointer"),
        ]
        # What depends on the handler or the file system: each call says why.
        called = [
            ("move", {"allow": [inbox]}, 'config.to must name the folder to move files into'),
            ("delete", {"allow": [inbox], "to": "x"}, "config.to makes no sense for files.delete"),
            ("move", {"allow": [sb.path("nope")], "to": "x"},
             'config.allow[0] "%s": No such file or directory (it must be an existing folder; a '
             "relative path starts from the daemon's working folder)" % sb.path("nope")),
        ]
        for i, (action, cfg, _) in enumerate(created + called):
            sb.add_pipeline(invoke_pipeline("c%d" % i, [files_step(action, cfg)]))
        d = self.daemon(sb)
        src = sb.drop("inbox/f.txt", "f\n")
        for i, (action, cfg, want) in enumerate(created + called):
            with self.subTest(action=action, config=cfg):
                kind = "Runtime.InitError" if i < len(created) else "ConfigError"
                msg = self.invoke_fails(sb, "c%d" % i, s3_event(src), kind)
                self.assertIn(want, msg)
        self.assertTrue(os.path.exists(src))
        self.invoke_fails(sb, "c%d" % len(created), {"hello": 1}, "ConfigError")
        sb.add_pipeline(invoke_pipeline("ok", [files_step("move", {"allow": [inbox],
                                                                  "to": inbox})]))
        self.stop(d)
        d = self.daemon(sb)
        msg = self.invoke_fails(sb, "ok", {"hello": 1}, "InvalidEvent")
        self.assertIn("the event names no file", msg)
        msg = self.invoke_fails(sb, "ok", s3_event(src), "ConfigError")
        self.assertIn("it is already in the destination folder", msg)
        self.stop(d)

    # -- the sample pipeline ----------------------------------------------
    def test_the_sample_pipeline_works_as_shipped(self):
        sb = self.new_sandbox()
        sample = self.copy_sample(sb, "archive.json")
        d = self.check_and_run_at_root(sb)
        inbox = sample["trigger"]["directory"]
        done = sb.path(sample["steps"][1]["config"]["to"])
        sb.drop(os.path.join(inbox, "report.csv"), "a,b\n1,2\n")
        sb.drop(os.path.join(inbox, "2024", "old.csv"), "old\n")
        self.wait_events(sb, 2, pipeline=sample["name"])
        sb.drop(os.path.join(inbox, "report.csv"), "a,b\n3,4\n")
        self.wait_events(sb, 3, pipeline=sample["name"])
        self.assertEqual(read(os.path.join(done, "report.csv")), b"a,b\n1,2\n")
        self.assertEqual(read(os.path.join(done, "report-1.csv")), b"a,b\n3,4\n")
        self.assertEqual(read(os.path.join(done, "2024", "old.csv")), b"old\n")
        self.assertEqual(os.listdir(sb.path(inbox)), ["2024"])
        rows = sb.db_rows("SELECT step, status FROM invocations WHERE pipeline = ? ORDER BY id",
                          (sample["name"],))
        self.assertEqual(sorted(r["step"] for r in rows), ["archive"] * 3 + ["sha256"] * 3)
        self.assertEqual({r["status"] for r in rows}, {"ok"})
        self.stop(d)


if __name__ == "__main__":
    harness.main()
