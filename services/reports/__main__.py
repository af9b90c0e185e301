"""`python -m reports {api|consumer|all|migrate}`."""

import sys

from datasync.runtime import run_commands
from reports import wiring

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
