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

The transfer is here; its parts: copy_paths (where, on either side), runtime_files (the
contents API client), copy_progress (the line on stderr) and copy_errors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import posixpath
import secrets
import sys
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, BinaryIO

from colabtray.errors import UserError
from colabtray.settings import Settings
from colabtray.tools import listing, reach
from colabtray.tools.copy_errors import CopyError, CopyUsageError, Lost, Refused
from colabtray.tools.copy_paths import (
    Remote,
    inside,
    local_reason,
    local_source,
    local_target,
    location,
    mode_like,
    open_to_read,
    shown,
    walk_local,
)
from colabtray.tools.copy_progress import Progress
from colabtray.tools.runtime_files import MIB, RuntimeFiles

CHUNK = 4 * MIB  # per upload request: 5.6 MB of JSON, well under any front end's limit
HASH_LIMIT = 512 * MIB
PART = "colabtray-part"  # the temporary files' suffix, on either side

Ask = reach.Ask
Parts = tuple[str, ...]  # a path under the folder copied, as its names (each one checked)


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
        except Lost as lost:
            reason = await self.files.why_lost(lost.detail)
        except Refused as refused:
            reason = refused.reason
        except OSError as exc:
            reason = local_reason(exc)
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
        target = local_target(destination, posixpath.basename(src.path) or "root", folder)
        if not folder:
            self._begin([model.size or 0])
            await self._fetch(src.path, target, model.size)
            return
        folders, entries = await self._walk_remote(src.path, model)
        written = [*folders, *(relative for relative, _ in entries)]
        inside(destination, [target, *(target.joinpath(*relative) for relative in written)])
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
                    raise Refused(f"{where} changed on {self.files.name} during the copy")
                if sub is not None:  # (one gone since it was listed is made, empty)
                    pending.append((inside, sub))
        return folders, entries

    def _admit(self, top: str, here: Parts, entry: listing.Entry, count: int) -> None:
        """Refuse, in one sentence, an entry of ``top/here`` that no copy should follow."""
        runtime, folder = self.files.name, shown(posixpath.join(top, *here))
        problem = listing.name_problem(entry.name)
        if problem:
            raise Refused(
                f"{folder} on {runtime} holds {listing.brief(entry.name)}, which {problem}"
            )
        if entry.folder and len(here) >= listing.MAX_DEPTH:
            under = shown(posixpath.join(top, here[0]))
            raise Refused(
                f"{shown(top)} on {runtime} has folders more than {listing.MAX_DEPTH} deep "
                f"under {under} (a link to a folder it is in?)"
            )
        if count >= listing.MAX_ENTRIES:
            raise Refused(
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
            changed = f"{shown(path)} changed on {self.files.name} during the copy"
            written = 0
            with os.fdopen(descriptor, "wb") as out:

                def sink(piece: bytes) -> None:
                    nonlocal written
                    written += len(piece)
                    if expected is not None and written > expected:
                        # More than the listing said: stop before it can fill the disk.
                        raise Refused(changed)
                    out.write(piece)
                    digest.update(piece)
                    self.progress.add(len(piece))

                size = await self.files.fetch(path, sink)
            if expected is not None and size != expected:
                raise Refused(changed)
            self._check(await told, path, size, digest, Path(part), changed)
            mode_like(Path(part), target)
            os.replace(part, target)
            placed = True
            self.copied += 1
        finally:
            told.cancel()
            with contextlib.suppress(asyncio.CancelledError, Lost, Refused, UserError):
                await told
            if not placed:
                with contextlib.suppress(OSError):
                    os.unlink(part)

    # -- this machine → runtime

    async def upload(self, source: str, dst: Remote) -> None:
        local, folder, size = local_source(source, self.recursive)
        target = await self._remote_target(dst, local.name, folder)
        if not folder:
            self._begin([size])
            await self._send(local, target, source)
            return
        folders, entries, skipped = walk_local(local)
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
            with open_to_read(local) as source:
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
            with contextlib.suppress(Lost, Refused):
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
            raise Refused(f"{shown(path)} vanished from {self.files.name} during the copy")
        if model.size is not None and model.size != size:
            raise Refused(mismatch)
        algorithm, expected = model.hash_algorithm, model.hash
        if not (algorithm and expected) or algorithm not in hashlib.algorithms_available:
            return
        if algorithm.startswith("shake_"):  # no fixed length to compare: a runtime's oddity
            return
        ours = digest.hexdigest() if algorithm == digest.name else _hash_file(local, algorithm)
        if ours != expected:
            raise Refused(mismatch)


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
