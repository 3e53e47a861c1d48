"""KEEL_TEST_TIME_SCALE, read one way by run-guest.py (and through it run-state.py) and by
the lab's guests tier (tests/lab/guests_tier.py): how much longer than on a host's own KVM
each time limit of a test may take. The nested lab sets it, since its emulated CPU runs the
guests and keel-vmm several times slower (docs/testing.md). A module, not a test: imported
from this directory (the runners' own, first on their sys.path; guests_tier.py adds it)."""
import os


def time_scale(prog):
    """The scale (default 1); PROG's exit with a clear message when it is not a number from
    1 to 100."""
    v = os.environ.get("KEEL_TEST_TIME_SCALE", "1")
    try:
        scale = float(v)
    except ValueError:
        scale = 0
    if not 1 <= scale <= 100:  # also refuses nan
        raise SystemExit(f"{prog}: KEEL_TEST_TIME_SCALE={v!r} is not a number from 1 to 100")
    return scale
