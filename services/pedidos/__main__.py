"""`python -m pedidos {api|relay|all|migrate}`."""

import sys

from datasync.runtime import run_commands
from pedidos import wiring

sys.exit(
    run_commands(
        {
            "api": wiring.run_api,
            "relay": wiring.run_relay,
            "all": wiring.run_all,
            "migrate": wiring.run_migrate,
        },
        sys.argv[1:],
    )
)
