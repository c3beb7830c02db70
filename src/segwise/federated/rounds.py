"""Sending one round to every silo: in parallel, with retries, surviving dropouts.

`Rounds` holds who is still in the run and sends each round to all of them at once.
A silo whose request fails (connection refused or reset, timeout, HTTP 5xx) is asked
again ``retries`` times; then it is dropped, the drop is recorded, and the run goes
on with the others. A secure-aggregation round is repeated among the survivors (the
dropped silo's masks would not cancel), with the attempt number in the masks' label.
A silo that refuses a request (HTTP 4xx: the request is wrong) stops the run.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from segwise.errors import InputError
from segwise.federated import protocol
from segwise.federated.transport import SiloRefused, SiloUnavailable

__all__ = ["Rounds", "FederationError"]


class FederationError(InputError):
    """The federated run cannot go on (too few silos left, a silo refused a request)."""


class Rounds:
    """The silos of one session and the rounds sent to them.

    Parameters
    ----------
    silos : sequence of silo clients
    session : str
        Session id sent with every request.
    retries : int
        Repeats of a failed request before the silo is dropped.
    retry_wait : float
        Seconds before the first repeat (then twice that, ...).
    minimum : int
        Fewest silos the run can go on with.
    on_round : callable, optional
        Called with each round's name before it is sent.
    record : dict
        Receives ``rounds`` (who answered each attempt) and ``dropouts``.
    """

    def __init__(self, silos: Sequence, *, session: str, retries: int, retry_wait: float, minimum: int,
                 on_round: Callable[[str], None] | None, record: dict[str, Any]) -> None:
        self.silos = list(silos)
        self.session = session
        self.retries = retries
        self.retry_wait = retry_wait
        self.minimum = minimum
        self.on_round = on_round
        self.record = record
        self.active = {s.name for s in self.silos}
        self.public_keys: dict[str, str] = {}

    def _call(self, client, path: str, body: dict[str, Any]) -> dict[str, Any]:
        errors = []
        for attempt in range(self.retries + 1):
            try:
                return client.call(path, body)
            except SiloRefused as exc:
                raise FederationError(str(exc)) from None
            except SiloUnavailable as exc:
                errors.append(str(exc))
                if attempt < self.retries:
                    time.sleep(self.retry_wait * (attempt + 1))
        raise SiloUnavailable("; ".join(errors))

    def send(self, path: str, name: str, body: Callable[[str], dict[str, Any]] | dict[str, Any], *,
             masked: bool = False, round_fields: bool = True) -> dict[str, dict[str, Any]]:
        """Send round ``name`` to every active silo; return the answers by silo name."""
        if self.on_round is not None:
            self.on_round(name)
        attempt = 0
        while True:
            active = [s for s in self.silos if s.name in self.active]
            peers = {s.name: self.public_keys[s.name] for s in active} if masked else {}
            bodies = {}
            for silo in active:
                payload = dict(body(silo.name) if callable(body) else body)
                payload["session"] = self.session
                if round_fields:
                    payload.update(round=name, attempt=attempt, peers=peers)
                bodies[silo.name] = payload
            with ThreadPoolExecutor(max_workers=max(1, len(active))) as pool:
                futures = {s.name: pool.submit(self._call, s, path, bodies[s.name]) for s in active}
                answers, failed = {}, {}
                for silo_name, future in futures.items():
                    try:
                        answers[silo_name] = future.result()
                    except SiloUnavailable as exc:
                        failed[silo_name] = str(exc)
            self.record["rounds"].append({"round": name, "attempt": attempt, "silos": sorted(answers)})
            if not failed:
                return answers
            for silo_name, error in failed.items():
                self.active.discard(silo_name)
                self.record["dropouts"].append({
                    "silo": silo_name, "round": name, "attempt": attempt, "tries": self.retries + 1, "error": error,
                })
            if len(self.active) < self.minimum:
                raise FederationError(
                    f"only {len(self.active)} silo(s) left after {', '.join(sorted(failed))} dropped out in round "
                    f"{name}; at least {self.minimum} are needed"
                    + (" for secure aggregation" if self.minimum == 2 else "")
                )
            if not masked:
                return answers
            attempt += 1


def summed(answers: Mapping[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """The sum over silos of the aggregates in their answers."""
    return protocol.combine_aggregates([a["aggregate"] for a in answers.values()])
