"""Opening a confusion matrix: the images behind a cell, the non-empty cells, where two models disagree, and
McNemar's exact test (checked against scipy's binomial test, which it equals for p = 1/2)."""

import pytest
import torch

from resnet_lab.analysis.predict import (Evaluation, cell_indices, disagreements, mcnemar_exact, nonempty_cells)


def _evaluation(answers: list[tuple[int, int, float]], k: int = 3) -> Evaluation:
    """An Evaluation from (true class, predicted class, confidence) per image: the prediction gets the confidence,
    the rest is spread evenly over the other classes (so the prediction is the argmax for confidence > 1/k)."""
    probs = torch.empty(len(answers), k)
    for i, (_, pred, conf) in enumerate(answers):
        probs[i] = (1 - conf) / (k - 1)
        probs[i, pred] = conf
    return Evaluation(probs=probs, labels=torch.tensor([t for t, _, _ in answers]))


# true, predicted, confidence
ANSWERS = [(0, 0, 0.9), (0, 1, 0.5), (1, 1, 0.8), (0, 1, 0.7), (2, 0, 0.6), (1, 1, 0.95), (0, 1, 0.7), (2, 2, 0.4)]


def test_cell_indices_are_the_cells_images_most_confident_first():
    ev = _evaluation(ANSWERS)
    # true 0 predicted 1: positions 1 (0.5), 3 (0.7), 6 (0.7): the two 0.7s first, in position order, then 0.5
    assert cell_indices(ev, 0, 1) == [3, 6, 1]
    assert cell_indices(ev, 1, 1) == [5, 2]
    assert cell_indices(ev, 1, 0) == []
    cm = ev.confusion()
    seen = []
    for t in range(3):
        for p in range(3):
            cell = cell_indices(ev, t, p)
            assert len(cell) == int(cm[t, p])
            assert all(ANSWERS[i][0] == t and ANSWERS[i][1] == p for i in cell)
            seen += cell
    assert sorted(seen) == list(range(len(ANSWERS)))  # every image in exactly one cell


@pytest.mark.parametrize("cell", [(3, 0), (0, -1), (True, 0), (0, 1.0)])
def test_cell_indices_refuse_a_cell_outside_the_matrix(cell):
    with pytest.raises(ValueError):
        cell_indices(_evaluation(ANSWERS), *cell)


def test_nonempty_cells_list_mistakes_biggest_first_then_the_diagonal():
    ev = _evaluation(ANSWERS)
    cells = nonempty_cells(ev)
    assert [(c.true, c.pred, c.count) for c in cells] == [(0, 1, 3), (2, 0, 1), (0, 0, 1), (1, 1, 2), (2, 2, 1)]
    assert [c.mistake for c in cells] == [True, True, False, False, False]
    assert sum(c.count for c in cells) == len(ANSWERS)


def test_disagreements_split_the_images_as_a_direct_count_does():
    a = _evaluation(ANSWERS)
    # b: right where a is wrong at 1 and 4, wrong where a is right at 0 and 5, like a elsewhere
    b_answers = list(ANSWERS)
    b_answers[1] = (0, 0, 0.6)
    b_answers[4] = (2, 2, 0.5)
    b_answers[0] = (0, 2, 0.55)
    b_answers[5] = (1, 0, 0.9)
    b = _evaluation(b_answers)
    d = disagreements(a, b)
    right_a = [t == p for t, p, _ in ANSWERS]
    right_b = [t == p for t, p, _ in b_answers]
    assert sorted(d.a_only) == [i for i in range(8) if right_a[i] and not right_b[i]] == [0, 5]
    assert sorted(d.b_only) == [i for i in range(8) if right_b[i] and not right_a[i]] == [1, 4]
    assert d.a_only == (5, 0)  # b's surest mistake first (0.9, then 0.55)
    assert d.b_only == (4, 1)  # a's surest mistake first (0.6, then 0.5)
    assert d.both_right == sum(x and y for x, y in zip(right_a, right_b))
    assert d.both_wrong == sum(not x and not y for x, y in zip(right_a, right_b))
    assert d.total == len(ANSWERS)
    swapped = disagreements(b, a)
    assert (swapped.a_only, swapped.b_only) == (d.b_only, d.a_only)
    assert disagreements(a, a).a_only == () and disagreements(a, a).p_value == 1.0


def test_disagreements_refuse_evaluations_of_other_images():
    a = _evaluation(ANSWERS)
    with pytest.raises(ValueError):
        disagreements(a, _evaluation(ANSWERS[:-1]))
    other = list(ANSWERS)
    other[0] = (1, 0, 0.9)
    with pytest.raises(ValueError):
        disagreements(a, _evaluation(other))


def test_mcnemar_exact_by_hand_and_against_scipy():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # 2 * P[X = 0], X ~ Binomial(5, 1/2)
    assert mcnemar_exact(1, 5) == pytest.approx(2 * 7 / 64)  # 2 * (1 + 6) / 2^6
    assert mcnemar_exact(5, 1) == mcnemar_exact(1, 5)
    stats = pytest.importorskip("scipy.stats")
    for n_ab, n_ba in [(37, 12), (12, 37), (10, 11), (0, 20), (1500, 1400), (3000, 10)]:
        expected = stats.binomtest(min(n_ab, n_ba), n_ab + n_ba, 0.5).pvalue
        assert mcnemar_exact(n_ab, n_ba) == pytest.approx(expected, rel=1e-9, abs=1e-300)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)
