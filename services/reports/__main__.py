"""`python -m reports {api|consumer|all|migrate|rebuild}`."""

import sys

from datasync.runtime import run_commands
from reports import wiring

if sys.argv[1:2] == ["rebuild"]:
    sys.exit(wiring.rebuild_main(sys.argv[2:]))
if sys.argv[1:2] in (["-h"], ["--help"]):
    print("usage: python -m reports {api|consumer|all|migrate|rebuild}")  # noqa: T201
    print("       python -m reports rebuild --help")  # noqa: T201
    sys.exit(0)
sys.exit(
    run_commands(
        {
            "api": wiring.run_api,
            "consumer": wiring.run_consumer,
            "all": wiring.run_all,
            "migrate": wiring.run_migrate,
        },
        sys.argv[1:],
    )
)
