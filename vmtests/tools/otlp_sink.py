#!/usr/bin/env python3
"""A strict OTLP/HTTP JSON trace receiver for tests (stdlib only).

otlp_sink.py --out SPANS.jsonl [--requests REQS.jsonl] [--port N] [--port-file FILE]
             [--delay S] [--fail-first N] [--fail-code CODE] [--retry-after S]
             [--hang] [--partial K] [--max-seconds S]

Listens on 127.0.0.1 only (port 0: any free one; the port is written to --port-file, via a
rename, once listening). Takes POST /v1/traces with Content-Type application/json, an
ExportTraceServiceRequest as sluice sends it, and checks it strictly:

- only the keys OTLP defines, no duplicate keys; resource attributes service.name = "sluice"
  and host.name; scope name "sluice" with a version;
- traceId 32 and spanId/parentSpanId 16 lowercase hex digits, not all zero;
- kind (3, SPAN_KIND_CLIENT), flags and status.code are JSON numbers (integers);
- startTimeUnixNano and endTimeUnixNano are strings of digits, end >= start;
- attributes are {key, value: {<one typed value>}} lists without duplicate keys; intValue is
  a string of digits; sluice.service (= the span's name), server.address, server.port,
  sluice.source, sluice.bytes_sent, sluice.bytes_received and sluice.retransmits are present
  with the right types; network.peer.address and network.peer.port come together;
- status.code 2 (STATUS_CODE_ERROR) if and only if sluice.reason is present.

A valid request: each span is appended to --out as one JSON line (the span object as
received) before the 200 answer ({} or, with --partial K, a partialSuccess rejecting K). An
invalid one is answered 400 with {"code": 3, "message": why}, nothing is written to --out.
Every request is one line of --requests: {"n", "status", "spans", "error", "resource",
"scope", "t"} (resource and scope of the first resourceSpans when valid).

--delay S: answer S seconds late. --fail-first N: answer the first N requests with
--fail-code (503) and, with --retry-after S, a Retry-After header. --hang: read each request,
then never answer. The server exits after --max-seconds (600), or on SIGTERM.
"""
import argparse
import http.server
import json
import os
import re
import signal
import sys
import threading
import time

HEX = re.compile(r"[0-9a-f]+\Z")
DIGITS = re.compile(r"[0-9]+\Z")
SIGNED = re.compile(r"-?[0-9]+\Z")
MAX_BODY = 64 << 20

KEYS_REQUEST = {"resourceSpans"}
KEYS_RESOURCE_SPANS = {"resource", "scopeSpans", "schemaUrl"}
KEYS_RESOURCE = {"attributes", "droppedAttributesCount"}
KEYS_SCOPE_SPANS = {"scope", "spans", "schemaUrl"}
KEYS_SCOPE = {"name", "version", "attributes", "droppedAttributesCount"}
KEYS_SPAN = {"traceId", "spanId", "traceState", "parentSpanId", "flags", "name", "kind",
             "startTimeUnixNano", "endTimeUnixNano", "attributes", "droppedAttributesCount",
             "events", "droppedEventsCount", "links", "droppedLinksCount", "status"}
KEYS_STATUS = {"code", "message"}
VALUE_TYPES = {"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue",
               "kvlistValue", "bytesValue"}
SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2
REQUIRED_STR = ("sluice.service", "server.address", "sluice.source")
REQUIRED_INT = ("server.port", "sluice.bytes_sent", "sluice.bytes_received",
                "sluice.retransmits")


class Invalid(Exception):
    pass


def need(cond, why):
    if not cond:
        raise Invalid(why)


def is_int(v):
    return type(v) is int  # bool is an int subclass: not accepted


