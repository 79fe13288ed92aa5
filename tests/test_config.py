"""gatewatch.yaml: gate and SLO folders relative to the file, the gate token, runbooks, field errors."""

from __future__ import annotations

import re

import pytest

from collector.config import config_from_mapping, load_config, read_text, read_yaml
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


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_text_files_are_read_in_the_encoding_their_byte_order_mark_names(tmp_path, encoding):
    text = "name: café\nchecks: []\n"
    bom = {"utf-16-be": b"\xfe\xff"}.get(encoding, b"")
    (tmp_path / "p.yaml").write_bytes(bom + text.encode(encoding))
    assert read_text(tmp_path / "p.yaml", "policy") == text
    assert read_yaml(tmp_path / "p.yaml", "policy") == {"name": "café", "checks": []}


def test_a_yaml_error_is_one_line_with_where_it_is(tmp_path):
    (tmp_path / "p.yaml").write_text("name: x\nchecks: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        read_yaml(tmp_path / "p.yaml", "policy")
    assert "\n" not in str(err.value) and "not valid YAML (expected ',' or ']'" in str(err.value)
    assert "at line 3, column 1" in str(err.value) and "p.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("a" * 5000, "cannot be read (File name too long)"), ("folder", "a directory, not a file")],
)
def test_a_path_that_is_no_file_says_why(tmp_path, name, problem):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match=rf"^SLO file '.*': {re.escape(problem)}$"):
        read_text(tmp_path / name, "SLO file")
