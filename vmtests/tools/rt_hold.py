#!/usr/bin/env python3
"""Long-lived connections doing echo round trips, for vmtests.

rt_hold.py HOST PORT CONNECTIONS SECONDS [INTERVAL_MS]

Opens CONNECTIONS TCP connections to HOST:PORT (an echo server behind it), writes
"ready CONNECTIONS" once they are all open, then on each connection sends a 16-byte
message every INTERVAL_MS (default 100) and checks that the same bytes come back,
for SECONDS. Prints "roundtrips N" and "failed N" and exits 0 only if none failed.
Every socket operation has a 2 s timeout, so the run is bounded.
"""
import socket
import sys
import time


def main():
    host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    interval = (int(sys.argv[5]) if len(sys.argv) > 5 else 100) / 1000.0
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=2)
        s.settimeout(2)
        conns.append(s)
    print(f"ready {n}", flush=True)
    ok = failed = 0
    end = time.monotonic() + secs
    seq = 0
    while time.monotonic() < end:
        for i, s in enumerate(conns):
            if s is None:
                continue
            msg = f"{i:04d}-{seq:010d}\n".encode()
            try:
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(len(msg) - len(got))
                    if not chunk:
                        raise ConnectionError("closed")
                    got += chunk
                if got != msg:
                    raise ConnectionError("wrong bytes")
                ok += 1
            except (OSError, ConnectionError) as e:
                print(f"connection {i}: {e}", file=sys.stderr, flush=True)
                failed += 1
                s.close()
                conns[i] = None
        seq += 1
        time.sleep(interval)
    for s in conns:
        if s is not None:
            s.close()
    print(f"roundtrips {ok}")
    print(f"failed {failed}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
