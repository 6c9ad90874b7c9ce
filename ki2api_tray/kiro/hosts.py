"""Which Kiro host a login's chat goes to, in what order, and when to try the next one (kiro-protocol-2026.md §1).

Pure: settings and credentials in, an ordered host list out. Social logins (and the seed's tokens) may try
the runtime host first while their profile lives in us-east-1 (runtime is not regional); every other kind
goes to the AWS surface of its profile region, which is the only host §1.1 says takes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from .login_kind import uses_runtime_host

# §1.3 (OR @19c04f3): the 400 bodies that mean "wrong host for this login", not "bad request".
_WRONG_HOST_400 = ("profilearn is required for this request", "improperly formed request")


@dataclass(frozen=True)
class Host:
    family: str  # "runtime" | "aws"
    base: str


def chat_hosts(settings: Settings, auth_kind: str, region: str) -> tuple[Host, ...]:
    """The hosts to try, in order; the first one is where a healthy login's chat goes."""
    aws = Host("aws", settings.q_base(region))
    if not uses_runtime_host(auth_kind) or region != "us-east-1":
        return (aws,)
    runtime = Host("runtime", settings.runtime_base(region))
    # §9.2: late-2026 reports move q ahead of runtime (NR #3776); "aws_first" follows them.
    return (aws, runtime) if settings.host_order == "aws_first" else (runtime, aws)


def falls_through(status: int, message: str) -> bool:
    """Whether an answer means "try the next host" (§1.3): 401/403/404, or a 400 naming a missing ARN or a
    malformed request. Never a 429: rotating hosts does not buy fresh quota (§9.4)."""
    if status in (401, 403, 404):
        return True
    text = message.lower()
    return status == 400 and any(marker in text for marker in _WRONG_HOST_400)
