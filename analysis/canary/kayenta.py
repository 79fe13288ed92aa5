"""A Spinnaker Kayenta canary config (JSON, as Kayenta stores it or as its ad-hoc `/canary` request
holds it) as a Gatewatch canary config: pure, a mapping in and a mapping out, with a note for each
thing that could not be carried over, naming its Kayenta field path.

What maps (Kayenta's `NetflixACAJudge-v1.0` and `MannWhitneyClassifier` semantics, see the README's
"Importing a Kayenta config"): a metric's name, its first group, `analysisConfigurations.canary`'s
`direction` (Kayenta's default is `either`), `critical`, `mustHaveData` (on_nodata: fail),
`effectSize` (`allowedIncrease`/`allowedDecrease` -> effect_size, `criticalIncrease`/`criticalDecrease`
-> critical_effect_size on critical metrics), `outliers` (`strategy: remove` -> outliers: iqr with
`outlierFactor`, Kayenta's default 3), a Prometheus query (metricName, labelBindings, groupByFields,
customFilter / customFilterTemplate / customInlineTemplate whose only variable is `${scope}`),
`classifier.groupWeights` and the score thresholds (`classifier.scoreThresholds`, or the ad-hoc
request's `executionRequest.thresholds`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["KAYENTA_JUDGE", "from_kayenta", "is_kayenta_config"]

KAYENTA_JUDGE = "NetflixACAJudge-v1.0"
KAYENTA_CONFIDENCE = 0.98  # NetflixACAJudge's Mann-Whitney confidence level
KAYENTA_OUTLIER_FACTOR = 3.0  # NetflixACAJudge's IQRDetector factor
_ANALYSIS_KEYS = {"direction", "nanStrategy", "critical", "mustHaveData", "effectSize", "outliers"}
_SCOPE_MATCHER = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(["'])\$\{scope\}\3\s*""")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def is_kayenta_config(raw: Any) -> bool:
    """A mapping with a list of metrics, each with `analysisConfigurations` or `query` (a canary config
    or an ad-hoc request holding one under `canaryConfig`)."""
    config = raw.get("canaryConfig", raw) if isinstance(raw, Mapping) else None
    metrics = config.get("metrics") if isinstance(config, Mapping) else None
    return (
        isinstance(metrics, list)
        and bool(metrics)
        and all(isinstance(m, Mapping) and ("analysisConfigurations" in m or "query" in m) for m in metrics)
    )


