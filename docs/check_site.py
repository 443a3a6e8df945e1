"""Check the built site in a real browser, and take screenshots of it.

    python docs/check_site.py [--site docs/_build/html] [--out docs/_screenshots] [PAGE...]

Serves the built HTML on 127.0.0.1 (a free port), opens each page in headless Chromium
(Debian's ``chromium``) through the DevTools protocol, and fails (exit 1, one line per
problem) when a page is missing, an image on it does not load, or the browser logs an error
(a JavaScript exception, ``console.error``, a resource that failed to load), or an audio
player on it cannot load its audio. Each page is
saved as ``<out>/<page>.png`` (the first screen, 1280 x 900, and ``-full.png``: the whole
page, up to 6,000 pixels high) for a person to look at.

Without PAGE arguments it checks the front page, getting started (its audio player), one API
page, the gallery, one notebook page and the command line reference (``DEFAULT_PAGES``). Exit 2: no site, no chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PAGES = [
    "index.html",
    "getting_started.html",
    "api/generated/telnyx_audio.read_capture.html",
    "gallery/index.html",
    "tutorials/04_analysis.html",
    "cli.html",
]
VIEWPORT = (1280, 900)
MAX_FULL_HEIGHT = 6000
LOAD_TIMEOUT_S = 30.0

# After the load event: every image made to load now (the theme's lazy ones too), and every
# player its audio's metadata; then the ones that did not load, by their address.
_BROKEN_IMAGES_JS = """
(async () => {
  const images = [...document.images];
  for (const img of images) { img.loading = "eager"; }
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const broken = images.filter(img => !img.complete || img.naturalWidth === 0)
    .map(img => "image did not load: " + (img.currentSrc || img.src));
  // players: each must load its audio's metadata (duration) within 10 s
  const media = [...document.querySelectorAll("audio, video")];
  const ready = m => new Promise(resolve => {
    if (m.readyState >= 1) return resolve(true);
    if (m.error) return resolve(false);
    m.addEventListener("loadedmetadata", () => resolve(true), {once: true});
    m.addEventListener("error", () => resolve(false), {once: true});
    setTimeout(() => resolve(m.readyState >= 1), 10000);
    m.preload = "metadata"; m.load();
  });
  const loaded = await Promise.all(media.map(ready));
  media.forEach((m, i) => { if (!loaded[i]) broken.push("audio did not load: " + (m.currentSrc || m.src || "(no source)").slice(0, 120)); });
  return broken;
})()
"""


@dataclass
class PageResult:
    """What one page showed: its HTTP status, problems found and the screenshots written."""

    page: str
    status: int | None = None
    problems: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


class _Handler(http.server.SimpleHTTPRequestHandler):
    statuses: dict[str, int]

    def log_request(self, code="-", size="-") -> None:  # noqa: D102 (the server's log, kept quiet)
        self.statuses[self.path.split("?", 1)[0].split("#", 1)[0]] = int(code) if str(code).isdigit() else 0

    def log_message(self, format, *args) -> None:  # noqa: A002, D102
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, dict[str, int]]:
    """Serve ``site`` on 127.0.0.1 on a free port, in a thread; return the server and the
    status of every path requested so far."""
    statuses: dict[str, int] = {}
    handler = functools.partial(type("Handler", (_Handler,), {"statuses": statuses}), directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, statuses


class Browser:
    """Headless Chromium driven over its DevTools WebSocket (one page target at a time)."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.profile = tempfile.mkdtemp(prefix="check_site-")
        self.proc: subprocess.Popen | None = None
        self.ws = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future] = {}
        self._events: asyncio.Queue = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        """Start the browser and connect to it."""
        import websockets

        args = [
            self.executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", "about:blank",
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode} before it listened")
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("chromium did not open its DevTools port within 30 s")
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = await websockets.connect(f"ws://127.0.0.1:{port}{path}", max_size=None)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if "id" in message and message["id"] in self._pending:
                self._pending.pop(message["id"]).set_result(message)
            else:
                await self._events.put(message)

    async def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """One DevTools command; its result, or RuntimeError with the browser's error."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self.ws.send(json.dumps(message))
        reply = await asyncio.wait_for(future, LOAD_TIMEOUT_S)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    async def check(self, url: str) -> tuple[list[str], bytes, bytes]:
        """Open ``url`` in a fresh tab; return the errors the browser reported, the first
        screen and the whole page as PNG bytes."""
        target = (await self.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        errors: list[str] = []
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                await self.send(f"{domain}.enable", session=session)
            # every page and file from the server, never from the browser's cache (so each
            # request's status is seen)
            await self.send("Network.setCacheDisabled", {"cacheDisabled": True}, session)
            width, height = VIEWPORT
            await self.send("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
            while not self._events.empty():
                self._events.get_nowait()
            await self.send("Page.navigate", {"url": url}, session)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + LOAD_TIMEOUT_S
            loaded = False
            while not loaded:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    errors.append(f"the page did not finish loading within {LOAD_TIMEOUT_S:.0f} s")
                    break
                try:
                    event = await asyncio.wait_for(self._events.get(), remaining)
                except TimeoutError:
                    continue
                if event.get("sessionId") != session:
                    continue
                loaded = event.get("method") == "Page.loadEventFired"
                errors.extend(_error_of(event))
            found = await self.send("Runtime.evaluate", {"expression": _BROKEN_IMAGES_JS, "awaitPromise": True,
                                                          "returnByValue": True}, session)
            errors.extend(found.get("result", {}).get("value", []))
            await asyncio.sleep(0.5)  # scripts that run after load (the theme's) get to log
            while not self._events.empty():
                event = self._events.get_nowait()
                if event.get("sessionId") == session:
                    errors.extend(_error_of(event))
            first = await self.send("Page.captureScreenshot", {"format": "png"}, session)
            metrics = await self.send("Page.getLayoutMetrics", session=session)
            full_height = min(int(metrics["cssContentSize"]["height"]), MAX_FULL_HEIGHT)
            full = await self.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": full_height, "scale": 1}}, session)
        finally:
            await self.send("Target.closeTarget", {"targetId": target})
        return errors, base64.b64decode(first["data"]), base64.b64decode(full["data"])

    async def close(self) -> None:
        """Stop the browser and remove its profile."""
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def _error_of(event: dict) -> list[str]:
    """The errors one DevTools event reports (none for most events)."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        text = details.get("exception", {}).get("description") or details.get("text", "")
        return [f"JavaScript exception: {text.splitlines()[0] if text else details}"]
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
        return [f"console.{params['type']}: {text}"]
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return [f"browser error: {entry.get('text')} {entry.get('url', '')}".rstrip()]
    if method == "Network.loadingFailed" and not params.get("canceled"):
        return [f"failed to load a resource: {params.get('errorText')} (request {params.get('requestId')})"]
    return []


