"""The command line on hostile input: a file that cannot be read (binary, a directory, missing,
unreadable, broken UTF-16 or YAML) or an option out of range is one line of error and exit 2, never a
traceback nor an outcome such as rollback (1); UTF-16 and BOM files are read like UTF-8 ones; processes
creating one store at the same time all succeed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collector.db import create_store_engine, dispose_engines
from collector.models import raw_events
from tests.conftest import run_in_process

CANARY_CONFIG = "metrics:\n  - name: latency\n    direction: increase\n"
CANARY_DATA = "metric,group,value\n" + "".join(
    f"latency,{group},{100 + i % 7}\n" for group in ("baseline", "canary") for i in range(40)
)
SLO = "service: api\nname: availability\nobjective: 99.9\nwindow: 28d\nsli:\n  data: sli.csv\n"
SLI_DATA = "timestamp,good,total\n2024-05-01T00:00:00Z,990,1000\n2024-05-01T01:00:00Z,999,1000\n"
KAYENTA = Path(__file__).parent / "fixtures" / "kayenta" / "canary-config-prometheus-cpu-only.json"
DEPLOY = {
    "type": "deployment",
    "service": "api",
    "environment": "production",
    "status": "success",
    "finished_at": "2024-05-01T10:10:00Z",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    """In-process runs see no GATEWATCH_* variable nor a ./gatewatch.yaml; their engines are closed after."""
    for name in [n for n in os.environ if n.startswith("GATEWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield
    dispose_engines()


def assert_usage_error(res: subprocess.CompletedProcess, *named: str) -> None:
    """Exit 2, no traceback, and one line of error naming each of `named` (besides progress lines, or
    the usage lines click puts before its own errors)."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    errors = [line for line in res.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, res.stderr
    for name in named:
        assert name in errors[0], (name, errors[0])


# --- files that cannot be read ----------------------------------------------------------------------


def _binary(tmp: Path) -> Path:
    path = tmp / "binary.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xc3\x28\x80\x81\xfe")
    return path


def _directory(tmp: Path) -> Path:
    path = tmp / "folder.yaml"
    path.mkdir()
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "missing.yaml"


def _under_a_file(tmp: Path) -> Path:
    (tmp / "plain").write_text("x")
    return tmp / "plain" / "inner.yaml"


def _broken_utf16(tmp: Path) -> Path:
    path = tmp / "broken16.yaml"
    path.write_bytes(b"\xff\xfe" + b"\x00\xd8" + "a: b\n".encode("utf-16-le"))  # a lone surrogate first
    return path


def _broken_yaml(tmp: Path) -> Path:
    path = tmp / "broken.yaml"
    path.write_text("name: [unclosed\nchecks: {\n")
    return path


BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "binary": (_binary, "not a UTF-8 text file"),
    "directory": (_directory, "a directory, not a file"),
    "missing": (_missing, "no such file"),
    "under a file": (_under_a_file, "no such file"),
    "broken UTF-16": (_broken_utf16, "not a UTF-16"),
    "broken YAML": (_broken_yaml, "not valid YAML"),
}


def _canary_files(tmp: Path) -> tuple[Path, Path]:
    (tmp / "canary.yaml").write_text(CANARY_CONFIG)
    (tmp / "samples.csv").write_text(CANARY_DATA)
    return tmp / "canary.yaml", tmp / "samples.csv"


def _slo_with_data(tmp: Path, data: Path) -> Path:
    (tmp / "slo.yaml").write_text(SLO.replace("sli.csv", str(data)))
    return tmp / "slo.yaml"


# Each command that reads a user file: its arguments with the file `f` in place, in folder `tmp`.
READERS: dict[str, Callable[[Path, Path], list[str]]] = {
    "gate check --policy": lambda f, tmp: ["gate", "check", "--policy", str(f)],
    "gate retry-actions --policy": lambda f, tmp: ["gate", "retry-actions", "k1", "--policy", str(f)],
    "--config": lambda f, tmp: ["--config", str(f), "dora"],
    "slo status --slo": lambda f, tmp: ["slo", "status", "--slo", str(f)],
    "slo rules --slo": lambda f, tmp: ["slo", "rules", "--slo", str(f)],
    "canary judge --config": lambda f, tmp: [
        "canary",
        "judge",
        "--config",
        str(f),
        "--data",
        str(_canary_files(tmp)[1]),
    ],
    "canary import-kayenta": lambda f, tmp: ["canary", "import-kayenta", str(f)],
}
# What each reader can be given besides YAML: canary samples, SLI data and Kayenta configs are not YAML.
NOT_YAML: dict[str, Callable[[Path, Path], list[str]]] = {
    "canary judge --data": lambda f, tmp: ["canary", "judge", "--config", str(_canary_files(tmp)[0]), "--data", str(f)],
    "slo status (SLI data)": lambda f, tmp: ["slo", "status", "--slo", str(_slo_with_data(tmp, f))],
    "canary import-kayenta": READERS["canary import-kayenta"],
    "ingest": lambda f, tmp: ["ingest", str(f)],
}


