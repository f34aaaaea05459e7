"""Helpers for data-set tests: small fake MNIST files, IDX writer, a local HTTP mirror."""

import gzip
import hashlib
import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

SERVER_LIFETIME_S = 30  # a forgotten server shuts itself down after this


def refused_url(name="mnist.npz"):
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def small_mnist(n_train=12, n_test=5, seed=0):
    """Arrays shaped like MNIST's, only fewer: uint8 images (N, 28, 28), labels 0-9."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def npz_bytes(arrays):
    """The bytes of a compressed .npz of `arrays`, as a mirror would serve them."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_idx(path, array, code=0x08):
    """Write `array` as an IDX file (gzip-compressed when the name ends in .gz)."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    data = header + np.asarray(array, dtype).tobytes()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


class Mirror:
    """A local HTTP server: `routes` maps a path to bytes (or a callable handler); 404 otherwise."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                route = mirror.routes.get(self.path)
                if callable(route):
                    route(self)
                elif route is None:
                    self.send_error(404, "Not Found")
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route)))
                    self.end_headers()
                    self.wfile.write(route)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.watchdog = threading.Timer(SERVER_LIFETIME_S, self.server.shutdown)
        self.watchdog.daemon = True

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def start(self):
        self.thread.start()
        self.watchdog.start()
        return self

    def stop(self):
        self.watchdog.cancel()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


