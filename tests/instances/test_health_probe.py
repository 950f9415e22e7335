"""Health URLs are probed from the node all at once, in one remote command per round."""

import http.server
import socket
import threading
import time

import pytest

from instances.commands.http_probe import parse_probe
from instances.health import probe_until_healthy, probe_urls
from tests.drivers.helpers import ssh_driver


def test_parse_probe_reads_each_urls_exit_code_and_output():
    urls = ["http://a/", "http://b/", "http://c/"]
    out = b"\x1e1 0\nok\n\x1e2 22\ncurl: (22) 503\n"
    assert parse_probe(out, urls) == {
        "http://a/": (True, "ok"),
        "http://b/": (False, "curl: (22) 503"),
        "http://c/": (False, "no answer from the probe"),
    }


class CountingDriver:
    def __init__(self, driver):
        self.driver, self.runs = driver, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self.driver.run(*args, **kwargs)


@pytest.fixture
def servers():
    """An HTTP server answering 200, and two sockets that accept but never answer."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"fine")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    silent = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        silent.append(s)
    yield f"http://127.0.0.1:{server.server_port}/health", [f"http://127.0.0.1:{s.getsockname()[1]}/" for s in silent]
    server.shutdown()
    for s in silent:
        s.close()


@pytest.mark.testbed
def test_urls_are_probed_concurrently_in_one_command(ssh_node, servers):
    ok_url, silent_urls = servers
    with ssh_driver(ssh_node) as connected:
        driver = CountingDriver(connected)
        started = time.monotonic()
        results = probe_urls(driver, [ok_url, *silent_urls, "file:///etc/passwd"])
        elapsed = time.monotonic() - started

    assert driver.runs == 1
    assert results[ok_url] == (True, "")  # the body is never kept
    assert all(not results[url][0] for url in silent_urls)
    assert results["file:///etc/passwd"] == (False, "file:///etc/passwd is not an http or https URL; it is not probed.")
    assert elapsed < 8, "two 5 s timeouts ran one after the other"  # serial: more than 10 s


@pytest.mark.testbed
def test_probing_until_healthy_polls_quickly(ssh_node):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    def start_later():
        time.sleep(1.0)
        server = http.server.HTTPServer(("127.0.0.1", port), Ok)
        server.timeout = 5
        server.handle_request()
        server.server_close()

    threading.Thread(target=start_later, daemon=True).start()
    with ssh_driver(ssh_node) as connected:
        driver = CountingDriver(connected)
        started = time.monotonic()
        failing, _ = probe_until_healthy(driver, [url], within=10)
    assert failing == [] and driver.runs >= 3  # ~0.3 s apart, not 1 s
    assert time.monotonic() - started < 2.5
