"""``colabtray cp -r NAME:folder DEST`` against a runtime that lies in its listings.

A real Jupyter never lists ``../../x`` or a size of ``true``, but a notebook is root on its
runtime and can put any server on the Jupyter port, so the runtime here is a stand-in: a
small contents API on 127.0.0.1 (aiohttp) that answers the walk's listings with whatever
the test gives it. Everything else is colabtray's own: ``copy`` as the CLI calls it, with
the runtime reached through an ``ask`` that names that server. The CLI shows a UserError's
message, escaped, as its one line (colabtray.cli); anything else would be a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colabtray.errors import UserError
from colabtray.settings import Settings, load_settings
from colabtray.text import printable
from colabtray.tools import listing, runtime_files
from colabtray.tools.copy import copy

DATA = b"hostile\n"  # every file the stand-in serves
NOT_FOUND = "404"  # a listing answered with 404
BOUNDED = 20.0  # seconds: a copy from the stand-in ends well within this, or it is not bounded


@dataclass(frozen=True)
class Garbled:
    """A listing answered with text that is not JSON."""

    text: str


@dataclass
class Contents:
    """The stand-in runtime: listing number i of a copy (``content=1``) is ``listings[i]``,
    the last one repeating, so a folder in it lists itself; a file's model and bytes are
    always DATA's."""

    listings: list[Any]
    url: str = ""
    asked: int = 0
    paths: list[str] = field(default_factory=list)

    async def contents(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.match_info["path"])
        if request.query.get("content") != "1":
            return web.json_response({"type": "file", "size": len(DATA)})
        body = self.listings[min(self.asked, len(self.listings) - 1)]
        self.asked += 1
        if isinstance(body, Garbled):
            return web.Response(text=body.text)
        if body == NOT_FOUND:
            return web.json_response({"message": "No such file"}, status=404)
        return web.json_response(body)

    async def files(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=DATA)

    async def status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({})

    async def ask(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """The running app's answers about the one runtime, "Fake"."""
        if name == "status":
            return {"runtimes": [{"endpoint": "fake"}]}
        assert name == "runtime", name
        return {
            "name": "Fake",
            "endpoint": "fake",
            "proxy_url": self.url,
            "proxy_token": "t",
            "proxy_expires_at": "2999-01-01T00:00:00+00:00",
        }


@contextlib.asynccontextmanager
async def serving(contents: Contents) -> AsyncIterator[Contents]:
    app = web.Application()
    app.router.add_get("/api/contents/{path:.*}", contents.contents)
    app.router.add_get("/files/{path:.*}", contents.files)
    app.router.add_get("/api/status", contents.status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    contents.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield contents
    finally:
        await runner.cleanup()


async def copy_folder(
    config: Settings, listings: list[Any], destination: Path
) -> tuple[UserError | None, Contents]:
    """``cp -r Fake:folder DESTINATION`` against the stand-in: the error, if any."""
    async with serving(Contents(listings)) as contents:
        try:
            async with asyncio.timeout(BOUNDED):
                await copy(
                    config, "Fake:folder", str(destination), recursive=True, ask=contents.ask
                )
        except UserError as exc:
            return exc, contents
    return None, contents


@pytest.fixture
def config(tmp_path: Path) -> Settings:
    app = tmp_path / "app"
    return load_settings(config_dir=app / "config", state_dir=app / "state", log_dir=app / "log")


# ---- the property: nothing outside DEST, one sentence or success ------------------------


def hostile_names(root: Path) -> st.SearchStrategy[str]:
    escapes = [
        *("..", ".", "", "/", "\\", "//", "\x00", "a\x00b", "a/b", "a\\b", "~", ".hidden"),
        *("../x", "../../x", "../../../escaped", "../../../../escaped", "..\\..\\x"),
        *(f"{root}/absolute", "C:", "C:x", "C:\\x", "\\\\host\\x"),
        *("sub", "self", "folder", "\x1b]52;c;aGk=\x07x", "\u202etxt.exe", "nul", "x" * 300),
    ]
    return st.one_of(
        st.sampled_from(escapes),
        st.text(max_size=6),
        st.text(st.sampled_from("./\\\x00a"), max_size=8),
    )


def sizes() -> st.SearchStrategy[Any]:
    odd = [-1, True, False, 1.5, "8", None, [8], 10**20]
    return st.one_of(st.just(len(DATA)), st.integers(0, 64), st.sampled_from(odd))


@st.composite
def entries(draw: st.DrawFn, names: st.SearchStrategy[str]) -> dict[str, Any]:
    kinds = ["file", "file", "directory", "directory", "notebook", "symlink", None, 1]
    entry: dict[str, Any] = {"type": draw(st.sampled_from(kinds)), "size": draw(sizes())}
    which = draw(st.sampled_from(["name"] * 8 + ["missing", "number", "list"]))
    if which != "missing":
        entry["name"] = {"name": draw(names), "number": 7, "list": ["x"]}[which]
    if draw(st.booleans()):  # the path it claims: never to be used for a local path
        entry["path"] = draw(names)
    return entry


@st.composite
def bodies(draw: st.DrawFn, names: st.SearchStrategy[str]) -> Any:
    shape = draw(st.sampled_from(["folder"] * 6 + ["file", "odd content", "odd body", "404"]))
    if shape == "folder":
        content = draw(st.lists(entries(names), max_size=5))
        return {"type": "directory", "path": draw(names), "content": content}
    if shape == "file":
        return {"type": "file", "size": draw(sizes())}
    if shape == "odd content":
        odd = st.one_of(st.none(), st.text(max_size=3), st.integers(), st.just({"name": "x"}))
        return {"type": "directory", "content": draw(odd)}
    if shape == "odd body":
        return draw(
            st.one_of(
                st.just([]),
                st.text(max_size=3),
                st.integers(),
                st.none(),
                st.just(Garbled("<html>")),
            )
        )
    return NOT_FOUND


LAYOUTS = ["into DEST", "a new DEST", "DEST/folder is a link out", "DEST/folder/sub is a link out"]


def lay_out(work: Path, layout: str) -> Path:
    """DEST and, beside it, a folder a link may lead to; DEST."""
    shutil.rmtree(work, ignore_errors=True)
    outside = work / "outside"
    outside.mkdir(parents=True)
    (outside / "mine.txt").write_text("not the runtime's\n")
    dest = work / "dest"
    if layout != "a new DEST":
        dest.mkdir()
    if layout == "DEST/folder is a link out":
        (dest / "folder").symlink_to(outside, target_is_directory=True)
    if layout == "DEST/folder/sub is a link out":
        (dest / "folder").mkdir()
        (dest / "folder" / "sub").symlink_to(outside, target_is_directory=True)
    return dest


def snapshot(root: Path, skip: list[Path]) -> dict[str, tuple[int, object]]:
    """Everything under ``root`` but ``skip``: each entry's kind and its link target or size
    and modification time (a folder's own time changes when DEST is made in it)."""
    seen: dict[str, tuple[int, object]] = {}
    for here, folders, names in os.walk(root):
        folders[:] = [f for f in folders if Path(here, f) not in skip]
        for name in folders + names:
            path = Path(here, name)
            if path in skip:
                continue
            info = path.lstat()
            kind = stat.S_IFMT(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                seen[str(path)] = (kind, os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                seen[str(path)] = (kind, (info.st_size, info.st_mtime_ns))
            else:
                seen[str(path)] = (kind, None)
    return seen


@pytest.mark.timeout(600)
def test_no_listing_writes_outside_the_destination(tmp_path: Path, config: Settings) -> None:
    work = tmp_path / "work"
    outcomes: list[str] = []

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        listings=st.lists(bodies(hostile_names(tmp_path)), min_size=1, max_size=4),
        layout=st.sampled_from(LAYOUTS),
    )
    def one(listings: list[Any], layout: str) -> None:
        dest = lay_out(work, layout)
        skip = [dest, tmp_path / "app"]
        before = snapshot(tmp_path, skip)
        error, _contents = asyncio.run(copy_folder(config, listings, dest))
        assert snapshot(tmp_path, skip) == before, "something was written outside DEST"
        assert not list(tmp_path.rglob("*colabtray-part*")), "a temporary file was left"
        if error is not None:
            line = printable(f"colabtray: {error.message}")  # as the CLI shows it
            assert line.endswith("."), line
            assert "unexpected" not in line, line
        outcomes.append("copied" if error is None else error.message.split(" ")[1])

    one()
    assert "copied" in outcomes  # not only refusals: the property also held for copies made


# ---- each kind of lie, in its sentence ---------------------------------------------------


def folder(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "directory", "content": list(content)}


def file(name: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": "file", "size": len(DATA), **more}


MALFORMED = "Fake's listing of folder is malformed"
REFUSED = [
    ([folder(file("../../x"))], "folder on Fake holds '../../x', which is not a single file name"),
    ([folder(file(".."))], "folder on Fake holds '..', which is not a single file name"),
    ([folder(file("a\\b"))], "folder on Fake holds 'a\\\\b', which is not a single file name"),
    (
        [folder(file("\x1b]52;c;aGk=\x07\x00"))],
        "folder on Fake holds '\\x1b]52;c;aGk=\\x07\\x00', which is not a single file name",
    ),
    (
        [folder({"type": "directory", "name": "d"}), folder(file("../../x"))],
        "folder/d on Fake holds '../../x', which is not a single file name",
    ),
    ([folder({"type": "file", "size": 8})], f"{MALFORMED} (an entry has no name)"),
    ([folder({"name": 7, "type": "file"})], f"{MALFORMED} (a name is not text)"),
    (
        [folder(file("x", size=True))],
        f"{MALFORMED} (the size of 'x' is True, not a number of bytes)",
    ),
    ([folder(file("x", size=-1))], f"{MALFORMED} (the size of 'x' is -1, not a number of bytes)"),
    ([folder(file("x", size="8"))], f"{MALFORMED} (the size of 'x' is '8', not a number of bytes)"),
    ([folder(file("x", type="symlink"))], f"{MALFORMED} ('x' has the unknown type 'symlink')"),
    ([folder(file("x"), file("x"))], f"{MALFORMED} (it lists 'x' twice)"),
    ([{"type": "directory", "content": "x"}], f"{MALFORMED} (its entries are not a list)"),
    ([{"type": "directory"}], f"{MALFORMED} (its entries are not a list)"),
    ([[]], f"{MALFORMED} (the answer is not a JSON object)"),
    ([{"content": []}], f"{MALFORMED} (it has no type)"),
    (
        [folder({"name": "self", "type": "directory"})],
        "folder on Fake has folders more than 32 deep under folder/self "
        "(a link to a folder it is in?)",
    ),
]


@pytest.mark.parametrize(("listings", "sentence"), REFUSED, ids=[s for _, s in REFUSED])
def test_a_lying_listing_stops_the_copy_in_one_sentence_before_writing(
    tmp_path: Path, config: Settings, listings: list[Any], sentence: str
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    error, contents = asyncio.run(copy_folder(config, listings, dest))
    assert error is not None
    assert error.message == f"{sentence}; nothing was written to {dest}."
    assert list(dest.iterdir()) == []
    assert not any(p.startswith("files/") for p in contents.paths)


def test_an_absolute_name_is_refused(tmp_path: Path, config: Settings) -> None:
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    dest.mkdir()
    error, _contents = asyncio.run(copy_folder(config, [folder(file(str(elsewhere)))], dest))
    assert error is not None
    assert error.message == (
        f"folder on Fake holds {listing.brief(str(elsewhere))}, which is not a single file name; "
        f"nothing was written to {dest}."
    )
    assert not elsewhere.exists()
    assert list(dest.iterdir()) == []


def test_a_listing_too_large_to_hold_is_refused(
    tmp_path: Path, config: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read up to a bound, never whole: here 1 MiB (64 MiB in use) against a 2 MB listing."""
    monkeypatch.setattr(runtime_files, "ANSWER_LIMIT", 1024 * 1024)
    huge = folder(*(file(f"{n:06d}-{'x' * 40}") for n in range(20_000)))
    error, _contents = asyncio.run(copy_folder(config, [huge], tmp_path))
    assert error is not None
    assert error.message == (
        "Fake's answer when asked to look at folder was over 1 MiB; "
        f"nothing was written to {tmp_path}."
    )
    assert not (tmp_path / "folder").exists()


def test_a_folder_that_lists_itself_is_followed_no_deeper_than_the_bound(
    tmp_path: Path, config: Settings
) -> None:
    self_listing = folder({"name": "self", "type": "directory"}, file("x"))
    error, contents = asyncio.run(copy_folder(config, [self_listing], tmp_path))
    assert error is not None and "more than 32 deep" in error.message
    assert contents.asked == listing.MAX_DEPTH + 1  # the folder, then 32 of "self"
    assert not (tmp_path / "folder").exists()


def test_the_path_a_listing_claims_is_never_used_here(tmp_path: Path, config: Settings) -> None:
    """Only names make local paths: an entry whose ``path`` points elsewhere lands under its
    name, and the runtime is asked for it under the folder it was listed in."""
    dest = tmp_path / "dest"
    dest.mkdir()
    claimed = {"path": "../../../escaped", "name": "x"}
    listings = [{**folder(file("x", path="../../../escaped")), **claimed}]
    error, contents = asyncio.run(copy_folder(config, listings, dest))
    assert error is None
    assert (dest / "folder" / "x").read_bytes() == DATA
    assert [p.name for p in tmp_path.iterdir() if p.name != "app"] == ["dest"]
    assert "content/folder/x" in contents.paths


@dataclass
class Endless(Contents):
    """A runtime whose file streams far more than its listing says (until the client hangs
    up): a copy must not fill the disk with it."""

    sent: int = 0

    async def files(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        piece = b"x" * (1024 * 1024)
        with contextlib.suppress(ConnectionError):
            for _ in range(256):
                await response.write(piece)
                self.sent += len(piece)
        return response


def test_a_file_longer_than_listed_stops_the_copy_at_once(
    tmp_path: Path, config: Settings
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()

    async def run() -> tuple[UserError | None, Endless]:
        async with serving(Endless([folder(file("big.bin"))])) as contents:
            try:
                async with asyncio.timeout(BOUNDED):
                    await copy(config, "Fake:folder", str(dest), recursive=True, ask=contents.ask)
            except UserError as exc:
                return exc, contents
        return None, contents

    error, contents = asyncio.run(run())
    assert error is not None and "big.bin changed on Fake during the copy" in error.message
    assert contents.sent < 64 * 1024 * 1024  # the client hung up long before the 256 MiB
    assert [p for p in dest.rglob("*") if p.is_file()] == []
