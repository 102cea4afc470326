"""tlcore.ship.imagenet: the untouched ImageNet model needs pretrained weights."""
from __future__ import annotations

import pytest

from tlcore.core.errors import TLCoreError
from tlcore.ship.imagenet import imagenet_weights


def test_imagenet_weights_refuses_no_pretraining():
    with pytest.raises(TLCoreError, match="no pretrained weights"):
        imagenet_weights("none")
    assert imagenet_weights("imagenet") == "imagenet"
