"""A loopback TCP relay that cuts the line: it forwards 127.0.0.1:<port> to a device's port and, once a set
number of client-to-device bytes has passed, resets both sides (for the fault soak)."""
from __future__ import annotations

import selectors
import socket
import struct
import threading


class CuttingRelay:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut_at: int | None = None      # client->device bytes after which the connection is cut
        self.forwarded = 0                  # client->device bytes of the current connection
        self.cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, name="relay-accept", daemon=True)
        self._accept.start()

    def arm(self, cut_at: int | None) -> None:
        self.cut_at, self.forwarded = cut_at, 0
        self.cut.clear()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            t = threading.Thread(target=self._pipe, args=(client,), name="relay-pipe", daemon=True)
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            device = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            _reset(client)
            return
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, device)
        sel.register(device, selectors.EVENT_READ, client)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.2):
                    src, dst = key.fileobj, key.data
                    data = src.recv(65536)
                    if not data:
                        return
                    if src is client:
                        room = len(data) if self.cut_at is None else self.cut_at - self.forwarded
                        if room < len(data) or (self.cut_at is not None and room == len(data)):
                            dst.sendall(data[:max(room, 0)])
                            self.forwarded += max(room, 0)
                            self.cut.set()
                            return
                        self.forwarded += len(data)
                    dst.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            _reset(client)
            _reset(device)

    def close(self) -> None:
        self._stop.set()
        self._accept.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)
        self._listener.close()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a dropped line looks to the side that writes next."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
