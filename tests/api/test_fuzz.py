"""A bounded schemathesis run over our own OpenAPI document against a real server (uvicorn, the tiny
offline Llama of tests/conftest.py as the generator): every operation with generated requests;
any 5xx, an undeclared status, or a body that does not match the declared schema fails the test.

Derandomized, so each run sends the same requests: a failure here reproduces. Each operation gets
FUZZ_EXAMPLES valid and as many invalid requests (environment variable, default 12).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import Running, api_settings, ingest_corpus, serve

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("fuzz")
    s = api_settings(tmp / "home", tiny_llama)
    s.ui.enabled = False  # /chat is Chainlit's, not in our OpenAPI document
    (tmp / "home" / "inbox").mkdir(parents=True)
    ingest_corpus(s, tmp)
    yield from serve(s)


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Running) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    # Starting a job by id runs real work (a retrain trains an adapter for minutes); tests/scheduler covers it.
    return schema.exclude(path="/v1/jobs/{job_id}/run", method="POST")


def fuzz_operation(operation: APIOperation, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    def one(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=120)

    one()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_request_makes_a_server_error_or_breaks_the_schema(api_schema: schemathesis.BaseSchema,
                                                              mode: GenerationMode) -> None:
    """Every operation in turn, each to its first failure (shrunk); all failures are reported together."""
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            fuzz_operation(operation, mode)
        except Unsatisfiable:  # nothing to make invalid (no parameters, or only free-text ones)
            continue
        except (Exception, BaseExceptionGroup) as e:  # a failed check, with the request that reproduces it
            failures.append(f"{operation.label}: {e}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
