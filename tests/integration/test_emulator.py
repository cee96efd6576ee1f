"""The emulator itself, over real HTTP (httpx, websockets), without the colabtray client.

Jupyter is started only where a test needs a runtime (about 1.5 s each).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import websockets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.typing import Subprotocol

from colabtray.emulator.__main__ import main as emulator_main
from tests.fixtures.emulator import Emulator, pid_alive, pids_mentioning
from tests.fixtures.hostile import METHODS, status_of, steering_targets
from tests.fixtures.hostile import exchange as raw_exchange
from tests.fixtures.kernel import execute as run_code
from tests.fixtures.waiting import wait_for

XSSI = ")]}'\n"
REDIRECT = "http://127.0.0.1:53127"
SCOPES = "openid email profile https://www.googleapis.com/auth/colaboratory"


# -- helpers ----------------------------------------------------------------------------------


def new_nbh() -> str:
    """The notebook hash the VS Code extension builds: a UUID, ``-`` → ``_``, dots to 44."""
    return str(uuid.uuid4()).replace("-", "_").ljust(44, ".")


def body(response: httpx2.Response) -> Any:
    assert response.text.startswith(XSSI), response.text[:80]
    return json.loads(response.text[len(XSSI) :])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def colab(
    emu: Emulator,
    method: str,
    path: str,
    token: str | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    """A colab-host call with ``authuser=0`` and the bearer token (default: the ready one)."""
    all_headers = {"Accept": "application/json", **bearer(token or emu.access_token)}
    all_headers.update(headers or {})
    query = {**(params or {}), "authuser": "0"}
    return emu.http.request(method, path, params=query, headers=all_headers)


def assign(emu: Emulator, token: str | None = None, **params: str) -> httpx2.Response:
    """The two-step assign; returns the POST response."""
    params.setdefault("nbh", new_nbh())
    ticket = body(colab(emu, "GET", "/tun/m/assign", token, params))
    assert set(ticket) == {"acc", "nbh", "p", "token", "variant"}
    return colab(
        emu, "POST", "/tun/m/assign", token, params, headers={"X-Goog-Colab-Token": ticket["token"]}
    )


def listing(emu: Emulator, token: str | None = None) -> list[dict[str, Any]]:
    response = colab(emu, "GET", "/tun/m/assignments", token)
    assert response.status_code == 200
    return body(response)["assignments"]  # type: ignore[no-any-return]


def fresh_proxy_token(emu: Emulator, endpoint: str) -> str:
    (item,) = [a for a in listing(emu) if a["endpoint"] == endpoint]
    return item["runtimeProxyInfo"]["token"]  # type: ignore[no-any-return]


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def auth_params(emu: Emulator, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": emu.env["COLABTRAY_CLIENT_ID"],
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPES,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",
        "state": "nonce=abc",
        **extra,
    }


def authorize(emu: Emulator, email: str, challenge: str, decision: str = "allow") -> dict:
    """Open the consent page, pick ``email``, click the button; returns the redirect query."""
    page = emu.http.get(
        urlsplit(emu.env["COLABTRAY_OAUTH_AUTH_URL"]).path, params=auth_params(emu, challenge)
    )
    assert page.status_code == 200, page.text
    assert 'value="allow"' in page.text and 'value="deny"' in page.text
    assert f'value="{email}"' in page.text
    (request_id,) = re.findall(r'name="request" value="([^"]+)"', page.text)
    form = {"request": request_id, "account": email, "decision": decision}
    redirect = emu.http.post("/o/oauth2/approval", data=form)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(REDIRECT + "?") or location.startswith(REDIRECT + "/?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(emu: Emulator, code: str, verifier: str, **overrides: str) -> httpx2.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
        "client_id": emu.env["COLABTRAY_CLIENT_ID"],
        "client_secret": emu.env["COLABTRAY_CLIENT_SECRET"],
        **overrides,
    }
    return emu.http.post("/token", data=form)


def refresh(emu: Emulator, refresh_token: str) -> httpx2.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": emu.env["COLABTRAY_CLIENT_ID"],
        "client_secret": emu.env["COLABTRAY_CLIENT_SECRET"],
    }
    return emu.http.post("/token", data=form)


def sign_in(emu: Emulator, email: str) -> dict[str, Any]:
    verifier, challenge = pkce()
    query = authorize(emu, email, challenge)
    response = exchange(emu, query["code"], verifier)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def execute(url: str, token: str, kernel_id: str, code: str, *, in_query: bool) -> str:
    """Run ``code`` on a kernel, the proxy token in the query or in the header."""
    headers = {"X-Colab-Client-Agent": "tests"}
    if in_query:
        return await run_code(
            url,
            code,
            headers=headers,
            kernel_id=kernel_id,
            query=f"colab-runtime-proxy-token={token}",
        )
    headers["X-Colab-Runtime-Proxy-Token"] = token
    return await run_code(url, code, headers=headers, kernel_id=kernel_id)


async def execute_v1(url: str, token: str, kernel_id: str, code: str) -> tuple[str, str]:
    """Run ``code`` with Jupyter's binary ``v1.kernel.websocket.jupyter.org`` protocol.

    Returns (negotiated subprotocol, stdout). Every frame both ways is binary.
    """
    from jupyter_server.services.kernels.connection.base import (
        deserialize_msg_from_ws_v1,
        serialize_msg_to_ws_v1,
    )

    session = uuid.uuid4().hex
    ws_url = (
        url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels?session_id={session}"
    )
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": "execute_request",
        "session": session,
        "username": "",
        "date": "",
        "version": "5.3",
    }
    content = {
        "code": code,
        "silent": False,
        "store_history": False,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    frame = serialize_msg_to_ws_v1(
        [json.dumps(part).encode() for part in (header, {}, {}, content)], "shell"
    )
    output = ""
    replied = idle = False
    async with websockets.connect(
        ws_url,
        additional_headers={"X-Colab-Runtime-Proxy-Token": token},
        subprotocols=[Subprotocol("v1.kernel.websocket.jupyter.org")],
        open_timeout=30,
    ) as ws:
        protocol = str(ws.subprotocol)
        await ws.send(frame)
        async with asyncio.timeout(30):
            while not (replied and idle):
                raw = await ws.recv()
                assert isinstance(raw, bytes), "v1 frames must stay binary through the proxy"
                _channel, parts = deserialize_msg_from_ws_v1(raw)
                msg_header, parent, _meta, body_ = (json.loads(p) for p in parts[:4])
                if parent.get("msg_id") != msg_id:
                    continue
                kind = msg_header["msg_type"]
                if kind == "stream":
                    output += body_["text"]
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and body_["execution_state"] == "idle":
                    idle = True
    return protocol, output


# -- start, stop, command line ----------------------------------------------------------------


def test_ready_lines_export_everything_the_app_needs(emulator: Emulator) -> None:
    names = [line.split("=", 1)[0].removeprefix("export ") for line in emulator.stdout_lines[:-1]]
    assert names == [
        "COLABTRAY_COLAB_URL",
        "COLABTRAY_GAPI_URL",
        "COLABTRAY_PUBLIC_API_URL",
        "COLABTRAY_OAUTH_AUTH_URL",
        "COLABTRAY_OAUTH_TOKEN_URL",
        "COLABTRAY_OAUTH_REVOKE_URL",
        "COLABTRAY_USERINFO_URL",
        "COLABTRAY_TOKENINFO_URL",
        "COLABTRAY_CLIENT_ID",
        "COLABTRAY_CLIENT_SECRET",
        "COLABTRAY_ACCESS_TOKEN",
        "COLABTRAY_EMULATOR_URL",
    ]
    assert emulator.stdout_lines[-1] == "# colabtray emulator ready"
    base = emulator.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
    assert emulator.env["COLABTRAY_COLAB_URL"] == base
    assert emulator.env["COLABTRAY_GAPI_URL"] == base + "/gapi"
    assert emulator.env["COLABTRAY_PUBLIC_API_URL"] == base + "/public"
    state = emulator.state()
    assert [(a["email"], a["tier"], a["default"]) for a in state["accounts"]] == [
        ("ada@example.com", "pro", True),
        ("free@example.com", "free", False),
        ("plus@example.com", "pro_plus", False),
    ]
    me = emulator.http.get("/oauth2/v2/userinfo", headers=emulator.auth_headers).json()
    assert me["email"] == "ada@example.com" and me["verified_email"] is True


def test_command_line_refuses_non_loopback_and_bad_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert emulator_main(["--host", "0.0.0.0"]) == 2  # noqa: S104
    assert "loopback" in capsys.readouterr().err
    assert emulator_main(["--host", "192.168.1.10"]) == 2
    assert emulator_main(["--fault-rate", "1.5"]) == 2
    assert emulator_main(["--account", "nobody:gold"]) == 2
    assert emulator_main(["--account", "x@example.com:platinum"]) == 2


def test_custom_accounts_and_fault_rate_from_the_command_line(emulator_factory: Any) -> None:
    emu = emulator_factory(
        "--account",
        "zed@example.com:free",
        "--account",
        "max@example.com:pro_plus",
        "--fault-rate",
        "1",
    )
    state = emu.state()  # the admin API is never faulted
    assert [(a["email"], a["tier"]) for a in state["accounts"]] == [
        ("zed@example.com", "free"),
        ("max@example.com", "pro_plus"),
    ]
    assert state["faults"]["fault_rate"] == 1.0
    assert colab(emu, "GET", "/tun/m/assignments").status_code in (500, 503)
    emu.admin("POST", "faults", {"fault_rate": 0})
    assert colab(emu, "GET", "/tun/m/assignments").status_code == 200
    me = emu.http.get("/oauth2/v2/userinfo", headers=emu.auth_headers).json()
    assert me["email"] == "zed@example.com"
    capped = emulator_factory("--max-runtimes", "0")
    assert all(a["max_runtimes"] == 0 for a in capped.state()["accounts"])
    assert assign(capped).status_code == 412


# -- request rules: bearer, authuser, XSSI ----------------------------------------------------

COLAB_GETS = [
    ("/tun/m/assignments", {}),
    ("/tun/m/ccu-info", {}),
    ("/tun/m/assign", {"nbh": "a" * 44}),
    ("/tun/m/m-s-doesnotexist/keep-alive/", {}),
    ("/tun/m/unassign/m-s-doesnotexist", {}),
]
GAPI_GETS = [
    ("/gapi/v1/user-info", {}),
    ("/gapi/v1/assignments", {}),
    ("/gapi/v1/runtime-proxy-token", {"endpoint": "m-s-x", "port": "8080"}),
]


def test_every_backend_endpoint_demands_a_live_bearer_token(emulator: Emulator) -> None:
    for path, params in COLAB_GETS + GAPI_GETS:
        query = {**params, "authuser": "0"} if path.startswith("/tun/") else params
        for headers in ({}, bearer("not-a-token"), {"Authorization": "Basic Zm9vOmJhcg=="}):
            response = emulator.http.get(path, params=query, headers=headers)
            assert response.status_code == 401, (path, headers, response.text)
            error = response.json()["error"]
            assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    # Revoked: a signed-in account revokes its grant; expired: the admin API ages tokens.
    tokens = sign_in(emulator, "ada@example.com")
    assert colab(emulator, "GET", "/tun/m/assignments", tokens["access_token"]).status_code == 200
    emulator.admin("POST", "tokens/expire-access", {"email": "ada@example.com"})
    assert colab(emulator, "GET", "/tun/m/assignments", tokens["access_token"]).status_code == 401
    assert colab(emulator, "GET", "/tun/m/assignments").status_code == 200  # static token lives
    renewed = refresh(emulator, tokens["refresh_token"]).json()["access_token"]
    assert colab(emulator, "GET", "/tun/m/assignments", renewed).status_code == 200
    assert emulator.http.post("/revoke", data={"token": renewed}).status_code == 200
    assert colab(emulator, "GET", "/tun/m/assignments", renewed).status_code == 401
    assert (
        emulator.admin("POST", "tokens/revoke", {"email": "ada@example.com"})["revoked_grants"] >= 1
    )
    assert colab(emulator, "GET", "/tun/m/assignments").status_code == 401


def test_colab_host_requires_authuser_0_and_gapi_does_not(emulator: Emulator) -> None:
    for path, params in [*COLAB_GETS, ("/vscode/experiment-state", {})]:
        for authuser in (None, "1", ""):
            query = dict(params) if authuser is None else {**params, "authuser": authuser}
            response = emulator.http.get(path, params=query, headers=emulator.auth_headers)
            assert response.status_code == 400, (path, authuser, response.text)
    for path, _ in GAPI_GETS[:2]:
        assert emulator.http.get(path, headers=emulator.auth_headers).status_code == 200


def test_json_bodies_carry_the_xssi_prefix_and_protocol_shapes(emulator: Emulator) -> None:
    assert body(colab(emulator, "GET", "/tun/m/assignments")) == {"assignments": []}
    gapi = emulator.http.get("/gapi/v1/assignments", headers=emulator.auth_headers)
    assert body(gapi) == {}  # ProtoJSON leaves out an empty repeated field
    # Experiment flags come even without a bearer token (the extension asks while signed out).
    flags = body(emulator.http.get("/vscode/experiment-state", params={"authuser": "0"}))
    assert flags["experiments"]["runtime_version_names"] == ["2025.07", "2025.10"]

    info = body(emulator.http.get("/gapi/v1/user-info", headers=emulator.auth_headers))
    assert info["subscriptionTier"] == "SUBSCRIPTION_TIER_PRO"
    assert {"variant": "VARIANT_GPU", "models": ["T4", "L4", "A100"]} in info[
        "eligibleAccelerators"
    ]
    assert {"variant": "VARIANT_GPU", "models": ["H100"]} in info["ineligibleAccelerators"]
    assert "consumptionRateHourly" not in info

    free = sign_in(emulator, "free@example.com")["access_token"]
    usage = body(
        emulator.http.get(
            "/gapi/v1/user-info", params={"get_ccu_consumption_info": "true"}, headers=bearer(free)
        )
    )
    assert usage["subscriptionTier"] == "SUBSCRIPTION_TIER_NONE"
    assert usage["paidComputeUnitsBalance"] == 0 and usage["assignmentsCount"] == 0
    assert isinstance(usage["freeCcuQuotaInfo"]["remainingTokens"], str)
    ccu = body(colab(emulator, "GET", "/tun/m/ccu-info", free))
    assert ccu["eligibleGpus"] == ["T4"] and ccu["eligibleTpus"] == ["V5E1"]
    assert set(ccu["ineligibleGpus"]) == {"L4", "A100", "H100"}
    assert "V6E1" in ccu["ineligibleTpus"]
    assert int(ccu["freeCcuQuotaInfo"]["remainingTokens"]) > 0
    pro_ccu = body(colab(emulator, "GET", "/tun/m/ccu-info"))
    assert pro_ccu["currentBalance"] == pytest.approx(100.0)
    assert "freeCcuQuotaInfo" not in pro_ccu


CCU_INFO_FIELDS = {
    "currentBalance",
    "consumptionRateHourly",
    "assignmentsCount",
    "eligibleGpus",
    "ineligibleGpus",
    "eligibleTpus",
    "ineligibleTpus",
    "freeCcuQuotaInfo",
}


def test_the_plan_is_in_the_assign_reply_and_never_in_ccu_info(emulator: Emulator) -> None:
    """Issue 23 (1): ccu-info carries Colab's fields and nothing else, so colabtray cannot
    lean on a plan Colab never sends there; the assign POST names it as ``subTier`` (0 none,
    1 Pro, 2 Pro+), as Colab's does."""
    plans = {"free@example.com": 0, "ada@example.com": 1, "plus@example.com": 2}
    for email, sub_tier in plans.items():
        token = emulator.access_token if email == "ada@example.com" else None
        token = token or sign_in(emulator, email)["access_token"]
        info = body(colab(emulator, "GET", "/tun/m/ccu-info", token))
        assert set(info) <= CCU_INFO_FIELDS, email
        made = body(assign(emulator, token))
        assert made["subTier"] == sub_tier, email
        unassign = f"/tun/m/unassign/{made['endpoint']}"
        ticket = body(colab(emulator, "GET", unassign, token))["token"]
        colab(emulator, "POST", unassign, token, headers={"X-Goog-Colab-Token": ticket})


