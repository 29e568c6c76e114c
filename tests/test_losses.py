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
