"""analysis.alarms.link_alarms: each alarm episode with the latest production deployment of its
service that finished before it started, within the limit."""

from __future__ import annotations

import pandas as pd

from analysis.alarms import link_alarms


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


DEPLOYMENTS = pd.DataFrame(
    {
        "id": ["a-1", "a-2", "a-staging", "b-1", "a-unfinished"],
        "service": ["api", "api", "api", "web", "api"],
        "production": [True, True, False, True, True],
        "finished_at": [
            t("2024-05-01 10:00"),
            t("2024-05-01 11:00"),
            t("2024-05-01 11:20"),
            t("2024-05-01 09:00"),
            pd.NaT,
        ],
    }
)


def test_each_episode_links_to_the_latest_earlier_production_deployment_of_its_service():
    episodes = pd.DataFrame(
        {
            "id": ["after-a2", "after-a1", "too-late", "before-any", "other-service", "no-service"],
            "service": ["api", "api", "api", "api", "web", None],
            "started_at": [
                t("2024-05-01 11:30"),  # a-2 (a-staging is later but not production)
                t("2024-05-01 10:45"),  # a-1
                t("2024-05-01 12:01"),  # a-2 finished 61 minutes earlier
                t("2024-05-01 09:30"),
                t("2024-05-01 09:59"),  # b-1, of its own service
                t("2024-05-01 11:05"),
            ],
        },
        index=[7, 7, 3, 2, 1, 0],  # any index, even a repeated one
    )
    linked = link_alarms(DEPLOYMENTS, episodes)
    assert list(linked.index) == [7, 7, 3, 2, 1, 0] and list(linked["id"]) == list(episodes["id"])
    found = [None if pd.isna(v) else v for v in linked["deployment_id"]]
    assert found == ["a-2", "a-1", None, None, "b-1", None]
    assert linked["since_deployment"].iloc[0] == pd.Timedelta(minutes=30)
    assert pd.isna(linked["since_deployment"].iloc[2])


def test_the_limit_is_a_parameter_and_a_deployment_at_the_same_instant_counts():
    episodes = pd.DataFrame({"service": ["api", "api"], "started_at": [t("2024-05-01 12:01"), t("2024-05-01 10:00")]})
    linked = link_alarms(DEPLOYMENTS, episodes, within=pd.Timedelta(hours=2))
    assert list(linked["deployment_id"]) == ["a-2", "a-1"]
    assert list(linked["since_deployment"]) == [pd.Timedelta(minutes=61), pd.Timedelta(0)]


def test_without_a_production_column_every_deployment_counts_and_empty_frames_work():
    episodes = pd.DataFrame({"service": ["api"], "started_at": [t("2024-05-01 11:30")]})
    assert list(link_alarms(DEPLOYMENTS.drop(columns="production"), episodes)["deployment_id"]) == ["a-staging"]
    empty = link_alarms(DEPLOYMENTS.iloc[:0], episodes.iloc[:0])
    assert empty.empty and {"deployment_id", "since_deployment"} <= set(empty.columns)
