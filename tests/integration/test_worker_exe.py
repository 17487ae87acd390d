"""Which program C workers run (issue 6, cold starts): sluice-worker, built
beside sluice and linking none of the daemon's libraries (ZeroMQ, SQLite,
libmicrohttpd and theirs), so the dynamic loader has little to do at each
cold start; without it the daemon falls back to `sluice worker`, says so once
in its log, and everything works as before. Either way a worker's command
line is `PROGRAM worker PIPELINE`."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid

import harness
from harness import SluiceTestCase

INVOKE_TIMEOUT_MS = 60000
FALLBACK_LOG = "C workers run as `"
DAEMON_ONLY_LIBS = (b"libzmq", b"libsqlite3", b"libmicrohttpd", b"libgnutls", b"libstdc++")


def workers_of(pipeline, parent):
    """Live `PROGRAM worker PIPELINE` children of parent."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if (len(argv) >= 3 and argv[1] == b"worker" and argv[2] == pipeline.encode()
                and fields[0] != "Z" and int(fields[1]) == parent):
            out.append(int(d))
    return out


def mapped_files(pid):
    with open("/proc/%d/maps" % pid, "rb") as f:
        return {line.split()[-1] for line in f if len(line.split()) >= 6}


class WorkerExe(SluiceTestCase):

    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]

    def start(self, sluice_bin=None):
        """A daemon (of sluice_bin, default the build's) with two
        process-isolated echo pipelines; returns (sandbox, daemon, names)."""
        if sluice_bin:
            old = os.environ["SLUICE_BIN"]
            os.environ["SLUICE_BIN"] = sluice_bin
            self.addCleanup(os.environ.__setitem__, "SLUICE_BIN", old)
        sb = self.sandbox()
        names = ["exe%d_%s" % (i, self.tag) for i in (1, 2)]
        for name in names:
            sb.add_pipeline({"name": name, "trigger": {"zmq": {"topic": "unused." + name}},
                             "steps": [{"name": "echo", "handler": "echo.handler"}],
                             "concurrency": 1, "isolation": "process"})
            self.addCleanup(self.kill_workers, name)
        d = self.daemon(sb)
        return sb, d, names

    def kill_workers(self, name):
        for pid in workers_of(name, os.getpid()) + [
                p for d in self._daemons if d.proc for p in workers_of(name, d.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def invoke_ok(self, sb, name, event):
        r = sb.cli("invoke", name, json.dumps(event), "--timeout", str(INVOKE_TIMEOUT_MS),
                   timeout=INVOKE_TIMEOUT_MS / 1000 + 30)
        self.assertEqual(r.returncode, 0, "invoke %s: %s%s" % (name, r.stdout, r.stderr))
        return json.loads(r.stdout)

    def cold_starts(self, sb, name, n):
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = ?", (name,)) >= n,
                      what="%d invocation rows" % n)
        return [r["init_ms"] for r in sb.db_rows(
            "SELECT init_ms FROM invocations WHERE pipeline = ? ORDER BY id", (name,))]

    def test_c_workers_run_sluice_worker_without_the_daemons_libraries(self):
        sb, d, (name, _) = self.start()
        for i in range(2):
            self.assertEqual(self.invoke_ok(sb, name, {"n": i})["body"], {"n": i})
        pids = workers_of(name, d.pid())
        self.assertEqual(len(pids), 1, "one worker for concurrency 1")
        exe = os.readlink("/proc/%d/exe" % pids[0])
        want = os.path.join(os.path.dirname(os.path.realpath(harness.sluice_bin())),
                            "sluice-worker")
        self.assertEqual(exe, want)
        loaded = [f for f in mapped_files(pids[0]) if any(lib in f for lib in DAEMON_ONLY_LIBS)]
        self.assertEqual(loaded, [], "sluice-worker maps daemon-only libraries")
        init = self.cold_starts(sb, name, 2)
        self.assertTrue(init[0] is not None and init[0] > 0, init)
        self.assertIsNone(init[1], "the second invocation is warm")
        self.assertNotIn(FALLBACK_LOG, self.stop(d))

    def test_without_sluice_worker_the_daemon_runs_sluice_worker_and_says_so_once(self):
        alone = tempfile.mkdtemp(prefix="sluice-alone-")
        self.addCleanup(shutil.rmtree, alone, True)
        copy = os.path.join(alone, "sluice")
        shutil.copy2(os.path.realpath(harness.sluice_bin()), copy)
        sb, d, names = self.start(copy)
        for name in names:  # one worker each: two starts
            self.assertEqual(self.invoke_ok(sb, name, {"a": name})["body"], {"a": name})
            pids = workers_of(name, d.pid())
            self.assertEqual(len(pids), 1)
            self.assertEqual(os.readlink("/proc/%d/exe" % pids[0]), copy)
            self.assertEqual(self.cold_starts(sb, name, 1)[0] > 0, True)
        log = self.stop(d)
        self.assertEqual(log.count(FALLBACK_LOG), 1, log)
        self.assertIn(os.path.join(alone, "sluice-worker") + ": No such file or directory", log)

    def test_sluice_worker_by_hand_says_what_it_is(self):
        exe = os.path.join(os.path.dirname(os.path.realpath(harness.sluice_bin())),
                           "sluice-worker")
        r = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: sluice-worker worker PIPELINE", r.stderr)
        r = subprocess.run([exe, "worker", "x"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("expected an init frame on fd 3", r.stderr)


if __name__ == "__main__":
    harness.main()