def test_request_log_shows_wire_details_without_secrets(emulator: Emulator) -> None:
    emulator.admin("DELETE", "requests")
    colab(
        emulator,
        "GET",
        "/tun/m/m-s-doesnotexist/keep-alive/",
        headers={"X-Colab-Tunnel": "Google", "X-Colab-Client-Agent": "colabtray"},
        params={"token": "secret-in-query"},
    )
    log = emulator.admin("GET", "requests")["requests"]
    (entry,) = [e for e in log if e["path"].endswith("/keep-alive/")]
    assert entry["host"] == "colab" and entry["method"] == "GET" and entry["status"] == 404
    assert entry["query"]["authuser"] == "0"
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    assert headers["x-colab-tunnel"] == "Google"
    assert headers["x-colab-client-agent"] == "colabtray"
    assert headers["accept"] == "application/json"
    assert headers["authorization"] == "Bearer <redacted>"
    dump = json.dumps(log)
    assert emulator.access_token not in dump and "secret-in-query" not in dump


# -- assign, refusals -------------------------------------------------------------------------


def test_assign_refusals_follow_the_protocol(emulator: Emulator) -> None:
    def post_status(token: str | None = None, **params: str) -> tuple[int, Any]:
        response = assign(emulator, token, **params)
        return response.status_code, body(response) if response.status_code == 200 else None

    # Malformed requests are refused on the GET already.
    for bad in (
        {"nbh": "short"},
        {"nbh": "x" * 43 + "!"},
        {"nbh": new_nbh(), "variant": "CPU"},
        {"nbh": new_nbh(), "variant": "GPU"},
        {"nbh": new_nbh(), "variant": "GPU", "accelerator": "V5E1"},
        {"nbh": new_nbh(), "variant": "TPU", "accelerator": "X99"},
        {"nbh": new_nbh(), "accelerator": "T4"},
        {"nbh": new_nbh(), "shape": "huge"},
        {"nbh": new_nbh(), "runtime_version_label": "1999.01"},
    ):
        assert colab(emulator, "GET", "/tun/m/assign", params=bad).status_code == 400, bad

    # XSRF: the POST needs the ticket of the same account and nbh.
    nbh = new_nbh()
    ticket = body(colab(emulator, "GET", "/tun/m/assign", params={"nbh": nbh}))["token"]
    assert colab(emulator, "POST", "/tun/m/assign", params={"nbh": nbh}).status_code == 400
    wrong = {"X-Goog-Colab-Token": "AJQx7xforged:1"}
    assert (
        colab(emulator, "POST", "/tun/m/assign", params={"nbh": nbh}, headers=wrong).status_code
        == 403
    )
    other = {"nbh": new_nbh()}
    assert (
        colab(
            emulator, "POST", "/tun/m/assign", params=other, headers={"X-Goog-Colab-Token": ticket}
        ).status_code
        == 403
    )
    free = sign_in(emulator, "free@example.com")["access_token"]
    stolen = colab(
        emulator, "POST", "/tun/m/assign", free, {"nbh": nbh}, {"X-Goog-Colab-Token": ticket}
    )
    assert stolen.status_code == 403

    # Eligibility: free tier like finding G1 (412), paid tier like A6 (400): docs/protocol.md §13.
    assert post_status(free, variant="GPU", accelerator="A100")[0] == 412
    assert post_status(free, variant="GPU", accelerator="L4")[0] == 412
    assert post_status(variant="GPU", accelerator="H100")[0] == 400
    # Too many runtimes, accelerator out of stock, quota outcomes, denylist.
    emulator.admin("POST", "accounts/ada@example.com", {"max_runtimes": 0})
    assert post_status()[0] == 412
    emulator.admin("POST", "accounts/ada@example.com", {"max_runtimes": None})
    emulator.admin("POST", "unavailable", {"accelerators": ["T4"]})
    assert post_status(variant="GPU", accelerator="T4")[0] == 503
    emulator.admin("POST", "unavailable", {"accelerators": []})
    emulator.admin("POST", "accounts/ada@example.com", {"quota_outcome": 1})
    assert post_status(variant="GPU", accelerator="T4") == (200, {"outcome": 1, "sub": 2})
    emulator.admin("POST", "accounts/ada@example.com", {"quota_outcome": 2})
    assert post_status()[1]["outcome"] == 2
    emulator.admin("POST", "accounts/ada@example.com", {"quota_outcome": None, "denylisted": True})
    assert post_status() == (200, {"outcome": 5})
    assert emulator.state()["runtimes"] == []


