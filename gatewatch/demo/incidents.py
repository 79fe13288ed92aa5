"""Incidents: PagerDuty v3 webhooks and generic incident records, caused by deployments or not."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from .organisation import PD_DOMAIN, TEAMS, Service, pd_id
from .timeline import Deployment, Timeline, iso, iso_ms, minutes, poisson

INCIDENT_TITLES = (
    "Elevated 5xx rate on {svc}",
    "{svc} p99 latency above SLO",
    "{svc}: error budget burn rate critical",
    "Spike in failed requests to {svc}",
    "{svc} pods crash-looping",
)
BACKGROUND_TITLES = (
    "{svc}: database CPU above 90%",
    "{svc}: upstream dependency timing out",
    "{svc}: disk almost full on worker nodes",
    "{svc}: certificate expires in 7 days",
)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(rng: random.Random, at: datetime) -> str:
    """A ULID as PagerDuty uses for webhook event ids: 48-bit milliseconds and 80 random bits."""
    n = (int(at.timestamp() * 1000) << 80) | rng.getrandbits(80)
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))


class Incidents(Timeline):
    """Incidents after bad releases, background incidents, and those still open at the end."""

    def deployment_incident(self, svc: Service, bad: Deployment, opened: datetime, restored: datetime) -> None:
        """An incident a bad release caused: paged in PagerDuty, or a generic record naming the deployment."""
        rng = self.rng
        resolved = restored + self.lognormal(8, 0.8, 1, 120)
        if resolved >= self.end:
            return
        title = rng.choice(INCIDENT_TITLES).format(svc=svc.name)
        if rng.random() < 0.2:  # recorded by the team's status-page tooling, which knows the deployment
            self.generic_incidents.append(
                (
                    opened,
                    {
                        "type": "incident",
                        "id": "",
                        "service": svc.name,
                        "opened_at": iso(opened),
                        "resolved_at": iso(resolved),
                        "severity": rng.choice(("sev1", "sev2", "sev2", "sev3")),
                        "deployment_id": bad.id,
                        "title": title,
                    },
                )
            )
            self.emit(resolved, "generic", None, self.generic_incidents[-1][1])
            return
        acked = opened + self.lognormal(4, 0.7, 0.5, 25)
        self.pagerduty_incident(
            svc,
            opened,
            title,
            "high",
            acked=min(acked, resolved),
            resolved=resolved,
            priority=rng.choice(("P1", "P2", "P2")),
        )

    def pagerduty_incident(
        self,
        svc: Service,
        opened: datetime,
        title: str,
        urgency: str,
        acked: datetime | None,
        resolved: datetime | None,
        priority: str | None,
    ) -> None:
        """An incident's PagerDuty webhooks: triggered, then acknowledged and resolved when they happened."""
        rng = self.rng
        incident = pd_id(rng, "Q", 14)
        responder = rng.choice(self.people[svc.team])
        team_name = TEAMS[svc.team][1]
        service_ref = {
            "html_url": f"https://{PD_DOMAIN}/service-directory/{svc.pagerduty_id}",
            "id": svc.pagerduty_id,
            "self": f"https://api.pagerduty.com/services/{svc.pagerduty_id}",
            "summary": svc.pagerduty_name,
            "type": "service_reference",
        }
        user_ref = {
            "html_url": f"https://{PD_DOMAIN}/users/{responder.pd_id}",
            "id": responder.pd_id,
            "self": f"https://api.pagerduty.com/users/{responder.pd_id}",
            "summary": responder.name,
            "type": "user_reference",
        }
        team_id = "P" + svc.pagerduty_id[1:4] + team_name[:3].upper()
        policy_id = "P" + svc.pagerduty_id[2:5] + "ESC"
        key = f"{rng.getrandbits(128):032x}"
        priority_ref = (
            None
            if priority is None
            else {
                "html_url": f"https://{PD_DOMAIN}/account/incident_priorities",
                "id": f"PPRI{priority[-1]}XX",
                "self": f"https://api.pagerduty.com/priorities/PPRI{priority[-1]}XX",
                "summary": priority,
                "type": "priority_reference",
            }
        )
        datas = []
        for state, at in (("triggered", opened), ("acknowledged", acked), ("resolved", resolved)):
            if at is None:
                continue
            auto = state == "resolved" and acked is None
            data = {
                "id": incident,
                "type": "incident",
                "self": f"https://api.pagerduty.com/incidents/{incident}",
                "html_url": f"https://{PD_DOMAIN}/incidents/{incident}",
                "number": 0,
                "status": state,
                "incident_key": key,
                "created_at": iso(opened),
                "title": title,
                "service": service_ref,
                "assignees": [] if state == "resolved" else [user_ref],
                "escalation_policy": {
                    "html_url": f"https://{PD_DOMAIN}/escalation_policies/{policy_id}",
                    "id": policy_id,
                    "self": f"https://api.pagerduty.com/escalation_policies/{policy_id}",
                    "summary": f"{team_name} on-call",
                    "type": "escalation_policy_reference",
                },
                "teams": [
                    {
                        "html_url": f"https://{PD_DOMAIN}/teams/{team_id}",
                        "id": team_id,
                        "self": f"https://api.pagerduty.com/teams/{team_id}",
                        "summary": team_name,
                        "type": "team_reference",
                    }
                ],
                "priority": priority_ref,
                "urgency": urgency,
                "conference_bridge": None,
                "resolve_reason": None,
            }
            datas.append(data)
            self.emit(
                at,
                "pagerduty",
                None,
                {
                    "event": {
                        "id": _ulid(rng, at),
                        "event_type": f"incident.{state}",
                        "resource_type": "incident",
                        "occurred_at": iso_ms(at),
                        "agent": service_ref if state == "triggered" or auto else user_ref,
                        "client": {"name": "Amazon CloudWatch"} if state == "triggered" else None,
                        "data": data,
                    }
                },
            )
        self.pd_incidents.append((opened, datas))

    def background_incidents(self) -> None:
        """Incidents no deployment caused (capacity, dependencies): some auto-resolve unacknowledged."""
        rng = self.rng
        span = (self.end - self.start).total_seconds()
        for svc in self.org:
            for _ in range(poisson(rng, span / 86400 / 40)):
                opened = self.start + timedelta(seconds=rng.uniform(0, span))
                auto = rng.random() < 0.3
                acked = None if auto else opened + self.lognormal(6, 0.8, 0.5, 45)
                resolved = (acked or opened) + self.lognormal(35 if not auto else 12, 1.0, 2, 10 * 60)
                if resolved >= self.end:
                    continue
                self.pagerduty_incident(
                    svc,
                    opened,
                    rng.choice(BACKGROUND_TITLES).format(svc=svc.name),
                    "low" if auto else "high",
                    acked,
                    resolved,
                    None if auto else "P3",
                )

    def open_incidents(self) -> None:
        """One or two incidents are still being worked on when the history ends."""
        rng = self.rng
        for svc in rng.sample(self.org, min(len(self.org), 1 + (rng.random() < 0.5))):
            opened = self.end - minutes(rng.uniform(40, 600))
            acked = opened + self.lognormal(5, 0.6, 1, 20)
            self.pagerduty_incident(
                svc,
                opened,
                rng.choice(BACKGROUND_TITLES).format(svc=svc.name),
                "high",
                acked if acked < self.end else None,
                None,
                "P2",
            )

    def number_incidents(self) -> None:
        """PagerDuty numbers and generic INC- ids count up in the order incidents were opened."""
        for n, (_, datas) in enumerate(sorted(self.pd_incidents, key=lambda x: x[0]), 1001):
            for data in datas:
                data["number"] = n
        for n, (_, record) in enumerate(sorted(self.generic_incidents, key=lambda x: x[0]), 301):
            record["id"] = f"INC-{n}"