def from_kayenta(
    raw: Mapping[str, Any], pass_threshold: float | None = None, marginal_threshold: float | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(the Gatewatch canary config as a mapping, notes on what was not mapped). `raw` is a Kayenta canary
    config or an ad-hoc request `{"canaryConfig": ..., "executionRequest": {"thresholds": ...}}`; the
    thresholds given here win over the file's. ValueError when `raw` is not a Kayenta canary config."""
    if not is_kayenta_config(raw):
        raise ValueError("not a Kayenta canary config: expected a mapping with a non-empty list of metrics")
    notes: list[str] = []
    wrapped = "canaryConfig" in raw
    config: Mapping[str, Any] = raw["canaryConfig"] if wrapped else raw
    at = "canaryConfig." if wrapped else ""
    judge = config.get("judge")
    judge_name = judge.get("name") if isinstance(judge, Mapping) else None
    if judge_name not in (None, KAYENTA_JUDGE):
        notes.append(f"{at}judge.name: {judge_name!r} is not {KAYENTA_JUDGE}; judged as Gatewatch judges")
    templates = _mapping(config.get("templates"))
    out: dict[str, Any] = {"confidence": KAYENTA_CONFIDENCE}
    thresholds = _thresholds(raw, config, at, pass_threshold, marginal_threshold, notes)
    if thresholds:
        out["thresholds"] = thresholds
    classifier = _mapping(config.get("classifier"))
    weights = classifier.get("groupWeights")
    if isinstance(weights, Mapping) and weights:
        out["group_weights"] = {
            str(k): float(v) for k, v in weights.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        bad = [str(k) for k, v in weights.items() if str(k) not in out["group_weights"]]
        if bad:
            notes.append(f"{at}classifier.groupWeights: not a number for {bad}; those groups weigh 1")
    metrics = []
    names: set[str] = set()
    for i, metric in enumerate(config["metrics"]):
        mapped = _metric(metric, f"{at}metrics[{i}]", templates, notes)
        if mapped["name"] in names:
            old = mapped["name"]
            mapped["name"] = f"{old} ({i})"
            notes.append(f"{at}metrics[{i}].name: {old!r} is used twice; renamed {mapped['name']!r}")
        names.add(mapped["name"])
        metrics.append(mapped)
    out["metrics"] = metrics
    return out, notes


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _thresholds(
    raw: Mapping[str, Any],
    config: Mapping[str, Any],
    at: str,
    pass_threshold: float | None,
    marginal_threshold: float | None,
    notes: list[str],
) -> dict[str, float]:
    found: dict[str, Any] = {}
    request = raw.get("executionRequest")
    classifier = config.get("classifier")
    for where, holder in (
        (
            f"{at}classifier.scoreThresholds",
            classifier.get("scoreThresholds") if isinstance(classifier, Mapping) else None,
        ),
        ("executionRequest.thresholds", request.get("thresholds") if isinstance(request, Mapping) else None),
    ):
        if isinstance(holder, Mapping):
            for key in ("pass", "marginal"):
                value = holder.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    found[key] = float(value)
                elif value is not None:
                    notes.append(f"{where}.{key}: {value!r} is not a number; not mapped")
    if pass_threshold is not None:
        found["pass"] = float(pass_threshold)
    if marginal_threshold is not None:
        found["marginal"] = float(marginal_threshold)
    if not found:
        notes.append(
            "scoreThresholds: none in the file (Kayenta takes them from the execution request); "
            "Gatewatch's defaults apply (pass 95, marginal 75): set --pass/--marginal"
        )
    return found


def _metric(metric: Mapping[str, Any], at: str, templates: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    name = metric.get("name")
    out: dict[str, Any] = {"name": str(name) if name not in (None, "") else at}
    if name in (None, ""):
        notes.append(f"{at}.name: missing; named {at!r}")
    groups = metric.get("groups") or []
    if isinstance(groups, list) and groups:
        out["group"] = str(groups[0])
        if len(groups) > 1:
            notes.append(
                f"{at}.groups: in {len(groups)} groups {groups}; Gatewatch scores a metric in one, "
                f"the first ({groups[0]!r})"
            )
    scope = metric.get("scopeName")
    if scope not in (None, "default"):
        notes.append(
            f"{at}.scopeName: {scope!r}; Gatewatch judges every metric on the run's one baseline and canary scope"
        )
    analysis = metric.get("analysisConfigurations")
    canary = analysis.get("canary") if isinstance(analysis, Mapping) else None
    canary = canary if isinstance(canary, Mapping) else {}
    where = f"{at}.analysisConfigurations.canary"
    direction = canary.get("direction", "either")
    if direction in ("increase", "decrease", "either"):
        out["direction"] = direction
    else:
        out["direction"] = "either"
        notes.append(f"{where}.direction: {direction!r} is not increase, decrease or either; mapped to either")
    out["tolerance"] = 0.0  # Kayenta's band is 25% of the estimate itself: significance, with effect sizes
    critical = canary.get("critical") is True
    if critical:
        out["critical"] = True
    if canary.get("mustHaveData") is True:
        out["on_nodata"] = "fail"
    nan = canary.get("nanStrategy")
    if nan == "replace":
        notes.append(f"{where}.nanStrategy: 'replace' (NaN as 0) is not supported; Gatewatch drops missing values")
    elif nan not in (None, "remove", "none"):
        notes.append(f"{where}.nanStrategy: {nan!r} not mapped; Gatewatch drops missing values")
    _effects(canary.get("effectSize"), f"{where}.effectSize", critical, out, notes)
    _outliers(canary.get("outliers"), f"{where}.outliers", out, notes)
    unknown = sorted(set(canary) - _ANALYSIS_KEYS)
    if unknown:
        notes.append(f"{where}: {unknown} not mapped")
    query = _query(metric.get("query"), f"{at}.query", templates, notes)
    return {"name": out.pop("name"), **({"query": query} if query is not None else {}), **out}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _effects(effect: Any, at: str, critical: bool, out: dict[str, Any], notes: list[str]) -> None:
    if not isinstance(effect, Mapping):
        return
    measure = effect.get("measure", "meanRatio")
    if measure != "meanRatio":
        notes.append(
            f"{at}.measure: {measure!r} is not supported (Gatewatch's effect size is the mean ratio); "
            "effect sizes not mapped"
        )
        return
    allowed = {}
    for kayenta, ours, ok in (
        ("allowedIncrease", "allowed_increase", lambda v: v >= 1),
        ("allowedDecrease", "allowed_decrease", lambda v: 0 < v <= 1),
    ):
        value = _number(effect.get(kayenta))
        if kayenta not in effect:
            continue
        if value is None or not ok(value):
            notes.append(f"{at}.{kayenta}: {effect.get(kayenta)!r} is not a usable multiplier; not mapped")
        elif value != 1.0:  # 1 is Kayenta's default: no effect size
            allowed[ours] = value
    if allowed:
        out["effect_size"] = allowed
    criticals = {}
    for kayenta, ours, ok in (
        ("criticalIncrease", "critical_increase", lambda v: v >= 1),
        ("criticalDecrease", "critical_decrease", lambda v: 0 < v <= 1),
    ):
        if kayenta not in effect:
            continue
        value = _number(effect.get(kayenta))
        if not critical:
            notes.append(f"{at}.{kayenta}: ignored, as Kayenta ignores it, on a metric that is not critical")
        elif value is None or not ok(value):
            notes.append(f"{at}.{kayenta}: {effect.get(kayenta)!r} is not a usable multiplier; not mapped")
        elif value != 1.0:
            criticals[ours] = value
    if criticals:
        out["critical_effect_size"] = criticals
    unknown = sorted(
        set(effect) - {"measure", "allowedIncrease", "allowedDecrease", "criticalIncrease", "criticalDecrease"}
    )
    if unknown:
        notes.append(f"{at}: {unknown} not mapped")


def _outliers(outliers: Any, at: str, out: dict[str, Any], notes: list[str]) -> None:
    if not isinstance(outliers, Mapping):
        return
    strategy = outliers.get("strategy", "keep")
    if strategy == "remove":
        out["outliers"] = "iqr"
        factor = outliers.get("outlierFactor", KAYENTA_OUTLIER_FACTOR)
        value = _number(factor)
        if value is None or value <= 0:
            notes.append(f"{at}.outlierFactor: {factor!r} is not above 0; Kayenta's default 3 used")
            value = KAYENTA_OUTLIER_FACTOR
        out["outlier_factor"] = value
    elif strategy != "keep":
        notes.append(f"{at}.strategy: {strategy!r} is not remove or keep; outliers kept")


def _query(query: Any, at: str, templates: Mapping[str, Any], notes: list[str]) -> str | None:
    """A Prometheus query config as a PromQL template with Gatewatch's `{scope}`; None (with a note)
    when it cannot be translated."""
    if not isinstance(query, Mapping):
        notes.append(f"{at}: missing; set query (or judge from a CSV file)")
        return None
    kind = query.get("type") or query.get("serviceType")
    if kind != "prometheus":
        notes.append(
            f"{at}.type: {kind!r} query not translated (Gatewatch reads Prometheus or CloudWatch); "
            "set query or cloudwatch (or judge from a CSV file)"
        )
        return None
    inline = query.get("customInlineTemplate")
    if inline:
        text = str(inline)
        text = text[len("PromQL:") :] if text.startswith("PromQL:") else text
        return _with_scope(text, f"{at}.customInlineTemplate", notes, inline=True)
    metric_name = query.get("metricName")
    if not metric_name:
        notes.append(f"{at}.metricName: missing; set query")
        return None
    matchers = [str(b) for b in query.get("labelBindings") or []]
    custom = query.get("customFilter")
    where = f"{at}.customFilter"
    template_name = query.get("customFilterTemplate")
    if not custom and template_name:
        where = f"{at}.customFilterTemplate"
        custom = templates.get(template_name)
        if custom is None:
            notes.append(f"{where}: template {template_name!r} is not in the config's templates; set query")
            return None
    if custom:
        selector = _with_scope(f"{metric_name}{{{', '.join([*matchers, str(custom)])}}}", where, notes, inline=False)
        if selector is None:
            return None
    else:
        selector = f"{metric_name}{{{', '.join([*matchers, '{scope}'])}}}"
    fields = [str(f) for f in query.get("groupByFields") or []]
    if fields:
        selector = f"sum by ({', '.join(fields)}) ({selector})"
    for key in ("resourceType",):
        if query.get(key):
            notes.append(f"{at}.{key}: {query[key]!r} not mapped (Gatewatch's scope matchers select the series)")
    return selector


def _with_scope(text: str, at: str, notes: list[str], inline: bool) -> str | None:
    """`text` with its `label="${scope}"` matchers replaced by Gatewatch's `{scope}`; None (with a note)
    when it holds another Kayenta variable or no scope at all."""
    labels = [m.group(1) for m in _SCOPE_MATCHER.finditer(text)]
    others = sorted(set(_VARIABLE.findall(_SCOPE_MATCHER.sub("", text))))
    if others == ["scope"]:
        notes.append(f'{at}: uses ${{scope}} other than as label="${{scope}}"; query not translated: set query')
        return None
    if others:
        notes.append(
            f"{at}: uses Kayenta template variable(s) {['${' + v + '}' for v in others]}, which Gatewatch "
            "does not fill; query not translated: set query"
        )
        return None
    if not labels:
        if inline:
            notes.append(f'{at}: no label="${{scope}}" matcher to put Gatewatch\'s {{scope}} in; set query')
            return None
        body = text[text.index("{") + 1 : -1].strip().rstrip(",")
        notes.append(f"{at}: no ${{scope}} matcher; Gatewatch's {{scope}} added to the selector")
        return text[: text.index("{")] + "{" + (f"{body}, {{scope}}" if body else "{scope}") + "}"
    first = True

    def replace(match: re.Match[str]) -> str:
        nonlocal first
        out = "{scope}" if first else ""
        first = False
        return out

    replaced = _SCOPE_MATCHER.sub(replace, text)
    replaced = re.sub(r",\s*,", ",", replaced)
    replaced = re.sub(r"\{\s*,\s*", "{", replaced)
    replaced = re.sub(r",\s*\}", "}", replaced)
    return replaced.replace(",{scope}", ", {scope}")
