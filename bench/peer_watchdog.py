#!/usr/bin/python3
"""The Python script a user would write with watchdog (Debian python3-watchdog):
watch a folder, run a trivial handler on each new file. It keeps no journal
and no log; the one line per file it writes (time, path) to a file it keeps
open is how the benchmark counts handled files and measures latency.

    peer_watchdog.py DIR LOGFILE
"""
import signal
import sys
import time

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer


def handler(path):
    """The trivial handler: what the others do (nothing much)."""
    return {"statusCode": 200, "body": path}


class OnNewFile(FileSystemEventHandler):
    def __init__(self, out):
        self.out = out
        self.seen = set()

    def _file(self, path):
        if path in self.seen:
            return
        self.seen.add(path)
        t = time.time()
        handler(path)
        self.out.write("%.6f %s\n" % (t, path))
        self.out.flush()

    def on_created(self, event):
        if not event.is_directory:
            self._file(event.src_path)

    def on_moved(self, event):
        if not event.is_directory:
            self._file(event.dest_path)

    def on_closed(self, event):
        if not event.is_directory:
            self._file(event.src_path)


def main():
    folder, logfile = sys.argv[1], sys.argv[2]
    out = open(logfile, "a")
    observer = Observer()
    observer.schedule(OnNewFile(out), folder, recursive=False)
    observer.start()
    print("ready", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        time.sleep(0.2)
    observer.stop()
    observer.join()
    out.close()


if __name__ == "__main__":
    main()
