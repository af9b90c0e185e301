"""`python -m clientes {api|relay|consumer|all|migrate}`."""

import sys

from clientes import wiring
from datasync.runtime import run_commands

sys.exit(
    run_commands(
        {
            "api": wiring.run_api,
            "relay": wiring.run_relay,
            "consumer": wiring.run_consumer,
            "all": wiring.run_all,
            "migrate": wiring.run_migrate,
        },
        sys.argv[1:],
    )
)
