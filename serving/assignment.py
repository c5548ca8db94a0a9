"""Sticky, symmetric assignment of users to the primary or the canary arm.

A user's point ``u = H(salt, user_id) ∈ [0, 1)`` (blake2b, uniform) is compared with the canary
weight ``w``: canary when ``u < w``, else primary. One rule decides both arms — no arm keeps its
own cookie, so traffic cannot drift between them — and for a fixed salt a user keeps their arm
while ``w`` is fixed. Raising ``w`` moves exactly the users with ``w_old <= u < w_new`` from the
primary to the canary and nobody else; lowering it to 0 (a rollback) returns every user to the
primary. A new experiment (salt) reshuffles users independently of the last one.
"""

from __future__ import annotations

import hashlib
import math

PRIMARY = "primary"
CANARY = "canary"
ARMS = (PRIMARY, CANARY)


def assignment_point(user_id: int, salt: str) -> float:
    """The user's fixed point in [0, 1) for this experiment."""
    digest = hashlib.blake2b(f"{salt}\x1f{int(user_id)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_arm(user_id: int, salt: str, canary_weight: float) -> str:
    """``canary`` when the user's point is below the canary weight, else ``primary``."""
    return CANARY if assignment_point(user_id, salt) < canary_weight else PRIMARY


def check_weight(weight: float) -> float:
    """``weight`` as a float in [0, 1]; anything else is a ValueError naming ``canary_weight``."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise ValueError(f"canary_weight: expected a number in [0, 1], got {weight!r}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"canary_weight: expected a number in [0, 1], got {weight!r}")
    return float(weight)
