"""gatewatch.yaml: gate and SLO folders relative to the file, the gate token, runbooks, field errors."""

from __future__ import annotations

import pytest

from collector.config import config_from_mapping, load_config
from gatewatch.errors import ConfigError


def test_folders_are_relative_to_the_file_and_the_environment_wins(tmp_path):
    path = tmp_path / "gatewatch.yaml"
    path.write_text(
        "gates: {policies: gates, token: from-file}\nslos: slos\n"
        "runbooks: {checkout: https://wiki.example.com/checkout}\n"
    )
    config = load_config(str(path))
    assert config.gates.policies == str(tmp_path / "gates") and config.slos == str(tmp_path / "slos")
    assert config.gates.token == "from-file" and config.runbooks == {"checkout": "https://wiki.example.com/checkout"}
    assert "from-file" not in repr(config)  # secrets never appear in a repr (or a log line built from one)
    env = config_from_mapping(
        {"gates": {"token": "from-file"}},
        environ={
            "GATEWATCH_GATE_TOKEN": "from-env",
            "GATEWATCH_GATE_POLICIES": "/etc/gates",
            "GATEWATCH_SLOS": "/etc/slos",
        },
    )
    assert (env.gates.token, env.gates.policies, env.slos) == ("from-env", "/etc/gates", "/etc/slos")


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"gates": {"token": 5}}, "gates.token"),
        ({"gates": {"policies": ["a"]}}, "gates.policies"),
        ({"slos": {"a": 1}}, "slos: expected a string"),
        ({"gates": "x"}, "gates: expected a mapping"),
        ({"runbooks": {"checkout": 1}}, "runbooks.checkout: expected a string"),
    ],
)
def test_bad_values_name_the_field(raw, field):
    with pytest.raises(ConfigError, match=field):
        config_from_mapping(raw, environ={})