def test_assign_keepalive_list_propagate_unassign(emulator: Emulator) -> None:
    nbh = new_nbh()
    started = time.monotonic()
    response = assign(emulator, nbh=nbh, variant="GPU", accelerator="L4")
    assign_seconds = time.monotonic() - started
    assert response.status_code == 200, response.text
    reply = body(response)
    assert reply["accelerator"] == "L4" and reply["endpoint"].startswith("gpu-l4-s-")
    assert reply["variant"] == 1 and reply["machineShape"] == 1  # L4 is high-mem only
    assert reply["outcome"] == 4 and reply["sub"] == 2 and reply["subTier"] == 1
    assert reply["fit"] == 600
    info = reply["runtimeProxyInfo"]
    assert info["tokenExpiresInSeconds"] == 3600 and info["url"].startswith("http://127.0.0.1:")
    endpoint = reply["endpoint"]
    print(f"assign with Jupyter start took {assign_seconds:.2f} s")

    # The GET of the same nbh now returns the assignment itself (no ticket).
    again = body(
        colab(
            emulator,
            "GET",
            "/tun/m/assign",
            params={"nbh": nbh, "variant": "GPU", "accelerator": "L4"},
        )
    )
    assert again["endpoint"] == endpoint and "token" not in again

    # Listings: numbers and a fresh token per call on the colab host, ProtoJSON on GAPI.
    first, second = listing(emulator), listing(emulator)
    assert first[0]["endpoint"] == endpoint and first[0]["notebookIdHash"] == nbh
    assert (first[0]["variant"], first[0]["machineShape"]) == (1, 1)
    assert first[0]["runtimeProxyInfo"]["token"] != second[0]["runtimeProxyInfo"]["token"]
    (gapi,) = body(emulator.http.get("/gapi/v1/assignments", headers=emulator.auth_headers))[
        "assignments"
    ]
    assert (gapi["variant"], gapi["machineShape"]) == ("VARIANT_GPU", "SHAPE_HIGH_MEM")
    assert re.fullmatch(r"\d+s", gapi["runtimeProxyInfo"]["tokenTtl"])
    refreshed = body(
        emulator.http.get(
            "/gapi/v1/runtime-proxy-token",
            params={"endpoint": endpoint, "port": "8080"},
            headers=emulator.auth_headers,
        )
    )
    assert refreshed["tokenTtl"] == "3600s" and refreshed["url"] == info["url"]
    bad_port = {"endpoint": endpoint, "port": "9000"}
    assert (
        emulator.http.get(
            "/gapi/v1/runtime-proxy-token", params=bad_port, headers=emulator.auth_headers
        ).status_code
        == 400
    )
    # Old tokens stay valid after refreshes until their own expiry.
    for token in (info["token"], refreshed["token"], second[0]["runtimeProxyInfo"]["token"]):
        status = httpx2.get(
            info["url"] + "/api/status", headers={"X-Colab-Runtime-Proxy-Token": token}
        )
        assert status.status_code == 200

    # Compute units burn while it runs.
    before = body(colab(emulator, "GET", "/tun/m/ccu-info"))
    assert (
        before["consumptionRateHourly"] == pytest.approx(4.82) and before["assignmentsCount"] == 1
    )
    wait_for(
        lambda: (
            body(colab(emulator, "GET", "/tun/m/ccu-info"))["currentBalance"]
            < before["currentBalance"]
        ),
        5,
    )

    # Keep-alive: the tunnel header is required, the endpoint must exist.
    ping = "/tun/m/{}/keep-alive/"
    tunnel = {"X-Colab-Tunnel": "Google"}
    assert colab(emulator, "GET", ping.format(endpoint)).status_code == 400
    assert colab(emulator, "GET", ping.format("m-s-unknown"), headers=tunnel).status_code == 404
    assert (
        colab(emulator, "GET", ping.format(endpoint).rstrip("/"), headers=tunnel).status_code == 404
    )
    assert colab(emulator, "GET", ping.format(endpoint), headers=tunnel).status_code == 200

    # Credentials propagation: consent first, then success.
    prop = f"/tun/m/credentials-propagation/{endpoint}"
    q = {
        "authtype": "dfs_ephemeral",
        "version": "2",
        "dryrun": "true",
        "propagate": "true",
        "record": "false",
    }
    assert (
        colab(emulator, "GET", prop, params={**q, "authtype": "dfs_persistent"}).status_code == 400
    )
    xsrf = {"X-Goog-Colab-Token": body(colab(emulator, "GET", prop, params=q))["token"]}
    assert colab(emulator, "POST", prop, params=q).status_code == 400
    dry = body(colab(emulator, "POST", prop, params=q, headers=xsrf))
    assert dry["success"] is False
    consent_url = dry["unauthorized_redirect_uri"]
    assert "/tun/m/authorize-for-drive-credentials-ephem" in consent_url
    assert body(colab(emulator, "POST", prop, params={**q, "dryrun": "false"}, headers=xsrf)) == {
        "success": False
    }
    page = httpx2.get(consent_url)
    assert page.status_code == 200 and 'value="allow"' in page.text
    (state,) = re.findall(r'name="state" value="([^"]+)"', page.text)
    decided = httpx2.post(consent_url.split("?")[0], data={"state": state, "decision": "allow"})
    assert decided.status_code == 200 and "Continue" in decided.text
    assert body(colab(emulator, "POST", prop, params=q, headers=xsrf)) == {"success": True}
    assert body(colab(emulator, "POST", prop, params={**q, "dryrun": "false"}, headers=xsrf)) == {
        "success": True
    }
    other_type = {**q, "authtype": "auth_user_ephemeral"}
    assert body(colab(emulator, "POST", prop, params=other_type, headers=xsrf))["success"] is False

    # Unassign: GET ticket, POST with it; the runtime is gone, its Jupyter and listener too.
    jupyter_pid = emulator.state()["runtimes"][0]["jupyter_pid"]
    unassign = f"/tun/m/unassign/{endpoint}"
    ticket = body(colab(emulator, "GET", unassign))["token"]
    assert colab(emulator, "POST", unassign).status_code == 400
    done = colab(emulator, "POST", unassign, headers={"X-Goog-Colab-Token": ticket})
    assert done.status_code == 200 and body(done) == {}
    assert listing(emulator) == []
    assert not pid_alive(jupyter_pid)
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(
            info["url"] + "/api/status", headers={"X-Colab-Runtime-Proxy-Token": refreshed["token"]}
        )
    assert colab(emulator, "GET", unassign).status_code == 404
    assert colab(emulator, "GET", ping.format(endpoint), headers=tunnel).status_code == 404