def screenshot_name(page: str) -> str:
    """The file name of a page's screenshot: its path with ``/`` as ``__``, without ``.html``
    (and its query, if any, made safe: ``search-q_capture``)."""
    path, _, query = page.partition("?")
    name = path.removesuffix(".html").replace("/", "__") or "index"
    return name + ("-" + re.sub(r"[^\w.-]+", "_", query) if query else "")


async def check_pages(site: Path, pages: list[str], out: Path, chromium: str) -> list[PageResult]:
    """Check every page of ``site`` named in ``pages``; write screenshots into ``out``."""
    server, statuses = serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    browser = Browser(chromium)
    results = []
    try:
        await browser.start()
        out.mkdir(parents=True, exist_ok=True)
        for page in pages:
            result = PageResult(page)
            errors, first, full = await browser.check(base + page)
            path = "/" + page.split("?", 1)[0].split("#", 1)[0]
            result.status = statuses.get(path)
            if result.status not in (200, 304):  # 304: the browser's copy of it is current
                result.problems.append(f"missing page: HTTP {result.status}")
            missing = sorted(p for p, code in statuses.items() if code >= 400 and p != path)
            result.problems += [f"missing file: {p} (HTTP {statuses[p]})" for p in missing]
            result.problems += errors
            statuses.clear()
            name = screenshot_name(page)
            for suffix, data in (("", first), ("-full", full)):
                path = out / f"{name}{suffix}.png"
                path.write_bytes(data)
                result.screenshots.append(path)
            results.append(result)
    finally:
        await browser.close()
        server.shutdown()
        server.server_close()
    return results


def main(argv: list[str] | None = None) -> int:
    """The command: check, print one line per page and per problem, exit 1 on any problem."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", help="pages to check, relative to the site (default: %(default)s)",
                        default=DEFAULT_PAGES)
    parser.add_argument("--site", type=Path, default=HERE / "_build" / "html", help="the built site")
    parser.add_argument("--out", type=Path, default=HERE / "_screenshots", help="where screenshots go")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "chromium"), help="the browser to run")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"check_site: no built site at {args.site} (run `make docs` first)", file=sys.stderr)
        return 2
    chromium = shutil.which(args.chromium)
    if chromium is None:
        print(f"check_site: {args.chromium!r} not found: install Debian's chromium", file=sys.stderr)
        return 2
    results = asyncio.run(check_pages(args.site, list(args.pages), args.out, chromium))
    failed = 0
    for result in results:
        state = "FAIL" if result.problems else "ok"
        print(f"{state:4} {result.page} -> {result.screenshots[0]}")
        for problem in result.problems:
            print(f"     {problem}")
        failed += bool(result.problems)
    print(f"check_site: {len(results) - failed} of {len(results)} pages without problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
