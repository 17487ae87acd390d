"""HTTP handlers written as AWS Lambda's documentation writes them run unchanged
(issue 16, items 1-3): a handler's own status code reaches the client as a
success, payload 2.0 answers in full (cookies, multiValueHeaders, inferred
answers), payload 1.0 (REST API) events, and x-request-id on every answer.
Also the smaller HTTP items of issue 21 (item 18): requests that cannot be
handed to a handler as JSON get 400, two Content-Lengths 400, a too big body
announced with Expect: 100-continue 413 at once, a 1xx statusCode 500; and a
URL with 1,000 query parameters (item 15) gets an answer."""

import json
import os
import shutil
import socket

import harness
from test_http import HttpCase, read_until_closed, route

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")
NODE = "/usr/bin/node" if os.access("/usr/bin/node", os.X_OK) else shutil.which("node")

# Handlers as the AWS documentation and the AWS SDK code examples write them.
PY_APP = r'''
import json

def server_error(event, context):
    return {
        "statusCode": 500,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": "the table is not reachable"}),
    }

def unavailable(event, context):
    return {"statusCode": 503, "headers": {"Retry-After": "120"}, "body": "try later"}

def cookies(event, context):
    return {
        "statusCode": 200,
        "cookies": ["session=abc; HttpOnly", "theme=dark"],
        "multiValueHeaders": {"X-Multi": ["one", "two"]},
        "headers": {"Content-Type": "text/plain"},
        "body": "with cookies",
    }

def greeting(event, context):
    return "Hello from Lambda!"

def message(event, context):
    return {"message": "Hello from Lambda!"}

def informational(event, context):
    return {"statusCode": 100, "body": "not a final answer"}

def lambda_handler(event, context):
    """The AWS SDK examples' REST API handler (payload 1.0)."""
    method = event["httpMethod"]
    if method == "GET":
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({
                "resource": event["resource"],
                "path": event["path"],
                "id": event["pathParameters"]["id"],
                "query": event["queryStringParameters"],
                "multiQuery": event["multiValueQueryStringParameters"],
                "agent": event["headers"].get("User-Agent"),
                "multiHeaders": event["multiValueHeaders"].get("X-Tag"),
                "requestId": event["requestContext"]["requestId"],
                "stage": event["requestContext"]["stage"],
                "sourceIp": event["requestContext"]["identity"]["sourceIp"],
                "body": event["body"],
                "isBase64Encoded": event["isBase64Encoded"],
            }),
        }
    elif method == "POST":
        item = json.loads(event["body"])
        return {"statusCode": 201, "body": json.dumps({"created": item["name"]})}
    else:
        return {"statusCode": 405, "body": json.dumps({"error": "Unsupported method"})}
'''

NODE_APP = r'''
export const handler = async (event) => {
  return {
    statusCode: 503,
    headers: { 'Retry-After': '30', 'Content-Type': 'text/plain' },
    body: 'maintenance',
  };
};
'''


def py_step(handler, **extra):
    s = {"name": handler.split(".")[-1], "runtime": "python3", "code": "code/py",
         "handler": handler}
    s.update(extra)
    return s


