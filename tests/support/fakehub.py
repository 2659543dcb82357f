"""A Hugging Face Hub stand-in on loopback, for ``HF_ENDPOINT``: it answers the calls
huggingface_hub makes to download a model (read from huggingface_hub's hf_api.model_info,
file_download.get_hf_file_metadata and http_get):

- ``GET /api/models/{repo}/revision/{rev}?blobs=true``: JSON with ``sha`` and ``siblings``
  (``rfilename``, ``size``, ``blobId``, ``lfs`` {sha256, size, pointerSize});
- ``GET /api/models/{repo}/tree/{rev}?recursive=True`` (snapshot_download's file list): a
  list of {type: file, path, size, oid, lfs {oid, size, pointerSize}};
- ``HEAD /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``
  (the sha256 of LFS files), ``Content-Length``/``X-Linked-Size``;
- ``GET`` of the same URL, honouring ``Range: bytes=N-`` with 206 and ``Content-Range``.
Errors carry the Hub's ``X-Error-Code`` header (RepoNotFound, RevisionNotFound, EntryNotFound).

``cut`` makes the first GET of a file send half its bytes and drop the connection (a network
outage mid-file); ``fail`` answers 500 for a file until cleared. Every request is logged.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "1234567890abcdef1234567890abcdef12345678"


class FakeHub:
    def __init__(self, repos: dict[str, dict[str, bytes]], branches=("main",)):
        self.repos = repos
        self.branches = set(branches)
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.cut: set[str] = set()
        self.fail: set[str] = set()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._serve(self, head=True)

            def do_GET(self):
                hub._serve(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def gets(self, path_suffix: str) -> list[str | None]:
        """Range headers of the GETs of a file (None: whole file)."""
        return [r for m, p, r in self.log if m == "GET" and p.endswith("/" + path_suffix)]

    # -- serving ------------------------------------------------------------------------
    def _error(self, h, status: int, code: str, head: bool) -> None:
        body = json.dumps({"error": code}).encode()
        h.send_response(status)
        h.send_header("X-Error-Code", code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _revision_ok(self, rev: str) -> bool:
        return rev in self.branches or rev == COMMIT

    def _serve(self, h, head: bool) -> None:
        url = urlparse(h.path)
        path = unquote(url.path)
        self.log.append((h.command, path, h.headers.get("Range")))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"]:
            repo = "/".join(parts[2:4])
            if repo not in self.repos:
                return self._error(h, 404, "RepoNotFound", head)
            rev = parts[5] if len(parts) > 5 and parts[4] in ("revision", "tree") else "main"
            if not self._revision_ok(rev):
                return self._error(h, 404, "RevisionNotFound", head)
            siblings, tree = [], []
            for name, data in sorted(self.repos[repo].items()):
                sha = hashlib.sha256(data).hexdigest()
                lfs = {"sha256": sha, "size": len(data), "pointerSize": 134}
                siblings.append(
                    {"rfilename": name, "size": len(data), "blobId": sha[:40], "lfs": lfs}
                )
                lfs_tree = {"oid": sha, "size": len(data), "pointerSize": 134}
                tree.append(
                    {
                        "type": "file",
                        "path": name,
                        "size": len(data),
                        "oid": sha[:40],
                        "lfs": lfs_tree,
                    }
                )
            if parts[4:5] == ["tree"]:  # list_repo_tree (recursive, one page)
                body = json.dumps(tree).encode()
            else:
                body = json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if not head:
                h.wfile.write(body)
            return
        # /{owner}/{name}/resolve/{rev}/{path...}
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(h, 404, "EntryNotFound", head)
        repo, rev, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        if repo not in self.repos:
            return self._error(h, 404, "RepoNotFound", head)
        if not self._revision_ok(rev):
            return self._error(h, 404, "RevisionNotFound", head)
        if name not in self.repos[repo]:
            return self._error(h, 404, "EntryNotFound", head)
        if name in self.fail and not head:
            return self._error(h, 500, "Internal", head)
        data = self.repos[repo][name]
        sha = hashlib.sha256(data).hexdigest()
        start = 0
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes=") and not head:
            start = int(rng[6:].split("-")[0])
        body = data[start:]
        h.send_response(206 if start else 200)
        h.send_header("X-Repo-Commit", COMMIT)
        h.send_header("ETag", f'"{sha}"')
        h.send_header("X-Linked-Etag", f'"{sha}"')
        h.send_header("X-Linked-Size", str(len(data)))
        h.send_header("Content-Length", str(len(body)))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if head:
            return
        if name in self.cut:
            self.cut.discard(name)
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(body)


def repo_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
