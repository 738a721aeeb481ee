"""The network: one seeded latency model per link class.

Link classes: ``client`` (client to its QP endpoint), ``same_az``, ``cross_az`` and
``cross_region``; a pair of regions listed in ``region_rtt_ms`` gets a link of its own
(median one-way delay half the round trip, ``cross_region``'s shape and tail, its own
stream), and ``cross_region`` serves every pair not listed. A one-way delay is lognormal around the class's median with shape
``sigma``, and with probability ``tail_probability`` it is multiplied by
``tail_multiplier`` (a slow path: retransmit, GC pause, noisy neighbour), so every class
has a tail. Each class draws from its own stream of the run seed, in blocks.

Delays are integer nanoseconds, at least 1, so that causality is strict: a reply never
arrives at the instant its request was sent.
"""

from __future__ import annotations

import numpy as np

from dsqlbench.seeds import BufferedDraws, stream

LINK_CLASSES = ("client", "same_az", "cross_az", "cross_region")

# A node's place: (region index, AZ index within the region).
Place = tuple[int, int]


class LinkModel:
    __slots__ = ("name", "median_ns", "sigma", "tail_probability", "tail_multiplier", "_rng",
                 "_draws", "sample_ns")

    def __init__(self, name: str, median_us: float, sigma: float, tail_probability: float,
                 tail_multiplier: float, rng: np.random.Generator):
        assert median_us > 0 and sigma >= 0 and 0 <= tail_probability <= 1
        assert tail_multiplier >= 1
        self.name = name
        self.median_ns = median_us * 1e3
        self.sigma = sigma
        self.tail_probability = tail_probability
        self.tail_multiplier = tail_multiplier

        self._rng = rng
        self._draws = BufferedDraws(self.draw_block)
        self.sample_ns = self._draws.next  # bound once: the hottest call of the lab

    def draw_block(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """``n`` one-way delays in integer nanoseconds, at least 1 (from ``rng`` if
        given, else this link's own stream)."""
        rng = rng or self._rng
        delay = self.median_ns * np.exp(self.sigma * rng.standard_normal(n))
        slow = rng.random(n) < self.tail_probability
        delay[slow] *= self.tail_multiplier
        return np.maximum(delay, 1.0).astype(np.int64)


class Network:
    """Delays between places; ``delay_ns(a, b)`` picks the link class by placement.

    ``region_names`` are the topology's regions in order (a place's region index points
    into it); they name the pairs of ``network_cfg["region_rtt_ms"]``.
    """

    def __init__(self, network_cfg: dict, seed: int, region_names: tuple[str, ...] = ()):
        self.links = {
            name: LinkModel(name, rng=stream(seed, f"network/{name}"), **_link_params(network_cfg[name]))
            for name in LINK_CLASSES
        }
        self._client = self.links["client"].sample_ns
        self._same_az = self.links["same_az"].sample_ns
        self._cross_az = self.links["cross_az"].sample_ns
        self._cross_region = self.links["cross_region"].sample_ns
        self.has_link_faults = False  # install_faults may say otherwise
        self.region_links = _region_links(network_cfg, seed, region_names, self.links["cross_region"])
        # _region_pair[a][b]: the sampler between regions a and b (indices), symmetric.
        count = len(region_names)
        self._region_pair = [[self._cross_region] * count for _ in range(count)]
        for (a, b), model in self.region_links.items():
            self._region_pair[a][b] = self._region_pair[b][a] = model.sample_ns

    def install_faults(self, link_faults, now_ns) -> None:
        """Partitions and slow links: from now on ``delay_ns`` accounts for them.
        ``now_ns()`` gives the current simulated time. Without link faults nothing
        changes, so fault-free runs keep the plain fast path."""
        from dsqlbench.sim.faults import link_sides

        self._link_faults = [(fault, link_sides(fault.target)) for fault in link_faults]
        self.has_link_faults = bool(self._link_faults)
        if not self._link_faults:
            return
        plain = self.delay_ns
        self.delay_ns = lambda a, b: self.fault_delay(a, b, plain(a, b), now_ns())

    def fault_delay(self, a: Place, b: Place, delay_ns: int, now_ns: int) -> int:
        """``delay_ns`` of a message sent now from ``a`` to ``b``, given link faults: a
        partition holds it until it heals (as a retransmitting transport would); a
        slow link multiplies it."""
        from dsqlbench.sim.faults import place_matches

        for fault, (left, right) in getattr(self, "_link_faults", ()):
            if not fault.active(now_ns):
                continue
            cut = (place_matches(left, a) and place_matches(right, b) and not place_matches(left, b)) or \
                  (place_matches(left, b) and place_matches(right, a) and not place_matches(left, a))
            if not cut:
                continue
            if fault.kind == "partition":
                delay_ns += fault.end_ns - now_ns
            else:
                delay_ns = int(delay_ns * fault.multiplier)
        return delay_ns

    def link(self, a: Place, b: Place) -> LinkModel:
        """The link class between two places."""
        if a[0] != b[0]:
            return self.region_links.get((min(a[0], b[0]), max(a[0], b[0])), self.links["cross_region"])
        if a[1] != b[1]:
            return self.links["cross_az"]
        return self.links["same_az"]

    def dedicated(self, a: Place, b: Place, name: str, seed: int):
        """A sampler of one-way delays from ``a`` to ``b`` with their link class's
        shape but a stream of its own (``network/dedicated/<name>``): a feed whose
        messages are computed ahead of, or behind, the rest of the traffic (caught-up
        heartbeats) then draws the same delays whenever it is computed. Link faults
        still apply (``fault_delay``), as ``delay_ns`` applies them."""
        base = self.link(a, b)
        model = LinkModel(f"dedicated/{name}", base.median_ns / 1e3, base.sigma,
                          base.tail_probability, base.tail_multiplier,
                          rng=stream(seed, f"network/dedicated/{name}"))
        return model.sample_ns

    def delay_ns(self, a: Place, b: Place) -> int:
        if a[0] != b[0]:
            return self._region_pair[a[0]][b[0]]()
        if a[1] != b[1]:
            return self._cross_az()
        return self._same_az()

    def client_delay_ns(self) -> int:
        return self._client()

    def fragment_paths(self, link: str, k: int, m: int, seed: int) -> BufferedDraws:
        """Erasure-coded deliveries on ``link``: each draw is a row
        ``[k-th fastest delay, fragment indices in arrival order..., their delays in
        that order...]`` of k + m independent paths, from a stream of their own, a
        block of rows at a time."""
        base = self.links[link]
        model = LinkModel(f"{link}/fragments", base.median_ns / 1e3, base.sigma,
                          base.tail_probability, base.tail_multiplier,
                          rng=stream(seed, f"network/{link}/fragments"))
        paths = k + m

        def block(n: int) -> np.ndarray:
            delays = model.draw_block(n * paths).reshape(n, paths)
            order = np.argsort(delays, axis=1, kind="stable")
            ordered = np.take_along_axis(delays, order, axis=1)
            return np.concatenate([ordered[:, k - 1:k], order, ordered], axis=1)

        return BufferedDraws(block, 1024)


def _region_links(network_cfg: dict, seed: int, region_names: tuple[str, ...],
                  cross_region: LinkModel) -> dict[tuple[int, int], LinkModel]:
    """A link per pair listed in ``region_rtt_ms``, keyed by ``(lower, higher)`` region
    index, in the order the pairs are listed (config validation made them distinct)."""
    index = {name: i for i, name in enumerate(region_names)}
    links = {}
    for pair, rtt_ms in network_cfg.get("region_rtt_ms", {}).items():
        a, _, b = pair.partition("/")
        assert a in index and b in index and a != b, pair
        key = (min(index[a], index[b]), max(index[a], index[b]))
        assert key not in links, pair
        links[key] = LinkModel(f"region/{pair}", rtt_ms * 1e3 / 2, cross_region.sigma,
                               cross_region.tail_probability, cross_region.tail_multiplier,
                               rng=stream(seed, f"network/region/{pair}"))
    return links


def _link_params(cfg: dict) -> dict:
    return {key: cfg[key] for key in ("median_us", "sigma", "tail_probability", "tail_multiplier")}
