"""Process isolation (issue 4): handlers that crash, hang, break the worker
protocol or never get through init take down their worker, never the daemon
or the other pipelines; workers start cold once and then serve warm; plugin
files replaced on disk are picked up; limits apply to the workers; and no
worker outlives the daemon.

Fixtures: tests/plugins/crash.c (segv, abort, exit, hang, garbage_frame,
hog, pid), init_crash.c, ok.c, fail.c. Pipelines here have no trigger the
test fires: they are driven with `sluice invoke`, which answers when the run
is finished. Workers are found in /proc by their command line, `sluice worker
PIPELINE`, so pipeline names carry a per-test suffix."""

import concurrent.futures
import json
import os
import re
import shutil
import signal
import time
import uuid

import harness
from harness import SluiceTestCase, free_ports, step

INVOKE_TIMEOUT_MS = 60000       # `sluice invoke --timeout`: generous, the machine is shared
SLACK_S = 10.0                  # on top of a handler's deadline, for a loaded machine


# -- helpers --------------------------------------------------------------

def proc_stat(pid):
    """(state, ppid, utime+stime in ticks) of a process, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[11]) + int(fields[12])


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def workers_of(pipeline, parent=None):
    """Live (not zombie) `sluice worker PIPELINE` processes, optionally only
    the children of parent; sorted pids."""
    want = pipeline.encode()
    out = []
    for pid in all_pids():
        argv = proc_cmdline(pid)
        if len(argv) < 3 or argv[1] != b"worker" or argv[2] != want:
            continue
        st = proc_stat(pid)
        if st is None or st[0] == "Z":
            continue
        if parent is not None and st[1] != parent:
            continue
        out.append(pid)
    return sorted(out)


def zombie_children(parent):
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[1] == parent and st[0] == "Z":
            out.append(pid)
    return out


def cpu_ticks(pid):
    st = proc_stat(pid)
    return st[2] if st else 0


def blocked_in(pid, wchan, syscalls):
    """Is the process blocked in a system call: its wchan names wchan, or the
    number in /proc/PID/syscall is one of syscalls?"""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            if wchan in f.read():
                return True
        with open("/proc/%d/syscall" % pid) as f:
            return f.read().split()[0] in syscalls
    except (OSError, IndexError):
        return False


def in_nanosleep(pid):
    """Is the process blocked in (clock_)nanosleep, i.e. inside fail.slow?"""
    return blocked_in(pid, "nanosleep", ("35", "230"))   # x86-64 nanosleep, clock_nanosleep


def in_pause(pid):
    """Is the process blocked in pause(), i.e. inside crash.hang?"""
    return blocked_in(pid, "pause", ("34",))    # x86-64 pause


def under_asan():
    """Is the sluice binary built with AddressSanitizer? (Its leak checks
    need ptrace, which sandboxed workers refuse.)"""
    return harness.sanitizer() == "asan"


def version_of(path):
    """invocations.plugin_version for a file: "MTIME-SIZE-INODE"."""
    st = os.stat(path)
    return "%d.%09d-%d-%d" % (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9, st.st_size,
                              st.st_ino)


def pipeline(name, steps, **extra):
    """A pipeline on a zmq topic nobody publishes (tests use sluice invoke)."""
    p = {"name": name, "trigger": {"zmq": {"topic": "unused." + name}}, "steps": steps,
         "concurrency": 1, "isolation": "process"}
    p.update(extra)
    return p


class IsolationCase(SluiceTestCase):

    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]

    def name(self, base):
        """A pipeline name unique to this test (workers are found by it)."""
        return "%s_%s" % (base, self.tag)

    def sandbox(self, config=None):
        pull, router, http = free_ports(3)
        cfg = {"zmq": {"pull": "tcp://127.0.0.1:%d" % pull,
                       "router": "tcp://127.0.0.1:%d" % router},
               "http": {"listen": "127.0.0.1:%d" % http}}
        cfg.update(config or {})
        sb = super().sandbox(cfg)
        self.addCleanup(self.kill_leftover_workers)
        return sb

    def let_workers_segfault(self):
        """A sanitizer build catches SIGSEGV, prints a report (which the
        harness counts as a daemon problem) and exits 1; workers that
        segfault on purpose must die of the signal, as in a normal build.
        Call before starting the daemon: workers inherit its environment."""
        old = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (old + ":" if old else "") + "handle_segv=0"
        self.addCleanup(lambda: os.environ.__setitem__("ASAN_OPTIONS", old) if old is not None
                        else os.environ.pop("ASAN_OPTIONS", None))

    def kill_leftover_workers(self):
        """Whatever a failing test left behind must not outlive it."""
        for pid in all_pids():
            argv = proc_cmdline(pid)
            if len(argv) >= 3 and argv[1] == b"worker" and argv[2].endswith(
                    ("_" + self.tag).encode()):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def invoke(self, sb, name, event="{}", timeout_ms=INVOKE_TIMEOUT_MS):
        """`sluice invoke`: (exit status, answer as JSON or the raw text)."""
        r = sb.cli("invoke", name, event, "--timeout", str(timeout_ms),
                   timeout=timeout_ms / 1000 + 30)
        try:
            answer = json.loads(r.stdout)
        except ValueError:
            answer = r.stdout + r.stderr
        return r.returncode, answer

    def invoke_ok(self, sb, name, event="{}"):
        rc, answer = self.invoke(sb, name, event)
        self.assertEqual(rc, 0, "invoke %s should succeed: %r" % (name, answer))
        return answer["body"]

    def rows(self, sb, name, step_name=None):
        sql = "SELECT * FROM invocations WHERE pipeline = ?"
        params = [name]
        if step_name:
            sql += " AND step = ?"
            params.append(step_name)
        return sb.db_rows(sql + " ORDER BY id", params)

    def wait_rows(self, sb, name, n, step_name=None):
        """Invocation rows are written by the writer thread (group commit):
        wait for them rather than assume they are there with the answer."""
        self.wait_for(lambda: len(self.rows(sb, name, step_name)) >= n,
                      what="%d invocation rows of %s%s" % (n, name,
                                                          "/" + step_name if step_name else ""))
        return self.rows(sb, name, step_name)


# -- crashes ----------------------------------------------------------------

class Crashes(IsolationCase):

    CRASH_KINDS = [
        ("segv", r"killed by signal 11\b"),
        ("abort", r"killed by signal 6\b"),
        ("exit", r"exited with status 7\b"),
    ]

    def test_each_crash_kind_is_recorded_and_the_worker_respawned(self):
        """A victim pipeline runs crash.pid then the crashing handler in the
        same worker; a neighbour process pipeline and a thread pipeline must
        answer between every crash, the neighbour from the same warm worker."""
        sb = self.sandbox()
        neighbour = self.name("neighbour")
        threaded = self.name("threaded")
        victims = {kind: self.name("victim_" + kind) for kind, _ in self.CRASH_KINDS}
        sb.add_pipeline(pipeline(neighbour, [step("crash.pid")]))
        sb.add_pipeline(pipeline(threaded, [step("ok.info")], isolation="thread"))
        for kind, name in victims.items():
            sb.add_pipeline(pipeline(name, [step("crash.pid"), step("crash." + kind, "boom")]))
        self.let_workers_segfault()
        d = self.daemon(sb)

        neighbour_pid = self.invoke_ok(sb, neighbour)["pid"]
        for kind, pattern in self.CRASH_KINDS:
            name = victims[kind]
            for run in (1, 2):
                rc, answer = self.invoke(sb, name)
                self.assertEqual(rc, 1, "a crashed run fails: %r" % (answer,))
                self.assertEqual(answer.get("status"), "crashed", answer)
                self.assertEqual(answer.get("step"), "boom", answer)
                self.assertRegex(answer.get("errorMessage", ""), pattern)
                # the crashed worker is reaped, not left as a zombie
                self.wait_for(lambda: workers_of(name, d.pid()) == [],
                              what="the crashed worker of %s to be gone" % name)
                self.assertEqual(zombie_children(d.pid()), [], "no zombie worker")
                # the neighbours keep serving, the process one from the same worker
                self.assertEqual(self.invoke_ok(sb, neighbour)["pid"], neighbour_pid,
                                 "a crash elsewhere must not touch the neighbour's worker")
                self.assertEqual(self.invoke_ok(sb, threaded)["init_calls"], 1)
                d.check_alive()

            boom = self.wait_rows(sb, name, 2, "boom")
            self.assertEqual([r["status"] for r in boom], ["crashed", "crashed"])
            for r in boom:
                self.assertRegex(r["error"], pattern)
                self.assertIsNone(r["status_code"])
                self.assertEqual(r["attempt"], 1)
            pid_rows = self.wait_rows(sb, name, 2, "pid")
            self.assertEqual([r["status"] for r in pid_rows], ["ok", "ok"])
            # each run starts a fresh worker: its first invocation is a cold start
            self.assertTrue(all(r["init_ms"] is not None for r in pid_rows),
                            "the worker is respawned after the crash: %r" % pid_rows)
            events = sb.db_rows("SELECT state FROM events WHERE pipeline = ?", (name,))
            self.assertEqual([e["state"] for e in events], ["dead", "dead"])

        # the neighbour saw nothing but successes, from one worker
        nrows = self.rows(sb, neighbour)
        self.assertEqual({r["status"] for r in nrows}, {"ok"})
        self.assertEqual(sum(r["init_ms"] is not None for r in nrows), 1,
                         "one cold start for the neighbour")
        logs = sb.cli("logs", "--failed", "--limit", "100").stdout
        for kind, pattern in self.CRASH_KINDS:
            self.assertRegex(logs, r"%s/boom\s+#1 crashed .*%s" % (victims[kind], pattern))
        self.stop(d)

    def test_hang_times_out_and_the_worker_is_replaced(self):
        sb = self.sandbox()
        victim = self.name("hang")
        neighbour = self.name("neighbour")
        sb.add_pipeline(pipeline(victim, [step("crash.pid"),
                                          step("crash.hang", "boom", timeout_ms=300)]))
        sb.add_pipeline(pipeline(neighbour, [step("crash.pid")]))
        d = self.daemon(sb)
        neighbour_pid = self.invoke_ok(sb, neighbour)["pid"]

        for run in (1, 2):
            t0 = time.monotonic()
            rc, answer = self.invoke(sb, victim)
            elapsed = time.monotonic() - t0
            self.assertEqual(rc, 1, answer)
            self.assertEqual(answer.get("status"), "timeout", answer)
            self.assertEqual(answer.get("errorType"), "Sandbox.Timedout", answer)
            self.assertGreaterEqual(elapsed, 0.3)
            self.assertLess(elapsed, 0.3 + SLACK_S, "the deadline is enforced")
            self.wait_for(lambda: workers_of(victim, d.pid()) == [],
                          what="the hung worker to be killed")
            self.assertEqual(self.invoke_ok(sb, neighbour)["pid"], neighbour_pid)

        boom = self.wait_rows(sb, victim, 2, "boom")
        for r in boom:
            self.assertEqual(r["status"], "timeout")
            self.assertIn("300 ms", r["error"])
            self.assertGreaterEqual(r["duration_ms"], 300)
            self.assertLess(r["duration_ms"], 300 + SLACK_S * 1000)
        pid_rows = self.wait_rows(sb, victim, 2, "pid")
        self.assertEqual([r["status"] for r in pid_rows], ["ok", "ok"])
        self.assertTrue(all(r["init_ms"] is not None for r in pid_rows),
                        "the second run starts in a new worker")
        self.assertEqual(zombie_children(d.pid()), [])
        self.stop(d)

    def test_garbage_frame_is_a_protocol_error_and_kills_only_that_worker(self):
        sb = self.sandbox()
        victim = self.name("garbage")
        neighbour = self.name("neighbour")
        sb.add_pipeline(pipeline(victim, [step("crash.pid"), step("crash.garbage_frame", "boom")]))
        sb.add_pipeline(pipeline(neighbour, [step("crash.pid")]))
        d = self.daemon(sb)
        neighbour_pid = self.invoke_ok(sb, neighbour)["pid"]
        for run in (1, 2):
            rc, answer = self.invoke(sb, victim)
            self.assertEqual(rc, 1, answer)
            self.assertEqual(answer.get("status"), "crashed", answer)
            self.assertIn("protocol", answer.get("errorMessage", ""))
            self.assertEqual(self.invoke_ok(sb, neighbour)["pid"], neighbour_pid)
            d.check_alive()
        boom = self.wait_rows(sb, victim, 2, "boom")
        self.assertEqual([r["status"] for r in boom], ["crashed", "crashed"])
        self.assertTrue(all("protocol" in r["error"] for r in boom), boom)
        self.wait_for(lambda: workers_of(victim, d.pid()) == [],
                      what="the misbehaving worker to be killed")
        self.stop(d)

    def test_init_crash_is_backed_off_and_the_daemon_does_not_spin(self):
        sb = self.sandbox()
        victim = self.name("init_crash")
        neighbour = self.name("neighbour")
        sb.add_pipeline(pipeline(victim, [step("init_crash.handler")]))
        sb.add_pipeline(pipeline(neighbour, [step("crash.pid")]))
        self.let_workers_segfault()
        d = self.daemon(sb)

        for run in range(1, 5):
            rc, answer = self.invoke(sb, victim)
            self.assertEqual(rc, 1, answer)
            self.assertEqual(answer.get("status"), "crashed", answer)
            self.assertIn("signal 11", answer.get("errorMessage", ""))
            # the lane of the victim waits; the neighbour does not
            self.invoke_ok(sb, neighbour)

        # each failed start is logged with the back-off before the next one
        def backoff_lines():
            return [l for l in d.log().splitlines()
                    if victim in l and "next one starts after" in l]
        self.wait_for(lambda: len(backoff_lines()) >= 4, what="four back-off lines in the log")
        lines = backoff_lines()
        waits = [int(re.search(r"next one starts after (\d+) ms", l).group(1)) for l in lines]
        self.assertEqual(waits, [100, 200, 400, 800], lines)
        for l, n in zip(lines, range(1, 5)):
            self.assertIn("%d in a row" % n, l)
            self.assertIn("signal 11", l)

        # ... and honoured: a worker dies as soon as it starts (init), the
        # next run's worker only after the back-off, so the log lines are
        # at least the back-off apart
        at = [parse_iso_ms(l.split()[0]) for l in lines]
        for i, want in enumerate([100, 200, 400]):
            self.assertGreaterEqual(at[i + 1] - at[i], want,
                                    "worker %d died %d ms after worker %d, back-off %d ms"
                                    % (i + 2, at[i + 1] - at[i], i + 1, want))
        rows = self.wait_rows(sb, victim, 4)
        self.assertEqual({r["status"] for r in rows}, {"crashed"})

        # nothing restarts it while no event asks for it, and the daemon is idle
        ticks = cpu_ticks(d.pid())
        t0 = time.monotonic()
        self.assert_stays(lambda: workers_of(victim) == [], 1.5,
                          "no worker of the crashing plugin between events")
        used = (cpu_ticks(d.pid()) - ticks) / os.sysconf("SC_CLK_TCK")
        self.assertLess(used, 0.5 * (time.monotonic() - t0),
                        "the daemon burns CPU while the plugin is backed off")
        self.assertEqual(len(backoff_lines()), 4, "no start without an event")

        # under steady demand (20 events at once) starts stay paced by the
        # back-off (800 ms, then 1600 ms...), not one per event
        harness.publish_lines(self, sb, "unused." + victim, "{}\n" * 20)
        self.wait_for(lambda: sb.count("events WHERE pipeline = ?", (victim,)) == 24,
                      what="the 20 published events to be journaled")
        ticks = cpu_ticks(d.pid())
        t0 = time.monotonic()
        self.assert_stays(lambda: len(backoff_lines()) <= 4 + 3, 2.0,
                          "at most 3 worker starts in 2 s while backing off")
        used = (cpu_ticks(d.pid()) - ticks) / os.sysconf("SC_CLK_TCK")
        self.assertLess(used, 0.5 * (time.monotonic() - t0), "the daemon spins")
        self.assertGreaterEqual(len(backoff_lines()), 5, "it keeps trying, slowly")

        stats = sb.cli("stats")
        self.assertEqual(stats.returncode, 0, stats.stderr)
        m = re.search(r"^%s/handler\s+(\d+)\s+(\d+)" % re.escape(victim), stats.stdout, re.M)
        self.assertTrue(m, stats.stdout)
        self.assertEqual(int(m.group(1)), int(m.group(2)), "every invocation failed")
        self.assertGreaterEqual(int(m.group(1)), 5)
        self.assertRegex(stats.stdout, r"last error: .*signal 11")
        self.stop(d)


def parse_iso_ms(text):
    """'2026-11-23T10:15:00.126Z' -> milliseconds since the epoch."""
    import calendar
    base, frac = text.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac[:3])


# -- warm workers, concurrency, hot reload ------------------------------------

class Workers(IsolationCase):

    def test_cold_start_once_then_warm(self):
        sb = self.sandbox()
        name = self.name("info")
        sb.add_pipeline(pipeline(name, [step("ok.info", timeout_ms=5000)]))
        d = self.daemon(sb)
        bodies = [self.invoke_ok(sb, name) for _ in range(4)]
        self.assertEqual([b["init_calls"] for b in bodies], [1, 1, 1, 1],
                         "init runs once per worker, then it serves warm")
        for b in bodies:
            self.assertLessEqual(b["remaining_ms"], 5000)
            self.assertGreater(b["remaining_ms"], 5000 - 2000, "remaining_ms is accurate")
            self.assertEqual(b["pipeline"], name)
        self.assertEqual(len(workers_of(name, d.pid())), 1, "one warm worker stays")
        rows = self.wait_rows(sb, name, 4)
        self.assertIsNotNone(rows[0]["init_ms"], "the first invocation is a cold start")
        self.assertGreater(rows[0]["init_ms"], 0)
        self.assertEqual([r["init_ms"] for r in rows[1:]], [None, None, None])
        for r, b in zip(rows, bodies):
            self.assertEqual(r["request_id"], b["request_id"])
            self.assertEqual(r["status"], "ok")
            self.assertIsNotNone(r["max_memory_kb"], "peak memory is recorded")
            self.assertGreater(r["max_memory_kb"], 0)
            self.assertRegex(r["plugin_version"] or "", r"^\d+\.\d{9}-\d+-\d+$")
        ok_so = os.path.join(os.environ["SLUICE_FIXTURE_DIR"], "ok.so")
        self.assertEqual(rows[0]["plugin_version"], version_of(ok_so))
        # the handler's log line crossed the worker socket into the database
        self.wait_for(lambda: sb.count("logs WHERE request_id = ? AND message = 'ok.info ran'",
                                       (rows[0]["request_id"],)) == 1,
                      what="the handler's log line in logs")
        stats = sb.cli("stats").stdout
        m = re.search(r"^%s/info\s+(\d+)\s+(\d+)(?:\s+[\d.]+){3}\s+(\d+)" % re.escape(name),
                      stats, re.M)
        self.assertTrue(m, stats)
        self.assertEqual((m.group(1), m.group(2), m.group(3)), ("4", "0", "1"),
                         "4 invocations, 0 errors, 1 cold start\n" + stats)
        self.stop(d)

    def test_concurrency_n_runs_up_to_n_workers(self):
        sb = self.sandbox()
        name = self.name("wide")
        # fail.slow sleeps 300 ms and answers nothing; crash.pid then names its worker
        sb.add_pipeline(pipeline(name, [step("fail.slow"), step("crash.pid")], concurrency=3))
        d = self.daemon(sb)
        seen_workers = set()
        with concurrent.futures.ThreadPoolExecutor(9) as pool:
            futures = [pool.submit(self.invoke, sb, name) for _ in range(9)]
            while not all(f.done() for f in futures):
                now = workers_of(name, d.pid())
                self.assertLessEqual(len(now), 3, "at most concurrency workers at once")
                seen_workers.update(now)
                time.sleep(harness.POLL_S)
            results = [f.result() for f in futures]
        for rc, answer in results:
            self.assertEqual(rc, 0, answer)
        pids = {answer["body"]["pid"] for _, answer in results}
        self.assertLessEqual(len(pids), 3, pids)
        self.assertGreaterEqual(len(pids), 2, "overlapping runs use several workers: %r" % pids)
        self.assertTrue(pids <= seen_workers | set(workers_of(name, d.pid())), (pids,
                                                                                 seen_workers))
        self.assertNotIn(d.pid(), pids)
        self.wait_rows(sb, name, 9, "pid")
        rows = self.rows(sb, name)
        self.assertEqual(sum(r["init_ms"] is not None for r in rows), len(pids),
                         "one cold start per worker (on its first invocation, step 1)")
        self.stop(d)

    def test_replaced_plugin_file_is_picked_up_by_a_new_worker(self):
        sb = self.sandbox()
        live = sb.path("live-plugins")
        os.mkdir(live, 0o755)
        fixtures = os.environ["SLUICE_FIXTURE_DIR"]
        for so in ("crash.so", "fail.so"):
            shutil.copy2(os.path.join(fixtures, so), os.path.join(live, so))
        sb.config["plugin_path"] = [live] + harness.plugin_dirs()
        sb.write_config()
        name = self.name("live")
        slow = self.name("live_slow")
        sb.add_pipeline(pipeline(name, [step("crash.pid")]))
        sb.add_pipeline(pipeline(slow, [step("fail.slow"), step("crash.pid")]))
        d = self.daemon(sb)

        def replace(so):
            tmp = os.path.join(live, "." + so + ".new")
            shutil.copyfile(os.path.join(fixtures, so), tmp)
            os.chmod(tmp, 0o755)
            os.rename(tmp, os.path.join(live, so))   # a new inode, as an install does

        v1 = version_of(os.path.join(live, "crash.so"))
        p1 = self.invoke_ok(sb, name)["pid"]
        self.assertEqual(self.invoke_ok(sb, name)["pid"], p1, "warm")
        replace("crash.so")
        v2 = version_of(os.path.join(live, "crash.so"))
        self.assertNotEqual(v1, v2)
        p2 = self.invoke_ok(sb, name)["pid"]
        self.assertNotEqual(p2, p1, "a new worker loads the new file")
        self.assertEqual(self.invoke_ok(sb, name)["pid"], p2, "and then serves warm")
        self.wait_for(lambda: workers_of(name, d.pid()) == [p2],
                      what="the old worker to be stopped")
        self.assertIsNone(proc_stat(p1), "the old worker is reaped")
        rows = self.wait_rows(sb, name, 4)
        self.assertEqual([r["plugin_version"] for r in rows], [v1, v1, v2, v2])
        self.assertEqual([r["init_ms"] is not None for r in rows], [True, False, True, False])
        self.assertIn("a plugin file changed on disk; recycling a worker", d.log())

        # an invocation in flight while its file is replaced finishes on the old one
        self.invoke_ok(sb, slow)                      # a warm worker with the old file
        f_old = version_of(os.path.join(live, "fail.so"))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            running = pool.submit(self.invoke, sb, slow)
            caught = self.wait_for(
                lambda: "sleeping" if any(in_nanosleep(w) for w in workers_of(slow, d.pid()))
                else "finished" if running.done() else None,
                what="the second run of %s to be inside fail.slow" % slow)
            replace("fail.so")
            rc, answer = running.result()
        self.assertEqual(rc, 0, "the run in flight during the replacement succeeds: %r"
                         % (answer,))
        f_new = version_of(os.path.join(live, "fail.so"))
        self.invoke_ok(sb, slow)
        slow_rows = self.wait_rows(sb, slow, 3, "slow")
        self.assertEqual(slow_rows[0]["plugin_version"], f_old)
        if caught == "sleeping":
            self.assertEqual(slow_rows[1]["plugin_version"], f_old,
                             "the attempt in flight ran (and is recorded) on the old file")
            self.assertIsNone(slow_rows[1]["init_ms"])
        self.assertEqual(slow_rows[2]["plugin_version"], f_new)
        self.assertEqual({r["status"] for r in self.rows(sb, slow)}, {"ok"})
        self.stop(d)


# -- limits, thread isolation --------------------------------------------------

class Limits(IsolationCase):

    def test_memory_limit_fails_the_hog_cleanly(self):
        if harness.sanitizer():
            self.skipTest("RLIMIT_AS cannot apply under a sanitizer (it reserves terabytes "
                          "of address space for its shadow memory)")
        sb = self.sandbox()
        hog = self.name("hog")
        neighbour = self.name("neighbour")
        sb.add_pipeline(pipeline(hog, [step("crash.hog", config={"mb": 200})], memory_mb=64))
        sb.add_pipeline(pipeline(neighbour, [step("crash.pid")]))
        d = self.daemon(sb)
        for run in (1, 2):
            rc, answer = self.invoke(sb, hog)
            self.assertEqual(rc, 1, "200 MB cannot fit in 64 MB: %r" % (answer,))
            self.assertIn(answer.get("status"), ("error", "crashed"), answer)
            self.invoke_ok(sb, neighbour)
            d.check_alive()
        rows = self.wait_rows(sb, hog, 2)
        for r in rows:
            self.assertIn(r["status"], ("error", "crashed"))
            self.assertTrue(r["error"], "the failure says why")
        pids = workers_of(hog, d.pid())
        for pid in pids:   # the limit is the worker's, not the daemon's
            self.assertEqual(limit_of(pid, "Max address space"), (64 << 20, 64 << 20))
        self.assertNotEqual(limit_of(d.pid(), "Max address space")[0], 64 << 20)
        self.stop(d)

    def test_peak_memory_is_the_workers_peak_rss(self):
        sb = self.sandbox()
        name = self.name("mem")
        sb.add_pipeline(pipeline(name, [step("ok.info")]))
        d = self.daemon(sb)
        self.invoke_ok(sb, name)
        row = self.wait_rows(sb, name, 1)[0]
        pids = workers_of(name, d.pid())
        self.assertEqual(len(pids), 1)
        hwm = status_kb(pids[0], "VmHWM")
        self.assertIsNotNone(row["max_memory_kb"])
        # getrusage's ru_maxrss of the worker, taken just before its answer:
        # its high-water mark, which only grows after that
        self.assertGreater(row["max_memory_kb"], 0)
        self.assertLessEqual(row["max_memory_kb"], hwm)
        self.assertGreaterEqual(row["max_memory_kb"], hwm // 2, (row["max_memory_kb"], hwm))
        self.stop(d)

    def test_cpu_and_open_file_limits_apply_to_workers(self):
        sb = self.sandbox()
        name = self.name("limited")
        sb.add_pipeline(pipeline(name, [step("ok.info")], cpu_seconds=5, max_open_files=64))
        d = self.daemon(sb)
        self.invoke_ok(sb, name)
        pids = workers_of(name, d.pid())
        self.assertEqual(len(pids), 1)
        self.assertEqual(limit_of(pids[0], "Max cpu time"), (5, 6))
        self.assertEqual(limit_of(pids[0], "Max open files"), (64, 64))
        self.assertNotEqual(limit_of(d.pid(), "Max open files"), (64, 64))
        self.stop(d)

    def test_thread_isolation_runs_in_the_daemon(self):
        sb = self.sandbox()
        info = self.name("tinfo")
        pid = self.name("tpid")
        sb.add_pipeline(pipeline(info, [step("ok.info", timeout_ms=5000)], isolation="thread"))
        sb.add_pipeline(pipeline(pid, [step("crash.pid")], isolation="thread"))
        d = self.daemon(sb)
        bodies = [self.invoke_ok(sb, info) for _ in range(3)]
        self.assertEqual([b["init_calls"] for b in bodies], [1, 1, 1])
        for b in bodies:
            self.assertGreater(b["remaining_ms"], 5000 - 2000)
            self.assertLessEqual(b["remaining_ms"], 5000)
        self.assertEqual(self.invoke_ok(sb, pid)["pid"], d.pid(), "in the daemon's process")
        self.assertEqual(workers_of(info) + workers_of(pid), [], "no worker process")
        rows = self.wait_rows(sb, info, 3)
        self.assertIsNotNone(rows[0]["init_ms"])
        self.assertEqual([r["init_ms"] for r in rows[1:]], [None, None])
        self.assertEqual({r["status"] for r in rows}, {"ok"})
        self.assertEqual({r["max_memory_kb"] for r in rows}, {None},
                         "no worker, no per-worker peak")
        self.stop(d)


def status_kb(pid, field):
    """A "kB" field of /proc/PID/status (VmHWM, VmRSS...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def limit_of(pid, label):
    """(soft, hard) of a /proc/PID/limits line, as ints (None: unlimited)."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith(label):
                parts = line[len(label):].split()
                conv = lambda v: None if v == "unlimited" else int(v)
                return conv(parts[0]), conv(parts[1])
    raise AssertionError("no %r in /proc/%d/limits" % (label, pid))


# -- life cycle ------------------------------------------------------------

class LifeCycle(IsolationCase):

    def test_sigterm_while_handlers_run_exits_0_without_leftover_workers(self):
        sb = self.sandbox()
        slow = self.name("slow")
        hang = self.name("hang")
        sb.add_pipeline(pipeline(slow, [step("fail.slow")]))
        sb.add_pipeline(pipeline(hang, [step("crash.hang", timeout_ms=1500)]))
        d = self.daemon(sb)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            # the clients wait 15 s at most: the daemon is gone well before
            runs = [pool.submit(self.invoke, sb, slow, "{}", 15000),
                    pool.submit(self.invoke, sb, hang, "{}", 15000)]
            self.wait_for(lambda: workers_of(slow, d.pid()) and workers_of(hang, d.pid()),
                          what="both handlers to be running in workers")
            workers = workers_of(slow, d.pid()) + workers_of(hang, d.pid())
            t0 = time.monotonic()
            self.stop(d, timeout=1.5 + 30)
            took = time.monotonic() - t0
            answers = [f.result() for f in runs]
        self.assertLess(took, 1.5 + SLACK_S, "the drain is bounded by the handlers' deadlines")
        for w in workers:
            self.assertIsNone(proc_stat(w), "worker %d outlived the daemon" % w)
        self.assertEqual(workers_of(slow) + workers_of(hang), [])
        # the slow run finished or stays pending for the next start; never lost
        for name in (slow, hang):
            states = [e["state"] for e in
                      sb.db_rows("SELECT state FROM events WHERE pipeline = ?", (name,))]
            self.assertEqual(len(states), 1, name)
        slow_state = sb.db_value("SELECT state FROM events WHERE pipeline = ?", (slow,))
        self.assertIn(slow_state, ("done", "pending"))
        # whoever waits for a run the drain finished (or interrupted) gets an
        # answer before the daemon exits, not silence until its own timeout
        for (rc, answer), name in zip(answers, (slow, hang)):
            self.assertNotEqual(rc, 3, "sluice invoke %s got no answer: %r (answers: %r)"
                                % (name, answer, answers))
        if slow_state == "done":
            self.assertEqual(answers[0][0], 0, answers[0])

    def test_sigterm_during_a_back_off_leaves_the_event_pending(self):
        """An event whose attempt waits out the back-off when SIGTERM comes
        never ran: it stays pending for the next start (reliability.md:
        "an event that is waiting for a retry, or would start one, is not
        retried: it stays pending"), it is not failed and dead-lettered."""
        sb = self.sandbox()
        victim = self.name("init_crash")
        sb.add_pipeline(pipeline(victim, [step("init_crash.handler")],
                                 on_failure={"directory": "dead"}))
        self.let_workers_segfault()
        d = self.daemon(sb)
        for run in range(5):        # 0 + 100 + 200 + 400 + 800 ms of back-off
            self.assertEqual(self.invoke(sb, victim)[0], 1)
        self.wait_for(lambda: "5 in a row; the next one starts after 1600 ms" in d.log(),
                      what="the fifth failure, with a 1600 ms back-off")
        pub = sb.cli("publish", "unused." + victim, '{"n": 6}')
        self.assertEqual(pub.returncode, 0, pub.stderr)
        self.wait_for(lambda: sb.count("events WHERE pipeline = ? AND state = 'pending'",
                                       (victim,)) == 1,
                      what="the sixth event to be journaled")
        self.stop(d)                 # well within the 1600 ms wait
        ev = sb.db_rows("SELECT state, attempts, error FROM events WHERE pipeline = ? "
                        "ORDER BY id DESC LIMIT 1", (victim,))[0]
        self.assertEqual(ev["state"], "pending",
                         "the event that waited for a worker was not run, yet: %r; its "
                         "attempts: %r" % (ev, sb.db_rows(
                             "SELECT status, error FROM invocations WHERE pipeline = ? "
                             "ORDER BY id DESC LIMIT 1", (victim,))))
        self.assertFalse(os.path.isdir(sb.path("dead")) and len(os.listdir(sb.path("dead"))) > 5,
                         "no dead letter for the interrupted event")

    def test_kill9_of_the_daemon_leaves_no_worker_behind(self):
        """Issue 4: "no zombie or orphaned worker after any exit, including
        the daemon's own crash (workers notice their parent is gone and
        exit)" -- an idle warm worker and one busy in a handler."""
        sb = self.sandbox()
        idle = self.name("idle")
        hang = self.name("busy")
        sb.add_pipeline(pipeline(idle, [step("ok.info")]))
        sb.add_pipeline(pipeline(hang, [step("crash.hang", timeout_ms=60000)]))
        d = self.daemon(sb)
        self.invoke_ok(sb, idle)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(self.invoke, sb, hang, "{}", 3000)
            self.wait_for(lambda: any(in_pause(w) for w in workers_of(hang, d.pid())),
                          what="the busy worker to be inside crash.hang")
            workers = workers_of(idle, d.pid()) + workers_of(hang, d.pid())
            self.assertEqual(len(workers), 2)
            d.kill9()
            try:
                self.wait_for(lambda: all(proc_stat(w) is None or proc_stat(w)[0] == "Z"
                                          for w in workers), timeout=10,
                              what=lambda: "the workers %s to exit after the daemon's kill -9 "
                              "(still alive: %s)" % (workers, [w for w in workers
                                                               if proc_stat(w)]))
            finally:
                self.kill_leftover_workers()


if __name__ == "__main__":
    harness.main()
