"""Renders a fault-suite run (`bench/results/faults-<run>.jsonl`) as a Markdown table.

.venv/bin/python -m tests.faults.report bench/results/faults-<run>.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(lines: list[dict[str, object]]) -> str:
    rows = [
        "| scenario | sent | accepted | in reports | duplicates | lost | wrong totals "
        "| stale customers | recovery (s) | idle after load (s) | slowest answer (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for line in lines:
        notes = line["notes"]
        assert isinstance(notes, dict)
        rows.append(
            f"| {line['scenario']} | {line['sent']} | {line['accepted']} | {line['in_reports']} "
            f"| {line['duplicates']} | {line['lost']} | {line['wrong_totals']} "
            f"| {line['stale_customers']} | {line['recovery_s']} "
            f"| {notes.get('idle_after_load_s', '')} | {notes.get('slowest_answer_s', '')} |"
        )
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    lines = [json.loads(text) for text in Path(argv[0]).read_text().splitlines() if text]
    sys.stdout.write(table(sorted(lines, key=lambda line: str(line["scenario"]))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
