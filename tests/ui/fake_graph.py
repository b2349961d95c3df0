#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A stand-in for sluiced's metrics listener, for the /ui browser test.

Serves GET /ui from --page and GET /graph from a scripted sequence: the n-th /graph request
gets entry n of --sequence (a JSON array), and every request after the last gets the last.
An entry is either a graph document, served as application/json, or an error response
{"_status": 503, "_body": "text"} (served as text/plain). Any other path gets 404.

Every request line is appended to --log as "METHOD PATH" (path with its query), flushed at
once, so the test can fail on anything the page fetched besides /ui and /graph.
Listens on 127.0.0.1 only, on --port (0: a free port), and writes the port to --port-file.
"""
import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-sluiced"

    def log_message(self, fmt, *args):
        pass

    def record(self):
        with self.server.lock:
            self.server.log.write(f"{self.command} {self.path}\n")
            self.server.log.flush()

    def send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self.record()
        path = self.path.split("?", 1)[0]
        if path == "/ui":
            self.send(200, "text/html; charset=utf-8", self.server.page)
        elif path == "/graph":
            with self.server.lock:
                seq = self.server.sequence
                entry = seq[min(self.server.served, len(seq) - 1)]
                self.server.served += 1
            if isinstance(entry, dict) and "_status" in entry:
                self.send(int(entry["_status"]), "text/plain",
                          str(entry.get("_body", "error")).encode())
            else:
                self.send(200, "application/json", json.dumps(entry).encode())
        else:
            self.send(404, "text/plain", b"not found\n")

    do_HEAD = do_GET

    def do_POST(self):
        self.record()
        self.send(405, "text/plain", b"method not allowed\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", required=True, help="the HTML served at /ui")
    ap.add_argument("--sequence", required=True, help="JSON array of /graph answers")
    ap.add_argument("--log", required=True, help="request log, one line per request")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()

    with open(a.page, "rb") as f:
        page = f.read()
    with open(a.sequence, encoding="utf-8") as f:
        sequence = json.load(f)
    if not isinstance(sequence, list) or not sequence:
        sys.exit(f"fake_graph: {a.sequence}: expected a non-empty JSON array")

    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.page, srv.sequence, srv.served = page, sequence, 0
    srv.lock = threading.Lock()
    srv.log = open(a.log, "a", encoding="utf-8")
    with open(a.port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(f"{srv.server_address[1]}\n")
    # Renamed into place so that the test never reads a half-written port.
    os.rename(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
