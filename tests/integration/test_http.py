"""The HTTP trigger (issue 8): routes with path and query parameters become
API Gateway HTTP API payload 2.0 events, answers map back as API Gateway maps
them, every failure has its status, and the listener survives hostile
clients. Requests go through real HTTP clients: curl and Python's
http.client."""

import base64
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import harness
from harness import SluiceTestCase, free_ports, step

SLACK_S = 10.0          # on top of any deadline, for a loaded shared machine
CLIENT_TIMEOUT_S = 60   # no request of these tests should take near that


def route(name, method, path, steps, **extra):
    p = {"name": name, "trigger": {"http": {"path": path}}, "steps": steps}
    if method:
        p["trigger"]["http"]["method"] = method
    p.update(extra)
    return p


def read_until_closed(s):
    """Everything s receives until the peer closes (or resets): (bytes, timed out)."""
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out, False
        except socket.timeout:
            return out, True
        if not chunk:
            return out, False
        out += chunk


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers      # lower-case names; repeated ones comma-joined
        self.body = body            # bytes

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<HTTP %s %r %r>" % (self.status, self.headers, self.body[:300])


class HttpCase(SluiceTestCase):

    def sandbox(self, http=None, config=None):
        pull, router, port = free_ports(3)
        h = {"listen": "127.0.0.1:%d" % port}
        h.update(http or {})
        cfg = {"zmq": {"pull": "tcp://127.0.0.1:%d" % pull,
                       "router": "tcp://127.0.0.1:%d" % router},
               "http": h}
        cfg.update(config or {})
        sb = super().sandbox(cfg)
        sb.port = port
        return sb

    def request(self, sb, method, path, body=None, headers=None, timeout=CLIENT_TIMEOUT_S):
        conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            items = headers.items() if isinstance(headers, dict) else (headers or [])
            for k, v in items:
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            hdrs = {}
            for k, v in r.getheaders():
                k = k.lower()
                hdrs[k] = hdrs[k] + "," + v if k in hdrs else v
            return Response(r.status, hdrs, r.read())
        finally:
            conn.close()

    def curl(self, sb, *args):
        """curl against the sandbox's listener; args end with the path."""
        if not shutil.which("curl"):
            self.skipTest("curl is not installed")
        args = list(args)
        url = "http://127.0.0.1:%d%s" % (sb.port, args.pop())
        hdr_file = sb.path("curl.headers")
        body_file = sb.path("curl.body")
        r = subprocess.run(["curl", "-sS", "--max-time", str(CLIENT_TIMEOUT_S), "-D", hdr_file,
                            "-o", body_file] + args + [url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=CLIENT_TIMEOUT_S + 10)
        self.assertEqual(r.returncode, 0, "curl failed: %s" % r.stderr)
        with open(hdr_file, newline="") as f:
            lines = f.read().splitlines()
        with open(body_file, "rb") as f:
            body = f.read()
        os.unlink(hdr_file)
        os.unlink(body_file)
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return Response(status, headers, body)

    def rows_for(self, sb, request_id, n=1):
        """The invocation rows of a run, by the x-request-id it answered with."""
        self.wait_for(lambda: sb.count("invocations WHERE request_id = ?", (request_id,)) >= n,
                      what="%d invocation rows with request id %s" % (n, request_id))
        return sb.db_rows("SELECT * FROM invocations WHERE request_id = ? ORDER BY id",
                          (request_id,))

    def assert_json_error(self, r, status):
        self.assertEqual(r.status, status, r)
        self.assertIn("application/json", r.headers.get("content-type", ""), r)
        body = r.json()
        self.assertIsInstance(body.get("message"), str, r)
        self.assertTrue(body["message"], r)
        return body


# -- events -------------------------------------------------------------------

class Events(HttpCase):

    def test_get_with_path_and_query_parameters_gives_a_payload_2_event(self):
        sb = self.sandbox()
        sb.add_pipeline(route("users", "GET", "/users/{id}", [step("echo.handler")]))
        sb.add_pipeline(route("files", "GET", "/files/{path+}", [step("echo.handler")]))
        d = self.daemon(sb)
        self.assertIn("http listening on 127.0.0.1:%d" % sb.port, d.log())

        before_ms = int(time.time() * 1000)
        r = self.curl(sb, "-A", "sluice-test/1.0", "-H", "X-Custom-Thing: Yes",
                      "-H", "Cookie: a=1; b=2",
                      "/users/42?a=1&a=2&name=J%C3%BCrgen+K&flag&empty=")
        after_ms = int(time.time() * 1000)
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.headers["content-type"])
        ev = r.json()
        self.assertEqual(ev["version"], "2.0")
        self.assertEqual(ev["routeKey"], "GET /users/{id}")
        self.assertEqual(ev["rawPath"], "/users/42")
        self.assertEqual(ev["rawQueryString"], "a=1&a=2&name=J%C3%BCrgen+K&flag&empty=")
        self.assertEqual(ev["queryStringParameters"],
                         {"a": "1,2", "name": "J\u00fcrgen K", "flag": "", "empty": ""})
        self.assertEqual(ev["pathParameters"], {"id": "42"})
        self.assertEqual(ev["headers"]["x-custom-thing"], "Yes")
        self.assertEqual(ev["headers"]["user-agent"], "sluice-test/1.0")
        self.assertEqual(ev["headers"]["host"], "127.0.0.1:%d" % sb.port)
        for name in ev["headers"]:
            self.assertEqual(name, name.lower(), "header names are lower-case")
        self.assertEqual(ev["cookies"], ["a=1", "b=2"])
        ctx = ev["requestContext"]
        self.assertEqual(ctx["http"]["method"], "GET")
        self.assertEqual(ctx["http"]["path"], "/users/42")
        self.assertEqual(ctx["http"]["sourceIp"], "127.0.0.1")
        self.assertEqual(ctx["http"]["userAgent"], "sluice-test/1.0")
        self.assertEqual(ctx["routeKey"], "GET /users/{id}")
        self.assertIsInstance(ctx["requestId"], str)
        self.assertTrue(ctx["requestId"])
        self.assertGreaterEqual(ctx["timeEpoch"], before_ms - 1000)
        self.assertLessEqual(ctx["timeEpoch"], after_ms + 1000)
        self.assertIs(ev["isBase64Encoded"], False)
        self.assertNotIn("body", ev, "a GET has no body")

        # the x-request-id finds the run; the source names the route
        rid = r.headers["x-request-id"]
        rows = self.rows_for(sb, rid)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["pipeline"], "users")
        self.assertEqual(rows[0]["status"], "ok")
        self.assertEqual(rows[0]["source"], "http:GET /users/{id}")
        self.assertEqual(rows[0]["status_code"], 200)
        self.wait_events(sb, 1, pipeline="users")
        event = sb.db_rows("SELECT * FROM events WHERE pipeline = 'users'")[0]
        self.assertEqual(event["source"], "http:GET /users/{id}")
        self.assertEqual(event["event_id"], rows[0]["event_id"])
        self.assertEqual(json.loads(event["payload"])["rawPath"], "/users/42")
        logs = sb.cli("logs", "--pipeline", "users")
        self.assertIn(rid, logs.stdout)
        self.assertIn("http:GET /users/{id}", logs.stdout)

        # repeated headers are comma-joined; a greedy parameter takes the rest
        r = self.request(sb, "GET", "/files/a/b/c.txt",
                         headers=[("X-Multi", "one"), ("X-Multi", "two")])
        self.assertEqual(r.status, 200, r)
        ev = r.json()
        self.assertEqual(ev["pathParameters"], {"path": "a/b/c.txt"})
        self.assertEqual(ev["routeKey"], "GET /files/{path+}")
        self.assertEqual(ev["headers"]["x-multi"], "one,two")
        self.assertNotIn("queryStringParameters", ev)
        self.stop(d)

    def test_post_with_a_json_body_and_a_binary_body(self):
        sb = self.sandbox()
        sb.add_pipeline(route("orders", "POST", "/orders", [step("echo.handler")]))
        d = self.daemon(sb)
        order = {"item": "sluice gate", "qty": 3, "note": "caf\u00e9"}
        text = json.dumps(order)
        r = self.curl(sb, "-X", "POST", "-H", "Content-Type: application/json",
                      "--data-binary", text, "/orders")
        self.assertEqual(r.status, 200, r)
        ev = r.json()
        self.assertEqual(ev["requestContext"]["http"]["method"], "POST")
        self.assertEqual(ev["routeKey"], "POST /orders")
        self.assertEqual(ev["headers"]["content-type"], "application/json")
        self.assertIs(ev["isBase64Encoded"], False)
        self.assertEqual(json.loads(ev["body"]), order, "the body arrives as sent, as text")

        blob = bytes(range(256)) * 4
        r = self.request(sb, "POST", "/orders", body=blob,
                         headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(r.status, 200, r)
        ev = r.json()
        self.assertIs(ev["isBase64Encoded"], True, "a body that is not UTF-8 is base64")
        self.assertEqual(base64.b64decode(ev["body"]), blob)
        self.wait_events(sb, 2, pipeline="orders")
        self.stop(d)


# -- answers --------------------------------------------------------------------

class Answers(HttpCase):

    def test_an_answer_without_status_code_is_a_200_json_body(self):
        sb = self.sandbox()
        sb.add_pipeline(route("info", "GET", "/info", [step("ok.info")]))
        d = self.daemon(sb)
        r = self.request(sb, "GET", "/info")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        body = r.json()
        self.assertEqual(body["pipeline"], "info")
        self.assertEqual(body["function"], "ok.info")
        # the run's request id is the handler's ctx request_id and the header
        self.assertEqual(r.headers["x-request-id"], body["request_id"])
        rows = self.rows_for(sb, body["request_id"])
        self.assertEqual([x["status"] for x in rows], ["ok"])
        self.stop(d)

    def test_a_structured_answer_is_applied_as_is(self):
        plugin_dir = os.environ.get("SLUICE_PLUGIN_DIR", "")
        if not os.path.exists(os.path.join(plugin_dir, "exec.so")):
            self.skipTest("the exec plugin (a command as a handler) is not built")
        sb = self.sandbox()
        created = (
            "import json, sys\n"
            "ev = json.load(sys.stdin)\n"
            "uid = ev['pathParameters']['id']\n"
            "print(json.dumps({'statusCode': 201,\n"
            "  'headers': {'content-type': 'text/plain', 'location': '/users/' + uid,\n"
            "              'x-count': 3},\n"
            "  'body': 'created ' + uid}))\n")
        binary = (
            "import base64, json\n"
            "data = bytes([0, 1, 2, 255, 254]) + b'binary'\n"
            "print(json.dumps({'statusCode': 200, 'isBase64Encoded': True,\n"
            "  'headers': {'content-type': 'application/octet-stream'},\n"
            "  'body': base64.b64encode(data).decode()}))\n")
        teapot = "print('{\"statusCode\": 418, \"body\": {\"short\": \"and stout\"}}')\n"
        for name, method, path, code in (("create", "PUT", "/users/{id}", created),
                                         ("blob", "GET", "/blob", binary),
                                         ("teapot", "GET", "/teapot", teapot)):
            sb.add_pipeline(route(name, method, path, [step(
                "exec.handler", "run", timeout_ms=20000,
                config={"command": [sys.executable, "-c", code]})]))
        d = self.daemon(sb)

        r = self.request(sb, "PUT", "/users/7", body=b"{}")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers["content-type"], "text/plain")
        self.assertEqual(r.headers["location"], "/users/7")
        self.assertEqual(r.headers["x-count"], "3", "a number header is sent as text")
        self.assertEqual(r.body, b"created 7", "a string body is sent as is, not as JSON")
        rows = self.rows_for(sb, r.headers["x-request-id"])
        self.assertEqual(rows[0]["status"], "ok")

        r = self.request(sb, "GET", "/blob")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/octet-stream")
        self.assertEqual(r.body, bytes([0, 1, 2, 255, 254]) + b"binary")

        r = self.request(sb, "GET", "/teapot")
        self.assertEqual(r.status, 418, r)
        self.assertEqual(json.loads(r.body), {"short": "and stout"})
        self.stop(d)


