"""The emulator's Colab public API (v1beta) over real HTTP, without the colabtray client:
Google's allowlist, the ``colaboratory`` scope, runtimes made as long-running operations,
and the same runtimes seen through ``/tun/m`` (as on Colab)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx2
import pytest

from tests.fixtures.emulator import Emulator

XSSI = ")]}'\n"
T4_SPEC = {"variant": "VARIANT_GPU", "accelerator": "T4", "shape": "SHAPE_STANDARD"}


def public(emu: Emulator, method: str, path: str, **kwargs: Any) -> httpx2.Response:
    url = emu.env["COLABTRAY_PUBLIC_API_URL"] + path
    kwargs.setdefault("headers", emu.auth_headers)
    return emu.http.request(method, url, **kwargs)


def reason(response: httpx2.Response) -> str | None:
    details = response.json()["error"].get("details", [])
    return details[0]["reason"] if details else None


def create(emu: Emulator, spec: dict[str, str], request_id: str | None = None) -> dict[str, Any]:
    query = f"?requestId={request_id}" if request_id else ""
    response = public(emu, "POST", f"/v1beta/runtimes{query}", json={"runtimeSpec": spec})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def wait(emu: Emulator, operation: dict[str, Any]) -> dict[str, Any]:
    response = public(emu, "GET", f"/v1/{operation['name']}:wait", params={"timeout": "60s"})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def allowed() -> Any:
    with Emulator(("--public-api", "allowed", "--idle-timeout", "600")) as emu:
        yield emu


def test_denied_by_default_as_for_clients_off_googles_allowlist(emulator: Emulator) -> None:
    response = public(emulator, "GET", "/v1beta/runtimes")
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
    # Nothing colabtray may rely on beyond Google's words: no XSSI line, a plain error body.
    assert not response.text.startswith(XSSI)


def test_a_token_without_the_colaboratory_scope_is_refused(emulator_factory: Any) -> None:
    emu = emulator_factory("--public-api", "allowed", "--token-scopes", "openid email")
    response = public(emu, "GET", "/v1beta/subscription")
    assert response.status_code == 403
    assert reason(response) == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    assert public(emu, "GET", "/v1beta/subscription", headers={}).status_code == 401


def test_plan_and_specs(allowed: Emulator) -> None:
    assert public(allowed, "GET", "/v1beta/subscription").json() == {
        "name": "subscription",
        "tier": "SUBSCRIPTION_TIER_PRO",
    }
    specs = public(allowed, "GET", "/v1beta/runtimespecs").json()["runtimeSpecs"]
    by_key = {(s["key"]["accelerator"], s["key"]["shape"]): s["eligible"] for s in specs}
    assert by_key[("T4", "SHAPE_HIGHMEM")] is True  # Pro has High-RAM
    assert by_key[("H100", "SHAPE_STANDARD")] is False  # Pro+ only
    assert ("L4", "SHAPE_STANDARD") not in by_key  # L4 exists as a high-memory machine only
    assert by_key[("L4", "SHAPE_HIGHMEM")] is True


def test_create_is_an_operation_and_the_runtime_is_seen_by_both_apis(allowed: Emulator) -> None:
    request_id = str(uuid.uuid4())
    operation = create(allowed, T4_SPEC, request_id)
    assert operation["name"].startswith("operations/") and operation["done"] is False
    # A retry with the same requestId is the same operation, not a second runtime.
    assert create(allowed, T4_SPEC, request_id)["name"] == operation["name"]
    done = wait(allowed, operation)
    assert done["done"] is True and "error" not in done
    runtime = done["response"]
    assert runtime["runtimeSpec"] == T4_SPEC
    info = runtime["connectionInfo"]
    assert info["url"].startswith("http://127.0.0.1:") and info["token"]
    assert info["expireTime"].endswith("Z")
    listed = public(allowed, "GET", "/v1beta/runtimes").json()["runtimes"]
    assert [r["name"] for r in listed] == [runtime["name"]]
    tun = allowed.http.get(
        "/tun/m/assignments", params={"authuser": "0"}, headers=allowed.auth_headers
    )
    endpoints = [a["endpoint"] for a in json.loads(tun.text.removeprefix(XSSI))["assignments"]]
    assert endpoints == [info["endpoint"]]
    # The proxy takes the public API's token.
    kernels = httpx2.get(
        info["url"] + "/api/kernels", headers={"X-Colab-Runtime-Proxy-Token": info["token"]}
    )
    assert kernels.status_code == 200
    assert public(allowed, "DELETE", f"/v1beta/{runtime['name']}").status_code == 200
    assert public(allowed, "GET", f"/v1beta/{runtime['name']}").status_code == 404
    assert public(allowed, "GET", "/v1beta/runtimes").json() == {}


def test_refusals_end_the_operation_with_googles_reasons(allowed: Emulator) -> None:
    email = "ada@example.com"
    allowed.admin("POST", f"accounts/{email}", {"max_runtimes": 0})
    try:
        done = wait(allowed, create(allowed, T4_SPEC))
        assert done["error"]["code"] == 8
        assert done["error"]["details"][0]["reason"] == "TOO_MANY_ACTIVE_RUNTIMES"
    finally:
        allowed.admin("POST", f"accounts/{email}", {"max_runtimes": None})
    allowed.admin("POST", "unavailable", {"accelerators": ["T4"]})
    try:
        done = wait(allowed, create(allowed, T4_SPEC))
        assert done["error"]["code"] == 9 and "details" not in done["error"]
    finally:
        allowed.admin("POST", "unavailable", {"accelerators": []})
    h100 = {"variant": "VARIANT_GPU", "accelerator": "H100", "shape": "SHAPE_STANDARD"}
    assert wait(allowed, create(allowed, h100))["error"]["code"] == 7


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("?requestId=not-a-uuid", {"runtimeSpec": T4_SPEC}),
        ("?runtimeId=Bad_Id", {"runtimeSpec": T4_SPEC}),
        ("", {}),
        ("", {"runtimeSpec": {"variant": "VARIANT_TPU", "accelerator": "T4"}}),
        ("", {"runtimeSpec": {**T4_SPEC, "shape": "SHAPE_HUGE"}}),
        ("", {"runtimeSpec": {**T4_SPEC, "accelerator": "L4"}}),  # a shape L4 has not
    ],
)
def test_a_malformed_create_is_400(allowed: Emulator, query: str, body: Any) -> None:
    response = public(allowed, "POST", f"/v1beta/runtimes{query}", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_an_unknown_operation_is_not_found(allowed: Emulator) -> None:
    assert public(allowed, "GET", "/v1/operations/abc:wait").status_code == 404
