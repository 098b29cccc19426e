"""Distribution augmentation's transforms: the eight symmetries of a square (or the four flips),
transform 0 the identity, and the draw's share of untouched images."""

import pytest
import torch

from rnngen.training.augment import augment, augmentation_count, inverse_transform, transform


def _asymmetric(size=(4, 4)):
    return torch.arange(size[0] * size[1]).view(1, 1, *size)


@pytest.mark.parametrize("kind", ["flips", "dihedral"])
def test_transforms_are_distinct_symmetries_and_zero_is_the_identity(kind):
    x = _asymmetric()
    images = [transform(x, kind, k) for k in range(augmentation_count(kind))]
    assert torch.equal(images[0], x)
    assert len({tuple(im.flatten().tolist()) for im in images}) == len(images)  # all different
    for k, im in enumerate(images):  # each only moves pixels, and inverse_transform puts them back
        assert torch.equal(im.flatten().sort().values, x.flatten())
        assert torch.equal(inverse_transform(im, kind, k), x)
    if kind == "dihedral":  # quarter turns (1: counter-clockwise), then a mirror
        assert torch.equal(images[1][0, 0, 0], x[0, 0, :, -1])
        assert torch.equal(images[4], x.flip(-1))
        assert torch.equal(images[6], x.flip(-2))
    else:
        assert torch.equal(images[1], x.flip(-1)) and torch.equal(images[3], x.flip(-1, -2))


def test_augment_draws_the_identity_at_its_rate_and_applies_what_it_reports():
    images = torch.randint(0, 17, (4000, 1, 8, 8))
    out, which = augment(images, "dihedral", 0.3, torch.Generator().manual_seed(0))
    assert abs((which == 0).float().mean().item() - 0.3) < 0.03
    counts = torch.bincount(which[which > 0], minlength=8)[1:]
    assert counts.min() > 0.8 * counts.float().mean()  # the other seven alike
    for i in (0, 1, 2, 3, 17, 123):
        assert torch.equal(out[i], transform(images[i:i + 1], "dihedral", int(which[i]))[0])
    same, none = augment(images, "dihedral", 1.0, torch.Generator())
    assert torch.equal(same, images) and not none.any()
    kept, zeros = augment(images, "none", 0.0, torch.Generator())
    assert torch.equal(kept, images) and not zeros.any()
    _, all_moved = augment(images, "flips", 0.0, torch.Generator())
    assert all_moved.min() >= 1 and all_moved.max() <= 3


def test_bad_augmentation_arguments():
    with pytest.raises(ValueError, match="augment must be one of"):
        augmentation_count("rotate")
    with pytest.raises(ValueError, match="square"):
        transform(_asymmetric((2, 3)), "dihedral", 1)
    with pytest.raises(ValueError, match="index must be in 0..3"):
        transform(_asymmetric(), "flips", 4)
    assert transform(_asymmetric((2, 3)), "flips", 3).shape == (1, 1, 2, 3)
