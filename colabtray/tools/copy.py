"""``colabtray cp``: files both ways between this machine and a runtime, through the runtime's
own Jupyter contents API (the one door Colab opens to a runtime's files).

One side is ``NAME:PATH`` (a runtime and a path on it: relative paths are under ``/content``
as in Colab's file browser, absolute ones are the runtime's own), the other a local path.

Why it works the way it does:

* **Downloads** stream ``GET /files/PATH``: Jupyter serves the file from disk piece by piece
  with its length, where ``/api/contents/PATH?content=1`` would put all of it, in base64, into
  one JSON reply that has to be read whole. The bytes go to a hidden temporary file beside the
  destination, renamed over it only when every byte is there and checked.
* **Uploads** use the contents API's chunked save (``chunk: 1, 2, …, -1``, CHUNK bytes each)
  to a temporary name beside the destination, renamed with ``PATCH`` once complete and
  checked: a notebook never opens half a file under the name it expects. The contents API
  will not rename over a file, so an existing one is moved aside first (and put back if the
  rename fails).
* **Checked**: the size always; the hash as well (``?hash=1``, jupyter_server 2.11 and later)
  when the runtime tells it and the file is at most HASH_LIMIT: Jupyter reads the whole file
  into memory to hash it, and a runtime must not be knocked over by its own check.
* **Nothing half-written stays**: a temporary file given up is removed on either side. On the
  runtime it is emptied first, because Colab's Jupyter sends deleted files to
  ``/content/.Trash-0``, where a partial copy would keep its disk space.
* **Memory**: at most two CHUNKs and their base64 are held at a time, whatever the file size.
* **Keep-alive**: while copying, the running app is told about once a minute (``activity``,
  through colabtray.tools.reach).
  Without a running app nothing keeps runtimes alive, so there is nobody to tell.
* **A runtime's answers are hostile input** (colabtray.tools.listing): a model unlike
  Jupyter's, a name in a listing that is not one file name here, a tree more than 32 folders
  deep (a link to a folder it is in) or of more than 100,000 entries, or a local link that
  would take a path outside the destination stops the copy, in one sentence, before anything
  is written. Local paths are made of checked names only, never of the runtime's ``path``.
* **One sentence on failure**: a runtime that stops answering mid-way is asked about (is it
  still listed, does it answer) so the sentence says whether it was disconnected or the
  connection broke, and always what was not written.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import json
import logging
import os
import posixpath
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import aiohttp
from yarl import URL

from colabtray import __version__
from colabtray.colab import errors
from colabtray.colab.client import RUNTIME_TOKEN_HEADER
from colabtray.errors import UserError
from colabtray.settings import Settings
from colabtray.system import trust
from colabtray.text import printable
from colabtray.tools import listing, reach

log = logging.getLogger(__name__)

MIB = 1024 * 1024
CHUNK = 4 * MIB  # per upload request: 5.6 MB of JSON, well under any front end's limit
SLICE = 256 * 1024  # what is handed to the connection at a time
HASH_LIMIT = 512 * MIB
ANSWER_LIMIT = 64 * MIB  # a contents API reply (a listing of MAX_ENTRIES is about 30 MB)
READ_TIMEOUT = 120.0  # a runtime silent this long mid-transfer is not coming back
TOKEN_AHEAD = timedelta(seconds=60)  # renew the proxy token this long before it expires
WHY_LOST_WITHIN = 8.0  # how long to find out whether a silent runtime was disconnected
PART = "colabtray-part"  # the temporary files' suffix, on either side

Ask = reach.Ask
Parts = tuple[str, ...]  # a path under the folder copied, as its names (each one checked)


class CopyError(UserError):
    """The copy failed: one sentence saying why and what was not written."""


class CopyUsageError(CopyError):
    """The command line names no runtime, or two (exit status 2, as for other usage errors)."""


class _Lost(Exception):
    """The runtime stopped answering (a broken connection, its proxy gone)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Refused(Exception):
    """The runtime said no, or the file did not arrive intact; ``reason`` starts the sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---- where: NAME:PATH or a local path ----------------------------------------------------


@dataclass(frozen=True)
class Remote:
    """A path on a runtime: ``path`` relative to the Jupyter root (``content/data/x.csv``)."""

    runtime: str
    path: str
    folder: bool  # written with a trailing slash: it must be a folder


def location(text: str) -> Remote | None:
    """``NAME:PATH`` as a Remote; None for a local path (a colon after a slash, or a Windows
    drive letter, belongs to a local path; ``./a:b`` is always local)."""
    name, colon, rest = text.partition(":")
    if not colon or not name.strip() or "/" in name or "\\" in name:
        return None
    if os.name == "nt" and len(name) == 1:
        return None
    return Remote(name.strip(), api_path(rest), rest.endswith("/"))


def api_path(text: str) -> str:
    """A runtime path as the contents API takes it: relative to ``/`` (Colab's Jupyter root),
    with relative paths under ``/content``."""
    joined = text if text.startswith("/") else posixpath.join("/content", text)
    return posixpath.normpath(joined).lstrip("/")


def shown(path: str) -> str:
    """A runtime path as a Colab user knows it: relative to ``/content``, else absolute."""
    if path.startswith("content/"):
        return path.removeprefix("content/")
    return "/" + path


# ---- one runtime's files, through its proxy ----------------------------------------------


class RuntimeFiles:
    """One runtime's Jupyter contents API, reached through its proxy with its proxy token
    (asked of colabtray, renewed before it expires and once more if refused).

    aiohttp rather than httpx2: it reads a 200 MB download in large pieces at about the
    speed of the link here, where httpx2's 64 KiB reads cost a third more time."""

    def __init__(self, settings: Settings, ask: Ask, query: str) -> None:
        self._ask = ask
        self._query = query
        self.name = query
        self.endpoint = ""
        self._base = ""
        self._token = ""
        self._expires = datetime.max.replace(tzinfo=UTC)
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=trust.verification(settings)),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=settings.request_timeout, sock_read=READ_TIMEOUT
            ),
            headers={"User-Agent": f"colabtray/{__version__}", "Accept-Encoding": "identity"},
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=True,  # HTTPS_PROXY and the like, as every client of colabtray
        )

    async def aclose(self) -> None:
        await self._http.close()

    async def connect(self) -> None:
        """Where the runtime is and a token for it (a sentence if there is no such runtime)."""
        runtime = await reach.reach(self._ask, self._query)
        self.name, self.endpoint = runtime.name, runtime.endpoint
        self._base, self._token, self._expires = runtime.base, runtime.token, runtime.expires_at

    async def _renew(self) -> None:
        try:
            await self.connect()
        except UserError as exc:  # gone from the listing, or colabtray cannot ask Colab
            raise _Lost(exc.message) from None

    async def _headers(self) -> dict[str, str]:
        if datetime.now(UTC) + TOKEN_AHEAD >= self._expires:
            await self._renew()
        return {RUNTIME_TOKEN_HEADER: self._token}

    def _url(self, kind: str, path: str) -> URL:
        return URL(f"{self._base}/{kind}/{quote(path, safe='/')}", encoded=True)

    def _lost(self, exc: BaseException) -> Exception:
        """A request that got no answer: an untrusted TLS certificate says so by name."""
        failed = errors.connection_failed(f"runtime {self.name}", exc, type(exc).__name__)
        if isinstance(failed, errors.UntrustedCertificateError):
            return failed
        return _Lost(type(exc).__name__)

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, str] | None = None,
        body: tuple[bytes, ...] | None = None,
        missing_ok: bool = False,
    ) -> _Answer | None:
        """One contents API request (its JSON body given in parts, sent one after another);
        None for 404 when ``missing_ok``."""
        headers = {}
        if body is not None:
            size = sum(len(part) for part in body)
            headers = {"Content-Type": "application/json", "Content-Length": str(size)}
        for attempt in range(2):
            headers.update(await self._headers())
            try:
                async with self._http.request(
                    method,
                    self._url("api/contents", path),
                    params=params,
                    data=None if body is None else _slices(body),
                    headers=headers,
                ) as response:
                    status, received = response.status, await _read_at_most(response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise self._lost(exc) from None
            if received is None:
                limit = ANSWER_LIMIT // MIB
                raise _Refused(f"{self.name}'s answer when asked {what} was over {limit} MiB")
            answer = _Answer(status, received)
            if answer.status != 401 or attempt:
                break
            await self._renew()  # the token expired or was revoked: once more with a new one
        if 200 <= answer.status < 300:
            return answer
        if answer.status == 404 and missing_ok:
            return None
        if answer.status in (401, 404, 502, 503, 504):  # the proxy lost the runtime
            raise _Lost(f"HTTP {answer.status}")
        message = answer.message()
        if "No space left" in message:
            raise _Refused(f"{self.name}'s disk is full")
        raise _Refused(f"{self.name} refused {what} ({message})")

    async def get(
        self, path: str, *, listed: bool = False, hashed: bool = False
    ) -> listing.Model | None:
        """The contents model of ``path`` (a folder's with its entries when ``listed``, a
        file's with its hash when ``hashed`` and the runtime knows how), or None. A model
        unlike Jupyter's is refused in one sentence (colabtray.tools.listing)."""
        params = {"content": "1" if listed else "0"}
        if hashed:
            params["hash"] = "1"
        answer = await self._call(
            "GET", path, f"to look at {shown(path)}", params=params, missing_ok=True
        )
        if answer is None:
            return None
        try:
            return listing.model(answer.json(), listed=listed)
        except listing.Malformed as exc:
            raise _Refused(
                f"{self.name}'s listing of {shown(path)} is malformed ({exc.detail})"
            ) from None

    async def make_folder(self, path: str) -> None:
        await self._call("PUT", path, f"to make {shown(path)}", body=(b'{"type": "directory"}',))

    async def save(self, path: str, encoded: bytes, chunk: int | None) -> None:
        """One piece (in base64) of a chunked save (``chunk`` 1, 2, …, -1), or a whole file
        (None)."""
        numbered = b"" if chunk is None else b'"chunk": %d, ' % chunk
        head = b'{"type": "file", "format": "base64", %s"content": "' % numbered
        body = (head, encoded, b'"}')
        await self._call("PUT", path, f"to save {shown(path)}", body=body)

    async def rename(self, old: str, new: str) -> None:
        body = json.dumps({"path": new}).encode()
        await self._call("PATCH", old, f"to rename {shown(old)}", body=(body,))

    async def discard(self, path: str) -> None:
        """Remove a file of ours, emptied first (Jupyter's contents API moves deleted files
        to the trash, ``delete_to_trash``). Best effort and bounded: the runtime may be gone."""

        async def empty_then_delete() -> None:
            empty = (b'{"type": "file", "format": "text", "content": ""}',)
            await self._call("PUT", path, f"to empty {shown(path)}", body=empty)
            await self._call("DELETE", path, f"to delete {shown(path)}", missing_ok=True)

        try:
            async with asyncio.timeout(15):
                await empty_then_delete()
        except (_Lost, _Refused, TimeoutError, UserError) as exc:
            log.info("could not remove %s: %s", shown(path), exc)

    async def fetch(self, path: str, sink: Callable[[bytes], None]) -> int:
        """Stream ``/files/PATH`` into ``sink``; the number of bytes."""
        for attempt in range(2):
            headers = await self._headers()
            try:
                async with self._http.get(self._url("files", path), headers=headers) as response:
                    if response.status == 401 and not attempt:
                        await self._renew()
                        continue
                    if response.status == 404:
                        raise _Refused(f"{shown(path)} vanished from {self.name} during the copy")
                    if response.status != 200:
                        raise _Lost(f"HTTP {response.status}")
                    size = 0
                    async for piece in response.content.iter_chunked(MIB):
                        sink(piece)
                        size += len(piece)
                    return size
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise self._lost(exc) from None
        raise _Lost("HTTP 401")

    async def why_lost(self, detail: str) -> str:
        """Whether the runtime went (still listed? answering?): the start of the sentence.
        Asks again for a few seconds, since the running app lists Colab every few seconds
        at best and a runtime reclaimed a moment ago may still be in its last listing."""
        deadline = time.monotonic() + WHY_LOST_WITHIN
        while True:
            if not await self._listed():
                return f"{self.name} was disconnected during the copy"
            if await self._answers():
                return f"The connection to {self.name} broke during the copy ({detail})"
            if time.monotonic() >= deadline:
                return f"{self.name} stopped answering during the copy ({detail})"
            await asyncio.sleep(1.0)

    async def _listed(self) -> bool:
        """Whether Colab still lists the runtime (True when that cannot be told)."""
        try:
            status = await self._ask("status", {})
        except UserError:
            return True
        return any(r.get("endpoint") == self.endpoint for r in status.get("runtimes", ()))

    async def _answers(self) -> bool:
        try:
            async with self._http.get(
                f"{self._base}/api/status",
                headers={RUNTIME_TOKEN_HEADER: self._token},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


async def _read_at_most(response: aiohttp.ClientResponse) -> bytes | None:
    """The reply's body, or None when it runs past ANSWER_LIMIT (a runtime may send anything)."""
    pieces, size = [], 0
    async for piece in response.content.iter_any():
        size += len(piece)
        if size > ANSWER_LIMIT:
            return None
        pieces.append(piece)
    return b"".join(pieces)


async def _slices(parts: tuple[bytes, ...]) -> AsyncIterator[memoryview]:
    """A request body in slices, each sent before the next is handed over: aiohttp would
    otherwise copy a whole chunk into the TLS layer's buffers at once (and the parts are
    never joined into one more copy)."""
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), SLICE):
            yield view[start : start + SLICE]


