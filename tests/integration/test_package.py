"""The Debian package (docs/operations.md#install): `cpack -G DEB` builds it
from the build folder; its contents are the install layout under /usr, its
dependencies name the shared libraries sluice links, and `sluice --version`
runs from the unpacked tree (which is relocatable like any install)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import SluiceTestCase


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, **kw)


class DebianPackage(SluiceTestCase):

    def test_cpack_builds_a_deb_that_runs_unpacked(self):
        for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps"):
            if not shutil.which(tool):
                raise unittest.SkipTest("%s is not installed" % tool)
        build_dir = os.path.dirname(harness.sluice_bin())
        tmp = tempfile.mkdtemp(prefix="sluice-deb-")
        self.addCleanup(shutil.rmtree, tmp, True)
        r = run(["cpack", "-G", "DEB", "-B", tmp, "--config",
                 os.path.join(build_dir, "CPackConfig.cmake")])
        self.assertEqual(r.returncode, 0, r.stdout)
        debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, os.listdir(tmp))
        deb = os.path.join(tmp, debs[0])
        self.assertRegex(debs[0], r"^sluice_\d+\.\d+\.\d+_[a-z0-9]+\.deb$")

        listing = run(["dpkg-deb", "-c", deb]).stdout
        files = set(re.findall(r"\s\.(/\S+)$", listing, re.M))
        for path in ("/usr/bin/sluice", "/usr/libexec/sluice/sluice-worker",
                     "/usr/lib/sluice/plugins/echo.so", "/usr/include/sluice/handler.h",
                     "/usr/share/sluice/runtimes/python/bootstrap.py",
                     "/usr/share/sluice/runtimes/node/bootstrap.js",
                     "/usr/share/doc/sluice/examples/sluice.json",
                     "/usr/share/man/man1/sluice.1", "/usr/share/man/man5/sluice.json.5",
                     "/usr/lib/systemd/system/sluice.service", "/usr/lib/sysusers.d/sluice.conf",
                     "/usr/lib/pkgconfig/sluice.pc", "/usr/lib/cmake/sluice/sluiceConfig.cmake"):
            self.assertIn(path, files, listing)

        depends = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
        for lib in ("libzmq5", "libsqlite3-0", "libcjson1", "libmicrohttpd12", "libsystemd0",
                    "libseccomp2", "libc6"):
            self.assertRegex(depends, r"(^|, )%s( |,|$)" % lib, depends)
        self.assertIn("python3", run(["dpkg-deb", "-f", deb, "Recommends"]).stdout)

        root = os.path.join(tmp, "root")
        r = run(["dpkg-deb", "-x", deb, root])
        self.assertEqual(r.returncode, 0, r.stdout)
        with open(os.path.join(root, "usr/lib/systemd/system/sluice.service")) as f:
            self.assertIn("ExecStart=/usr/bin/sluice run -c /etc/sluice/sluice.json", f.read())
        r = run([os.path.join(root, "usr/bin/sluice"), "--version"], cwd=tmp)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout, r"^sluice \d+\.\d+\.\d+\n")
        self.assertIn("installed: plugins %s/usr/lib/sluice/plugins" % root, r.stdout)


if __name__ == "__main__":
    harness.main()
