"""Train the seed CNN in a browser tab: export the graphs, fetch onnxruntime-web, serve the page on 127.0.0.1.

One command: ``python examples/train_in_browser/run.py [--port 8000]``, then open the printed address. It
exports the seed CNN and the real digits into ``examples/train_in_browser/build/`` (``export_for_js.py``) when
they are missing, runs ``npm install --ignore-scripts`` here when onnxruntime-web is missing (its WASM files
are served from ``node_modules/onnxruntime-web/dist``: no CDN), and serves this folder as static files, bound
to 127.0.0.1 only. ``python -m http.server --bind 127.0.0.1`` in this folder serves the same page once the
two steps are done.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
DIST = HERE / "node_modules" / "onnxruntime-web" / "dist"
_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
          ".onnx": "application/octet-stream", ".bin": "application/octet-stream", ".json": "application/json",
          ".html": "text/html; charset=utf-8", ".map": "application/json"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the types browsers insist on (module scripts, streamed WASM); ``/build/`` may be mounted
    from another folder."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **_TYPES}

    def __init__(self, *args, build: Path | None = None, **kwargs):
        self.build = build
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        clean = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
        if self.build is not None and clean.startswith("/build/"):
            relative = clean[len("/build/"):]
            if ".." in Path(relative).parts:
                return str(self.build / "missing")
            return str(self.build / relative)
        return super().translate_path(path)

    def log_message(self, format: str, *args) -> None:  # keep the terminal for the address and errors
        if args and str(args[1]).startswith(("4", "5")):
            super().log_message(format, *args)


def serve(host: str = "127.0.0.1", port: int = 8000, build: str | os.PathLike[str] | None = None
          ) -> http.server.ThreadingHTTPServer:
    """Start serving this folder in a background thread (``build`` mounts another folder at ``/build/``)."""
    handler = functools.partial(_Handler, directory=str(HERE), build=Path(build) if build is not None else None)
    server = http.server.ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="train_in_browser", daemon=True).start()
    return server


def prepare(build: Path = HERE / "build", fresh: bool = False) -> None:
    """Export the graphs and digits (if missing or ``fresh``) and install onnxruntime-web (if missing)."""
    if fresh or not (build / "train_step.onnx").exists():
        sys.path.insert(0, str(HERE.parent))
        import export_for_js

        export_for_js.main([str(build)])
    if not DIST.is_dir():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed once to fetch onnxruntime-web (install Node.js), or copy "
                             "node_modules/onnxruntime-web here")
        subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=HERE, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fresh", action="store_true", help="export the untrained model again")
    args = parser.parse_args()
    prepare(fresh=args.fresh)
    server = serve(port=args.port)
    print(f"Open http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
