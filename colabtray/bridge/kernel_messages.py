"""Colab's own kernel requests, answered by the bridge for editors that know nothing of them.

Colab code in a kernel (``drive.mount()``, ``google.colab.auth.authenticate_user()``) sends a
``colab_request`` asking the frontend for credentials and blocks until an ``input_reply``
carrying a ``colab_reply`` comes back on the stdin channel (docs/protocol.md §11). On every
kernel WebSocket the bridge watches frames from the runtime — JSON text frames and both binary
layouts (the legacy one and ``v1.kernel.websocket.jupyter.org``) — takes out the
``request_auth`` requests for ``dfs_ephemeral`` and ``auth_user_ephemeral``, has the
credentials propagated (dry run, then, if Colab wants consent, the person is asked first and
only on "yes" is the browser sent to the consent page, then the real run) and replies; and it
takes out ``GetSecret`` requests (``google.colab.userdata.get``) and replies with what the app
decided (``{"exists", "access", "payload"}``). A failure is replied as an ``error`` so the
kernel never hangs. Every other frame passes untouched; frames that cannot contain a request
are not even parsed.

A notebook is hostile input: it can send requests as fast as a kernel sends messages. Each
runtime's requests go through one :class:`RuntimeRequests` (shared by its sockets): a request
seen on another socket is taken once (remembered in a bounded, expiring record), at most
``REQUESTS_PER_SECOND`` are answered (after a burst) with at most ``MAX_IN_FLIGHT`` at work at
a time, the excess is refused at once with an error reply, and past ``REFUSALS_PER_SECOND``
dropped without a reply (only a flood sends that many without waiting for answers). A
credentials attempt's outcome answers the same runtime's same request for ``REUSE_OUTCOME``
seconds, so a loop of ``request_auth`` costs Colab one attempt, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from colabtray.colab import errors
from colabtray.colab.models import PropagationResult
from colabtray.errors import UserError

log = logging.getLogger(__name__)

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
AUTH_TYPES = frozenset({"dfs_ephemeral", "auth_user_ephemeral"})
_MARKER = "colab_request"
_MARKER_BYTES = _MARKER.encode()
_PARTS = ("header", "parent_header", "metadata", "content")

Frame = str | bytes
Propagate = Callable[[str, str, bool], Awaitable[PropagationResult]]
AskConsent = Callable[[str, str], Awaitable[bool]]
GetSecret = Callable[[str, str], Awaitable[dict[str, object]]]
# Polling Colab while the person is on the consent page: from this often, slower each time.
CONSENT_POLL_FIRST = 2.0
CONSENT_POLL_MAX = 15.0
# google.colab's drive.mount waits timeout_ms (120 s unless the notebook says otherwise, which
# its request does not carry): a Drive request is answered within this, and Colab is asked no
# more once the kernel's cell has ended. auth.authenticate_user waits without limit: there the
# attempt's own cap (consent_timeout) holds.
DRIVE_REPLY_WITHIN = 115.0
# One runtime's requests: answered at this rate after a burst, at most so many at work at once;
# refusals sent at most at this rate (the rest dropped).
REQUESTS_PER_SECOND = 5.0
REQUEST_BURST = 20
MAX_IN_FLIGHT = 32
REFUSALS_PER_SECOND = 50.0
# Requests already taken (iopub brings each to every socket): remembered this long, this many.
SEEN_FOR = 120.0
SEEN_MAX = 4096
REQUEST_ID_MAX = 128  # characters of a request's id kept to recognize it
# A finished credentials attempt answers the same runtime's same request for this long.
REUSE_OUTCOME = 30.0
FLOOD_QUIET = 10.0  # seconds without a refusal before a flood is logged as over
# google.colab's userdata.get waits 10 s for its reply: a GetSecret is answered within this.
SECRET_REPLY_WITHIN = 9.0
TOO_MANY = (
    "colabtray refused this request: the runtime sent more than {rate:.0f} a second; "
    "run the cell again in a moment"
)


# ---- frames ------------------------------------------------------------------------------


def decode(frame: Frame, v1: bool) -> dict[str, Any] | None:
    """A kernel message from a WebSocket frame, or None if it is not one we can read."""
    try:
        if isinstance(frame, str):
            message = json.loads(frame)
        elif v1:
            message = _decode_v1(frame)
        else:
            message = _decode_legacy_binary(frame)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError):
        return None
    return message if isinstance(message, dict) else None


def _decode_v1(frame: bytes) -> dict[str, Any]:
    count = int.from_bytes(frame[:8], "little")
    if not 6 <= count <= len(frame) // 8:
        raise ValueError("not a v1 kernel message")
    offsets = [int.from_bytes(frame[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    parts = [frame[offsets[i] : offsets[i + 1]] for i in range(count - 1)]
    message: dict[str, Any] = {"channel": parts[0].decode()}
    for name, raw in zip(_PARTS, parts[1:5], strict=True):
        message[name] = json.loads(raw)
    return message


def _decode_legacy_binary(frame: bytes) -> Any:
    (count,) = struct.unpack("!I", frame[:4])
    if not 1 <= count <= len(frame) // 4:
        raise ValueError("not a binary kernel message")
    offsets = struct.unpack(f"!{count}I", frame[4 : 4 * (count + 1)])
    end = offsets[1] if count > 1 else len(frame)
    return json.loads(frame[offsets[0] : end])


def encode(message: dict[str, Any], v1: bool) -> Frame:
    """A frame for a message without buffers, in the socket's protocol."""
    if not v1:
        return json.dumps(message)
    parts = [message["channel"].encode()] + [json.dumps(message[n]).encode() for n in _PARTS]
    offsets = [8 * (len(parts) + 2)]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = len(offsets).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return head + b"".join(parts)


