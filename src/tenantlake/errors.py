"""Which failures heal by waiting, and which never will.

A throttled or dropped AWS call succeeds if made again a little later; a refused role, a missing
table, a corrupt manifest or a contract violation fails the same way every time, and retrying it
only delays the red run (issue 12: about 22 minutes of backoff after the cause was known).

    classify(exc)   THROTTLED | TRANSIENT  -> retry now, with backoff (aws_retry does, bounded)
                    EXPIRED                -> credentials ran out: a fresh session heals it (the
                                              task's next try makes one); not retried in-call
                    FATAL                  -> fail at once (the task: AirflowFailException)
                    UNKNOWN                -> not ours to judge: Airflow's own retries apply
    heals(exc)      a retry can help: THROTTLED, TRANSIENT or EXPIRED (UNKNOWN is not counted)
    fail_fast(exc)  classify(exc) is FATAL

AWS error codes and status codes are judged with botocore's own lists of throttling and
transient errors (botocore.retries.standard), plus the codes below. botocore already retries each
call a few times, quickly (its retry mode); aws_retry is the slower outer loop for throttling and
outages that outlast those.
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

import tenacity
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    UnknownServiceError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker, TransientRetryableChecker

log = logging.getLogger(__name__)
T = TypeVar("T")


class Kind(enum.StrEnum):
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    EXPIRED = "expired"
    FATAL = "fatal"
    UNKNOWN = "unknown"


_THROTTLED = ThrottledRetryableChecker()
_TRANSIENT = TransientRetryableChecker()
# Transient by nature though botocore lists them under no checker (its legacy retry handler
# treats 5xx alike; these are the codes those 5xx answers carry).
TRANSIENT_CODES = {"InternalServerError", "InternalError", "InternalFailure", "InternalServiceError",
                   "ServiceUnavailable", "ServiceUnavailableException", "ServiceException",
                   "IDPCommunicationError", "TransactionConflictException", "KMSInternalException"}
EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
# Codes some services send with a 5xx or no status that still mean the request is wrong.
FATAL_CODES = {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
               "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure", "UnauthorizedOperation",
               "ValidationException", "ValidationError", "ResourceNotFoundException", "TableNotFoundException",
               "PointInTimeRecoveryUnavailableException", "InvalidExportTimeException", "ExportConflictException",
               "ExportNotFoundException", "IdempotentParameterMismatchException", "NoSuchBucket", "NoSuchKey",
               "ParameterNotFound", "DecryptionFailure", "RegionDisabledException", "MalformedPolicyDocument",
               "KMSAccessDeniedException", "KMSDisabledException", "InvalidKeyId"}
# Ours and the data path's: deterministic by construction. Named, not imported, so classifying
# loads nothing: an exception of a class can only exist once its module has been imported.
FATAL_CLASSES = (("tenantlake.aws", "AccessError"), ("tenantlake.exports", "ExportFailed"),
                 ("tenantlake.formats.manifest", "ExportError"), ("tenantlake.registry", "RegistryError"),
                 ("tenantlake.quality", "QualityError"), ("tenantlake.quality", "SuiteError"),
                 ("tenantlake.warehouse", "LoadError"), ("pydantic", "ValidationError"))
FATAL_BOTOCORE = (NoCredentialsError, PartialCredentialsError, NoRegionError, ParamValidationError,
                  UnknownServiceError, CredentialRetrievalError)
# Python's own signs of a wrong input or a bug: the same call fails the same way again.
FATAL_BUILTINS = (ValueError, TypeError, LookupError, AttributeError, NotImplementedError, AssertionError,
                  FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def _code(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "") or ""


def _status(e: ClientError) -> int | None:
    return e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


class _Http:
    def __init__(self, status_code: int | None):
        self.status_code = status_code


def _client_error(e: ClientError) -> Kind:
    code, status = _code(e), _status(e)
    context = RetryContext(attempt_number=1, parsed_response=e.response, http_response=_Http(status))
    if _THROTTLED.is_retryable(context):
        return Kind.THROTTLED
    if code in EXPIRED_CODES:
        return Kind.EXPIRED
    if code in FATAL_CODES:
        return Kind.FATAL
    if code in TRANSIENT_CODES or _TRANSIENT.is_retryable(context):
        return Kind.TRANSIENT
    if status is not None and 400 <= status < 500:
        return Kind.FATAL  # a client error not listed above: the request itself is wrong
    return Kind.UNKNOWN


def _ours(e: BaseException) -> bool:
    for module, name in FATAL_CLASSES:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(e, cls):
            return True
    return False


def classify(e: BaseException) -> Kind:
    if isinstance(e, ClientError):
        return _client_error(e)
    if _ours(e) or isinstance(e, FATAL_BOTOCORE):
        return Kind.FATAL
    if isinstance(e, BotoConnectionError | HTTPClientError | ConnectionError | TimeoutError):
        return Kind.TRANSIENT  # endpoint unreachable, connect / read timeouts, dropped connections
    if isinstance(e, BotoCoreError):
        return Kind.UNKNOWN
    if isinstance(e, FATAL_BUILTINS):
        return Kind.FATAL
    cause = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return classify(cause) if cause is not None else Kind.UNKNOWN


def heals(e: BaseException) -> bool:
    """A retry can help: now with backoff (throttling, 5xx, a lost connection), or on the task's
    next try with fresh credentials (expired ones). An error nobody recognises does not count."""
    return classify(e) in (Kind.THROTTLED, Kind.TRANSIENT, Kind.EXPIRED)


def fail_fast(e: BaseException) -> bool:
    """Retrying cannot help: fail now (in an Airflow task, raise AirflowFailException from it)."""
    return classify(e) is Kind.FATAL


def retry_now(e: BaseException) -> bool:
    """The same call may succeed in a moment, with the same credentials."""
    return classify(e) in (Kind.THROTTLED, Kind.TRANSIENT)


def aws_retry(attempts: int = 5, first_wait: float = 0.5, max_wait: float = 20.0, max_seconds: float = 120.0):
    """A decorator retrying a call while it fails with a healing error (throttling, 5xx, a lost
    connection): exponential backoff with full jitter, at most `attempts` tries and about
    `max_seconds`; the last error is re-raised as it was. Anything else is raised at once."""
    return tenacity.retry(
        retry=tenacity.retry_if_exception(retry_now),
        wait=tenacity.wait_random_exponential(multiplier=first_wait, max=max_wait),
        stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(max_seconds),
        before_sleep=tenacity.before_sleep_log(log, logging.WARNING),
        reraise=True,
    )


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args, **kwargs) under aws_retry()'s defaults: `errors.call(dynamodb.describe_export, ExportArn=arn)`."""
    return aws_retry()(fn)(*args, **kwargs)
