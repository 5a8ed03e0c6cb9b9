"""Methods and paths as HTTP means them, on the gateway's own routes and through to the
services (issue 12, defect 6): ``OPTIONS`` and ``Allow`` name every method of a path, ``HEAD``
works wherever ``GET`` does, and a trailing slash is a 404, never a redirect."""

import uuid

from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from tests.gateway.conftest import Gateway
from tests.gateway.test_auth import assert_problem

DEAD_LETTERS = "/v1/routing/ops/dead-letters"


async def test_options_and_405_name_every_method_of_the_path(gateway: Gateway) -> None:
    admin = await gateway.key()
    for path, allow in [
        ("/v1/keys", "GET, HEAD, OPTIONS, POST"),
        (f"/v1/keys/{uuid.uuid4()}", "DELETE, OPTIONS"),
        ("/v1/audit", "GET, HEAD, OPTIONS"),
        (DEAD_LETTERS, "GET, HEAD, OPTIONS"),  # answered by the routing service
    ]:
        options = await gateway.client.options(path, headers=admin)
        assert options.status_code == 204, (path, options.text)
        assert options.headers["allow"] == allow, path
        refused = await gateway.client.request("PATCH", path, headers=admin)
        assert_problem(refused, 405)
        assert refused.headers["allow"] == allow, path


async def test_head_works_wherever_get_does(gateway: Gateway) -> None:
    admin = await gateway.key(role=Role.ADMIN)
    for path in ("/v1/keys", "/v1/audit", DEAD_LETTERS):
        got = await gateway.client.get(path, headers=admin)
        head = await gateway.client.head(path, headers=admin)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
    assert (await gateway.client.head("/v1/keys")).status_code == 401  # a key still needed


async def test_a_trailing_slash_is_not_found_not_redirected(gateway: Gateway) -> None:
    admin = await gateway.key()
    for path in ("/v1/keys/", "/v1/audit/", f"{DEAD_LETTERS}/"):
        response = await gateway.client.get(
            path, headers={**admin, "Host": "attacker.example"}, follow_redirects=False
        )
        assert response.status_code == 404, (path, response.status_code)
        assert "location" not in response.headers
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
