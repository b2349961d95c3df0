#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Drive one page in headless Chromium in real time, for vmtests/61-ui.sh.

  live_page.py URL           open URL, then read commands on stdin, one per line:
    dom FILE                 the page's DOM now (outerHTML) into FILE
    fetches                  how many GET /graph the page has completed so far
    shot FILE W H            a PNG screenshot of W x H pixels into FILE
    quit
  Each command answers one line on stdout: "ok [VALUE]" or "error WHY".

Chromium's --dump-dom runs on virtual time and dumps once; this keeps the page open and looks
at it whenever the test asks, through the DevTools protocol over a pipe
(--remote-debugging-pipe: NUL-terminated JSON messages on fds 3 and 4), so no port is opened.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

CHROMIUM = os.environ.get("CHROMIUM", "chromium")


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="sl-live-page.")
        to_chrome_r, self.w = os.pipe()
        self.r, from_chrome_w = os.pipe()
        # The child's fd 3 reads our commands, its fd 4 writes the answers.
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
             "--window-size=1400,900", "about:blank"],
            pass_fds=(3, 4), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.profile, "chromium.err"), "w"),
            preexec_fn=lambda: (os.dup2(to_chrome_r, 3), os.dup2(from_chrome_w, 4)))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def send(self, method, params=None, deadline=15.0):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + deadline
        while True:
            while b"\0" not in self.buf:
                if time.monotonic() > end:
                    raise RuntimeError(f"{method}: no answer in {deadline} s")
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"{method}: chromium closed the pipe")
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            ans = json.loads(raw)
            if ans.get("id") == self.next_id:
                if "error" in ans:
                    raise RuntimeError(f"{method}: {ans['error'].get('message')}")
                return ans.get("result", {})

    def open(self, url):
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": page["targetId"], "flatten": True})["sessionId"]
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})

    def eval(self, expr):
        res = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"evaluate: {res['exceptionDetails'].get('text')}")
        return res["result"].get("value")

    def shot(self, path, width, height):
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", deadline=5)
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["rm", "-rf", self.profile], check=False)


FETCHES = ("performance.getEntriesByType('resource')"
           ".filter(e => new URL(e.name).pathname === '/graph').length")


def serve(b):
    for line in sys.stdin:
        cmd = line.split()
        try:
            if not cmd:
                continue
            if cmd[0] == "quit":
                print("ok", flush=True)
                return
            if cmd[0] == "dom" and len(cmd) == 2:
                with open(cmd[1], "w", encoding="utf-8") as f:
                    f.write(b.eval("document.documentElement.outerHTML"))
                print("ok", flush=True)
            elif cmd[0] == "fetches":
                print(f"ok {int(b.eval(FETCHES))}", flush=True)
            elif cmd[0] == "shot" and len(cmd) == 4:
                b.shot(cmd[1], int(cmd[2]), int(cmd[3]))
                print("ok", flush=True)
            else:
                print(f"error unknown command {line.strip()!r}", flush=True)
        except (RuntimeError, OSError, ValueError, TypeError) as e:
            print(f"error {e}", flush=True)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    b = Browser()
    try:
        b.open(sys.argv[1])
        print("ok", flush=True)
        serve(b)
    except (RuntimeError, OSError, StopIteration) as e:
        print(f"error {e}", flush=True)
        return 1
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
