#!/usr/bin/python3
"""Summarise a bench/run.sh results folder: median, min and max over the
rounds for every figure, and the ratios the issue sets targets for, each
ratio taken round by round (figures of the same round were measured minutes
apart at most) and then summarised the same way.

    summarize.py RESULTS_DIR [--markdown]
"""
import os
import statistics
import sys

RES = sys.argv[1]
MD = "--markdown" in sys.argv


def load(measure, variant):
    """{round: {key: value}} for one contender."""
    d = os.path.join(RES, measure, variant)
    out = {}
    if not os.path.isdir(d):
        return out
    for name in sorted(os.listdir(d)):
        if not name.startswith("r") or not name.endswith(".txt"):
            continue
        kv = {}
        with open(os.path.join(d, name)) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    try:
                        kv[k] = float(v)
                    except ValueError:
                        kv[k] = v
        out[int(name[1:-4])] = kv
    return out


def values(measure, variant, key):
    return [kv[key] for _, kv in sorted(load(measure, variant).items())
            if isinstance(kv.get(key), float)]


def ratios(m1, v1, k1, m2, v2, k2, fn=None):
    """Per-round ratio a/b (or fn(a, b))."""
    a, b = load(m1, v1), load(m2, v2)
    out = []
    for r in sorted(set(a) & set(b)):
        x, y = a[r].get(k1), b[r].get(k2)
        if isinstance(x, float) and isinstance(y, float) and y != 0:
            out.append(fn(x, y) if fn else x / y)
    return out


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if unit == "%":
        return "%.0f%%" % (v * 100)
    if unit == "x":
        return "%.2f×" % v if v < 10 else "%.1f×" % v
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v if abs(v) >= 1 else "%.3f" % v


def stats(vs, unit=""):
    if not vs:
        return ["n/a", "", "", "0"]
    return [fmt(statistics.median(vs), unit), fmt(min(vs), unit), fmt(max(vs), unit), str(len(vs))]


