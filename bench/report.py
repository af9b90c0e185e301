"""Turns one run of `bench/suite.py` into its verdicts, a Markdown report and two plots."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

SERVICE_PROCESSES = (
    "pedidos-api",
    "clientes-api",
    "reports-api",
    "monitoramento-api",
    "pedidos-relay",
    "clientes-relay",
    "clientes-consumer",
    "reports-consumer",
)
LOAD_GENERATORS = ("oha", "bench", "prober")
"""The load generator and the suite's own measuring processes: not the product's CPU."""
RSS_LIMIT_MIB = 150.0


def _product_cpu_s(step: dict[str, Any]) -> float:
    return sum(cpu for name, cpu in step["cpu_s"].items() if name not in LOAD_GENERATORS)


def sustained_step(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The step that kept up at the highest accepted rate, if any did."""
    kept = [step for step in steps if step["kept_up"]]
    return max(kept, key=lambda step: step["accepted_per_s"]) if kept else None


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """The figures the targets are stated in, each as a ratio from this one run."""
    limits, stages, steps = run["limits"], run["stages"], run["steps"]
    cores = run["machine"]["cpus"]
    r_http = limits["r_http"]["requests_per_s"]
    r_asyncpg = limits["r_asyncpg"]["per_s"]
    bound = 1 / (1 / r_http + 1 / r_asyncpg)
    api = stages["post_pedidos"]["requests_per_s"]
    sustained = sustained_step(steps)

    summary: dict[str, Any] = {
        "post_saturation_per_s": api,
        "post_bound_per_s": round(bound, 1),
        "post_over_bound": round(api / bound, 3),
        "relay_over_api": round(stages["pedidos_relay"]["per_s"] / api, 2),
        "relay_over_bare_aiokafka": round(
            stages["pedidos_relay"]["per_s"] / limits["bare_aiokafka"]["produce"]["records_per_s"],
            2,
        ),
        "clientes_consumer_over_api": round(stages["clientes_consumer"]["per_s"] / api, 2),
        # Every order reaches the reports twice, as placed and enriched.
        "reports_consumer_orders_over_api": round(stages["reports_consumer"]["per_s"] / 2 / api, 2),
        "sustained_per_s": sustained["accepted_per_s"] if sustained else 0.0,
        # Saturation is found only when the ramp went past the rate the pipeline sustains;
        # otherwise "half saturation" is half of where the ramp happened to stop.
        "saturation_reached": bool(steps) and not steps[-1]["kept_up"],
    }
    if sustained:
        orders = sustained["accepted_per_s"] * sustained["wall_s"]
        product_cpu_ms = _product_cpu_s(sustained) * 1000 / orders
        # The load generator shares the machine: the product can only have the cores it
        # leaves. The allowance over every core is kept beside it.
        loadgen_cores = (
            sum(sustained["cpu_s"].get(name, 0.0) for name in LOAD_GENERATORS) / sustained["wall_s"]
        )
        allowed = (cores - loadgen_cores) * 1000 / product_cpu_ms
        allowed_all_cores = cores * 1000 / product_cpu_ms
        summary["product_cpu_ms_per_order"] = round(product_cpu_ms, 3)
        summary["loadgen_cores_at_sustained"] = round(loadgen_cores, 3)
        summary["cpu_allows_per_s"] = round(allowed, 1)
        summary["sustained_over_cpu_allowance"] = round(sustained["accepted_per_s"] / allowed, 3)
        summary["cpu_allows_per_s_all_cores"] = round(allowed_all_cores, 1)
        summary["sustained_over_all_cores_allowance"] = round(
            sustained["accepted_per_s"] / allowed_all_cores, 3
        )
        # The run at half of the sustained rate, when the suite made one; otherwise (older
        # runs) the step nearest to it.
        at_half = run.get("half_saturation") or min(
            steps, key=lambda step: abs(step["offered_per_s"] - sustained["offered_per_s"] / 2)
        )
        summary["half_saturation_step_per_s"] = at_half["offered_per_s"]
        summary["half_saturation_http_p99_ms"] = at_half["http"]["p99_ms"]
        summary["half_saturation_order_to_report_p99_ms"] = at_half["order_to_report_ms"]["p99"]
    halves = [run[key] for key in ("half_saturation_settling", "half_saturation") if run.get(key)]
    measured = [*steps, *halves]
    peaks = {
        name: max(step["peak_rss_mib"].get(name, 0.0) for step in measured)
        for name in SERVICE_PROCESSES
    }
    summary["peak_rss_mib"] = peaks
    summary["largest_service_rss_mib"] = max(peaks.values())
    summary["loadgen_cpu_share_max"] = round(
        max(
            (step["cpu_s"]["oha"] / sum(step["cpu_s"].values()) for step in measured),
            default=0.0,
        ),
        3,
    )
    return summary


