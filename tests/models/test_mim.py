"""METER's masked image modeling parts (Sec. 3.2, Table 10): the patch-masked vision encoder, the
in-batch-negatives head (Eq. 2) on hand-computed numbers, the discrete-code head and its tokenizer."""
from __future__ import annotations

import math

import pytest
import torch

from unimm.plugins import import_builtins
from unimm.registry import ENCODERS, HEADS


@pytest.fixture(scope="module", autouse=True)
def builtins():
    import_builtins()


def tiny_clip():
    torch.manual_seed(0)
    return ENCODERS.build({"type": "clip_vit_encoder", "image_size": 32, "patch_size": 8, "hidden_size": 16,
                           "num_layers": 3, "num_heads": 2}).eval()


def test_masked_patches_get_the_mask_embedding_before_positions():
    encoder = tiny_clip()
    assert encoder.grid == (4, 4)
    g = torch.Generator().manual_seed(1)
    image, other = torch.randn(2, 2, 3, 32, 32, generator=g)
    token = torch.randn(16, generator=g)
    none = torch.zeros(2, 16, dtype=torch.bool)
    plain = encoder(image).hidden
    masked, patches = encoder.masked_forward(image, none, token)
    torch.testing.assert_close(masked.hidden, plain)  # nothing masked: the plain forward
    torch.testing.assert_close(patches, encoder.model.patch_embed(image))  # the unmasked projections
    every = torch.ones(2, 16, dtype=torch.bool)
    first, _ = encoder.masked_forward(image, every, token)
    second, _ = encoder.masked_forward(other, every, token)
    torch.testing.assert_close(first.hidden, second.hidden)  # every patch masked: the picture is gone
    assert not torch.allclose(first.hidden[:, 1], first.hidden[:, 2])  # ... but the positions are not
    some = torch.zeros(2, 16, dtype=torch.bool)
    some[0, 3] = True
    partly, _ = encoder.masked_forward(image, some, token)
    assert not torch.allclose(partly.hidden[0], plain[0]) and torch.allclose(partly.hidden[1], plain[1])
    with pytest.raises(ValueError, match="patch mask is"):
        encoder.masked_forward(image, torch.zeros(2, 9, dtype=torch.bool), token)


def test_in_batch_negatives_is_eq_2_over_every_patch_of_the_batch():
    torch.manual_seed(0)
    head = HEADS.build({"type": "mim_in_batch_head", "input_size": 6, "vision_size": 4})
    g = torch.Generator().manual_seed(2)
    states, patches = torch.randn(2, 3, 6, generator=g), torch.randn(2, 3, 4, generator=g, requires_grad=True)
    hidden = torch.tensor([[True, False, True], [False, True, False]])
    logits, found = head(states, patches, hidden)
    assert logits.shape == (3, 6)
    total = 0.0
    for row, (k, i) in enumerate([(0, 0), (0, 2), (1, 1)]):
        h = head.proj(head.transform(states[k, i])).detach()
        scores = [float(h @ patches[kk, j].detach()) for kk in range(2) for j in range(3)]
        own = scores[k * 3 + i]
        total += -(own - math.log(sum(math.exp(v) for v in scores)))
        torch.testing.assert_close(logits[row], torch.tensor(scores), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(found["mim"], torch.tensor(total / 3), rtol=1e-5, atol=1e-5)
    found["mim"].backward()
    assert patches.grad is None or not patches.grad.any()  # the candidates are targets: no gradient
    assert head.proj.weight.grad.abs().sum() > 0


def test_random_projection_codes_hash_each_patch_and_ignore_brightness_and_contrast():
    tokenizer = ENCODERS.build({"type": "random_projection_codes", "patch_size": 8, "bits": 6, "seed": 3})
    assert tokenizer.vocab_size == 64
    g = torch.Generator().manual_seed(4)
    image = torch.randn(2, 3, 16, 24, generator=g)
    image[1, :, :8, :8] = 0.7  # one flat patch
    image[1, :, 8:, 16:] = image[0, :, 8:, 16:]  # the same patch in both pictures
    codes = tokenizer(image)
    assert codes.shape == (2, 6) and codes.dtype == torch.long and 0 <= int(codes.min()) and int(codes.max()) < 64
    assert codes[1, 0] == 0 and codes[0, 5] == codes[1, 5]
    torch.testing.assert_close(tokenizer(2.5 * image + 1.0), codes)  # centred and normalised per patch
    again = ENCODERS.build({"type": "random_projection_codes", "patch_size": 8, "bits": 6, "seed": 3})
    torch.testing.assert_close(again(image), codes)  # the seed fixes the codes
    assert len(set(tokenizer(torch.randn(4, 3, 64, 64, generator=g)).flatten().tolist())) > 30  # codes spread
    assert not dict(tokenizer.state_dict())  # nothing goes into a checkpoint


def test_the_code_head_predicts_the_masked_patches_codes():
    torch.manual_seed(0)
    head = HEADS.build({"type": "mim_code_head", "input_size": 6, "vision_size": 4,
                        "tokenizer": {"type": "random_projection_codes", "patch_size": 8, "bits": 4}})
    g = torch.Generator().manual_seed(5)
    image, states = torch.randn(2, 3, 16, 16, generator=g), torch.randn(2, 4, 6, generator=g)
    hidden = torch.tensor([[True, False, False, True], [False, False, True, False]])
    logits, found = head(states, None, hidden, image)
    codes = head.tokenizer(image)
    assert logits.shape == (3, 16)
    torch.testing.assert_close(found["mim"], torch.nn.functional.cross_entropy(logits, codes[hidden]))
    with pytest.raises(ValueError, match="same patch grid"):
        head(torch.randn(2, 9, 6), None, torch.ones(2, 9, dtype=torch.bool), image)
