"""Judge a published claim "group A scores above group B" against the seed noise of our runs.

The rule, stated on every results page: with d the difference of the two groups' means and
SE = sqrt(s_A^2/n_A + s_B^2/n_B) (sample standard deviations over seeds), the claim is
*supported* when d > K*SE, *contradicted* when d < -K*SE, and *cannot decide* otherwise or with fewer
than two completed runs per group. K = 2: with 3 seeds a group this is a lenient test (Welch's t = 2 at
about 4 degrees of freedom is p = 0.12 two-sided), so "supports" means "beyond the seed noise we
measured", not proof; a single-run published number has no noise estimate at all.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

K = 2.0
SUPPORTS, CONTRADICTS, UNDECIDED = "supports", "contradicts", "cannot decide"
VERDICTS = (SUPPORTS, CONTRADICTS, UNDECIDED)
RULE = (f"A claim \"A > B\" is **supported** when mean(A) - mean(B) > {K:g} x SE and **contradicted** when it is "
        f"< -{K:g} x SE, with SE = sqrt(s_A²/n_A + s_B²/n_B) over the seeds' completed runs (s: sample std); "
        f"otherwise, or with fewer than 2 completed runs in a group, these runs **cannot decide** it. With 3 seeds "
        f"a group this is a lenient test (Welch's t = 2 at about 4 degrees of freedom is p = 0.12, two-sided), so "
        f"\"supports\" means \"beyond the seed noise measured here\", not proof.")


@dataclass(frozen=True)
class Judgement:
    verdict: str
    difference: float | None  # mean(higher) - mean(lower)
    se: float | None


def judge(higher: list[float], lower: list[float]) -> Judgement:
    """The verdict on "higher > lower" from each group's per-seed values."""
    if len(higher) < 2 or len(lower) < 2:
        difference = statistics.fmean(higher) - statistics.fmean(lower) if higher and lower else None
        return Judgement(UNDECIDED, difference, None)
    difference = statistics.fmean(higher) - statistics.fmean(lower)
    se = math.sqrt(statistics.variance(higher) / len(higher) + statistics.variance(lower) / len(lower))
    if difference > K * se and difference > 0:
        return Judgement(SUPPORTS, difference, se)
    if difference < -K * se and difference < 0:
        return Judgement(CONTRADICTS, difference, se)
    return Judgement(UNDECIDED, difference, se)
