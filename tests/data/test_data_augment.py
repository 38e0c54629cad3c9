"""Batched pad-crop + flip and normalization."""

import pytest
import torch
import torch.nn.functional as F

from resnet_lab.data import augment_batch, denormalize, normalize, pad_crop_flip

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _reference(x, pad, top, left, flip, mode):
    """The obvious per-image loop, to check the vectorised version against."""
    padded = F.pad(x, (pad,) * 4, mode="reflect" if mode == "reflect" else "constant")
    h, w = x.shape[2:]
    out = []
    for i in range(x.shape[0]):
        crop = padded[i, :, top[i] : top[i] + h, left[i] : left[i] + w]
        out.append(crop.flip(-1) if flip[i] else crop)
    return torch.stack(out)


@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_pad_crop_flip_matches_a_per_image_loop(mode):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 10, 12, generator=g)
    top = torch.randint(0, 9, (16,), generator=g)
    left = torch.randint(0, 9, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    assert torch.equal(pad_crop_flip(x, 4, top, left, flip, mode), _reference(x, 4, top, left, flip, mode))


def test_centre_offsets_without_flip_are_the_identity():
    x = torch.rand(5, 2, 8, 8)
    four = torch.full((5,), 4)
    assert torch.equal(pad_crop_flip(x, 4, four, four, torch.zeros(5, dtype=torch.bool)), x)


@pytest.mark.parametrize("device", DEVICES)
def test_shape_dtype_device_are_kept(device):
    x = torch.rand(7, 3, 32, 32, device=device)
    for dtype in (torch.float32, torch.bfloat16, torch.uint8):  # uint8: the big datasets as kept on the device
        out = augment_batch(x.to(dtype) if dtype != torch.uint8 else (x * 255).to(dtype))
        assert out.shape == x.shape and out.dtype == dtype and out.device == x.device


def test_flip_really_flips():
    x = torch.rand(6, 3, 9, 9)
    assert torch.equal(augment_batch(x, pad=0, flip_p=1.0), x.flip(-1))
    assert torch.equal(augment_batch(x, pad=0, flip_p=0.0), x)
    # with the usual p=0.5 some images are flipped and some are not, each one exactly
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 6, 6)
    out = augment_batch(x, pad=0, generator=g)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert (flipped | kept).all() and 10 < flipped.sum() < 54


def test_crop_offsets_differ_per_image():
    # one distinctive image repeated: each output reveals the offset it was cropped at
    img = torch.arange(1, 8 * 8 + 1, dtype=torch.float32).view(1, 1, 8, 8)
    x = img.expand(64, 1, 8, 8).contiguous()
    out = augment_batch(x, pad=2, generator=torch.Generator().manual_seed(0), flip_p=0.0, mode="zeros")
    padded = F.pad(img, (2, 2, 2, 2))[0, 0]
    candidates = {(t, l): padded[t : t + 8, l : l + 8] for t in range(5) for l in range(5)}
    offsets = []
    for o in out[:, 0]:
        hits = [k for k, c in candidates.items() if torch.equal(o, c)]
        assert len(hits) == 1  # every output is exactly one legal crop
        offsets.append(hits[0])
    assert len(set(offsets)) > 12  # 64 images spread over the 25 offsets


def test_same_generator_state_gives_the_same_batch():
    x = torch.rand(32, 3, 16, 16)
    a = augment_batch(x, generator=torch.Generator().manual_seed(5))
    b = augment_batch(x, generator=torch.Generator().manual_seed(5))
    c = augment_batch(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(1)
    d = augment_batch(x)  # no generator: the global RNG of x's device
    torch.manual_seed(1)
    assert torch.equal(d, augment_batch(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batch_with_cpu_or_cuda_generator():
    x = torch.rand(32, 3, 16, 16)
    on_cpu = augment_batch(x, generator=torch.Generator().manual_seed(3))
    on_gpu = augment_batch(x.cuda(), generator=torch.Generator().manual_seed(3))  # CPU draws, GPU gathers
    assert on_gpu.device.type == "cuda" and torch.equal(on_gpu.cpu(), on_cpu)
    g = torch.Generator(device="cuda").manual_seed(3)
    a = augment_batch(x.cuda(), generator=g)
    b = augment_batch(x.cuda(), generator=torch.Generator(device="cuda").manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_augmenting_uint8_then_converting_equals_converting_then_augmenting(device, mode):
    """Pad-crop-flip only moves pixels, so it commutes with the uint8 -> float conversion: training batches of a
    uint8 dataset (augmented before converting, a quarter of the bytes) are those of its float twin."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (24, 3, 12, 12), dtype=torch.uint8, generator=g).to(device)
    a = augment_batch(x, generator=torch.Generator().manual_seed(7), mode=mode)
    b = augment_batch(x.float() / 255, generator=torch.Generator().manual_seed(7), mode=mode)
    assert a.dtype == torch.uint8 and torch.equal(a.float() / 255, b)


def test_bad_arguments():
    x = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="pad=4 is out of range; allowed 0..3"):
        augment_batch(x, pad=4)
    assert augment_batch(x, pad=4, mode="zeros").shape == x.shape  # zero padding has no such limit
    with pytest.raises(ValueError, match="mode='wrap'"):
        augment_batch(x, mode="wrap")
    with pytest.raises(ValueError, match="flip_p"):
        augment_batch(x, flip_p=2.0)


def test_normalize_standardizes_and_denormalize_inverts():
    x = torch.rand(50, 3, 8, 8) * torch.tensor([0.5, 1.0, 0.2]).view(1, 3, 1, 1)
    mean = x.mean(dim=(0, 2, 3)).tolist()
    std = x.std(dim=(0, 2, 3), correction=0).tolist()
    z = normalize(x, mean, std)
    assert z.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (z.std(dim=(0, 2, 3), correction=0) - 1).abs().max() < 1e-5
    assert torch.allclose(denormalize(z, mean, std), x, atol=1e-6)
    assert torch.allclose(normalize(x, torch.tensor(mean), torch.tensor(std)), z)
    with pytest.raises(ValueError, match="one value per channel"):
        normalize(x, (0.5,), (0.2,))
