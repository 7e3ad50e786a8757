"""The msf-CNN paper's published points for the three zoo models under its analytic (``msfcnn``)
cost model, for overlays and comparisons (``shared/reference/msfcnn.md`` section 5; the test-suite
copy is ``tests/paper_reference.py``, and ``tests/test_pareto.py`` checks that both agree).

``PARETO``: every Pareto-optimal (peak RAM elements, MACs) pair of section 5.2.
``PUBLISHED``: the (peak, MACs) results of the P1 / P2 rows of section 5.1, with their labels.
"""
import math

PARETO = {
    'mbv2-w0.35': [
        (7887, 31758160), (10706, 31629856), (12320, 31253536), (13496, 30500896),
        (13926, 29560000), (14817, 29246368), (15340, 26132080), (19418, 26083966),
        (20889, 24672622), (21288, 24536110), (24948, 24485026), (25047, 24313954),
        (25674, 23700946), (45500, 23299870), (63741, 23249938), (67140, 23229202),
        (67905, 20751538), (72576, 20279794), (73104, 19631794), (83065, 19265890),
        (181440, 18909490),
    ],
    'mcunetv2-vww5': [
        (12000, 22655616), (13088, 19648576), (13376, 15576576), (17760, 15000576),
        (18000, 14862336), (18384, 14378496), (25600, 13933056), (26128, 12888576),
        (32792, 12024576), (38576, 11839616), (89600, 11578496),
    ],
    'mcunet-320k': [
        (42643, 219971376), (46600, 217436976), (47568, 214395696), (57456, 181363312),
        (62880, 164842544), (66304, 135399856), (69696, 133245616), (73056, 127395376),
        (94184, 118754480), (154880, 118191280), (156672, 111725744), (156680, 110026288),
        (185856, 106872368), (186032, 102109104), (186736, 97490864), (190096, 84987824),
        (247808, 81625520),
    ],
}

# The P1 / P2 queries of section 5.1: (problem, constraint, peak, MACs); P1's constraint is
# F_max (math.inf for none), P2's is P_max in bytes; peak None = infeasible.
QUERIES = {
    "mbv2-w0.35": [("P1", 1.1, 67905, 20751538), ("P1", 1.2, 67905, 20751538),
                   ("P1", 1.3, 21288, 24536110), ("P1", 1.4, 15340, 26132080),
                   ("P1", 1.5, 15340, 26132080), ("P1", 1.6, 13926, 29560000),
                   ("P1", math.inf, 7887, 31758160), ("P2", 16000, 15340, 26132080),
                   ("P2", 32000, 25674, 23700946), ("P2", 64000, 63741, 23249938),
                   ("P2", 128000, 83065, 19265890), ("P2", 256000, 181440, 18909490),
                   ("P2", 512000, 181440, 18909490), ("P1", 1.0, 181440, 18909490)],
    "mcunetv2-vww5": [("P1", 1.1, 32792, 12024576), ("P1", 1.2, 26128, 12888576),
                      ("P1", 1.3, 17760, 15000576), ("P1", 1.4, 13376, 15576576),
                      ("P1", 1.5, 13376, 15576576), ("P1", 1.6, 13376, 15576576),
                      ("P1", math.inf, 12000, 22655616), ("P2", 16000, 13376, 15576576),
                      ("P2", 32000, 26128, 12888576), ("P2", 64000, 38576, 11839616),
                      ("P2", 128000, 89600, 11578496), ("P2", 256000, 89600, 11578496),
                      ("P2", 512000, 89600, 11578496), ("P1", 1.0, 89600, 11578496)],
    "mcunet-320k": [("P1", 1.1, 190096, 84987824), ("P1", 1.2, 186736, 97490864),
                    ("P1", 1.3, 186032, 102109104), ("P1", 1.4, 156672, 111725744),
                    ("P1", 1.5, 94184, 118754480), ("P1", 1.6, 73056, 127395376),
                    ("P1", math.inf, 42643, 219971376), ("P2", 16000, None, None),
                    ("P2", 32000, None, None), ("P2", 64000, 62880, 164842544),
                    ("P2", 128000, 94184, 118754480), ("P2", 256000, 247808, 81625520),
                    ("P2", 512000, 247808, 81625520), ("P1", 1.0, 247808, 81625520)],
}


def _published() -> dict:
    """(peak, MACs, labels) of every distinct published P1/P2 result, labels joined."""
    out = {}
    for model, rows in QUERIES.items():
        seen: dict = {}
        for prob, cons, peak, macs in rows:
            if peak is None or (prob == "P1" and cons == 1.0):
                continue
            if prob == "P1":
                label = f"P1 F<={'inf' if math.isinf(cons) else cons}"
            else:
                label = f"P2 {cons // 1000}K"
            seen.setdefault((peak, macs), []).append(label)
        out[model] = [(p, m, ", ".join(lbl)) for (p, m), lbl in seen.items()]
    return out


#: the (peak, MACs) results of the P1 / P2 rows of section 5.1, with their labels
PUBLISHED = _published()
