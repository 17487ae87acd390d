#!/usr/bin/python3
"""Summarise `perf script` output of a sluice profile (perf record -e cpu-clock
--call-graph dwarf) into where the time goes per event:

  - by thread (event loop, database writer, executor threads, worker
    processes, libzmq's I/O thread),
  - by the nearest sluice function on the stack (each sample counted once,
    library time charged to the sluice function that called the library),
  - by the library the sample landed in, with libc split into malloc/free,
    printf and string/memory functions,
  - inclusive time of chosen functions.

    perf script -i perf.data | perf_summary.py --events N [--hz 999] [--top 30]
"""
import argparse
import collections
import re
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--events", type=float, default=0, help="events handled during the profile")
ap.add_argument("--hz", type=float, default=999, help="perf record -F")
ap.add_argument("--top", type=int, default=30)
ap.add_argument("--callers", default="", help="also show who calls these functions (comma-separated)")
ap.add_argument("--sluice-dso", default="sluice", help="basename of the sluice binary")
ap.add_argument("--inclusive", default="writer_main,complete_batch,append_apply,inv_apply,finish_apply,"
                "db_exec,sqlite3WalCheckpoint,lane_refill,journal_load_pending,drain,handle_event,"
                "json_parse_exact,on_zmq_event,dispatch_accept,journal_append,invlog_record,journal_finish,"
                "runner_run,executor_call,h_respond,worker_run_attempt,wire_read,wire_send_invoke,"
                "serve_one,uuid_v7,clock_iso8601,loop_post,writer_submit,route_file,s3event_json,"
                "on_readable,file_is_complete,run_mhd,on_http,http_event_json,http_response_from_answer")
args = ap.parse_args()

frame_re = re.compile(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")

samples = []  # (comm, [(sym, dso)...] leaf first)
comm = None
stack = []
for line in sys.stdin:
    if not line.strip():
        if comm is not None:
            samples.append((comm, stack))
        comm, stack = None, []
        continue
    if not line.startswith((" ", "\t")):
        comm = line.split()[0]
        stack = []
        continue
    m = frame_re.match(line)
    if m:
        sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(2))
        dso = m.group(3).rsplit("/", 1)[-1]
        stack.append((sym, dso, m.group(1)))
if comm is not None:
    samples.append((comm, stack))


def resolve_inlined(stack):
    """perf marks inlined frames "(inlined)" and lists them before the real
    frame at the same address: give them that frame's library (a library's
    inlined frame with no real frame of its own stays "a library")."""
    out = []
    for i, (sym, dso, addr) in enumerate(stack):
        if dso == "inlined":
            dso = "library (inlined)"
            for s2, d2, a2 in stack[i + 1:]:
                if a2 != addr:
                    break
                if d2 != "inlined":
                    dso = d2
                    break
        out.append((sym, dso))
    return out


samples = [(c, resolve_inlined(st)) for c, st in samples]

total = len(samples)
if not total:
    sys.exit("no samples")
per_event_us = (1e6 / args.hz / args.events) if args.events else 0


def role(comm, stack):
    syms = {s for s, _ in stack}
    if comm.startswith("ZMQbg"):
        return "libzmq I/O thread"
    if "worker_main" in syms:
        return "worker process"
    if "writer_main" in syms:
        return "database writer thread"
    if "lane_thread" in syms:
        return "executor threads"
    if "daemon_run" in syms:
        return "event loop thread"
    if comm.startswith("python") or comm.startswith("bash") or comm.startswith("sh"):
        return "other: " + comm
    return "other (%s)" % comm


def libc_kind(sym):
    s = sym.lower()
    if any(k in s for k in ("malloc", "free", "calloc", "realloc", "unlink_chunk", "consolidate",
                            "tcache", "_int_", "cfree", "strdup", "strndup")):
        return "libc malloc/free"
    if any(k in s for k in ("printf", "xsputn", "itoa", "strchrnul", "padn", "_io_")):
        return "libc printf family"
    if any(k in s for k in ("mem", "str")):
        return "libc mem*/str*"
    if "pthread" in s or "mutex" in s or "futex" in s or "cond" in s:
        return "libc locks"
    if "strtod" in s or "____strtod" in s:
        return "libc strtod"
    return "libc other"


def leaf_kind(stack):
    if not stack:
        return "unknown"
    sym, dso = stack[0]
    if dso.startswith("libc.so"):
        return libc_kind(sym)
    if "kernel" in dso:
        return "kernel"
    if dso.startswith("libsqlite3"):
        return "SQLite"
    if dso.startswith("libcjson"):
        return "cJSON"
    if dso.startswith("libzmq"):
        return "libzmq"
    if dso == args.sluice_dso:
        return "sluice code"
    if dso.startswith("[vdso]"):
        return "vdso (clock_gettime)"
    return dso


def nearest(stack):
    for sym, dso in stack:
        if dso == args.sluice_dso and not sym.startswith("[unknown"):
            return sym
    return "(no sluice frame: %s)" % (stack[0][1] if stack else "?")


roles = collections.Counter()
leaves = collections.Counter()
near = collections.Counter()
kernel_sys = collections.Counter()
incl = collections.Counter()
wanted = [w for w in args.inclusive.split(",") if w]
for comm, stack in samples:
    roles[role(comm, stack)] += 1
    leaves[leaf_kind(stack)] += 1
    near[nearest(stack)] += 1
    syms = {s for s, _ in stack}
    for w in wanted:
        if w in syms:
            incl[w] += 1
    if stack and "kernel" in stack[0][1]:
        sc = [s for s, d in stack if s.startswith("__x64_sys_")]
        kernel_sys[sc[-1][len("__x64_sys_"):] if sc else "(no syscall: faults, irq, scheduling)"] += 1


def show(title, counter, top=None):
    print("\n" + title)
    print("  %-62s %7s %10s" % ("", "%", "µs/event" if per_event_us else ""))
    for k, v in counter.most_common(top):
        pe = "%10.2f" % (v * per_event_us) if per_event_us else ""
        print("  %-62s %6.1f%% %s" % (k[:62], 100.0 * v / total, pe))


print("%d samples at %g Hz = %.2f CPU-seconds%s" % (
    total, args.hz, total / args.hz,
    ", %.1f µs of CPU per event over %d events" % (total * per_event_us, args.events) if args.events else ""))
show("by thread", roles)
show("by where the sample landed (leaf)", leaves)
show("by the nearest sluice function on the stack (libraries charged to their caller)", near, args.top)
show("kernel time by system call", kernel_sys, 12)
print("\ninclusive (the function is somewhere on the stack)")
for w in wanted:
    if incl[w]:
        pe = "%10.2f" % (incl[w] * per_event_us) if per_event_us else ""
        print("  %-62s %6.1f%% %s" % (w, 100.0 * incl[w] / total, pe))

for target in [t for t in args.callers.split(",") if t]:
    callers = collections.Counter()
    n = 0
    for comm, stack in samples:
        syms = [s for s, _ in stack]
        if target in syms:
            n += 1
            i = syms.index(target)
            chain = [s for s in syms[i + 1:i + 4]]
            callers[" < ".join(chain)] += 1
    if n:
        print("\ncallers of %s (%.1f%% of all samples)" % (target, 100.0 * n / total))
        for k, v in callers.most_common(8):
            print("  %6.1f%%  %s" % (100.0 * v / total, k[:110]))
