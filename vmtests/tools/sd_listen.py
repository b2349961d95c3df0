#!/usr/bin/env python3
"""A stand-in for systemd's notify socket, for vmtests.

sd_listen.py SOCKET OUT LOGPTR SECONDS

Binds SOCKET (a path, or "@name" for the abstract namespace) as an AF_UNIX datagram
socket with SO_PASSCRED, and for each message appends one JSON line to OUT:
{"msg": "READY=1\\n...", "pid": sender pid, "log": path, "attached": bool,
 "applied": bool, "ready_logged": bool}
where the booleans say what the agent's log (the file named in the file LOGPTR) held when the
message arrived: the datapath attached or adopted, the config applied, "ready" logged.
Writes "listening" to OUT once bound. Exits after SECONDS (a bound on its life).
"""
import json
import os
import socket
import struct
import sys
import time


def main():
    path, out, logptr, life = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind("\0" + path[1:] if path.startswith("@") else path)
    s.settimeout(0.5)
    deadline = time.monotonic() + life
    creds_len = socket.CMSG_SPACE(struct.calcsize("3i"))
    with open(out, "a", buffering=1) as f:
        f.write("listening\n")
        while time.monotonic() < deadline:
            try:
                data, anc, _, _ = s.recvmsg(4096, creds_len)
            except socket.timeout:
                continue
            pid = 0
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:12])[0]
            try:
                with open(logptr) as p:
                    log = p.read().strip()
                with open(log) as g:
                    text = g.read()
            except OSError:
                log, text = "", ""
            rec = {
                "msg": data.decode(errors="replace"),
                "pid": pid,
                "log": log,
                "attached": 'msg="datapath attached"' in text
                or 'msg="adopted the pinned datapath"' in text,
                "applied": 'msg="config applied"' in text,
                "ready_logged": 'msg="ready"' in text,
            }
            f.write(json.dumps(rec) + "\n")
    if not path.startswith("@"):
        os.unlink(path)


if __name__ == "__main__":
    main()