# Missing SLI data is an outside system's data not there (exit 5); a binary file to ingest is a payload.
NOT_YAML_KINDS = {
    "canary judge --data": ("binary", "directory", "under a file", "broken UTF-16"),
    "slo status (SLI data)": ("binary", "broken UTF-16"),
    "ingest": ("directory", "under a file", "broken UTF-16"),
}


def _cases() -> list:
    cases = []
    for command, args in READERS.items():
        for kind in BAD_FILES:
            if not (command == "canary import-kayenta" and kind == "broken YAML"):
                cases.append(pytest.param(args, kind, id=f"{command} <{kind}>"))
    for command, kinds in NOT_YAML_KINDS.items():
        for kind in kinds:
            cases.append(pytest.param(NOT_YAML[command], kind, id=f"{command} <{kind}>"))
    return cases


@pytest.mark.parametrize(("args", "kind"), _cases())
def test_a_file_that_cannot_be_read_is_one_line_and_exit_2(args, kind, tmp_path):
    make, problem = BAD_FILES[kind]
    bad = make(tmp_path)
    command = args(bad, tmp_path)
    res = run_in_process("--db", f"sqlite:///{tmp_path / 's.db'}", *command)
    if res.stderr.startswith("Usage:"):  # click's own check of an option (--config: exists, not a folder)
        assert_usage_error(res, bad.name)
        return
    assert_usage_error(res, bad.name, problem)


def test_the_gate_answers_exit_2_not_rollback_for_a_binary_policy(tmp_path, gatewatch):
    """The installed command: exit 1 would tell the pipeline to roll back."""
    bad = _binary(tmp_path)
    res = gatewatch("--db", f"sqlite:///{tmp_path / 's.db'}", "gate", "check", "--policy", str(bad))
    assert_usage_error(res, "policy", str(bad), "not a UTF-8 text file")


def test_a_config_file_from_the_environment_that_cannot_be_read(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWATCH_CONFIG", str(_directory(tmp_path)))
    res = run_in_process("--db", f"sqlite:///{tmp_path / 's.db'}", "dora")
    assert_usage_error(res, "config file", "folder.yaml", "a directory, not a file")


@pytest.fixture
def unprivileged() -> Callable[[Callable[[], subprocess.CompletedProcess]], subprocess.CompletedProcess]:
    """Run a function where a chmod 000 file really cannot be read: in a child process that drops root
    (root reads any file), or here when the tests do not run as root."""

    def run(fn: Callable[[], subprocess.CompletedProcess]) -> subprocess.CompletedProcess:
        if os.geteuid() != 0:
            return fn()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            try:
                os.close(read)
                os.setgid(65534)
                os.setuid(65534)
                res = fn()
                payload = [res.returncode, res.stdout, res.stderr]
            except BaseException as exc:  # an exception escaping main(): the traceback a user would see
                payload = [-1, "", f"Traceback: {exc!r}"]
            with os.fdopen(write, "w") as out:
                json.dump(payload, out)
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as got:
            code, out, err = json.load(got)
        os.waitpid(pid, 0)
        return subprocess.CompletedProcess([], code, out, err)

    return run


@pytest.mark.parametrize(
    "args",
    [READERS["gate check --policy"], READERS["slo rules --slo"], READERS["canary import-kayenta"], NOT_YAML["ingest"]],
    ids=["gate check --policy", "slo rules --slo", "canary import-kayenta", "ingest"],
)
def test_an_unreadable_file_is_one_line_and_exit_2(args, unprivileged):
    folder = Path(tempfile.mkdtemp(prefix="gatewatch-unreadable-"))  # not under tmp_path: others may enter it
    try:
        folder.chmod(0o777)
        secret = folder / "policy.yaml"
        secret.write_text("name: x\nchecks: []\n")
        secret.chmod(0o000)
        res = unprivileged(lambda: run_in_process("--db", f"sqlite:///{folder / 's.db'}", *args(secret, folder)))
        # click checks the files `ingest` is given itself
        problem = "is not readable" if res.stderr.startswith("Usage:") else "cannot be read (Permission denied)"
        assert_usage_error(res, "policy.yaml", problem)
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


# --- options out of range ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["dora", "--since", "100000000d"], "--since"),
        (["dora", "--since", "99999999999999999999999999d"], "--since"),
        (["pipelines", "--since", "100000000d"], "--since"),
        (["dora", "--start", "0001-01-01", "--end", "0001-01-03"], "--start"),
        (["dora", "--start", "2024-01-01", "--end", "9999-12-31"], "--end"),
        (["dora", "--link-window", "100000000d"], "--link-window"),
        (["notify", "list", "--since", "100000000d"], "--since"),
        (["notify", "list", "--since", "0001-01-01T00:00:00+01:00"], "--since"),
        (["quarantine", "--limit", "99999999999999999999999"], "--limit"),
        (["quarantine", "--examples", "-1"], "--examples"),
        (["demo", "--end", "0001-01-01"], "--end"),
        (["demo", "--end", "9999-12-31"], "--end"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_an_option_out_of_range_is_one_line_naming_it_and_exit_2(args, option, store_url):
    res = run_in_process("--db", store_url, *args)
    assert_usage_error(res, option)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["slo", "status", "--at", "9999-12-31T23:00:00-05:00"], "--at"),
        (["slo", "status", "--at", "1" + "0" * 30], "--at"),
        (["canary", "run", "--start", "100000000d", "--end", "1h"], "--start"),
        (["canary", "run", "--start", "2h", "--step", "1e400s"], "--step"),
    ],
)
def test_a_time_out_of_range_is_one_line_naming_it_and_exit_2(args, option, tmp_path):
    (tmp_path / "sli.csv").write_text(SLI_DATA)
    config, _ = _canary_files(tmp_path)
    files = ["--slo", str(_slo_with_data(tmp_path, tmp_path / "sli.csv"))] if args[0] == "slo" else []
    if args[0] == "canary":
        files = ["--config", str(config), "--baseline", 'v="1"', "--canary", 'v="2"', "--prometheus", "http://p:9"]
    res = run_in_process("--db", f"sqlite:///{tmp_path / 's.db'}", *args, *files)
    assert_usage_error(res, option)


