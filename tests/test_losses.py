import numpy as np
import torch

from emotionlib.losses import bce_loss, focal_loss, make_loss, positive_weights


def direct_focal(logits, y, alpha, gamma):
    """The seed's formula written out: -alpha (1 - p_t)^gamma log(p_t), averaged."""
    p = 1 / (1 + np.exp(-logits))
    p_t = np.where(y == 1, p, 1 - p)
    return float(np.mean(-alpha * (1 - p_t) ** gamma * np.log(p_t)))


def test_focal_matches_the_formula_on_random_inputs():
    rng = np.random.default_rng(0)
    for alpha, gamma in [(1.0, 2.0), (0.25, 2.0), (0.5, 1.0), (2.0, 3.5)]:
        logits = rng.normal(0, 3, size=(32, 6))
        y = rng.integers(0, 2, size=(32, 6)).astype(float)
        got = focal_loss(torch.tensor(logits), torch.tensor(y), alpha=alpha, gamma=gamma).item()
        assert np.isclose(got, direct_focal(logits, y, alpha, gamma), rtol=1e-6)


def test_focal_with_gamma_0_alpha_1_is_bce():
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(64, 6, generator=g), torch.randint(0, 2, (64, 6), generator=g).float()
    assert torch.allclose(focal_loss(logits, y, alpha=1.0, gamma=0.0), bce_loss(logits, y))
    assert torch.allclose(bce_loss(logits, y), torch.nn.BCEWithLogitsLoss()(logits, y))


def test_masked_labels_do_not_count():
    logits = torch.tensor([[5.0, -5.0], [0.0, 0.0]])
    y = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    mask = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert torch.isclose(make_loss("bce")(logits, y, mask), bce_loss(logits[1:], y[1:]))
    assert torch.isclose(make_loss("focal", 1.0, 2.0)(logits, y, mask), focal_loss(logits[1:], y[1:]))


def test_positive_weights_from_label_frequencies():
    y = np.array([[1, 0], [0, 0], [0, 0], [0, 1]], dtype=float)
    mask = np.array([[1, 1], [1, 1], [1, 1], [1, 0]], dtype=float)  # last row: label 2 absent
    w = positive_weights(y, mask)
    assert w.tolist() == [3.0, 1.0]  # 3 negatives / 1 positive; no positives where present -> clipped at 1


def test_class_balanced_weights_follow_the_effective_number_of_positives():
    from emotionlib.losses import class_balanced_weights

    y = np.zeros((1000, 4))
    y[:500, 0], y[:50, 1], y[:5, 2] = 1, 1, 1  # label 3 has no positives
    mask = np.ones_like(y)
    mask[:, 3] = 0  # and is absent from the language
    w = class_balanced_weights(y, mask, beta=0.999)
    eff = (1 - 0.999 ** np.array([500, 50, 5])) / (1 - 0.999)
    expected = (1 / eff) / (1 / eff).mean()
    assert np.allclose(w[:3], expected) and w[3] == 1.0
    assert w[2] > w[1] > w[0] and np.isclose(w[:3].mean(), 1.0)


def test_difficulty_weights_favour_the_labels_with_low_validation_f1():
    from emotionlib.losses import difficulty_weights

    w = difficulty_weights(np.array([0.9, 0.5, 0.1, 0.0]), np.array([True, True, True, False]), tau=1.0)
    assert w[2] > w[1] > w[0] and np.isclose(w[:3].mean(), 1.0) and w[3] == 1.0
    assert np.allclose(difficulty_weights(np.array([0.2, 0.8]), np.array([True, True]), tau=0.0), 1.0)


def test_label_weights_scale_each_labels_cells_and_are_read_at_every_call():
    rng = np.random.default_rng(1)
    logits, y = torch.tensor(rng.normal(size=(8, 3))), torch.tensor(rng.integers(0, 2, size=(8, 3)).astype(float))
    mask = torch.ones(8, 3)
    mask[:4, 2] = 0
    weights = torch.tensor([1.0, 1.0, 1.0])
    loss = make_loss("bce", label_weights=weights)
    assert torch.isclose(loss(logits, y, mask), bce_loss(logits, y, mask))
    weights.copy_(torch.tensor([2.0, 0.5, 0.5]))  # a dynamic scheme updates the tensor in place
    per = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    expected = (per * weights * mask).sum() / mask.sum()
    assert torch.isclose(loss(logits, y, mask), expected)
    focal = make_loss("focal", label_weights=weights)(logits, y, mask)
    assert torch.isclose(focal, focal_loss(logits, y, mask, label_weights=weights))
