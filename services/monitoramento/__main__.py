"""`python -m monitoramento {api|all|migrate}`."""

import sys

from datasync.runtime import run_commands
from monitoramento import wiring

sys.exit(
    run_commands(
        {"api": wiring.run_api, "all": wiring.run_api, "migrate": wiring.run_migrate},
        sys.argv[1:],
    )
)
