from __future__ import annotations

import math

from retail_recommendation.evaluation import _score, leave_last_out
from retail_recommendation.history import History, Purchase


def test_leave_last_out_holds_out_each_members_latest_purchase():
    history = History.from_purchases([
        Purchase('a', 'X', 30.0, 1, 1.0), Purchase('a', 'Y', 10.0, 1, 1.0),
        Purchase('a', 'Z', 20.0, 1, 1.0), Purchase('b', 'X', 5.0, 1, 1.0),
        Purchase('c', 'Y', 1.0, 1, 1.0), Purchase('c', 'GONE', 9.0, 1, 1.0)])
    split = leave_last_out(history, {'X', 'Y', 'Z'})
    assert split.held_out == {'a': 'X'}  # b has one purchase; c's only other row is not in the catalog
    assert sorted(zip(split.train.customer_ids, split.train.skus)) == [
        ('a', 'Y'), ('a', 'Z'), ('b', 'X'), ('c', 'Y')]


def test_metrics_count_hits_rank_and_coverage():
    held = {'a': 'X', 'b': 'Y', 'c': 'Z'}
    lists = {'a': ['X', 'Q'], 'b': ['Q', 'Y'], 'c': ['Q', 'R']}
    m = _score('m', lists, held, n_products=8)
    assert math.isclose(m.hit_rate, 2 / 3)
    assert math.isclose(m.ndcg, (1 + 1 / math.log2(3)) / 3)
    assert math.isclose(m.coverage, 4 / 8)
    assert m.members == 3
