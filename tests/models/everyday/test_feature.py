"""The committed feature reads the world's own renders: the asked object ranks first among all 1,138."""

from __future__ import annotations

import random

from models.everyday.evaluate import _render_lookup, draw_renders, evaluate
from models.everyday.feature import rank
from models.everyday.heldout import heldout_scenes, probe_subset
from models.everyday.world import render


def test_real_renders_rank_their_own_object_first() -> None:
    single, pairs = heldout_scenes(probe_subset())
    ranks = []
    for i, scene in enumerate((*single[:12], *pairs[:4])):
        image = render(scene, random.Random(i))
        ranks += [rank(image, item, scene.background) for item in scene.items]
    assert sum(r == 0 for r in ranks) >= 0.9 * len(ranks) and max(ranks) < 5, ranks


def test_the_evaluator_scores_renders_at_the_ceiling() -> None:
    pool = probe_subset()
    results = evaluate(draw_renders(_render_lookup(pool)), pool, limit=6)
    assert results["single"]["pool_top1"] == 100.0 and results["single"]["top5"] == 100.0
    assert results["single"]["background"] == 100.0 and results["single"]["position"] >= 83.0
    assert results["pairs"]["both_top5"] == 100.0 and results["free_words"]["pool_top5"] == 100.0