# -- errors ---------------------------------------------------------------------

class Errors(HttpCase):

    def test_404_405_413_and_502(self):
        sb = self.sandbox(http={"max_body_bytes": 1024})
        sb.add_pipeline(route("items_get", "GET", "/items/{id}", [step("echo.handler")]))
        sb.add_pipeline(route("items_delete", "DELETE", "/items/{id}", [step("echo.handler")]))
        sb.add_pipeline(route("upload", "POST", "/upload", [step("echo.handler")]))
        sb.add_pipeline(route("broken", "GET", "/broken", [step("fail.error")]))
        sb.add_pipeline(route("segv", "GET", "/segv", [step("crash.segv")]))
        # a sanitizer build would catch the worker's SIGSEGV and print a
        # report the harness counts as a daemon problem: let it die of it
        old = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (old + ":" if old else "") + "handle_segv=0"
        try:
            d = self.daemon(sb)
        finally:
            if old is None:
                os.environ.pop("ASAN_OPTIONS", None)
            else:
                os.environ["ASAN_OPTIONS"] = old

        for path in ("/nothing", "/items", "/items/1/extra", "/"):
            r = self.request(sb, "GET", path)
            self.assert_json_error(r, 404)

        r = self.request(sb, "POST", "/items/1", body=b"{}")
        self.assert_json_error(r, 405)
        allowed = {m.strip() for m in r.headers.get("allow", "").split(",")}
        self.assertEqual(allowed, {"GET", "DELETE"}, r)

        r = self.request(sb, "POST", "/upload", body=b"x" * 1024)
        self.assertEqual(r.status, 200, "exactly max_body_bytes is fine: %r" % r)
        r = self.request(sb, "POST", "/upload", body=b"x" * 4096)
        body = self.assert_json_error(r, 413)
        self.assertIn("1024", body["message"])
        r = self.request(sb, "POST", "/upload", body=b"x" * (1 << 20))
        self.assert_json_error(r, 413)

        r = self.request(sb, "GET", "/broken")
        self.assert_json_error(r, 502)
        rows = self.rows_for(sb, r.headers["x-request-id"])
        self.assertEqual(rows[0]["status"], "error")
        self.assertIn("failing on purpose", rows[0]["error"])
        self.assertEqual(rows[0]["source"], "http:GET /broken")

        r = self.request(sb, "GET", "/segv")
        self.assert_json_error(r, 502)
        rows = self.rows_for(sb, r.headers["x-request-id"])
        self.assertEqual(rows[0]["status"], "crashed")

        # only the accepted requests were journaled
        self.wait_settled(sb, 3)
        counts = {row["pipeline"]: row["n"] for row in sb.db_rows(
            "SELECT pipeline, count(*) AS n FROM events GROUP BY pipeline")}
        self.assertEqual(counts, {"upload": 1, "broken": 1, "segv": 1})
        self.stop(d)

    def test_504_when_the_step_deadline_passes(self):
        sb = self.sandbox(http={"timeout_ms": 30000})
        sb.add_pipeline(route("hang", "GET", "/hang", [step("crash.hang", timeout_ms=300)]))
        d = self.daemon(sb)
        t0 = time.monotonic()
        r = self.request(sb, "GET", "/hang")
        took = time.monotonic() - t0
        self.assert_json_error(r, 504)
        self.assertLess(took, 0.3 + SLACK_S)
        rows = self.rows_for(sb, r.headers["x-request-id"])
        self.assertEqual(rows[0]["status"], "timeout")
        self.stop(d)

    def test_504_when_the_http_timeout_passes(self):
        sb = self.sandbox(http={"timeout_ms": 500})
        sb.add_pipeline(route("hang", "GET", "/hang", [step("crash.hang", timeout_ms=3000)]))
        d = self.daemon(sb)
        t0 = time.monotonic()
        r = self.request(sb, "GET", "/hang")
        took = time.monotonic() - t0
        self.assert_json_error(r, 504)
        self.assertGreaterEqual(took, 0.5)
        self.assertLess(took, 3.0, "answered at http.timeout_ms, not at the step's deadline")
        self.wait_settled(sb, 1, pipeline="hang")
        # issue 8: every error carries an x-request-id that finds the rows
        self.assertIn("x-request-id", r.headers, r)
        rows = self.rows_for(sb, r.headers["x-request-id"])
        self.assertEqual(rows[0]["status"], "timeout")
        self.stop(d)

    def test_429_when_the_pipeline_queue_is_full(self):
        # queue_size 1 and concurrency 1: a lane holds 2 (one running, one queued)
        sb = self.sandbox(http={"timeout_ms": 30000}, config={"queue_size": 1})
        sb.add_pipeline(route("hang", "GET", "/hang", [step("crash.hang", timeout_ms=1500)],
                              concurrency=1))
        d = self.daemon(sb)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = [pool.submit(self.request, sb, "GET", "/hang") for _ in range(2)]
            self.wait_for(lambda: sb.count("events WHERE pipeline = 'hang'") == 2,
                          what="two requests journaled")
            r = self.request(sb, "GET", "/hang")
            self.assert_json_error(r, 429)
            answers = [f.result() for f in first]
        for a in answers:
            self.assert_json_error(a, 504)
        self.assertEqual(sb.count("events WHERE pipeline = 'hang'"), 2,
                         "the refused request was not journaled")
        # room again: the next request is taken
        self.assert_json_error(self.request(sb, "GET", "/hang"), 504)
        self.assertEqual(sb.count("events WHERE pipeline = 'hang'"), 3)
        self.stop(d)