# ---- requests and replies ----------------------------------------------------------------


@dataclass(frozen=True)
class AuthRequest:
    auth_type: str
    colab_msg_id: int
    request_id: str  # header.msg_id, to answer an iopub broadcast once
    cell: str | None = None  # parent_header.msg_id: the execute request that waits, if named


def auth_request(message: dict[str, Any]) -> AuthRequest | None:
    """The credentials request in ``message``, matched as Google's extension matches it."""
    header, metadata, content = (message.get(k) for k in ("header", "metadata", "content"))
    if not (isinstance(header, dict) and isinstance(metadata, dict) and isinstance(content, dict)):
        return None
    if header.get("msg_type") != _MARKER:
        return None
    if metadata.get("colab_request_type") != "request_auth":
        return None
    msg_id = metadata.get("colab_msg_id")
    if not isinstance(msg_id, int) or isinstance(msg_id, bool):
        return None
    request = content.get("request")
    auth_type = request.get("authType") if isinstance(request, dict) else None
    if auth_type not in AUTH_TYPES:
        return None
    parent = message.get("parent_header")
    cell = parent.get("msg_id") if isinstance(parent, dict) else None
    cell = cell if isinstance(cell, str) else None
    return AuthRequest(auth_type, msg_id, str(header.get("msg_id", msg_id)), cell)


def cell_ended(message: dict[str, Any]) -> str | None:
    """The execute request whose cell ``message`` says has ended (the kernel's ``idle`` status
    after it), or None: once it has, nothing in that cell waits for a reply any more."""
    header, parent, content = (message.get(k) for k in ("header", "parent_header", "content"))
    if not (isinstance(header, dict) and isinstance(parent, dict) and isinstance(content, dict)):
        return None
    if header.get("msg_type") != "status" or content.get("execution_state") != "idle":
        return None
    if parent.get("msg_type") != "execute_request":
        return None
    cell = parent.get("msg_id")
    return cell if isinstance(cell, str) else None


@dataclass(frozen=True)
class SecretRequest:
    name: str
    colab_msg_id: int
    request_id: str


def secret_request(message: dict[str, Any]) -> SecretRequest | None:
    """A ``google.colab.userdata.get(name)`` request in ``message``."""
    header, metadata, content = (message.get(k) for k in ("header", "metadata", "content"))
    if not (isinstance(header, dict) and isinstance(metadata, dict) and isinstance(content, dict)):
        return None
    if header.get("msg_type") != _MARKER or metadata.get("colab_request_type") != "GetSecret":
        return None
    msg_id = metadata.get("colab_msg_id")
    if not isinstance(msg_id, int) or isinstance(msg_id, bool):
        return None
    request = content.get("request")
    name = request.get("key") if isinstance(request, dict) else None
    if not isinstance(name, str):
        return None
    return SecretRequest(name, msg_id, str(header.get("msg_id", msg_id)))


