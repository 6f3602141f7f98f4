"""The job spec's validator: the one function every entry point passes a request through.

`build_job` checks a caller's fields (types, unknown fields, sizes, names, the stack's bounds and
images) and returns a `NewJob`, or raises `InvalidJob` naming the field and the rule. It is pure:
the CLI, the Python API, the Celery-native entry point and the HTTP API all call it before
anything is stored, so a bad request leaves nothing behind. Types are checked by a strict
pydantic model; what depends on the stack and the installation is checked here after it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from longshore.domain.records import NewJob
from longshore.domain.stacks import MIN_CPUS, MIN_DISK_BYTES, Stack, StackManifest, format_size, parse_memory, \
    parse_size
from longshore.errors import InvalidJob

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: Names the platform sets inside the container; a job may not override them.
RESERVED_ENV = frozenset({"TASK_ID", "PAYLOAD_FILE", "TASK_DIR", "RESULT_FILE", "HOME", "CONFIG_FILE"})
#: A job id a sender may choose (rq's rule): it names containers and labels, so nothing else.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The distribution project's image reference grammar: [registry[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?)"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*"
    r"(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")
#: IronWorker's priorities: of a stack's queued jobs, higher ones start first.
PRIORITIES = (0, 1, 2)
#: IronWorker's longest delay.
MAX_DELAY_SECONDS = 7 * 24 * 3600
#: A label: printable text, as a filter in `ls` and the API.
LABEL = re.compile(r"[^\x00-\x1f\x7f]{1,100}")
#: A webhook's URL: printable, no spaces.
WEBHOOK_TEXT = re.compile(r"[!-~]+")
MAX_WEBHOOK_BYTES = 2048
#: `\u0000` in JSON text, unless its backslash is itself escaped.
ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


@dataclass(frozen=True, kw_only=True)
class JobLimits:
    """The installation's bounds on what a job may ask for, beyond its stack's (built from settings)."""

    default_stack: str
    payload_limit_bytes: int
    default_timeout_seconds: float
    max_retries: int
    max_retry_delay_seconds: float
    max_args: int = 1024  #: arguments in a command
    max_arg_bytes: int = 32 << 10  #: bytes in one argument, or in one env value
    max_command_bytes: int = 128 << 10  #: bytes in the whole command
    max_env_vars: int = 256  #: env and secret_env together
    max_env_bytes: int = 128 << 10  #: names and values of env and secret_env together
    max_image_bytes: int = 255


class JobRequest(BaseModel):
    """The fields a job may be submitted with, and their types (nothing else is accepted)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    stack: str | None = None
    command: list[str] | None = None
    payload: Any = None
    env: dict[str, str] | None = None
    secret_env: dict[str, str] | None = None
    timeout: float | None = None
    image: str | None = None
    memory: str | int | None = None
    cpus: float | None = None
    disk: str | int | None = None
    retries: int = 0
    retry_delay: float = 0
    priority: int = 0
    delay: float = 0
    label: str | None = None
    webhook: str | None = None
    payload_text: str | None = None
    job_id: str | None = None


#: A type error, in words, for each field.
FIELD_RULES = {
    "stack": "must be a stack name (a string)",
    "payload_text": "must be a string (the payload file's exact text)",
    "command": "must be a list of strings, e.g. [\"echo\", \"hello\"]",
    "env": "must be a mapping of variable names to strings",
    "secret_env": "must be a mapping of variable names to strings",
    "timeout": "must be a number of seconds",
    "image": "must be an image reference (a string)",
    "memory": "must be a size like 128m, 1g or a number of bytes",
    "disk": "must be a size like 64m, 1g or a number of bytes",
    "cpus": "must be a number of CPUs, e.g. 0.5",
    "retries": "must be a whole number",
    "retry_delay": "must be a number of seconds",
    "priority": "must be 0, 1 or 2",
    "delay": "must be a number of seconds",
    "label": "must be a string",
    "webhook": "must be an http(s) URL (a string)",
    "job_id": "must be a string",
}
FIELDS = ", ".join(JobRequest.model_fields)


