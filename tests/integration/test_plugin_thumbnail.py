"""The thumbnail plugin (plugins/thumbnail) through a running daemon: real
PNG images written by the test, JPEG and WebP ones made from them by the
plugin itself, thumbnails checked for their format and dimensions (read from
the files' headers here, not from what the plugin says), damaged and
non-image files failing cleanly with no file left behind, and the sample
pipeline pipelines/thumbnails.json as shipped."""

import os
import shutil
import signal
import struct
import zlib

import harness
from harness import zmq_pipeline as invoke_pipeline
from cases import PluginCase, plugin_step


# -- images ------------------------------------------------------------------

def png_bytes(width, height, alpha=False, seed=1):
    """A real PNG (8-bit RGB or RGBA) with a deterministic pattern, so that
    encoders have something to compress."""
    channels = 4 if alpha else 3
    rows = []
    state = seed
    for y in range(height):
        row = bytearray([0])  # filter: none
        for x in range(width):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            noise = state >> 24
            px = [(x * 255 // max(width - 1, 1)) ^ noise & 0x1F,
                  (y * 255 // max(height - 1, 1)),
                  ((x + y) * 7 + noise) & 0xFF]
            if alpha:
                px.append(0 if (x // 8 + y // 8) % 2 else 255)
            row += bytes(px)
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def image_info(path):
    """(format, width, height) read from the file's own header."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:3] == b"\xff\xd8\xff":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            length = struct.unpack(">H", data[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return "jpeg", w, h
            i += 2 + length
        raise AssertionError("%s: a JPEG without a frame header" % path)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = data[12:16]
        if kind == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return "webp", w & 0x3FFF, h & 0x3FFF
        if kind == b"VP8L":
            bits = struct.unpack("<I", data[21:25])[0]
            return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return "webp", w, h
        raise AssertionError("%s: unknown WebP chunk %r" % (path, kind))
    raise AssertionError("%s is not a PNG, JPEG or WebP file (starts %r)" % (path, data[:12]))


def s3_event(path, key=None):
    return {"Records": [{"eventSource": "sluice:directory", "s3": {
        "bucket": {"name": os.path.dirname(path)},
        "object": {"key": key if key is not None else os.path.basename(path), "path": path,
                   "size": os.path.getsize(path) if os.path.exists(path) else 0}}}]}


def thumb_step(config, name="resize", **extra):
    return plugin_step("thumbnail.handler", config, name, **extra)


class ThumbnailPlugin(PluginCase):

    # -- helpers ------------------------------------------------------------
    def new_sandbox(self):
        sb = self.sandbox()  # ZeroMQ endpoints of its own: see harness.Sandbox
        # Images are read only from the trigger folder or config.allow: the
        # invoked pipelines here get the sandbox as theirs.
        add = sb.add_pipeline

        def add_allowing(pipeline, file_name=None):
            for st in pipeline["steps"]:
                if "directory" not in pipeline["trigger"] and st["handler"] == "thumbnail.handler":
                    st["config"].setdefault("allow", [sb.root])
            return add(pipeline, file_name)
        sb.add_pipeline = add_allowing
        return sb

    def write_png(self, sb, rel, width, height, alpha=False):
        path = sb.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png_bytes(width, height, alpha))
        return path

    def convert(self, sb, src, fmt, out_dir):
        """Make a JPEG or WebP copy of src, same size, with the plugin."""
        body = self.invoke_ok(sb, "convert_" + fmt, s3_event(src))
        self.assertEqual(os.path.dirname(body["output"]), out_dir)
        return body["output"]

    def assert_no_temp_files(self, folder):
        if os.path.isdir(folder):
            for root, _, files in os.walk(folder):
                hidden = [f for f in files if f.startswith(".")]
                self.assertEqual(hidden, [], "temporary files left in %s" % root)

    # -- success ------------------------------------------------------------
    def test_png_jpeg_and_webp_become_thumbnails_that_fit_the_box(self):
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                sb = self.new_sandbox()
                made, thumbs = sb.path("made"), sb.path("thumbs")
                for fmt in ("jpeg", "webp"):
                    sb.add_pipeline(invoke_pipeline("convert_" + fmt, [thumb_step(
                        {"output": made, "format": fmt, "size": [640, 480], "quality": 90})]))
                sb.add_pipeline({"name": "thumbs", "trigger": {"directory": "inbox"},
                                 "steps": [thumb_step({"output": thumbs})],
                                 "isolation": isolation, "concurrency": 3})
                d = self.daemon(sb)
                src = self.write_png(sb, "src/photo.png", 640, 480)
                jpg = self.convert(sb, src, "jpeg", made)
                webp = self.convert(sb, src, "webp", made)
                self.assertEqual(image_info(jpg), ("jpeg", 640, 480))
                self.assertEqual(image_info(webp), ("webp", 640, 480))
                for path in (src, jpg, webp):
                    shutil.copy(path, sb.path("inbox", os.path.basename(path)))
                self.wait_events(sb, 3, pipeline="thumbs")
                self.assertEqual(sorted(os.listdir(thumbs)),
                                 ["photo.jpg", "photo.png", "photo.webp"])
                self.assertEqual(image_info(os.path.join(thumbs, "photo.png")), ("png", 100, 75))
                self.assertEqual(image_info(os.path.join(thumbs, "photo.jpg")), ("jpeg", 100, 75))
                self.assertEqual(image_info(os.path.join(thumbs, "photo.webp")),
                                 ("webp", 100, 75))
                inv = sb.db_rows("SELECT status FROM invocations WHERE pipeline = 'thumbs'")
                self.assertEqual([r["status"] for r in inv], ["ok"] * 3)
                self.stop(d)

    def test_the_response_says_where_the_thumbnail_went_and_its_size(self):
        sb = self.new_sandbox()
        out = sb.path("out")
        sb.add_pipeline(invoke_pipeline("t", [thumb_step({"output": out})]))
        d = self.daemon(sb)
        src = self.write_png(sb, "in/tall one.png", 300, 600)
        body = self.invoke_ok(sb, "t", s3_event(src, key="photos/tall+one.png"))
        final = os.path.join(out, "photos", "tall one.png")
        self.assertEqual(body, {"output": final, "width": 50, "height": 100,
                                "bytes": os.path.getsize(final), "format": "png",
                                "source": "photos/tall+one.png", "input": src,
                                "input_width": 300, "input_height": 600})
        self.assertEqual(image_info(final), ("png", 50, 100))
        self.wait_for(lambda: sb.db_rows("SELECT message FROM logs WHERE pipeline = 't'"),
                      what="the handler's log line")
        logs = [r["message"] for r in sb.db_rows("SELECT message FROM logs WHERE pipeline = 't'")]
        self.assertEqual(logs, ["%s (300x600) -> %s (50x100 png, %d bytes)"
                                % (src, final, body["bytes"])])
        self.stop(d)

    def test_size_format_quality_upscale_and_crop(self):
        sb = self.new_sandbox()
        out = sb.path("out")

        def step(name, **cfg):
            cfg.setdefault("output", os.path.join(out, name))
            sb.add_pipeline(invoke_pipeline(name, [thumb_step(cfg)]))
            return name

        step("box", size=[160, 40])
        step("small")
        step("upscale", upscale=True)
        step("webp", format="webp", quality=60)
        step("jpeg", format="jpeg")
        step("q10", format="jpeg", quality=10, size=300)
        step("q95", format="jpeg", quality=95, size=300)
        step("crop", crop="centre", size=[50, 50])
        d = self.daemon(sb)
        big = self.write_png(sb, "in/big.png", 640, 480)
        tiny = self.write_png(sb, "in/tiny.png", 40, 30)
        alpha = self.write_png(sb, "in/alpha.png", 200, 100, alpha=True)

        body = self.invoke_ok(sb, "box", s3_event(big))
        self.assertEqual((body["width"], body["height"]), (53, 40))
        self.assertEqual(image_info(body["output"]), ("png", 53, 40))
        # smaller than the box: kept as it is, unless upscale says otherwise
        body = self.invoke_ok(sb, "small", s3_event(tiny))
        self.assertEqual(image_info(body["output"]), ("png", 40, 30))
        body = self.invoke_ok(sb, "upscale", s3_event(tiny))
        self.assertEqual(image_info(body["output"]), ("png", 100, 75))
        # another format: the extension follows it
        body = self.invoke_ok(sb, "webp", s3_event(big))
        self.assertEqual(body["output"], os.path.join(out, "webp", "big.webp"))
        self.assertEqual(image_info(body["output"]), ("webp", 100, 75))
        # alpha into JPEG is flattened, not refused
        body = self.invoke_ok(sb, "jpeg", s3_event(alpha))
        self.assertEqual(body["output"], os.path.join(out, "jpeg", "alpha.jpg"))
        self.assertEqual(image_info(body["output"]), ("jpeg", 100, 50))
        # quality changes the size of the file, not of the image
        low = self.invoke_ok(sb, "q10", s3_event(big))
        high = self.invoke_ok(sb, "q95", s3_event(big))
        self.assertEqual((low["width"], high["width"]), (300, 300))
        self.assertLess(low["bytes"] * 2, high["bytes"], (low, high))
        body = self.invoke_ok(sb, "crop", s3_event(big))
        self.assertEqual(image_info(body["output"]), ("png", 50, 50))
        self.stop(d)

    def test_a_thumbnail_replaces_an_older_one_atomically(self):
        sb = self.new_sandbox()
        out = sb.path("out")
        sb.add_pipeline({"name": "thumbs", "trigger": {"directory": "inbox"},
                         "steps": [thumb_step({"output": out})]})
        d = self.daemon(sb)
        self.write_png(sb, "inbox/a.png", 200, 200)
        self.wait_events(sb, 1, pipeline="thumbs")
        self.assertEqual(image_info(os.path.join(out, "a.png")), ("png", 100, 100))
        self.write_png(sb, "inbox/a.png", 400, 100)
        self.wait_events(sb, 2, pipeline="thumbs")
        self.assertEqual(image_info(os.path.join(out, "a.png")), ("png", 100, 25))
        self.assertEqual(os.listdir(out), ["a.png"])
        self.stop(d)

    def test_a_reload_in_thread_isolation_keeps_libvips_working(self):
        """A reload destroys the plugin and initialises it again in the same
        process; libvips cannot be restarted, so it must not have been shut
        down in between."""
        sb = self.new_sandbox()
        out = sb.path("out")
        sb.add_pipeline({"name": "thumbs", "trigger": {"directory": "inbox"},
                         "steps": [thumb_step({"output": out})], "isolation": "thread"})
        d = self.daemon(sb)
        self.write_png(sb, "inbox/one.png", 300, 150)
        self.wait_events(sb, 1, pipeline="thumbs")
        d.send_signal(signal.SIGHUP)
        self.wait_for(lambda: "reloaded" in d.log(), what="the reload")
        self.write_png(sb, "inbox/two.png", 150, 300)
        self.wait_events(sb, 2, pipeline="thumbs")
        self.assertEqual(image_info(os.path.join(out, "one.png")), ("png", 100, 50))
        self.assertEqual(image_info(os.path.join(out, "two.png")), ("png", 50, 100))
        self.stop(d)

    # -- failures -----------------------------------------------------------
    def test_damaged_and_non_image_files_fail_cleanly_and_leave_nothing(self):
        sb = self.new_sandbox()
        out = sb.path("out")
        sb.add_pipeline({"name": "thumbs", "trigger": {"directory": "inbox"},
                         "steps": [thumb_step({"output": out})],
                         "on_failure": {"directory": sb.path("dead")}})
        sb.add_pipeline(invoke_pipeline("t", [thumb_step({"output": out})]))
        sb.add_pipeline(invoke_pipeline("convert_jpeg", [thumb_step(
            {"output": sb.path("made"), "format": "jpeg", "size": 400})]))
        d = self.daemon(sb)
        good = png_bytes(400, 300)
        jpeg = self.convert(sb, self.write_png(sb, "src/p.png", 400, 300), "jpeg", sb.path("made"))
        with open(jpeg, "rb") as f:
            jpeg_data = f.read()
        cases = {
            "notes.jpg": (b"just some text, not an image\n", "NotAnImage",
                          "is not a JPEG, PNG or WebP image"),
            "empty.png": (b"", "UnsupportedImage", "is empty"),
            "cut.png": (good[:len(good) // 2], "ImageError", "cannot make a thumbnail of"),
            "cut.jpg": (jpeg_data[:len(jpeg_data) // 3], "ImageError",
                        "cannot make a thumbnail of"),
            "header-only.png": (good[:40], "ImageError", ""),
            "anim.gif": (b"GIF89a" + b"\0" * 64, "UnsupportedImage",
                         "is a GIF image; thumbnail.handler reads JPEG, PNG and WebP images only"),
            "fake.webp": (b"RIFF\x10\0\0\0WEBPVP8 garbage-garbage", "ImageError", ""),
        }
        for name, (data, error_type, text) in cases.items():
            with self.subTest(file=name):
                path = sb.drop("src/" + name, data, mode="wb")
                msg = self.invoke_fails(sb, "t", s3_event(path), error_type)
                self.assertIn(path, msg)
                self.assertIn(text, msg)
        msg = self.invoke_fails(sb, "t", s3_event(sb.path("src/missing.png")), "FileError")
        self.assertIn("no longer exists", msg)
        # The same files dropped into a watched folder: dead, not crashed.
        for name, (data, _, _) in cases.items():
            sb.drop("inbox/" + name, data, mode="wb")
        self.wait_events(sb, len(cases), state="dead", pipeline="thumbs")
        rows = sb.db_rows("SELECT status, error FROM invocations WHERE pipeline = 'thumbs'")
        self.assertEqual({r["status"] for r in rows}, {"error"}, rows)
        self.assertFalse(os.path.exists(out) and os.listdir(out), "output files were written")
        self.assert_no_temp_files(out)
        # The worker survived all that and still works.
        self.write_png(sb, "inbox/fine.png", 120, 60)
        self.wait_events(sb, 1, state="done", pipeline="thumbs")
        self.assertEqual(image_info(os.path.join(out, "fine.png")), ("png", 100, 50))
        self.assertEqual(os.listdir(out), ["fine.png"])
        self.stop(d)

    def test_limits_and_paths_that_would_leave_the_output_folder(self):
        sb = self.new_sandbox()
        out = sb.path("out")
        sb.add_pipeline(invoke_pipeline("t", [thumb_step({"output": out})]))
        sb.add_pipeline(invoke_pipeline("small_limit", [thumb_step(
            {"output": out, "max_megapixels": 0.1})]))
        sb.add_pipeline(invoke_pipeline("onto_itself", [thumb_step({"output": sb.path("in")})]))
        d = self.daemon(sb)
        src = self.write_png(sb, "in/p.png", 400, 300)
        for key in ("../escape.png", "/abs.png", "a/../../b.png", "a//b.png", "", "a/./b.png"):
            with self.subTest(key=key):
                msg = self.invoke_fails(sb, "t", s3_event(src, key=key), "InvalidEvent")
                self.assertIn("refusing to write outside the output folder", msg)
        self.assertFalse(os.path.exists(sb.path("escape.png")))
        msg = self.invoke_fails(sb, "small_limit", s3_event(src), "ImageTooLarge")
        self.assertIn("is 400x300 (0.1 megapixels), above config.max_megapixels (0.1)", msg)
        msg = self.invoke_fails(sb, "onto_itself", s3_event(src), "ConfigError")
        self.assertIn("would overwrite its source image", msg)
        self.assertEqual(image_info(src), ("png", 400, 300))
        msg = self.invoke_fails(sb, "t", {"hello": "world"}, "InvalidEvent")
        self.assertIn("expected a directory event", msg)
        msg = self.invoke_fails(sb, "t", {"Records": [{"s3": {"object": {"key": "x"}}}]},
                                "InvalidEvent")
        self.assertIn("Records[0].s3.object.path is missing", msg)
        self.assert_no_temp_files(out)
        self.stop(d)

    def test_a_thumbnail_past_its_deadline_is_a_timeout(self):
        """libvips cannot be interrupted in the middle of a thumbnail (it is
        one tile), so the deadline is sluice's: under "process" isolation the
        worker is killed before the thumbnail is written; under "thread" the
        attempt runs to its end and is recorded as a timeout."""
        w = h = 5000  # 25 megapixels of black: small on disk, long to decode
        raw = b"\0" * ((w * 3 + 1) * h)

        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
        sb = self.new_sandbox()
        for isolation in ("process", "thread"):
            sb.add_pipeline(invoke_pipeline("t_" + isolation, [thumb_step(
                {"output": sb.path("out", isolation)}, timeout_ms=20)], isolation=isolation))
        d = self.daemon(sb)
        src = sb.drop("in/huge.png", data, mode="wb")
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                self.invoke_fails(sb, "t_" + isolation, s3_event(src), "Sandbox.Timedout")
        self.wait_for(lambda: len(sb.db_rows("SELECT id FROM invocations")) == 2,
                      what="two invocation rows")
        self.assertEqual([r["status"] for r in sb.db_rows("SELECT status FROM invocations")],
                         ["timeout", "timeout"])
        self.assertFalse(os.path.exists(sb.path("out", "process", "huge.png")))
        self.stop(d)

    def test_config_errors_say_how_to_fix_them(self):
        # What the declared keys settle: `sluice check` names the file, the
        # step and the key, with a "did you mean", before anything runs.
        checked = [
            ({"ouput": "x"}, 'steps[0] (resize).config: unknown key "ouput" (did you mean '
             '"output"?)'),
            ({"upscale": "yes"}, "steps[0] (resize).config.upscale: expected true or false, "
             "got a string"),
            ({"quality": "high"}, "steps[0] (resize).config.quality: expected an integer, got "
             "a string"),
            ({"allow": [3]}, "steps[0] (resize).config.allow: expected a string or an array of "
             "strings, got an array"),
        ]
        sb = self.new_sandbox()
        for i, (cfg, _) in enumerate(checked):
            sb.add_pipeline(invoke_pipeline("k%d" % i, [thumb_step(cfg)]))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, r.stderr)
        for i, (cfg, want) in enumerate(checked):
            with self.subTest(config=cfg):
                self.assertIn("%s: %s" % (sb.pipeline_file("k%d" % i), want), r.stderr)
        # What only the plugin can judge: its create refuses the step, and
        # each invocation says why.
        cases = [
            ({"size": 0}, "config.size must be a whole number from 1 to 10000"),
            ({"size": 10.5}, "config.size must be a whole number from 1 to 10000"),
            ({"size": 1e300}, "config.size must be a whole number from 1 to 10000"),
            ({"size": [1, 2, 3]}, "config.size must be a number (a square box) or [width, height]"),
            ({"size": [100, "x"]}, "config.size[1] must be a whole number from 1 to 10000"),
            ({"format": "gif"}, 'config.format must be one of "same"'),
            ({"quality": 101}, "config.quality must be a whole number from 1 to 100"),
            ({"crop": "middle"}, 'config.crop must be "none"'),
            ({"output": ""}, "config.output must be a folder name"),
            ({"max_megapixels": -1}, "config.max_megapixels must be a number above 0"),
        ]
        sb = self.new_sandbox()
        for i, (cfg, _) in enumerate(cases):
            sb.add_pipeline(invoke_pipeline("c%d" % i, [thumb_step(cfg)], isolation="thread"))
        d = self.daemon(sb)
        src = self.write_png(sb, "in/p.png", 10, 10)
        for i, (cfg, want) in enumerate(cases):
            with self.subTest(config=cfg):
                msg = self.invoke_fails(sb, "c%d" % i, s3_event(src), "Runtime.InitError")
                self.assertIn('plugin "thumbnail" failed to create its instance: ' + want, msg)
        self.stop(d)

    def test_only_the_trigger_folder_and_config_allow_are_read(self):
        """Issue 21: an event names any path it likes; the plugin reads only
        inside the pipeline's trigger folder (or config.allow), never through
        a symbolic link out of it."""
        sb = self.new_sandbox()
        out = sb.path("out")
        secret = self.write_png(sb, "secret/s.png", 10, 10)
        inside = self.write_png(sb, "inbox/ok.png", 10, 10)
        os.symlink(secret, sb.path("inbox/link.png"))
        sb.add_pipeline({"name": "thumbs", "trigger": {"directory": "inbox"},
                         "steps": [thumb_step({"output": out})], "isolation": "thread"})
        sb.add_pipeline(invoke_pipeline("other", [thumb_step(
            {"output": out, "allow": [sb.path("inbox")]})]))
        d = self.daemon(sb)
        for path in (secret, sb.path("inbox/link.png"), "/etc/passwd"):
            with self.subTest(path=path):
                msg = self.invoke_fails(sb, "thumbs", s3_event(path), "PathNotAllowed")
                self.assertIn("refusing to read", msg)
                msg = self.invoke_fails(sb, "other", s3_event(path), "PathNotAllowed")
                self.assertIn("refusing to read", msg)
        self.assertFalse(os.path.exists(os.path.join(out, "s.png")))
        body = self.invoke_ok(sb, "other", s3_event(inside))
        self.assertEqual(body["input"], inside)
        self.stop(d)

    def test_an_unwritable_output_folder_is_a_clear_error(self):
        sb = self.new_sandbox()
        blocker = sb.drop("not-a-folder", "x")
        sb.add_pipeline(invoke_pipeline("t", [thumb_step(
            {"output": os.path.join(blocker, "thumbs")})]))
        d = self.daemon(sb)
        src = self.write_png(sb, "in/p.png", 10, 10)
        msg = self.invoke_fails(sb, "t", s3_event(src), "OutputError")
        self.assertIn("cannot create the output folder %s/thumbs: Not a directory" % blocker, msg)
        self.stop(d)

    # -- the sample pipeline ----------------------------------------------
    def test_the_sample_pipeline_works_as_shipped(self):
        sb = self.new_sandbox()
        sample = self.copy_sample(sb, "thumbnails.json")
        d = self.check_and_run_at_root(sb)
        inbox = sample["trigger"]["directory"]
        output = sb.path(sample["steps"][0]["config"]["output"])
        self.write_png(sb, os.path.join(inbox, "holiday.png"), 800, 600)
        self.write_png(sb, os.path.join(inbox, "SHOUTING.PNG"), 300, 900)
        self.write_png(sb, os.path.join(inbox, "album", "cover.png"), 500, 500)
        sb.drop(os.path.join(inbox, "readme.txt"), "not an image\n")
        sb.drop(os.path.join(inbox, "broken.jpg"), "not a jpeg either\n")
        self.wait_events(sb, 3, pipeline=sample["name"])
        self.wait_events(sb, 1, state="dead", pipeline=sample["name"])
        self.assertEqual(image_info(os.path.join(output, "holiday.png")), ("png", 100, 75))
        self.assertEqual(image_info(os.path.join(output, "SHOUTING.PNG")), ("png", 33, 100))
        self.assertEqual(image_info(os.path.join(output, "album", "cover.png")), ("png", 100, 100))
        self.assertFalse(os.path.exists(os.path.join(output, "broken.jpg")))
        # readme.txt does not match the trigger: no event at all
        self.assertEqual(sb.count("events WHERE pipeline = ?", (sample["name"],)), 4)
        dead = sb.path(sample["on_failure"]["directory"])
        self.wait_for(lambda: os.path.isdir(dead) and os.listdir(dead),
                      what="a dead-letter record for broken.jpg")
        self.stop(d)


if __name__ == "__main__":
    harness.main()