def _verdicts(summary: dict[str, Any]) -> list[tuple[str, str, bool]]:
    rows = [
        (
            "the ramp went on until the pipeline no longer kept up",
            "yes" if summary.get("saturation_reached", True) else "no: saturation not found",
            summary.get("saturation_reached", True),
        ),
        (
            "sustained end to end ≥ 1,500 orders/s",
            f"{summary['sustained_per_s']:,.0f}/s",
            summary["sustained_per_s"] >= 1500,
        ),
        (
            "POST ≥ 85 % of 1/(1/R_http + 1/R_asyncpg)",
            f"{summary['post_over_bound']:.0%}",
            summary["post_over_bound"] >= 0.85,
        ),
        (
            "relay ≥ 3× the API",
            f"{summary['relay_over_api']:.2f}×",
            summary["relay_over_api"] >= 3,
        ),
        (
            "relay ≥ half the bare aiokafka producer",
            f"{summary['relay_over_bare_aiokafka']:.2f}",
            summary["relay_over_bare_aiokafka"] >= 0.5,
        ),
        (
            "clientes consumer ≥ 2× the API",
            f"{summary['clientes_consumer_over_api']:.2f}×",
            summary["clientes_consumer_over_api"] >= 2,
        ),
        (
            "reports consumer ≥ 2× the API (orders)",
            f"{summary['reports_consumer_orders_over_api']:.2f}×",
            summary["reports_consumer_orders_over_api"] >= 2,
        ),
        (
            "every service < 150 MiB RSS at peak",
            f"{summary['largest_service_rss_mib']:.0f} MiB",
            summary["largest_service_rss_mib"] < RSS_LIMIT_MIB,
        ),
        (
            "load generator (oha) < 15 % of the CPU",
            f"{summary['loadgen_cpu_share_max']:.0%}",
            summary["loadgen_cpu_share_max"] < 0.15,
        ),
    ]
    if "cpu_allows_per_s" in summary:
        rows[2:2] = [
            (
                "sustained ≥ 85 % of what the CPU per order allows",
                f"{summary['sustained_over_cpu_allowance']:.0%} of "
                f"{summary['cpu_allows_per_s']:,.0f}/s (of every core: "
                f"{summary['sustained_over_all_cores_allowance']:.0%} of "
                f"{summary['cpu_allows_per_s_all_cores']:,.0f}/s)",
                summary["sustained_over_cpu_allowance"] >= 0.85,
            )
        ]
        p99 = summary["half_saturation_http_p99_ms"]
        e2e = summary["half_saturation_order_to_report_p99_ms"]
        rows += [
            (
                f"HTTP p99 < 50 ms at half saturation ({summary['half_saturation_step_per_s']}/s)",
                f"{p99:.1f} ms",
                p99 < 50,
            ),
            (
                "order to report p99 < 200 ms at half saturation",
                f"{e2e:.0f} ms" if e2e is not None else "no probe",
                e2e is not None and e2e < 200,
            ),
        ]
    return rows


