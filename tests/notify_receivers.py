"""Real receivers on loopback for the notification tests and bench/notifications.py:
HTTP servers (http.server, one thread per request) that answer as a
well-behaved webhook, a slow one, a failing-then-recovering one, one that
closes the connection and one that is gone; and an SMTP server (aiosmtpd).
"""

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that records every request it read.

    behaviour: "ok" (204), "slow" (answers after `delay` seconds), "flaky"
    (500 for the first `failures` requests, then 200), "closing" (reads the
    request and closes the connection without answering), "gone" (410).
    """

    daemon_threads = True

    def __init__(self, behaviour: str = "ok", *, delay: float = 2.0, failures: int = 1):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour, self.delay, self.failures = behaviour, delay, failures
        self.requests: list[dict] = []  # {"headers", "body", "received"} in arrival order
        self.arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook/secret-path-token"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout)
        return list(self.requests)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server = self.server
        with server.arrived:
            server.requests.append({"headers": dict(self.headers), "body": body, "received": time.monotonic()})
            count = len(server.requests)
            server.arrived.notify_all()
        if server.behaviour == "closing":
            self.close_connection = True
            return
        if server.behaviour == "slow":
            time.sleep(server.delay)
        code = {"ok": 204, "slow": 200, "gone": 410}.get(server.behaviour, 200)
        if server.behaviour == "flaky":
            code = 500 if count <= server.failures else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def receiver(behaviour: str = "ok", **kwargs):
    """A running Receiver, shut down on exit."""
    server = Receiver(behaviour, **kwargs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _Mailbox:
    def __init__(self):
        self.messages: list = []  # aiosmtpd Envelopes

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd): yields (port, messages)."""
    from aiosmtpd.controller import Controller

    from tests.real_services import free_port

    mailbox, port = _Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox.messages
    finally:
        controller.stop()