def test_a_duration_in_a_file_out_of_range_names_the_field(tmp_path):
    config = tmp_path / "gatewatch.yaml"
    config.write_text("dora:\n  link_window: 100000000d\n")
    res = run_in_process("--db", f"sqlite:///{tmp_path / 's.db'}", "--config", str(config), "dora")
    assert_usage_error(res, "dora.link_window", "at most 36500d")
    (tmp_path / "sli.csv").write_text(SLI_DATA)
    slo = _slo_with_data(tmp_path, tmp_path / "sli.csv")
    slo.write_text(slo.read_text().replace("window: 28d", "window: 99999999999999999999d"))
    assert_usage_error(run_in_process("slo", "status", "--slo", str(slo)), "window", "too long")


def test_the_widest_windows_still_answer(store_url):
    """The bounds refuse only what cannot be computed: the widest accepted windows give a report."""
    for args in (
        ["dora", "--start", "1900-01-01", "--end", "2200-01-01", "--tz", "Pacific/Kiritimati"],
        ["pipelines", "--start", "1900-01-01", "--end", "2200-01-01", "--tz", "America/Adak"],
        ["dora", "--since", "36500d", "--link-window", "36500d"],
    ):
        res = run_in_process("--db", store_url, *args, "--json")
        assert res.returncode == 0, (args, res.stderr)
        assert json.loads(res.stdout)["window"]["start"].startswith("1900-01-01" if "--start" in args else "19")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_one_line_and_exit_2(store_url, tmp_path):
    """stdout on a full disk: the decision or report is not delivered, so neither 0 nor 1."""
    config, samples = _canary_files(tmp_path)
    exe = Path(sys.executable).with_name("gatewatch")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    for args in (["dora", "--json"], ["canary", "judge", "--config", str(config), "--data", str(samples), "--json"]):
        with open("/dev/full", "w") as full:
            res = subprocess.run(
                [str(exe), "--db", store_url, *args], stdout=full, stderr=subprocess.PIPE, text=True, env=env
            )
        assert_usage_error(subprocess.CompletedProcess(args, res.returncode, "", res.stderr), "No space left on device")


# --- byte-order marks ---------------------------------------------------------------------------------


def _stored(store_url: str) -> list[tuple[str, str]]:
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            return [(r.status, r.payload) for r in conn.execute(select(raw_events).order_by(raw_events.c.id))]
    finally:
        engine.dispose()


ENCODINGS = {"UTF-16-LE": "utf-16-le", "UTF-16-BE": "utf-16-be", "UTF-8 with BOM": "utf-8", "UTF-32": "utf-32-le"}
BOMS = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-8": b"\xef\xbb\xbf", "utf-32-le": b"\xff\xfe\x00\x00"}