def colab_reply(
    session: str,
    colab_msg_id: int,
    error: str | None = None,
    data: dict[str, object] | None = None,
) -> dict[str, Any]:
    """The ``input_reply`` that unblocks the kernel (docs/protocol.md §11)."""
    value: dict[str, Any] = {"type": "colab_reply", "colab_msg_id": colab_msg_id}
    if error is not None:
        value["error"] = error
    if data is not None:
        value["data"] = data
    return {
        "header": {
            "msg_id": str(uuid.uuid4()),
            "msg_type": "input_reply",
            "session": session,
            "date": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "username": "username",
            "version": "5.0",
        },
        "content": {"value": value},
        "channel": "stdin",
        "metadata": {},
        "parent_header": {},
    }


# ---- the credentials dance ---------------------------------------------------------------


class CredentialsError(UserError):
    """One sentence for the user: see colabtray.errors."""


class Credentials:
    """Has Colab give a runtime the user's credentials, asking for consent in the browser."""

    def __init__(
        self,
        propagate: Propagate,
        open_browser: Callable[[str], bool],
        *,
        ask: AskConsent | None = None,
        consent_timeout: float = 300.0,
        drive_reply_within: float = DRIVE_REPLY_WITHIN,
        poll_interval: float = CONSENT_POLL_FIRST,
        reuse_for: float = REUSE_OUTCOME,
    ) -> None:
        self._propagate = propagate
        self._open_browser = open_browser
        self._ask = ask
        self.consent_timeout = consent_timeout
        self.drive_reply_within = drive_reply_within
        self.poll_interval = poll_interval
        self.reuse_for = reuse_for
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._waiting: dict[tuple[str, str], int] = {}  # requests that wait on each attempt
        # (endpoint, auth type) → when the last attempt ended, and its refusal (None: given)
        self._outcomes: dict[tuple[str, str], tuple[float, str | None]] = {}

    async def provide(self, endpoint: str, auth_type: str) -> None:
        """Return once the runtime has the credentials; raises CredentialsError otherwise.

        Concurrent requests for the same runtime and kind share one attempt (one browser tab),
        and an attempt's outcome answers the same requests for ``reuse_for`` seconds after it.
        A Drive request is answered within ``drive_reply_within`` (drive.mount stops waiting
        soon after); the attempt ends, and Colab is asked no more, once no request waits on it
        (each one answered or cancelled because its cell ended).
        """
        key = (endpoint, auth_type)
        outcome = self._outcomes.get(key)
        if outcome is not None and time.monotonic() - outcome[0] < self.reuse_for:
            if outcome[1] is None:
                return
            raise CredentialsError(
                f"{outcome[1]} (colabtray asks again {self.reuse_for:.0f} s after that answer)"
            )
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._dance(endpoint, auth_type))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._ended(key, done))
        within = self.drive_reply_within if auth_type == "dfs_ephemeral" else None
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with asyncio.timeout(within):
                await asyncio.shield(task)
        except TimeoutError:
            if task.done():  # the attempt's own error, not our deadline
                raise
            raise CredentialsError(
                f"[{auth_type}] Drive access was not given within the {within:.0f} s "
                "drive.mount waits; finish on Google's page if it is open, then run the cell again"
            ) from None
        finally:
            self._stop_waiting(key, task)

    def _stop_waiting(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        """One request no longer waits; with none left, the attempt stops asking Colab."""
        left = self._waiting.pop(key, 1) - 1
        if left:
            self._waiting[key] = left
        elif not task.done():
            log.info("no request waits for %s on runtime %s any more: stopped", key[1], key[0])
            if self._inflight.get(key) is task:
                del self._inflight[key]
            task.cancel()

    def _ended(self, key: tuple[str, str], done: asyncio.Task[None]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        now = time.monotonic()
        for old in [k for k, (at, _) in self._outcomes.items() if now - at >= self.reuse_for]:
            del self._outcomes[old]  # a few runtimes at most
        if done.cancelled():
            return
        error = done.exception()
        if error is None:
            self._outcomes[key] = (now, None)
        elif isinstance(error, CredentialsError):
            self._outcomes[key] = (now, error.message)

    async def _dance(self, endpoint: str, auth_type: str) -> None:
        try:
            dry = await self._propagate(endpoint, auth_type, True)
            if not dry.success:
                if not dry.unauthorized_redirect_uri:
                    raise CredentialsError(f"[{auth_type}] unexpected results from Colab")
                await self._consent(endpoint, auth_type, dry.unauthorized_redirect_uri)
            real = await self._propagate(endpoint, auth_type, False)
        except errors.ColabError as exc:
            raise CredentialsError(exc.message) from None
        if not real.success:
            raise CredentialsError(f"[{auth_type}] Credentials propagation unsuccessful")

    async def _consent(self, endpoint: str, auth_type: str, uri: str) -> None:
        """Ask the person; on yes open Colab's consent page, then wait (bounded) until the dry
        run succeeds, asking Colab less and less often."""
        if self._ask is not None and not await self._ask(endpoint, auth_type):
            raise CredentialsError(f"[{auth_type}] you declined in colabtray; nothing was shared")
        opened = await asyncio.to_thread(self._open_browser, uri)
        if not opened:
            raise CredentialsError(
                f"[{auth_type}] no web browser could be opened for Colab's consent page"
            )
        log.info("waiting for %s consent in the browser for runtime %s", auth_type, endpoint)
        deadline = time.monotonic() + self.consent_timeout
        wait = self.poll_interval
        while time.monotonic() < deadline:
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
            if (await self._propagate(endpoint, auth_type, True)).success:
                return
            wait = min(wait * 1.5, max(CONSENT_POLL_MAX, self.poll_interval))
        raise CredentialsError(
            f"[{auth_type}] authorization was not completed in the browser within "
            f"{self.consent_timeout:.0f} s"
        )


# ---- how much a runtime may ask ----------------------------------------------------------


class TokenBucket:
    """``rate`` a second on average, ``burst`` at once."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class Seen:
    """Keys seen in the last ``ttl`` seconds, at most ``cap`` of them (the oldest go first).
    Insertion order is time order, so expiry looks only at the head: O(1) amortized."""

    def __init__(self, ttl: float, cap: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._cap = cap
        self._clock = clock
        self._keys: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: tuple[str, str]) -> bool:
        """Remember ``key``; False if it was already seen."""
        now = self._clock()
        keys = self._keys
        while keys and (len(keys) >= self._cap or now - next(iter(keys.values())) > self._ttl):
            keys.popitem(last=False)
        if key in keys:
            return False
        keys[key] = now
        return True


class RuntimeRequests:
    """One runtime's kernel requests, shared by its sockets: which were taken, and how many it
    may still make (see the module docstring)."""

    def __init__(
        self,
        endpoint: str,
        *,
        rate: float = REQUESTS_PER_SECOND,
        burst: int = REQUEST_BURST,
        max_in_flight: int = MAX_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.rate = rate
        self.seen = Seen(SEEN_FOR, SEEN_MAX, clock)
        self._answers = TokenBucket(rate, burst, clock)
        self._refusals = TokenBucket(REFUSALS_PER_SECOND, REFUSALS_PER_SECOND, clock)
        self._max_in_flight = max_in_flight
        self._clock = clock
        self.in_flight = 0
        self.refused = 0  # since the flood began; 0 when there is none
        self._last_refusal = 0.0

    def admit(self) -> str:
        """What to do with the next request: "answer", "refuse" (an error reply at once) or
        "drop" (no reply at all)."""
        now = self._clock()
        if self.in_flight < self._max_in_flight and self._answers.take():
            if self.refused and now - self._last_refusal > FLOOD_QUIET:
                log.warning(
                    "the flood of kernel requests from runtime %s is over (%d refused)",
                    self.endpoint,
                    self.refused,
                )
                self.refused = 0
            return "answer"
        if not self.refused:
            log.warning(
                "runtime %s sends kernel requests faster than %.0f a second; colabtray "
                "refuses the rest until it slows down",
                self.endpoint,
                self.rate,
            )
        self.refused += 1
        self._last_refusal = now
        return "refuse" if self._refusals.take() else "drop"


# ---- one kernel WebSocket ----------------------------------------------------------------


class KernelChannel:
    """Watches one kernel WebSocket; answers credentials requests on it."""

    def __init__(
        self,
        endpoint: str,
        kernel_id: str,
        *,
        v1: bool,
        client_session: str,
        credentials: Credentials,
        send_to_runtime: Callable[[Frame], Awaitable[None]],
        answered: RuntimeRequests,
        secrets: GetSecret | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._kernel_id = kernel_id
        self._v1 = v1
        self._session = client_session  # until the client's first message names its own
        self._session_seen = False
        self._credentials = credentials
        self._secrets = secrets
        self._send = send_to_runtime
        self._requests = answered  # shared by the runtime's sockets: iopub reaches them all
        self._tasks: set[asyncio.Task[None]] = set()
        # Credentials answers at work, by the cell that waits (None: the request named none).
        self._waiting: dict[asyncio.Task[None], str | None] = {}

    def from_client(self, frame: Frame) -> None:
        """Remember the session of the client's first message (the reply carries it)."""
        if self._session_seen:
            return
        self._session_seen = True
        message = decode(frame, self._v1)
        header = message.get("header") if message else None
        if isinstance(header, dict) and isinstance(header.get("session"), str):
            self._session = header["session"]

    def from_runtime(self, frame: Frame) -> bool:
        """True if the frame is a credentials request the bridge answers (not forwarded)."""
        marker = _MARKER if isinstance(frame, str) else _MARKER_BYTES
        if marker not in frame:  # type: ignore[operator]
            if self._waiting:
                self._watch_cells(frame)
            return False
        message = decode(frame, self._v1)
        if message is None:
            return False
        request: AuthRequest | SecretRequest | None = auth_request(message)
        if request is None and self._secrets is not None:
            request = secret_request(message)
        if request is None:
            return False
        requests = self._requests
        if not requests.seen.add((self._kernel_id, request.request_id[:REQUEST_ID_MAX])):
            return True  # another socket of this kernel took it
        verdict = requests.admit()
        if verdict == "drop":
            return True
        if verdict == "refuse":
            error = TOO_MANY.format(rate=requests.rate)
            self._start(self._reply(colab_reply(self._session, request.colab_msg_id, error)))
            return True
        requests.in_flight += 1
        if isinstance(request, SecretRequest):
            self._start(self._answer_secret(request)).add_done_callback(self._finished)
            return True
        task = self._start(self._answer(request))
        task.add_done_callback(self._finished)
        self._waiting[task] = request.cell
        task.add_done_callback(lambda done: self._waiting.pop(done, None))
        return True

    def _watch_cells(self, frame: Frame) -> None:
        """A cell that ended no longer waits (drive.mount's timeout_ms passed, or an
        interrupt): its credentials answers stop, and with them the questions to Colab."""
        idle = "execution_state" if isinstance(frame, str) else b"execution_state"
        if idle not in frame:  # type: ignore[operator]
            return
        message = decode(frame, self._v1)
        cell = cell_ended(message) if message is not None else None
        if cell is None:
            return
        for task, waits_on in list(self._waiting.items()):
            if waits_on is None or waits_on == cell:
                log.info("a cell on runtime %s stopped waiting for credentials", self._endpoint)
                task.cancel()

    def _start(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _finished(self, _task: asyncio.Task[None]) -> None:
        self._requests.in_flight -= 1

    async def _reply(self, reply: dict[str, Any]) -> None:
        try:
            await self._send(encode(reply, self._v1))
        except Exception as exc:  # the socket closed meanwhile
            log.info("could not reply to the kernel: %s", type(exc).__name__)

    async def _answer_secret(self, request: SecretRequest) -> None:
        assert self._secrets is not None
        error: str | None = None
        data: dict[str, object] | None = None
        try:
            async with asyncio.timeout(SECRET_REPLY_WITHIN):
                data = await self._secrets(self._endpoint, request.name)
        except TimeoutError:  # google.colab waits 10 s: "no access" while it still listens
            data = {"exists": True, "access": False, "payload": ""}
        except UserError as exc:
            error = exc.message
        except Exception:  # a bug must still unblock the kernel
            log.exception("answering a secret request failed")
            error = "colabtray could not handle this request"
        # The name, never the value.
        log.info(
            "secret %r asked by runtime %s: %s",
            request.name,
            self._endpoint,
            "given" if data and data.get("access") else "not given",
        )
        await self._reply(colab_reply(self._session, request.colab_msg_id, error, data))

    async def _answer(self, request: AuthRequest) -> None:
        error: str | None = None
        try:
            await self._credentials.provide(self._endpoint, request.auth_type)
        except CredentialsError as exc:
            error = exc.message
        except Exception:  # a bug must still unblock the kernel
            log.exception("answering a credentials request failed")
            error = "colabtray could not handle this request"
        log.info(
            "credentials request %s on runtime %s: %s",
            request.auth_type,
            self._endpoint,
            "granted" if error is None else "refused",
        )
        await self._reply(colab_reply(self._session, request.colab_msg_id, error))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
