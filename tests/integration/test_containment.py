"""Hostile handlers and untrusted files (issue 21, items 9, 10, 13, 23):
what a handler starts dies with its worker; a handler that forks and exits is
reported as the exit it is; workers can run as another user and, with
"sandbox": true, in a PID namespace of their own, so they cannot signal the
daemon; idle workers killed from outside are reaped at once; pipeline files,
code folders, layers and plugins that another user could change are refused.

Fixture: tests/plugins/hostile.c. Its handlers append the pid (as the
machine's /proc sees it) of every process they start to the event's
"pidfile", so the test can check that each one is gone."""

import concurrent.futures
import grp
import json
import os
import pwd
import signal
import unittest

import harness
from test_isolation import (IsolationCase, all_pids, cpu_ticks, pipeline, proc_cmdline, proc_stat,
                            step, under_asan, workers_of)


def absent(pid):
    """True once pid is gone from /proc entirely: exited *and reaped*."""
    return not os.path.exists("/proc/%d" % pid)


def dead(pid):
    """True once pid no longer runs (gone, or a zombie)."""
    st = proc_stat(pid)
    return st is None or st[0] == "Z"


def read_pids(path):
    try:
        with open(path) as f:
            return [int(line) for line in f if line.strip()]
    except OSError:
        return []


