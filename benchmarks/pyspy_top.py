"""Sum a ``py-spy record -f raw`` profile: samples by thread, by function (self) and inclusive.

Where a process's time goes, in text, without a flame-graph viewer (issue 18)::

    py-spy record -p PID --gil -r 250 -d 10 -f raw -o /tmp/worker.txt --nonblocking
    python benchmarks/pyspy_top.py /tmp/worker.txt [--top 25]

With ``--gil`` only the samples of the thread holding the GIL count (CPU in Python); without
it, idle waits (``poll``, ``Condition.wait``) show too.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """Total samples, and samples per thread entry, per innermost frame and per frame anywhere."""
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[min(3, len(frames) - 1)]] += n  # past threading's bootstrap frames
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return total, threads, own, inclusive


def main() -> None:
    """Print the three tables for the file given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, threads, own, inclusive = summarise(args.profile)
    print(f"{total} samples")
    for title, counter, top in (
        ("by thread", threads, 8),
        ("self", own, args.top),
        ("inclusive", inclusive, 2 * args.top),
    ):
        print(f"-- {title}")
        for frame, n in counter.most_common(top):
            print(f"{n:7d} {100 * n / max(total, 1):5.1f}%  {frame}")


if __name__ == "__main__":
    main()