# -- the runtime proxy and a real kernel ------------------------------------------------------


def test_kernel_runs_code_through_the_runtime_proxy(emulator_factory: Any) -> None:
    emu = emulator_factory("--proxy-token-ttl", "3", "--idle-timeout", "600")
    reply = body(assign(emu, shape="hm"))
    assert reply["endpoint"].startswith("m-s-") and reply["accelerator"] == "NONE"
    assert reply["variant"] == 0 and reply["machineShape"] == 1
    assert reply["runtimeProxyInfo"]["tokenExpiresInSeconds"] == 3
    url, endpoint = reply["runtimeProxyInfo"]["url"], reply["endpoint"]
    first_token = reply["runtimeProxyInfo"]["token"]

    assert httpx2.get(url + "/api/kernels").status_code == 401
    bogus = {"X-Colab-Runtime-Proxy-Token": "bogus"}
    assert httpx2.get(url + "/api/kernels", headers=bogus).status_code == 401

    token = fresh_proxy_token(emu, endpoint)
    headers = {"X-Colab-Runtime-Proxy-Token": token}
    resources = httpx2.get(url + "/api/colab/resources", headers=headers).json()
    assert resources["memory"]["totalBytes"] > resources["memory"]["freeBytes"] > 0
    assert resources["disks"][0]["filesystem"]["label"] == "kernel"
    assert "gpus" not in resources
    kernel = httpx2.post(
        url + "/api/kernels", headers=headers, json={"name": "python3"}, timeout=30
    )
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]

    output = asyncio.run(
        execute(url, fresh_proxy_token(emu, endpoint), kernel_id, "print(6*7)", in_query=False)
    )
    assert output == "42\n"
    output = asyncio.run(
        execute(url, fresh_proxy_token(emu, endpoint), kernel_id, "print('q')", in_query=True)
    )
    assert output == "q\n"
    protocol, output = asyncio.run(
        execute_v1(url, fresh_proxy_token(emu, endpoint), kernel_id, "print('binary')")
    )
    assert (protocol, output) == ("v1.kernel.websocket.jupyter.org", "binary\n")
    # The query form works for REST too (Google's CLI uses it for the contents API).
    contents = httpx2.get(
        url + "/api/contents/content",
        params={"colab-runtime-proxy-token": fresh_proxy_token(emu, endpoint)},
    )
    assert contents.status_code == 200 and contents.json()["type"] == "directory"

    async def refused_handshake() -> None:
        ws_url = url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
        with pytest.raises(websockets.InvalidStatus) as excinfo:
            async with websockets.connect(ws_url, open_timeout=10):
                pass
        assert excinfo.value.response.status_code == 401

    asyncio.run(refused_handshake())

    # An expired token is refused (401) while a fresh one still works.
    expired = {"X-Colab-Runtime-Proxy-Token": first_token}
    wait_for(lambda: httpx2.get(url + "/api/kernels", headers=expired).status_code == 401, 10, 0.2)
    fresh = {"X-Colab-Runtime-Proxy-Token": fresh_proxy_token(emu, endpoint)}
    assert httpx2.get(url + "/api/kernels", headers=fresh).status_code == 200
    logged = emu.stderr_text()
    assert "/api/kernels" in logged  # requests are logged, their tokens are not
    for secret in (first_token, fresh["X-Colab-Runtime-Proxy-Token"], emu.access_token):
        assert secret not in logged


