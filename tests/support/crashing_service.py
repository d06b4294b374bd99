"""``certledger serve`` with a fault installed: SIGKILL the process the N-th time a batch or a status
change passes a point (``CERTLEDGER_TEST_CRASH_AFTER=POINT:N``; points: accepted, sealed, signed,
sending, broadcast, anchored, change_mined). The crash tests run the service this way
(tests.support.procs.ServiceProcess.start(crash_after=…)); the installed service has no such
setting, only the context's ``crash_point`` hook that does nothing.

    python -m tests.support.crashing_service serve --port 8000
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("certledger.tests.crash")


class CrashPoints:
    """SIGKILL ourselves the N-th time ``point`` is passed."""

    def __init__(self, spec: str):
        point, _, n = spec.partition(":")
        self.point, self.left = point, int(n or 1)

    def __call__(self, point: str) -> None:
        if point == self.point:
            self.left -= 1
            if self.left <= 0:
                log.warning("crash point %s reached: SIGKILL", point)
                os.kill(os.getpid(), signal.SIGKILL)


def install(spec: str) -> None:
    """Every ServiceContext this process creates gets the fault."""
    from registry.services.context import ServiceContext

    create = ServiceContext.create.__func__  # type: ignore[attr-defined]
    crash = CrashPoints(spec)

    async def create_with_fault(cls, *args, **kwargs):
        return await create(cls, *args, **kwargs, crash_point=crash)

    ServiceContext.create = classmethod(create_with_fault)  # type: ignore[method-assign]


def main() -> None:
    spec = os.environ.get("CERTLEDGER_TEST_CRASH_AFTER")
    if spec:
        install(spec)
    from registry.cli import main as certledger

    certledger()


if __name__ == "__main__":
    main()
