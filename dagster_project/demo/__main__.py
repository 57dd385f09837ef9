"""``python -m dagster_project.demo [--out DIR] [--years 2023 2024 2025]``"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .generator import DEFAULT_YEARS, generate_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dagster_project.demo",
        description="Génère la campagne de démonstration (classeurs des directions, 2023 à 2025).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("sources"),
        help="dossier des livraisons (défaut : ./sources)",
    )
    parser.add_argument(
        "--years", type=int, nargs="+", default=list(DEFAULT_YEARS), help="années de campagne"
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    paths = generate_demo(args.out, args.years)
    print(f"{len(paths)} classeurs écrits sous {args.out} en {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
