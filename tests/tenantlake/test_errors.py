"""Errors that heal are retried with backoff; errors that cannot heal fail at once. Each kind is
shown with the exception AWS (or our code) really raises; a few come from the export double."""

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)
from pydantic import BaseModel

from tenantlake import aws, errors, exports
from tenantlake.errors import Kind
from tenantlake.formats.manifest import ExportError
from tenantlake.registry import RegistryError
from tenantlake_dev.aws_double import export_double, seed


def client_error(code: str, status: int | None, message: str = "m") -> ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
    if status is not None:
        response["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(response, "SomeOperation")


@pytest.mark.parametrize(("code", "status"), [
    ("ThrottlingException", 400), ("ProvisionedThroughputExceededException", 400), ("RequestLimitExceeded", 400),
    ("SlowDown", 503), ("Throttling", 400), ("TooManyRequestsException", 429), ("LimitExceededException", 400),
])
def test_throttling_heals_and_is_retried(code, status):
    e = client_error(code, status)
    assert errors.classify(e) is Kind.THROTTLED
    assert errors.retry_now(e) and errors.heals(e) and not errors.fail_fast(e)


@pytest.mark.parametrize(("code", "status"), [
    ("InternalServerError", 500), ("ServiceUnavailable", 503), ("InternalFailure", 500),
    ("SomethingNew", 502), ("RequestTimeout", 400),
])
def test_server_side_errors_heal(code, status):
    assert errors.classify(client_error(code, status)) is Kind.TRANSIENT


@pytest.mark.parametrize("e", [
    EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ConnectTimeoutError(endpoint_url="https://sts.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"),
    ConnectionClosedError(endpoint_url="https://s3.amazonaws.com"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError("timed out"),
], ids=type)
def test_network_errors_heal(e):
    assert errors.classify(e) is Kind.TRANSIENT and errors.retry_now(e)


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"])
def test_expired_credentials_heal_on_the_next_try_not_in_the_call(code):
    e = client_error(code, 400)
    assert errors.classify(e) is Kind.EXPIRED
    assert errors.heals(e) and not errors.retry_now(e) and not errors.fail_fast(e)


@pytest.mark.parametrize(("code", "status"), [
    ("AccessDenied", 403), ("AccessDeniedException", 400), ("UnrecognizedClientException", 400),
    ("InvalidClientTokenId", 403), ("ValidationException", 400), ("ResourceNotFoundException", 400),
    ("PointInTimeRecoveryUnavailableException", 400), ("InvalidExportTimeException", 400),
    ("ExportConflictException", 400), ("NoSuchBucket", 404), ("ParameterNotFound", 400),
    ("SomethingNew", 400),  # any other 4xx: the request itself is wrong
    ("AccessDenied", 500),  # a code that means "wrong" stays wrong whatever the status says
])
def test_configuration_and_access_errors_fail_at_once(code, status):
    e = client_error(code, status)
    assert errors.classify(e) is Kind.FATAL
    assert errors.fail_fast(e) and not errors.heals(e) and not errors.retry_now(e)


class Contract(BaseModel):
    n: int


def contract_error():
    try:
        Contract(n="not a number")
    except Exception as e:  # noqa: BLE001 - pydantic's ValidationError, as raised
        return e


@pytest.mark.parametrize("e", [
    aws.AccessError("tenant agency-001: cannot assume ..."), ExportError("m.json: itemCount 3 but 2 listed"),
    RegistryError("tenants[2].region: bad"), exports.ExportFailed("export x failed: S3AccessDenied: no"),
    contract_error(), NoCredentialsError(), NoRegionError(), ParamValidationError(report="bad"),
    KeyError("entity"), ValueError("not hex"),
], ids=lambda e: type(e).__name__)
def test_our_errors_and_wrong_input_fail_at_once(e):
    assert errors.classify(e) is Kind.FATAL


def test_a_data_contract_failure_of_the_audit_fails_at_once():
    from tenantlake.quality import QualityError

    assert errors.fail_fast(QualityError("Debt batch e1 of agency-001 failed its audit"))


def test_a_wrapper_is_judged_by_its_cause_and_an_unknown_error_by_nobody():
    try:
        try:
            raise client_error("ThrottlingException", 400)
        except ClientError as inner:
            raise RuntimeError("describe failed") from inner
    except RuntimeError as e:
        assert errors.classify(e) is Kind.THROTTLED
    unknown = RuntimeError("?")
    assert errors.classify(unknown) is Kind.UNKNOWN
    assert not errors.heals(unknown) and not errors.fail_fast(unknown)  # Airflow's own retries decide


def test_what_aws_really_answers_is_judged_as_above():
    """Real responses from the double: a refused role and a table without PITR."""
    from tenantlake.registry import load_registry

    registry = load_registry()
    tenant = registry.tenant("agency-001")
    with export_double():
        seeded = seed(registry, tenants=[tenant])
        sts = seeded.central_access().client("sts")
        with pytest.raises(ClientError) as refused:
            sts.assume_role(RoleArn=tenant.role_arn, RoleSessionName="no-external-id")
        assert errors.fail_fast(refused.value)
        aws.forget()
        ddb = aws.tenant_access(tenant, seeded.central_access()).client("dynamodb")
        ddb.update_continuous_backups(TableName=tenant.tables["Debt"], PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": False})
        with pytest.raises(ClientError) as no_pitr:
            ddb.export_table_to_point_in_time(TableArn=tenant.table_arn("Debt"), S3Bucket="tenantlake-landing")
        assert errors.fail_fast(no_pitr.value)
    aws.forget()


# ---- the retry wrapper -------------------------------------------------------------------------------

def flaky(*failures):
    """A call that raises each of `failures` in turn, then answers "ok"; it counts its calls."""
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "ok"
    return call, calls


NO_WAIT = {"first_wait": 0, "max_wait": 0}


def test_healing_errors_are_retried_until_the_call_succeeds():
    call, calls = flaky(client_error("ThrottlingException", 400), EndpointConnectionError(endpoint_url="x"))
    assert errors.aws_retry(**NO_WAIT)(call)() == "ok"
    assert len(calls) == 3


def test_an_error_that_cannot_heal_is_raised_at_the_first_try_as_it_was():
    denied = client_error("AccessDenied", 403)
    call, calls = flaky(denied)
    with pytest.raises(ClientError) as raised:
        errors.aws_retry(**NO_WAIT)(call)()
    assert raised.value is denied and len(calls) == 1


def test_retries_are_bounded_and_the_last_error_comes_out():
    throttled = [client_error("ThrottlingException", 400, f"try {i}") for i in range(10)]
    call, calls = flaky(*throttled)
    with pytest.raises(ClientError) as raised:
        errors.aws_retry(attempts=4, **NO_WAIT)(call)()
    assert len(calls) == 4 and raised.value is throttled[3]


def test_expired_credentials_are_not_retried_in_the_call():
    call, calls = flaky(client_error("ExpiredToken", 400))
    with pytest.raises(ClientError):
        errors.aws_retry(**NO_WAIT)(call)()
    assert len(calls) == 1


def test_the_wait_is_capped(monkeypatch):
    slept = []
    monkeypatch.setattr("time.sleep", slept.append)
    call, _ = flaky(*[client_error("SlowDown", 503)] * 7)
    with pytest.raises(ClientError):
        errors.aws_retry(attempts=7, first_wait=1, max_wait=3)(call)()
    assert len(slept) == 6 and all(0 <= s <= 3 for s in slept)
