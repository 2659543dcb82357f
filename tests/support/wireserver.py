"""A loopback stand-in for ``riffpad serve`` (and for Riffusion's Flask server) to test the
client's faults without Ray: stdlib HTTP on 127.0.0.1, the real wire format
(riffpad.engine.wire) and the real engine on the tiny model. Modes script the faults:
``ok``, ``slow``, ``garbage``, ``loading``, ``riffusion`` (JPEG + MP3, no /health)."""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import soundfile

from riffpad.engine import wire


class WireServer:
    def __init__(self, engine, port: int = 0, mode: str = "ok", token: str | None = None):
        self.engine, self.mode, self.token = engine, mode, token
        self.requests: list[dict] = []
        self.slow_s = 3.0
        self.lock = threading.Lock()
        self.sockets: set = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Ray Serve's proxy

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                outer.sockets.add(self.connection)

            def finish(self):
                outer.sockets.discard(self.connection)
                super().finish()

            def _send(self, status, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if outer.mode == "riffusion" or self.path != "/health":
                    return self._send(404, b"not found", "text/html")
                ready = outer.mode != "loading"
                body = {"status": "ready" if ready else "loading", "model": "tiny"}
                body.update(device="cpu", replicas=1, seed_images=outer.engine.seed_images())
                self._send(200 if ready else 503, body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                data = json.loads(self.rfile.read(n))
                outer.requests.append(data)
                if outer.token and self.headers.get("Authorization") != f"Bearer {outer.token}":
                    return self._send(401, {"error": "missing or wrong token"})
                if outer.mode == "loading":
                    return self._send(503, {"error": "loading the model"})
                if outer.mode == "garbage":
                    return self._send(200, {"image": "data:image/png;base64,AAAA", "audio": 3})
                if outer.mode == "slow":
                    time.sleep(outer.slow_s)
                try:
                    request = wire.parse_inference_input(data)
                except ValueError as exc:
                    return self._send(400, {"error": str(exc)})
                try:
                    with outer.lock:
                        take = outer.engine.render(request)
                except ValueError as exc:  # RequestError, SeedError
                    return self._send(400, {"error": str(exc)})
                if outer.mode == "riffusion":
                    return self._send(200, riffusion_answer(take))
                self._send(200, wire.encode_output(take))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """As if the process died: no more accepts, every open connection cut."""
        import socket

        self.httpd.shutdown()
        self.httpd.server_close()
        for sock in list(self.sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def riffusion_answer(take) -> dict:
    """What Riffusion's server answers: JPEG image, MP3 audio (libsndfile writes MP3)."""
    img = io.BytesIO()
    take.image.save(img, format="JPEG")
    mp3 = io.BytesIO()
    audio = np.asarray(take.audio, np.float32)
    soundfile.write(mp3, audio, take.sample_rate, format="MP3", subtype="MPEG_LAYER_III")
    return {
        "image": wire.data_url("image/jpeg", img.getvalue()),
        "audio": wire.data_url("audio/mpeg", mp3.getvalue()),
        "duration_s": len(audio) / take.sample_rate,
    }