# -- load and hostile clients -------------------------------------------------------

class Robustness(HttpCase):

    def test_200_concurrent_requests_are_all_answered(self):
        sb = self.sandbox()
        sb.add_pipeline(route("users", "GET", "/users/{id}", [step("echo.handler")],
                              concurrency=4))
        d = self.daemon(sb)
        n = 200
        barrier = threading.Barrier(n)

        def one(i):
            barrier.wait(timeout=CLIENT_TIMEOUT_S)
            return i, self.request(sb, "GET", "/users/%d?n=%d" % (i, i))

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            results = list(pool.map(one, range(n)))
        for i, r in results:
            self.assertEqual(r.status, 200, r)
            ev = r.json()
            self.assertEqual(ev["pathParameters"], {"id": str(i)})
            self.assertEqual(ev["queryStringParameters"], {"n": str(i)})
        ids = {r.headers["x-request-id"] for _, r in results}
        self.assertEqual(len(ids), n, "one run per request")
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = 'users'") == n,
                      what="%d invocation rows" % n)
        rows = sb.db_rows("SELECT request_id, status FROM invocations WHERE pipeline = 'users'")
        self.assertEqual({r["request_id"] for r in rows}, ids)
        self.assertEqual({r["status"] for r in rows}, {"ok"})
        self.stop(d)

    def raw(self, sb, data):
        """Send raw bytes; return what comes back until the server closes,
        b"" if it closes without a word, or None if it says nothing within
        a few seconds (it waits for the rest of a request line: see the
        note in docs/http.md)."""
        s = socket.create_connection(("127.0.0.1", sb.port), timeout=3)
        try:
            s.sendall(data)
            out, timed_out = read_until_closed(s)
            return (out or None) if timed_out else out
        finally:
            s.close()

    def test_malformed_requests_get_an_error_and_no_crash(self):
        sb = self.sandbox()
        sb.add_pipeline(route("users", "GET", "/users/{id}", [step("echo.handler")]))
        d = self.daemon(sb)
        bad = [
            (b"GARBAGE\r\n\r\n", None),
            (b"GET\r\n\r\n", None),
            (b"GET /users/1\r\n\r\n", 400),
            (b"GET /users/1 HTTP/1.1 extra words\r\n\r\n", 400),
            (b"GET /users/1 junk\r\n\r\n", 400),
            (b"GET /users/1 HTTP/2.0\r\n\r\n", 505),
            (b"\xff\xfe binary junk\r\n\r\n", 400),
            (b"\x00\xff\xfe\x16\x03\x01 binary junk\r\n\r\n", None),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", None),   # TLS hello
            (b"GET /users/1 HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
            (b"POST /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
            (b"POST /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
            (b"GET /users/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"zz\r\n", 400),
        ]
        for data, want in bad:
            answer = self.raw(sb, data)
            if answer:
                status = int(answer.split(b" ", 2)[1])
                if want:
                    self.assertEqual(status, want, "%r answered %r" % (data, answer[:200]))
                self.assertTrue(400 <= status < 600, "%r answered %r" % (data, answer[:200]))
            d.check_alive()
            r = self.request(sb, "GET", "/users/ok")
            self.assertEqual(r.status, 200, "after %r: %r" % (data, r))
        # half a request, then the client goes away
        s = socket.create_connection(("127.0.0.1", sb.port), timeout=CLIENT_TIMEOUT_S)
        s.sendall(b"GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Half: ")
        s.close()
        self.assertEqual(self.request(sb, "GET", "/users/ok").status, 200)
        self.assertEqual(sb.count("events"), len(bad) + 1, "only the good requests ran")
        self.stop(d)

    def test_a_huge_header_gets_431_and_no_crash(self):
        sb = self.sandbox()
        sb.add_pipeline(route("users", "GET", "/users/{id}", [step("echo.handler")]))
        d = self.daemon(sb)
        try:
            r = self.request(sb, "GET", "/users/1", headers={"X-Huge": "h" * 300000})  # over the 128 KiB head
            status = r.status
        except (ConnectionError, http.client.HTTPException) as e:
            status = e
        self.assertEqual(status, 431)
        d.check_alive()
        r = self.request(sb, "GET", "/users/2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sb.count("events"), 1, "only the good request ran")
        self.stop(d)


# -- idempotency, check, listener --------------------------------------------------

class Routing(HttpCase):

    def test_a_reused_idempotency_key_is_refused_and_runs_once(self):
        sb = self.sandbox()
        sb.add_pipeline(route("pay", "POST", "/payments", [step("echo.handler")]))
        d = self.daemon(sb)
        key = {"Idempotency-Key": "order-1234-attempt"}
        r1 = self.request(sb, "POST", "/payments", body=b'{"amount": 5}', headers=key)
        self.assertEqual(r1.status, 200, r1)
        r2 = self.request(sb, "POST", "/payments", body=b'{"amount": 5}', headers=key)
        self.assertGreaterEqual(r2.status, 400, r2)
        self.assertEqual(r2.status, 409, r2)
        self.assertIn("application/json", r2.headers.get("content-type", ""))
        r3 = self.request(sb, "POST", "/payments", body=b'{"amount": 5}',
                          headers={"Idempotency-Key": "another"})
        self.assertEqual(r3.status, 200, r3)
        self.wait_events(sb, 2, pipeline="pay")
        events = sb.db_rows("SELECT * FROM events WHERE pipeline = 'pay' ORDER BY id")
        self.assertEqual([e["event_id"] for e in events], ["order-1234-attempt", "another"])
        self.assertEqual(events[0]["duplicates"], 1)
        self.assertEqual(sb.count("invocations WHERE event_id = 'order-1234-attempt'"), 1,
                         "the pipeline ran once for the key")
        self.stop(d)

    def test_check_reports_two_pipelines_claiming_the_same_route(self):
        sb = self.sandbox()
        sb.add_pipeline(route("a", "GET", "/users/{id}", [step("echo.handler")]))
        sb.add_pipeline(route("b", "GET", "/users/{id}", [step("echo.handler")]))
        sb.add_pipeline(route("c", None, "/items", [step("echo.handler")]))      # ANY
        sb.add_pipeline(route("d", "POST", "/items", [step("echo.handler")]))
        sb.add_pipeline(route("e", "POST", "/users/{id}", [step("echo.handler")]))
        r = sb.cli("check")
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, out)
        self.assertRegex(out, r"b\.json: .*GET /users/\{id\}.*a\.json")
        self.assertRegex(out, r"d\.json: .*POST /items.*c\.json")
        self.assertNotRegex(out, r"e\.json", "another method on the same path is fine")
        # and the daemon refuses to start with them
        os.unlink(sb.pipeline_file("b"))
        os.unlink(sb.pipeline_file("d"))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_check_reports_routes_that_differ_only_in_parameter_names(self):
        """/users/{id} and /users/{name} match the same requests: the second
        could never answer, so it is the same route claimed twice."""
        sb = self.sandbox()
        sb.add_pipeline(route("a", "GET", "/users/{id}", [step("echo.handler")]))
        sb.add_pipeline(route("b", "GET", "/users/{name}", [step("echo.handler")]))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, "route claimed twice not reported:\n"
                         + r.stdout + r.stderr)

    def test_no_listener_without_http_routes(self):
        sb = self.sandbox()
        sb.add_pipeline({"name": "z", "trigger": {"zmq": {"topic": "z."}},
                         "steps": [step("echo.handler")], "isolation": "thread"})
        d = self.daemon(sb)
        self.assertNotIn("http listening", d.log())
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", sb.port), timeout=5).close()
        self.stop(d)

    def test_sigterm_answers_a_request_in_flight(self):
        sb = self.sandbox(http={"timeout_ms": 30000})
        sb.add_pipeline(route("slow", "GET", "/slow", [step("fail.slow")]))
        d = self.daemon(sb)
        self.assertEqual(self.request(sb, "GET", "/slow").status, 200)   # a warm worker
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            running = pool.submit(self.request, sb, "GET", "/slow", None, None, 15)
            self.wait_for(lambda: sb.count("events WHERE pipeline = 'slow'") == 2,
                          what="the second request to be running")
            d.send_signal(signal.SIGTERM)
            try:
                r = running.result()
            except (OSError, http.client.HTTPException) as e:
                r = e
            self.stop_after_sigterm(d)
        # the run finishes during the drain (200) or is interrupted (503)
        self.assertIsInstance(r, Response, "the client got no HTTP answer: %r" % (r,))
        self.assertIn(r.status, (200, 503), r)

    def stop_after_sigterm(self, d):
        code = d.wait_exit(timeout=30)
        self.assertEqual(code, 0, d.describe())
        self.assertFalse(d.sanitizer_report(), d.describe())


if __name__ == "__main__":
    harness.main()
