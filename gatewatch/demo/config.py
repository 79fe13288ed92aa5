"""The demo's service and team maps in the user's configuration: merged under it, or written to ./gatewatch.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from collector.config import Config, Notify, load_config
from gatewatch.errors import ConfigError

CONFIG_FILE = "gatewatch.yaml"
HEADER = """\
# Written by `gatewatch demo`: the service of each demo CodePipeline pipeline, GitHub repository and
# PagerDuty service, and the team owning each service (CodePipeline and PagerDuty events name no team).
# Keep it while the demo's events are in the store: `gatewatch replay` re-projects them with it.
# See the README's "Configuration" section for the other settings.
"""


def merged_config(config: Config, mapping: dict) -> Config:
    """`config` with the demo's maps added underneath: the user's own entries win."""
    services, mine = mapping["services"], config.services
    return config.model_copy(
        update={
            "services": mine.model_copy(
                update={
                    "pipelines": {**services["pipelines"], **mine.pipelines},
                    "repositories": {**services["repositories"], **mine.repositories},
                    "pagerduty": {**services["pagerduty"], **mine.pagerduty},
                }
            ),
            "teams": {**mapping["teams"], **config.teams},
            "slos": config.slos or mapping["slos"],
            "gates": config.gates.model_copy(
                update={"policies": config.gates.policies or mapping["gates"]["policies"]}
            ),
            "notify": config.notify if config.notify.channels else Notify.model_validate(mapping["notify"]),
        }
    )


def absolute_folders(mapping: dict) -> dict:
    """The mapping with its demo folders as absolute paths (for a configuration file elsewhere)."""
    return {
        **mapping,
        "slos": str(Path(mapping["slos"]).resolve()),
        "gates": {"policies": str(Path(mapping["gates"]["policies"]).resolve())},
        "notify": {
            **mapping["notify"],
            "channels": {
                name: {**channel, "path": str(Path(channel["path"]).resolve())}
                for name, channel in mapping["notify"]["channels"].items()
            },
        },
    }


def write_config(path: Path, mapping: dict) -> bool:
    """Create `path` with the demo's maps; False when it already exists (never overwritten)."""
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(HEADER)
            yaml.safe_dump(mapping, out, sort_keys=False, default_flow_style=False)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror}; run the demo in a folder you can write to, or pass --config FILE"
        ) from None
    return True


def config_for_run(config: Config, mapping: dict) -> tuple[Config, str | None, str | None]:
    """(config to ingest with, config file written, warning): a new ./gatewatch.yaml, else a merge."""
    if config.source_path is None:
        path = Path(CONFIG_FILE)
        if write_config(path, mapping):
            return load_config(str(path), db=config.store_url), str(path.resolve()), None
    mapping = absolute_folders(mapping)
    merged = merged_config(config, mapping)
    if merged == config:  # the configuration already holds the demo's maps (a demo run before wrote it)
        return config, None, None
    warning = (
        f"warning: the configuration {config.source_path or CONFIG_FILE} is in use, so the demo's maps "
        "(services.pipelines, services.repositories, services.pagerduty, teams), folders (slos, "
        "gates.policies) and notification outbox (notify, when it has no channels) were added under it "
        "for this run only. Add them to it, or `gatewatch replay` will "
        "give the demo's CodePipeline and PagerDuty events other service names and no team:\n"
        + yaml.safe_dump(mapping, sort_keys=False, default_flow_style=False).rstrip()
    )
    return merged, None, warning