@dataclass(frozen=True)
class _Answer:
    """A contents API reply, read whole (they are small: models, never file contents)."""

    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise _Lost("an answer that is not JSON") from None

    def message(self) -> str:
        """Jupyter's own words for a refusal (its JSON ``message``), else the HTTP status."""
        try:
            message = json.loads(self.body).get("message")
        except (ValueError, AttributeError):
            message = None
        return str(message) if message else f"HTTP {self.status}"


# ---- progress and keep-alive --------------------------------------------------------------


class Progress:
    """One line on stderr while copying, redrawn at most ten times a second: the file, the
    share done, the rate and the time left. Silent unless stderr is a terminal."""

    def __init__(self, total: int, *, visible: bool | None = None) -> None:
        self.total = total
        self.done = 0
        self._label = ""
        self._visible = sys.stderr.isatty() if visible is None else visible
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False

    def start(self, label: str) -> None:
        self._label = label
        self._draw(force=True)

    def add(self, count: int) -> None:
        self.done += count
        self._draw()

    def end(self) -> None:
        """Finish the line (before a success's silence or a failure's sentence)."""
        if self._drawn:
            self._draw(force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._drawn = False

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self._visible or (not force and now - self._drawn_at < 0.1):
            return
        self._drawn_at, self._drawn = now, True
        rate = self.done / max(now - self._started, 1e-3)
        share = 100 * self.done // self.total if self.total else 100
        left = _clock((self.total - self.done) / rate) if rate > 0 else "--:--"
        figures = (
            f"{share:3d}%  {_size(self.done)} of {_size(self.total)}  {_size(rate)}/s  {left} left"
        )
        room = max(shutil.get_terminal_size().columns - len(figures) - 3, 10)
        label = printable(self._label)  # a runtime's file name may carry escape sequences
        label = label if len(label) <= room else "…" + label[-(room - 1) :]
        sys.stderr.write(f"\r{label}  {figures}\x1b[K")
        sys.stderr.flush()


def _size(count: float) -> str:
    """Bytes as people read them: 812 B, 4.2 MB, 1.3 GB."""
    if count < 1000:
        return f"{count:.0f} B"
    for unit in ("kB", "MB"):
        count /= 1000
        if count < 1000:
            return f"{count:.1f} {unit}"
    return f"{count / 1000:.1f} GB"


def _clock(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour on."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# ---- the copy ------------------------------------------------------------------------------


async def copy(
    settings: Settings, source: str, destination: str, *, recursive: bool, ask: Ask
) -> None:
    """Copy ``source`` to ``destination``, one of them ``NAME:PATH``; CopyError (or the
    UserError of a runtime that does not exist) with one sentence if it fails."""
    src, dst = location(source), location(destination)
    if (src is None) == (dst is None):
        which = "neither side names one" if src is None else "both sides name one"
        raise CopyUsageError(
            f"cp copies between this machine and a runtime, but {which}: "
            'write one side as NAME:PATH, e.g. "T4 GPU:data/x.csv".'
        )
    remote = src or dst
    assert remote is not None
    files = RuntimeFiles(settings, ask, remote.runtime)
    try:
        await files.connect()
        async with reach.in_use(settings, files.endpoint):
            job = _Copy(files, recursive)
            if src is not None:
                await job.run(job.download(src, destination))
            else:
                assert dst is not None
                await job.run(job.upload(source, dst))
    finally:
        await files.aclose()


class _Copy:
    """One ``cp``: works out what goes where, copies file by file (each whole or not at all)
    and turns a failure into its sentence."""

    def __init__(self, files: RuntimeFiles, recursive: bool) -> None:
        self.files = files
        self.recursive = recursive
        self.progress = Progress(0)
        self.writing = ""  # the destination being written, as the user would name it
        self.copied = 0
        self.count = 0

    async def run(self, work: Awaitable[None]) -> None:
        try:
            try:
                await work
            finally:
                self.progress.end()
        except _Lost as lost:
            reason = await self.files.why_lost(lost.detail)
        except _Refused as refused:
            reason = refused.reason
        except OSError as exc:
            reason = _local_reason(exc)
        else:
            return
        tally = f" ({self.copied} of {self.count} files were copied)" if self.count > 1 else ""
        raise CopyError(f"{reason}; nothing was written to {self.writing}{tally}.")

    # -- runtime → this machine

    async def download(self, src: Remote, destination: str) -> None:
        files, name = self.files, self.files.name
        self.writing = destination
        model = await files.get(src.path, listed=self.recursive)
        if model is None:
            raise CopyError(f"There is no {shown(src.path)} on {name}.")
        folder = model.folder
        if folder and not self.recursive:
            raise CopyError(f"{shown(src.path)} on {name} is a folder; copy folders with -r.")
        if src.folder and not folder:
            raise CopyError(f"{shown(src.path)} on {name} is a file, not a folder.")
        target = _local_target(destination, posixpath.basename(src.path) or "root", folder)
        if not folder:
            self._begin([model.size or 0])
            await self._fetch(src.path, target, model.size)
            return
        folders, entries = await self._walk_remote(src.path, model)
        written = [*folders, *(relative for relative, _ in entries)]
        _inside(destination, [target, *(target.joinpath(*relative) for relative in written)])
        self._begin([size or 0 for _, size in entries])
        target.mkdir(exist_ok=True)
        for relative in folders:
            target.joinpath(*relative).mkdir(exist_ok=True)
        for relative, size in entries:
            await self._fetch(posixpath.join(src.path, *relative), target.joinpath(*relative), size)

    async def _walk_remote(
        self, top: str, model: listing.Model
    ) -> tuple[list[Parts], list[tuple[Parts, int | None]]]:
        """Every folder and file under ``top`` as the names that lead to it, each folder
        before its entries (the contents API lists no hidden files). Each name is checked,
        and the tree's depth and size are bounded (colabtray.tools.listing), before any of
        it is written."""
        folders: list[Parts] = []
        entries: list[tuple[Parts, int | None]] = []
        pending: list[tuple[Parts, listing.Model]] = [((), model)]
        while pending:
            here, listed = pending.pop()
            for entry in listed.entries:
                inside = (*here, entry.name)
                self._admit(top, here, entry, len(folders) + len(entries))
                if not entry.folder:
                    entries.append((inside, entry.size))
                    continue
                folders.append(inside)
                sub = await self.files.get(posixpath.join(top, *inside), listed=True)
                if sub is not None and not sub.folder:
                    where = shown(posixpath.join(top, *inside))
                    raise _Refused(f"{where} changed on {self.files.name} during the copy")
                if sub is not None:  # (one gone since it was listed is made, empty)
                    pending.append((inside, sub))
        return folders, entries

    def _admit(self, top: str, here: Parts, entry: listing.Entry, count: int) -> None:
        """Refuse, in one sentence, an entry of ``top/here`` that no copy should follow."""
        runtime, folder = self.files.name, shown(posixpath.join(top, *here))
        problem = listing.name_problem(entry.name)
        if problem:
            raise _Refused(
                f"{folder} on {runtime} holds {listing.brief(entry.name)}, which {problem}"
            )
        if entry.folder and len(here) >= listing.MAX_DEPTH:
            under = shown(posixpath.join(top, here[0]))
            raise _Refused(
                f"{shown(top)} on {runtime} has folders more than {listing.MAX_DEPTH} deep "
                f"under {under} (a link to a folder it is in?)"
            )
        if count >= listing.MAX_ENTRIES:
            raise _Refused(
                f"{shown(top)} on {runtime} holds more than {listing.MAX_ENTRIES:,} files and "
                "folders; copy it a part at a time"
            )

    async def _fetch(self, path: str, target: Path, expected: int | None) -> None:
        """One file, into a hidden temporary file beside ``target``, renamed when checked."""
        self.writing = str(target)
        self.progress.start(shown(path))
        descriptor, part = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=f".{PART}"
        )
        placed = False
        # The runtime hashes its file while it sends it: one wait less at the end.
        hashed = expected is None or expected <= HASH_LIMIT
        told = asyncio.ensure_future(self.files.get(path, hashed=hashed))
        try:
            digest = hashlib.sha256()
            with os.fdopen(descriptor, "wb") as out:

                def sink(piece: bytes) -> None:
                    out.write(piece)
                    digest.update(piece)
                    self.progress.add(len(piece))

                size = await self.files.fetch(path, sink)
            changed = f"{shown(path)} changed on {self.files.name} during the copy"
            if expected is not None and size != expected:
                raise _Refused(changed)
            self._check(await told, path, size, digest, Path(part), changed)
            _mode_like(Path(part), target)
            os.replace(part, target)
            placed = True
            self.copied += 1
        finally:
            told.cancel()
            with contextlib.suppress(asyncio.CancelledError, _Lost, _Refused, UserError):
                await told
            if not placed:
                with contextlib.suppress(OSError):
                    os.unlink(part)

    # -- this machine → runtime

    async def upload(self, source: str, dst: Remote) -> None:
        local, folder, size = _local_source(source, self.recursive)
        target = await self._remote_target(dst, local.name, folder)
        if not folder:
            self._begin([size])
            await self._send(local, target, source)
            return
        folders, entries, skipped = _walk_local(local)
        self._begin([size for _, size in entries])
        self.writing = shown(target)
        await self.files.make_folder(target)
        for relative in folders:
            self.writing = shown(posixpath.join(target, relative))
            await self.files.make_folder(posixpath.join(target, relative))
        for relative, _size in entries:
            label = os.path.join(source, relative)
            await self._send(local / relative, posixpath.join(target, relative), label)
        if skipped:
            print(
                f"colabtray: left out {skipped} hidden or special file(s) under {source} "
                "(the contents API takes neither).",
                file=sys.stderr,
            )

    async def _remote_target(self, dst: Remote, name: str, folder: bool) -> str:
        """Where on the runtime the copy goes, as ``cp`` would decide (into a folder that
        exists, else under the name given); a sentence if that cannot be."""
        files, runtime = self.files, self.files.name
        self.writing = shown(dst.path)
        model = await files.get(dst.path)
        target = dst.path
        if model is not None and model.folder:
            target = posixpath.join(dst.path, name)
            model = await files.get(target)
        elif model is None and dst.folder:
            raise CopyError(f"There is no folder {shown(dst.path)} on {runtime}.")
        if model is not None:
            if folder and not model.folder:
                raise CopyError(f"{shown(target)} on {runtime} is a file, not a folder.")
            if not folder and model.folder:
                raise CopyError(f"{shown(target)} on {runtime} is a folder.")
            return target
        parent = posixpath.dirname(target)
        above = await files.get(parent) if parent else listing.Model(folder=True, size=None)
        if above is None or not above.folder:
            raise CopyError(f"There is no folder {shown(parent)} on {runtime}.")
        return target

    async def _send(self, local: Path, target: str, label: str) -> None:
        """One file, in chunks to a temporary name beside ``target``, renamed when checked."""
        files = self.files
        self.writing = shown(target)
        self.progress.start(label)
        folder, name = posixpath.split(target)
        part = posixpath.join(folder, f"{name}.{secrets.token_hex(4)}.{PART}")
        begun = False
        try:
            digest = hashlib.sha256()
            size = 0
            with _open_to_read(local) as source:
                # As many chunks as the file has now (what it grows by later is not sent,
                # and the check compares what was); each is read, hashed and encoded in a
                # thread while the one before it travels.
                count = max(1, -(-os.fstat(source.fileno()).st_size // CHUNK))
                ahead = asyncio.ensure_future(asyncio.to_thread(_prepared, source, digest))
                try:
                    for number in range(1, count + 1):
                        encoded, length = await ahead
                        if number < count:
                            ahead = asyncio.ensure_future(
                                asyncio.to_thread(_prepared, source, digest)
                            )
                        chunk = None if count == 1 else (-1 if number == count else number)
                        begun = True
                        await files.save(part, encoded, chunk)
                        size += length
                        self.progress.add(length)
                finally:
                    ahead.cancel()
            different = f"the copy on {files.name} came out different from {local}"
            model = await files.get(part, hashed=size <= HASH_LIMIT)
            self._check(model, part, size, digest, local, different)
            await self._put_in_place(part, target)
            begun = False
            self.copied += 1
        finally:
            if begun:
                await files.discard(part)

    async def _put_in_place(self, part: str, target: str) -> None:
        """Rename ``part`` to ``target``. An existing file is moved aside first and put back
        if the rename fails (the contents API renames over nothing), then discarded."""
        files = self.files
        if await files.get(target) is None:
            await files.rename(part, target)
            return
        folder, name = posixpath.split(target)
        aside = posixpath.join(folder, f"{name}.{secrets.token_hex(4)}.{PART}-old")
        await files.rename(target, aside)
        try:
            await files.rename(part, target)
        except BaseException:
            with contextlib.suppress(_Lost, _Refused):
                await files.rename(aside, target)
            raise
        await files.discard(aside)

    # -- both ways

    def _begin(self, sizes: list[int]) -> None:
        self.count = len(sizes)
        self.progress = Progress(sum(sizes))

    def _check(
        self,
        model: listing.Model | None,
        path: str,
        size: int,
        digest: Any,
        local: Path,
        mismatch: str,
    ) -> None:
        """The runtime's ``path`` (its ``model``) has ``size`` bytes and, where the runtime
        can tell, the hash of the bytes that went through ``digest`` (or, for another
        algorithm, of ``local``)."""
        if model is None:
            raise _Refused(f"{shown(path)} vanished from {self.files.name} during the copy")
        if model.size is not None and model.size != size:
            raise _Refused(mismatch)
        algorithm, expected = model.hash_algorithm, model.hash
        if not (algorithm and expected) or algorithm not in hashlib.algorithms_available:
            return
        if algorithm.startswith("shake_"):  # no fixed length to compare: a runtime's oddity
            return
        ours = digest.hexdigest() if algorithm == digest.name else _hash_file(local, algorithm)
        if ours != expected:
            raise _Refused(mismatch)


def _local_target(destination: str, name: str, folder: bool) -> Path:
    """Where on this machine the copy goes, as ``cp`` would decide; a sentence if it cannot."""
    path = Path(destination)
    if path.is_dir():
        path = path / name
        if folder and path.exists() and not path.is_dir():
            raise CopyError(f"{path} is a file on this machine, not a folder.")
        if not folder and path.is_dir():
            raise CopyError(f"{path} is a folder on this machine.")
        return path
    if destination.endswith(("/", os.sep)):
        raise CopyError(f"There is no folder {destination} on this machine.")
    if folder and path.exists():
        raise CopyError(f"{destination} is a file on this machine, not a folder.")
    if not path.parent.is_dir():
        raise CopyError(f"There is no folder {path.parent} on this machine.")
    return path


def _inside(destination: str, paths: list[Path]) -> None:
    """Refuse, before anything is written, a path that a link already on this machine would
    take outside ``destination`` (the first such is the link itself: parents come first)."""
    bound = os.path.realpath(destination)
    for path in paths:
        if listing.leads_outside(path, bound):
            raise _Refused(f"{path} is a link that leads outside {destination}")


def _walk_local(top: Path) -> tuple[list[str], list[tuple[str, int]], int]:
    """Every folder and regular file under ``top`` (POSIX paths relative to it, each folder
    before its entries), and how many were left out: hidden ones and anything else, which
    the contents API would refuse."""
    folders: list[str] = []
    entries: list[tuple[str, int]] = []
    skipped = 0
    for here, subfolders, names in os.walk(top):
        relative = Path(here).relative_to(top).as_posix()
        keep = [d for d in sorted(subfolders) if not d.startswith(".")]
        keep = [d for d in keep if not os.path.islink(os.path.join(here, d))]
        skipped += len(subfolders) - len(keep)
        subfolders[:] = keep
        folders.extend(posixpath.normpath(posixpath.join(relative, d)) for d in keep)
        for name in sorted(names):
            full = os.path.join(here, name)
            if name.startswith(".") or not os.path.isfile(full):
                skipped += 1
                continue
            entries.append(
                (posixpath.normpath(posixpath.join(relative, name)), os.path.getsize(full))
            )
    return folders, entries, skipped


def _local_source(source: str, recursive: bool) -> tuple[Path, bool, int]:
    """The local file or folder to upload, whether it is a folder, and its size."""
    local = Path(source)
    if not local.exists():
        raise CopyError(f"There is no {source} on this machine.")
    if local.is_dir():
        if not recursive:
            raise CopyError(f"{source} is a folder; copy folders with -r.")
        return local.resolve(), True, 0
    return local.resolve(), False, local.stat().st_size


def _open_to_read(path: Path) -> BinaryIO:
    """The local file, opened here so the event loop only ever waits on its reads in threads."""
    return open(path, "rb")


def _prepared(source: BinaryIO, digest: Any) -> tuple[bytes, int]:
    """The next CHUNK of ``source`` in base64, and its length; ``digest`` takes it in."""
    piece = source.read(CHUNK)
    digest.update(piece)
    return base64.b64encode(piece), len(piece)


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as source:
        while piece := source.read(MIB):
            digest.update(piece)
    return digest.hexdigest()


def _mode_like(part: Path, target: Path) -> None:
    """Give the finished file the mode a new file gets (or the one it replaces has), not
    the temporary file's 0600."""
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask
    os.chmod(part, mode)


def _local_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "This machine's disk is full"
    where = f" {exc.filename}" if exc.filename else ""
    return f"This machine could not use{where} ({exc.strerror or type(exc).__name__})"
