"""Every policy variant still computes its committed reference loss and prediction (regenerate with
``python tests/make_reference.py`` when a change of outputs is intended)."""

from pathlib import Path

import pytest
import test_policies as contract
import torch
from safetensors.torch import load_file

REFERENCE = Path(__file__).parent / "reference"
store = contract.store


@pytest.mark.parametrize("variant", contract.VARIANTS)
def test_outputs_match_the_reference(variant, store):
    path = REFERENCE / f"{variant}.safetensors"
    assert path.is_file(), f"no reference for '{variant}': run python tests/make_reference.py"
    saved = load_file(path)
    policy, _ = contract.build(variant, store)
    policy.load_state_dict(
        {k.removeprefix("weights."): v for k, v in saved.items() if k.startswith("weights.")}, strict=True
    )
    policy.eval()
    batch = {k.removeprefix("batch."): v for k, v in saved.items() if k.startswith("batch.")}
    torch.manual_seed(1)
    with torch.no_grad():
        loss = policy.loss(batch)
    prediction = policy.predict(
        {k: v for k, v in batch.items() if k.startswith("observation.")}, noise=saved.get("noise")
    )
    torch.testing.assert_close(loss, saved["loss"], rtol=1e-4, atol=1e-5)
    # samplers iterate: last-bit kernel differences between CPUs add up (diffusion-unet measured 3.8e-5 off
    # on an AMD EPYC against the machine that wrote the reference); a changed output moves far more
    torch.testing.assert_close(prediction, saved["prediction"], rtol=1e-3, atol=1e-4)
