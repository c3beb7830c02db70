import random

import numpy as np
import pytest

from segwise.federated import secagg
from segwise.federated.protocol import MaskContext, combine_aggregates, pack_aggregate


def _probably_prime(n: int, rounds: int = 16) -> bool:
    if n % 2 == 0:
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    rng = random.Random(0)
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def test_the_group_is_the_rfc_3526_safe_prime():
    p = secagg.MODP_2048
    assert p.bit_length() == 2048
    assert _probably_prime(p) and _probably_prime((p - 1) // 2)


def test_pairs_derive_the_same_key_and_other_pairs_do_not():
    a, b, c = secagg.KeyPair(), secagg.KeyPair(), secagg.KeyPair()
    assert a.shared_key(b.public) == b.shared_key(a.public)
    assert a.shared_key(c.public) != a.shared_key(b.public)
    with pytest.raises(ValueError, match="outside the group"):
        a.shared_key(1)


def test_encoding_round_trips_and_refuses_non_finite_values():
    values = np.array([0.0, -1.5, 3.25e10, 1e-9, -7.0])
    np.testing.assert_allclose(secagg.decode(secagg.encode(values)), values, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="finite"):
        secagg.encode(np.array([np.nan]))


def test_masks_cancel_in_the_sum_and_hide_each_silo():
    keys = {name: secagg.KeyPair() for name in ("a", "b", "c")}
    public = {name: k.public for name, k in keys.items()}
    rng = np.random.default_rng(0)
    arrays = {name: {"sums": rng.normal(size=(3, 4)), "counts": rng.integers(0, 50, 3).astype(float)}
              for name in keys}
    messages = [pack_aggregate(arrays[name], MaskContext(me=name, keys=keys[name], peers=public, label="r1"))
                for name in keys]
    total = combine_aggregates(messages)
    np.testing.assert_allclose(total["sums"], sum(a["sums"] for a in arrays.values()), atol=1e-12)
    np.testing.assert_allclose(total["counts"], sum(a["counts"] for a in arrays.values()), atol=1e-12)
    alone = secagg.decode(messages[0]["masked"])
    assert np.abs(alone[:12] - arrays["a"]["sums"].ravel()).min() > 1e3
    # Without one silo the masks do not cancel: a partial sum is noise.
    partial = secagg.unmask_sum([m["masked"] for m in messages[:2]])
    assert np.abs(partial[:12] - (arrays["a"]["sums"] + arrays["b"]["sums"]).ravel()).min() > 1e3


def test_a_new_round_label_gives_new_masks():
    a, b = secagg.KeyPair(), secagg.KeyPair()
    peers = {"a": a.public, "b": b.public}
    one = secagg.mask_vector(np.ones(4), me="a", keys=a, peers=peers, label="lloyd-1|0")
    two = secagg.mask_vector(np.ones(4), me="a", keys=a, peers=peers, label="lloyd-1|1")
    assert one != two