def test_admin_revokes_proxy_tokens_before_they_expire(emulator: Emulator) -> None:
    first, second = body(assign(emulator)), body(assign(emulator))

    def status(reply: dict[str, Any], token: str) -> int:
        headers = {"X-Colab-Runtime-Proxy-Token": token}
        url = reply["runtimeProxyInfo"]["url"]
        return httpx2.get(url + "/api/kernels", headers=headers, timeout=30).status_code

    token_a = first["runtimeProxyInfo"]["token"]
    token_b = second["runtimeProxyInfo"]["token"]
    assert (status(first, token_a), status(second, token_b)) == (200, 200)

    # One runtime: its tokens are refused at once, the other runtime's are not.
    assert emulator.revoke_proxy_tokens(first["endpoint"]) >= 1
    assert status(first, token_a) == 401
    assert status(second, token_b) == 200
    # A token obtained the normal way afterwards works.
    token_a = fresh_proxy_token(emulator, first["endpoint"])
    assert status(first, token_a) == 200

    # Every runtime: the GAPI listing (which otherwise hands out the newest token) and the
    # refresh call give working ones.
    assert emulator.revoke_proxy_tokens() >= 2
    assert (status(first, token_a), status(second, token_b)) == (401, 401)
    gapi = body(emulator.http.get("/gapi/v1/assignments", headers=emulator.auth_headers))
    listed = {a["endpoint"]: a["runtimeProxyInfo"]["token"] for a in gapi["assignments"]}
    assert status(first, listed[first["endpoint"]]) == 200
    refreshed = emulator.http.get(
        "/gapi/v1/runtime-proxy-token",
        params={"endpoint": second["endpoint"], "port": "8080"},
        headers=emulator.auth_headers,
    )
    assert status(second, body(refreshed)["token"]) == 200

    unknown = emulator.http.post("/_emulator/tokens/revoke-proxy", json={"endpoint": "m-s-nope"})
    assert unknown.status_code == 400


# -- idle reclaim -----------------------------------------------------------------------------


def test_idle_runtime_is_reclaimed_and_pinged_one_is_not(emulator_factory: Any) -> None:
    emu = emulator_factory("--idle-timeout", "3")
    pinged = body(assign(emu, variant="GPU", accelerator="T4"))["endpoint"]
    stop = threading.Event()

    def ping() -> None:
        with httpx2.Client(base_url=emu.url) as client:
            while not stop.wait(0.4):
                client.get(
                    f"/tun/m/{pinged}/keep-alive/",
                    params={"authuser": "0"},
                    headers={**emu.auth_headers, "X-Colab-Tunnel": "Google"},
                )

    pinger = threading.Thread(target=ping, daemon=True)
    pinger.start()
    try:
        idle = body(assign(emu))["endpoint"]
        idle_pid = next(r["jupyter_pid"] for r in emu.state()["runtimes"] if r["endpoint"] == idle)
        started = time.monotonic()
        wait_for(lambda: idle not in {a["endpoint"] for a in listing(emu)}, 15, 0.1)
        assert time.monotonic() - started > 1.5  # not before its idle timeout
        assert pinged in {a["endpoint"] for a in listing(emu)}
        wait_for(lambda: not pid_alive(idle_pid), 10)
        time.sleep(3.5)  # a whole idle timeout more: the pinged one must survive it
        assert [a["endpoint"] for a in listing(emu)] == [pinged]
    finally:
        stop.set()
        pinger.join(5)


