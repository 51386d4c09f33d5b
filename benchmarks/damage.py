"""Damage every byte of every file protege writes, one at a time, and read the dataset back.

Each read ends one of four ways: ``error`` (a DatasetError naming the file), ``correct`` (the
damage hit bytes that do not change the data, e.g. statistics no reader uses), ``wrong`` (the read
succeeded with different data: a silent corruption) or ``other`` (any other exception, a crash).
The contract is ``wrong == other == 0``. Prints JSON; ``--stride K`` damages every K-th byte.

    python benchmarks/damage.py --formats lerobot robomimic minari --stride 3 --out benchmarks/results/damage.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from store_checks import assert_stores_equal, two_episode_store  # noqa: E402

from protege.data.store import DatasetError, EpisodeStore  # noqa: E402
from protege.formats import read_dataset, write_dataset  # noqa: E402

NAMES = {"lerobot": "ds", "robomimic": "ds.hdf5", "minari": "ds-v0"}


def outcome(path: Path, fmt: str, reference: EpisodeStore) -> str:
    try:
        store = read_dataset(path, fmt)
    except DatasetError:
        return "error"
    except Exception:  # noqa: BLE001 (counted: the contract is that none happen)
        return "other"
    try:
        assert_stores_equal(store, reference)
    except AssertionError:
        return "wrong"
    return "correct"


def damage_format(fmt: str, stride: int, root: Path) -> dict[str, dict[str, int]]:
    path = write_dataset(two_episode_store(40), root / NAMES[fmt], fmt)
    reference = read_dataset(path, fmt)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    results = {}
    for file in files:
        raw = file.read_bytes()
        counts = Counter()
        for position in range(0, len(raw), stride):
            damaged = bytearray(raw)
            damaged[position] ^= 0x5A
            file.write_bytes(bytes(damaged))
            counts[outcome(path, fmt, reference)] += 1
        file.write_bytes(raw)
        name = file.name if path.is_file() else str(file.relative_to(path))
        results[name] = {"bytes": len(raw), **{k: counts.get(k, 0) for k in ("error", "correct", "wrong", "other")}}
        print(json.dumps({"format": fmt, "file": name, **results[name]}), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", nargs="+", default=list(NAMES), choices=list(NAMES))
    parser.add_argument("--stride", type=int, default=1, help="damage every K-th byte")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        results = {fmt: damage_format(fmt, args.stride, Path(tmp)) for fmt in args.formats}
    if args.out:
        args.out.write_text(json.dumps({"stride": args.stride, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