class Containment(IsolationCase):

    def setUp(self):
        super().setUp()
        self.leftovers = []
        self.addCleanup(self.kill_recorded)

    def kill_recorded(self):
        """A failing test must not leave its fixture's processes behind."""
        for path in self.leftovers:
            for pid in read_pids(path):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def sandboxed_workers_skip_leak_checks(self):
        """LeakSanitizer cannot stop the world in a PID namespace whose /proc
        is the machine's (it finds its threads by the wrong pids): it dies
        with "LeakSanitizer has encountered a fatal error" at the exit of a
        sandboxed worker of a sanitizer build. Such tests check leaks in
        neither daemon nor workers (the other tests do). Call before
        starting the daemon: workers inherit its environment."""
        if not under_asan():
            return
        old = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (old + ":" if old else "") + "detect_leaks=0"
        self.addCleanup(lambda: os.environ.__setitem__("ASAN_OPTIONS", old) if old is not None
                        else os.environ.pop("ASAN_OPTIONS", None))

    def pidfile(self, sb, name):
        path = sb.path(name + ".pids")
        self.leftovers.append(path)
        return path

    def last_row(self, sb, name):
        rows = self.wait_rows(sb, name, 1)
        return rows[-1]

    def wait_all_dead(self, pids, what):
        self.wait_for(lambda: all(dead(p) for p in pids), timeout=10,
                      what=lambda: "%s to be killed (alive: %s)" % (
                          what, [p for p in pids if not dead(p)]))

    # -- item 9: kill the whole tree ----------------------------------------

    def test_fork_and_exit_is_reported_as_an_exit_and_its_child_dies(self):
        """The handler forks a child that sleeps for good and the worker
        exits 0: the child holds the worker's socket, which used to make the
        attempt a timeout after the full deadline, with the child left
        running. Now: crashed, "exited with status 0", child killed."""
        sb = self.sandbox()
        name = self.name("forkexit")
        pidfile = self.pidfile(sb, name)
        sb.add_pipeline(pipeline(name, [step("hostile.fork_exit", timeout_ms=600000)]))
        self.daemon(sb)
        rc, answer = self.invoke(sb, name, json.dumps({"pidfile": pidfile}))
        self.assertNotEqual(rc, 0, answer)
        row = self.last_row(sb, name)
        self.assertEqual(row["status"], "crashed", row)
        self.assertIn("the worker exited with status 0", row["error"])
        children = read_pids(pidfile)
        self.assertEqual(len(children), 1, "the fixture recorded its child")
        self.wait_all_dead(children, "the child the handler left")

    def test_fork_bomb_dies_with_its_worker_at_the_deadline(self):
        """A (bounded) fork bomb, children and grandchildren, then a hang:
        at the deadline every process of it is killed, and workers of any
        pipeline still start."""
        sb = self.sandbox()
        name, other = self.name("bomb"), self.name("other")
        pidfile = self.pidfile(sb, name)
        sb.add_pipeline(pipeline(name, [step("hostile.fork_bomb", timeout_ms=1500)]))
        sb.add_pipeline(pipeline(other, [step("hostile.whoami")]))
        self.daemon(sb)
        rc, answer = self.invoke(sb, name, json.dumps({"pidfile": pidfile, "n": 40}))
        row = self.last_row(sb, name)
        self.assertEqual(row["status"], "timeout", row)
        pids = read_pids(pidfile)
        self.assertGreaterEqual(len(pids), 40, "the bomb went off")
        self.wait_all_dead(pids, "the fork bomb's processes")
        self.invoke_ok(sb, other)

    def test_sandboxed_daemonized_child_dies_with_the_daemon(self):
        """With "sandbox": true the worker has a PID namespace of its own: a
        double-forked, setsid() daemon the handler started (outside the
        worker's process group) still dies when the daemon stops."""
        sb = self.sandbox()
        name = self.name("daemonize")
        pidfile = self.pidfile(sb, name)
        sb.add_pipeline(pipeline(name, [step("hostile.daemonize")], sandbox=True))
        self.sandboxed_workers_skip_leak_checks()
        d = self.daemon(sb)
        body = self.invoke_ok(sb, name, json.dumps({"pidfile": pidfile}))
        self.assertEqual(body, {"daemonized": True})
        pids = read_pids(pidfile)
        self.assertEqual(len(pids), 1)
        self.assertFalse(dead(pids[0]), "the daemonized child runs while its worker does")
        self.stop(d)
        self.wait_all_dead(pids, "the daemonized child")

    def test_sandboxed_fork_bomb_dies_with_its_worker(self):
        sb = self.sandbox()
        name = self.name("sbomb")
        pidfile = self.pidfile(sb, name)
        sb.add_pipeline(pipeline(name, [step("hostile.fork_bomb", timeout_ms=1500)],
                                 sandbox=True))
        self.sandboxed_workers_skip_leak_checks()
        self.daemon(sb)
        self.invoke(sb, name, json.dumps({"pidfile": pidfile, "n": 30}))
        self.assertEqual(self.last_row(sb, name)["status"], "timeout")
        pids = read_pids(pidfile)
        self.assertGreaterEqual(len(pids), 30)
        self.wait_all_dead(pids, "the fork bomb's processes")

    # -- item 10: identity and PID namespace --------------------------------

    def test_sandboxed_worker_cannot_signal_the_daemon(self):
        """kill(getppid(), SIGTERM) used to stop the daemon. In its PID
        namespace the worker's parent is the namespace's init (pid 1), which
        ignores it; the daemon is not visible at all."""
        sb = self.sandbox()
        name = self.name("killer")
        sb.add_pipeline(pipeline(name, [step("hostile.kill_parent")], sandbox=True))
        self.sandboxed_workers_skip_leak_checks()
        d = self.daemon(sb)
        body = self.invoke_ok(sb, name)
        self.assertEqual(body["ppid"], 1, body)
        who = self.invoke_ok(sb, name)  # the daemon still serves
        self.assertEqual(who["ppid"], 1)
        self.assertTrue(d.alive())
        self.assertNotIn("letting running handlers finish", d.log())

    @unittest.skipUnless(os.geteuid() == 0, "run_as needs root")
    def test_run_as_gives_workers_another_identity(self):
        """run_as "nobody": the worker runs as nobody, cannot signal the
        daemon (root) nor open its database for writing."""
        nobody = pwd.getpwnam("nobody")
        sb = self.sandbox({"run_as": "nobody"})
        who, killer, writer = self.name("who"), self.name("kill"), self.name("write")
        sb.add_pipeline(pipeline(who, [step("hostile.whoami")]))
        sb.add_pipeline(pipeline(killer, [step("hostile.kill_parent")]))
        sb.add_pipeline(pipeline(writer, [step("hostile.write_file")]))
        d = self.daemon(sb)
        body = self.invoke_ok(sb, who)
        self.assertEqual((body["uid"], body["gid"]), (nobody.pw_uid, nobody.pw_gid))
        body = self.invoke_ok(sb, killer)
        self.assertEqual(body["ppid"], d.pid())
        self.assertEqual(body["errno"], 1, "EPERM: %r" % body)
        body = self.invoke_ok(sb, writer, json.dumps({"path": sb.database}))
        self.assertEqual(body["errno"], 13, "EACCES: %r" % body)
        self.assertTrue(d.alive())

    @unittest.skipUnless(os.geteuid() == 0, "run_as needs root")
    def test_run_as_dynamic_gives_each_pipeline_a_uid_of_its_own(self):
        """run_as "dynamic": each pipeline's workers take a free uid of
        systemd's dynamic range (61184-65519), chosen from a hash of the
        pipeline's name, the same after a restart. They cannot signal the
        root daemon nor write its database; a Python handler still reads
        its code (the folders on the way let others through)."""
        sb = self.sandbox({"run_as": "dynamic"})
        os.chmod(sb.root, 0o711)  # mkdtemp's 0700: a worker of another uid could not pass
        code = sb.path("code")
        os.mkdir(code)
        with open(os.path.join(code, "who.py"), "w") as f:
            f.write("import os, tempfile\n"
                    "def handler(event, context):\n"
                    "    with tempfile.TemporaryFile() as t:\n"
                    "        t.write(b'x')\n"
                    "    return {'uid': os.getuid(), 'gid': os.getgid()}\n")
        who, other, killer, writer, py = (self.name(n) for n in ("who", "other", "kill", "write",
                                                                  "py"))
        sb.add_pipeline(pipeline(who, [step("hostile.whoami")]))
        sb.add_pipeline(pipeline(other, [step("hostile.whoami")]))
        sb.add_pipeline(pipeline(killer, [step("hostile.kill_parent")]))
        sb.add_pipeline(pipeline(writer, [step("hostile.write_file")]))
        sb.add_pipeline(pipeline(py, [{"name": "who", "handler": "who.handler",
                                       "runtime": "python3", "code": code}]))
        d = self.daemon(sb)
        body = self.invoke_ok(sb, who)
        uid = body["uid"]
        self.assertTrue(61184 <= uid <= 65519, body)
        self.assertEqual(body["gid"], uid)
        with self.assertRaises(KeyError):
            pwd.getpwuid(uid)
        self.assertNotEqual(self.invoke_ok(sb, other)["uid"], uid, "a uid per pipeline")
        body = self.invoke_ok(sb, killer)
        self.assertEqual((body["ppid"], body["errno"]), (d.pid(), 1), "EPERM: %r" % body)
        body = self.invoke_ok(sb, writer, json.dumps({"path": sb.database}))
        self.assertEqual(body["errno"], 13, "EACCES: %r" % body)
        body = self.invoke_ok(sb, py)
        self.assertTrue(61184 <= body["uid"] <= 65519 and body["uid"] == body["gid"], body)
        self.assertTrue(d.alive())
        self.stop(d)
        self.daemon(sb)
        self.assertEqual(self.invoke_ok(sb, who)["uid"], uid, "the same uid after a restart")

    def test_run_as_and_pids_are_checked(self):
        sb = self.sandbox()
        sb.add_pipeline(pipeline(self.name("bad"), [step("hostile.whoami")],
                                 run_as="no-such-user-here", pids=0))
        r = sb.cli("check")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('no user "no-such-user-here"', r.stdout + r.stderr)
        self.assertIn("pids", r.stdout + r.stderr)

    def test_busy_node_worker_dies_with_a_kill9_daemon(self):
        """Docs' known issue: a Node.js worker busy in a handler outlived a
        kill -9 of the daemon (Node cannot ask for a parent-death signal).
        Every worker now gets one before exec."""
        sb = self.sandbox()
        code = sb.path("code")
        os.mkdir(code)
        with open(os.path.join(code, "busy.js"), "w") as f:
            f.write("exports.spin = async () => { for (;;) {} };\n")
        name = self.name("spin")
        sb.add_pipeline(pipeline(name, [{"name": "spin", "handler": "busy.spin",
                                         "runtime": "nodejs", "code": code,
                                         "timeout_ms": 600000}]))
        d = self.daemon(sb)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(self.invoke, sb, name, "{}", 5000)
            def node_workers():
                # one read of each stat: a process may end between two
                return [p for p, st in ((p, proc_stat(p)) for p in all_pids())
                        if st and st[1] == d.pid()
                        and any(a.endswith(b"bootstrap.js") for a in proc_cmdline(p))]
            self.wait_for(lambda: node_workers() and cpu_ticks(node_workers()[0]) > 20,
                          what="the Node.js worker to spin in its handler")
            workers = node_workers()
            d.kill9()
            try:
                self.wait_all_dead(workers, "the busy Node.js worker")
            finally:
                for w in workers:
                    try:
                        os.kill(w, signal.SIGKILL)
                    except OSError:
                        pass

    # -- item 21: responses over the worker frame limit ---------------------

    def assert_too_large(self, sb, name):
        rc, answer = self.invoke(sb, name, json.dumps({"mb": "65"}))
        self.assertNotEqual(rc, 0, answer)
        row = self.last_row(sb, name)
        self.assertEqual(row["status"], "error", row)
        self.assertIn("the response is 68.2 MB; the largest a worker returns is 64 MiB",
                      row["error"])
        self.assertEqual(answer["errorType"], "Function.ResponseSizeTooLarge", answer)

    def test_response_over_the_frame_limit_says_its_size(self):
        """A C handler and a Python handler answering 65 MiB: the row says
        how large the response was and what the limit is (it used to say
        the worker broke the protocol, or exited with status 0); the worker
        stays and serves the next invocation."""
        sb = self.sandbox()
        code = sb.path("code")
        os.mkdir(code)
        with open(os.path.join(code, "big.py"), "w") as f:
            f.write("def handler(event, context):\n"
                    "    return 'x' * (int(event.get('mb', '1')) << 20)\n")
        c, py = self.name("bigc"), self.name("bigpy")
        # building and checking 65 MiB of JSON takes a loaded machine seconds:
        # the deadline is not what is tested here
        sb.add_pipeline(pipeline(c, [step("hostile.big_response", timeout_ms=50000)]))
        sb.add_pipeline(pipeline(py, [{"name": "big", "handler": "big.handler",
                                       "runtime": "python3", "code": code,
                                       "timeout_ms": 50000}]))
        self.daemon(sb)
        for name in (c, py):
            self.assert_too_large(sb, name)
            rc, answer = self.invoke(sb, name, json.dumps({"mb": "1"}))
            self.assertEqual(rc, 0, answer)

    # -- item 23: reap idle workers at once ---------------------------------

    def test_idle_worker_killed_from_outside_is_reaped_at_once(self):
        sb = self.sandbox()
        name = self.name("idle")
        sb.add_pipeline(pipeline(name, [step("hostile.whoami")]))
        d = self.daemon(sb)
        first = self.invoke_ok(sb, name)["host_pid"]
        self.assertEqual(workers_of(name, d.pid()), [first])
        os.kill(first, signal.SIGKILL)
        self.wait_for(lambda: absent(first), timeout=10,
                      what="the killed idle worker to be reaped (not left a zombie)")
        second = self.invoke_ok(sb, name)["host_pid"]
        self.assertNotEqual(second, first)

    # -- item 13: untrusted code and config ---------------------------------

    def test_pipeline_file_others_can_change_is_refused(self):
        """A 0666 pipeline file in a 0777 folder: refused with the path and
        the fix; the same file in a 0755 folder with mode 0644 loads."""
        sb = self.sandbox()
        name = self.name("open")
        path = sb.add_pipeline(pipeline(name, [step("hostile.whoami")]))
        os.chmod(sb.pipelines_dir, 0o777)
        os.chmod(path, 0o666)
        r = sb.cli("check")
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn("writable by other users", out)
        self.assertIn("chmod o-w", out)
        os.chmod(sb.pipelines_dir, 0o755)
        r = sb.cli("check")
        self.assertIn("chmod o-w %s" % path, r.stdout + r.stderr)
        os.chmod(path, 0o644)
        r = sb.cli("check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_plugin_symlinked_from_an_open_folder_is_refused(self):
        """A plugin symlinked (from a trusted folder on plugin_path) to a
        file in a 0777 folder: the check follows the link."""
        sb = self.sandbox()
        open_dir = sb.path("open")
        os.mkdir(open_dir)
        os.chmod(open_dir, 0o777)
        real = os.path.join(open_dir, "hostile.so")
        with open(os.path.join(os.environ["SLUICE_FIXTURE_DIR"], "hostile.so"), "rb") as src, \
                open(real, "wb") as dst:
            dst.write(src.read())
        links = sb.path("plugins")
        os.mkdir(links)
        os.symlink(real, os.path.join(links, "hostile.so"))
        sb.config["plugin_path"] = [links]
        sb.write_config()
        name = self.name("linked")
        sb.add_pipeline(pipeline(name, [step("hostile.whoami")]))
        r = sb.cli("check")
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn("refusing %s" % real, out)
        self.assertIn("chmod o-w %s" % open_dir, out)

    def test_layer_others_can_change_is_refused(self):
        """A layer is code the worker imports first: a layer folder writable
        by all is refused like a code folder, naming the path and the fix;
        once fixed, the pipeline loads."""
        sb = self.sandbox()
        layer = sb.path("layers", "common")
        os.makedirs(os.path.join(layer, "python"))
        os.chmod(layer, 0o777)
        name = self.name("layer")
        sb.add_pipeline(pipeline(name, [step("hostile.whoami")], layers=[layer]))
        r = sb.cli("check")
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn("layers[0]: refusing %s" % layer, out)
        self.assertIn("chmod o-w %s" % layer, out)
        os.chmod(layer, 0o755)
        r = sb.cli("check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_sticky_tmp_and_private_group_layouts_load(self):
        """The sandbox lives under /tmp (1777, sticky): fine, as StrictModes
        has it. A group-writable pipeline folder is refused unless the group
        holds only its owner."""
        sb = self.sandbox()
        name = self.name("ok")
        sb.add_pipeline(pipeline(name, [step("hostile.whoami")]))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        st = os.stat(sb.pipelines_dir)
        group = grp.getgrgid(st.st_gid)
        owner = pwd.getpwuid(st.st_uid)
        private = (not group.gr_mem and owner.pw_gid == st.st_gid) or group.gr_mem == [owner.pw_name]
        os.chmod(sb.pipelines_dir, 0o775)
        r = sb.cli("check")
        if private:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        else:
            self.assertIn("chmod g-w", r.stdout + r.stderr)


if __name__ == "__main__":
    harness.main()
