"""The benchmark report: the verdicts it draws from one run, its table and its plots."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", REPO / "bench" / "report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


report = load_report()


def step(offered: int, accepted: float, *, kept_up: bool, p99_ms: float = 20.0) -> dict[str, Any]:
    cpu = dict.fromkeys(report.SERVICE_PROCESSES, 1.0)
    cpu.update({"postgres": 4.0, "kafka": 2.0, "bench": 0.5, "oha": 0.5})
    return {
        "offered_per_s": offered,
        "accepted_per_s": accepted,
        "http": {"p50_ms": 2.0, "p95_ms": 10.0, "p99_ms": p99_ms, "max_ms": 40.0},
        "order_to_report_ms": {"p50": 50.0, "p99": 120.0},
        "backlog_at_end": 0,
        "cpu_s": cpu,
        "wall_s": 10.0,
        "cpu_ms_per_order": 1.0,
        "cpu_busy_share": 0.5,
        "peak_rss_mib": dict.fromkeys(report.SERVICE_PROCESSES, 90.0),
        "wal": {"commits_per_flush": 2.5, "orders_per_pedidos_commit": 4.0},
        "kept_up": kept_up,
    }


@pytest.fixture
def run() -> dict[str, Any]:
    return {
        "when": "2026-01-01T00:00:00+00:00",
        "machine": {"cpus": 2, "python": "3.11.7"},
        "limits": {
            "loadgen_ceiling": {"requests_per_s": 80_000.0},
            "r_http": {"requests_per_s": 8_000.0},
            "r_asyncpg": {"per_s": 2_000.0},
            "r_pgbench": {"tps": 2_500.0},
            "event_size_bytes": 293,
            "kafka_perf": {
                "produce": {"records_per_s": 100_000.0},
                "consume": {"records_per_s": 500_000.0},
            },
            "bare_aiokafka": {
                "produce": {"records_per_s": 40_000.0},
                "consume": {"records_per_s": 300_000.0},
            },
        },
        "stages": {
            "post_pedidos": {"requests_per_s": 2_000.0},
            "pedidos_relay": {"per_s": 24_000.0},
            "clientes_consumer": {"per_s": 3_000.0},
            "clientes_relay": {"per_s": 20_000.0},
            "reports_consumer": {"per_s": 10_000.0},
        },
        "steps": [
            step(500, 498.0, kept_up=True),
            step(1000, 996.0, kept_up=True, p99_ms=60.0),
            step(1500, 1200.0, kept_up=False),
        ],
        "startup_s": dict.fromkeys(report.SERVICE_PROCESSES, 0.7),
        "idle_rss_mib": dict.fromkeys(report.SERVICE_PROCESSES, 85.0),
    }


def test_the_summary_takes_the_highest_step_that_kept_up(run: dict[str, Any]) -> None:
    summary = report.summarize(run)

    assert summary["sustained_per_s"] == 996.0
    assert summary["post_bound_per_s"] == 1600.0
    assert summary["post_over_bound"] == 1.25
    assert summary["relay_over_api"] == 12.0
    assert summary["clientes_consumer_over_api"] == 1.5
    assert summary["reports_consumer_orders_over_api"] == 2.5
    assert summary["half_saturation_step_per_s"] == 500


def test_the_cpu_allowance_is_the_cores_the_load_generator_leaves_over_the_products_cpu(
    run: dict[str, Any],
) -> None:
    summary = report.summarize(run)

    # 8 service processes at 1 s, PostgreSQL 4 s, Kafka 2 s: 14 s for 9,960 orders. oha and
    # the suite spent 1 s of the step's 10: a tenth of a core.
    assert summary["product_cpu_ms_per_order"] == pytest.approx(14_000 / 9_960, abs=1e-3)
    assert summary["loadgen_cores_at_sustained"] == pytest.approx(0.1)
    assert summary["cpu_allows_per_s"] == pytest.approx(1.9 * 9_960 / 14, abs=0.1)
    assert summary["cpu_allows_per_s_all_cores"] == pytest.approx(2 * 9_960 / 14, abs=0.1)


def test_the_table_says_which_targets_are_missed(run: dict[str, Any]) -> None:
    run["summary"] = report.summarize(run)

    table = report.markdown(run)

    assert "| sustained end to end ≥ 1,500 orders/s | 996/s | no |" in table
    assert "| clientes consumer ≥ 2× the API | 1.50× | no |" in table
    assert "| reports consumer ≥ 2× the API (orders) | 2.50× | yes |" in table
    assert "| 1,500 | 1,200 |" in table
    assert "| the ramp went on until the pipeline no longer kept up | yes | yes |" in table


def test_a_ramp_that_never_stopped_keeping_up_is_no_saturation(run: dict[str, Any]) -> None:
    run["steps"][-1]["kept_up"] = True
    run["summary"] = report.summarize(run)

    table = report.markdown(run)

    assert not run["summary"]["saturation_reached"]
    assert "| the ramp went on until the pipeline no longer kept up | no: saturation" in table


def test_the_plots_are_written_as_png(run: dict[str, Any], tmp_path: Path) -> None:
    run["summary"] = report.summarize(run)

    report.plots(run, tmp_path / "run")

    for name in ("run-latency.png", "run-stages.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_the_latency_targets_are_read_from_the_run_at_half_the_sustained_rate(
    run: dict[str, Any],
) -> None:
    half = step(498, 497.0, kept_up=True, p99_ms=31.0)
    half["wall_s"] = 31.7
    half["http"]["statuses"] = {"201": 14_910, "200": 30}
    run["settings"] = {"half_seconds": 30.0}
    half["order_to_report_ms"] = {"p50": 60.0, "p95": 90.0, "p99": 150.0, "max": 170.0}
    half["order_to_report_ms"]["probes"] = 150
    run["half_saturation"] = half
    run["summary"] = report.summarize(run)

    table = report.markdown(run)

    assert run["summary"]["half_saturation_step_per_s"] == 498
    assert "| HTTP p99 < 50 ms at half saturation (498/s) | 31.0 ms | yes |" in table
    assert "| order to report p99 < 200 ms at half saturation | 150 ms | yes |" in table
    assert "A run of its own at 498/s for 30 s (14,910 orders, 150 probes)" in table


def test_the_settling_run_before_half_saturation_is_shown_but_not_judged(
    run: dict[str, Any],
) -> None:
    settling = step(498, 497.0, kept_up=True, p99_ms=80.0)
    settling["wall_s"] = 30.0
    half = step(498, 497.0, kept_up=True, p99_ms=31.0)
    half["order_to_report_ms"] = {"p50": 60.0, "p95": 90.0, "p99": 150.0, "max": 170.0}
    half["order_to_report_ms"]["probes"] = 150
    run["half_saturation_settling"], run["half_saturation"] = settling, half
    run["summary"] = report.summarize(run)

    table = report.markdown(run)

    assert "| HTTP p99 < 50 ms at half saturation (498/s) | 31.0 ms | yes |" in table
    prose = " ".join(table.split())
    assert "It followed 30 s at the same rate" in prose
    assert "HTTP p50 / p99 / max 2.0 / 80.0 / 40.0 ms" in prose
    assert max(len(line) for line in table.splitlines() if not line.startswith("|")) <= 100