def build_job(manifest: StackManifest, limits: JobLimits, /, **fields: Any) -> NewJob:
    """Validate a request against the manifest and limits; raise InvalidJob naming the field and the rule."""
    if isinstance(fields.get("command"), tuple):
        fields["command"] = list(fields["command"])  # a Python caller's tuple is as good as a list
    try:
        request = JobRequest.model_validate(fields)
    except ValidationError as exc:
        raise InvalidJob(_type_errors(exc)) from None
    _no_nul(request)
    stack = manifest.get(request.stack or limits.default_stack)
    if request.job_id is not None and not JOB_ID.fullmatch(request.job_id):
        raise InvalidJob("job_id: must be 1 to 64 letters, digits, '-' or '_'")
    command = _command(request.command, limits)
    env = _environment("env", request.env, limits)
    secret_env = _environment("secret_env", request.secret_env, limits)
    _environment_totals(env, secret_env, limits)
    both = sorted(set(env) & set(secret_env))
    if both:
        raise InvalidJob(f"secret_env: {both[0]} is also in env; a variable is either plain or secret")
    extra = {"id": request.job_id} if request.job_id else {}
    return NewJob(
        stack=stack.name,
        image=_image(request.image, stack, limits),
        command=command,
        env=env,
        secret_env=secret_env,
        payload=_payload(request.payload, limits) if request.payload_text is None else _payload_text(request, limits),
        timeout_seconds=_timeout(request.timeout, stack, limits),
        memory_bytes=_memory(request.memory, stack),
        cpus=_cpus(request.cpus, stack),
        disk_bytes=_disk(request.disk, stack),
        retries=_retries(request.retries, limits),
        retry_delay_seconds=_retry_delay(request.retry_delay, limits),
        priority=_priority(request.priority),
        delay_seconds=_delay(request.delay),
        label=_label(request.label),
        webhook=_webhook(request.webhook),
        **extra,
    )


def _priority(priority: int) -> int:
    if priority not in PRIORITIES:
        raise InvalidJob(f"priority: {priority} must be 0, 1 or 2 (higher starts first)")
    return priority


def _delay(delay: float) -> float:
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        raise InvalidJob(f"delay: {delay:g} must be from 0 to {MAX_DELAY_SECONDS} seconds (7 days)")
    return float(delay)


def _label(label: str | None) -> str | None:
    if label is None:
        return None
    if not LABEL.fullmatch(label):
        raise InvalidJob("label: must be 1 to 100 printable characters (no control characters)")
    return label