@pytest.mark.parametrize("encoding", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_ingest_reads_ndjson_and_csv_files_with_a_byte_order_mark(encoding, store_url, tmp_path, gatewatch):
    records = [dict(DEPLOY, id=f"n{i}", service="café") for i in range(2)]
    ndjson = "".join(json.dumps(record, ensure_ascii=False) + "\r\n" for record in records)
    csv = "type,id,service,environment,status,finished_at\n" + "".join(
        f"deployment,c{i},café,production,success,2024-05-01T10:1{i}:00Z\n" for i in range(2)
    )
    for name, text in (("deploys.ndjson", ndjson), ("deploys.csv", csv)):
        (tmp_path / name).write_bytes(BOMS[encoding] + text.encode(encoding))
    res = gatewatch(
        "--db", store_url, "ingest", str(tmp_path / "deploys.ndjson"), str(tmp_path / "deploys.csv"), "--json"
    )
    assert res.returncode == 0, res.stderr
    assert (json.loads(res.stdout)["stored"], json.loads(res.stdout)["quarantined"]) == (4, 0)
    stored = _stored(store_url)
    assert [status for status, _ in stored] == ["ok"] * 4 and all("café" in payload for _, payload in stored)
    assert "\ufeff" not in "".join(payload for _, payload in stored)
    # The same payloads in UTF-8 are the same payloads: duplicates, nothing new.
    (tmp_path / "plain.ndjson").write_text(ndjson, encoding="utf-8")
    res = gatewatch("--db", store_url, "ingest", str(tmp_path / "plain.ndjson"), "--json")
    assert (json.loads(res.stdout)["stored"], json.loads(res.stdout)["duplicates"]) == (0, 2)


def test_ingest_reads_a_utf16_stdin_and_refuses_broken_utf16_in_one_line(store_url, tmp_path):
    exe = Path(sys.executable).with_name("gatewatch")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    body = b"\xff\xfe" + (json.dumps(dict(DEPLOY, id="stdin-1")) + "\n").encode("utf-16-le")
    res = subprocess.run([str(exe), "--db", store_url, "ingest", "-"], input=body, capture_output=True, env=env)
    assert res.returncode == 0 and b"stored 1" in res.stdout, res.stderr
    broken = tmp_path / "broken.ndjson"
    broken.write_bytes(body[:-1])  # an odd number of bytes: the last character cut in half
    res = subprocess.run([str(exe), "--db", store_url, "ingest", str(broken)], capture_output=True, env=env, text=True)
    assert_usage_error(res, "broken.ndjson", "not a UTF-16-LE text file (truncated data)")


def test_sli_data_canary_samples_and_yaml_files_in_utf16_read_as_in_utf8(tmp_path):
    config, samples = _canary_files(tmp_path)
    (tmp_path / "sli.csv").write_text(SLI_DATA)
    slo = _slo_with_data(tmp_path, tmp_path / "sli.csv")
    at = ["--at", "2024-05-01T01:00:00Z", "--json"]
    plain = (
        run_in_process("canary", "judge", "--config", str(config), "--data", str(samples), "--json"),
        run_in_process("slo", "status", "--slo", str(slo), *at),
    )
    for path in (config, samples, tmp_path / "sli.csv", slo):
        path.write_bytes(path.read_text().encode("utf-16"))  # with its byte-order mark
    wide = (
        run_in_process("canary", "judge", "--config", str(config), "--data", str(samples), "--json"),
        run_in_process("slo", "status", "--slo", str(slo), *at),
    )
    for before, after in zip(plain, wide, strict=True):
        assert before.returncode == after.returncode and before.returncode in (0, 3), before.stderr
        drop = ("id", "run_id", "at", "judged_at", "created_at")
        assert {k: v for k, v in json.loads(after.stdout).items() if k not in drop} == {
            k: v for k, v in json.loads(before.stdout).items() if k not in drop
        }


# --- processes creating one store ---------------------------------------------------------------------


@pytest.mark.parametrize("round_", range(3))
def test_processes_creating_one_store_at_once_all_succeed(round_, store_url, tmp_path):
    """Four `gatewatch ingest` started together on a new store: each waits for the one migrating it
    (SQLite: BEGIN IMMEDIATE, PostgreSQL: an advisory lock), then stores its payload."""
    exe = Path(sys.executable).with_name("gatewatch")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    files = []
    for i in range(4):
        files.append(tmp_path / f"p{i}.json")
        files[-1].write_text(json.dumps(dict(DEPLOY, id=f"r{round_}-{i}")))
    procs = [
        subprocess.Popen(
            [str(exe), "--db", store_url, "ingest", str(f)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for f in files
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(raw_events)).scalar_one() == 4
    finally:
        engine.dispose()
