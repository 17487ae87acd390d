"""natsserver.py - real `nats-server -js` processes for the nats tests: each on free loopback
ports with its JetStream store in the test's own temp folder, killed at the end whatever
happens (the test registers stop() as a cleanup). A cluster is three of them with routes
between them."""

import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.request

import harness

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def available():
    return os.access(NATS_SERVER, os.X_OK)


def _listening(port):
    s = socket.socket()
    try:
        s.settimeout(0.2)
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class NatsServer:
    """One nats-server -js; routes (a list of cluster ports) make it a cluster member."""

    def __init__(self, root, name="n1", cluster_port=None, routes=None):
        self.root = root
        self.name = name
        self.port = harness.free_port()
        self.monitor_port = harness.free_port()
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.store = os.path.join(root, "nats-" + name)
        self.log_path = os.path.join(root, "nats-%s.log" % name)
        self.proc = None

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self, wait=True):
        os.makedirs(self.store, exist_ok=True)
        argv = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.store,
                "-n", self.name, "-m", str(self.monitor_port)]
        if self.cluster_port:
            argv += ["--cluster_name", "sluice-test",
                     "--cluster", "nats://127.0.0.1:%d" % self.cluster_port,
                     "--routes", ",".join("nats://127.0.0.1:%d" % p for p in self.routes)]
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log)
        if wait:
            harness.wait_for(lambda: _listening(self.port) or self.proc.poll() is not None,
                             what="nats-server %s to listen on %d" % (self.name, self.port))
            if self.proc.poll() is not None:
                raise AssertionError("nats-server exited: %s" % self.log())
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()
        self.proc = None


def raw_publish(port, subject, body):
    """A core NATS publish of raw bytes (no JSON check, no JetStream ack), as any producer
    may send: the stream stores it all the same. Waits for the server's PONG."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()  # INFO
        s.sendall(b'CONNECT {"verbose":false}\r\nPUB %s %d\r\n%s\r\nPING\r\n'
                  % (subject.encode(), len(body), body))
        while not f.readline().startswith(b"PONG"):
            pass


def stream_leader(servers, stream):
    """The name of the server leading stream (None while there is none), as the
    monitoring endpoint of any live server reports it."""
    for s in servers:
        if not s.proc or s.proc.poll() is not None:
            continue
        try:
            url = "http://127.0.0.1:%d/jsz?accounts=true&streams=true" % s.monitor_port
            with urllib.request.urlopen(url, timeout=5) as r:
                jsz = json.load(r)
        except (OSError, ValueError):
            continue
        for acc in jsz.get("account_details") or []:
            for st in acc.get("stream_detail") or []:
                if st.get("name") == stream and (st.get("cluster") or {}).get("leader"):
                    return st["cluster"]["leader"]
    return None


def cluster(root):
    """Three servers routed to each other (not started)."""
    ports = [harness.free_port() for _ in range(3)]
    return [NatsServer(root, "n%d" % (i + 1), cluster_port=ports[i],
                       routes=[p for k, p in enumerate(ports) if k != i])
            for i in range(3)]