def markdown(run: dict[str, Any]) -> str:
    summary, limits, stages = run["summary"], run["limits"], run["stages"]
    lines = [f"# data-sync benchmark suite, {run['when']}", ""]
    lines += [f"{run['machine']['cpus']} cores, Python {run['machine']['python']}.", ""]

    lines += ["## Targets", "", "| target | measured | met |", "| --- | ---: | :---: |"]
    for name, value, met in _verdicts(summary):
        lines.append(f"| {name} | {value} | {'yes' if met else 'no'} |")

    kafka, bare = limits["kafka_perf"], limits["bare_aiokafka"]
    lines += ["", "## Limits (same run)", "", "| limit | per s |", "| --- | ---: |"]
    lines += [
        f"| load generator against a trivial endpoint | "
        f"{limits['loadgen_ceiling']['requests_per_s']:,.0f} |",
        f"| R_http: decode, validate, answer | {limits['r_http']['requests_per_s']:,.0f} |",
        f"| R_asyncpg: the service's write, one order a transaction | "
        f"{limits['r_asyncpg']['per_s']:,.0f} |",
        f"| R_pgbench: the same transaction in pgbench | {limits['r_pgbench']['tps']:,.0f} |",
        f"| R_kafka_produce (producer perf tool, acks=all, idempotent, "
        f"{limits['event_size_bytes']} B) | {kafka['produce']['records_per_s']:,.0f} |",
        f"| R_kafka_consume (consumer perf tool) | {kafka['consume']['records_per_s']:,.0f} |",
        f"| bare aiokafka producer | {bare['produce']['records_per_s']:,.0f} |",
        f"| bare aiokafka consumer | {bare['consume']['records_per_s']:,.0f} |",
    ]

    lines += [
        "",
        "## Each stage alone on a backlog",
        "",
        "Steady rate: from a tenth to nine tenths of the backlog moved. In brackets, from the",
        "first row moved to the last, start-up of the process's clients included.",
        "",
        "| stage | per s |",
        "| --- | ---: |",
        f"| POST /pedidos at saturation | {stages['post_pedidos']['requests_per_s']:,.0f} |",
    ]
    for name, label in (
        ("pedidos_relay", "pedidos relay (outbox rows)"),
        ("clientes_consumer", "clientes consumer (orders enriched)"),
        ("clientes_relay", "clientes relay (outbox rows)"),
        ("reports_consumer", "reports consumer (records)"),
    ):
        stage = stages[name]
        whole = stage.get("first_to_last_per_s")
        lines.append(
            f"| {label} | {stage['per_s']:,.0f}"
            + (f" ({whole:,.0f})" if whole is not None else "")
            + " |"
        )

    lines += [
        "",
        "## Open-model steps",
        "",
        "| offered/s | accepted/s | p50 ms | p95 ms | p99 ms | max ms "
        "| to report p50 / p99 ms | backlog at end | CPU ms/order | CPU busy | commits/flush "
        "| orders/commit | kept up |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| :---: |",
    ]
    for step in run["steps"]:
        http, e2e, wal = step["http"], step["order_to_report_ms"], step["wal"]
        lines.append(
            f"| {step['offered_per_s']:,} | {step['accepted_per_s']:,.0f} | {http['p50_ms']:.1f} "
            f"| {http['p95_ms']:.1f} | {http['p99_ms']:.1f} | {http['max_ms']:.1f} "
            f"| {e2e['p50']} / {e2e['p99']} | {step['backlog_at_end']:,} "
            f"| {step['cpu_ms_per_order']:.2f} | {step['cpu_busy_share']:.0%} "
            f"| {wal['commits_per_flush']} "
            f"| {wal['orders_per_pedidos_commit']} | {'yes' if step['kept_up'] else 'no'} |"
        )

    half = run.get("half_saturation")
    if half:
        http, e2e = half["http"], half["order_to_report_ms"]
        # The orders answered 201 over the seconds oha sent for; the wall time around it
        # also holds the start of oha and of the probe. Older runs lack the counts.
        seconds = run.get("settings", {}).get("half_seconds") or half["wall_s"]
        orders = http.get("statuses", {}).get("201") or half["accepted_per_s"] * seconds
        lines += [
            "",
            "## At half the sustained rate",
            "",
            f"A run of its own at {half['offered_per_s']:,}/s for {seconds:.0f} s "
            f"({orders:,.0f} orders, {e2e['probes']} probes), "
            f"{half['cpu_busy_share']:.0%} of the CPU busy:",
            "",
            "| | p50 ms | p95 ms | p99 ms | max ms |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| HTTP | {http['p50_ms']:.1f} | {http['p95_ms']:.1f} | {http['p99_ms']:.1f} "
            f"| {http['max_ms']:.1f} |",
            f"| order to report | {e2e['p50']} | {e2e['p95']} | {e2e['p99']} | {e2e['max']} |",
        ]
        settling = run.get("half_saturation_settling")
        if settling:
            http, e2e = settling["http"], settling["order_to_report_ms"]
            sentence = (
                f"It followed {settling['wall_s']:.0f} s at the same rate, straight after the "
                "steps past saturation, which are not judged against the targets: "
                f"{settling['cpu_busy_share']:.0%} of the CPU busy, HTTP p50 / p99 / max "
                f"{http['p50_ms']:.1f} / {http['p99_ms']:.1f} / {http['max_ms']:.1f} ms, "
                f"order to report p99 {e2e['p99']} ms."
            )
            lines += ["", *textwrap.wrap(sentence, width=90)]

    names = list(run["startup_s"])
    lines += [
        "",
        "## Processes",
        "",
        "| process | start-up s | idle RSS MiB | peak RSS MiB |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in names:
        lines.append(
            f"| {name} | {run['startup_s'][name]:.2f} | {run['idle_rss_mib'].get(name, 0):.0f} "
            f"| {summary['peak_rss_mib'].get(name, 0):.0f} |"
        )
    lines.append("")
    return "\n".join(lines)


def plots(run: dict[str, Any], stem: Path) -> None:
    steps = run["steps"]
    offered = [step["offered_per_s"] for step in steps]
    figure, axes = plt.subplots(figsize=(8, 5))
    axes.plot(offered, [step["http"]["p50_ms"] for step in steps], "o-", label="HTTP p50")
    axes.plot(offered, [step["http"]["p99_ms"] for step in steps], "o-", label="HTTP p99")
    axes.plot(
        offered,
        [step["order_to_report_ms"]["p99"] or float("nan") for step in steps],
        "s--",
        label="order to report p99",
    )
    axes.set_yscale("log")
    axes.set_xlabel("offered load (orders/s)")
    axes.set_ylabel("latency (ms)")
    axes.set_title("Latency against offered load (open model)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(f"{stem}-latency.png", dpi=110)
    plt.close(figure)

    limits, stages = run["limits"], run["stages"]
    bars = [
        ("R_http", limits["r_http"]["requests_per_s"], "limit"),
        ("R_asyncpg", limits["r_asyncpg"]["per_s"], "limit"),
        ("R_pgbench", limits["r_pgbench"]["tps"], "limit"),
        ("POST /pedidos", stages["post_pedidos"]["requests_per_s"], "stage"),
        ("kafka produce", limits["kafka_perf"]["produce"]["records_per_s"], "limit"),
        ("aiokafka produce", limits["bare_aiokafka"]["produce"]["records_per_s"], "limit"),
        ("pedidos relay", stages["pedidos_relay"]["per_s"], "stage"),
        ("clientes relay", stages["clientes_relay"]["per_s"], "stage"),
        ("kafka consume", limits["kafka_perf"]["consume"]["records_per_s"], "limit"),
        ("clientes consumer", stages["clientes_consumer"]["per_s"], "stage"),
        ("reports consumer", stages["reports_consumer"]["per_s"], "stage"),
    ]
    figure, axes = plt.subplots(figsize=(9, 5))
    colors = ["#9aa5b1" if kind == "limit" else "#2b6cb0" for _, _, kind in bars]
    axes.barh([name for name, _, _ in bars], [rate for _, rate, _ in bars], color=colors)
    axes.set_xscale("log")
    axes.invert_yaxis()
    axes.set_xlabel("records or requests per second (log)")
    axes.set_title("Each stage alone (blue) against its limits (grey), same run")
    axes.grid(True, axis="x", which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(f"{stem}-stages.png", dpi=110)
    plt.close(figure)
