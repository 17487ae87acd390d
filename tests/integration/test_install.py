"""Installed sluice (docs/operations.md#install): `cmake --install` into a
temporary prefix, the tree then moved elsewhere (relocatable), the installed
binary run from another folder with its installed plugins, sluice-worker and
runtimes; the template plugin built out of tree against the installation
with find_package(sluice) and with pkg-config; the systemd unit verified."""

import os
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import SluiceTestCase

PY_APP = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'py:' + event['name']}\n"


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=kw.pop("timeout", 300), **kw)


class Installed(SluiceTestCase):

    @classmethod
    def setUpClass(cls):
        cls.build_dir = os.path.dirname(harness.sluice_bin())
        cls.tmp = tempfile.mkdtemp(prefix="sluice-install-")
        first = os.path.join(cls.tmp, "first")
        cls.install(first)
        # the unit names absolute paths: it is checked in an install left in place
        cls.fixed = os.path.join(cls.tmp, "fixed")
        cls.install(cls.fixed)
        # relocatable: the tree works where it was moved to, not where it was installed
        cls.prefix = os.path.join(cls.tmp, "moved", "opt")
        os.makedirs(os.path.dirname(cls.prefix))
        os.rename(first, cls.prefix)
        cls.bin = os.path.join(cls.prefix, "bin", "sluice")
        cls.saved_bin = os.environ["SLUICE_BIN"]
        os.environ["SLUICE_BIN"] = cls.bin # the harness starts the installed one

    @classmethod
    def install(cls, prefix):
        r = run(["cmake", "--install", cls.build_dir, "--prefix", prefix])
        if r.returncode != 0:
            raise AssertionError("cmake --install failed:\n" + r.stdout)

    @classmethod
    def tearDownClass(cls):
        os.environ["SLUICE_BIN"] = cls.saved_bin
        if not os.environ.get("SLUICE_TEST_KEEP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_layout_is_the_documented_one(self):
        for rel in ("bin/sluice", "libexec/sluice/sluice-worker", "lib/sluice/plugins/echo.so",
                    "share/sluice/runtimes/python/bootstrap.py",
                    "share/sluice/runtimes/node/bootstrap.js", "include/sluice/handler.h",
                    "share/doc/sluice/examples/sluice.json",
                    "share/doc/sluice/examples/pipelines/echo.json",
                    "share/doc/sluice/examples/plugin/CMakeLists.txt",
                    "share/man/man1/sluice.1", "share/man/man5/sluice.json.5",
                    "lib/pkgconfig/sluice.pc", "lib/cmake/sluice/sluiceConfig.cmake",
                    "lib/systemd/system/sluice.service", "lib/sysusers.d/sluice.conf"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, rel)), rel)

    def test_version_names_the_installed_folders(self):
        r = run([self.bin, "--version"], cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout, r"^sluice \d+\.\d+\.\d+\n")
        self.assertIn("installed: plugins %s/lib/sluice/plugins, runtimes %s/share/sluice/runtimes"
                      % (self.prefix, self.prefix), r.stdout)

    def test_the_example_config_passes_check(self):
        sb = self.sandbox()
        with open(os.path.join(self.prefix, "share/doc/sluice/examples/sluice.json")) as f:
            text = f.read()
        text = text.replace("/var/lib/sluice", sb.path("state")).replace(
            "/etc/sluice/pipelines", sb.pipelines_dir)
        with open(sb.config_path, "w") as f:
            f.write(text)
        r = sb.cli("check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_installed_daemon_runs_c_and_python_steps_from_another_folder(self):
        sb = self.sandbox()
        del sb.config["plugin_path"] # the installed plugins, found beside the binary
        sb.write_config()
        sb.drop("code/py/app.py", PY_APP)
        sb.add_pipeline({"name": "c", "trigger": {"directory": "inbox/c"},
                         "steps": [{"name": "echo", "handler": "echo.handler"}],
                         "isolation": "process"})
        sb.add_pipeline({"name": "py", "steps": [{"name": "app", "runtime": "python3",
                                                   "code": "code/py", "handler": "app.handler"}]})
        d = self.daemon(sb)
        sb.drop("inbox/c/one.txt")
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = 'c' AND status = 'ok'") == 1,
                      what="the C step to run in an installed sluice-worker")
        r = sb.cli("invoke", "py", '{"name": "x"}', "--timeout", "60000")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("py:x", r.stdout)
        # C workers ran the installed sluice-worker, not the slower fallback
        self.assertNotIn("C workers run as", d.log())

    def build_template_with_cmake(self, out):
        src = os.path.join(self.prefix, "share/doc/sluice/examples/plugin")
        r = run(["cmake", "-S", src, "-B", out, "-DCMAKE_PREFIX_PATH=" + self.prefix,
                 "-DCMAKE_BUILD_TYPE=Release"])
        self.assertEqual(r.returncode, 0, r.stdout)
        r = run(["cmake", "--build", out])
        self.assertEqual(r.returncode, 0, r.stdout)
        return os.path.join(out, "hello.so")

    def build_template_with_pkg_config(self, out):
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.prefix, "lib/pkgconfig"))
        r = run(["pkg-config", "--cflags", "sluice"], env=env)
        self.assertEqual(r.returncode, 0, r.stdout)
        os.makedirs(out)
        src = os.path.join(self.prefix, "share/doc/sluice/examples/plugin/hello.c")
        r = run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror"] + r.stdout.split() +
                ["-o", os.path.join(out, "hello.so"), src])
        self.assertEqual(r.returncode, 0, r.stdout)
        return os.path.join(out, "hello.so")

    def test_template_plugin_builds_out_of_tree_and_runs(self):
        for how, build in (("cmake", self.build_template_with_cmake),
                           ("pkg-config", self.build_template_with_pkg_config)):
            with self.subTest(how=how):
                sb = self.sandbox()
                so = build(sb.path("plugin-" + how))
                exported = run(["nm", "-D", "--defined-only", so]).stdout
                self.assertIn("sluice_plugin", exported)
                sb.config["plugin_path"] = [os.path.dirname(so)]
                sb.write_config()
                sb.add_pipeline({"name": "hi", "steps": [{"handler": "hello.handler"}]})
                self.assertEqual(sb.cli("check").returncode, 0)
                d = self.daemon(sb)
                r = sb.cli("invoke", "hi", '{"name": "sluice"}', "--timeout", "60000")
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn('{"hello":"sluice"}', r.stdout)
                self.stop(d)

    def test_systemd_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            raise unittest.SkipTest("systemd-analyze is not installed (Debian package systemd)")
        unit = os.path.join(self.fixed, "lib/systemd/system/sluice.service")
        with open(unit) as f:
            text = f.read()
        self.assertIn("ExecStart=%s/bin/sluice run -c /etc/sluice/sluice.json" % self.fixed, text)
        for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=sluice",
                     "User=sluice", "ProtectSystem=strict", "NoNewPrivileges=yes",
                     "PrivateTmp=yes", "WatchdogSec="):
            self.assertIn(line, text)
        # the man pages it names are the installed ones
        env = dict(os.environ, MANPATH=os.path.join(self.fixed, "share/man"))
        r = run(["systemd-analyze", "verify", unit], env=env, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout.strip(), "", r.stdout)


if __name__ == "__main__":
    harness.main()
