"""The one lifecycle model every resource kind's ``states`` module builds on."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from opensage.services import lifecycle
from opensage.services.autoscaling import states as autoscaling
from opensage.services.endpoints import states as endpoints
from opensage.services.training import states as training
from opensage.services.transform import states as transform
from opensage.services.tuning import states as tuning


class Light(StrEnum):
    RED = "Red"
    GREEN = "Green"
    AMBER = "Amber"


TABLE = lifecycle.Lifecycle("a light", {Light.RED: {Light.GREEN}, Light.GREEN: {Light.AMBER},
                                        Light.AMBER: {Light.RED}})


def test_moves_in_the_table_pass_and_others_raise_naming_the_resource() -> None:
    assert TABLE.can_move(Light.RED, Light.GREEN)
    assert not TABLE.can_move(Light.RED, Light.AMBER)
    TABLE.check(Light.GREEN, Light.AMBER)
    with pytest.raises(lifecycle.IllegalTransition, match="a light cannot go from Red to Amber"):
        TABLE.check(Light.RED, Light.AMBER)


def test_sources_are_checked_and_sources_of_reads_the_table() -> None:
    assert TABLE.sources(Light.GREEN, Light.RED) == (Light.RED,)
    with pytest.raises(lifecycle.IllegalTransition):
        TABLE.sources(Light.GREEN, Light.RED, Light.AMBER)
    assert TABLE.sources_of(Light.RED) == (Light.AMBER,)
    assert TABLE.sources_of(Light.GREEN) == (Light.RED,)


@pytest.mark.parametrize("module", [training, tuning, endpoints, transform, autoscaling])
def test_every_kind_uses_the_one_model(module: Any) -> None:
    assert isinstance(module.LIFECYCLE, lifecycle.Lifecycle)
    assert module.IllegalTransition is lifecycle.IllegalTransition