def _webhook(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        parts = urlsplit(url) if len(url) <= MAX_WEBHOOK_BYTES and WEBHOOK_TEXT.fullmatch(url) else None
        port_ok = parts is not None and (parts.port or 1) > 0
    except ValueError:  # an unclosed [ or a port that is not a number
        parts, port_ok = None, False
    if parts is None or not port_ok or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidJob(f"webhook: must be an http:// or https:// URL of at most {MAX_WEBHOOK_BYTES} characters, "
                         "without spaces")
    return url


def _type_errors(exc: ValidationError) -> str:
    words = []
    for error in exc.errors()[:3]:
        field, *rest = [str(part) for part in error["loc"]]
        if error["type"] == "extra_forbidden":
            shown = field if re.fullmatch(r"[A-Za-z_]\w{0,63}", field) else repr(field[:64])
            words.append(f"{shown}: is not a field of a job (its fields: {FIELDS})")
            continue
        if error["type"] == "finite_number":
            rule = "must be a finite number (not NaN or infinity)"
        else:
            rule = FIELD_RULES.get(field, error["msg"])
        where = field
        if field in ("env", "secret_env") and rest and rest[0] not in ("str", "int"):
            name = rest[0][:64]  # a variable's name, never its value
            where = f"{field}.{name}" if ENV_NAME.fullmatch(name) else f"{field}[{name!r}]"
        words.append(f"{where[:100]}: {rule}")
    return "; ".join(dict.fromkeys(words))


def _no_nul(request: JobRequest) -> None:
    texts = {"stack": [request.stack], "image": [request.image], "job_id": [request.job_id],
             "command": request.command or [], "env": [*(request.env or {}).keys(), *(request.env or {}).values()],
             "secret_env": [*(request.secret_env or {}).keys(), *(request.secret_env or {}).values()],
             "memory": [request.memory], "disk": [request.disk], "webhook": [request.webhook]}
    for field, values in texts.items():
        if any(isinstance(value, str) and "\x00" in value for value in values):
            raise InvalidJob(f"{field}: must not contain a NUL character")


def _command(command: list[str] | None, limits: JobLimits) -> list[str] | None:
    if not command:
        return None
    if len(command) > limits.max_args:
        raise InvalidJob(f"command: has {len(command)} arguments, over the limit of {limits.max_args}")
    sizes = [len(part.encode("utf-8", "surrogatepass")) for part in command]
    if max(sizes) > limits.max_arg_bytes:
        raise InvalidJob(f"command: an argument of {max(sizes)} bytes is over the limit of {limits.max_arg_bytes}")
    if sum(sizes) > limits.max_command_bytes:
        raise InvalidJob(f"command: {sum(sizes)} bytes in all, over the limit of {limits.max_command_bytes}")
    return list(command)


def _environment(field: str, env: dict[str, str] | None, limits: JobLimits) -> dict[str, str]:
    secret = field == "secret_env"
    for name, value in (env or {}).items():
        if not ENV_NAME.fullmatch(name):
            raise InvalidJob(f"{field}: {name[:64]!r} is not a variable name (letters, digits and '_', "
                             "not starting with a digit, at most 128)")
        if name in RESERVED_ENV:
            raise InvalidJob(f"{field}: {name} is set by the platform and cannot be overridden")
        if len(value.encode("utf-8", "surrogatepass")) > limits.max_arg_bytes:
            shown = "its value" if secret else f"{len(value.encode('utf-8', 'surrogatepass'))} bytes"
            raise InvalidJob(f"{field}.{name}: {shown} is over the limit of {limits.max_arg_bytes} bytes")
    return dict(env or {})


def _environment_totals(env: dict[str, str], secret_env: dict[str, str], limits: JobLimits) -> None:
    every = {**env, **secret_env}
    if len(every) > limits.max_env_vars:
        raise InvalidJob(f"env: {len(every)} variables with secret_env, over the limit of {limits.max_env_vars}")
    size = sum(len(name) + len(value.encode("utf-8", "surrogatepass")) for name, value in every.items())
    if size > limits.max_env_bytes:
        raise InvalidJob(f"env: {size} bytes with secret_env, over the limit of {limits.max_env_bytes}")


def _image(image: str | None, stack: Stack, limits: JobLimits) -> str:
    if image is None:
        return stack.image
    if len(image.encode("utf-8", "surrogatepass")) > limits.max_image_bytes:
        raise InvalidJob(f"image: over the limit of {limits.max_image_bytes} bytes")
    if not IMAGE_REFERENCE.fullmatch(image):
        raise InvalidJob(f"image: {image!r} is not an image reference like registry.example.com/team/app:1")
    if not stack.allows_image(image):
        raise InvalidJob(f"image: {image!r} is not allowed on stack {stack.name}; allowed: {stack.allowed_images}")
    return image


def _payload(payload: Any, limits: JobLimits) -> str:
    try:
        text = json.dumps(payload if payload is not None else {}, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidJob(f"payload: is not JSON ({str(exc)[:120]})") from None
    if ESCAPED_NUL.search(text):
        raise InvalidJob("payload: must not contain a NUL character")
    if len(text) > limits.payload_limit_bytes:  # ASCII: json.dumps escapes everything else
        raise InvalidJob(f"payload: {len(text)} bytes as JSON, over the limit of {limits.payload_limit_bytes}")
    return text


def _payload_text(request: JobRequest, limits: JobLimits) -> str:
    """A payload given as the exact text of its file (IronWorker's payload is a string: JSON or not)."""
    if request.payload is not None:
        raise InvalidJob("payload_text: give payload or payload_text, not both")
    text = request.payload_text
    if "\x00" in text:
        raise InvalidJob("payload_text: must not contain a NUL character")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.payload_limit_bytes:
        raise InvalidJob(f"payload_text: {size} bytes, over the limit of {limits.payload_limit_bytes}")
    return text


def _timeout(timeout: float | None, stack: Stack, limits: JobLimits) -> float:
    most = stack.maxima.timeout_seconds
    if timeout is None:
        return min(stack.defaults.timeout_seconds or limits.default_timeout_seconds, most)
    if not 0 < timeout <= most:
        raise InvalidJob(f"timeout: {timeout:g} must be over 0 and at most {most:g} seconds (stack {stack.name})")
    return float(timeout)


def _memory(memory: str | int | None, stack: Stack) -> int:
    if memory is None:
        return stack.defaults.memory_bytes
    amount = parse_memory(memory)
    if amount > stack.maxima.memory_bytes:
        raise InvalidJob(f"memory: {format_size(amount)} is over stack {stack.name}'s maximum of "
                         f"{format_size(stack.maxima.memory_bytes)}")
    return amount


def _disk(disk: str | int | None, stack: Stack) -> int:
    if disk is None:
        return stack.defaults.disk_bytes
    amount = parse_size(disk, "disk", MIN_DISK_BYTES)
    if amount > stack.maxima.disk_bytes:
        raise InvalidJob(f"disk: {format_size(amount)} is over stack {stack.name}'s maximum of "
                         f"{format_size(stack.maxima.disk_bytes)}")
    return amount


def _cpus(cpus: float | None, stack: Stack) -> float:
    if cpus is None:
        return stack.defaults.cpus
    if not MIN_CPUS <= cpus <= stack.maxima.cpus:
        raise InvalidJob(f"cpus: {cpus:g} must be between {MIN_CPUS} and stack {stack.name}'s maximum of "
                         f"{stack.maxima.cpus:g}")
    return float(cpus)


def _retries(retries: int, limits: JobLimits) -> int:
    if not 0 <= retries <= limits.max_retries:
        raise InvalidJob(f"retries: {retries} must be from 0 to {limits.max_retries}")
    return retries


def _retry_delay(delay: float, limits: JobLimits) -> float:
    if not 0 <= delay <= limits.max_retry_delay_seconds:
        raise InvalidJob(f"retry_delay: {delay:g} must be between 0 and {limits.max_retry_delay_seconds:g} seconds")
    return float(delay)


def is_job_id(value: Any) -> bool:
    """True when `value` may name a job (what a sender may choose as its id)."""
    return isinstance(value, str) and JOB_ID.fullmatch(value) is not None
