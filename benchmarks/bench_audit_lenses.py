"""Claim: the audit's realism lenses (three classifier two-sample tests + the sub-type
classifier of mode coverage: 36 scikit-learn fits) run faster with their fits in one
single-threaded process per core than one after another (2.4–4.2× over six runs on 2
cores), and give the same numbers. A third row runs
them one after another with one BLAS/OpenMP thread, to separate the gain of the processes
from that of avoiding two threads on small matrices.

Inputs as in the quick study's audit: 1,000 held-out "real" images of a class with their
sub-types and 500 "generated" ones (here a second simulated set, so the run needs no
trained model).

    python benchmarks/bench_audit_lenses.py --label air_bubble
"""

from __future__ import annotations

import argparse
import json
import os

from common import Timer, report
from threadpoolctl import threadpool_limits

from svpgen.evaluate.audit import realism_lenses
from svpgen.simulate import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="air_bubble", choices=("air_bubble", "silicone_oil"))
    ap.add_argument("--real", type=int, default=1000)
    ap.add_argument("--generated", type=int, default=500)
    args = ap.parse_args()
    real = simulate({args.label: args.real}, seed=1).particles
    gen = simulate({args.label: args.generated}, seed=2).particles.images
    subtypes = real.table["subtype"].to_numpy()
    rows, results = [], {}
    runs = (
        ("one after another (baseline)", None, None),
        ("one after another, 1 BLAS/OpenMP thread", None, 1),
        (f"n_jobs=-1 ({os.cpu_count()} processes, 1 thread each)", -1, None),
    )
    for name, n_jobs, threads in runs:
        with Timer() as t, threadpool_limits(threads):
            results[name] = realism_lenses(
                real.images, subtypes, gen, args.generated, n_jobs=n_jobs
            )
        rows.append({"fits": name, "seconds": t.seconds})
    base = rows[0]["seconds"]
    for row in rows:
        row["speed-up"] = base / row["seconds"]
    first, *others = (json.dumps(r, sort_keys=True) for r in results.values())
    same = all(o == first for o in others)
    report(
        "audit_lenses",
        rows,
        {"label": args.label, "lenses": results[runs[-1][0]], "same_numbers": same},
    )
    print("same numbers in every row:", same)
    if not same:
        raise SystemExit("the parallel fits changed the lenses' numbers")


if __name__ == "__main__":
    main()