# -- OAuth ------------------------------------------------------------------------------------


def test_oauth_code_flow_with_pkce(emulator: Emulator) -> None:
    verifier, challenge = pkce()
    query = authorize(emulator, "plus@example.com", challenge)
    assert query["state"] == "nonce=abc" and query["code"]
    assert "https://www.googleapis.com/auth/colaboratory" in query["scope"].split()

    assert exchange(emulator, query["code"], "x" * 50).json()["error"] == "invalid_grant"
    # The failed attempt spent the code: codes are single use.
    query = authorize(emulator, "plus@example.com", challenge)
    wrong_secret = exchange(emulator, query["code"], verifier, client_secret="nope")
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    wrong_redirect = exchange(emulator, query["code"], verifier, redirect_uri="http://127.0.0.1:1")
    assert wrong_redirect.json()["error"] == "redirect_uri_mismatch"

    query = authorize(emulator, "plus@example.com", challenge)
    good = exchange(emulator, query["code"], verifier)
    assert good.status_code == 200, good.text
    tokens = good.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["refresh_token"] and set(tokens["scope"].split()) >= {
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/colaboratory",
    }
    replay = exchange(emulator, query["code"], verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"

    me = emulator.http.get("/oauth2/v2/userinfo", headers=bearer(tokens["access_token"])).json()
    assert me["email"] == "plus@example.com" and me["name"]
    info = body(emulator.http.get("/gapi/v1/user-info", headers=bearer(tokens["access_token"])))
    assert info["subscriptionTier"] == "SUBSCRIPTION_TIER_PRO_PLUS"

    query = authorize(emulator, "plus@example.com", challenge)
    emulator.admin("POST", "tokens/expire-codes")
    assert exchange(emulator, query["code"], verifier).json()["error"] == "invalid_grant"

    renewed = refresh(emulator, tokens["refresh_token"])
    assert renewed.status_code == 200 and "refresh_token" not in renewed.json()
    assert renewed.json()["access_token"] != tokens["access_token"]
    assert emulator.http.post("/revoke", data={"token": tokens["refresh_token"]}).status_code == 200
    after = refresh(emulator, tokens["refresh_token"])
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    assert (
        colab(emulator, "GET", "/tun/m/assignments", renewed.json()["access_token"]).status_code
        == 401
    )
    again = emulator.http.post("/revoke", data={"token": tokens["refresh_token"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"
    logged = emulator.stderr_text()
    for secret in (tokens["access_token"], tokens["refresh_token"], query["code"], verifier):
        assert secret not in logged


def test_oauth_page_refuses_bad_requests_and_deny_redirects(emulator: Emulator) -> None:
    _, challenge = pkce()
    path = "/o/oauth2/v2/auth"
    good = auth_params(emulator, challenge)
    assert emulator.http.get(path, params=good).status_code == 200
    for change in (
        {"client_id": "someone-else.apps.googleusercontent.com"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "http://192.168.1.2:8080"},
        {"response_type": "token"},
        {"code_challenge_method": "plain"},
        {"code_challenge": "short"},
        {"scope": "https://www.googleapis.com/auth/gmail.readonly"},
    ):
        page = emulator.http.get(path, params={**good, **change})
        assert page.status_code in (400, 401), change
        assert "Error" in page.text
    missing_method = {k: v for k, v in good.items() if k != "code_challenge_method"}
    assert emulator.http.get(path, params=missing_method).status_code == 400
    assert authorize(emulator, "ada@example.com", challenge, decision="deny") == {
        "error": "access_denied",
        "state": "nonce=abc",
    }
    token = emulator.http.post("/token", data={"grant_type": "password"})
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"


def test_auto_approve_and_short_access_tokens(emulator_factory: Any) -> None:
    emu = emulator_factory("--auto-approve", "--access-token-ttl", "1")
    verifier, challenge = pkce()
    redirect = emu.http.get("/o/oauth2/v2/auth", params=auth_params(emu, challenge))
    assert redirect.status_code == 302
    query = parse_qs(urlsplit(redirect.headers["Location"]).query)
    tokens = exchange(emu, query["code"][0], verifier).json()
    assert tokens["expires_in"] == 1
    me = emu.http.get("/oauth2/v2/userinfo", headers=bearer(tokens["access_token"]))
    assert me.json()["email"] == "ada@example.com"
    wait_for(
        lambda: colab(emu, "GET", "/tun/m/assignments", tokens["access_token"]).status_code == 401,
        5,
    )
    renewed = refresh(emu, tokens["refresh_token"]).json()["access_token"]
    assert colab(emu, "GET", "/tun/m/assignments", renewed).status_code == 200


# -- faults -----------------------------------------------------------------------------------


def test_faults_and_latency_switch_at_run_time(emulator: Emulator) -> None:
    assert colab(emulator, "GET", "/tun/m/assignments").status_code == 200
    emulator.admin("POST", "faults", {"fault_rate": 1.0})
    statuses = {colab(emulator, "GET", "/tun/m/assignments").status_code for _ in range(20)}
    assert statuses <= {500, 503} and statuses
    assert emulator.http.get("/gapi/v1/assignments", headers=emulator.auth_headers).status_code in (
        500,
        503,
    )
    assert refresh(emulator, "whatever").status_code in (500, 503)
    assert emulator.state()["faults"]["fault_rate"] == 1.0  # the admin API is never faulted
    emulator.admin("POST", "faults", {"fault_rate": 0, "latency": 0.4})
    started = time.monotonic()
    assert colab(emulator, "GET", "/tun/m/assignments").status_code == 200
    assert time.monotonic() - started >= 0.4
    emulator.admin("POST", "faults", {"latency": 0})
    started = time.monotonic()
    assert colab(emulator, "GET", "/tun/m/assignments").status_code == 200
    assert time.monotonic() - started < 0.4
    bad = emulator.http.post("/_emulator/faults", json={"fault_rate": 2})
    assert bad.status_code == 400


# -- no orphans -------------------------------------------------------------------------------


def test_sigterm_stops_jupyter_and_kernels(emulator_factory: Any) -> None:
    emu = emulator_factory()
    free = sign_in(emu, "free@example.com")["access_token"]
    reply = body(assign(emu, free, variant="TPU", accelerator="V5E1"))
    assert reply["endpoint"].startswith("tpu-v5e1-s-") and reply["machineShape"] == 1
    url, token = reply["runtimeProxyInfo"]["url"], reply["runtimeProxyInfo"]["token"]
    kernel = httpx2.post(
        url + "/api/kernels", headers={"X-Colab-Runtime-Proxy-Token": token}, json={}, timeout=30
    )
    assert kernel.status_code == 201
    state = emu.state()
    temp_dir = state["temp_dir"]
    wait_for(lambda: len(pids_mentioning(temp_dir)) >= 2, 20)  # jupyter and the kernel
    jupyter_pid = state["runtimes"][0]["jupyter_pid"]
    emu.stop()  # asserts exit status 0, no process left, temp dir removed
    assert not pid_alive(jupyter_pid)
    assert pids_mentioning(temp_dir) == []
    assert not Path(temp_dir).exists()


def test_killed_emulator_leaves_no_jupyter_behind(emulator_factory: Any) -> None:
    emu = emulator_factory()
    reply = body(assign(emu))
    url, token = reply["runtimeProxyInfo"]["url"], reply["runtimeProxyInfo"]["token"]
    kernel = httpx2.post(
        url + "/api/kernels", headers={"X-Colab-Runtime-Proxy-Token": token}, json={}, timeout=30
    )
    assert kernel.status_code == 201
    temp_dir = emu.state()["temp_dir"]
    wait_for(lambda: len(pids_mentioning(temp_dir)) >= 2, 20)
    os.kill(emu.process.pid, signal.SIGKILL)  # no atexit, no signal handler: the crash path
    emu.process.wait(10)
    try:
        # Jupyter gets SIGTERM from the kernel (parent-death signal) and stops its kernels.
        wait_for(lambda: pids_mentioning(temp_dir) == [], 20, 0.1)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
        emu.discard()  # already dead: nothing for the fixture to check


# -- hostile input ----------------------------------------------------------------------------

_ROUTES = [
    "/tun/m/assign",
    "/tun/m/assignments",
    "/tun/m/ccu-info",
    "/tun/m/unassign/x",
    "/tun/m/credentials-propagation/x",
    "/tun/m/x/keep-alive/",
    "/gapi/v1/user-info",
    "/gapi/v1/assignments",
    "/gapi/v1/runtime-proxy-token",
    "/o/oauth2/v2/auth",
    "/o/oauth2/approval",
    "/token",
    "/revoke",
    "/oauth2/v2/userinfo",
    "/_emulator/state",
    "/_emulator/faults",
    "/_emulator/accounts/a@b.c",
    "/_emulator/runtimes/x/reclaim",
    "/_emulator/requests",
]
_QUERY_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)


def test_hostile_requests_get_a_clean_answer_and_leave_no_traceback(emulator: Emulator) -> None:
    """Every route, odd targets, odd queries, odd bodies: a 4xx (or a real answer), never a
    500 or an unhandled exception in the log."""
    port = int(urlsplit(emulator.url).port or 0)
    token = emulator.access_token
    statuses: list[int] = []

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        method=st.sampled_from(["GET", "GET", "POST", *METHODS]),
        target=st.one_of(
            st.builds(lambda r, q: f"{r}?{q}", st.sampled_from(_ROUTES), _QUERY_TEXT),
            st.builds(lambda r, t: r + t, st.sampled_from(_ROUTES), steering_targets(1)),
            steering_targets(1),
        ),
        version=st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0"]),
        authorized=st.booleans(),
        body=st.one_of(st.just(b""), st.binary(max_size=200), st.just(b'{"a": [[[[1]]]]}')),
    )
    # Always, besides what is drawn: a route's own answer with and without the token.
    @example("GET", "/tun/m/assignments?authuser=0", "HTTP/1.1", True, b"")
    @example("GET", "/tun/m/assignments?authuser=0", "HTTP/1.1", False, b"")
    def one(method: str, target: str, version: str, authorized: bool, body: bytes) -> None:
        lines = [
            f"{method} {target} {version}",
            f"Host: 127.0.0.1:{port}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if authorized:
            lines.append(f"Authorization: Bearer {token}")
        data = "\r\n".join([*lines, "", ""]).encode("latin-1") + body
        status = status_of(raw_exchange(port, data))
        statuses.append(status)
        assert status != 500

    one()
    log = emulator.stderr_text()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    # The handlers themselves were reached (the examples), and the drawn requests met the
    # listener's refusals as well as the routes' own.
    assert {200, 401} <= set(statuses) and {400, 404} & set(statuses), set(statuses)


# -- tokeninfo, scopes, --token-scopes --------------------------------------------------------

SCOPE_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
SCOPE_COLAB = "https://www.googleapis.com/auth/colaboratory"
SCOPE_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
INVALID_TOKEN = {"error": "invalid_token", "error_description": "Invalid Value"}


def sign_in_with_scopes(emu: Emulator, email: str, scope: str) -> dict[str, Any]:
    """The consent flow asking for ``scope`` (space-separated) only; returns the tokens."""
    verifier, challenge = pkce()
    path = urlsplit(emu.env["COLABTRAY_OAUTH_AUTH_URL"]).path
    page = emu.http.get(path, params=auth_params(emu, challenge, scope=scope))
    assert page.status_code == 200, page.text
    (request_id,) = re.findall(r'name="request" value="([^"]+)"', page.text)
    form = {"request": request_id, "account": email, "decision": "allow"}
    redirect = emu.http.post("/o/oauth2/approval", data=form)
    assert redirect.status_code == 302, redirect.text
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    tokens = exchange(emu, code, verifier)
    assert tokens.status_code == 200, tokens.text
    return tokens.json()  # type: ignore[no-any-return]


def tokeninfo(emu: Emulator, token: str | None, method: str = "GET") -> httpx2.Response:
    """Ask the exported tokeninfo URL about ``token``: in the query (GET) or a form (POST)."""
    url = emu.env["COLABTRAY_TOKENINFO_URL"]
    fields = {} if token is None else {"access_token": token}
    if method == "GET":
        return emu.http.get(url, params=fields)
    return emu.http.post(url, data=fields)


def scope_refusal(response: httpx2.Response) -> dict[str, Any]:
    """The Google error of a 403 for a missing scope; fails unless it is one."""
    assert response.status_code == 403, response.text
    error = response.json()["error"]  # plain JSON, no XSSI line
    assert error["message"] == "Request had insufficient authentication scopes."
    assert error["status"] == "PERMISSION_DENIED"
    return error  # type: ignore[no-any-return]


def test_tokeninfo_describes_a_live_token_with_googles_fields(emulator: Emulator) -> None:
    assert emulator.env["COLABTRAY_TOKENINFO_URL"] == emulator.url + "/tokeninfo"
    client_id = emulator.env["COLABTRAY_CLIENT_ID"]
    tokens = sign_in(emulator, "plus@example.com")
    me = emulator.http.get("/oauth2/v2/userinfo", headers=bearer(tokens["access_token"])).json()
    mark = emulator.last_seq()
    for method in ("GET", "POST"):
        answer = tokeninfo(emulator, tokens["access_token"], method)
        assert answer.status_code == 200, answer.text
        assert not answer.text.startswith(XSSI)
        info = answer.json()
        assert all(isinstance(value, str) for value in info.values()), info
        assert info["aud"] == info["azp"] == client_id
        assert info["sub"] == me["id"]
        assert set(info["scope"].split()) == {"openid", SCOPE_EMAIL, SCOPE_PROFILE, SCOPE_COLAB}
        assert 3590 <= int(info["expires_in"]) <= 3600
        assert abs(int(info["exp"]) - (time.time() + int(info["expires_in"]))) <= 2
        assert info["email"] == "plus@example.com" and info["email_verified"] == "true"
        assert info["access_type"] == "offline"  # its grant has a refresh token
    # The ready-made token never expires and has no refresh token behind it.
    static = tokeninfo(emulator, emulator.access_token).json()
    assert static["email"] == "ada@example.com" and static["access_type"] == "online"
    assert int(static["expires_in"]) > 0
    # Neither the token nor the request log's copy of the query gives it away.
    logged = emulator.requests(since=mark)
    assert [e["query"] for e in logged if e["method"] == "GET" and e["path"] == "/tokeninfo"] == [
        {"access_token": "<redacted>"},
        {"access_token": "<redacted>"},
    ]
    dump = json.dumps(logged) + emulator.stderr_text()
    assert tokens["access_token"] not in dump and emulator.access_token not in dump


def test_tokeninfo_leaves_out_the_email_without_its_scope(emulator: Emulator) -> None:
    tokens = sign_in_with_scopes(emulator, "free@example.com", f"openid {SCOPE_COLAB}")
    info = tokeninfo(emulator, tokens["access_token"]).json()
    assert set(info["scope"].split()) == {"openid", SCOPE_COLAB}
    assert "email" not in info and "email_verified" not in info
    assert info["sub"] and info["aud"] == emulator.env["COLABTRAY_CLIENT_ID"]
    # "email" and "profile" are short names Google expands.
    short = sign_in_with_scopes(emulator, "free@example.com", "email profile")
    info = tokeninfo(emulator, short["access_token"]).json()
    assert set(info["scope"].split()) == {SCOPE_EMAIL, SCOPE_PROFILE}
    assert info["email"] == "free@example.com"


def test_tokeninfo_refuses_missing_unknown_expired_and_revoked_tokens(emulator: Emulator) -> None:
    for method in ("GET", "POST"):
        for token in (None, "", "not-a-token"):
            answer = tokeninfo(emulator, token, method)
            assert (answer.status_code, answer.json()) == (400, INVALID_TOKEN), (method, token)
    expiring = sign_in(emulator, "ada@example.com")
    assert tokeninfo(emulator, expiring["access_token"]).status_code == 200
    emulator.admin("POST", "tokens/expire-access", {"email": "ada@example.com"})
    expired = tokeninfo(emulator, expiring["access_token"])
    assert (expired.status_code, expired.json()) == (400, INVALID_TOKEN)
    renewed = refresh(emulator, expiring["refresh_token"]).json()["access_token"]
    assert tokeninfo(emulator, renewed).status_code == 200
    assert (
        emulator.http.post("/revoke", data={"token": expiring["refresh_token"]}).status_code == 200
    )
    revoked = tokeninfo(emulator, renewed, "POST")
    assert (revoked.status_code, revoked.json()) == (400, INVALID_TOKEN)
    emulator.admin("POST", "tokens/revoke", {"email": "ada@example.com"})
    assert tokeninfo(emulator, emulator.access_token).status_code == 400


def test_gapi_wants_colaboratory_and_the_colab_host_wants_userinfo_email(
    emulator: Emulator,
) -> None:
    no_colab = sign_in_with_scopes(emulator, "ada@example.com", "openid email")["access_token"]
    no_email = sign_in_with_scopes(emulator, "ada@example.com", f"openid {SCOPE_COLAB}")[
        "access_token"
    ]
    for path, params in GAPI_GETS:
        error = scope_refusal(emulator.http.get(path, params=params, headers=bearer(no_colab)))
        assert [d["reason"] for d in error["details"]] == ["SCOPE_NOT_PERMITTED"], error
        assert emulator.http.get(path, params=params, headers=bearer(no_email)).status_code in (
            200,
            404,  # the runtime-proxy-token of a runtime that does not exist
        )
    assert listing(emulator, no_colab) == []  # the colab host is content with userinfo.email
    refused = colab(emulator, "GET", "/tun/m/assignments", no_email)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["status"] == "UNAUTHENTICATED"
    ticket = colab(emulator, "GET", "/tun/m/assign", no_email, {"nbh": new_nbh()})
    assert ticket.status_code == 401


def test_token_scopes_option_makes_a_token_colab_refuses(emulator_factory: Any) -> None:
    only_openid = emulator_factory("--token-scopes", "openid")
    info = tokeninfo(only_openid, only_openid.access_token).json()
    assert info["scope"] == "openid" and "email" not in info
    refused = colab(only_openid, "GET", "/tun/m/assignments")
    assert refused.status_code == 401, refused.text
    gapi = only_openid.http.get("/gapi/v1/assignments", headers=only_openid.auth_headers)
    assert scope_refusal(gapi)["details"][0]["reason"] == "SCOPE_NOT_PERMITTED"

    listing_only = emulator_factory("--token-scopes", "openid email")
    info = tokeninfo(listing_only, listing_only.access_token).json()
    assert set(info["scope"].split()) == {"openid", SCOPE_EMAIL}
    assert info["email"] == "ada@example.com"
    assert listing(listing_only) == []
    gapi = listing_only.http.get("/gapi/v1/user-info", headers=listing_only.auth_headers)
    assert gapi.status_code == 403

    everything = tokeninfo(listing_only, sign_in(listing_only, "ada@example.com")["access_token"])
    assert SCOPE_COLAB in everything.json()["scope"].split()  # the option is the static token's


def test_token_scopes_option_refuses_unknown_scopes(capsys: pytest.CaptureFixture[str]) -> None:
    assert emulator_main(["--token-scopes", "https://www.googleapis.com/auth/gmail.readonly"]) == 2
    assert emulator_main(["--token-scopes", ""]) == 2
    assert "--token-scopes" in capsys.readouterr().err
