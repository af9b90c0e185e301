"""A Locust load profile of data-sync, for those who want Locust's web UI.

The mix imitates ordinary use: mostly new orders (`POST /pedidos`, each with an id of its
own, a customer from a fixed pool and a valor with two decimals), some customer changes
(`PUT /clientes/{id}`, or `POST /clientes` when the customer is not registered yet) and some
report reads (the resumo, one customer's report, the top customers). Of every 21 tasks, 12
are orders, 3 customer changes and 2 each report.

Run it against a running stack (`make up`):

    .venv/bin/locust -f tests/load/pedidos_locust.py --web-host 127.0.0.1

and open http://127.0.0.1:8089 (`--web-host` keeps the UI on loopback; Locust binds every
interface otherwise). Without the UI, for 30 s with 10 users:

    .venv/bin/locust -f tests/load/pedidos_locust.py --headless -u 10 -r 5 -t 30s \\
        --only-summary --csv pedidos-load

Each service listens on its own port, so requests carry absolute URLs and Locust's
`--host` (the Host field of the UI) is not used. Point the profile elsewhere with
PEDIDOS_URL, CLIENTES_URL and REPORTS_URL (defaults http://127.0.0.1:3000, :3001, :3002);
CLIENTES_POOL_SIZE sets how many customers the orders are spread over (default 50).

Every answer other than the ones listed per request below counts as a failure, so the
failure count is the number to watch. Locust's figures are for exploring: response times
measured by a Python load generator on the same machine as the stack say as much about the
generator as about the services. The measured figures of this project come from `bench/`
(`make bench`), not from Locust.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from typing import Any

from locust import FastHttpUser, between, task
from locust.contrib.fasthttp import ResponseContextManager

PEDIDOS_URL = os.environ.get("PEDIDOS_URL", "http://127.0.0.1:3000").rstrip("/")
CLIENTES_URL = os.environ.get("CLIENTES_URL", "http://127.0.0.1:3001").rstrip("/")
REPORTS_URL = os.environ.get("REPORTS_URL", "http://127.0.0.1:3002").rstrip("/")
CLIENTES_POOL_SIZE = int(os.environ.get("CLIENTES_POOL_SIZE", "50"))

# The pool's ids are the same on every run, so a second run updates the customers of the
# first instead of piling up new ones.
CLIENTE_IDS = [f"lc-cliente-{number:04d}" for number in range(CLIENTES_POOL_SIZE)]
CIDADES = [
    ("Recife", "Brasil"),
    ("Porto", "Portugal"),
    ("Lyon", "France"),
    ("Graz", "Austria"),
    ("Cork", "Ireland"),
]
SEGMENTOS = ["varejo", "atacado", "servicos"]

# Order ids must never repeat, across runs and across worker processes of a distributed run:
# a repeated id answers 200 (same order) or 409 (other content) instead of 201.
_RUN_TOKEN = uuid.uuid4().hex[:12]
_order_numbers = itertools.count(1)
_change_numbers = itertools.count(1)


def valor_text(cents: int) -> str:
    """A valor with exactly two decimals, as the API stores and answers it."""
    return f"{cents // 100}.{cents % 100:02d}"


def pedido_body(pedido_id: str, cliente_id: str, cents: int) -> str:
    """The JSON of an order, valor written by hand: the API reads the number's digits as
    they are, and a float could print as 12.3 or 0.30000000000000004."""
    return (
        f'{{"id": {json.dumps(pedido_id)}, "cliente-id": {json.dumps(cliente_id)}, '
        f'"valor": {valor_text(cents)}}}'
    )


def expect(response: ResponseContextManager, *statuses: int) -> bool:
    """Marks the request as failed unless it answered one of `statuses`; returns whether it
    did.

    Locust groups failures by their message, so messages leave out ids and amounts: the
    status, and the problem's title (RFC 9457) or the transport error."""
    if response.status_code in statuses:
        response.success()
        return True
    if response.status_code == 0:
        reason = repr(getattr(response, "error", None))
    else:
        problem = json_or_none(response)
        reason = problem.get("title", "") if isinstance(problem, dict) else "no problem body"
    response.failure(f"answered {response.status_code}, expected {statuses}: {reason}")
    return False


