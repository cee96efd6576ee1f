"""One runtime's files through its Jupyter contents API (``/api/contents``) and ``/files``,
reached through the runtime's proxy: the client ``colabtray cp`` copies with. Each reply is
read up to a bound and checked (colabtray.tools.listing) before anyone acts on it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from colabtray.colab import errors
from colabtray.colab.wire import RUNTIME_TOKEN_HEADER, TOOL_TOKEN_LEAD, expires_within
from colabtray.errors import UserError
from colabtray.settings import Settings
from colabtray.tools import listing, reach
from colabtray.tools.copy_errors import Lost, Refused
from colabtray.tools.copy_paths import shown

log = logging.getLogger(__name__)

MIB = 1024 * 1024
SLICE = 256 * 1024  # what is handed to the connection at a time
ANSWER_LIMIT = 64 * MIB  # a contents API reply (a listing of MAX_ENTRIES is about 30 MB)
READ_TIMEOUT = 120.0  # a runtime silent this long mid-transfer is not coming back
WHY_LOST_WITHIN = 8.0  # how long to find out whether a silent runtime was disconnected


class RuntimeFiles:
    """One runtime's Jupyter contents API, reached through its proxy with its proxy token
    (asked of colabtray, renewed before it expires and once more if refused).

    aiohttp rather than httpx2: it reads a 200 MB download in large pieces at about the
    speed of the link here, where httpx2's 64 KiB reads cost a third more time."""

    def __init__(self, settings: Settings, ask: reach.Ask, query: str) -> None:
        self._ask = ask
        self._query = query
        self.name = query
        self.endpoint = ""
        self._base = ""
        self._token = ""
        self._expires = datetime.max.replace(tzinfo=UTC)
        self._http = reach.runtime_session(
            settings,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=settings.request_timeout, sock_read=READ_TIMEOUT
            ),
            headers={"Accept-Encoding": "identity"},
            auto_decompress=False,
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
            raise Lost(exc.message) from None

    async def _headers(self) -> dict[str, str]:
        if expires_within(self._expires, TOOL_TOKEN_LEAD):
            await self._renew()
        return {RUNTIME_TOKEN_HEADER: self._token}

    def _url(self, kind: str, path: str) -> URL:
        return URL(f"{self._base}/{kind}/{quote(path, safe='/')}", encoded=True)

    def _lost(self, exc: BaseException) -> Exception:
        """A request that got no answer: an untrusted TLS certificate says so by name."""
        failed = errors.connection_failed(f"runtime {self.name}", exc, type(exc).__name__)
        if isinstance(failed, errors.UntrustedCertificateError):
            return failed
        return Lost(type(exc).__name__)

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
                raise Refused(f"{self.name}'s answer when asked {what} was over {limit} MiB")
            answer = _Answer(status, received)
            if answer.status != 401 or attempt:
                break
            await self._renew()  # the token expired or was revoked: once more with a new one
        if 200 <= answer.status < 300:
            return answer
        if answer.status == 404 and missing_ok:
            return None
        if answer.status in (401, 404, 502, 503, 504):  # the proxy lost the runtime
            raise Lost(f"HTTP {answer.status}")
        message = answer.message()
        if "No space left" in message:
            raise Refused(f"{self.name}'s disk is full")
        raise Refused(f"{self.name} refused {what} ({message})")

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
            raise Refused(
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
        except (Lost, Refused, TimeoutError, UserError) as exc:
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
                        raise Refused(f"{shown(path)} vanished from {self.name} during the copy")
                    if response.status != 200:
                        raise Lost(f"HTTP {response.status}")
                    size = 0
                    async for piece in response.content.iter_chunked(MIB):
                        sink(piece)
                        size += len(piece)
                    return size
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise self._lost(exc) from None
        raise Lost("HTTP 401")

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
            raise Lost("an answer that is not JSON") from None

    def message(self) -> str:
        """Jupyter's own words for a refusal (its JSON ``message``), else the HTTP status."""
        try:
            message = json.loads(self.body).get("message")
        except (ValueError, AttributeError):
            message = None
        return str(message) if message else f"HTTP {self.status}"