def no_dup_keys(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise Invalid(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def check_obj(o, allowed, where):
    need(isinstance(o, dict), f"{where}: not an object")
    extra = set(o) - allowed
    need(not extra, f"{where}: unknown keys {sorted(extra)}")


def check_hex_id(v, nbytes, where):
    need(isinstance(v, str), f"{where}: not a string")
    need(len(v) == 2 * nbytes and HEX.match(v),
         f"{where}: {v!r} is not {2 * nbytes} lowercase hex digits")
    need(v.strip("0"), f"{where}: all zero")


def check_value(v, where):
    check_obj(v, VALUE_TYPES, where)
    need(len(v) == 1, f"{where}: {len(v)} typed values, need exactly one")
    kind, x = next(iter(v.items()))
    if kind == "stringValue":
        need(isinstance(x, str), f"{where}: stringValue is not a string")
    elif kind == "intValue":
        need(isinstance(x, str) and SIGNED.match(x), f"{where}: intValue {x!r} is not a "
             "decimal string")
        need(-(1 << 63) <= int(x) < (1 << 63), f"{where}: intValue out of int64")
    elif kind == "boolValue":
        need(isinstance(x, bool), f"{where}: boolValue is not a bool")
    elif kind == "doubleValue":
        need(isinstance(x, (int, float)) and not isinstance(x, bool),
             f"{where}: doubleValue is not a number")
    return kind, x


def check_attrs(attrs, where):
    """A list of {key, value}; returns {key: (type, value)}."""
    need(isinstance(attrs, list), f"{where}: not a list")
    out = {}
    for i, a in enumerate(attrs):
        w = f"{where}[{i}]"
        check_obj(a, {"key", "value"}, w)
        need(isinstance(a.get("key"), str) and a["key"], f"{w}: no key")
        need("value" in a, f"{w}: no value")
        need(a["key"] not in out, f"{w}: duplicate attribute {a['key']!r}")
        out[a["key"]] = check_value(a["value"], f"{w}.value")
    return out


def check_span_attrs(attrs, where):
    for k in REQUIRED_STR:
        need(attrs.get(k, (None,))[0] == "stringValue", f"{where}: {k} missing or not a string")
    for k in REQUIRED_INT:
        need(attrs.get(k, (None,))[0] == "intValue", f"{where}: {k} missing or not an int")
        need(int(attrs[k][1]) >= 0, f"{where}: {k} negative")
    for k in ("server.port", "network.peer.port"):
        if k in attrs:
            need(attrs[k][0] == "intValue" and 0 <= int(attrs[k][1]) <= 65535,
                 f"{where}: {k} not a port")
    peer = [k in attrs for k in ("network.peer.address", "network.peer.port")]
    need(peer[0] == peer[1], f"{where}: network.peer.address and .port not together")
    if peer[0]:
        need(attrs["network.peer.address"][0] == "stringValue",
             f"{where}: network.peer.address not a string")
    if "sluice.reason" in attrs:
        need(attrs["sluice.reason"][0] == "stringValue" and attrs["sluice.reason"][1],
             f"{where}: sluice.reason empty or not a string")


def check_span(s, where):
    check_obj(s, KEYS_SPAN, where)
    check_hex_id(s.get("traceId"), 16, f"{where}.traceId")
    check_hex_id(s.get("spanId"), 8, f"{where}.spanId")
    if "parentSpanId" in s:
        check_hex_id(s["parentSpanId"], 8, f"{where}.parentSpanId")
    need(isinstance(s.get("name"), str) and s["name"], f"{where}.name: missing or empty")
    need(is_int(s.get("kind")), f"{where}.kind: not a number")
    need(s["kind"] == SPAN_KIND_CLIENT, f"{where}.kind: {s['kind']}, not SPAN_KIND_CLIENT")
    if "flags" in s:
        need(is_int(s["flags"]) and 0 <= s["flags"] < (1 << 32), f"{where}.flags: not a "
             "fixed32 number")
    times = []
    for k in ("startTimeUnixNano", "endTimeUnixNano"):
        v = s.get(k)
        need(isinstance(v, str) and DIGITS.match(v), f"{where}.{k}: {v!r} is not a decimal "
             "string")
        times.append(int(v))
    need(times[0] > 0 and times[1] >= times[0], f"{where}: end before start, or zero start")
    attrs = check_attrs(s.get("attributes"), f"{where}.attributes")
    check_span_attrs(attrs, f"{where}.attributes")
    need(attrs["sluice.service"][1] == s["name"], f"{where}: name is not sluice.service")
    code = 0
    if "status" in s:
        check_obj(s["status"], KEYS_STATUS, f"{where}.status")
        code = s["status"].get("code", 0)
        need(is_int(code) and code in (0, 1, 2), f"{where}.status.code: not 0, 1 or 2 as a "
             "number")
        need(isinstance(s["status"].get("message", ""), str),
             f"{where}.status.message: not a string")
    need((code == STATUS_CODE_ERROR) == ("sluice.reason" in attrs),
         f"{where}: status.code {code} but sluice.reason "
         f"{'present' if 'sluice.reason' in attrs else 'absent'}")


def check_request(req):
    """Returns (spans, resource, scope) or raises Invalid."""
    check_obj(req, KEYS_REQUEST, "request")
    rss = req.get("resourceSpans")
    need(isinstance(rss, list) and rss, "resourceSpans: missing or empty")
    spans = []
    for i, rs in enumerate(rss):
        w = f"resourceSpans[{i}]"
        check_obj(rs, KEYS_RESOURCE_SPANS, w)
        check_obj(rs.get("resource"), KEYS_RESOURCE, f"{w}.resource")
        ra = check_attrs(rs["resource"].get("attributes"), f"{w}.resource.attributes")
        need(ra.get("service.name") == ("stringValue", "sluice"),
             f"{w}.resource: service.name is not \"sluice\"")
        need(ra.get("host.name", (None,))[0] == "stringValue" and ra["host.name"][1],
             f"{w}.resource: no host.name")
        sss = rs.get("scopeSpans")
        need(isinstance(sss, list) and sss, f"{w}.scopeSpans: missing or empty")
        for j, ss in enumerate(sss):
            ws = f"{w}.scopeSpans[{j}]"
            check_obj(ss, KEYS_SCOPE_SPANS, ws)
            check_obj(ss.get("scope"), KEYS_SCOPE, f"{ws}.scope")
            need(ss["scope"].get("name") == "sluice", f"{ws}.scope.name is not \"sluice\"")
            need(isinstance(ss["scope"].get("version"), str) and ss["scope"]["version"],
                 f"{ws}.scope.version: missing")
            need(isinstance(ss.get("spans"), list) and ss["spans"], f"{ws}.spans: missing "
                 "or empty")
            for k, s in enumerate(ss["spans"]):
                check_span(s, f"{ws}.spans[{k}]")
                spans.append(s)
    return spans, rss[0]["resource"], rss[0]["scopeSpans"][0]["scope"]


class Sink:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.count = 0
        self.stopping = threading.Event()

    def record(self, line):
        if not self.args.requests:
            return
        with self.lock, open(self.args.requests, "a") as f:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporter reuses its connection

    def log_message(self, fmt, *a):
        pass

    def answer(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer(405, {"code": 12, "message": "POST only"})

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is None or not DIGITS.match(n) or int(n) > MAX_BODY:
            raise Invalid(f"Content-Length {n!r}: missing or too large")
        return self.rfile.read(int(n))

    def do_POST(self):
        sink = self.server.sink
        args = sink.args
        with sink.lock:
            sink.count += 1
            n = sink.count
        line = {"n": n, "status": 200, "spans": 0, "error": None, "resource": None,
                "scope": None, "t": time.time()}
        try:
            body = self.read_body()
        except Invalid as e:
            line.update(status=411, error=str(e))
            sink.record(line)
            self.answer(411, {"code": 3, "message": str(e)})
            return
        if args.hang:
            line.update(status=0, error="hang")
            sink.record(line)
            sink.stopping.wait(args.max_seconds)
            self.close_connection = True
            return
        if args.delay:
            time.sleep(args.delay)
        if n <= args.fail_first:
            line.update(status=args.fail_code, error="fail-first")
            sink.record(line)
            hdrs = [("Retry-After", str(args.retry_after))] if args.retry_after else []
            self.answer(args.fail_code, {"code": 14, "message": "unavailable (test)"}, hdrs)
            return
        try:
            need(self.path == "/v1/traces", f"path {self.path!r} is not /v1/traces")
            ctype = self.headers.get("Content-Type", "")
            need(ctype == "application/json", f"Content-Type {ctype!r}")
            req = json.loads(body, object_pairs_hook=no_dup_keys)
            spans, resource, scope = check_request(req)
        except (Invalid, ValueError, UnicodeDecodeError) as e:
            line.update(status=400, error=str(e))
            sink.record(line)
            print(f"otlp_sink: request {n}: {e}", file=sys.stderr, flush=True)
            self.answer(400, {"code": 3, "message": str(e)})
            return
        with sink.lock, open(args.out, "a") as f:
            for s in spans:
                f.write(json.dumps(s, separators=(",", ":")) + "\n")
        line.update(spans=len(spans), resource=resource, scope=scope)
        sink.record(line)
        rejected = min(args.partial, len(spans))
        reply = {"partialSuccess": {"rejectedSpans": str(rejected),
                                    "errorMessage": "rejected (test)"}} if rejected else {}
        self.answer(200, reply)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--requests")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-code", type=int, default=503)
    p.add_argument("--retry-after", type=int, default=0)
    p.add_argument("--hang", action="store_true")
    p.add_argument("--partial", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=600)
    args = p.parse_args()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.sink = Sink(args)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{srv.server_address[1]}\n")
        os.rename(tmp, args.port_file)

    def stop(*_):
        srv.sink.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.sink.stopping.wait(args.max_seconds)
    srv.shutdown()
    srv.server_close()


if __name__ == "__main__":
    main()