class LambdaHttp(HttpCase):

    def start(self, *pipelines):
        if not PYTHON:
            self.skipTest("python3 is not installed")
        cfg = {"python": PYTHON}
        if NODE:
            cfg["node"] = NODE
        sb = self.sandbox(config=cfg)
        sb.drop("code/py/app.py", PY_APP)
        sb.drop("code/js/index.mjs", NODE_APP)
        for p in pipelines:
            sb.add_pipeline(p)
        return sb, self.daemon(sb)

    def test_a_handlers_own_500_and_503_reach_the_client_as_a_success(self):
        retry = {"max_attempts": 3, "interval_ms": 10}
        pipelines = [route("err500", "GET", "/err", [py_step("app.server_error", retry=retry)]),
                     route("err503", "GET", "/busy", [py_step("app.unavailable", retry=retry)])]
        if NODE:
            pipelines.append(route("node503", "GET", "/node", [{
                "name": "handler", "runtime": "nodejs", "code": "code/js",
                "handler": "index.handler", "retry": retry}]))
        sb, d = self.start(*pipelines)

        r = self.request(sb, "GET", "/err")
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.json(), {"error": "the table is not reachable"})
        rows = self.rows_for(sb, r.headers["x-request-id"])
        self.assertEqual([(x["status"], x["status_code"]) for x in rows], [("ok", 500)],
                         "one attempt, recorded as ok with its status code: not retried")

        r = self.request(sb, "GET", "/busy")
        self.assertEqual((r.status, r.headers.get("retry-after"), r.body), (503, "120", b"try later"))
        rows = self.rows_for(sb, r.headers["x-request-id"])
        self.assertEqual([(x["status"], x["status_code"]) for x in rows], [("ok", 503)])
        n = 2
        if NODE:
            r = self.request(sb, "GET", "/node")
            self.assertEqual((r.status, r.headers.get("retry-after"), r.body),
                             (503, "30", b"maintenance"))
            rows = self.rows_for(sb, r.headers["x-request-id"])
            self.assertEqual([(x["status"], x["status_code"]) for x in rows], [("ok", 503)])
            n = 3
        # every event is done (not dead-lettered), after exactly one attempt each
        self.wait_events(sb, n)
        self.assertEqual(sb.count("events WHERE state = 'done'"), n)
        self.assertEqual(sb.count("invocations"), n)
        self.stop(d)

    def test_a_500_on_a_pipeline_http_does_not_trigger_still_fails_the_step(self):
        sb, d = self.start({"name": "queue", "steps": [py_step("app.server_error",
                                                               retry={"max_attempts": 2,
                                                                      "interval_ms": 10})]})
        p = harness.subprocess.run([harness.sluice_bin(), "invoke", "-c", sb.config_path,
                                    "queue", "{}"], stdout=harness.subprocess.PIPE,
                                   stderr=harness.subprocess.PIPE, text=True, timeout=60,
                                   cwd=sb.cwd)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.wait_for(lambda: sb.count("invocations") == 2, what="two attempts")
        self.assertEqual({x["status"] for x in sb.db_rows("SELECT status FROM invocations")},
                         {"error"})
        self.stop(d)

    def test_cookies_multi_value_headers_and_inferred_answers(self):
        sb, d = self.start(route("cookies", "GET", "/cookies", [py_step("app.cookies")]),
                           route("greeting", "GET", "/greeting", [py_step("app.greeting")]),
                           route("message", "GET", "/message", [py_step("app.message")]),
                           route("info", "GET", "/info", [py_step("app.informational")]))
        r = self.raw_response(sb, b"GET /cookies HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(sorted(r["set-cookie"]), ["session=abc; HttpOnly", "theme=dark"],
                         "one Set-Cookie header per cookie")
        self.assertEqual(sorted(r["x-multi"]), ["one", "two"])
        self.assertEqual(r["body"], b"with cookies")

        r = self.request(sb, "GET", "/greeting")
        self.assertEqual((r.status, r.headers["content-type"], r.body),
                         (200, "application/json", b"Hello from Lambda!"),
                         "a returned string is the body as is")
        r = self.request(sb, "GET", "/message")
        self.assertEqual((r.status, r.json()), (200, {"message": "Hello from Lambda!"}))

        r = self.request(sb, "GET", "/info")
        self.assertEqual(r.status, 500, "a 1xx statusCode is never a final answer: %r" % r)

        # sluice's own answers carry an x-request-id too
        for method, path, status in (("GET", "/nothing", 404), ("POST", "/greeting", 405)):
            r = self.request(sb, method, path, body=b"" if method == "POST" else None)
            self.assertEqual(r.status, status, r)
            self.assertRegex(r.headers.get("x-request-id", ""), r"^[0-9a-f-]{36}$", r)
        self.stop(d)

    def test_payload_1_0_rest_api_events(self):
        p = route("items", "ANY", "/items/{id}", [py_step("app.lambda_handler")])
        p["trigger"]["http"]["payload"] = "1.0"
        sb, d = self.start(p)

        r = self.request(sb, "GET", "/items/7?color=red&size=s&size=m",
                         headers=[("User-Agent", "sdk-example/1.0"), ("X-Tag", "a"),
                                  ("X-Tag", "b")])
        self.assertEqual(r.status, 200, r)
        got = r.json()
        self.assertEqual(got["resource"], "/items/{id}")
        self.assertEqual(got["path"], "/items/7")
        self.assertEqual(got["id"], "7")
        self.assertEqual(got["query"], {"color": "red", "size": "m"})
        self.assertEqual(got["multiQuery"], {"color": ["red"], "size": ["s", "m"]})
        self.assertEqual(got["agent"], "sdk-example/1.0", "headers keep the client's case")
        self.assertEqual(got["multiHeaders"], ["a", "b"])
        self.assertTrue(got["requestId"])
        self.assertEqual(got["stage"], "$default")
        self.assertEqual(got["sourceIp"], "127.0.0.1")
        self.assertIsNone(got["body"])
        self.assertIs(got["isBase64Encoded"], False)

        r = self.request(sb, "POST", "/items/8", body=json.dumps({"name": "gate"}).encode())
        self.assertEqual((r.status, r.json()), (201, {"created": "gate"}))
        r = self.request(sb, "DELETE", "/items/8")
        self.assertEqual(r.status, 405, "the handler's own 405 for a method it does not serve")

        bad = dict(p)
        bad["trigger"] = {"http": {"path": "/x", "payload": "3.0"}}
        bad["name"] = "bad"
        sb.add_pipeline(bad)
        out = sb.cli("check")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("trigger.http.payload", out.stdout + out.stderr)
        self.stop(d)

    # -- issue 21, items 15 and 18 ---------------------------------------------------

    def test_requests_that_cannot_become_json_get_400(self):
        sb, d = self.start(route("echo", "ANY", "/{path+}", [{"name": "echo",
                                                              "handler": "echo.handler"}]))
        for data, want in (
                (b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
                (b"GET /caf%FF HTTP/1.1\r\nHost: x\r\n\r\n", 400),
                (b"GET /ok?q=%ED%A0%80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
                (b"GET /ok?q=a%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
                (b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Name: \xff\xfe\r\n\r\n", 400),
                (b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n"
                 b"\r\nabcde", 400),
                (b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3,5\r\n\r\nabcde", 400)):
            r = self.raw_response(sb, data)
            self.assertEqual(r["status"], want, "%r answered %r" % (data, r))
        # valid UTF-8 passes
        r = self.request(sb, "GET", "/caf%C3%A9?name=J%C3%BCrgen")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["rawPath"], "/caf\u00e9")
        self.assertEqual(sb.count("events"), 1, "only the valid request ran")
        self.stop(d)

    def test_expect_100_continue_over_the_limit_gets_413_before_the_body(self):
        sb, d = self.start(route("up", "POST", "/up", [{"name": "echo", "handler": "echo.handler"}]))
        s = socket.create_connection(("127.0.0.1", sb.port), timeout=30)
        try:
            s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            first = s.recv(4096)
        finally:
            s.close()
        self.assertTrue(first.startswith(b"HTTP/1.1 413"), first[:200])
        self.stop(d)

    def test_a_url_with_1000_query_parameters_gets_an_answer(self):
        sb, d = self.start(route("echo", "GET", "/q", [{"name": "echo", "handler": "echo.handler"}]))
        query = "&".join("p%d=v" % i for i in range(1000))
        self.assertGreater(len(query), 6000)
        r = self.request(sb, "GET", "/q?" + query, timeout=30)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json()["queryStringParameters"]), 1000)
        # and a URL too long for the listener is refused out loud, at once
        r = self.request(sb, "GET", "/q?" + "x" * 1000000, timeout=30)
        self.assertIn(r.status, (414, 431), r)
        self.assertEqual(self.request(sb, "GET", "/q?a=1").status, 200)
        self.stop(d)

    def raw_response(self, sb, data):
        """Send raw bytes; the answer as {status, body, lower-case name: [values]} (a
        header may come more than once)."""
        s = socket.create_connection(("127.0.0.1", sb.port), timeout=30)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            out, _ = read_until_closed(s)
        finally:
            s.close()
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.assertTrue(lines and lines[0].startswith("HTTP/1."), "no answer to %r: %r"
                        % (data, out[:300]))
        r = {"status": int(lines[0].split()[1]), "body": body}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            r.setdefault(k.strip().lower(), []).append(v.strip())
        return r


if __name__ == "__main__":
    harness.main()
