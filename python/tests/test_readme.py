"""The README's 10-line PyTorch example: it is in the README verbatim, and it runs and computes
CLIP's loss (checked against a plain-PyTorch formulation)."""

import math
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

SNIPPET = """\
import torch
from flashnce.torch import ClipLoss

loss_fn = ClipLoss(init_temperature=0.07, max_logit_scale=100.0)  # learnable logit_scale
image = torch.randn(512, 256, requires_grad=True)  # image embeddings (CPU or CUDA)
text = torch.randn(512, 256, requires_grad=True)  # the matching text embeddings
opt = torch.optim.AdamW([image, text, *loss_fn.parameters()], lr=1e-3)
loss = loss_fn(image, text)  # symmetric InfoNCE; the 512x512 logits are never stored
loss.backward()  # gradients for image, text and loss_fn.logit_scale
opt.step()
"""


def test_snippet_is_ten_lines():
    assert len(SNIPPET.splitlines()) == 10


def test_python_readme_holds_the_snippet_verbatim():
    text = (ROOT / "python" / "README.md").read_text(encoding="utf-8")
    assert "```python\n" + SNIPPET + "```" in text


def test_top_readme_holds_the_snippet_verbatim():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "```python\n" + SNIPPET + "```" in text


def test_snippet_runs_and_computes_clip_loss():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    torch.manual_seed(0)
    scope = {}
    exec(compile(SNIPPET, "README snippet", "exec"), scope)
    loss, loss_fn = scope["loss"], scope["loss_fn"]
    assert loss_fn.logit_scale.grad is not None and torch.isfinite(loss_fn.logit_scale.grad)
    assert scope["image"].grad.shape == (512, 256)

    torch.manual_seed(0)  # the same draws as the snippet's, before opt.step() moved them
    image, text = torch.randn(512, 256).double(), torch.randn(512, 256).double()
    logits = (1 / 0.07) * F.normalize(image, dim=1) @ F.normalize(text, dim=1).T
    t = torch.arange(512)
    want = 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t))
    assert math.isclose(loss.item(), want.item(), rel_tol=1e-5)
