"""Our InceptionV3 is torchvision's, tensor for tensor, and builds without importing torchvision."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from fiftyone_genre.features.backbones import _construct, _seeded, build_body, build_visual_backbone

torchvision_models = pytest.importorskip("torchvision.models")


def torchvision_inception(seed: int, aux_logits: bool) -> torch.nn.Module:
    return _seeded(seed, lambda: torchvision_models.get_model(
        "inception_v3", weights=None, transform_input=True, aux_logits=aux_logits, init_weights=True))


def test_seeded_random_init_is_torchvisions_bit_for_bit():
    """--weights none keeps computing the features already in users' caches."""
    ours = _seeded(7, lambda: _construct("inception_v3", pretrained_layout=False)).state_dict()
    theirs = torchvision_inception(7, aux_logits=False).state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_torchvision_state_dict_loads_and_gives_the_same_outputs(tmp_path):
    """A torchvision checkpoint (with AuxLogits and fc) loads as --weights PATH; the pool vectors match."""
    tv = torchvision_inception(3, aux_logits=True).eval()
    path = tmp_path / "inception_v3_imagenet.pth"
    torch.save(tv.state_dict(), path)
    body = build_body("inception_v3", str(path)).eval()
    tv.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 299, 299)
    with torch.inference_mode():
        assert torch.equal(body(x), tv(x))
        small = torch.randn(1, 3, 139, 161)  # any size down to the 75 px minimum
        assert torch.equal(body(small), tv(small))


def test_encoder_under_channels_last_bf16_matches_torchvision():
    """The extraction engine's layout and precision change nothing between the two networks."""
    enc = build_visual_backbone("inception_v3", weights="none", init_seed=5, channels_last=True)
    tv = torchvision_inception(5, aux_logits=False).eval().to(memory_format=torch.channels_last)
    tv.fc = torch.nn.Identity()
    frames = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = enc(frames), tv(enc.preprocess(frames))
    assert torch.equal(ours, theirs)


def test_building_inception_imports_neither_torchvision_nor_dynamo():
    """The reason the network lives here: those two imports cost a small run 1.3-1.8 s."""
    code = ("import sys\nfrom fiftyone_genre.features.extractor import FeatureExtractor\n"
            "from fiftyone_genre.config import FeaturesConfig\n"
            "FeatureExtractor(FeaturesConfig(backbone='inception_v3', weights='none'))\n"
            "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", ["inception_v3", "mobilenet_v3_small", "efficientnet_b0"])
def test_loaded_weights_are_the_parameters_as_float32(tmp_path, name):
    """Weights are loaded into a network built without init; nothing is left unset, half precision becomes float32."""
    if name == "inception_v3":
        theirs = torchvision_inception(0, aux_logits=True).eval()
    else:
        theirs = torchvision_models.get_model(name, weights=None).eval()
    path = tmp_path / f"{name}.pth"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in theirs.state_dict().items()}, path)
    body = build_body(name, str(path))
    for k, t in [*body.named_parameters(), *body.named_buffers()]:
        assert not t.is_meta and (t.dtype == torch.float32 or not t.is_floating_point()), k
    expected = theirs.state_dict()
    assert all(torch.equal(v, expected[k].half().float()) for k, v in body.state_dict().items()
               if v.is_floating_point())
