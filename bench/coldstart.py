#!/usr/bin/env python3
"""C worker cold start (init_ms) under each isolation setting, in a loop:
every invocation of crash.exit ends its worker, so the next one is a cold
start. Prints the median and range of init_ms per setting.

    SLUICE_FIXTURE_DIR=build/tests/plugins python3 bench/coldstart.py build/sluice [N]
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time


def run(sluice, n, extra):
    root = tempfile.mkdtemp(prefix="sluice-cold-")
    os.mkdir(os.path.join(root, "pipelines"))
    cfg = {"state_dir": "var", "database": "var/sluice.db", "pipelines_dir": "pipelines",
           "plugin_path": [os.environ["SLUICE_FIXTURE_DIR"]], "workers": 1,
           "zmq": {"pull": "ipc://%s/pull" % root, "router": "ipc://%s/router" % root}}
    with open(os.path.join(root, "sluice.json"), "w") as f:
        json.dump(cfg, f)
    p = {"name": "cold", "trigger": {"zmq": {"topic": "cold."}}, "concurrency": 1,
         "steps": [{"name": "s", "handler": "crash.exit"}]}
    p.update(extra)
    with open(os.path.join(root, "pipelines", "cold.json"), "w") as f:
        json.dump(p, f)
    conf = os.path.join(root, "sluice.json")
    d = subprocess.Popen([sluice, "run", "-c", conf], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        for _ in range(n):
            subprocess.run([sluice, "invoke", "-c", conf, "cold", "{}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        con = sqlite3.connect(os.path.join(root, "var", "sluice.db"))
        v = sorted(r[0] for r in con.execute(
            "SELECT init_ms FROM invocations WHERE init_ms IS NOT NULL"))
        con.close()
    finally:
        d.terminate()
        d.wait()
        subprocess.run(["rm", "-rf", root])
    return v


def main():
    sluice = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    for label, extra in (("process", {}), ("process, sandbox", {"sandbox": True})):
        v = run(sluice, n, extra)
        if v:
            print("%-18s init_ms median %.3f  min %.3f  max %.3f  (n=%d)" % (
                label, v[len(v) // 2], v[0], v[-1], len(v)))


if __name__ == "__main__":
    main()