def json_or_none(response: ResponseContextManager) -> Any:
    try:
        return response.json()
    except (TypeError, ValueError):  # TypeError: no body at all
        return None


def body_of(response: ResponseContextManager) -> Any:
    """The JSON body of a successful answer; a body that is not JSON fails the request."""
    body = json_or_none(response)
    if body is None:
        response.failure("the body is not JSON")
    return body


class DataSyncUser(FastHttpUser):
    """One REST client of the three services, with a short think time between requests."""

    # Only there because FastHttpUser insists on a host; every request is absolute.
    host = PEDIDOS_URL
    wait_time = between(0.1, 0.5)

    @task(12)
    def new_pedido(self) -> None:
        pedido_id = f"lc-{_RUN_TOKEN}-{next(_order_numbers)}"
        cents = random.randint(100, 500_000)
        body = pedido_body(pedido_id, random.choice(CLIENTE_IDS), cents)
        with self.client.post(
            f"{PEDIDOS_URL}/pedidos",
            data=body,
            headers={"Content-Type": "application/json"},
            name="/pedidos",
            catch_response=True,
        ) as response:
            # A fresh id is created (201); 200 would mean the id was used before.
            if not expect(response, 201):
                return
            stored = body_of(response)
            sent = {"id": pedido_id, "valor": valor_text(cents)}
            if stored is not None and not (
                isinstance(stored, dict) and sent.items() <= stored.items()
            ):
                response.failure("the stored order differs from the one sent")

    @task(3)
    def change_cliente(self) -> None:
        cliente_id = random.choice(CLIENTE_IDS)
        cidade, pais = random.choice(CIDADES)
        dados = {
            "nome": f"Cliente {cliente_id} v{next(_change_numbers)}",
            "cidade": cidade,
            "pais": pais,
            "segmento": random.choice(SEGMENTOS),
        }
        with self.client.put(
            f"{CLIENTES_URL}/clientes/{cliente_id}",
            json=dados,
            name="/clientes/[id]",
            catch_response=True,
        ) as response:
            # 404: nobody registered this customer yet, which is the next request's job.
            if not expect(response, 200, 404) or response.status_code == 200:
                return
        with self.client.post(
            f"{CLIENTES_URL}/clientes",
            json={"id": cliente_id, **dados},
            name="/clientes",
            catch_response=True,
        ) as response:
            # 409: another user registered the same customer, with other data, in between.
            expect(response, 201, 409)

    @task(2)
    def read_resumo(self) -> None:
        with self.client.get(
            f"{REPORTS_URL}/reports/resumo", name="/reports/resumo", catch_response=True
        ) as response:
            if expect(response, 200):
                resumo = body_of(response)
                if resumo is not None and not (
                    isinstance(resumo, dict) and set(resumo) == {"pedidos", "clientes", "total"}
                ):
                    response.failure("resumo is not an object of pedidos, clientes, total")

    @task(2)
    def read_cliente_report(self) -> None:
        cliente_id = random.choice(CLIENTE_IDS)
        with self.client.get(
            f"{REPORTS_URL}/reports/clientes/{cliente_id}",
            name="/reports/clientes/[id]",
            catch_response=True,
        ) as response:
            # 404: reports have seen neither an order nor the data of this customer yet.
            expect(response, 200, 404)

    @task(2)
    def read_top_clientes(self) -> None:
        with self.client.get(
            f"{REPORTS_URL}/reports/top-clientes?limit=10",
            name="/reports/top-clientes",
            catch_response=True,
        ) as response:
            if expect(response, 200):
                top = body_of(response)
                if top is not None and not (isinstance(top, list) and len(top) <= 10):
                    response.failure("top-clientes is not a list of at most 10")
