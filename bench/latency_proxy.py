"""A TCP proxy on 127.0.0.1 that delays every byte by half a round trip each way: a node "far away"
for benchmarks, without touching the machine's network settings (no `tc netem` on lo, which other
users of the machine would feel too).
"""

import queue
import socket
import threading
import time


class LatencyProxy:
    def __init__(self, target_host: str, target_port: int, rtt_ms: float):
        self.target = (target_host, target_port)
        self.delay = rtt_ms / 2000
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="latency-proxy").start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pipe(client, upstream)
            self._pipe(upstream, client)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        line: queue.Queue = queue.Queue()

        def receive() -> None:
            while True:
                try:
                    data = source.recv(1 << 16)
                except OSError:
                    data = b""
                line.put((time.monotonic() + self.delay, data))
                if not data:
                    return

        def send() -> None:
            while True:
                due, data = line.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    try:
                        sink.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                try:
                    sink.sendall(data)
                except OSError:
                    return

        threading.Thread(target=receive, daemon=True).start()
        threading.Thread(target=send, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.server.close()
