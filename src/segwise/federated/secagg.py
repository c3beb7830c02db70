"""Secure aggregation, lite: pairwise masking so the coordinator sees only the sum.

Every pair of silos agrees on a secret by Diffie-Hellman key agreement: each silo
publishes ``g^a mod p`` (through the coordinator, which relays public keys only) and
derives ``(g^b)^a mod p`` with each peer. For every aggregate it sends, a silo encodes
its values in fixed point as integers modulo 2^128 and adds, for each peer, a mask
expanded from the pair's secret and the round's label: the lower-named silo of the
pair adds the mask, the other subtracts it. Summed over the participants of a round
the masks cancel, and the coordinator decodes the exact fixed-point sum; any single
silo's message is uniformly random to it.

Why written here rather than taken from a library: the pieces are the standard ones
from the Python standard library (modular exponentiation in the 2048-bit MODP group
of RFC 3526, SHA-256 to derive pair keys, SHAKE-256 as the pseudo-random expander)
and a secure-aggregation library would bring a whole framework (gRPC, its own
server) for the twenty lines of masking that we need.

What it protects, and what not ("lite"): an honest-but-curious coordinator that does
not collude with any silo learns only the sum over the silos of each round. A silo
that colludes with the coordinator lets it remove that silo's masks; two silos in a
round reveal each other's values to a colluding peer; there is no authentication of
public keys (the coordinator is trusted to relay them unchanged); and a silo that
drops out is handled by repeating the round among the survivors with fresh masks,
not by secret-shared mask recovery. The round-level sums themselves are not hidden:
that is what differential privacy (`segwise.federated.privacy`) is for.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Iterable, Sequence

import numpy as np

__all__ = ["KeyPair", "MODP_2048", "GENERATOR", "MODULUS_BITS", "FRACTION_BITS", "encode", "decode", "mask_vector",
           "unmask_sum"]

#: The 2048-bit MODP group of RFC 3526 (group 14): a safe prime, generator 2.
MODP_2048 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
GENERATOR = 2

#: Masked values are integers modulo 2^MODULUS_BITS ...
MODULUS_BITS = 128
#: ... holding fixed-point numbers with this many fraction bits (resolution 3.6e-15);
#: sums up to 2^78 (3e23) in magnitude are represented exactly.
FRACTION_BITS = 48

_MODULUS = 1 << MODULUS_BITS
_HALF = 1 << (MODULUS_BITS - 1)
_BYTES = MODULUS_BITS // 8


class KeyPair:
    """A silo's Diffie-Hellman key pair (private exponent of 256 bits, from `secrets`)."""

    def __init__(self) -> None:
        self._private = secrets.randbits(256) | (1 << 255)
        self.public = pow(GENERATOR, self._private, MODP_2048)
        self._shared: dict[int, bytes] = {}

    def shared_key(self, peer_public: int) -> bytes:
        """The 32-byte key this silo shares with the owner of ``peer_public``."""
        if not 1 < peer_public < MODP_2048 - 1:
            raise ValueError("a peer's public key is outside the group (1 < key < p - 1)")
        if peer_public not in self._shared:
            secret = pow(peer_public, self._private, MODP_2048)
            self._shared[peer_public] = hashlib.sha256(secret.to_bytes(256, "big")).digest()
        return self._shared[peer_public]


def encode(values: np.ndarray) -> list[int]:
    """Fixed-point integers modulo 2^128 of float values (two's complement for negatives)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(flat).all():
        raise ValueError("only finite values can be aggregated securely")
    scaled = np.ldexp(flat, FRACTION_BITS)
    if np.abs(scaled).max(initial=0.0) >= 2.0 ** (MODULUS_BITS - 2):
        raise ValueError("a value is too large for the fixed-point encoding of secure aggregation")
    return [int(round(v)) % _MODULUS for v in scaled.tolist()]


def decode(integers: Sequence[int]) -> np.ndarray:
    """Float values of fixed-point integers modulo 2^128 (inverse of `encode`, summed or not)."""
    reduced = [v % _MODULUS for v in integers]
    signed = [v - _MODULUS if v >= _HALF else v for v in reduced]
    # float() rounds once; scaling by a power of two is exact.
    return np.ldexp(np.array([float(v) for v in signed], dtype=np.float64), -FRACTION_BITS)


def _expand(key: bytes, label: str, n: int) -> list[int]:
    stream = hashlib.shake_256(key + b"\x00" + label.encode()).digest(_BYTES * n)
    return [int.from_bytes(stream[i * _BYTES:(i + 1) * _BYTES], "big") for i in range(n)]


def mask_vector(values: np.ndarray, *, me: str, keys: KeyPair, peers: dict[str, int], label: str) -> list[int]:
    """``values`` encoded and masked for one round among ``me`` and ``peers``.

    Parameters
    ----------
    values : ndarray
        The silo's aggregate, flattened.
    me : str
        This silo's name (orders the pairs).
    keys : KeyPair
    peers : dict of str to int
        The other participants of the round and their public keys.
    label : str
        Names the round (session, round number, attempt, participants); the same pair
        gets unrelated masks in different rounds.
    """
    encoded = encode(values)
    n = len(encoded)
    for peer, public in sorted(peers.items()):
        if peer == me:
            continue
        mask = _expand(keys.shared_key(public), label, n)
        sign = 1 if me < peer else -1
        encoded = [(e + sign * m) % _MODULUS for e, m in zip(encoded, mask)]
    return encoded


def unmask_sum(vectors: Iterable[Sequence[int]]) -> np.ndarray:
    """Sum masked vectors of every participant of a round modulo 2^128 and decode it."""
    total: list[int] | None = None
    for vector in vectors:
        total = list(vector) if total is None else [(a + b) % _MODULUS for a, b in zip(total, vector)]
    if total is None:
        raise ValueError("no vectors to sum")
    return decode(total)
