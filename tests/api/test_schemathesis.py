"""Schemathesis over the whole OpenAPI document: no input gives a 5xx, and every answer
matches its documented schema, status and media type.

Positive and negative (schema-breaking) requests; bounded: 15 examples per operation
and mode, derandomized, no deadline. The SSE stream
(``GET /v1/stream``) is left out: a successful answer is a stream that never ends, so a
generated request cannot be bounded (tests/api/test_routes_ledger.py tests it). Writes
are included: generated proposals are refused before the ledger changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from node.node import Node, init_node, parse_org_spec
from node.services import aeo, submit
from tests.chaincode.conftest import aeo_record
from tests.conftest import PASSPHRASE
from tests.node.test_scenario import Clock

ORGS = ("KZ-CUSTOMS:KZ:State Revenue Committee", "UZ-CUSTOMS:UZ:Customs Committee")


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory = tmp_path_factory.mktemp("schemathesis") / "node"
    init_node(directory, [parse_org_spec(o) for o in ORGS], PASSPHRASE, store_passphrase=True)
    clock = Clock()
    node = Node.open(directory, clock=clock, workers=0)
    record = aeo_record(clock, "KZ-AEO-2026-000123")  # type: ignore[arg-type]
    clock.tick()
    submit.submit(
        node.context,
        submit.propose(
            node.signer("kz-customs-officer"),
            "IssueAeo",
            aeo.prepare_issue(record, node.pki("KZ-CUSTOMS")),
            channel=node.context.channel,
            clock=clock,
        ),
    )
    app = create_app(node)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/v1/stream")
    finally:
        app.state.caravan.index.close()
        node.close()


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
#: valid requests, and requests that break the schema (each must be a 4xx, never a 5xx)
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
SETTINGS = settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_no_5xx_and_every_answer_matches_the_schema(api_schema: Any) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 25
    for operation, mode in itertools.product(operations, MODES):

        @SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # nothing to break: an operation without parameters or body
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's failure, then report all
            failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
