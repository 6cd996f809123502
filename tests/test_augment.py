"""Augmentation and the robustness perturbations: what each does to the ink, on any device, from a seed."""

import pytest
import torch

from crossmodal.data.augment import augment, blurred, thicker, thinner, vary_strokes


def stroke():
    x = torch.zeros(2, 1, 28, 28)
    x[:, :, 8:20, 12:15] = 1.0  # a vertical bar 3 pixels wide
    return x


def test_thicker_dilates_with_a_3x3_window():
    x, y = stroke(), thicker(stroke())
    assert torch.all(y >= x)  # nothing removed
    assert y[0, 0].sum() == 14 * 5  # the 12×3 bar grows one pixel on every side
    assert y.shape == x.shape


def test_thinner_erodes_with_a_2x2_window():
    x, y = stroke(), thinner(stroke())
    assert torch.all(y <= x)  # nothing added
    assert y[0, 0].sum() == 11 * 2  # the 12×3 bar loses a row and a column
    assert y.shape == x.shape


def test_blurred_is_a_gaussian_that_keeps_the_ink():
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 14, 14] = 1.0
    y = blurred(x, sigma=1.0)
    assert y.sum() == pytest.approx(1.0, abs=1e-6)  # normalised kernel, far from the border
    assert y[0, 0, 14, 15] / y[0, 0, 14, 14] == pytest.approx(torch.exp(torch.tensor(-0.5)).item(), rel=1e-5)
    assert torch.allclose(y[0, 0], y[0, 0].T, atol=1e-7)  # separable, the same along both axes


def test_vary_strokes_changes_the_chosen_share_and_nothing_else():
    x = stroke().repeat(500, 1, 1, 1)  # (1000, 1, 28, 28)
    y = vary_strokes(x, torch.Generator().manual_seed(0))
    changed = (y != x).flatten(1).any(dim=1).float().mean().item()
    assert 0.5 < changed < 0.7  # p = 0.2 each for thicker, thinner, blurred
    assert torch.equal(vary_strokes(x, torch.Generator().manual_seed(0), p=(0.0, 0.0, 0.0)), x)


def test_augment_is_reproducible_from_a_seed_and_strokes_are_opt_in():
    x = stroke()
    a = augment(x, torch.Generator().manual_seed(3), strokes=True)
    b = augment(x, torch.Generator().manual_seed(3), strokes=True)
    assert torch.equal(a, b)
    plain = augment(x, torch.Generator().manual_seed(3))
    assert plain.shape == x.shape and not torch.equal(plain, x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_augment_on_the_gpu_matches_the_cpu():
    x = stroke()
    on_cpu = augment(x, torch.Generator().manual_seed(1), strokes=True)
    on_gpu = augment(x.cuda(), torch.Generator().manual_seed(1), strokes=True)
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-5)


def test_elastic_warps_smoothly_from_a_seed_and_costs_nothing_when_off():
    from crossmodal.data.augment import elastic_field

    field = elastic_field(200, 28, 28, 34.0, torch.Generator().manual_seed(0))
    assert field.shape == (200, 2, 28, 28)
    assert 0.5 < field.abs().mean() < 2.0  # about a pixel, as Simard et al.'s setting gives
    assert (field[:, :, 1:] - field[:, :, :-1]).abs().mean() < 0.3 * field.abs().mean()  # neighbours move together
    x = stroke()
    warped = augment(x, torch.Generator().manual_seed(3), elastic=34.0)
    assert torch.equal(warped, augment(x, torch.Generator().manual_seed(3), elastic=34.0))
    assert not torch.equal(warped, augment(x, torch.Generator().manual_seed(3)))
    plain = augment(x, torch.Generator().manual_seed(3))
    assert torch.equal(augment(x, torch.Generator().manual_seed(3), elastic=0.0), plain)