def table(title, header, rows):
    if MD:
        print("\n#### " + title + "\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
        for r in rows:
            print("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
        return
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("\n" + title)
    print("  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                           for i, (h, w) in enumerate(zip(header, widths))))
    for r in rows:
        print("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))


H = ["", "median", "min", "max", "runs"]
HT = ["ratio (same round)", "median", "min", "max", "runs", "target", "met?"]


def verdict(vs, target, higher_is_better=True):
    if not vs or target is None:
        return ""
    m = statistics.median(vs)
    return "yes" if (m >= target if higher_is_better else m <= target) else "NO"


def ratio_row(label, vs, unit, target=None, higher=True, target_text=""):
    return [label] + stats(vs, unit) + [target_text, verdict(vs, target, higher)]


def vs_peer(m, label, key, peer, unit, targets=None, higher=True, suffix=""):
    """The same ratio for sluice thread and process against one peer: label
    has %s for the isolation; targets maps it to its target (None: none)."""
    rows = []
    for iso in ("thread", "process"):
        t = (targets or {}).get(iso)
        text = "" if t is None else "%s %g%s" % (">=" if higher else "<=", t, unit.replace("x", "×"))
        rows.append(ratio_row(label % iso, ratios(m, "sluice_" + iso + suffix, key, m, peer, key), unit,
                              t, higher, text))
    return rows


def machine():
    info = {}
    p = os.path.join(RES, "machine.txt")
    if os.path.exists(p):
        for line in open(p):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                info[k] = v
    return info


def zmq_section(m, label):
    if not os.path.isdir(os.path.join(RES, m)):
        return
    names = [("ceiling_inv", "SQLite ceiling: invocations row only, batched (C)"),
             ("ceiling_full", "SQLite, all sluice writes per event (journal+row+finish), batched (C)"),
             ("ceiling_merged", "SQLite, sluice's writes under a flood (journal row written done + row; "
                                "its WAL writer; synchronous=NORMAL), batched (C)"),
             ("raw_pushpull", "raw libzmq PUSH->PULL"),
             ("sluice_thread", "sluice, isolation thread, durability power (default)"),
             ("sluice_process", "sluice, isolation process, durability power (default)"),
             ("sluice_thread_dproc", "sluice, isolation thread, durability process"),
             ("sluice_process_dproc", "sluice, isolation process, durability process"),
             ("python_peer", "Python PULL script (same rows, same indexes)"),
             ("python_naive", "naive Python PULL script (json.loads, no-op, one row, no index)"),
             ("c_naive", "naive C PULL loop (cJSON, no-op, one row, no index)")]
    n = values(m, "sluice_thread", "count")
    rows = [[name] + stats(values(m, v, "rate")) for v, name in names]
    table("%s: events/s until the last row is durable (%s events per run)" %
          (label, fmt(n[0]) if n else "?"), H, rows)
    rows = [
        ratio_row("sluice thread / SQLite ceiling",
                  ratios(m, "sluice_thread", "rate", m, "ceiling_inv", "rate"), "%", 0.5, True, ">= 50%"),
        ratio_row("sluice process / SQLite ceiling",
                  ratios(m, "sluice_process", "rate", m, "ceiling_inv", "rate"), "%", 0.25, True, ">= 25%"),
    ]
    for dur, suffix in (("process", "_dproc"), ("power", "")):
        rows += vs_peer(m, "sluice %%s / naive Python script (durability %s)" % dur, "rate",
                        "python_naive", "x", {"thread": 1.5, "process": 1}, suffix=suffix)
        rows += vs_peer(m, "CPU/event, sluice %%s / naive Python script (durability %s)" % dur,
                        "cpu_per_event_us", "python_naive", "x", {"thread": 1}, False, suffix)
    rows += [
        ratio_row("sluice thread / naive C loop",
                  ratios(m, "sluice_thread", "rate", m, "c_naive", "rate"), "%"),
        ratio_row("sluice thread / Python script doing sluice's work",
                  ratios(m, "sluice_thread", "rate", m, "python_peer", "rate"), "x"),
        ratio_row("sluice process / Python script doing sluice's work",
                  ratios(m, "sluice_process", "rate", m, "python_peer", "rate"), "x"),
        ratio_row("sluice thread / all-writes ceiling",
                  ratios(m, "sluice_thread", "rate", m, "ceiling_full", "rate"), "%"),
        ratio_row("sluice thread / raw PUSH->PULL",
                  ratios(m, "sluice_thread", "rate", m, "raw_pushpull", "rate"), "%"),
        ratio_row("all-writes ceiling / row-only ceiling",
                  ratios(m, "ceiling_full", "rate", m, "ceiling_inv", "rate"), "%"),
        ratio_row("sluice's flood writes alone (C) / naive Python script",
                  ratios(m, "ceiling_merged", "rate", m, "python_naive", "rate"), "x"),
        ratio_row("CPU/event, sluice's flood writes alone (C) / naive Python script",
                  ratios(m, "ceiling_merged", "cpu_per_event_us", m, "python_naive",
                         "cpu_per_event_us"), "x"),
    ]
    table("%s: ratios" % label, HT, rows)
    rows = []
    for v, name in (("sluice_thread_dproc", "thread, durability process"),
                    ("sluice_process_dproc", "process, durability process")):
        rows.append(["CPU per event, %s (µs; daemon and its workers)" % name] +
                    stats(values(m, v, "cpu_per_event_us")))
    for v, name in (("sluice_thread", "thread"), ("sluice_process", "process")):
        rows.append(["CPU per event, %s (µs; daemon and its workers)" % name] +
                    stats(values(m, v, "cpu_per_event_us")))
        rows.append(["RSS idle, %s (kB)" % name] + stats(values(m, v, "rss_idle_kb")))
        rows.append(["RSS after 10%% of the events, %s (kB)" % name] + stats(values(m, v, "rss_warm_kb")))
        rows.append(["RSS after all events, %s (kB)" % name] + stats(values(m, v, "rss_end_kb")))
        rows.append(["RSS peak, %s (kB)" % name] + stats(values(m, v, "rss_max_kb")))
        rows.append(["RSS at rest 1.5 s after the last event, %s (kB)" % name] +
                    stats(values(m, v, "rss_rest_kb")))
        rows.append(["  of which anonymous at the end, %s (kB)" % name] + stats(values(m, v, "rss_anon_end_kb")))
    rows.append(["CPU per event, Python script doing sluice's work (µs)"] +
                stats(values(m, "python_peer", "cpu_per_event_us")))
    rows.append(["CPU per event, naive Python script (µs)"] + stats(values(m, "python_naive", "cpu_per_event_us")))
    rows.append(["CPU per event, naive C loop (µs)"] + stats(values(m, "c_naive", "cpu_per_event_us")))
    rows.append(["errors (non-ok rows), thread+process"] +
                stats(sum((values(m, v, "errors") for v in ("sluice_thread", "sluice_process",
                           "sluice_thread_dproc", "sluice_process_dproc")), [])))
    table("%s: daemon CPU and memory" % label, H, rows)
    rows = [
        ratio_row("RSS growth, 10% -> 100% of the events (thread)",
                  ratios(m, "sluice_thread", "rss_end_kb", m, "sluice_thread", "rss_warm_kb",
                         lambda a, b: a / b - 1), "%", 0.10, False, "<= 10%"),
        ratio_row("RSS growth, idle -> at the last event (thread)",
                  ratios(m, "sluice_thread", "rss_end_kb", m, "sluice_thread", "rss_idle_kb",
                         lambda a, b: a / b - 1), "%", None, False, ""),
        ratio_row("RSS growth, idle -> at rest after all events (thread)",
                  ratios(m, "sluice_thread", "rss_rest_kb", m, "sluice_thread", "rss_idle_kb",
                         lambda a, b: a / b - 1), "%", 0.10, False, "<= 10%"),
    ]
    table("%s: memory growth" % label, HT, rows)


def latency_section():
    for v, label in (("unpinned", "unpinned"), ("samecpu", "daemon and client both on CPU 0")):
        m = "latency_" + v
        if not os.path.isdir(os.path.join(RES, m)):
            continue
        rows = []
        for c, name in (("sluice_thread", "sluice invoke, isolation thread"),
                        ("sluice_process", "sluice invoke, isolation process"),
                        ("sluice_thread_dproc", "sluice invoke, isolation thread, durability process"),
                        ("sluice_process_dproc", "sluice invoke, isolation process, durability process"),
                        ("raw_reqrep", "raw ZeroMQ REQ/REP echo")):
            rows.append([name + " p50 (µs)"] + stats(values(m, c, "p50_us")))
            rows.append([name + " p99 (µs)"] + stats(values(m, c, "p99_us")))
        table("3. invoke round trip, %s" % label, H, rows)
        rows = []
        for dur, suffix in (("power", ""), ("process", "_dproc")):
            rows += vs_peer(m, "p50 sluice %%s / raw (durability %s)" % dur, "p50_us", "raw_reqrep",
                            "x", {"thread": 2, "process": 2}, False, suffix)
        rows.append(ratio_row("p99 sluice thread / raw", ratios(m, "sluice_thread", "p99_us", m, "raw_reqrep",
                                                                "p99_us"), "x"))
        table("3. invoke round trip, %s: ratios" % label, HT, rows)


PEERS = [("sluice_thread", "sluice, isolation thread (journal + row + log line)"),
         ("sluice_process", "sluice, isolation process"),
         ("incron", "incrond + handler script (syslog discarded)"),
         ("incron_stock", "incrond + handler script (stock: syslog -> console)"),
         ("inotifywait_script", "inotifywait | while read + handler script"),
         ("inotifywait_builtin", "inotifywait | while read + shell builtin"),
         ("watchdog", "Python watchdog script")]


def drops_section():
    m = "drops_burst"
    if not os.path.isdir(os.path.join(RES, m)):
        return
    n = values(m, "sluice_thread", "count")
    for key, what in (("files_per_s", "files handled per second"),
                      ("backlog_ratio", "time to the last handler start / time to create the files"),
                      ("cpu_per_file_us", "CPU per file (µs), whole process tree"),
                      ("missed", "files missed"),
                      ("create_s", "time to create the files (s)"),
                      ("last_handler_s", "time to the last handler start (s)")):
        rows = [[name] + stats(values(m, p, key)) for p, name in PEERS if load(m, p)]
        table("4a. burst of %s files: %s" % (fmt(n[0]) if n else "?", what), H, rows)
    rows = [
        ratio_row("sluice thread: last handler / files created", values(m, "sluice_thread", "backlog_ratio"),
                  "x", 1.10, False, "<= 1.10"),
        ratio_row("sluice process: last handler / files created", values(m, "sluice_process", "backlog_ratio"),
                  "x", 1.10, False, "<= 1.10"),
    ]
    both = {"thread": 1, "process": 1}
    rows += vs_peer(m, "finished, sluice %s / inotifywait builtin loop", "last_handler_s",
                    "inotifywait_builtin", "x", both, False)
    rows += vs_peer(m, "time to create the files, under sluice %s / under inotifywait builtin", "create_s",
                    "inotifywait_builtin", "x", both, False)
    rows += vs_peer(m, "CPU per file, sluice %s / watchdog", "cpu_per_file_us", "watchdog", "x",
                    {"thread": 0.5, "process": 0.5}, False)
    rows += [
        ratio_row("files/s, sluice thread / incron",
                  ratios(m, "sluice_thread", "files_per_s", m, "incron", "files_per_s"), "x", 20, True, ">= 20×"),
        ratio_row("files/s, sluice process / incron",
                  ratios(m, "sluice_process", "files_per_s", m, "incron", "files_per_s"), "x", 20, True, ">= 20×"),
        ratio_row("files missed, sluice (thread + process)",
                  values(m, "sluice_thread", "missed") + values(m, "sluice_process", "missed"), "", 0, False, "0"),
    ]
    table("4a. burst: ratios", HT, rows)
    m = "drops_spaced"
    if not os.path.isdir(os.path.join(RES, m)):
        return
    n = values(m, "sluice_thread", "count")
    rows = []
    for p, name in PEERS:
        if not load(m, p):
            continue
        rows.append([name + ", p50"] + stats(values(m, p, "lat_p50_ms")))
        rows.append([name + ", p99"] + stats(values(m, p, "lat_p99_ms")))
    for p in ("sluice_thread", "sluice_process"):
        rows.append(["%s: mean from invocations.started_at (ms clock)" % p] +
                    stats(values(m, p, "lat_db_mean_ms")))
    rows.append(["files missed, all peers"] + stats(sum((values(m, p, "missed") for p, _ in PEERS), [])))
    table("4b. %s drops %s ms apart: latency from rename to handler start (ms)" %
          (fmt(n[0]) if n else "?", "50"), H, rows)

    fastest = []
    a = load(m, "sluice_thread")
    for r in sorted(a):
        peers = [load(m, p).get(r, {}).get("lat_p50_ms") for p, _ in PEERS if not p.startswith("sluice")]
        peers = [x for x in peers if isinstance(x, float)]
        if peers and isinstance(a[r].get("lat_p50_ms"), float):
            fastest.append(a[r]["lat_p50_ms"] / min(peers))
    rows = [ratio_row("sluice thread p50 (ms)", values(m, "sluice_thread", "lat_p50_ms"), "", 0.5, False, "<= 0.5 ms"),
            ratio_row("sluice process p50 (ms)", values(m, "sluice_process", "lat_p50_ms"), "", 0.5, False, "<= 0.5 ms"),
            ratio_row("sluice thread p50 / fastest peer's p50", fastest, "x", 1.0, False, "<= 1×")]
    rows += vs_peer(m, "sluice %s p50 / inotifywait builtin loop's p50", "lat_p50_ms", "inotifywait_builtin",
                    "x", {"thread": 1, "process": 1}, False)
    table("4b. spaced drops: targets", HT, rows)
    cpu = [[name] + stats(values(m, p, "cpu_per_file_us")) for p, name in PEERS if load(m, p)]
    table("4b. spaced drops: CPU per file (µs; includes waking up for each)", H, cpu)


def startup_section():
    m = "startup"
    if not os.path.isdir(os.path.join(RES, m)):
        return
    rows = [["time from `sluice run` to ready, new database (ms)"] + stats(values(m, "sluice", "ready_ms")),
            ["time to ready, existing database (ms)"] + stats(values(m, "sluice", "restart_ready_ms")),
            ["RSS idle (kB)"] + stats(values(m, "sluice", "rss_idle_kb")),
            ["  of which anonymous (heap, stacks) (kB)"] + stats(values(m, "sluice", "rss_anon_idle_kb")),
            ["  of which file-backed (binary and shared libraries) (kB)"] +
            stats(values(m, "sluice", "rss_file_idle_kb")),
            ["RSS after 4 invokes, 2 worker processes started (kB, daemon only)"] +
            stats(values(m, "sluice", "rss_after_invoke_kb")),
            ["C worker cold start init_ms, first worker"] + stats(values(m, "sluice", "init_ms_1")),
            ["C worker cold start init_ms, second worker"] + stats(values(m, "sluice", "init_ms_2")),
            ["first invoke round trip, cold (ms)"] + stats(values(m, "sluice", "invoke1_ms")),
            ["fourth invoke round trip, warm (ms)"] + stats(values(m, "sluice", "invoke4_ms")),
            ["SIGTERM to exit (ms)"] + stats(values(m, "sluice", "stop_ms"))]
    table("5. start-up and memory", H, rows)
    init = values(m, "sluice", "init_ms_1") + values(m, "sluice", "init_ms_2")
    rows = [ratio_row("RSS idle (MiB)", [v / 1024 for v in values(m, "sluice", "rss_idle_kb")], "", 10, False,
                      "<= 10 MiB"),
            ratio_row("C cold start init_ms (both workers)", init, "", 2, False, "<= 2 ms")]
    table("5. start-up: targets", HT, rows)


def http_section():
    for v, label in (("unpinned", "unpinned"), ("pinned", "server on CPU 1, wrk on CPU 0")):
        m = "http_" + v
        if not os.path.isdir(os.path.join(RES, m)):
            continue
        rows = []
        for c, name in (("sluice", "sluice, GET /hello -> bench.hello (thread)"),
                        ("sluice_dproc", "sluice, the same, durability process"),
                        ("mhd_hello", "bare libmicrohttpd hello-world")):
            rows.append([name + ", requests/s"] + stats(values(m, c, "rps")))
            rows.append([name + ", p50 (µs)"] + stats(values(m, c, "p50_us")))
            rows.append([name + ", p99 (µs)"] + stats(values(m, c, "p99_us")))
            rows.append([name + ", non-2xx"] + stats(values(m, c, "non2xx") or [0.0]))
        table("6. HTTP, wrk, %s" % label, H, rows)
        rows = [ratio_row("requests/s, sluice / MHD", ratios(m, "sluice", "rps", m, "mhd_hello", "rps"), "%",
                          0.5, True, ">= 50%"),
                ratio_row("requests/s, sluice (durability process) / MHD",
                          ratios(m, "sluice_dproc", "rps", m, "mhd_hello", "rps"), "%", 0.5, True, ">= 50%"),
                ratio_row("p99, sluice / MHD", ratios(m, "sluice", "p99_us", m, "mhd_hello", "p99_us"), "x")]
        table("6. HTTP, %s: ratios" % label, HT, rows)


info = machine()
if MD:
    print("Run: `%s`, %s; %s × %s, %s; load average %s at the start, %s at the end; %s s." %
          (info.get("command", "?"), info.get("date", "?"), info.get("nproc", "?"), info.get("cpu", "?"),
           info.get("kernel", "?"), info.get("loadavg_start", "?"), info.get("loadavg_end", "?"),
           info.get("duration_s", "?")))
else:
    print("\n==== sluice benchmarks ====")
    for k in ("command", "date", "nproc", "cpu", "kernel", "sluice_commit", "sqlite", "loadavg_start",
              "loadavg_end", "duration_s"):
        if k in info:
            print("  %s: %s" % (k, info[k]))
    print("  (median, min and max over the rounds; ratios are taken within each round)")
zmq_section("zmq", "1-2. ZeroMQ -> no-op C handler -> logged row, unpinned")
zmq_section("zmq_pinned", "1-2b. the same, daemon on CPU 1 and producer on CPU 0")
latency_section()
drops_section()
startup_section()
http_section()
