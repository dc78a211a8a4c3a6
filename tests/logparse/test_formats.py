"""Format quirks across GitLab versions and deployments, one line at a time."""

import pytest

import logparse


def one(line: bytes, log_type: str | None = None) -> logparse.GroupStats:
    chunk = logparse.parse_chunk(line + b"\n", log_type=log_type)
    assert chunk.bad_lines == {}, chunk.samples
    (group,) = chunk.groups
    return group


@pytest.mark.parametrize(
    ("line", "log_type", "key", "duration_ms"),
    [
        (b'{"controller":"A","action":"b","duration_s":0.25}', "production_json", "A#b", 250.0),
        (b'{"controller":"A","action":"b","duration":250.0,"db":1}', "production_json", "A#b", 250.0),
        (b'{"route":"/api/:version/x","method":"GET","duration_s":0.5}', "api_json", "GET /api/:version/x", 500.0),
        (b'{"route":"/api/:version/x","duration":12.5}', "api_json", "/api/:version/x", 12.5),
        (b'{"grpc.method":"FindCommit","grpc.code":"OK","grpc.time_ms":3.5}', "gitaly", "FindCommit", 3.5),
        (b'{"class":"W","jid":"1","job_status":"done","duration":0.75}', "sidekiq", "W", 750.0),
        (b'{"class":"W","jid":"1","job_status":"done","duration_s":"0.75"}', "sidekiq", "W", 750.0),
    ],
)
def test_detection_key_and_duration_units(line: bytes, log_type: str, key: str, duration_ms: float) -> None:
    assert logparse.detect_log_type(line) == log_type
    group = one(line)
    assert (group.key, group.count) == (key, 1)
    assert group.duration_sum_ms == pytest.approx(duration_ms)


def test_praefect_lines_read_as_gitaly() -> None:
    line = (
        b'{"component":"praefect","grpc.code":"OK","grpc.method":"FindCommit","grpc.service":"gitaly.CommitService",'
        b'"grpc.time_ms":1.5,"msg":"finished unary call with code OK","virtual_storage":"default"}'
    )
    assert (one(line).key, one(line).duration_sum_ms) == ("FindCommit", 1.5)


@pytest.mark.parametrize(
    "prefix",
    [
        b"",
        b"2019-06-17_17:20:03.46097 ",
        b"gitlab-webservice-default-7d9c ",
        b"2023-11-23T08:49:02.604Z ",
        b"[pod/gitlab-webservice-default-7d9c/webservice] ",
    ],
)
def test_prefixes_before_the_json(prefix: bytes) -> None:
    line = prefix + b'{"controller":"A","action":"b","duration_s":1,"time":"2020-01-01T00:00:30Z"}'
    group = one(line)
    assert (group.key, group.bucket_start) == ("A#b", 1577836800)


def test_svlogd_prefix_time_is_used_when_the_line_has_none() -> None:
    group = one(b'2020-01-01_00:01:05.5 {"class":"W","jid":"1","job_status":"done","duration_s":1}')
    assert group.bucket_start == 1577836860


@pytest.mark.parametrize(
    ("time", "bucket"),
    [
        (b'"2020-01-01T00:00:59.999Z"', 1577836800),
        (b"1577836861.5", 1577836860),
        (b'"2020-01-01T01:01:00+01:00"', 1577836860),
    ],
)
def test_iso_and_float_epoch_times(time: bytes, bucket: int) -> None:
    assert one(b'{"controller":"A","action":"b","duration_s":1,"time":%s}' % time).bucket_start == bucket


def test_helm_lines_of_other_subcomponents_are_skipped() -> None:
    data = (
        b'{"subcomponent":"api_json","route":"/r","duration_s":1}\n'
        b'{"subcomponent":"production_json","controller":"A","action":"b","duration_s":1}\n'
        b'{"subcomponent":"application_json","message":"hello"}\n'
    )
    chunk = logparse.parse_chunk(data, log_type="api_json")
    assert (sum(g.count for g in chunk.groups), chunk.skipped) == (1, {"other_log_type": 2})


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"plain text", "not_json"),
        (b'{"controller":"A",', "invalid_json"),
        (b'{"controller":"A","action":"b","duration_s":1,"username":"\xff"}', "not_utf8"),
        (b'{"controller":null,"action":"b","duration_s":1}', "missing_key"),
        (b'{"controller":"A","action":"b"}', "missing_duration"),
        (b'{"controller":"A","action":"b","duration_s":-5}', "negative_duration"),
        (b'{"controller":"A","action":"b","duration":-0.5}', "negative_duration"),
        (b'{"controller":"A","action":"b","duration_s":[1]}', "wrong_type"),
        (b'{"controller":7,"action":"b","duration_s":1}', "wrong_type"),
        (b'{"controller":"A","controller":"B","duration_s":1}', "wrong_type"),
        (b'{"controller":"' + b"x" * (1 << 20) + b'","duration_s":1}', "too_long"),
    ],
)
def test_bad_lines_by_reason(line: bytes, reason: str) -> None:
    chunk = logparse.parse_chunk(line, log_type="production_json")
    assert (chunk.lines, chunk.bad_lines, chunk.groups) == (1, {reason: 1}, [])
    ((sample_reason, sample),) = chunk.samples
    assert sample_reason == reason
    assert len(sample) <= 301
