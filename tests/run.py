"""Run pytest once for one database and refuse an empty run (pytest's exit code 5)."""

from __future__ import annotations

import argparse
import sys

import pytest

NO_TESTS_COLLECTED = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True, choices=["sqlite", "postgresql"])
    args, rest = parser.parse_known_args()
    print(f"=== casefolio test suite on {args.database} ===", flush=True)
    code = pytest.main(["-p", "no:cacheprovider", *rest])
    if code == NO_TESTS_COLLECTED:
        print("No tests were collected: treating the empty run as a failure.", file=sys.stderr)
        return 1
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
